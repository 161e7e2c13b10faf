//! `cargo xtask tidy`: the codebase's own rules, checked by a command and by a test (`tidy` at the
//! bottom), so `cargo test` fails when a rule is broken.
//!
//! - every `.rs` file starts with a `//!` doc saying what it does and why;
//! - no debugging or unfinished-code macros (`dbg!`, `todo!`, `unimplemented!`);
//! - no `std::process::Command` outside [`COMMAND_ALLOWLIST`]: programs run through xshell;
//!   only long-running children that must be sampled or signalled may spawn directly;
//! - every template under `cfn/` (the files `lint` lints) parses as a CloudFormation template
//!   (`template.rs`, short-form intrinsics included) and is deployed by the plan built from the
//!   repo's `deploy.toml`; and no template names an account id or a region: those come from
//!   parameters and pseudo parameters;
//! - in the xtask, an AWS SDK call's error reaches the user only as an [`AwsError`] (`.aws(&client)`
//!   or `AwsError::from_call`), never flattened by `?`, `.context` or `.map_err` straight from the
//!   `SdkError`, and never through the SDK's `DisplayErrorContext` (which ends in a debug dump);
//! - the xtask's modules import only downward, with no import circle ([`layers`]).
//!
//! [`AwsError`]: crate::aws::AwsError

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use crate::Ctx;
use crate::config::{Config, REGIONS};
use crate::engine::topology::{self, Inputs};
use crate::template::{self, Template};

pub mod layers;

/// Arguments of `cargo xtask tidy`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Files that may spawn processes with `std::process::Command`, and why.
pub const COMMAND_ALLOWLIST: &[(&str, &str)] = &[
    ("xtask/src/bench/app.rs", "nginx and the app run while wrk measures them and /proc is sampled"),
    ("xtask/src/local/daemon.rs", "the local stack's daemons (moto_server, docker-registry) outlive the command"),
    ("app/tests/http.rs", "the app under test runs while the test talks to it and signals it"),
    ("xtask/tests/it/deploy.rs", "a deploy runs in the background while the test stops the emulator under it"),
    ("xtask/tests/it/gitflow.rs", "the Lambda's bootstrap serves a runtime API the test answers while it runs"),
];

/// One broken rule, where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Relative to the project root.
    pub path: PathBuf,
    /// 1-based; 0 when the problem is the whole file.
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(formatter, "{}: {}", self.path.display(), self.message)
        } else {
            write!(formatter, "{}:{}: {}", self.path.display(), self.line, self.message)
        }
    }
}

pub async fn run(ctx: &Ctx, _args: Args) -> Result<()> {
    let problems = checks(&ctx.root)?;
    if problems.is_empty() {
        ctx.printer.status("Tidy", "every rule holds");
        return Ok(());
    }
    for problem in &problems {
        ctx.printer.error(problem);
    }
    bail!("tidy found {} problem(s); fix them and run `cargo xtask tidy` again", problems.len())
}

/// Runs every check over the tree at `root`.
pub fn checks(root: &Path) -> Result<Vec<Problem>> {
    let mut problems = Vec::new();
    let mut xtask = Vec::new();
    for path in files(root, &["rs"])? {
        let text = std::fs::read_to_string(root.join(&path))?;
        problems.extend(check_rust(&path, &text));
        if let Ok(inside) = path.strip_prefix("xtask/src") {
            xtask.push((inside.to_path_buf(), text));
        }
    }
    problems.extend(layers::check(&xtask));
    let templates = root.join("cfn");
    if templates.is_dir() {
        let deployed = deployed_templates(root)?;
        // The files `cargo xtask lint` lints, so every linted template is also checked here.
        for path in template::files(&templates)? {
            let relative = Path::new("cfn").join(path.strip_prefix(&templates)?);
            let text = std::fs::read_to_string(&path)?;
            problems.extend(check_template(&relative, &text));
            if !deployed.contains(&relative) {
                problems.push(Problem {
                    path: relative.clone(),
                    line: 0,
                    message: "no step of the deploy plan (engine/topology.rs) deploys it: wire it in or delete it"
                        .into(),
                });
            }
        }
    }
    Ok(problems)
}

