//! Bad command-line input through the real binary: values a flag cannot take, flag combinations
//! that mean nothing, names the config does not have, paths that are not there. Each case must
//! exit 2 with a short error naming the value and the fix, print nothing on stdout, and change
//! nothing. (The bad config files are catalogued in `config.rs` and in `deploy.rs`'s
//! `bad_configs_exit_2_and_create_nothing`.)
//!
//! "Nothing changed" is proven by making every change impossible to hide: AWS is a closed port
//! (`AWS_ENDPOINT_URL`, fake credentials), Docker a socket that does not exist, and the local
//! stack's state folder the test's own, with the config's emulator on a free port. A check that
//! ran after the first AWS, Docker or emulator call would end in that call's error, not in the
//! validation's, and would leave a pid file in the state folder; the last test shows that a valid
//! command line does get as far as AWS and fails there, differently.

use std::path::{Path, PathBuf};

use xshell::{Shell, cmd};

use crate::support::{Scratch, free_port};

/// A digest of the right form.
const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// What every case runs in: the project's topology with the emulator and the site on free ports,
/// and the files the cases name. Cases run with this folder as the current directory, so the
/// default `--config deploy.toml` is this copy.
struct Setup {
    scratch: Scratch,
    emulator_port: u16,
}

impl Setup {
    fn new() -> Setup {
        let scratch = Scratch::new("cli");
        let emulator_port = free_port();
        let original = std::fs::read_to_string(xtask::project::root().join("deploy.toml")).unwrap();
        let config = format!("{original}\n[local]\nemulator_port = {emulator_port}\nsite_port = {}\n", free_port());
        std::fs::write(scratch.path.join("deploy.toml"), config).unwrap();
        std::fs::write(scratch.path.join("not-utf8.toml"), [0xff, 0xfe, 0x00, 0x61]).unwrap();
        std::fs::write(scratch.path.join("a-file"), "in the way").unwrap();
        std::fs::create_dir_all(scratch.path.join("folder")).unwrap();
        Setup { scratch, emulator_port }
    }

    fn dir(&self) -> &Path {
        &self.scratch.path
    }

    /// The local stack's state folder: it must never be created.
    fn state_dir(&self) -> PathBuf {
        self.dir().join("local")
    }

    /// Runs `xtask args` from the setup's folder with AWS, Docker and the emulator out of reach;
    /// `env` adds variables. Returns exit code, stdout and stderr.
    fn run(&self, args: &[String], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
        let sh = Shell::new().unwrap();
        sh.change_dir(self.dir());
        let binary = env!("CARGO_BIN_EXE_xtask");
        let docker = format!("unix://{}", self.dir().join("no-docker.sock").display());
        let nowhere = self.dir().join("no-aws-config");
        let mut command = cmd!(sh, "{binary} {args...}")
            .quiet()
            .ignore_status()
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
            .env("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
            .env("AWS_CONFIG_FILE", &nowhere)
            .env("AWS_SHARED_CREDENTIALS_FILE", &nowhere)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("DOCKER_HOST", docker)
            .env("GBG_LOCAL_DIR", self.state_dir())
            .env("NO_COLOR", "1")
            .env_remove("AWS_PROFILE")
            .env_remove("GBG_LOCAL")
            .env_remove("GBG_CI_SKIP_CHECK")
            .env_remove("GBG_CALL_LOG");
        for (name, value) in env {
            command = command.env(name, value);
        }
        let output = command.output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        (output.status.code(), stdout, stderr)
    }
}

/// One bad command line: its arguments (`{dir}` is the setup's folder), extra environment, and
/// what its error must say (the value, the accepted form or the fix).
struct Case {
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    expect: &'static [&'static str],
}

const fn case(args: &'static [&'static str], expect: &'static [&'static str]) -> Case {
    Case { args, env: &[], expect }
}

const fn case_env(
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    expect: &'static [&'static str],
) -> Case {
    Case { args, env, expect }
}

