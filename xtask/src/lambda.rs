//! The gitflow Lambda's package: `bootstrap` built as a static binary for `provided.al2023`
//! (glibc with `crt-static`; `--target` explicit so the flag never reaches build scripts), zipped
//! deterministically under `target/lambda/`, content-addressed by its SHA-256. The deploy plan
//! uploads it to the tools region's artifact bucket and the `gitflow` stack points the function
//! at it; `cargo xtask gitflow build` builds it alone.
//!
//! It builds with the `lambda` profile (release at opt-level 1, no LTO): the function handles a few
//! events a day, and a cold fat-LTO build of the SDK took 12 minutes here.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use xshell::Shell;

use crate::Ctx;
use crate::archive::{self, Entry};
use crate::output::Verbosity;
use crate::{project, site_image};

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
    let target = site_image::TARGET;
    let progress = ctx.printer.progress("Building", format!("gitflow Lambda (static release, {target})"));
    // Built like the site: the same checkout gives the same zip, so the same content-addressed key.
    let build = site_image::static_build(
        &sh,
        &ctx.root,
        &["--profile", "lambda", "--locked", "-p", "gitflow", "--bin", "bootstrap"],
    )
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
    let zip_path = project::target_dir().join("lambda/gitflow.zip");
    let (sha256, binary_size) = zip_once(&binary_path, &zip_path)?;
    let zip_size = std::fs::metadata(&zip_path).with_context(|| format!("reading {}", zip_path.display()))?.len();
    let build_seconds = started.elapsed().as_secs_f64();
    progress.finish("Built", format!("gitflow Lambda in {build_seconds:.0} s ({binary_size} bytes static)"));
    Ok(LambdaPackage {
        s3_key: format!("gitflow/{sha256}.zip"),
        zip_path,
        sha256,
        zip_size,
        binary_path,
        binary_size,
        build_seconds,
    })
}

/// What the last zip was made from, kept beside it: `<zip>.json`.
#[derive(serde::Serialize, serde::Deserialize, PartialEq, Eq)]
struct ZipSource {
    binary_bytes: u64,
    binary_modified_nanos: u128,
    zip_bytes: u64,
    zip_sha256: String,
}

/// Zips `binary` into `zip_path` unless the zip there was made from this very build (same size
/// and modification time: cargo relinks on every change): deflating the 15 MB binary takes
/// seconds in the xtask's debug build, and every deploy asks for the zip. Returns the zip's
/// SHA-256 and the binary's size.
fn zip_once(binary_path: &Path, zip_path: &Path) -> Result<(String, u64)> {
    let metadata = std::fs::metadata(binary_path).with_context(|| format!("reading {}", binary_path.display()))?;
    let modified = metadata.modified().ok().and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok());
    let record_path = zip_path.with_extension("zip.json");
    let zip_bytes = std::fs::metadata(zip_path).map(|zip| zip.len()).unwrap_or(0);
    let current = |zip_bytes: u64, zip_sha256: String| ZipSource {
        binary_bytes: metadata.len(),
        binary_modified_nanos: modified.map(|since| since.as_nanos()).unwrap_or(0),
        zip_bytes,
        zip_sha256,
    };
    if let Some(record) = std::fs::read(&record_path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<ZipSource>(&bytes).ok())
        .filter(|record| modified.is_some() && *record == current(zip_bytes, record.zip_sha256.clone()))
    {
        return Ok((record.zip_sha256, metadata.len()));
    }
    let binary = std::fs::read(binary_path).with_context(|| format!("reading {}", binary_path.display()))?;
    let sha256 = archive::zip_to_file(&[Entry::executable("bootstrap", binary)], zip_path)?;
    let zip_bytes = std::fs::metadata(zip_path).with_context(|| format!("reading {}", zip_path.display()))?.len();
    std::fs::write(&record_path, serde_json::to_vec(&current(zip_bytes, sha256.clone()))?)
        .with_context(|| format!("writing {}", record_path.display()))?;
    Ok((sha256, metadata.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_zip_is_made_once_per_build_of_the_binary() {
        let dir = std::env::temp_dir().join(format!("gbg-lambda-zip-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (binary, zip) = (dir.join("bootstrap"), dir.join("gitflow.zip"));
        std::fs::write(&binary, b"first build").unwrap();
        let (first, size) = zip_once(&binary, &zip).unwrap();
        assert_eq!(size, 11);
        assert_eq!(first, archive::sha256_file(&zip).unwrap());
        // Unchanged binary: the zip is not written again.
        let written = std::fs::metadata(&zip).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(zip_once(&binary, &zip).unwrap().0, first);
        assert_eq!(std::fs::metadata(&zip).unwrap().modified().unwrap(), written);
        // A new build (cargo relinks: new contents, new modification time) makes a new zip.
        std::fs::write(&binary, b"second build!").unwrap();
        let (second, _) = zip_once(&binary, &zip).unwrap();
        assert_ne!(second, first);
        assert_eq!(second, archive::sha256_file(&zip).unwrap());
        // A zip that is gone or was replaced is made again.
        std::fs::write(&zip, b"tampered").unwrap();
        assert_eq!(zip_once(&binary, &zip).unwrap().0, second);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
