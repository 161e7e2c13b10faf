//! `cargo xtask lint`: every CloudFormation template under `cfn/`, plus the pipeline expanded for
//! the config, through cfn-lint, checkov, cfn-guard (the project's Guard rules in `cfn/guard`),
//! cfn_nag (when on PATH) and the pattern's own rules, IAM included (`lint/iam.rs`). Given paths
//! (`cargo xtask lint <file-or-folder>...`), it lints exactly those templates, inside the project
//! or not, and expands no pipeline.
//!
//! Each finding is printed once as `file:line: [tool rule] message`, then a summary line; any
//! finding fails the command (exit 1). A file that is not valid YAML or not a template stops the
//! lint before any linter runs, with the file and line named. cfn-lint and checkov come from the
//! project venv, cfn-guard from `target/tools` (each installed on first use, pinned), so every
//! machine runs the same linters; the external linters run in parallel, since checkov alone
//! takes several seconds. cfn_nag, a Ruby gem, runs only where a developer has installed it: a
//! linter that only some machines run could fail a build that passed elsewhere, so the controls
//! the pattern relies on from it are also Guard rules, and every accepted finding carries its
//! suppression, with the same reason, for each linter that raises it.

mod cfn_guard;
mod cfn_lint;
mod cfn_nag;
mod checkov;
mod iam;
pub mod rules;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::Value;

use crate::Ctx;
use crate::cli;
use crate::config::Config;
use crate::output::{Exit, Usage};
use crate::project;
use crate::template::{self, Template};
use crate::tools;
use crate::venv::Venv;

/// Arguments of `cargo xtask lint`.
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// Templates or folders to lint, absolute or relative to the project root; exactly these are
    /// linted [default: every template under cfn/ and the pipeline expanded for --config].
    #[arg(value_name = "PATH", value_parser = cli::project_path(false, "name a template or a folder of templates"))]
    pub paths: Vec<PathBuf>,
    /// The topology the pipeline template is expanded for (with the default templates only).
    #[arg(long, default_value = "deploy.toml", value_name = "PATH", conflicts_with = "paths")]
    pub config: PathBuf,
    /// Run only this linter; repeat for several [default: all].
    #[arg(long, value_enum, value_name = "LINTER")]
    pub only: Vec<Linter>,
    /// Print the report (templates, linters, findings) as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

impl Args {
    /// The default templates with every linter.
    pub fn all() -> Args {
        Args { paths: Vec::new(), config: PathBuf::from("deploy.toml"), only: Vec::new(), json: false }
    }
}

/// One of the linters.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Linter {
    CfnLint,
    Checkov,
    CfnNag,
    /// The project's Guard rules (`cfn/guard/*.guard`, see `lint/cfn_guard.rs`).
    CfnGuard,
    /// The pattern's own invariants (see `lint/rules.rs`).
    Rules,
}

impl Linter {
    const ALL: [Linter; 5] = [Linter::CfnLint, Linter::Checkov, Linter::CfnNag, Linter::CfnGuard, Linter::Rules];
}

/// What a linter did in this run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Ran,
    /// Not installed (cfn_nag_scan not on PATH).
    Absent,
    /// Left out by `--only`.
    NotSelected,
}

/// One problem in one template.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Finding {
    /// The template, relative to the project root when inside it.
    pub file: String,
    pub line: usize,
    /// `cfn-lint`, `checkov`, `cfn_nag`, `cfn-guard` or `gbg` (the pattern's own rules).
    pub tool: String,
    /// The tool's rule id (`E3012`, `CKV_AWS_18`, `W35`, `S3_BUCKET_VERSIONING`, `bucket-tls`).
    pub rule: String,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}:{}: [{} {}] {}", self.file, self.line, self.tool, self.rule, self.message)
    }
}

/// The result of a lint.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Every template linted, relative to the project root.
    pub templates: Vec<String>,
    pub linters: BTreeMap<Linter, Status>,
    /// Sorted, each once.
    pub findings: Vec<Finding>,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let report = lint(ctx, &args)?;
    for finding in &report.findings {
        ctx.printer.text(finding);
    }
    if args.json {
        ctx.printer.json(&report)?;
    }
    let ran: Vec<String> = report
        .linters
        .iter()
        .filter(|(_, status)| **status == Status::Ran)
        .map(|(linter, _)| linter_name(*linter).to_string())
        .collect();
    let summary = format!("{} templates with {}", report.templates.len(), ran.join(", "));
    if report.findings.is_empty() {
        ctx.printer.status("Linted", format!("{summary}: no findings"));
        return Ok(());
    }
    let files: BTreeSet<&str> = report.findings.iter().map(|finding| finding.file.as_str()).collect();
    ctx.printer.error(format!(
        "{} findings in {} of {summary}; fix them, or suppress one on its resource with a written reason for every \
         linter that raises it (checkov `skip`, cfn_nag `rules_to_suppress`, Guard `SuppressedRules` and `Reasons`, \
         gbg `rules_to_suppress`)",
        report.findings.len(),
        files.len()
    ));
    Err(Exit(1).into())
}

