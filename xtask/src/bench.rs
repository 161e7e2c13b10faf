//! `cargo xtask bench` (interim: only `deploy`).

pub mod deploy;

use anyhow::Result;

use crate::Ctx;

/// Arguments of `cargo xtask bench`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// `deploy --local` against the original runbook replayed on the same emulator.
    Deploy(deploy::Args),
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    match args.command {
        Command::Deploy(args) => deploy::run(ctx, args).await,
    }
}
