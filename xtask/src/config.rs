//! `deploy.toml`: the topology (the tools account, every workload account with its region) and
//! the few knobs of the service, the release and the gitflow.
//!
//! The file is validated completely before anything touches AWS: every problem is collected
//! (not just the first), each reported as `deploy.toml:LINE:COL: field.path: what is wrong` with a
//! `help:` line giving the fix, and the command exits with code 2 ([`Invalid`]). Field paths are
//! dotted, list entries indexed from 0 (`workloads[1].account`). The reader (`config/check.rs`)
//! walks the document with its spans; each rule and the reason for its limits lives in
//! `config/rules.rs`.
//!
//! The types here are the validated result; names derived from them (stacks, buckets, roles)
//! live here too, so the plan, the templates' parameters and the tests agree on one spelling.
//! What a change of each field does once the stacks exist (in place, with the next release, or
//! refused) is written down once, in `config/changes.rs`.

pub mod changes;
mod check;
mod rules;

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use crate::output::Printer;

pub use check::{APP_MAX, WORKLOAD_NAME_MAX};
pub use rules::{REGIONS, suggest};

/// `--config` and `--local`, shared by every command that reads the topology or talks to AWS.
#[derive(clap::Args, Clone, Debug)]
pub struct Target {
    /// The topology file.
    #[arg(long, default_value = "deploy.toml", value_name = "PATH")]
    pub config: PathBuf,
    /// Run against the local stack (AWS emulator and Docker registries on 127.0.0.1) instead of AWS;
    /// also set by GBG_LOCAL=1 (how the pipeline rehearsal's build reaches the local stack).
    #[arg(long, env = "GBG_LOCAL", value_parser = boolish)]
    pub local: bool,
}

impl Target {
    /// Reads and validates the config file. A relative `--config` is taken from the current
    /// directory; when that has no such file, from the project root `root` (so the default
    /// `deploy.toml` is found from any subdirectory of the clone).
    pub fn load(&self, root: &Path) -> Result<Config> {
        let path = if self.config.is_relative() && !self.config.exists() && root.join(&self.config).exists() {
            root.join(&self.config)
        } else {
            self.config.clone()
        };
        Config::load(&path)
    }

    /// The flags again, as a child `cargo xtask` step takes them (`ci build` passes them on).
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec!["--config".to_string(), self.config.display().to_string()];
        if self.local {
            args.push("--local".into());
        }
        args
    }
}

/// The validated topology.
#[derive(Clone, Debug, Serialize)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    /// The application's name: prefix of every stack and the name of its repository, cluster,
    /// service and pipeline. Lowercase letters, digits and hyphens.
    pub app: String,
    pub tools: Tools,
    /// At least one; unique names and unique (account, region) pairs.
    pub workloads: Vec<Workload>,
    pub service: Service,
    pub release: Release,
    pub source: Source,
    pub gitflow: Gitflow,
    pub names: Names,
    pub local: Local,
}

/// The central account: key, buckets, repository, build, pipeline, gitflow.
#[derive(Clone, Debug, Serialize)]
pub struct Tools {
    pub account: String,
    pub region: String,
    pub access: Access,
}

/// One account and region that runs the service.
#[derive(Clone, Debug, Serialize)]
pub struct Workload {
    /// Short name, unique: lowercase letters, digits and hyphens.
    pub name: String,
    pub account: String,
    pub region: String,
    /// Deploy wave, 1-based: the pipeline and `release` deploy wave 1 first, then 2, ...
    pub wave: u32,
    pub access: Access,
}

/// How the xtask gets credentials for an account.
///
/// The loader resolves the defaults, so callers never interpret an absent setting: the tools
/// account gets [`Access::Default`] unless it names a profile or a role; a workload gets
/// `Role(DEFAULT_ROLE)` unless it names a profile or another role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Access {
    /// The base identity: the default credential chain (env, `AWS_PROFILE`, SSO, instance
    /// role). Only the tools account uses it.
    Default,
    /// A named profile from `~/.aws/config`.
    Profile(String),
    /// Assume `arn:aws:iam::<account>:role/<name>` from the base identity.
    Role(String),
}

