//! The gitflow Lambda's package: `bootstrap` built as a static binary for `provided.al2023`
//! (glibc with `crt-static`; `--target` explicit so the flag never reaches build scripts), zipped
//! deterministically under `target/lambda/`, content-addressed by its SHA-256. The deploy plan
//! uploads it to the tools region's artifact bucket and the `gitflow` stack points the function
//! at it; `cargo xtask gitflow build` builds it alone.
//!
//! It builds with the `lambda` profile (release at opt-level 1, no LTO): the function handles a few
//! events a day, and a cold fat-LTO build of the SDK took 12 minutes here.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use xshell::{Shell, cmd};

use crate::Ctx;
use crate::archive::{self, Entry};
use crate::output::Verbosity;
use crate::project;

/// The Rust target of the Lambda: x86_64 Linux, static glibc (`provided.al2023`, `x86_64`).
pub const LAMBDA_TARGET: &str = "x86_64-unknown-linux-gnu";

/// The zipped `bootstrap`, ready to upload.
#[derive(Clone, Debug, Serialize)]
pub struct LambdaPackage {
    /// `target/lambda/gitflow.zip`.
    pub zip_path: PathBuf,
    /// SHA-256 of the zip, lowercase hex.
    pub sha256: String,
    pub zip_size: u64,
    /// The static `bootstrap` inside it.
    pub binary_path: PathBuf,
    pub binary_size: u64,
    /// Content-addressed key in the artifact bucket: `gitflow/<sha256>.zip`. A new build is a new
    /// key, so the stack's `CodeKey` changes and CloudFormation updates the function's code.
    pub s3_key: String,
    pub build_seconds: f64,
}

/// Builds `bootstrap` as a static release binary and zips it deterministically.
pub fn build(ctx: &Ctx) -> Result<LambdaPackage> {
    let started = Instant::now();
    let sh = Shell::new()?;
    sh.change_dir(&ctx.root);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let target = LAMBDA_TARGET;
    let progress = ctx.printer.progress("Building", format!("gitflow Lambda (static release, {target})"));
    // `--target` keeps RUSTFLAGS away from build scripts and proc macros, which must stay dynamic.
    let build = cmd!(sh, "{cargo} build --profile lambda --locked --target {target} -p gitflow --bin bootstrap")
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .quiet();
    if ctx.printer.verbosity() >= Verbosity::Verbose {
        build.run().context("building the gitflow Lambda; run `cargo build -p gitflow` to see the error")?;
    } else {
        let output = build.ignore_status().output().context("running cargo to build the gitflow Lambda")?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            bail!(
                "building the gitflow Lambda failed ({}); cargo said:\n{}\nrerun with --verbose for the whole output",
                output.status,
                tail.join("\n")
            );
        }
    }
    let binary_path = project::target_dir().join(target).join("lambda/bootstrap");
    let binary = std::fs::read(&binary_path).with_context(|| format!("reading {}", binary_path.display()))?;
    let zip_path = project::target_dir().join("lambda/gitflow.zip");
    let sha256 = archive::zip_to_file(&[Entry::executable("bootstrap", binary.clone())], &zip_path)?;
    let zip_size = std::fs::metadata(&zip_path).with_context(|| format!("reading {}", zip_path.display()))?.len();
    let build_seconds = started.elapsed().as_secs_f64();
    progress.finish("Built", format!("gitflow Lambda in {build_seconds:.0} s ({} bytes static)", binary.len()));
    Ok(LambdaPackage {
        s3_key: format!("gitflow/{sha256}.zip"),
        zip_path,
        sha256,
        zip_size,
        binary_path,
        binary_size: binary.len() as u64,
        build_seconds,
    })
}
