//! The integration tests: one binary (linking the xtask once), one module per area. They start
//! what they need themselves (the emulator on a free port, local registries) and use the real
//! Docker engine; a missing prerequisite fails the test with the command that installs it.

mod image;
mod local;
mod support;
