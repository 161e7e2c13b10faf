//! `cargo xtask bench`: measurements side by side with a peer, in one run on this machine, so the
//! ratio means something even where absolute numbers do not.
//!
//! - `bench app`: the site against nginx serving the same page (`bench/app.rs`);
//! - `bench deploy`: `cargo xtask deploy --local` against the original runbook on the emulator;
//! - `bench publish`: pushes and uploads to N regions against one.

pub mod app;
pub mod deploy;
pub mod publish;

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
    /// The site against nginx serving the same page: requests/s, latency, memory, image size,
    /// container start.
    App(app::Args),
    /// `deploy --local` against the original runbook replayed on the same emulator.
    Deploy(deploy::Args),
    /// Publishing a release to N regions against one, and an unchanged release again.
    Publish(publish::Args),
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    match args.command {
        Command::App(args) => app::run(ctx, args).await,
        Command::Deploy(args) => deploy::run(ctx, args).await,
        Command::Publish(args) => publish::run(ctx, args).await,
    }
}