/// The rules for one Rust source file.
pub fn check_rust(path: &Path, text: &str) -> Vec<Problem> {
    let mut problems = Vec::new();
    let first = text.lines().map(str::trim).find(|line| !line.is_empty());
    if !first.is_some_and(|line| line.starts_with("//!")) {
        problems.push(Problem {
            path: path.to_path_buf(),
            line: 1,
            message: "the file must start with a `//!` doc saying what it does and why".into(),
        });
    }
    // Spelled in pieces so that this file does not trip its own checks.
    let macros = ["dbg", "todo", "unimplemented"].map(|name| format!("{name}!("));
    let spawn = concat!("Command", "::new(");
    let slash_path = path.to_string_lossy().replace('\\', "/");
    let may_spawn = COMMAND_ALLOWLIST.iter().any(|(allowed, _)| *allowed == slash_path);
    let sdk_debug = concat!("DisplayError", "Context");
    let lines: Vec<&str> = text.lines().collect();
    for (index, line) in lines.iter().enumerate() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        for pattern in &macros {
            if code.contains(pattern.as_str()) {
                problems.push(Problem {
                    path: path.to_path_buf(),
                    line: index + 1,
                    message: format!("`{}` must not be committed", pattern.trim_end_matches('(')),
                });
            }
        }
        if slash_path.starts_with("xtask/src/") && code.contains(sdk_debug) {
            problems.push(Problem {
                path: path.to_path_buf(),
                line: index + 1,
                message: "the SDK's error context ends in its debug dump: show an `AwsError` instead".into(),
            });
        }
        if slash_path.starts_with("xtask/src/")
            && let Some(problem) = flattened_sdk_error(&lines, index)
        {
            problems.push(Problem { path: path.to_path_buf(), line: index + 1, message: problem.into() });
        }
        if !may_spawn && code.contains(spawn) {
            problems.push(Problem {
                path: path.to_path_buf(),
                line: index + 1,
                message:
                    "run programs through xshell's `cmd!`; a long-running child that must be sampled or signalled \
                          needs an entry in tidy::COMMAND_ALLOWLIST saying why"
                        .into(),
            });
        }
    }
    problems
}

/// Whether the SDK call sent on line `index` turns its error into an `anyhow::Error` directly:
/// the statement (up to its `;` or the `{` of a `match`) applies `?`, `.context`, `.with_context`
/// or `.map_err` with no `.aws(` before them. A `match` or a `let` of the raw result is left to
/// its arms (which `AwsError::from_call` or `.aws` there).
fn flattened_sdk_error(lines: &[&str], index: usize) -> Option<&'static str> {
    let send = concat!(".send", "()");
    let line = lines[index];
    let start = line.find(send)?;
    let before = lines[index.saturating_sub(3)..=index].join("\n");
    if before.contains("into_paginator") {
        return None;
    }
    let mut statement = line[start + send.len()..].to_string();
    for next in lines.iter().skip(index + 1).take(12) {
        if statement.trim_end().ends_with(';') || statement.trim_end().ends_with('{') {
            break;
        }
        statement.push_str(next.trim());
    }
    let statement = statement.split(';').next().unwrap_or_default();
    let converted = statement.find(".aws(");
    let flattened =
        ["?", ".context(", ".with_context(", ".map_err("].iter().filter_map(|form| statement.find(form)).min();
    match (flattened, converted) {
        (Some(flattened), Some(converted)) if converted < flattened => None,
        (Some(_), _) => Some(
            "an AWS call's error must become an `AwsError` first (`.aws(&client)`), so the user sees the call, \
             account, region and AWS's code, and callers can still match it",
        ),
        (None, _) => None,
    }
}

/// The templates the plan of the repo's `deploy.toml` deploys, relative to the root.
fn deployed_templates(root: &Path) -> Result<Vec<PathBuf>> {
    let config = Config::load(&root.join("deploy.toml"))?;
    let (plan, _) = topology::plan(&config, &Inputs::stacks_only());
    Ok(plan.stacks().map(|(_, _, stack)| stack.template.clone()).collect())
}

/// A template must parse as one (`template.rs`: YAML with CloudFormation's `!Ref`-style tags) and
/// must not name an account id or a region outside comments and descriptions' examples.
pub fn check_template(path: &Path, text: &str) -> Vec<Problem> {
    if let Err(error) = Template::parse(path, text) {
        return vec![Problem { path: path.to_path_buf(), line: 0, message: format!("{error:#}") }];
    }
    let mut problems = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let code = line.split(" #").next().unwrap_or_default();
        if code.trim_start().starts_with('#') {
            continue;
        }
        let digits: Vec<&str> =
            code.split(|character: char| !character.is_ascii_digit()).filter(|run| run.len() == 12).collect();
        if let Some(account) = digits.first() {
            problems.push(Problem {
                path: path.to_path_buf(),
                line: index + 1,
                message: format!("`{account}` looks like an account id: take it from a parameter or AWS::AccountId"),
            });
        }
        for (region, _) in REGIONS {
            let bounded = code.match_indices(region).any(|(at, _)| {
                let before = code[..at].chars().last();
                let after = code[at + region.len()..].chars().next();
                !before.is_some_and(|character| character.is_ascii_alphanumeric())
                    && !after.is_some_and(|character| character.is_ascii_alphanumeric())
            });
            if bounded {
                problems.push(Problem {
                    path: path.to_path_buf(),
                    line: index + 1,
                    message: format!(
                        "`{region}` is written into the template: take it from a parameter or AWS::Region"
                    ),
                });
            }
        }
    }
    problems
}

