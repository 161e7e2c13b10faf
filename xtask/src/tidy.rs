//! `cargo xtask tidy`: not built yet (skeleton).

use anyhow::{Result, bail};

use crate::Ctx;

/// Arguments of `cargo xtask tidy`.
#[derive(clap::Args)]
pub struct Args {}

pub async fn run(_ctx: &Ctx, _args: Args) -> Result<()> {
    bail!("`cargo xtask tidy` is not built yet")
}
