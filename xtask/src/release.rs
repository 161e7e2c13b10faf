//! `cargo xtask release`: releases the image blue/green to every workload, wave by wave.
//!
//! - `--via pipeline` (the default on AWS): starts the tools account's pipeline, which builds
//!   main once, pushes, packages and deploys each wave through CodeDeployToECS; followed to its end.
//!   Nothing is built here: the pipeline releases what is committed, not this checkout.
//! - `--via direct` (`--direct`): packages this checkout's pushed image (every regional bucket,
//!   verified), then creates a CodeDeploy deployment per workload, wave by wave, following each
//!   one's lifecycle events and stopping at the first failed wave (`bluegreen.rs`).
//! - `--via site` (the default with `--local`): the rehearsal on this machine: packages into the
//!   emulator's buckets and verifies, then starts the new version beside the running one, checks
//!   it, and moves the published port to it (`bluegreen/site_shift.rs`).
//!
//! Direct and site build this checkout's image once and push it to every workload's registry
//! (ECR; with `--local`, each region's local registry), unless `--image-digest` names an image
//! already pushed; `--dry-run` pushes, packages and deploys nothing, and says what it would do.

use std::path::PathBuf;

use anyhow::{Result, bail};
use serde::Serialize;

use crate::Ctx;
use crate::aws::Aws;
use crate::bluegreen::{self, Follow, PipelineRun, WorkloadDeployment, site_shift};
use crate::cli::{self, Digest};
use crate::config::Config;
use crate::config::Target;
use crate::docker::Docker;
use crate::output::{Exit, Usage, table};
use crate::preflight;
use crate::publish::Pushed;
use crate::release_files::{self, ImageSet, Options, Packaged};
use crate::topology_lock::{self, LockArgs};

/// Arguments of `cargo xtask release`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// How the release reaches the workloads: the pipeline (default on AWS), CodeDeploy directly,
    /// or the local site (default with --local).
    #[arg(long, value_enum)]
    pub via: Option<Via>,
    /// Deploy through CodeDeploy directly, without the pipeline (same as --via direct).
    #[arg(long, conflicts_with = "via")]
    pub direct: bool,
    #[command(flatten)]
    pub image: cli::ImageArgs,
    /// The folder for the pipeline-style artifacts and the manifest.
    #[arg(long, value_name = "DIR", value_parser = cli::out_dir)]
    pub out: Option<PathBuf>,
    /// With --via site: the published port (default: the config's `site_port` under [local]).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    #[command(flatten)]
    pub wait: bluegreen::WaitArgs,
    /// Say what would be released where; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// First verify the deployed topology as `cargo xtask verify` does, and stop (exit 1, or 2
    /// when it cannot run) before changing anything if it fails. Its table goes to stderr.
    #[arg(long)]
    pub verify: bool,
    #[command(flatten)]
    pub lock: LockArgs,
}

/// How a release reaches the workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    Pipeline,
    Direct,
    Site,
}

impl Via {
    /// As `--via` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Pipeline => "pipeline",
            Via::Direct => "direct",
            Via::Site => "site",
        }
    }
}

/// The machine-readable result.
#[derive(Debug, Serialize)]
struct Outcome {
    via: Via,
    /// The pushes of this checkout's image, one per workload (none with --image-digest).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pushes: Vec<Pushed>,
    #[serde(skip_serializing_if = "Option::is_none")]
    package: Option<Packaged>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pipeline: Option<PipelineRun>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    deployments: Vec<WorkloadDeployment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    site: Option<site_shift::Shift>,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let via = match (args.via, args.direct, args.target.local) {
        (Some(via), _, _) => via,
        (None, true, _) => Via::Direct,
        (None, false, true) => Via::Site,
        (None, false, false) => Via::Pipeline,
    };
    check_flags(&args, via)?;
    let follow = args.wait.follow();
    let (config, aws) = crate::aws::connect::target(ctx, &args.target).await?;
    // Before anything is pushed, uploaded or started: the verification only reads.
    if args.verify {
        preflight::run(&ctx.printer, &ctx.root, &aws, &config, false).await?;
    }
    let lock = match args.dry_run {
        true => None,
        false => topology_lock::acquire(&aws, &config, "release", args.lock.wait(), &ctx.printer).await?,
    };
    topology_lock::hold(lock, &ctx.printer, release(ctx, &args, via, follow, &config, &aws)).await
}

