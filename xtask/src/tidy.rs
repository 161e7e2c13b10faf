//! `cargo xtask tidy`: the codebase's own rules, checked by a command and by a test (`tidy` at the
//! bottom), so `cargo test` fails when a rule is broken.
//!
//! - every `.rs` file starts with a `//!` doc saying what it does and why;
//! - no debugging or unfinished-code macros (`dbg!`, `todo!`, `unimplemented!`);
//! - no `std::process::Command` outside [`COMMAND_ALLOWLIST`]: programs run through xshell;
//!   only long-running children that must be sampled or signalled may spawn directly;
//! - every template under `cfn/` parses as YAML (short-form intrinsics like `!Ref` included).
//!
//! The checks that need the plan (every template is linted and deployed by the plan, no account
//! id or region written into a template) join [`checks`] when `plan.rs` can name its templates.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use saphyr::{LoadableYamlNode, Yaml};

use crate::Ctx;

/// Arguments of `cargo xtask tidy`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Files that may spawn processes with `std::process::Command`, and why.
pub const COMMAND_ALLOWLIST: &[(&str, &str)] = &[
    ("xtask/src/bench/app.rs", "nginx and the app run while wrk measures them and /proc is sampled"),
    ("xtask/src/local/daemon.rs", "the local stack's daemons (moto_server, docker-registry) outlive the command"),
    ("app/tests/http.rs", "the app under test runs while the test talks to it and signals it"),
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
    for path in files(root, &["rs"])? {
        let text = std::fs::read_to_string(root.join(&path))?;
        problems.extend(check_rust(&path, &text));
    }
    let templates = root.join("cfn");
    if templates.is_dir() {
        for path in files(&templates, &["yaml", "yml", "json"])? {
            let text = std::fs::read_to_string(templates.join(&path))?;
            problems.extend(check_template(&Path::new("cfn").join(&path), &text));
        }
    }
    // The plan's checks join here: every template under cfn/ is linted (lint.rs) and deployed by
    // the plan (plan.rs); no account id or region is written into a template.
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
    for (index, line) in text.lines().enumerate() {
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

/// A template must parse as YAML (JSON is YAML too), keeping CloudFormation's `!Ref`-style tags.
pub fn check_template(path: &Path, text: &str) -> Vec<Problem> {
    match Yaml::load_from_str(text) {
        Ok(documents) if documents.is_empty() => {
            vec![Problem { path: path.to_path_buf(), line: 0, message: "the template is empty".into() }]
        }
        Ok(_) => Vec::new(),
        Err(error) => vec![Problem {
            path: path.to_path_buf(),
            line: error.marker().line(),
            message: format!("not valid YAML: {}", error.info()),
        }],
    }
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
    }

    #[test]
    fn templates_must_parse() {
        let check = |text: &str, expect_line: Option<usize>| {
            let problems = check_template(Path::new("cfn/x.yaml"), text);
            assert_eq!(problems.first().map(|problem| problem.line), expect_line, "{problems:?}");
        };
        check("Resources:\n  Bucket:\n    Type: AWS::S3::Bucket\n    Properties:\n      BucketName: !Ref Name\n", None);
        check("Outputs:\n  Arn: !GetAtt Bucket.Arn\n  Url: !Sub 'https://${Bucket}'\n", None);
        check("{\"Resources\": {}}", None);
        check("Resources:\n  Bucket: [\n", Some(3));
        check("", Some(0));
    }
}