/// Files under `dir` with one of `extensions`, relative to `dir`, sorted; build output, VCS data
/// and hidden folders are skipped.
fn files(dir: &Path, extensions: &[&str]) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        for entry in std::fs::read_dir(dir.join(&relative))? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || name == "target" {
                continue;
            }
            let path = relative.join(&*name);
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file()
                && path.extension().is_some_and(|extension| extensions.iter().any(|wanted| extension == *wanted))
            {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rules hold for the whole tree.
    #[test]
    fn tidy() {
        let problems = checks(&crate::project::root()).unwrap();
        let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(problems.is_empty(), "tidy problems (run `cargo xtask tidy`):\n{}", listed.join("\n"));
    }

    #[test]
    fn rust_rules_catch_what_they_should() {
        let check = |path: &str, text: &str, expect: &[(usize, &str)]| {
            let problems = check_rust(Path::new(path), text);
            assert_eq!(problems.len(), expect.len(), "{path}: {problems:?}");
            for (problem, (line, fragment)) in problems.iter().zip(expect) {
                assert_eq!(problem.line, *line, "{path}: {problem:?}");
                assert!(problem.message.contains(fragment), "{path}: {problem:?} lacks `{fragment}`");
            }
        };
        let spawn = concat!("std::process::", "Command", "::new(\"ls\");");
        let debug = concat!("let x = ", "dbg", "!(1);");
        check("xtask/src/fine.rs", "//! Docs.\n\nfn main() {}\n", &[]);
        check("xtask/src/bare.rs", "fn main() {}\n", &[(1, "//!")]);
        check("xtask/src/debug.rs", &format!("//! Docs.\n{debug}\n"), &[(2, "must not be committed")]);
        check("xtask/src/spawn.rs", &format!("//! Docs.\n{spawn}\n"), &[(2, "xshell")]);
        check("xtask/src/bench/app.rs", &format!("//! Docs.\n{spawn}\n"), &[]);
        check("xtask/src/comment.rs", &format!("//! Docs.\n// {debug}\n"), &[]);
        let send = concat!(".send", "()");
        let flat = |tail: &str| format!("//! Docs.\nlet x = s3.get_object()\n    {send}\n    .await{tail}\n");
        check("xtask/src/aws_ok.rs", &flat("\n    .aws(&s3)\n    .with_context(|| \"x\")?;"), &[]);
        check("xtask/src/aws_q.rs", &flat("?;"), &[(3, "AwsError")]);
        check("xtask/src/aws_ctx.rs", &flat("\n    .with_context(|| \"x\")?;"), &[(3, "AwsError")]);
        check("xtask/src/aws_map.rs", &flat("\n    .map_err(|e| anyhow!(e))?;"), &[(3, "AwsError")]);
        check("xtask/src/aws_match.rs", &format!("//! Docs.\nmatch s3.get_object(){send}.await {{\n"), &[]);
        check("xtask/tests/it/aws_test.rs", &flat("?;"), &[]);
        let context = concat!("DisplayError", "Context(&e)");
        check("xtask/src/dump.rs", &format!("//! Docs.\nlet t = {context};\n"), &[(2, "debug dump")]);
    }

    #[test]
    fn templates_must_parse_and_name_no_account_or_region() {
        let check = |text: &str, expect: Option<(usize, &str)>| {
            let problems = check_template(Path::new("cfn/x.yaml"), text);
            let found = problems.first().map(|problem| (problem.line, problem.message.clone()));
            match (found, expect) {
                (None, None) => {}
                (Some((line, message)), Some((expect_line, expect_text))) => {
                    assert_eq!(line, expect_line, "{message}");
                    assert!(message.contains(expect_text), "{message}");
                }
                (found, expect) => panic!("expected {expect:?}, found {found:?}"),
            }
        };
        let bucket = "Resources:\n  Bucket:\n    Type: AWS::S3::Bucket\n";
        check(&format!("{bucket}    Properties:\n      BucketName: !Ref Name\n"), None);
        check(&format!("{bucket}Outputs:\n  Arn: {{Value: !GetAtt Bucket.Arn}}\n"), None);
        check("{\"Resources\": {\"B\": {\"Type\": \"AWS::S3::Bucket\"}}}", None);
        check("Resources:\n  Bucket: [\n", Some((0, "cfn/x.yaml:3")));
        check("", Some((0, "empty")));
        check(&format!("{bucket}    Properties:\n      BucketName: b-111111111111\n"), Some((5, "account id")));
        check(&format!("{bucket}    Properties:\n      BucketName: b-eu-central-1\n"), Some((5, "eu-central-1")));
        check(&format!("{bucket}    # an example: 111111111111 in eu-central-1\n"), None);
    }
}
