//! cfn-lint, AWS's validator of templates against the resource schemas: run it from the project
//! venv with JSON output and turn each match into a finding.
//!
//! Its exit code is a bitmask of the levels found (2 error, 4 warning, 8 informational), so it
//! says nothing the JSON does not; only output that is not JSON is an error of the run itself.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use xshell::{Shell, cmd};

use crate::lint::Finding;
use crate::venv::Venv;

pub const TOOL: &str = "cfn-lint";

/// Lints `files` for `regions` (every region the templates deploy to; empty means cfn-lint's
/// default, us-east-1).
pub fn run(venv: &Venv, files: &[PathBuf], regions: &[String]) -> Result<Vec<Finding>> {
    let sh = Shell::new()?;
    let bin = venv.bin("cfn-lint");
    let mut arguments: Vec<String> = vec!["--format".into(), "json".into()];
    if !regions.is_empty() {
        arguments.push("--regions".into());
        arguments.extend(regions.iter().cloned());
    }
    arguments.push("--".into());
    arguments.extend(files.iter().map(|file| file.display().to_string()));
    let output = cmd!(sh, "{bin} {arguments...}").quiet().ignore_status().output().with_context(|| {
        format!("running {}; rebuild the venv with `rm -r {}`", bin.display(), venv.path().display())
    })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    parse(&stdout).with_context(|| {
        format!("reading cfn-lint's report ({}): {}", output.status, String::from_utf8_lossy(&output.stderr).trim())
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Match {
    filename: String,
    location: Location,
    message: String,
    rule: Rule,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Location {
    start: Position,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Position {
    line_number: usize,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Rule {
    id: String,
}

/// Parses `cfn-lint --format json` output: a list of matches.
pub fn parse(stdout: &str) -> Result<Vec<Finding>> {
    if stdout.trim().is_empty() {
        bail!("cfn-lint printed nothing");
    }
    let matches: Vec<Match> = serde_json::from_str(stdout).context("cfn-lint's output is not its JSON report")?;
    Ok(matches
        .into_iter()
        .map(|item| Finding {
            file: item.filename,
            line: item.location.start.line_number.max(1),
            tool: TOOL.to_string(),
            rule: item.rule.id,
            message: item.message,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real output of cfn-lint 1.58 on tests/fixtures/lint/captured-bad.yaml.
    const CAPTURED: &str = include_str!("../../tests/fixtures/lint/cfn-lint-output.json");

    #[test]
    fn parses_captured_output() {
        let findings = parse(CAPTURED).unwrap();
        let lines: Vec<String> = findings.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "captured-bad.yaml:6: [cfn-lint W2001] Parameter Unused not used.",
                "captured-bad.yaml:37: [cfn-lint E3012] 'not-a-number' is not of type 'integer'",
            ]
        );
    }

    #[test]
    fn a_clean_run_is_an_empty_list() {
        assert!(parse("[]\n").unwrap().is_empty());
    }

    #[test]
    fn other_output_is_an_error() {
        for bad in ["", "Traceback (most recent call last):", "{\"not\": \"a list\"}"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