/// Lints the templates `args` names and returns every finding. Errors (unreadable file, YAML
/// syntax, not a template, a linter that cannot run) are returned, not reported as findings.
pub fn lint(ctx: &Ctx, args: &Args) -> Result<Report> {
    let root = &ctx.root;
    let default_set = args.paths.is_empty();
    let files = if default_set {
        template::files(&root.join("cfn"))?
    } else {
        let mut files = Vec::new();
        for path in &args.paths {
            let path = if path.is_absolute() { path.clone() } else { root.join(path) };
            if path.is_dir() {
                files.extend(template::files(&path)?);
            } else if path.exists() {
                files.push(path);
            } else {
                bail!("{} does not exist; name a template or a folder of templates", path.display());
            }
        }
        files
    };
    if files.is_empty() && !default_set {
        let named: Vec<String> = args.paths.iter().map(|path| path.display().to_string()).collect();
        return Err(Usage::new(
            named.join(" "),
            "no template there (looked for *.yaml, *.yml, *.json, *.template)",
            "name a template or a folder holding one",
        )
        .into());
    }
    if files.is_empty() {
        bail!("no template to lint (looked for *.yaml, *.yml, *.json, *.template)");
    }

    let mut templates = Vec::new();
    let mut errors = Vec::new();
    for file in &files {
        match Template::load(file) {
            Ok(template) => templates.push(template),
            // Name the file as the findings do: relative to the project root.
            Err(error) => errors.push(format!("{error:#}").replace(&format!("{}/", root.display()), "")),
        }
    }
    if !errors.is_empty() {
        bail!("{} of {} files cannot be linted:\n{}", errors.len(), files.len(), errors.join("\n"));
    }

    let mut regions = Vec::new();
    if default_set {
        let config_path = if args.config.is_absolute() { args.config.clone() } else { root.join(&args.config) };
        let config = Config::load(&config_path).with_context(|| {
            format!("loading {} to expand the pipeline template; fix it or pass --config", config_path.display())
        })?;
        regions = config.regions();
        let prototype_path = root.join("cfn/tools/pipeline.yaml");
        let Some(prototype) = templates.iter().find(|template| template.path == prototype_path) else {
            bail!("{} is missing: the pipeline prototype is part of the project", prototype_path.display());
        };
        let expanded = template::write_expanded_pipeline(prototype, &config, &project::target_dir().join("cfn"))?;
        templates.push(Template::load(&expanded)?);
    }

    let selected = |linter: Linter| args.only.is_empty() || args.only.contains(&linter);
    let mut linters: BTreeMap<Linter, Status> = Linter::ALL
        .into_iter()
        .map(|linter| (linter, if selected(linter) { Status::Ran } else { Status::NotSelected }))
        .collect();
    let venv =
        if selected(Linter::CfnLint) || selected(Linter::Checkov) { Some(Venv::ensure(&ctx.printer)?) } else { None };
    let guard = if selected(Linter::CfnGuard) {
        Some(tools::CFN_GUARD.ensure(&ctx.printer).context("preparing cfn-guard, which runs the rules in cfn/guard")?)
    } else {
        None
    };
    let nag = if selected(Linter::CfnNag) { cfn_nag::find() } else { None };
    if selected(Linter::CfnNag) && nag.is_none() {
        linters.insert(Linter::CfnNag, Status::Absent);
        ctx.printer.note(
            "cfn_nag_scan is not on PATH: cfn_nag skipped (the controls it checks are Guard rules too; to run it \
             as well: `gem install cfn-nag`)",
        );
    }

    let paths: Vec<PathBuf> = templates.iter().map(|template| template.path.clone()).collect();
    let template_refs: Vec<&Template> = templates.iter().collect();
    let guard_rules = root.join(cfn_guard::RULES_DIR);
    let count = paths.len();
    let (external, checkov_report) = std::thread::scope(|scope| -> Result<(Vec<Finding>, Option<checkov::Report>)> {
        let cfn_lint = venv.as_ref().filter(|_| selected(Linter::CfnLint)).map(|venv| {
            scope.spawn(|| {
                let progress = ctx.printer.progress("Running", format!("cfn-lint on {count} templates"));
                let result = cfn_lint::run(venv, &paths, &regions);
                progress.finish("Ran", format!("cfn-lint on {count} templates"));
                result
            })
        });
        let checkov = venv.as_ref().filter(|_| selected(Linter::Checkov)).map(|venv| {
            scope.spawn(|| {
                let progress = ctx.printer.progress("Running", format!("checkov on {count} templates"));
                let result = checkov::run(venv, &paths);
                progress.finish("Ran", format!("checkov on {count} templates"));
                result
            })
        });
        let nag = nag.as_deref().map(|bin| {
            scope.spawn(|| {
                let progress = ctx.printer.progress("Running", format!("cfn_nag on {count} templates"));
                let result = cfn_nag::run(bin, &paths);
                progress.finish("Ran", format!("cfn_nag on {count} templates"));
                result
            })
        });
        let guard = guard.as_deref().map(|bin| {
            scope.spawn(|| {
                let progress = ctx.printer.progress("Running", format!("cfn-guard on {count} templates"));
                let result = cfn_guard::run(bin, &guard_rules, &template_refs);
                progress.finish("Ran", format!("cfn-guard on {count} templates"));
                result
            })
        });
        let mut findings = Vec::new();
        if let Some(handle) = cfn_lint {
            findings.extend(join(handle, "cfn-lint")?);
        }
        if let Some(handle) = nag {
            findings.extend(join(handle, "cfn_nag")?);
        }
        if let Some(handle) = guard {
            findings.extend(join(handle, "cfn-guard")?);
        }
        let checkov = checkov.map(|handle| join(handle, "checkov")).transpose()?;
        Ok((findings, checkov))
    })?;

    let mut findings: Vec<Finding> = external.into_iter().map(|finding| relative(root, finding)).collect();
    if let Some(report) = checkov_report {
        let skipped: BTreeSet<(String, String, String)> = report
            .skipped
            .into_iter()
            .map(|(file, resource, check)| (display(root, Path::new(&file)), resource, check))
            .collect();
        for template in &templates {
            findings.extend(stale_suppressions(template, &display(root, &template.path), &skipped));
        }
        findings.extend(report.findings.into_iter().map(|finding| relative(root, finding)));
    }
    if selected(Linter::Rules) {
        for template in &templates {
            findings.extend(rules::check(template, &display(root, &template.path)));
        }
    }
    findings.sort();
    findings.dedup();
    Ok(Report {
        templates: templates.iter().map(|template| display(root, &template.path)).collect(),
        linters,
        findings,
    })
}