/// Every bad command line we know of, by command. Digests and tags are written out where the
/// value under test is one; `D` stands for a valid digest.
const CASES: &[Case] = &[
    // deploy
    case(&["deploy", "--concurrency", "0"], &["'0'", "--concurrency", "1..=64"]),
    case(&["deploy", "--concurrency", "100000"], &["'100000'", "--concurrency", "1..=64"]),
    case(&["deploy", "--concurrency", "eight"], &["'eight'", "--concurrency", "invalid digit"]),
    case(&["deploy", "--image", "web:latest"], &["'web:latest'", "--image", "not pinned by digest", "@sha256:"]),
    case(&["deploy", "--image", "web@sha256:abc"], &["'web@sha256:abc'", "3 hex digits, not 64"]),
    case(&["deploy", "--method", "fast"], &["'fast'", "--method", "change-set, direct"]),
    case(&["deploy", "--dry-run", "--verify"], &["--dry-run", "--verify", "cannot be used with"]),
    case(&["deploy", "--concurency", "4"], &["--concurency", "--concurrency"]),
    case(&["deploi"], &["'deploi'", "'deploy'"]),
    case(&["status", "--color", "purple"], &["'purple'", "--color", "auto, always, never"]),
    // the config path, for every command that reads it
    case(&["deploy", "--config", "missing.toml"], &["missing.toml: file: cannot read it", "pass --config PATH"]),
    case(
        &["plan", "--config", "folder"],
        &["folder: file: cannot read it", "it is a folder", "--config folder/deploy.toml"],
    ),
    case(&["status", "--config", "not-utf8.toml"], &["not-utf8.toml: file: cannot read it", "readable UTF-8 text"]),
    case(&["gitflow", "init", "--config", "missing.toml"], &["missing.toml: file: cannot read it"]),
    case(&["image", "--config", "{dir}/missing.toml"], &["missing.toml: file: cannot read it"]),
    case_env(&["status"], &[("GBG_LOCAL", "maybe")], &["'maybe'", "--local", "expected 1, true, yes or on"]),
    // destroy
    case(&["destroy", "--concurrency", "0"], &["'0'", "--concurrency", "1..=64"]),
    case(&["destroy", "--lock-wait", "-5"], &["'-5'", "unexpected argument"]),
    case(&["deploy", "--lock-wait", "86400"], &["'86400'", "--lock-wait", "0..=7200"]),
    case(&["release", "--lock-wait", "soon"], &["'soon'", "--lock-wait", "invalid digit"]),
    case(&["lock", "steal"], &["'steal'", "status"]),
    case(&["destroy", "--concurrency", "65"], &["'65'", "1..=64"]),
    // release
    case(&["release", "--direct", "--image-digest", "1234"], &["'1234'", "--image-digest", "starts with `sha256:`"]),
    case(
        &[
            "release",
            "--direct",
            "--image-digest",
            "sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
        ],
        &["--image-digest", "`A` is not a lowercase hex digit"],
    ),
    case(&["release", "--timeout", "0"], &["'0'", "--timeout", "1..=7200"]),
    case(&["release", "--timeout", "100000"], &["'100000'", "--timeout", "1..=7200"]),
    case(&["release", "--via", "site"], &["--via site", "add --local"]),
    case(&["release", "--via", "carrier-pigeon"], &["'carrier-pigeon'", "pipeline, direct, site"]),
    case(&["release", "--direct", "--via", "site"], &["--direct", "--via", "cannot be used with"]),
    case(&["release", "--image-digest", D], &["--image-digest sha256:0123", "the pipeline builds", "--via direct"]),
    case(&["release", "--out", "folder"], &["--out folder", "the pipeline's build writes its own artifacts"]),
    case(&["release", "--direct", "--port", "9000"], &["--port 9000", "only --via site publishes a port"]),
    case(&["release", "--direct", "--port", "0"], &["'0'", "--port"]),
    case(&["release", "--no-wait", "--timeout", "5"], &["--timeout", "--no-wait", "cannot be used with"]),
    case(&["release", "--direct", "--dry-run", "--no-wait"], &["--no-wait", "--dry-run", "cannot be used with"]),
    case(&["release", "--direct", "--dry-run"], &["--dry-run", "pass --image-digest"]),
    case(&["release", "--image-version", "v1"], &["--image-digest", "required"]),
    case(
        &["release", "--direct", "--image-digest", D, "--image-version", "v1:latest"],
        &["'v1:latest'", "--image-version", "`:` is not allowed in a tag"],
    ),
    case(&["release", "--direct", "--out", "a-file"], &["'a-file'", "--out", "a file is in the way"]),
    // rollback
    case(
        &["rollback", "europ"],
        &["workload `europ`", "has no such workload", "did you mean `europe`?", "india, europe, us"],
    ),
    case(&["rollback", "eu-wset"], &["workload `eu-wset`", "its workloads are india, europe, us", "config check"]),
    case(&["rollback"], &["<WORKLOAD>", "required"]),
    case(&["rollback", "india", "--timeout", "0"], &["'0'", "--timeout", "1..=7200"]),
    case(&["rollback", "india", "--via", "site"], &["--via site", "add --local"]),
    case(&["rollback", "india", "--port", "9000"], &["--port 9000", "only --via site publishes a port"]),
    case(&["rollback", "india", "--dry-run", "--no-wait"], &["--no-wait", "--dry-run", "cannot be used with"]),
    // package
    case(&["package", "--image-digest", "sha256:abc"], &["'sha256:abc'", "--image-digest", "3 hex digits, not 64"]),
    case(&["package", "--dry-run"], &["--dry-run", "pass --image-digest"]),
    case(&["package", "--image-version", "v1"], &["--image-digest", "required"]),
    case(&["package", "--image-digest", D, "--image-version=-v1"], &["'-v1'", "not starting with `.` or `-`"]),
    case(&["package", "--image-digest", D, "--out", "a-file"], &["'a-file'", "a file is in the way"]),
    // verify-release
    case(&["verify-release", "--release", "latest"], &["'latest'", "--release", "16 lowercase hex digits"]),
    case(
        &["verify-release", "--manifest", "missing.json"],
        &["'missing.json'", "--manifest", "no such file", "cargo xtask package"],
    ),
    case(&["verify-release", "--manifest", "folder"], &["'folder'", "a folder, not a file"]),
    case(
        &["verify-release", "--manifest", "a-file", "--release", "0123456789abcdef"],
        &["--manifest", "--release", "cannot be used with"],
    ),
    // ci build
    case(&["ci", "build", "--image-digest", "latest"], &["'latest'", "--image-digest", "starts with `sha256:`"]),
    case(&["ci", "build", "--out", "a-file"], &["'a-file'", "--out", "a file is in the way"]),
    case_env(
        &["ci", "build"],
        &[("GBG_CI_SKIP_CHECK", "perhaps")],
        &["'perhaps'", "--skip-check", "0, false, no or off"],
    ),
    case(&["ci", "deploy"], &["'deploy'", "unrecognized subcommand"]),
    // pipeline run
    case(&["pipeline", "run"], &["pipeline run", "pass --local"]),
    case(&["pipeline", "run", "--local", "--ref=-x"], &["'-x'", "--ref", "starts with `-`"]),
    case(
        &["pipeline", "run", "--local", "--ref", "no-such-branch-anywhere"],
        &["--ref no-such-branch-anywhere", "no commit, branch or tag"],
    ),
    // verify
    case(
        &["verify", "--local", "--calls", "missing.jsonl"],
        &["'missing.jsonl'", "--calls", "no such file", "GBG_CALL_LOG"],
    ),
    case(&["verify", "--calls", "a-file"], &["--local", "required"]),
    // image, local
    case(
        &["image", "--dockerfile", "Dockerfile.missing"],
        &["'Dockerfile.missing'", "--dockerfile", "no such file or folder", "project root"],
    ),
    case(&["image", "--dockerfile", "cfn"], &["'cfn'", "a folder, not a file"]),
    case(&["local", "run", "--port", "0"], &["'0'", "--port"]),
    case(&["local", "run", "--port", "70000"], &["'70000'", "--port"]),
    case(&["local", "run", "--tag", "has space"], &["'has space'", "--tag", "` ` is not allowed in a tag"]),
    case(&["local", "run", "--colour", "purple"], &["'purple'", "blue, green"]),
    // lint
    case(
        &["lint", "cfn/no-such-template.yaml"],
        &["'cfn/no-such-template.yaml'", "no such file or folder", "name a template"],
    ),
    case(&["lint", "{dir}/folder"], &["folder: no template there", "name a template or a folder holding one"]),
    case(&["lint", "cfn", "--config", "deploy.toml"], &["--config", "cannot be used with"]),
    case(&["lint", "--only", "cfn_nag_scan"], &["'cfn_nag_scan'", "cfn-lint, checkov, cfn-nag, cfn-guard, rules"]),
    // bench
    case(&["bench", "app", "--duration", "0"], &["'0'", "--duration", "1..=600"]),
    case(&["bench", "app", "--rounds", "0"], &["'0'", "--rounds", "1..=100"]),
    case(&["bench", "app", "--connections", "100000"], &["'100000'", "--connections", "1..=4096"]),
    case(&["bench", "publish", "--rounds", "1000"], &["'1000'", "--rounds", "1..=100"]),
    // config
    case(&["config", "check", "--config", "folder"], &["folder: file: cannot read it", "it is a folder"]),
];

