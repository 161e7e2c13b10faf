//! The library behind `cargo xtask`: one module per subcommand, plus the cross-cutting pieces
//! (config, AWS access, Docker, archives, output, the local stack). `main.rs` parses the command
//! line and dispatches here; the integration tests in `tests/it` drive the same code.

pub mod access;
pub mod archive;
pub mod artifacts;
pub mod aws;
pub mod bench;
pub mod bluegreen;
pub mod ci;
pub mod cli;
pub mod config;
pub mod config_check;
pub mod deploy;
pub mod destroy;
pub mod docker;
pub mod engine;
pub mod gitflow;
pub mod http;
pub mod image;
pub mod lambda;
pub mod lint;
pub mod local;
pub mod lock;
pub mod output;
pub mod package;
pub mod pipeline;
pub mod plan;
pub mod preflight;
pub mod project;
pub mod publish;
pub mod push;
pub mod release;
pub mod release_files;
pub mod rollback;
pub mod site_image;
pub mod status;
pub mod template;
pub mod test;
pub mod tidy;
pub mod tools;
pub mod topology_lock;
pub mod venv;
pub mod verify;
pub mod verify_release;

use std::path::PathBuf;

use crate::output::Printer;

/// What every subcommand receives: the project root and the printer.
pub struct Ctx {
    pub root: PathBuf,
    pub printer: Printer,
}
