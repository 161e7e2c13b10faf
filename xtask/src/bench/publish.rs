//! `cargo xtask bench publish`: publishing a release to three regions against one, in one run on
//! one emulator and one set of local registries of the bench's own, and what publishing an
//! unchanged release again moves.
//!
//! Publishing is what `release` does before it deploys: push the built image to every workload's
//! registry (`publish.rs`, in parallel, then the digest check) and package the release
//! (`release_files::package`: every artifact to its region's bucket under SSE-KMS, the manifest to
//! every bucket, the histories). The topology is deployed and the image built once, untimed. Each
//! round then publishes twice, in alternating order: for the first workload only (one region) and
//! for every workload (three regions in the project's topology), each time from empty registries
//! and empty release prefixes (wiped untimed), so every layer and every object really moves. The
//! ratio is the median of the per-round ratios (all regions over one), so a slow moment of the
//! shared machine hits both sides of a round; the goal is at most 1.3. Last, the release is
//! published again unchanged: `repush_bytes` and `reupload_bytes` are what that moves (goal: 0).
//!
//! The peer, measured in the same rounds: the Docker engine alone pushing the same image to one
//! registry and to every region's at once (`docker push` through bollard, no ECR call, no
//! packaging). The engine compresses a layer again for every registry it pushes to, so on a
//! machine with few cores its own ratio is the floor under ours: `engine_ratio` says how much of
//! the ratio is the engine's and how much is publishing's own (ECR calls, packaging, which locally
//! all go to one single-process emulator).
//!
//! The bench wipes registries and buckets, so it runs in a child of its own whose local state
//! (`GBG_LOCAL_DIR`) is `target/bench/publish/local`: the checkout's local stack is never touched.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;
use xshell::{Shell, cmd};

use super::{Emulator, STACKS_IMAGE as IMAGE, median};
use crate::Ctx;
use crate::aws::{Aws, AwsResultExt, Endpoint};
use crate::config::Config;
use crate::docker::Docker;
use crate::local::{daemon, moto, registry};
use crate::output::{Printer, Verbosity};
use crate::project;
use crate::publish;
use crate::release_files::{self, ImageSet, Options};
use crate::site_image::{self, BuiltImage};
use crate::venv::Venv;

/// Arguments of `cargo xtask bench publish`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The topology: its first workload is the one-region case, all of them the N-region case.
    #[arg(long, default_value = "deploy.toml", value_name = "PATH")]
    pub config: PathBuf,
    /// Rounds of (one region, all regions).
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rounds: u32,
    /// Print the figures as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct Figures {
    rounds: u32,
    regions: usize,
    one_region_seconds: Vec<f64>,
    all_regions_seconds: Vec<f64>,
    /// Median of the per-round ratios.
    ratio: f64,
    /// Bytes an all-region publish sent: image layers, and artifacts, manifests and histories.
    all_regions_push_bytes: u64,
    all_regions_upload_bytes: u64,
    /// What publishing the same release again sent.
    repush_bytes: u64,
    reupload_bytes: u64,
    /// The peer: the engine alone pushing to one registry and to all, and the median ratio.
    engine_one_region_seconds: Vec<f64>,
    engine_all_regions_seconds: Vec<f64>,
    engine_ratio: f64,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let source = ctx.root.join(&args.config);
    Config::load(&source)?;
    let dir = project::target_dir().join("bench/publish");
    let local = dir.join("local");
    if daemon::state_dir() != local {
        // Run again in a child whose local stack (registries) is the bench's own: see the module docs.
        let sh = Shell::new()?;
        sh.change_dir(&ctx.root);
        let xtask = std::env::current_exe()?;
        let rounds = args.rounds.to_string();
        let json = args.json.then_some("--json");
        let quiet = (ctx.printer.verbosity() == Verbosity::Quiet).then_some("--quiet");
        let verbose = (ctx.printer.verbosity() == Verbosity::Verbose).then_some("--verbose");
        cmd!(sh, "{xtask} {quiet...} {verbose...} bench publish --config {source} --rounds {rounds} {json...}")
            .env("GBG_LOCAL_DIR", &local)
            .quiet()
            .run()
            .context("bench publish failed (above)")?;
        return Ok(());
    }
    let venv = Venv::ensure(&ctx.printer)?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let emulator = Emulator::start(&venv, &dir)?;
    let result = measure(ctx, &args, &source, &dir, emulator.port).await;
    let _ = registry::stop_all();
    drop(emulator);
    let figures = result?;
    ctx.printer.text(format!(
        "the Docker engine alone (push only): one region median {:.2}s, {} regions median {:.2}s, ratio {:.2}",
        median(&figures.engine_one_region_seconds),
        figures.regions,
        median(&figures.engine_all_regions_seconds),
        figures.engine_ratio
    ));
    ctx.printer.text(format!(
        "one region: median {:.2}s; {} regions: median {:.2}s (sent {} bytes of layers, {} bytes of artifacts); again unchanged: {} + {} bytes",
        median(&figures.one_region_seconds),
        figures.regions,
        median(&figures.all_regions_seconds),
        figures.all_regions_push_bytes,
        figures.all_regions_upload_bytes,
        figures.repush_bytes,
        figures.reupload_bytes
    ));
    if args.json {
        ctx.printer.json(&figures)?;
    }
    println!(
        "bench publish: ratio={:.2} repush_bytes={} reupload_bytes={}",
        figures.ratio, figures.repush_bytes, figures.reupload_bytes
    );
    Ok(())
}

