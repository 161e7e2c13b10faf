//! checkov, the security scanner: run its CloudFormation checks from the project venv (with
//! `--skip-download`, so it never calls its vendor) and turn each failed check into a finding.
//!
//! A check is suppressed only in the template, on the resource, with a written reason
//! (`Metadata: checkov: skip: [{id, comment}]`); checkov then reports it as skipped. The skipped
//! list comes back too, so the lint can tell a suppression that no longer suppresses anything.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::Value;
use xshell::{Shell, cmd};

use crate::lint::Finding;
use crate::venv::Venv;

pub const TOOL: &str = "checkov";

/// What one run found.
#[derive(Debug, Default)]
pub struct Report {
    /// Failed checks and files checkov could not parse.
    pub findings: Vec<Finding>,
    /// Checks suppressed by the templates: (file, resource as `Type.LogicalId`, check id).
    pub skipped: Vec<(String, String, String)>,
}

pub fn run(venv: &Venv, files: &[PathBuf]) -> Result<Report> {
    let sh = Shell::new()?;
    let bin = venv.bin("checkov");
    let mut arguments: Vec<String> =
        ["--framework", "cloudformation", "--output", "json", "--skip-download"].map(String::from).to_vec();
    for file in files {
        arguments.push("--file".into());
        arguments.push(file.display().to_string());
    }
    let output = cmd!(sh, "{bin} {arguments...}").quiet().ignore_status().output().with_context(|| {
        format!("running {}; rebuild the venv with `rm -r {}`", bin.display(), venv.path().display())
    })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    parse(&stdout).with_context(|| {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        format!(
            "reading checkov's report ({}): {}",
            output.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    })
}

#[derive(Deserialize)]
struct Run {
    results: Results,
}

#[derive(Deserialize)]
struct Results {
    #[serde(default)]
    failed_checks: Vec<Check>,
    #[serde(default)]
    skipped_checks: Vec<Check>,
    #[serde(default)]
    parsing_errors: Vec<String>,
}

#[derive(Deserialize)]
struct Check {
    check_id: String,
    check_name: String,
    resource: String,
    file_abs_path: String,
    file_line_range: Vec<usize>,
}

/// Parses `checkov -o json` output: one report object, a list of them (one per framework), or
/// a bare summary when the files held no resource.
pub fn parse(stdout: &str) -> Result<Report> {
    if stdout.trim().is_empty() {
        bail!("checkov printed nothing");
    }
    let value: Value = serde_json::from_str(stdout).context("checkov's output is not its JSON report")?;
    let runs: Vec<Value> = match value {
        Value::Array(runs) => runs,
        Value::Object(ref map) if map.contains_key("results") => vec![value],
        Value::Object(ref map) if map.contains_key("resource_count") => Vec::new(),
        _ => bail!("checkov's JSON has neither results nor a summary"),
    };
    let mut report = Report::default();
    for run in runs {
        let run: Run = serde_json::from_value(run).context("reading a checkov result")?;
        for check in run.results.failed_checks {
            report.findings.push(Finding {
                file: check.file_abs_path,
                line: check.file_line_range.first().copied().unwrap_or(1).max(1),
                tool: TOOL.to_string(),
                rule: check.check_id,
                message: format!("{}: {}", check.resource, check.check_name),
            });
        }
        for check in run.results.skipped_checks {
            report.skipped.push((check.file_abs_path, check.resource, check.check_id));
        }
        for file in run.results.parsing_errors {
            report.findings.push(Finding {
                file,
                line: 1,
                tool: TOOL.to_string(),
                rule: "parsing-error".into(),
                message: "checkov could not parse this template".into(),
            });
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real output of checkov 3.3.30 on tests/fixtures/lint/captured-bad.yaml.
    const CAPTURED: &str = include_str!("../../tests/fixtures/lint/checkov-output.json");
    /// Real output of checkov 3.3.30 on a template without resources.
    const CAPTURED_EMPTY: &str = include_str!("../../tests/fixtures/lint/checkov-empty-output.json");

    #[test]
    fn parses_captured_output() {
        let report = parse(CAPTURED).unwrap();
        let rules: Vec<&str> = report.findings.iter().map(|finding| finding.rule.as_str()).collect();
        assert_eq!(rules.len(), 13);
        for rule in ["CKV_AWS_53", "CKV_AWS_21", "CKV_AWS_107", "CKV_AWS_111", "CKV_AWS_27"] {
            assert!(rules.contains(&rule), "{rule} in {rules:?}");
        }
        let versioning = report.findings.iter().find(|finding| finding.rule == "CKV_AWS_21").unwrap();
        assert_eq!(
            versioning.to_string(),
            "captured-bad.yaml:9: [checkov CKV_AWS_21] AWS::S3::Bucket.Bucket: Ensure the S3 bucket has versioning enabled"
        );
        let queue = report.findings.iter().find(|finding| finding.rule == "CKV_AWS_27").unwrap();
        assert_eq!(queue.line, 34);
        assert_eq!(
            report.skipped,
            [("captured-bad.yaml".to_string(), "AWS::S3::Bucket.Bucket".to_string(), "CKV_AWS_18".to_string())]
        );
    }

    #[test]
    fn a_template_without_resources_gives_a_bare_summary() {
        let report = parse(CAPTURED_EMPTY).unwrap();
        assert!(report.findings.is_empty() && report.skipped.is_empty());
    }

    #[test]
    fn other_output_is_an_error() {
        for bad in ["", "Traceback (most recent call last):", "{\"unexpected\": 1}"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
