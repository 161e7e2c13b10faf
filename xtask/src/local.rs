//! `cargo xtask local`: not built yet (skeleton). Holds the pieces of the local stack.

pub mod daemon;
pub mod moto;

use anyhow::{Result, bail};

use crate::Ctx;

/// Arguments of `cargo xtask local`.
#[derive(clap::Args)]
pub struct Args {}

pub async fn run(_ctx: &Ctx, _args: Args) -> Result<()> {
    bail!("`cargo xtask local` is not built yet")
}