/// The role assumed in a workload account when the config names neither a profile nor a role:
/// the one AWS Organizations creates in every member account.
pub const DEFAULT_ROLE: &str = "OrganizationAccountAccessRole";

#[derive(Clone, Debug, Serialize)]
pub struct Service {
    /// Tasks per workload once deployed.
    pub desired_count: u32,
    /// The port the container listens on (the app's `PORT`), and the target groups' port.
    pub container_port: u16,
    /// Fargate task size: CPU units (1024 = 1 vCPU) and MiB, one of Fargate's combinations.
    /// Without `memory` in the file, the smallest the CPU allows.
    pub cpu: u32,
    pub memory: u32,
    /// CloudWatch Logs retention of the service's log group.
    pub log_retention_days: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct Release {
    /// CodeDeploy deployment config, e.g. `CodeDeployDefault.ECSCanary10Percent5Minutes`.
    pub deployment_config: String,
    /// Minutes the blue task set lives after traffic moved to green.
    pub termination_wait_minutes: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct Source {
    /// `codecommit` (default) or `codeconnections`.
    pub provider: SourceProvider,
    /// The CodeCommit repository name (default: the app name).
    pub repository: String,
    /// For CodeConnections: the connection ARN and `owner/repo`.
    pub connection_arn: Option<String>,
    pub full_repository_id: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceProvider {
    CodeCommit,
    CodeConnections,
}

#[derive(Clone, Debug, Serialize)]
pub struct Gitflow {
    pub develop_branch: String,
    pub main_branch: String,
    /// Merge the develop-to-main pull request once its validation build passes.
    pub auto_merge: bool,
    pub merge_strategy: MergeStrategy,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MergeStrategy {
    FastForward,
    Squash,
}

impl MergeStrategy {
    /// As the config and the gitflow stack's `MergeStrategy` parameter spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            MergeStrategy::FastForward => "fast-forward",
            MergeStrategy::Squash => "squash",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Names {
    /// Artifact buckets are `<bucket_prefix>-<tools account>-<region>`; default `<app>-artifacts`.
    pub bucket_prefix: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Local {
    /// Port of the local AWS emulator on 127.0.0.1.
    pub emulator_port: u16,
    /// Port on 127.0.0.1 where `deploy --local` publishes the site (and `release --local` shifts it).
    pub site_port: u16,
}

impl Default for Service {
    fn default() -> Service {
        Service { desired_count: 2, container_port: 8080, cpu: 256, memory: 512, log_retention_days: 30 }
    }
}

impl Default for Release {
    fn default() -> Release {
        Release {
            deployment_config: "CodeDeployDefault.ECSCanary10Percent5Minutes".into(),
            termination_wait_minutes: 5,
        }
    }
}

impl Default for Gitflow {
    fn default() -> Gitflow {
        Gitflow {
            develop_branch: "develop".into(),
            main_branch: "main".into(),
            auto_merge: true,
            merge_strategy: MergeStrategy::FastForward,
        }
    }
}

impl Default for Local {
    fn default() -> Local {
        Local { emulator_port: 4566, site_port: 8080 }
    }
}

impl Config {
    /// Reads and validates `path`. Every failure, an unreadable file included, is an
    /// [`Invalid`] (downcast it from the `anyhow::Error`; `main` exits with code 2 for it).
    /// Nothing here touches the network.
    pub fn load(path: &Path) -> Result<Config> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) => {
                let help = if error.kind() == std::io::ErrorKind::NotFound {
                    "run from the project root (its deploy.toml is the default), or pass --config PATH".to_string()
                } else if path.is_dir() {
                    format!(
                        "it is a folder: name the topology file, e.g. --config {}",
                        path.join("deploy.toml").display()
                    )
                } else {
                    "check that the file is readable UTF-8 text".to_string()
                };
                let problem =
                    Problem { position: None, field: "file".into(), message: format!("cannot read it: {error}"), help };
                return Err(Invalid { path: path.to_path_buf(), problems: vec![problem] }.into());
            }
        };
        Ok(Config::parse(path, &text)?)
    }

    /// Validates `text` as the contents of `path` (used in messages only).
    pub fn parse(path: &Path, text: &str) -> Result<Config, Invalid> {
        check::read(path, text)
    }

    /// Every region the tools account needs a key and a bucket in: its own region first, then
    /// each workload region once, in config order.
    pub fn regions(&self) -> Vec<String> {
        let mut seen = BTreeSet::new();
        std::iter::once(&self.tools.region)
            .chain(self.workloads.iter().map(|workload| &workload.region))
            .filter(|region| seen.insert(region.as_str()))
            .cloned()
            .collect()
    }

    /// The waves in order, each with its workloads in config order.
    pub fn waves(&self) -> Vec<(u32, Vec<&Workload>)> {
        let numbers: BTreeSet<u32> = self.workloads.iter().map(|workload| workload.wave).collect();
        numbers
            .into_iter()
            .map(|wave| (wave, self.workloads.iter().filter(|workload| workload.wave == wave).collect()))
            .collect()
    }

    pub fn workload(&self, name: &str) -> Option<&Workload> {
        self.workloads.iter().find(|workload| workload.name == name)
    }

    /// `<app>-<stack>`, e.g. `web-network`. Stack names are unique per account and region, and the
    /// config forbids two workloads in one account and region.
    pub fn stack_name(&self, stack: &str) -> String {
        format!("{}-{stack}", self.app)
    }

    /// The artifact bucket of `region` in the tools account.
    pub fn bucket_name(&self, region: &str) -> String {
        format!("{}-{}-{region}", self.names.bucket_prefix, self.tools.account)
    }

    /// The access-log bucket beside [`Config::bucket_name`].
    pub fn log_bucket_name(&self, region: &str) -> String {
        format!("{}-logs", self.bucket_name(region))
    }

    /// The key alias, the same in every region.
    pub fn key_alias(&self) -> String {
        format!("alias/{}-artifacts", self.app)
    }

    /// ARN of a role in the tools account by its name.
    pub fn tools_role_arn(&self, name: &str) -> String {
        format!("arn:aws:iam::{}:role/{name}", self.tools.account)
    }

    /// Name of the CodeBuild role (and project) that builds and pushes the image.
    pub fn build_role_name(&self) -> String {
        format!("{}-build", self.app)
    }

    /// Name of the pipeline's service role.
    pub fn pipeline_role_name(&self) -> String {
        format!("{}-pipeline", self.app)
    }

    /// Name of the gitflow Lambda's role.
    pub fn gitflow_role_name(&self) -> String {
        format!("{}-gitflow", self.app)
    }

    /// Name of the validation CodeBuild project, run on every develop-to-main pull request.
    pub fn validate_project_name(&self) -> String {
        format!("{}-validate", self.app)
    }

    /// Name of the role in a workload account that the pipeline assumes to deploy there.
    /// IAM names are global per account, so the region is part of it.
    pub fn release_role_name(&self, workload: &Workload) -> String {
        format!("{}-release-{}", self.app, workload.region)
    }

    pub fn release_role_arn(&self, workload: &Workload) -> String {
        format!("arn:aws:iam::{}:role/{}", workload.account, self.release_role_name(workload))
    }
}

/// ARN of the multi-Region key `key_id` (`mrk-...`) in `region`: a replica keeps the primary's id,
/// so its ARN differs only in the region.
pub fn key_arn(account: &str, region: &str, key_id: &str) -> String {
    format!("arn:aws:kms:{region}:{account}:key/{key_id}")
}

/// The English name of a commercial region (`eu-central-1` -> `Europe (Frankfurt)`).
pub fn region_name(region: &str) -> Option<&'static str> {
    REGIONS.iter().find(|(code, _)| *code == region).map(|(_, name)| *name)
}

/// The config file cannot be used: every problem in it, in file order. `main` prints them with
/// [`Invalid::report`] and exits with [`Invalid::EXIT_CODE`]; nothing was sent to AWS.
#[derive(Debug, thiserror::Error)]
pub struct Invalid {
    pub path: PathBuf,
    /// At least one.
    pub problems: Vec<Problem>,
}

/// One thing wrong in the config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line and column (in characters); `None` when the file as a whole is at fault.
    pub position: Option<(usize, usize)>,
    /// Dotted path of the field (`workloads[1].account`); `syntax` for a TOML syntax error,
    /// `file` for an unreadable file.
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// The fix; may span several lines (an example to paste).
    pub help: String,
}

impl Invalid {
    /// The exit code of a command whose config is invalid.
    pub const EXIT_CODE: u8 = 2;