/// The release itself, under the topology lock.
async fn release(ctx: &Ctx, args: &Args, via: Via, follow: Follow, config: &Config, aws: &Aws) -> Result<()> {
    let mut outcome =
        Outcome { via, pushes: Vec::new(), package: None, pipeline: None, deployments: Vec::new(), site: None };

    if via == Via::Pipeline {
        if args.dry_run {
            ctx.printer.status(
                "Would start",
                format!("pipeline {} in {}/{}", config.app, config.tools.account, config.tools.region),
            );
        } else {
            let run = bluegreen::start_pipeline(aws, config, follow, &ctx.printer).await?;
            let ok = run.ok;
            if let Some(detail) = &run.detail {
                ctx.printer.note(detail);
            }
            outcome.pipeline = Some(run);
            return finish(ctx, args, &outcome, ok);
        }
        return finish(ctx, args, &outcome, true);
    }

    // Direct and site: this checkout's image, pushed everywhere, packaged into every regional
    // bucket and verified.
    let (images, built) = match (&args.image.image_digest, args.dry_run) {
        (Some(digest), false) if via == Via::Site => return Err(site_takes_no_digest(digest).into()),
        (Some(digest), _) => (ImageSet::in_ecr(config, &args.image.version(&ctx.root)?, digest.as_str())?, None),
        (None, true) => return Err(dry_run_needs_digest().into()),
        (None, false) => {
            let published = release_files::publish_image(ctx, aws, config).await?;
            outcome.pushes = published.pushes;
            (published.images, Some(published.built))
        }
    };
    let out_dir = args.out.clone().unwrap_or_else(release_files::default_out_dir);
    // A dry run leaves the artifact folder alone (`verify-release` reads what was uploaded).
    let options = Options { out_dir: (!args.dry_run).then_some(out_dir), dry_run: args.dry_run };
    let packaged = release_files::package(&ctx.root, aws, config, &images, &options, &ctx.printer).await?;
    if !args.dry_run {
        let checks = release_files::verify(aws, config, &packaged.manifest).await?;
        let failed: Vec<String> = checks
            .iter()
            .filter(|check| !check.ok())
            .map(|check| format!("{} ({}): {}", check.workload, check.region, check.problems.join("; ")))
            .collect();
        if !failed.is_empty() {
            bail!(
                "the uploaded artifacts do not match the manifest, so nothing was deployed:\n  {}",
                failed.join("\n  ")
            );
        }
        ctx.printer.status("Verified", format!("{} artifacts of release {}", checks.len(), packaged.manifest.id));
    }
    let manifest = packaged.manifest.clone();
    outcome.package = Some(packaged);

    let ok = match via {
        Via::Direct => {
            let rows = bluegreen::deploy_waves(aws, config, &manifest, follow, args.dry_run, &ctx.printer).await?;
            print_deployments(ctx, &rows);
            let ok = rows.iter().all(|row| row.ok);
            if let Some(failed) = rows.iter().find(|row| !row.ok) {
                let skipped = rows.iter().filter(|row| row.status == "NOT STARTED").count();
                ctx.printer.error(format!(
                    "release {} stopped at wave {} ({} failed); {skipped} workloads of later waves were not started; fix the cause above and run it again (deployed workloads keep the new version; `cargo xtask rollback <workload>` takes one back)",
                    manifest.id, failed.wave, failed.workload
                ));
            }
            outcome.deployments = rows;
            ok
        }
        Via::Site => {
            let Some(built) = built else {
                ctx.printer.status("Would shift", format!("the local site of {} to {}", config.app, manifest.version));
                return finish(ctx, args, &outcome, true);
            };
            let docker = Docker::connect().await?;
            let spec = site_shift::ShiftSpec {
                app: config.app.clone(),
                image: built.reference.clone(),
                version: built.tag.clone(),
                container_port: config.service.container_port,
                port: args.port.unwrap_or(config.local.site_port),
            };
            outcome.site = Some(site_shift::shift(&docker, &spec, &ctx.printer).await?);
            true
        }
        Via::Pipeline => unreachable!("handled above"),
    };
    finish(ctx, args, &outcome, ok)
}