/// `D` in a case: a valid digest, for cases about another flag.
const D: &str = "{digest}";

#[test]
fn bad_command_lines_exit_2_naming_the_value_and_change_nothing() {
    let setup = Setup::new();
    let dir = setup.dir().display().to_string();
    assert!(CASES.len() >= 30, "the catalogue shrank to {}", CASES.len());
    let mut failures = Vec::new();
    for case in CASES {
        let args: Vec<String> =
            case.args.iter().map(|arg| arg.replace("{dir}", &dir).replace("{digest}", DIGEST)).collect();
        let label = format!("xtask {}", args.join(" "));
        let (code, stdout, stderr) = setup.run(&args, case.env);
        let mut problems = Vec::new();
        if code != Some(2) {
            problems.push(format!("exit {code:?}, not 2"));
        }
        if !stdout.is_empty() {
            problems.push(format!("stdout is not empty: {stdout}"));
        }
        for fragment in case.expect {
            let fragment = fragment.replace("{dir}", &dir);
            if !stderr.contains(&fragment) {
                problems.push(format!("no {fragment:?}"));
            }
        }
        // Nothing ran before the error (no status line, no identity, no emulator start), and the
        // error is short: clap's usage lines at most, never a cascade or a debug dump.
        if !stderr.starts_with("error:") {
            problems.push("stderr does not start with the error".into());
        }
        let lines = stderr.lines().filter(|line| !line.trim().is_empty()).count();
        if lines > 6 {
            problems.push(format!("{lines} lines of error"));
        }
        for dump in ["caused by", "Os {", "kind:", "Error {", "panicked"] {
            if stderr.contains(dump) {
                problems.push(format!("{dump:?} in the error"));
            }
        }
        if setup.state_dir().exists() {
            problems.push(format!("the local stack's state folder was created: {}", setup.state_dir().display()));
            let _ = xtask::local::daemon::stop(&setup.state_dir().join("moto.pid"));
            let _ = std::fs::remove_dir_all(setup.state_dir());
        }
        if !problems.is_empty() {
            failures.push(format!("{label}:\n  {}\n  stderr: {}", problems.join("\n  "), stderr.trim_end()));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), CASES.len(), failures.join("\n"));
    assert!(
        !xtask::local::moto::probe(setup.emulator_port).unwrap_or(true),
        "an emulator answers on the config's port {}",
        setup.emulator_port
    );
}

/// The control: in the same setting, a valid command line gets past validation to its first AWS
/// call and fails there, with another error. So the catalogue's errors did come before AWS.
#[test]
fn a_valid_command_line_reaches_aws_and_fails_there_instead() {
    let setup = Setup::new();
    let (code, stdout, stderr) = setup.run(&["rollback".to_string(), "india".to_string()], &[]);
    assert_ne!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "");
    assert!(!stderr.contains("no such workload"), "{stderr}");
    // The accounts are asked at once; whichever fails first is named.
    assert!(stderr.contains("getting the identity of"), "the error is the first AWS call's:\n{stderr}");
    assert!(stderr.contains("Connection refused"), "{stderr}");
    assert!(!setup.state_dir().exists());
}
