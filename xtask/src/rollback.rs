//! `cargo xtask rollback WORKLOAD`: redeploys a workload's previous release from its manifest.
//!
//! The workload's history (in its region's artifact bucket, `release_files/manifest.rs`) names
//! the current release and the one before it; the previous release's artifact is downloaded,
//! checked against its manifest, and deployed through CodeDeploy (`--via direct`, the default: the
//! pipeline always releases main's head, so it cannot go back) or, with `--local`, shifted onto
//! the local site (`--via site`, the image `<app>:<version>` must still be in the engine). Once it
//! is deployed, the current release is marked rolled back, so a second rollback goes one further.

use anyhow::{Result, bail};
use serde::Serialize;

use crate::Ctx;
use crate::aws::Aws;
use crate::bluegreen::{self, WorkloadDeployment, site_shift};
use crate::cli;
use crate::config::{Config, Target, Workload};
use crate::docker::Docker;
use crate::output::{Exit, Usage};
use crate::release_files::{self, manifest};
use crate::topology_lock::{self, LockArgs};

/// Arguments of `cargo xtask rollback`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The workload to roll back (its `name` in the config).
    pub workload: String,
    #[command(flatten)]
    pub target: Target,
    /// Through CodeDeploy (default) or, with --local, onto the local site (default with --local).
    #[arg(long, value_enum)]
    pub via: Option<Via>,
    /// With --via site: the published port (default: the config's `site_port` under [local]).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    #[command(flatten)]
    pub wait: bluegreen::WaitArgs,
    /// Say which release would be redeployed; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    Direct,
    Site,
}

#[derive(Debug, Serialize)]
struct Outcome {
    workload: String,
    from: String,
    to: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    deployment: Option<WorkloadDeployment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    site: Option<site_shift::Shift>,
    dry_run: bool,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let via = args.via.unwrap_or(if args.target.local { Via::Site } else { Via::Direct });
    if via == Via::Site && !args.target.local {
        return Err(Usage::new("--via site", "it rolls back the local site", "add --local").into());
    }
    if let Some(port) = args.port
        && via != Via::Site
    {
        return Err(Usage::new(
            format!("--port {port}"),
            "only --via site publishes a port, and this rollback goes through CodeDeploy",
            "drop --port (or add --local, whose default is --via site)",
        )
        .into());
    }
    // The workload is checked against the config before any account is reached.
    let config = args.target.load(&ctx.root)?;
    let workload = cli::workload(&config, "workload", &args.workload)?;
    let aws = crate::aws::connect(ctx, &config, args.target.local, false).await?;
    // The history is read, a deployment made and the history written back: under the topology
    // lock, so a release or another rollback cannot interleave.
    let lock = match args.dry_run {
        true => None,
        false => topology_lock::acquire(&aws, &config, "rollback", args.lock.wait(), &ctx.printer).await?,
    };
    topology_lock::hold(lock, &ctx.printer, roll_back(ctx, &args, via, &config, workload, &aws)).await
}

/// The rollback itself, under the topology lock.
async fn roll_back(ctx: &Ctx, args: &Args, via: Via, config: &Config, workload: &Workload, aws: &Aws) -> Result<()> {
    let (mut history, current, previous) = release_files::releases_of(aws, config, workload).await?;
    let Some(current) = current else {
        bail!("workload {} has no release yet; `cargo xtask release` makes one", workload.name);
    };
    let Some(previous) = previous else {
        bail!(
            "workload {} has only release {} ({}), nothing earlier to go back to",
            workload.name,
            current.id,
            current.version
        );
    };
    let Some(artifact) = previous.artifact(&workload.name) else {
        bail!("release {} has no artifact for workload {}", previous.id, workload.name);
    };
    ctx.printer.status(
        "Rolling back",
        format!(
            "{} from {} ({}) to {} ({})",
            workload.name, current.id, current.version, previous.id, previous.version
        ),
    );
    let mut outcome = Outcome {
        workload: workload.name.clone(),
        from: current.id.clone(),
        to: previous.id.clone(),
        deployment: None,
        site: None,
        dry_run: args.dry_run,
    };
    let (ok, done) = match via {
        Via::Direct => {
            let follow = args.wait.follow();
            let deployment = bluegreen::deploy_workload(
                aws,
                config,
                workload,
                workload.wave,
                &previous,
                artifact,
                follow,
                args.dry_run,
                &ctx.printer,
            )
            .await?;
            let ok = deployment.ok;
            match (&deployment.ok, &deployment.detail) {
                (true, Some(detail)) => ctx.printer.note(detail),
                (false, detail) => ctx.printer.error(format!(
                    "the rollback of {} ended {}: {}",
                    workload.name,
                    deployment.status,
                    detail.as_deref().unwrap_or("no detail")
                )),
                _ => {}
            }
            // Only a deployment followed to its end changes the history (on the emulator, to what
            // it records); one not followed (--no-wait) may still fail and leave the current
            // release running.
            let done = follow.wait;
            outcome.deployment = Some(deployment);
            (ok, done)
        }
        Via::Site => {
            // Fetching checks the previous artifact is still intact before anything moves.
            release_files::fetch_artifact(aws, config, artifact).await?;
            let image = format!("{}:{}", config.app, previous.version);
            let docker = Docker::connect().await?;
            if docker.image(&image).await?.is_none() {
                bail!(
                    "the previous version's image {image} is no longer in the Docker engine; rebuild it at that commit with `cargo xtask image`"
                );
            }
            if args.dry_run {
                ctx.printer.status("Would shift", format!("the local site of {} to {image}", config.app));
            } else {
                let spec = site_shift::ShiftSpec {
                    app: config.app.clone(),
                    image,
                    version: previous.version.clone(),
                    container_port: config.service.container_port,
                    port: args.port.unwrap_or(config.local.site_port),
                };
                outcome.site = Some(site_shift::shift(&docker, &spec, &ctx.printer).await?);
            }
            (true, true)
        }
    };
    if ok && !done && !args.dry_run {
        ctx.printer.note(format!(
            "the history still names release {} as current: the deployment was not followed to its end (--no-wait); once it has succeeded, record it with `cargo xtask rollback {}` again",
            current.id, workload.name
        ));
    }
    if ok && done && !args.dry_run {
        // The current release is undone: the next rollback goes one further back.
        history.roll_back();
        let (s3, bucket) = release_files::regional_bucket(aws, config, workload).await?;
        let key = manifest::history_key(&workload.name);
        manifest::put_object(&s3, &bucket, &key, history.to_bytes(), &artifact.kms_key_arn).await?;
        ctx.printer
            .status("Rolled back", format!("{} to release {} ({})", workload.name, previous.id, previous.version));
    }
    if args.json {
        ctx.printer.json(&outcome)?;
    }
    if !ok {
        return Err(Exit(1).into());
    }
    Ok(())
}
