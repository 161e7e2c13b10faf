//! The pre-flight verification of a deployed topology (`cargo xtask verify`, and `deploy
//! --verify` / `release --verify`), read-only: every Get, Describe, List or Simulate call, never
//! a change.
//!
//! - `simulate.rs`: every call of the access map (`access/map.rs`) that one of our roles makes,
//!   through IAM's own evaluator (`iam:SimulatePrincipalPolicy`) for the role's side and the
//!   resource's live policy for the other; the service principals' calls (a trust policy naming
//!   `codebuild.amazonaws.com`) through our evaluator over the live policy, since IAM's simulator
//!   cannot simulate a service principal;
//! - `checks.rs`: what only the real accounts can say: a replica of the multi-Region key with the
//!   primary's `mrk-` id in every region, the bucket and key policies in place as rendered, the
//!   CodeDeploy group of every workload and the pipeline present, the running image's digest in
//!   every workload registry.
//!
//! Locally the emulator answers some of these and not others; what it cannot answer is declared
//! once, in [`emulator_gap`], and printed as such: never as passed, never as failed.
//!
//! This module is not a subcommand: `verify.rs`, `deploy.rs` and `release.rs` all call it.

pub mod checks;
pub mod simulate;

use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::access::map::{self, Entry};
use crate::access::policies::Policies;
use crate::aws::Aws;
use crate::aws::error::one_line;
use crate::config::Config;
use crate::output::{Exit, Printer, table};

/// Verifies `config`'s deployed topology, prints the table (and with `json` the report on
/// stdout), and fails with exit 1 when a check failed, exit 2 when the verification itself could
/// not run (AWS unreachable, credentials, a stack missing).
pub async fn run(printer: &Printer, root: &Path, aws: &Aws, config: &Config, json: bool) -> Result<()> {
    let report = match verify(printer, root, aws, config).await {
        Ok(report) => report,
        Err(error) => {
            printer.error(one_line(&error));
            printer.error("the verification could not run; nothing was judged (exit 2)");
            return Err(Exit(2).into());
        }
    };
    print(printer, &report);
    if json {
        printer.json(&report)?;
    }
    report.exit()
}

/// Every check of the topology; an `Err` means the verification could not run.
pub async fn verify(printer: &Printer, root: &Path, aws: &Aws, config: &Config) -> Result<Report> {
    let policies = Policies::read(root, aws, config)
        .await
        .context("reading the policies of the deployed stacks; is every stack deployed (`cargo xtask status`)?")?;
    verify_with(printer, aws, config, &policies).await
}

/// [`verify`] with the policies already read (the local path has read them for the proof).
pub async fn verify_with(printer: &Printer, aws: &Aws, config: &Config, policies: &Policies) -> Result<Report> {
    let entries = map::entries(config, policies).context("building the access map of the topology")?;
    let mut report = Report::default();
    let progress = printer.progress("Verifying", format!("{} calls of the access map", entries.len()));
    match (aws.is_local(), emulator_gap(Kind::Simulation)) {
        (true, Some(gap)) => report.checks.push(Check::gap(Kind::Simulation, "every call of our roles", gap)),
        _ => report.checks.extend(simulate::simulate_all(aws, config, policies, &entries, &progress).await?),
    }
    report.checks.extend(simulate::service_principals(aws, config, &entries).await?);
    report.not_ours =
        entries.iter().filter(|entry| !simulated(policies, entry) && !entry.by_service_principal()).count();
    progress.update("live checks");
    report.checks.extend(checks::all(aws, config, policies).await?);
    progress.finish("Verified", format!("{} checks", report.checks.len()));
    Ok(report)
}

/// What the local emulator cannot answer, per kind of check (ARCHITECTURE.md, "Local stack", and
/// `../shared/reference/emulators.md`). The one place where local differs: each such check is
/// reported as a gap, never as passed.
pub fn emulator_gap(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::Simulation => Some(
            "moto's IAM evaluates no policy, so SimulatePrincipalPolicy has nothing to say there; locally the own \
             evaluator's proof (`access::prove`) is the proof",
        ),
        Kind::Replica => Some(
            "moto's CloudFormation skips AWS::KMS::ReplicaKey and ignores MultiRegion, and its DescribeKey fails \
             on a key whose policy came from a template",
        ),
        Kind::BucketPolicy => Some("moto's CloudFormation skips AWS::S3::BucketPolicy"),
        Kind::KeyPolicy => Some(
            "moto's CloudFormation holds no key replica, and its KMS fails (HTTP 500) on a key whose policy came \
             from a template, so its key policies are not read",
        ),
        Kind::DeploymentGroup | Kind::Pipeline => Some("moto's CloudFormation drops every Code* resource"),
        Kind::Image => Some("moto has no registry protocol: the images live in the local docker-registry"),
        Kind::Trust | Kind::ServiceGrant => None,
    }
}

