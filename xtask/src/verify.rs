//! `cargo xtask verify --local`: the access proof (`access.rs`) over the calls the pipeline
//! rehearsal recorded, against every policy of the deployed topology rendered from our templates.
//! One row per role, action and resource; a denied one names the role, the call, the resource
//! and the policy that lacks the grant or the statement that denies it, and the exit code is 1.
//!
//! Locally only for now: on AWS, IAM's own simulator (`iam:SimulatePrincipalPolicy`) is the
//! evaluator to use, which this command does not call yet; it says so rather than pretend.

use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::Ctx;
use crate::access::{self, policies::Policies};
use crate::aws::record;
use crate::config::Target;
use crate::output::Exit;

/// Arguments of `cargo xtask verify`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// The recorded calls to prove; default: those of the last `cargo xtask pipeline run --local`.
    #[arg(long, value_name = "FILE")]
    pub calls: Option<PathBuf>,
    /// Print every finding as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    if !args.target.local {
        bail!(
            "`verify` proves against the local stack only so far: pass --local (after `cargo xtask deploy --local` and \
             `cargo xtask pipeline run --local`). On AWS, IAM's own simulator would be the evaluator; it is not wired yet"
        );
    }
    let config = args.target.load(&ctx.root)?;
    let aws = crate::engine::session::connect(ctx, &config, true, false).await?;
    let file = args.calls.unwrap_or_else(|| crate::pipeline::call_log_path(&config));
    let calls = record::read(&file)?;
    if calls.is_empty() {
        bail!(
            "{} holds no recorded calls: run `cargo xtask pipeline run --local` first (it records every call the pipeline's roles make)",
            file.display()
        );
    }
    let policies = Policies::read(&ctx.root, &aws, &config).await?;
    let findings = access::prove(&calls, &config, &policies)?;
    access::report(&ctx.printer, &findings, calls.len(), &file.display().to_string());
    if args.json {
        ctx.printer.json(&findings)?;
    }
    if findings.iter().any(|finding| !finding.allowed) {
        return Err(Exit(1).into());
    }
    Ok(())
}
