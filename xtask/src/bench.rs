//! `cargo xtask bench`: measurements side by side with a peer, in one run on this machine, so the
//! ratio means something even where absolute numbers do not.
//!
//! - `bench app`: the site against nginx serving the same page (`bench/app.rs`);
//! - `bench deploy`: `cargo xtask deploy --local` against the original runbook on the emulator;
//! - `bench publish`: pushes and uploads to N regions against one.

pub mod app;
pub mod deploy;
pub mod publish;

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::Ctx;
pub use crate::local::site::free_port;
use crate::local::{daemon, moto};
use crate::venv::Venv;

/// The image the benches' stacks are deployed with: the stacks need a digest-pinned reference,
/// and no bench runs tasks.
pub const STACKS_IMAGE: &str =
    "bench.local/web@sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// Arguments of `cargo xtask bench`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// The site against nginx serving the same page: requests/s, latency, memory, image size,
    /// container start.
    App(app::Args),
    /// `deploy --local` against the original runbook replayed on the same emulator.
    Deploy(deploy::Args),
    /// Publishing a release to N regions against one, and an unchanged release again.
    Publish(publish::Args),
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    match args.command {
        Command::App(args) => app::run(ctx, args).await,
        Command::Deploy(args) => deploy::run(ctx, args).await,
        Command::Publish(args) => publish::run(ctx, args).await,
    }
}

/// A bench's own emulator, on a free port, logging to `<dir>/moto.log`; stopped when dropped.
pub struct Emulator {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Emulator {
    /// Starts it with an empty log (the deploy bench counts API calls in it) and waits until it
    /// answers.
    pub fn start(venv: &Venv, dir: &Path) -> Result<Emulator> {
        let port = free_port()?;
        let log = dir.join("moto.log");
        let _ = std::fs::remove_file(&log);
        let args = ["-H".to_string(), "127.0.0.1".into(), "-p".into(), port.to_string()];
        let child = daemon::spawn(&venv.bin("moto_server"), &args, &log, &dir.join("moto.pid"))?;
        let mut emulator = Emulator { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !moto::probe(port).unwrap_or(false) {
            if let Some(status) = emulator.child.try_wait()? {
                bail!("the bench's emulator exited at start ({status}); its log is {}", emulator.log.display());
            }
            if Instant::now() > deadline {
                bail!("the bench's emulator did not answer within 30 s; its log is {}", emulator.log.display());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(emulator)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The median of the finite values; NaN when there is none.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|value| value.is_finite()).collect();
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 1 { sorted[middle] } else { (sorted[middle - 1] + sorted[middle]) / 2.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_skip_what_is_not_a_number() {
        for (values, expect) in
            [(vec![3.0], 3.0), (vec![3.0, 1.0, 2.0], 2.0), (vec![4.0, 1.0, 2.0, 3.0], 2.5), (vec![f64::NAN, 5.0], 5.0)]
        {
            assert_eq!(median(&values), expect, "{values:?}");
        }
        assert!(median(&[]).is_nan());
    }
}