    /// `deploy.toml:14:11: workloads[1].account: ...` and an indented `help:` below it.
    pub fn describe(&self, problem: &Problem) -> String {
        let place = match problem.position {
            Some((line, column)) => format!("{}:{line}:{column}", self.path.display()),
            None => self.path.display().to_string(),
        };
        let help = problem.help.replace('\n', "\n        ");
        format!("{place}: {}: {}\n  help: {help}", problem.field, problem.message)
    }

    /// The count line that ends the report.
    pub fn summary(&self) -> String {
        let count = self.problems.len();
        let plural = if count == 1 { "" } else { "s" };
        format!("{} has {count} problem{plural}; fix and run again (nothing was sent to AWS)", self.path.display())
    }

    /// Prints every problem and the count as error lines (shown even with `--quiet`).
    pub fn report(&self, printer: &Printer) {
        for problem in &self.problems {
            printer.error(self.describe(problem));
        }
        printer.error(self.summary());
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for problem in &self.problems {
            writeln!(formatter, "{}", self.describe(problem))?;
        }
        write!(formatter, "{}", self.summary())
    }
}

/// A switch also set from the environment (`--local` by `GBG_LOCAL`): the words clap's
/// `BoolishValueParser` takes, with a message that lists them.
pub fn boolish(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "y" | "t" | "on" => Ok(true),
        "0" | "false" | "no" | "n" | "f" | "off" | "" => Ok(false),
        _ => Err("expected 1, true, yes or on (set), or 0, false, no or off (unset)".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid file: each case below breaks it in one or more places.
    const VALID: &str = r#"app = "web"

[tools]
account = "111111111111"
region = "ap-south-1"

[[workloads]]
name = "india"
account = "222222222222"
region = "ap-south-1"
"#;

    /// Parses `input` and checks that it is rejected with exactly the `expected` problems, each
    /// given as (field, line, text in its message or help), and that each rendered line carries
    /// `deploy.toml:LINE:COL: field:`.
    #[track_caller]
    fn check(input: &str, expected: &[(&str, usize, &str)]) {
        let invalid = match Config::parse(Path::new("deploy.toml"), input) {
            Ok(_) => panic!("expected problems in:\n{input}"),
            Err(invalid) => invalid,
        };
        let report = invalid.to_string();
        let found: Vec<(String, usize)> = invalid
            .problems
            .iter()
            .map(|problem| (problem.field.clone(), problem.position.map_or(0, |(line, _)| line)))
            .collect();
        assert_eq!(
            found.len(),
            expected.len(),
            "expected {} problems, found {found:?} in:\n{input}\n{report}",
            expected.len()
        );
        for (field, line, text) in expected {
            let problem = invalid
                .problems
                .iter()
                .find(|problem| problem.field == *field && problem.position.is_some_and(|(at, _)| at == *line))
                .unwrap_or_else(|| panic!("no problem at {field} line {line}; found {found:?}\n{report}"));
            let rendered = invalid.describe(problem);
            assert!(rendered.starts_with(&format!("deploy.toml:{line}:")), "{rendered}");
            assert!(rendered.contains(&format!(": {field}: ")), "{rendered}");
            assert!(rendered.contains(text), "expected {text:?} in:\n{rendered}");
        }
        let plural = if expected.len() == 1 { "" } else { "s" };
        let count = format!("deploy.toml has {} problem{plural}; fix and run again", expected.len());
        assert!(report.lines().last().is_some_and(|last| last.starts_with(&count)), "{report}");
    }

    /// A problem a case expects: field, line, text in its message or help.
    type Expected = (&'static str, usize, &'static str);

    fn valid_with(extra: &str) -> String {
        format!("{VALID}{extra}")
    }

    #[test]
    fn rejects_bad_configs() {
        let cases: Vec<(&str, String, Vec<Expected>)> = vec![
            ("syntax: unclosed string", "app = \"web\n".into(), vec![("syntax", 1, "invalid basic string")]),
            (
                "syntax: unquoted region",
                VALID.replace("region = \"ap-south-1\"\n\n[[", "region = ap-south-1\n\n[["),
                vec![("syntax", 5, "double quotes")],
            ),
            (
                "syntax: duplicate key",
                VALID.replace("app = \"web\"\n", "app = \"web\"\napp = \"api\"\n"),
                vec![("syntax", 2, "first on line 1")],
            ),
            (
                "syntax: account with a leading zero",
                VALID.replace("\"222222222222\"", "022222222222"),
                vec![("syntax", 9, "account = \"012345678901\"")],
            ),
            (
                "empty file",
                String::new(),
                vec![
                    ("app", 1, "add app = \"web\""),
                    ("tools", 1, "missing section [tools]"),
                    ("workloads", 1, "at least one [[workloads]]"),
                ],
            ),
            (
                "missing tools.region",
                VALID.replace("region = \"ap-south-1\"\n\n[[", "\n\n[["),
                vec![("tools.region", 3, "[tools] has no `region`")],
            ),
            (
                "missing workload account",
                VALID.replace("account = \"222222222222\"\n", ""),
                vec![("workloads[0].account", 7, "add account = \"111111111111\"")],
            ),
            (
                "integer account",
                VALID.replace("\"111111111111\"", "111111111111"),
                vec![("tools.account", 4, "quote it: account = \"111111111111\"")],
            ),
            (
                "11-digit account",
                VALID.replace("\"222222222222\"", "\"22222222222\""),
                vec![("workloads[0].account", 9, "has 11 digits")],
            ),
            (
                "account with dashes",
                VALID.replace("\"222222222222\"", "\"2222-2222-2222\""),
                vec![("workloads[0].account", 9, "write \"222222222222\"")],
            ),
            (
                "wrong type: app is a number",
                VALID.replace("app = \"web\"", "app = 7"),
                vec![("app", 1, "expected a string, found an integer `7`")],
            ),
            (
                "wrong type: wave is a string",
                valid_with("wave = \"2\"\n"),
                vec![("workloads[0].wave", 11, "expected an integer, found a string")],
            ),
            (
                "unknown region, near miss",
                VALID.replace("region = \"ap-south-1\"\n\n[[", "region = \"ap-suoth-1\"\n\n[["),
                vec![("tools.region", 5, "did you mean \"ap-south-1\"?")],
            ),
            (
                "other partition",
                VALID.replace(
                    "name = \"india\"\naccount = \"222222222222\"\nregion = \"ap-south-1\"",
                    "name = \"india\"\naccount = \"222222222222\"\nregion = \"us-gov-west-1\"",
                ),
                vec![("workloads[0].region", 10, "commercial partition (aws) only")],
            ),
            (
                "unknown key at top level",
                VALID.replace("app = \"web\"\n", "app = \"web\"\nregoin = \"eu-west-1\"\n"),
                vec![("regoin", 2, "did you mean `region`? it belongs in [tools] or [[workloads]]")],
            ),
            (
                "unknown key in a workload",
                valid_with("acount = \"1\"\n"),
                vec![("workloads[0].acount", 11, "did you mean `account`?")],
            ),
            (
                "key of another section",
                valid_with("desired_count = 3\n"),
                vec![("workloads[0].desired_count", 11, "belongs in [service]")],
            ),
            ("unknown section", valid_with("[servcie]\ncpu = 256\n"), vec![("servcie", 11, "did you mean `service`?")]),
            (
                "top-level key below a header",
                valid_with("\n[service]\ncpu = 256\napp = \"api\"\n"),
                vec![("service.app", 14, "below a [service] header belongs to [service]")],
            ),
            (
                "workloads as a single table",
                VALID.replace("[[workloads]]", "[workloads]"),
                vec![("workloads", 7, "write `[[workloads]]` (two brackets)")],
            ),
            (
                "empty workload list",
                VALID.split("[[workloads]]").next().map(|head| format!("workloads = []\n{head}")).unwrap_or_default(),
                vec![("workloads", 1, "the list of workloads is empty")],
            ),
            (
                "duplicate workload names",
                valid_with(
                    "\n[[workloads]]\nname = \"india\"\naccount = \"333333333333\"\nregion = \"eu-central-1\"\n",
                ),
                vec![("workloads[1].name", 13, "also the name of workloads[0] (line 7)")],
            ),
            (
                "two workloads in one account and region",
                valid_with("\n[[workloads]]\nname = \"mumbai\"\naccount = \"222222222222\"\nregion = \"ap-south-1\"\n"),
                vec![("workloads[1].region", 15, "already runs in account 222222222222 and ap-south-1")],
            ),
            (
                "profile and role both set",
                valid_with("profile = \"india\"\nrole = \"Deploy\"\n"),
                vec![("workloads[0].role", 12, "both `profile` and `role` are set")],
            ),
            (
                "role given as an ARN",
                valid_with("role = \"arn:aws:iam::222222222222:role/Deploy\"\n"),
                vec![("workloads[0].role", 11, "write \"Deploy\"")],
            ),
            (
                "app with capitals and underscore",
                VALID.replace("app = \"web\"", "app = \"My_Web\""),
                vec![("app", 1, "e.g. \"my-web\"")],
            ),
            (
                "app too long for a target group",
                VALID.replace("app = \"web\"", &format!("app = \"{}\"", "a".repeat(27))),
                vec![("app", 1, "`<app>-green` must fit AWS's 32-character limit")],
            ),
            (
                "default bucket prefix too long",
                VALID.replace("app = \"web\"", &format!("app = \"{}\"", "a".repeat(25))),
                vec![("app", 1, "shorten app to at most 24 characters, or set [names] bucket_prefix")],
            ),
            (
                "bucket prefix with capitals and xn--",
                valid_with("[names]\nbucket_prefix = \"xn--Web\"\n"),
                vec![("names.bucket_prefix", 12, "contains `W`")],
            ),
            (
                "bucket prefix reserved by S3",
                valid_with("[names]\nbucket_prefix = \"sthree-web\"\n"),
                vec![("names.bucket_prefix", 12, "starts with `sthree-`, which S3 reserves")],
            ),
            (
                "workload name with a space",
                VALID.replace("name = \"india\"", "name = \"south india\""),
                vec![("workloads[0].name", 8, "e.g. \"south-india\"")],
            ),
            ("wave 0", valid_with("wave = 0\n"), vec![("workloads[0].wave", 11, "waves count from 1")]),
            (
                "container port below 1024",
                valid_with("[service]\ncontainer_port = 80\n"),
                vec![("service.container_port", 12, "non-root")],
            ),
            (
                "Fargate size that does not exist",
                valid_with("[service]\ncpu = 1024\nmemory = 512\n"),
                vec![("service.memory", 13, "memory is 2048 to 8192 in steps of 1024")],
            ),
            (
                "Fargate CPU that does not exist",
                valid_with("[service]\ncpu = 300\n"),
                vec![("service.cpu", 12, "one of 256, 512, 1024")],
            ),
            (
                "desired count of zero",
                valid_with("[service]\ndesired_count = 0\n"),
                vec![("service.desired_count", 12, "cargo xtask destroy")],
            ),
            (
                "log retention CloudWatch does not offer",
                valid_with("[service]\nlog_retention_days = 10\n"),
                vec![("service.log_retention_days", 12, "one of 1, 3, 5, 7, 14")],
            ),
            (
                "EC2 deployment config",
                valid_with("[release]\ndeployment_config = \"CodeDeployDefault.OneAtATime\"\n"),
                vec![("release.deployment_config", 12, "not a predefined CodeDeploy config for ECS")],
            ),
            (
                "codeconnections without its fields",
                valid_with("[source]\nprovider = \"codeconnections\"\n"),
                vec![
                    ("source.connection_arn", 11, "needs `connection_arn`"),
                    ("source.full_repository_id", 11, "needs `full_repository_id`"),
                ],
            ),
            (
                "github as a provider",
                valid_with("[source]\nprovider = \"github\"\n"),
                vec![("source.provider", 12, "provider = \"codeconnections\"")],
            ),
            (
                "same develop and main branch",
                valid_with("[gitflow]\ndevelop_branch = \"main\"\n"),
                vec![("gitflow.develop_branch", 12, "both `main`")],
            ),
            (
                "branch that is not a git ref",
                valid_with("[gitflow]\nmain_branch = \"my main\"\n"),
                vec![("gitflow.main_branch", 12, "not a valid branch name")],
            ),
            (
                "merge strategy typo",
                valid_with("[gitflow]\nmerge_strategy = \"fast_forward\"\n"),
                vec![("gitflow.merge_strategy", 12, "did you mean \"fast-forward\"?")],
            ),
            (
                "emulator port out of range",
                valid_with("[local]\nemulator_port = 70000\n"),
                vec![("local.emulator_port", 12, "from 1024 to 65535")],
            ),
            (
                "emulator on the default site port",
                valid_with("[local]\nemulator_port = 8080\n"),
                vec![("local.emulator_port", 12, "cannot share port 8080")],
            ),
            (
                "site on the emulator's port",
                valid_with("[local]\nemulator_port = 5000\nsite_port = 5000\n"),
                vec![("local.site_port", 13, "cannot share port 5000")],
            ),
            (
                "section of the wrong type",
                VALID.replace("app = \"web\"", "app = \"web\"\nservice = 3"),
                vec![("service", 2, "expected a table")],
            ),
            (
                "inline list with a non-table entry keeps each entry's index",
                VALID.split("[[workloads]]").next().map(|head| {
                    format!("workloads = [\"india\", {{ name = \"eu\", account = \"333333333333\", region = \"frankfurt\" }}]\n{head}")
                }).unwrap_or_default(),
                vec![
                    ("workloads[0]", 1, "expected a table, found a string"),
                    ("workloads[1].region", 1, "Europe (Frankfurt) is \"eu-central-1\""),
                ],
            ),
            (
                "value with surrounding spaces",
                VALID.replace("name = \"india\"", "name = \"india \""),
                vec![("workloads[0].name", 8, "leading or trailing spaces")],
            ),
        ];
        assert!(cases.len() >= 20);
        for (name, input, expected) in cases {
            eprintln!("case: {name}");
            check(&input, &expected);
        }
    }

    /// Several independent mistakes in one file are all reported, in file order.
    #[test]
    fn reports_every_problem_in_file_order() {
        let input = r#"app = "Web"
[tools]
account = 111111111111
region = "eu-centrl-1"

[[workloads]]
name = "india"
account = "22222222222"
region = "us-east-1a"
wave = 0
colour = "blue"
"#;
        check(
            input,
            &[
                ("app", 1, "contains `W`"),
                ("tools.account", 3, "quote it"),
                ("tools.region", 4, "did you mean \"eu-central-1\"?"),
                ("workloads[0].account", 8, "has 11 digits"),
                ("workloads[0].region", 9, "availability zone"),
                ("workloads[0].wave", 10, "waves count from 1"),
                ("workloads[0].colour", 11, "unknown key `colour`"),
            ],
        );
        let invalid = Config::parse(Path::new("deploy.toml"), input).err().map(|invalid| invalid.problems);
        let lines: Vec<usize> =
            invalid.unwrap_or_default().iter().filter_map(|problem| problem.position).map(|(line, _)| line).collect();
        assert!(lines.windows(2).all(|pair| pair[0] <= pair[1]), "{lines:?}");
    }

    #[test]
    fn message_format() {
        let input = VALID.replace("\"222222222222\"", "\"22222222222\"");
        let invalid = Config::parse(Path::new("deploy.toml"), &input).err().map(|invalid| invalid.to_string());
        assert_eq!(
            invalid.as_deref(),
            Some(
                "deploy.toml:9:11: workloads[0].account: `22222222222` has 11 digits; an account id has exactly 12\n  \
                 help: leading zeros count: copy it from `aws sts get-caller-identity`, e.g. \"011111111111\"\n\
                 deploy.toml has 1 problem; fix and run again (nothing was sent to AWS)"
            )
        );
    }

    /// The repository's deploy.toml is the original sample's topology.
    #[test]
    fn default_topology() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy.toml");
        let config = match Config::load(&path) {
            Ok(config) => config,
            Err(error) => panic!("{error}"),
        };
        assert_eq!(config.app, "web");
        assert_eq!(
            (config.tools.account.as_str(), config.tools.region.as_str(), &config.tools.access),
            ("111111111111", "ap-south-1", &Access::Default)
        );
        let workloads: Vec<(&str, &str, &str, u32)> = config
            .workloads
            .iter()
            .map(|workload| {
                (workload.name.as_str(), workload.account.as_str(), workload.region.as_str(), workload.wave)
            })
            .collect();
        assert_eq!(
            workloads,
            [
                ("india", "222222222222", "ap-south-1", 1),
                ("europe", "333333333333", "eu-central-1", 2),
                ("us", "444444444444", "us-east-1", 2),
            ]
        );
        assert!(config.workloads.iter().all(|workload| workload.access == Access::Role(DEFAULT_ROLE.into())));
        assert_eq!(config.regions(), ["ap-south-1", "eu-central-1", "us-east-1"]);
        let waves: Vec<(u32, Vec<&str>)> = config
            .waves()
            .into_iter()
            .map(|(wave, workloads)| (wave, workloads.iter().map(|workload| workload.name.as_str()).collect()))
            .collect();
        assert_eq!(waves, [(1, vec!["india"]), (2, vec!["europe", "us"])]);
        assert_eq!(config.bucket_name("eu-central-1"), "web-artifacts-111111111111-eu-central-1");
        assert_eq!(config.log_bucket_name("us-east-1"), "web-artifacts-111111111111-us-east-1-logs");
        assert_eq!(config.key_alias(), "alias/web-artifacts");
        assert_eq!(config.stack_name("network"), "web-network");
        let europe = config.workload("europe").map(|workload| config.release_role_arn(workload));
        assert_eq!(europe.as_deref(), Some("arn:aws:iam::333333333333:role/web-release-eu-central-1"));
        assert_eq!(config.source.repository, "web");
        assert_eq!(config.service.memory, 512);
        assert_eq!(config.gitflow.merge_strategy, MergeStrategy::FastForward);
        assert_eq!(config.local.emulator_port, 4566);
    }

    /// Every optional section and both forms of tables (headers and inline) read back.
    #[test]
    fn reads_every_setting() {
        let input = r#"app = "shop"
tools = { account = "111111111111", region = "eu-west-1", role = "Deployer" }
workloads = [
  { name = "eu", account = "222222222222", region = "eu-west-1", profile = "eu" },
  { name = "us", account = "333333333333", region = "us-west-2", wave = 3, role = "path/Release" },
]
[service]
desired_count = 3
container_port = 9000
cpu = 1024
log_retention_days = 90
[release]
deployment_config = "MyCanary"
termination_wait_minutes = 0
[source]
provider = "codeconnections"
connection_arn = "arn:aws:codeconnections:eu-west-1:111111111111:connection/0a1b"
full_repository_id = "acme/shop"
[gitflow]
develop_branch = "dev"
main_branch = "release/prod"
auto_merge = false
merge_strategy = "squash"
[names]
bucket_prefix = "acme.shop"
[local]
emulator_port = 5000
"#;
        let config = match Config::parse(Path::new("deploy.toml"), input) {
            Ok(config) => config,
            Err(invalid) => panic!("{invalid}"),
        };
        assert_eq!(config.tools.access, Access::Role("Deployer".into()));
        assert_eq!(config.workloads[0].access, Access::Profile("eu".into()));
        assert_eq!(config.workloads[1].access, Access::Role("path/Release".into()));
        assert_eq!(config.waves().iter().map(|(wave, _)| *wave).collect::<Vec<_>>(), [1, 3]);
        assert_eq!(config.regions(), ["eu-west-1", "us-west-2"]);
        assert_eq!((config.service.cpu, config.service.memory), (1024, 2048), "memory defaults to the smallest size");
        assert_eq!(config.service.container_port, 9000);
        assert_eq!(config.release.deployment_config, "MyCanary");
        assert_eq!(config.source.provider, SourceProvider::CodeConnections);
        assert_eq!(config.source.full_repository_id.as_deref(), Some("acme/shop"));
        assert_eq!(config.source.repository, "shop");
        assert_eq!((config.gitflow.auto_merge, config.gitflow.merge_strategy), (false, MergeStrategy::Squash));
        assert_eq!(config.bucket_name("us-west-2"), "acme.shop-111111111111-us-west-2");
        assert_eq!(config.local.emulator_port, 5000);
    }
}
