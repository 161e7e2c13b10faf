//! The integration tests: one binary (linking the xtask once), one module per area. They start
//! what they need themselves (the emulator on a free port, local registries) and use the real
//! Docker engine; a missing prerequisite fails the test with the command that installs it.

mod cli;
mod config;
mod deploy;
mod gitflow;
mod image;
mod lint;
mod local;
mod package;
mod pipeline;
mod push;
mod release;
mod stack;
mod support;