/// What a check is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A role's call, through IAM's simulator (and the resource's live policy).
    Simulation,
    /// A service principal's `sts:AssumeRole` against a role's live trust policy.
    Trust,
    /// A service principal's other call against the resource's live policy.
    ServiceGrant,
    /// A replica of the multi-Region key in one region.
    Replica,
    BucketPolicy,
    KeyPolicy,
    DeploymentGroup,
    Pipeline,
    /// The running image's digest in one workload registry.
    Image,
}

/// How a check ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Passed,
    Failed,
    /// Not checkable on the emulator: neither passed nor failed.
    EmulatorGap,
}

/// One check and what it found.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub kind: Kind,
    /// What was checked: `web-build s3:PutObject arn:aws:s3:::bucket/*`, `key replica in eu-west-1`.
    pub subject: String,
    /// Where: `<account>/<region>` (empty where it does not apply).
    pub place: String,
    pub outcome: Outcome,
    /// What was evaluated, by whom, and what it said (the matched statements of a decision).
    pub detail: String,
    /// The map's entry, for a simulated or evaluated call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<Entry>,
}

impl Check {
    pub fn new(
        kind: Kind,
        subject: impl Into<String>,
        place: impl Into<String>,
        passed: bool,
        detail: String,
    ) -> Check {
        let outcome = if passed { Outcome::Passed } else { Outcome::Failed };
        Check { kind, subject: subject.into(), place: place.into(), outcome, detail, entry: None }
    }

    pub fn gap(kind: Kind, subject: impl Into<String>, gap: &str) -> Check {
        Check {
            kind,
            subject: subject.into(),
            place: String::new(),
            outcome: Outcome::EmulatorGap,
            detail: format!("not checkable locally (emulator gap: {gap})"),
            entry: None,
        }
    }
}

/// Every check of one verification.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
    /// Calls of the map made by principals whose own policies are not ours (the operator): not
    /// simulated.
    pub not_ours: usize,
}

impl Report {
    pub fn count(&self, outcome: Outcome) -> usize {
        self.checks.iter().filter(|check| check.outcome == outcome).count()
    }

    /// `Ok` when nothing failed, else exit 1.
    pub fn exit(&self) -> Result<()> {
        if self.count(Outcome::Failed) > 0 {
            return Err(Exit(1).into());
        }
        Ok(())
    }
}

/// Prints the table, each failed check as an error, and a summary line.
pub fn print(printer: &Printer, report: &Report) {
    let mut rows = vec![["CHECK", "SUBJECT", "WHERE", "RESULT"].map(String::from).to_vec()];
    for check in &report.checks {
        let result = match check.outcome {
            Outcome::Passed => "passed",
            Outcome::Failed => "FAILED",
            Outcome::EmulatorGap => "emulator gap",
        };
        let kind = serde_json::to_value(check.kind).ok().and_then(|kind| kind.as_str().map(str::to_string));
        rows.push(vec![kind.unwrap_or_default(), check.subject.clone(), check.place.clone(), result.to_string()]);
    }
    printer.text(table(&rows).trim_end());
    for check in report.checks.iter().filter(|check| check.outcome == Outcome::EmulatorGap) {
        printer.note(format!("{}: {}", check.subject, check.detail));
    }
    for check in report.checks.iter().filter(|check| check.outcome == Outcome::Failed) {
        let place = if check.place.is_empty() { String::new() } else { format!(" ({})", check.place) };
        printer.error(format!("{}{place}: {}", check.subject, check.detail));
    }
    let summary = format!(
        "{} checks: {} passed, {} failed, {} not checkable locally; {} calls of principals whose policies are not ours (the operator) not simulated",
        report.checks.len(),
        report.count(Outcome::Passed),
        report.count(Outcome::Failed),
        report.count(Outcome::EmulatorGap),
        report.not_ours,
    );
    match report.count(Outcome::Failed) {
        0 => printer.status("Verified", summary),
        _ => printer.error(summary),
    }
}

/// Whether `entry` is a call of one of our roles, which IAM's simulator takes.
fn simulated(policies: &Policies, entry: &Entry) -> bool {
    entry.principal.starts_with("arn:aws:iam::")
        && entry.principal.contains(":role/")
        && policies.identity.contains_key(&entry.principal)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A denied call or a failed check makes exit 1; an emulator gap does not.
    #[test]
    fn a_failed_check_exits_1_and_a_gap_does_not() {
        let passed = Check::new(Kind::Pipeline, "pipeline web", "", true, "present".into());
        let gap = Check::gap(Kind::Replica, "key replica in eu-west-1", "no replicas");
        let report = Report { checks: vec![passed.clone(), gap.clone()], not_ours: 0 };
        assert!(report.exit().is_ok());
        assert!(gap.detail.starts_with("not checkable locally (emulator gap: "), "{}", gap.detail);
        let denied = Check::new(Kind::Simulation, "web-build s3:PutObject", "", false, "explicitDeny".into());
        let report = Report { checks: vec![passed, gap, denied], not_ours: 0 };
        let error = report.exit().unwrap_err();
        assert!(matches!(error.downcast_ref::<Exit>(), Some(Exit(1))));
    }
}
