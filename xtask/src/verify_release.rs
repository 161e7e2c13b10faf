//! `cargo xtask verify-release`: downloads every artifact of a release and checks it against the
//! manifest: the bytes' SHA-256, S3's stored SHA-256 checksum, the size, SSE-KMS under the key the
//! manifest names, and that the documents inside deploy the manifest's image
//! (`release_files::verify`). Prints one row per artifact and exits 1 when anything differs.
//!
//! The manifest is the one `package` last wrote here, another file (`--manifest`), or a release
//! id read from the tools region's bucket (`--release`).

use std::path::PathBuf;

use anyhow::Result;

use crate::Ctx;
use crate::aws::Principal;
use crate::cli::{self, ReleaseId};
use crate::config::Target;
use crate::output::{Exit, table};
use crate::release_files::{self, manifest};

/// Arguments of `cargo xtask verify-release`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// The release manifest to check; default: the one `cargo xtask package` last wrote
    /// (target/release/artifact/release-manifest.json).
    #[arg(
        long,
        value_name = "PATH",
        conflicts_with = "release",
        value_parser = cli::existing_file("`cargo xtask package` writes it (or pass --release ID)")
    )]
    pub manifest: Option<PathBuf>,
    /// A release id (16 hex digits): its manifest is read from the tools region's artifact bucket.
    #[arg(long, value_name = "ID")]
    pub release: Option<ReleaseId>,
    /// Print every check as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Act as the pipeline's build does (what `cargo xtask ci build` passes): with the credentials
    /// given, in the tools account only.
    #[arg(long)]
    pub as_build: bool,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let principal = if args.as_build { Principal::Build } else { Principal::Operator };
    let (config, aws) = crate::aws::connect::target_as(ctx, &args.target, principal).await?;
    let manifest = match (&args.release, &args.manifest) {
        (Some(id), _) => {
            let region = &config.tools.region;
            let s3 = aws.s3(&config.tools.account, region).await?;
            manifest::load_manifest(&s3, &config.bucket_name(region), id.as_str()).await?
        }
        (None, Some(path)) => release_files::read_manifest_file(path)?,
        (None, None) => {
            release_files::read_manifest_file(&release_files::default_out_dir().join(release_files::MANIFEST_FILE))?
        }
    };
    let checks = release_files::verify(&aws, &config, &manifest).await?;
    let mut rows = vec![["WORKLOAD", "REGION", "KEY", "SHA-256", "ENCRYPTION", "RESULT"].map(String::from).to_vec()];
    for check in &checks {
        rows.push(vec![
            check.workload.clone(),
            check.region.clone(),
            check.key.clone(),
            check
                .actual_sha256
                .as_deref()
                .map(|sha| sha[..16.min(sha.len())].to_string())
                .unwrap_or_else(|| "-".into()),
            match (&check.encryption, &check.kms_key) {
                (Some(sse), Some(key)) => format!("{sse} {key}"),
                (Some(sse), None) => sse.clone(),
                _ => "-".into(),
            },
            if check.ok() { "ok".into() } else { "MISMATCH".into() },
        ]);
    }
    ctx.printer.text(table(&rows).trim_end());
    if args.json {
        ctx.printer.json(&serde_json::json!({ "release": manifest.id, "checks": checks }))?;
    }
    let failed: Vec<_> = checks.iter().filter(|check| !check.ok()).collect();
    for check in &failed {
        ctx.printer.error(format!("{} ({}): {}", check.workload, check.region, check.problems.join("; ")));
    }
    if !failed.is_empty() {
        ctx.printer.error(format!(
            "release {}: {} of {} artifacts do not match the manifest; do not deploy it: run `cargo xtask package` again",
            manifest.id,
            failed.len(),
            checks.len()
        ));
        return Err(Exit(1).into());
    }
    ctx.printer.status(
        "Verified",
        format!(
            "release {} ({}): {} artifacts match, SSE-KMS under their region's key",
            manifest.id,
            manifest.version,
            checks.len()
        ),
    );
    Ok(())
}
