//! `cargo xtask package`: builds this checkout's image and pushes it to every workload's registry
//! (or finds it there already under the checkout's tag, or takes an image already pushed,
//! `--image-digest`), then renders every workload's `taskdef.json`, `appspec.yaml` and
//! `imageDetail.json`, zips them deterministically, uploads each zip to its region's artifact
//! bucket (SSE-KMS under that region's key, content-addressed, never twice), writes the release
//! manifest beside them and records the release in each workload's history
//! (`release_files.rs`). It also writes the folder the pipeline's build action exports
//! (`<workload>/taskdef.json`, `<workload>/appspec.yaml`, `<workload>/imageDetail.json`,
//! `release-manifest.json`). `--dry-run` renders and compares with the buckets, uploading nothing.

use std::path::PathBuf;

use anyhow::Result;

use crate::Ctx;
use crate::aws::Principal;
use crate::cli;
use crate::config::Target;
use crate::output::Usage;
use crate::release_files::{self, ImageSet, Options};

/// Arguments of `cargo xtask package`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub image: cli::ImageArgs,
    /// The folder the pipeline's build action exports (`<workload>/taskdef.json`, ...).
    #[arg(long, value_name = "DIR", value_parser = cli::out_dir)]
    pub out: Option<PathBuf>,
    /// Render, zip and compare with the buckets; upload nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the release manifest and what was uploaded as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Act as the pipeline's build does (what `cargo xtask ci build` passes): with the credentials
    /// given (CodeBuild's service role), in the tools account only, pushing with the build role's
    /// own ECR token.
    #[arg(long)]
    pub as_build: bool,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    if args.dry_run && args.image.image_digest.is_none() {
        return Err(Usage::new(
            "--dry-run",
            "a dry run pushes nothing, so it needs the image",
            "pass --image-digest sha256:... (or run without --dry-run)",
        )
        .into());
    }
    let principal = if args.as_build { Principal::Build } else { Principal::Operator };
    let (config, aws) = crate::aws::connect::target_as(ctx, &args.target, principal).await?;
    let images = match &args.image.image_digest {
        Some(digest) => ImageSet::in_ecr(&config, &args.image.version(&ctx.root)?, digest.as_str())?,
        None => release_files::checkout_image(ctx, &aws, &config).await?,
    };
    // A dry run leaves the artifact folder alone: what it holds was uploaded, and `verify-release`
    // reads it.
    let out_dir = args.out.unwrap_or_else(release_files::default_out_dir);
    let options = Options { out_dir: (!args.dry_run).then(|| out_dir.clone()), dry_run: args.dry_run };
    let packaged = release_files::package(&ctx.root, &aws, &config, &images, &options, &ctx.printer).await?;
    if !args.dry_run {
        ctx.printer.status("Wrote", format!("{} (the pipeline's build artifact)", out_dir.display()));
    }
    if args.json {
        ctx.printer.json(&packaged)?;
    }
    Ok(())
}
