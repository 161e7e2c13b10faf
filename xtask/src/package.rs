//! `cargo xtask package`: not built yet (skeleton).

use anyhow::{Result, bail};

use crate::Ctx;

/// Arguments of `cargo xtask package`.
#[derive(clap::Args)]
pub struct Args {}

pub async fn run(_ctx: &Ctx, _args: Args) -> Result<()> {
    bail!("`cargo xtask package` is not built yet")
}
