//! cfn_nag, Stelligent's security linter (a Ruby gem): run when `cfn_nag_scan` is on PATH, where
//! a developer has installed it (`gem install cfn-nag`). Neither CI nor CodeBuild installs it (a
//! linter that only some machines run could fail a build that passed elsewhere): the controls it
//! checks are Guard rules (`cfn_guard.rs`), and the templates carry its suppressions, each with a
//! reason, beside checkov's, so a run where it is present is clean too.
//!
//! Its exit code is the number of failures, which wraps at 256, so only its JSON report counts:
//! a list of `{filename, file_results: {failure_count, violations: [{id, type, message,
//! logical_resource_ids, line_numbers}]}}`. Every violation, failing or warning, is a finding.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::Value;
use xshell::{Shell, cmd};

use crate::lint::Finding;

pub const TOOL: &str = "cfn_nag";

/// `cfn_nag_scan` on PATH, if any.
pub fn find() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join("cfn_nag_scan")).find(|candidate| candidate.is_file())
}

pub fn run(bin: &Path, files: &[PathBuf]) -> Result<Vec<Finding>> {
    let sh = Shell::new()?;
    let mut findings = Vec::new();
    for file in files {
        let output = cmd!(sh, "{bin} --input-path {file} --output-format json")
            .quiet()
            .ignore_status()
            .output()
            .with_context(|| format!("running {} on {}", bin.display(), file.display()))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        findings.extend(parse(&stdout).with_context(|| {
            format!(
                "reading cfn_nag's report on {}: {}",
                file.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            )
        })?);
    }
    Ok(findings)
}

#[derive(Deserialize)]
struct FileReport {
    filename: String,
    file_results: Results,
}

#[derive(Deserialize)]
struct Results {
    #[serde(default)]
    violations: Vec<Violation>,
}

#[derive(Deserialize)]
struct Violation {
    id: String,
    message: String,
    #[serde(default)]
    logical_resource_ids: Vec<String>,
    #[serde(default)]
    line_numbers: Vec<i64>,
}

/// Parses `cfn_nag_scan --output-format json`: one finding per violation and resource.
pub fn parse(stdout: &str) -> Result<Vec<Finding>> {
    if stdout.trim().is_empty() {
        bail!("cfn_nag_scan printed nothing");
    }
    let value: Value = serde_json::from_str(stdout).context("cfn_nag's output is not its JSON report")?;
    let reports: Vec<FileReport> =
        serde_json::from_value(value).context("cfn_nag's JSON is not a list of file reports")?;
    let mut findings = Vec::new();
    for report in reports {
        for violation in report.file_results.violations {
            let resources = if violation.logical_resource_ids.is_empty() {
                vec![String::new()]
            } else {
                violation.logical_resource_ids.clone()
            };
            for (index, resource) in resources.iter().enumerate() {
                // cfn_nag reports -1 when it cannot place a resource.
                let line = violation.line_numbers.get(index).copied().filter(|line| *line > 0).unwrap_or(1);
                let message = if resource.is_empty() {
                    violation.message.clone()
                } else {
                    format!("{resource}: {}", violation.message)
                };
                findings.push(Finding {
                    file: report.filename.clone(),
                    line: line as usize,
                    tool: TOOL.to_string(),
                    rule: violation.id.clone(),
                    message,
                });
            }
        }
    }
    Ok(findings)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// cfn_nag's documented JSON (its README and the shape the issue quotes), written for
    /// tests/fixtures/lint/captured-bad.yaml: cfn_nag is a Ruby gem that cannot be installed on
    /// this machine, so this one report is not captured from a run.
    const DOCUMENTED: &str = include_str!("../../tests/fixtures/lint/cfn-nag-output.json");

    #[test]
    fn parses_the_documented_report() {
        let lines: Vec<String> = parse(DOCUMENTED).unwrap().iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "captured-bad.yaml:9: [cfn_nag W35] Bucket: S3 Bucket should have access logging configured",
                "captured-bad.yaml:16: [cfn_nag F3] Role: IAM role should not allow * action on its permissions policy",
                "captured-bad.yaml:16: [cfn_nag F38] Role: IAM role should not allow * resource with PassRole action on its permissions policy",
                "captured-bad.yaml:1: [cfn_nag F38] Queue: IAM role should not allow * resource with PassRole action on its permissions policy",
            ]
        );
    }

    #[test]
    fn a_clean_file_has_no_findings() {
        let clean = r#"[{"filename": "a.yaml", "file_results": {"failure_count": 0, "violations": []}}]"#;
        assert!(parse(clean).unwrap().is_empty());
    }

    #[test]
    fn other_output_is_an_error() {
        for bad in ["", "cfn_nag_scan: command not found", "{\"failure_count\": 0}"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
