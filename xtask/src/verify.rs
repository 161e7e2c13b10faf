//! `cargo xtask verify`: is the deployed topology what it should be, before a release relies on
//! it? Read-only; exit 0 when everything holds, 1 when a call would be denied or a check failed,
//! 2 when the verification itself could not run (like `plan`).
//!
//! - On AWS (`preflight.rs`): every call of the access map through IAM's own evaluator
//!   (`iam:SimulatePrincipalPolicy`) with the resources' live policies, every service trust, and
//!   the live checks: the key replicas, the bucket and key policies, the CodeDeploy groups, the
//!   pipeline, the running image in every registry.
//! - Locally (`--local`): the access proof (`access.rs`) over the calls the pipeline rehearsal
//!   recorded, against every policy of the deployed topology rendered from our templates: one
//!   row per role, action and resource, a denied one naming the role, the call, the resource and
//!   the policy that lacks the grant or the statement that denies it. moto's IAM evaluates
//!   nothing, so there our evaluator is the proof; then the live checks the emulator can answer,
//!   each one it cannot shown as an emulator gap.

use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;

use crate::Ctx;
use crate::access::{self, Finding, policies::Policies};
use crate::aws::error::one_line;
use crate::aws::record;
use crate::cli;
use crate::config::Target;
use crate::output::Exit;
use crate::preflight::{self, Report};

/// Arguments of `cargo xtask verify`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// With --local: the recorded calls to prove; default: those of the last `cargo xtask
    /// pipeline run --local`.
    #[arg(
        long,
        value_name = "FILE",
        requires = "local",
        value_parser = cli::existing_file("`GBG_CALL_LOG=FILE cargo xtask deploy --local` records one")
    )]
    pub calls: Option<PathBuf>,
    /// Print every finding and check as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// The local result on stdout with `--json`.
#[derive(Serialize)]
struct Local<'a> {
    /// The access proof of the recorded calls.
    findings: &'a [Finding],
    /// The access proof of every call of the access map.
    map: &'a [Finding],
    /// The live checks (`None` when they could not run).
    #[serde(skip_serializing_if = "Option::is_none")]
    preflight: Option<&'a Report>,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let config = args.target.load(&ctx.root)?;
    if !args.target.local {
        let aws = match crate::aws::connect(ctx, &config, false, true).await {
            Ok(aws) => aws,
            Err(error) => {
                ctx.printer.error(one_line(&error));
                return Err(Exit(2).into());
            }
        };
        return preflight::run(&ctx.printer, &ctx.root, &aws, &config, args.json).await;
    }
    let aws = crate::aws::connect(ctx, &config, true, false).await?;
    let policies = Policies::read(&ctx.root, &aws, &config).await?;
    // The recorded calls, if any: right after `deploy --local` there are none yet, and the map is
    // still proven; the code's own calls need a rehearsal (or `--calls`).
    let default_log = crate::pipeline::call_log_path(&config);
    let file = args.calls.clone().unwrap_or_else(|| default_log.clone());
    let calls = if args.calls.is_none() && !file.exists() { Vec::new() } else { record::read(&file)? };
    let findings = if calls.is_empty() {
        ctx.printer.note(format!(
            "no recorded calls in {}: the access map is proven below, the calls our code makes are not; run \
             `cargo xtask pipeline run --local` to record and prove them",
            file.display()
        ));
        Vec::new()
    } else {
        let findings = access::prove(&calls, &config, &policies)?;
        access::report(&ctx.printer, &findings, calls.len(), &file.display().to_string());
        findings
    };
    // Every call of the access map, the AWS services' own included, proven the same way.
    let map = access::prove_map(&access::map::entries(&config, &policies)?, &policies)?;
    access::report_map(&ctx.printer, &map);
    let denied = findings.iter().chain(&map).any(|finding| !finding.allowed);
    let checks = preflight::verify_with(&ctx.printer, &aws, &config, &policies).await;
    if let Ok(report) = &checks {
        preflight::print(&ctx.printer, report);
    }
    if args.json {
        ctx.printer.json(&Local { findings: &findings, map: &map, preflight: checks.as_ref().ok() })?;
    }
    match checks {
        // A denial the proof found is a definite answer: it decides the exit code even when the
        // live checks could not run.
        Err(error) => {
            ctx.printer.error(one_line(&error));
            ctx.printer.error("the live checks could not run");
            Err(Exit(if denied { 1 } else { 2 }).into())
        }
        Ok(_) if denied => Err(Exit(1).into()),
        Ok(report) => report.exit(),
    }
}
