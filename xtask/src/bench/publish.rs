//! `cargo xtask bench publish`: publishing a release to three regions against one, in one run on
//! one emulator of the bench's own, and what an unchanged release costs again.
//!
//! The topology of the config is deployed once (untimed). Each round then packages a new release
//! (a fresh image digest, so every artifact is new) twice, in alternating order: for the first
//! workload only (one region), and for every workload (three regions in the project's topology).
//! Both are `release_files::package`, in process: render, zip, upload each artifact to its
//! region's bucket under SSE-KMS, the manifest to every bucket, the histories. The ratio is the
//! median of the per-round ratios (three regions over one), so a slow moment of the shared machine
//! hits both sides of a round. Uploads to the regions run in parallel, so the goal is a ratio of at
//! most 1.3. Last, one more release is packaged twice: `reupload_bytes` is what that moves
//! (the goal is 0).
//!
//! The push half (`repush_bytes`, and the push's share of the ratio) needs `cargo xtask push`,
//! which is not wired in yet: the line reports `repush_bytes=n/a` until it is.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use xshell::{Shell, cmd};

use crate::Ctx;
use crate::archive::sha256_hex;
use crate::aws::{Aws, Endpoint};
use crate::config::Config;
use crate::local::{daemon, moto};
use crate::output::{Printer, Verbosity};
use crate::project;
use crate::release_files::{self, ImageSet, Options};
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

/// The image the stacks are first deployed with.
const IMAGE: &str = "bench.local/web@sha256:0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Serialize)]
struct Figures {
    rounds: u32,
    regions: usize,
    one_region_seconds: Vec<f64>,
    all_regions_seconds: Vec<f64>,
    /// Median of the per-round ratios.
    ratio: f64,
    /// Bytes the first all-region release uploaded (artifacts, manifests, histories).
    all_regions_bytes: u64,
    /// Bytes packaging the newest release again uploaded.
    reupload_bytes: u64,
    /// Not measured until push is wired in.
    repush_bytes: Option<u64>,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let source = ctx.root.join(&args.config);
    Config::load(&source)?;
    let venv = Venv::ensure(&ctx.printer)?;
    let dir = project::target_dir().join("bench/publish");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let log = dir.join("moto.log");
    let args_list = vec!["-H".to_string(), "127.0.0.1".into(), "-p".into(), port.to_string()];
    let mut emulator = daemon::spawn(&venv.bin("moto_server"), &args_list, &log, &dir.join("moto.pid"))?;
    let result = measure(ctx, &args, &source, &dir, port, &log).await;
    let _ = emulator.kill();
    let _ = emulator.wait();
    let figures = result?;
    ctx.printer.text(format!(
        "one region: median {:.3}s; {} regions: median {:.3}s ({} bytes for a new release); again unchanged: {} bytes",
        median(&figures.one_region_seconds),
        figures.regions,
        median(&figures.all_regions_seconds),
        figures.all_regions_bytes,
        figures.reupload_bytes
    ));
    ctx.printer.note("the push half is not measured yet: `cargo xtask push` is not wired in (repush_bytes=n/a)");
    if args.json {
        ctx.printer.json(&figures)?;
    }
    let repush = figures.repush_bytes.map(|bytes| bytes.to_string()).unwrap_or_else(|| "n/a".into());
    println!(
        "bench publish: ratio={:.2} repush_bytes={repush} reupload_bytes={}",
        figures.ratio, figures.reupload_bytes
    );
    Ok(())
}

async fn measure(ctx: &Ctx, args: &Args, source: &Path, dir: &Path, port: u16, log: &Path) -> Result<Figures> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !moto::probe(port).unwrap_or(false) {
        if Instant::now() > deadline {
            bail!("the bench's emulator did not start; its log is {}", log.display());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
    let version = "bench";
    let publish = async |config: &Config, label: &str| -> Result<(f64, u64)> {
        let digest = format!("sha256:{}", sha256_hex(label.as_bytes()));
        let images = ImageSet::in_ecr(config, version, &digest)?;
        let options = Options { out_dir: None, dry_run: false };
        let clock = Instant::now();
        let packaged = release_files::package(&ctx.root, &aws, config, &images, &options, &quiet).await?;
        Ok((clock.elapsed().as_secs_f64(), packaged.bytes_uploaded))
    };
    // Warm-up: the emulator imports its backends lazily on first use.
    publish(&all, "warm-up").await?;
    ctx.printer.status("Measuring", format!("{} rounds of one region against {}", args.rounds, all.regions().len()));
    let (mut one_seconds, mut all_seconds, mut ratios, mut all_bytes) = (Vec::new(), Vec::new(), Vec::new(), 0);
    for round in 0..args.rounds {
        let (one_time, all_time) = if round % 2 == 0 {
            let one_time = publish(&one, &format!("one-{round}")).await?.0;
            let (all_time, bytes) = publish(&all, &format!("all-{round}")).await?;
            all_bytes = bytes;
            (one_time, all_time)
        } else {
            let (all_time, bytes) = publish(&all, &format!("all-{round}")).await?;
            all_bytes = bytes;
            (publish(&one, &format!("one-{round}")).await?.0, all_time)
        };
        ctx.printer.detail("Round", format!("{round}: one {one_time:.3}s, all {all_time:.3}s"));
        one_seconds.push(one_time);
        all_seconds.push(all_time);
        ratios.push(all_time / one_time);
    }
    // A release, then exactly the same release again: what does the second move?
    publish(&all, "unchanged").await?;
    let (_, reupload_bytes) = publish(&all, "unchanged").await?;
    Ok(Figures {
        rounds: args.rounds,
        regions: all.regions().len(),
        ratio: median(&ratios),
        one_region_seconds: one_seconds,
        all_regions_seconds: all_seconds,
        all_regions_bytes: all_bytes,
        reupload_bytes,
        repush_bytes: None,
    })
}

/// The config pointed at the bench's emulator, and the same with its first workload only.
fn write_configs(source: &Path, dir: &Path, port: u16) -> Result<(PathBuf, PathBuf)> {
    let text = std::fs::read_to_string(source).with_context(|| format!("reading {}", source.display()))?;
    let mut document: toml_edit::DocumentMut = text.parse().with_context(|| format!("parsing {}", source.display()))?;
    document["local"]["emulator_port"] = toml_edit::value(i64::from(port));
    let all = dir.join("deploy.toml");
    std::fs::write(&all, document.to_string())?;
    if let Some(workloads) = document["workloads"].as_array_of_tables_mut() {
        while workloads.len() > 1 {
            workloads.remove(workloads.len() - 1);
        }
    }
    let one = dir.join("deploy-one.toml");
    std::fs::write(&one, document.to_string())?;
    Ok((all, one))
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        length if length % 2 == 1 => sorted[length / 2],
        length => (sorted[length / 2 - 1] + sorted[length / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        for (values, expect) in
            [(vec![], 0.0), (vec![3.0], 3.0), (vec![3.0, 1.0, 2.0], 2.0), (vec![4.0, 1.0, 2.0, 3.0], 2.5)]
        {
            assert_eq!(median(&values), expect, "{values:?}");
        }
    }

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
