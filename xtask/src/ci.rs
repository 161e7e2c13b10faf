//! `cargo xtask ci`: not built yet (skeleton).

use anyhow::{Result, bail};

use crate::Ctx;

/// Arguments of `cargo xtask ci`.
#[derive(clap::Args)]
pub struct Args {}

pub async fn run(_ctx: &Ctx, _args: Args) -> Result<()> {
    bail!("`cargo xtask ci` is not built yet")
}