async fn measure(ctx: &Ctx, args: &Args, source: &Path, dir: &Path, port: u16) -> Result<Figures> {
    let (all_path, one_path) = write_configs(source, dir, port)?;
    ctx.printer.status("Deploying", "the topology on the bench's emulator (untimed)");
    let sh = Shell::new()?;
    sh.change_dir(&ctx.root);
    let xtask = std::env::current_exe()?;
    cmd!(sh, "{xtask} --quiet deploy --local --config {all_path} --image {IMAGE}")
        .env("GBG_LOCAL_DIR", dir.join("local"))
        .quiet()
        .run()
        .context("deploying the bench's topology failed")?;

    let all = Config::load(&all_path)?;
    let one = Config::load(&one_path)?;
    let aws = Aws::new(&all, Endpoint::Local(moto::url(port))).await;
    let quiet = Printer::plain(Verbosity::Quiet);
    let quiet_ctx = Ctx { root: ctx.root.clone(), printer: quiet.clone() };
    let built = site_image::build(ctx, &site_image::Options { config: all_path.clone(), dockerfile: None }).await?;
    let docker = Docker::connect().await?;
    let bench = Bench { ctx: &quiet_ctx, progress: &ctx.printer, aws: &aws, docker: &docker, built: &built };

    ctx.printer.status("Measuring", format!("{} rounds of one region against {}", args.rounds, all.regions().len()));
    let (mut one_seconds, mut all_seconds, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let (mut engine_one, mut engine_all, mut engine_ratios) = (Vec::new(), Vec::new(), Vec::new());
    let (mut push_bytes, mut upload_bytes) = (0, 0);
    for round in 0..args.rounds {
        let mut one_time = 0.0;
        let mut all_time = 0.0;
        for side in if round % 2 == 0 { ["one", "all"] } else { ["all", "one"] } {
            let config = if side == "one" { &one } else { &all };
            bench.wipe(config).await?;
            let (seconds, pushed, uploaded) = bench.publish(config, &format!("{side}-{round}")).await?;
            if side == "one" {
                one_time = seconds;
            } else {
                (all_time, push_bytes, upload_bytes) = (seconds, pushed, uploaded);
            }
        }
        let (mut engine_one_time, mut engine_all_time) = (0.0, 0.0);
        for side in if round % 2 == 0 { ["all", "one"] } else { ["one", "all"] } {
            let config = if side == "one" { &one } else { &all };
            bench.wipe(config).await?;
            let seconds = bench.engine_push(config).await?;
            if side == "one" {
                engine_one_time = seconds;
            } else {
                engine_all_time = seconds;
            }
        }
        ctx.printer.detail(
            "Round",
            format!(
                "{round}: one {one_time:.3}s, all {all_time:.3}s; engine alone: one {engine_one_time:.3}s, all {engine_all_time:.3}s"
            ),
        );
        one_seconds.push(one_time);
        all_seconds.push(all_time);
        ratios.push(all_time / one_time);
        engine_one.push(engine_one_time);
        engine_all.push(engine_all_time);
        engine_ratios.push(engine_all_time / engine_one_time);
    }
    // A release to every region, then the same release again: what does the second send?
    bench.wipe(&all).await?;
    bench.publish(&all, "unchanged").await?;
    let (_, repush_bytes, reupload_bytes) = bench.publish(&all, "unchanged").await?;
    // The pushes tagged the image once per registry; the tags go with the bench's registries.
    for registry in registry::known().values() {
        docker.remove_image(&format!("{}/{}:{}", registry.host(), all.app, built.tag)).await?;
    }
    Ok(Figures {
        rounds: args.rounds,
        regions: all.regions().len(),
        ratio: median(&ratios),
        one_region_seconds: one_seconds,
        all_regions_seconds: all_seconds,
        all_regions_push_bytes: push_bytes,
        all_regions_upload_bytes: upload_bytes,
        repush_bytes,
        reupload_bytes,
        engine_one_region_seconds: engine_one,
        engine_all_regions_seconds: engine_all,
        engine_ratio: median(&engine_ratios),
    })
}

struct Bench<'a> {
    ctx: &'a Ctx,
    /// Where per-publish detail lines go (`--verbose`).
    progress: &'a Printer,
    aws: &'a Aws,
    docker: &'a Docker,
    built: &'a BuiltImage,
}

