//! `cargo xtask image`: builds the site's static binary and its `FROM scratch` image
//! (`site_image.rs`), tagged `<app>:<commit>` (plus a content hash for a dirty tree), and prints
//! its id, tag and size.

use std::path::PathBuf;

use anyhow::Result;

use crate::Ctx;
use crate::cli;
use crate::site_image::{Options, build, human_bytes};

/// Arguments of `cargo xtask image`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The topology file (its `app` names the image).
    #[arg(long, default_value = "deploy.toml", value_name = "PATH")]
    pub config: PathBuf,
    /// Build with this Dockerfile instead of the project's (absolute, or relative to the project
    /// root).
    #[arg(long, value_name = "PATH", value_parser = cli::project_path(true, "name an existing Dockerfile"))]
    pub dockerfile: Option<PathBuf>,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let options = Options { config: args.config, dockerfile: args.dockerfile };
    let image = build(ctx, &options).await?;
    ctx.printer.status(
        "Image",
        format!(
            "{} id {} size {} ({} bytes)",
            ctx.printer.bold(&image.reference),
            image.id,
            human_bytes(image.size),
            image.size
        ),
    );
    if args.json {
        ctx.printer.json(&image)?;
    }
    Ok(())
}
