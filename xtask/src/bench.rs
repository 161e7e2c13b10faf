//! `cargo xtask bench`: not built yet (skeleton).

use anyhow::{Result, bail};

use crate::Ctx;

/// Arguments of `cargo xtask bench`.
#[derive(clap::Args)]
pub struct Args {}

pub async fn run(_ctx: &Ctx, _args: Args) -> Result<()> {
    bail!("`cargo xtask bench` is not built yet")
}