fn linter_name(linter: Linter) -> &'static str {
    match linter {
        Linter::CfnLint => "cfn-lint",
        Linter::Checkov => "checkov",
        Linter::CfnNag => "cfn_nag",
        Linter::CfnGuard => "cfn-guard",
        Linter::Rules => "the pattern's rules",
    }
}

fn join<T>(handle: std::thread::ScopedJoinHandle<'_, Result<T>>, name: &str) -> Result<T> {
    match handle.join() {
        Ok(result) => result,
        Err(_) => bail!("the {name} thread panicked"),
    }
}

/// `path` relative to the project root when it is inside it.
fn display(root: &Path, path: &Path) -> String {
    let absolute = if path.is_absolute() { path.to_path_buf() } else { root.join(path) };
    absolute.strip_prefix(root).unwrap_or(&absolute).display().to_string()
}

fn relative(root: &Path, finding: Finding) -> Finding {
    Finding { file: display(root, Path::new(&finding.file)), ..finding }
}

/// A checkov suppression in `template` that checkov did not report as skipped: that check does
/// not run on that resource (any more), so the suppression hides nothing and misleads.
fn stale_suppressions(template: &Template, file: &str, skipped: &BTreeSet<(String, String, String)>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (id, resource) in template.resources() {
        let kind = resource.get("Type").and_then(Value::as_str).unwrap_or_default();
        let skips = resource.pointer("/Metadata/checkov/skip").and_then(Value::as_array).into_iter().flatten();
        for (index, skip) in skips.enumerate() {
            let Some(check) = skip.get("id").and_then(Value::as_str) else { continue };
            if !skipped.contains(&(file.to_string(), format!("{kind}.{id}"), check.to_string())) {
                findings.push(Finding {
                    file: file.to_string(),
                    line: template
                        .line(&format!("/Resources/{}/Metadata/checkov/skip/{index}", template::pointer_segment(id))),
                    tool: rules::TOOL.to_string(),
                    rule: "stale-suppression".into(),
                    message: format!(
                        "{id} suppresses checkov {check}, which checkov does not run on it: remove the suppression"
                    ),
                });
            }
        }
    }
    findings
}
