//! `deploy.toml`: the topology (the tools account, every workload account with its region) and
//! the few knobs of the service, the release and the gitflow.
//!
//! The file is validated completely before anything touches AWS: every problem is collected,
//! each reported with file, line and the fix, and the command exits with code 2. The types here
//! are the validated result; names derived from them (stacks, buckets, roles) live here too, so
//! the plan, the templates' parameters and the tests agree on one spelling.
//!
//! SKELETON: the loader below is a plain serde read; the validating loader replaces it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

/// `--config` and `--local`, shared by every command that reads the topology or talks to AWS.
#[derive(clap::Args, Clone, Debug)]
pub struct Target {
    /// The topology file.
    #[arg(long, default_value = "deploy.toml", value_name = "PATH")]
    pub config: PathBuf,
    /// Run against the local stack (AWS emulator and Docker registries on 127.0.0.1) instead of AWS.
    #[arg(long)]
    pub local: bool,
}

/// The validated topology.
#[derive(Clone, Debug)]
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
#[derive(Clone, Debug)]
pub struct Tools {
    pub account: String,
    pub region: String,
    pub access: Access,
}

/// One account and region that runs the service.
#[derive(Clone, Debug)]
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// The default credential chain (env, `AWS_PROFILE`, SSO, instance role). For a workload this
    /// means: assume [`DEFAULT_ROLE`] from the base identity.
    Default,
    /// A named profile from `~/.aws/config`.
    Profile(String),
    /// Assume `arn:aws:iam::<account>:role/<name>` from the base identity.
    Role(String),
}

/// The role assumed in a workload account when the config names neither a profile nor a role:
/// the one AWS Organizations creates in every member account.
pub const DEFAULT_ROLE: &str = "OrganizationAccountAccessRole";

#[derive(Clone, Debug)]
pub struct Service {
    /// Tasks per workload once deployed.
    pub desired_count: u32,
    /// The port the container listens on (the app's `PORT`), and the target groups' port.
    pub container_port: u16,
    /// Fargate task size.
    pub cpu: u32,
    pub memory: u32,
    /// CloudWatch Logs retention of the service's log group.
    pub log_retention_days: u32,
}

#[derive(Clone, Debug)]
pub struct Release {
    /// CodeDeploy deployment config, e.g. `CodeDeployDefault.ECSCanary10Percent5Minutes`.
    pub deployment_config: String,
    /// Minutes the blue task set lives after traffic moved to green.
    pub termination_wait_minutes: u32,
}

#[derive(Clone, Debug)]
pub struct Source {
    /// `codecommit` (default) or `codeconnections`.
    pub provider: SourceProvider,
    /// The CodeCommit repository name (default: the app name).
    pub repository: String,
    /// For CodeConnections: the connection ARN and `owner/repo`.
    pub connection_arn: Option<String>,
    pub full_repository_id: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceProvider {
    CodeCommit,
    CodeConnections,
}

#[derive(Clone, Debug)]
pub struct Gitflow {
    pub develop_branch: String,
    pub main_branch: String,
    /// Merge the develop-to-main pull request once its validation build passes.
    pub auto_merge: bool,
    pub merge_strategy: MergeStrategy,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeStrategy {
    FastForward,
    Squash,
}

#[derive(Clone, Debug)]
pub struct Names {
    /// Artifact buckets are `<bucket_prefix>-<tools account>-<region>`; default `<app>-artifacts`.
    pub bucket_prefix: String,
}

#[derive(Clone, Debug)]
pub struct Local {
    /// Port of the local AWS emulator on 127.0.0.1.
    pub emulator_port: u16,
}

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let raw: RawConfig = toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        Ok(raw.into_config(path))
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

// ---- skeleton loader: replaced by the validating one ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    app: String,
    tools: RawTools,
    workloads: Vec<RawWorkload>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTools {
    account: String,
    region: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkload {
    name: String,
    account: String,
    region: String,
    #[serde(default = "one")]
    wave: u32,
}

fn one() -> u32 {
    1
}

impl RawConfig {
    fn into_config(self, path: &Path) -> Config {
        Config {
            path: path.to_path_buf(),
            names: Names { bucket_prefix: format!("{}-artifacts", self.app) },
            source: Source {
                provider: SourceProvider::CodeCommit,
                repository: self.app.clone(),
                connection_arn: None,
                full_repository_id: None,
            },
            app: self.app,
            tools: Tools { account: self.tools.account, region: self.tools.region, access: Access::Default },
            workloads: self
                .workloads
                .into_iter()
                .map(|workload| Workload {
                    name: workload.name,
                    account: workload.account,
                    region: workload.region,
                    wave: workload.wave,
                    access: Access::Default,
                })
                .collect(),
            service: Service { desired_count: 2, container_port: 8080, cpu: 256, memory: 512, log_retention_days: 30 },
            release: Release {
                deployment_config: "CodeDeployDefault.ECSCanary10Percent5Minutes".into(),
                termination_wait_minutes: 5,
            },
            gitflow: Gitflow {
                develop_branch: "develop".into(),
                main_branch: "main".into(),
                auto_merge: true,
                merge_strategy: MergeStrategy::FastForward,
            },
            local: Local { emulator_port: 4566 },
        }
    }
}