impl Bench<'_> {
    /// Empties the registries and the release prefixes of `config`'s regions, then starts the
    /// registries again: the next publish starts from nothing. Untimed.
    async fn wipe(&self, config: &Config) -> Result<()> {
        registry::stop_all()?;
        let storage = daemon::state_dir().join("registry");
        if storage.exists() {
            std::fs::remove_dir_all(&storage).with_context(|| format!("wiping {}", storage.display()))?;
        }
        for region in config.regions() {
            registry::ensure(&self.ctx.printer, &region).await?;
            let s3 = self.aws.s3(&config.tools.account, &region).await?;
            let bucket = config.bucket_name(&region);
            let listed = s3
                .list_objects_v2()
                .bucket(&bucket)
                .prefix("releases/")
                .send()
                .await
                .aws(&s3)
                .with_context(|| format!("listing s3://{bucket}/releases/"))?;
            for object in listed.contents() {
                if let Some(key) = object.key() {
                    s3.delete_object()
                        .bucket(&bucket)
                        .key(key)
                        .send()
                        .await
                        .aws(&s3)
                        .with_context(|| format!("deleting s3://{bucket}/{key}"))?;
                }
            }
        }
        Ok(())
    }

    /// The peer: the engine pushes the image to `config`'s registries at once, nothing else
    /// (`Docker::push`, as `publish::push` does, without ECR). Returns the seconds taken.
    async fn engine_push(&self, config: &Config) -> Result<f64> {
        let mut hosts = Vec::new();
        for region in config.regions() {
            hosts.push(registry::ensure(&self.ctx.printer, &region).await?.host());
        }
        let (source, tag) = (&self.built.reference, &self.built.tag);
        let targets: Vec<String> = hosts.iter().map(|host| format!("{host}/{}", config.app)).collect();
        let clock = Instant::now();
        futures_util::future::try_join_all(targets.iter().map(|target| self.docker.push(source, target, tag, None)))
            .await?;
        Ok(clock.elapsed().as_secs_f64())
    }

    /// Pushes the image to `config`'s registries and packages a release labelled `version`;
    /// returns the seconds taken and the bytes pushed and uploaded.
    async fn publish(&self, config: &Config, version: &str) -> Result<(f64, u64, u64)> {
        let clock = Instant::now();
        let pushes = release_files::push_everywhere(self.ctx, self.aws, config, self.docker, self.built).await?;
        let digest = publish::same_digest(&pushes)?;
        let references = pushes.iter().map(|push| (push.workload.clone(), push.image_uri.clone())).collect();
        let images = ImageSet { version: version.to_string(), digest, references };
        let pushed_at = clock.elapsed().as_secs_f64();
        let options = Options { out_dir: None, dry_run: false };
        let packaged =
            release_files::package(&self.ctx.root, self.aws, config, &images, &options, &self.ctx.printer).await?;
        let pushed = pushes.iter().map(|push| push.bytes_pushed).sum();
        let seconds = clock.elapsed().as_secs_f64();
        self.progress.detail(
            "Published",
            format!(
                "{version}: push {pushed_at:.3}s, package {:.3}s ({} regions)",
                seconds - pushed_at,
                config.regions().len()
            ),
        );
        Ok((seconds, pushed, packaged.bytes_uploaded))
    }
}

/// The config pointed at the bench's emulator, and the same with its first workload only.
fn write_configs(source: &Path, dir: &Path, port: u16) -> Result<(PathBuf, PathBuf)> {
    let all = super::deploy::write_config(source, dir, port)?;
    let mut document: toml_edit::DocumentMut = std::fs::read_to_string(&all)?.parse()?;
    if let Some(workloads) = document["workloads"].as_array_of_tables_mut() {
        while workloads.len() > 1 {
            workloads.remove(workloads.len() - 1);
        }
    }
    let one = dir.join("deploy-one.toml");
    std::fs::write(&one, document.to_string())?;
    Ok((all, one))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_one_region_config_keeps_the_first_workload() {
        let dir = std::env::temp_dir().join(format!("gbg-bench-publish-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (all, one) = write_configs(&project::root().join("deploy.toml"), &dir, 4999).unwrap();
        let (all, one) = (Config::load(&all).unwrap(), Config::load(&one).unwrap());
        assert_eq!(all.workloads.len(), 3);
        assert_eq!(one.workloads.iter().map(|workload| workload.name.as_str()).collect::<Vec<_>>(), ["india"]);
        assert_eq!((all.local.emulator_port, one.local.emulator_port), (4999, 4999));
        assert_eq!(one.app, all.app);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