/// Flag combinations that mean nothing for the chosen `via`, refused before the config's
/// accounts are reached: a flag the release would silently ignore is a release the user did not
/// ask for.
fn check_flags(args: &Args, via: Via) -> Result<(), Usage> {
    if via == Via::Site && !args.target.local {
        return Err(Usage::new(
            "--via site",
            "it rehearses on this machine's Docker engine, not on AWS",
            "add --local (or release to AWS with --via direct or --via pipeline)",
        ));
    }
    if via == Via::Pipeline {
        if let Some(digest) = &args.image.image_digest {
            return Err(Usage::new(
                format!("--image-digest {digest}"),
                "the pipeline builds and releases its branch's own image",
                "release that image with --via direct (or drop --image-digest)",
            ));
        }
        if let Some(out) = &args.out {
            return Err(Usage::new(
                format!("--out {}", out.display()),
                "the pipeline's build writes its own artifacts, in CodeBuild",
                "drop --out (or release with --via direct)",
            ));
        }
    }
    if let Some(port) = args.port
        && via != Via::Site
    {
        return Err(Usage::new(
            format!("--port {port}"),
            format!("only --via site publishes a port, and this release goes --via {}", via.as_str()),
            "drop --port (or add --local, whose default is --via site)",
        ));
    }
    match (&args.image.image_digest, args.dry_run) {
        (Some(digest), false) if via == Via::Site => Err(site_takes_no_digest(digest)),
        (None, true) if via != Via::Pipeline => Err(dry_run_needs_digest()),
        _ => Ok(()),
    }
}

fn site_takes_no_digest(digest: &Digest) -> Usage {
    Usage::new(
        format!("--image-digest {digest}"),
        "--via site runs the image built from this checkout",
        "drop --image-digest (or release that digest with --via direct)",
    )
}

fn dry_run_needs_digest() -> Usage {
    Usage::new(
        "--dry-run",
        "a dry run pushes nothing, so it needs the image",
        "pass --image-digest sha256:... (or run without --dry-run)",
    )
}

fn finish(ctx: &Ctx, args: &Args, outcome: &Outcome, ok: bool) -> Result<()> {
    if args.json {
        ctx.printer.json(outcome)?;
    }
    if !ok {
        return Err(Exit(1).into());
    }
    Ok(())
}

fn print_deployments(ctx: &Ctx, rows: &[WorkloadDeployment]) {
    let mut table_rows =
        vec![["WAVE", "WORKLOAD", "ACCOUNT", "REGION", "DEPLOYMENT", "STATUS"].map(String::from).to_vec()];
    for row in rows {
        table_rows.push(vec![
            row.wave.to_string(),
            row.workload.clone(),
            row.account.clone(),
            row.region.clone(),
            row.deployment_id.clone().unwrap_or_else(|| "-".into()),
            row.status.clone(),
        ]);
    }
    ctx.printer.text(table(&table_rows).trim_end());
    for row in rows.iter().filter(|row| row.ok) {
        if let Some(detail) = &row.detail {
            ctx.printer.note(format!("{}: {detail}", row.workload));
        }
    }
}
