//! The config file through the real binary: `cargo xtask config check` runs the same loader as
//! every command that takes `--config` (it validates before anything else), so these tests pin
//! what a user sees: every problem on stderr as `FILE:LINE:COL: field: ...` with its `help:`,
//! the count line, exit code 2, and nothing on stdout. No emulator is involved: an invalid
//! config never gets as far as an AWS call.

use std::path::{Path, PathBuf};

use xshell::{Shell, cmd};

/// Exit code, stdout and stderr of `xtask <args>` run in the fixtures directory.
fn xtask(args: &[&str]) -> (Option<i32>, String, String) {
    let sh = Shell::new().expect("a shell for the test");
    sh.change_dir(fixtures());
    let binary = env!("CARGO_BIN_EXE_xtask");
    let output = cmd!(sh, "{binary} {args...}").ignore_status().quiet().output().expect("running the xtask binary");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), stdout, stderr)
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config")
}

#[test]
fn invalid_config_reports_every_problem_and_exits_2() {
    let (code, stdout, stderr) = xtask(&["config", "check", "--config", "many-problems.toml"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stdout, "", "nothing on stdout for an invalid config");
    for expected in [
        "error: many-problems.toml:5:11: tools.account: an account id is a string, found the integer 111111111111",
        "  help: quote it: account = \"111111111111\"",
        "error: many-problems.toml:6:10: tools.region: `eu-centrl-1` is not an AWS region",
        "  help: did you mean \"eu-central-1\"?",
        "error: many-problems.toml:12:8: workloads[0].wave: 0 is out of range",
        "error: many-problems.toml:15:8: workloads[1].name: `india` is also the name of workloads[0] (line 8)",
        "error: many-problems.toml:18:1: workloads[1].desired_count: unknown key `desired_count`",
        "  help: `desired_count` belongs in [service]",
        "error: many-problems.toml has 5 problems; fix and run again (nothing was sent to AWS)",
    ] {
        assert!(stderr.contains(expected), "expected {expected:?} in:\n{stderr}");
    }
}

#[test]
fn problems_are_printed_even_with_quiet() {
    let (code, _, stderr) = xtask(&["--quiet", "config", "check", "--config", "empty-workloads.toml"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("error: empty-workloads.toml:3:13: workloads: the list of workloads is empty"), "{stderr}");
}

#[test]
fn syntax_error_names_its_line_and_exits_2() {
    let (code, _, stderr) = xtask(&["config", "check", "--config", "syntax-error.toml"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("error: syntax-error.toml:6:10: syntax: string values must be quoted"), "{stderr}");
    assert!(stderr.contains("help: text goes in double quotes: \"ap-south-1\""), "{stderr}");
}

#[test]
fn missing_file_exits_2_and_says_what_to_do() {
    let (code, _, stderr) = xtask(&["config", "check", "--config", "no-such-file.toml"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("error: no-such-file.toml: file: cannot read it"), "{stderr}");
    assert!(stderr.contains("pass --config PATH"), "{stderr}");
}

/// The repository's deploy.toml resolves to the original sample's topology, as JSON on stdout.
#[test]
fn default_config_resolves_to_the_original_topology() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy.toml");
    let path = path.to_str().expect("a UTF-8 path");
    let (code, stdout, stderr) = xtask(&["config", "check", "--json", "--config", path]);
    assert_eq!(code, Some(0), "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("JSON on stdout");
    assert_eq!(json["tools"]["account"], "111111111111");
    assert_eq!(json["tools"]["access"]["kind"], "default");
    let workloads: Vec<(String, String)> = json["workloads"]
        .as_array()
        .expect("a list of workloads")
        .iter()
        .map(|workload| (workload["account"].to_string(), workload["region"].to_string()))
        .collect();
    assert_eq!(
        workloads,
        [
            ("\"222222222222\"".to_string(), "\"ap-south-1\"".to_string()),
            ("\"333333333333\"".to_string(), "\"eu-central-1\"".to_string()),
            ("\"444444444444\"".to_string(), "\"us-east-1\"".to_string()),
        ]
    );
    assert_eq!(json["regions"][1]["bucket"], "web-artifacts-111111111111-eu-central-1");
    assert_eq!(json["waves"][1]["workloads"], serde_json::json!(["europe", "us"]));
    assert!(stderr.contains("Checked"), "{stderr}");
    // What a change of a field does once deployed: the rule of `config/changes.rs`.
    let routes: Vec<(&str, &str, &str)> = json["once_deployed"]
        .as_array()
        .expect("a list of fields")
        .iter()
        .map(|field| {
            let text = |name: &str| field[name].as_str().unwrap_or_default();
            (text("field"), text("value"), text("route"))
        })
        .collect();
    for expected in [
        ("[service] container_port", "8080", "frozen"),
        ("[service] cpu", "256", "release"),
        ("[service] memory", "512", "release"),
        ("[service] desired_count", "2", "in-place"),
        ("[names] bucket_prefix", "web-artifacts", "frozen"),
    ] {
        assert!(routes.contains(&expected), "{expected:?} in {routes:?}");
    }
}
