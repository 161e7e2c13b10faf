//! `cargo xtask pipeline run --local`: the deployed pipeline, rehearsed stage by stage on this
//! machine as AWS would run it.
//!
//! It reads the pipeline the plan deploys (`target/cfn/pipeline.json` for the config, resolved
//! with the deployed `<app>-pipeline` stack: `pipeline/definition.rs`) and runs its stages in
//! order, each action under the identity AWS would give it (`pipeline/session.rs`):
//! - **Source** (CodeCommit or CodeConnections, `CODE_ZIP`), as the pipeline role: the configured
//!   branch of this git repository (`--ref` names another commit or branch) exported as CodePipeline
//!   delivers it, the files without `.git`, zipped into the tools region's artifact store under its
//!   key; the source variables (`CommitId`, `AuthorDate`, ...) are set.
//! - **Build** (CodeBuild), as the project's service role: the source unzipped into a fresh folder,
//!   `buildspec.yaml`'s own phases run there with `bash -e` (`pipeline/buildspec.rs`) and with
//!   CodeBuild's environment (its `CODEBUILD_*` variables, the buildspec's, the project's and the
//!   action's variables, the role's credentials); the files its `artifacts` section names are
//!   zipped into the artifact store as the build artifact, after checking they hold what every
//!   deploy action reads and that the build worked on the exported tree.
//! - **Deploy** (CodeDeployToECS), wave by wave, the actions of a stage at once: the artifact
//!   copied into the action's region's store (CodePipeline does this as its role), then, as the
//!   action's role assumed by the pipeline role, the workload's folder read from that store, the
//!   task definition registered, and the CodeDeploy deployment created with the AppSpec whose
//!   `<TASK_DEFINITION>` is that registration
//!   (https://docs.aws.amazon.com/codepipeline/latest/userguide/action-reference-ECSbluegreen.html).
//!
//! What this machine cannot do as AWS does, each said in the output: the `install` phase
//! provisions CodeBuild's image and is skipped (this machine stands in for the image); the source
//! is this repository, not the CodeCommit repository; the build's environment also carries
//! `GBG_LOCAL=1` and `GBG_LOCAL_DIR` (the emulator's endpoint and the local registries); the
//! emulator checks no trust policy, so the rehearsal assumes the roles itself; moto's
//! CloudFormation skips the CodeDeploy application and deployment group, which are created through
//! the CodeDeploy API from the release template's own properties (said per resource); and moto
//! records a deployment without running it, so a deploy action ends `recorded`, not `succeeded`:
//! no traffic was shifted.

pub mod buildspec;
pub mod definition;
pub mod session;

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use futures_util::future::join_all;
use serde::Serialize;
use xshell::{Shell, cmd};

use crate::Ctx;
use crate::access::{self, policies::Policies};
use crate::archive::{self, Entry};
use crate::artifacts;
use crate::aws::error::one_line;
use crate::aws::record::{self, CALL_LOG_VAR};
use crate::aws::{Aws, AwsResultExt};
use crate::bluegreen;
use crate::cli;
use crate::config::{Config, Target};
use crate::engine::deployed::Deployed;
use crate::engine::stand_ins;
use crate::output::{Exit, Usage, table};
use crate::project::{CODEBUILD_COMMIT_VAR, SOURCE_TIME_VAR};
use crate::release_files::manifest::{Manifest, get_object};
use crate::release_files::{self, IMAGE_DETAIL_FILE, MANIFEST_FILE, taskdef::TaskDefinition};
use crate::template::Template;
use buildspec::Buildspec;
use definition::{ActionDef, Pipeline};
use session::RoleSession;

/// Arguments of `cargo xtask pipeline`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Rehearse the deployed pipeline on this machine, stage by stage, each action under the role
    /// AWS would use (`--local` only).
    Run(RunArgs),
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub target: Target,
    /// The commit, branch or tag of this repository to release; default: the pipeline's branch.
    #[arg(long = "ref", value_name = "REF", value_parser = cli::git_ref)]
    pub git_ref: Option<String>,
    /// Skip the lint of `ci build` (sets GBG_CI_SKIP_CHECK=1 in the build's
    /// environment); the rehearsal says it did.
    #[arg(long)]
    pub skip_check: bool,
    /// Print the rehearsal's result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// How an action ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Succeeded,
    /// Every call succeeded; what follows on AWS (CodeDeploy running the deployment) the emulator
    /// only records.
    Recorded,
    Failed,
    /// Not run: an earlier stage failed.
    Skipped,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Succeeded => "SUCCEEDED",
            Status::Recorded => "RECORDED",
            Status::Failed => "FAILED",
            Status::Skipped => "SKIPPED",
        }
    }
}

/// One action's outcome, as `--json` prints it.
#[derive(Clone, Debug, Serialize)]
pub struct ActionReport {
    pub name: String,
    pub provider: String,
    pub account: String,
    pub region: String,
    /// The caller ARN the action ran as.
    pub identity: String,
    pub status: Status,
    pub detail: String,
    pub seconds: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct StageReport {
    pub name: String,
    pub seconds: f64,
    pub actions: Vec<ActionReport>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ImageReport {
    pub tag: String,
    pub digest: String,
}

/// The rehearsal's result.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The full commit the source stage exported.
    pub revision: String,
    pub image: Option<ImageReport>,
    pub stages: Vec<StageReport>,
    pub seconds: f64,
    /// The AWS calls the actions made, recorded (`aws/record.rs`): the file and the count per
    /// identity (role ARN).
    pub calls: CallsReport,
    /// The access proof of those calls (`access.rs`): every authorization, allowed or not.
    pub access: Vec<access::Finding>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct CallsReport {
    pub file: PathBuf,
    pub by_role: BTreeMap<String, usize>,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    match args.command {
        Command::Run(run_args) => rehearse(ctx, run_args).await,
    }
}

/// An artifact in the tools region's store.
#[derive(Clone, Debug)]
struct Stored {
    bucket: String,
    key: String,
}

/// What the stages share.
struct Rehearsal<'a> {
    ctx: &'a Ctx,
    args: &'a RunArgs,
    config: Config,
    aws: Aws,
    pipeline: Pipeline,
    pipeline_session: RoleSession,
    /// Names the artifacts of this run, as CodePipeline's execution id does.
    execution: String,
    artifacts: BTreeMap<String, Stored>,
    variables: BTreeMap<String, BTreeMap<String, String>>,
    revision: String,
    image: Option<ImageReport>,
    /// The build role's ARN, once the build ran: the calls its process made carry only its key.
    build_role: Option<(String, String)>,
}

async fn rehearse(ctx: &Ctx, args: RunArgs) -> Result<()> {
    if !args.target.local {
        return Err(Usage::new(
            "pipeline run",
            "it rehearses the pipeline against the local stack",
            "pass --local (after `cargo xtask deploy --local`); on AWS the pipeline itself runs: \
             `cargo xtask release --via pipeline`",
        )
        .into());
    }
    let started = Instant::now();
    let config = args.target.load(&ctx.root)?;
    // A --ref this repository does not have is refused before the emulator is started.
    if let Some(reference) = &args.git_ref
        && commit_of(&ctx.root, reference)?.is_none()
    {
        return Err(Usage::new(
            format!("--ref {reference}"),
            format!("no commit, branch or tag of this repository ({}) has that name", ctx.root.display()),
            "name one `git rev-parse` knows (or drop --ref for the pipeline's branch)",
        )
        .into());
    }
    let aws = crate::aws::connect(ctx, &config, true, false).await?;
    let pipeline = definition::pipeline(&ctx.root, &aws, &config).await?;
    let tools_config = aws.sdk_config(&config.tools.account, &config.tools.region).await?;
    let call_log = call_log_path(&config);
    if let Some(parent) = call_log.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(&call_log, "").with_context(|| format!("starting the call log {}", call_log.display()))?;
    let pipeline_session = RoleSession::assume(&tools_config, &pipeline.role_arn, Some(&call_log))
        .await
        .context("acting as the pipeline's service role")?;
    ctx.printer.status(
        "Rehearsing",
        format!(
            "pipeline {} ({} stages) as {}; CodePipeline's own calls run as this role",
            pipeline.name,
            pipeline.stages.len(),
            pipeline_session.identity
        ),
    );
    let execution = execution_id();
    let mut rehearsal = Rehearsal {
        ctx,
        args: &args,
        config,
        aws,
        pipeline,
        pipeline_session,
        execution,
        artifacts: BTreeMap::new(),
        variables: BTreeMap::new(),
        revision: String::new(),
        image: None,
        build_role: None,
    };
    let mut stages = Vec::new();
    let mut failed = false;
    for stage in rehearsal.pipeline.stages.clone() {
        let stage_started = Instant::now();
        let actions = if failed {
            stage.actions.iter().map(|action| skipped(&rehearsal, action)).collect()
        } else {
            rehearsal.stage(&stage.actions).await
        };
        failed |= actions.iter().any(|action| action.status == Status::Failed);
        stages.push(StageReport { name: stage.name.clone(), seconds: stage_started.elapsed().as_secs_f64(), actions });
    }
    let (recorded, calls) = attribute_calls(&call_log, rehearsal.build_role.as_ref())?;
    // What the emulator let through, proven against the policies we ship.
    let policies = Policies::read(&ctx.root, &rehearsal.aws, &rehearsal.config).await?;
    let access = access::prove(&recorded, &rehearsal.config, &policies)?;
    failed |= access.iter().any(|finding| !finding.allowed);
    let report = Report {
        revision: rehearsal.revision.clone(),
        image: rehearsal.image.clone(),
        stages,
        seconds: started.elapsed().as_secs_f64(),
        calls,
        access,
    };
    print_report(ctx, &report);
    if args.json {
        ctx.printer.json(&report)?;
    }
    if failed {
        return Err(Exit(1).into());
    }
    Ok(())
}

fn skipped(rehearsal: &Rehearsal, action: &ActionDef) -> ActionReport {
    ActionReport {
        name: action.name.clone(),
        provider: action.action_type_id.provider.clone(),
        account: String::new(),
        region: action.region.clone().unwrap_or_else(|| rehearsal.config.tools.region.clone()),
        identity: String::new(),
        status: Status::Skipped,
        detail: "not run: an earlier stage failed".into(),
        seconds: 0.0,
    }
}

impl Rehearsal<'_> {
    /// Runs one stage: source and build actions one after another (they feed the next stage), the
    /// deploy actions of a wave at once, as CodePipeline runs a stage's actions of one run order.
    async fn stage(&mut self, actions: &[ActionDef]) -> Vec<ActionReport> {
        let mut reports = Vec::new();
        let deploys: Vec<&ActionDef> =
            actions.iter().filter(|action| action.action_type_id.provider == "CodeDeployToECS").collect();
        for action in actions.iter().filter(|action| action.action_type_id.provider != "CodeDeployToECS") {
            let mut report = self.report_for(action);
            let progress = self.ctx.printer.progress("Running", format!("{} ({})", action.name, report.provider));
            let started = Instant::now();
            let outcome = match action.action_type_id.provider.as_str() {
                "CodeCommit" | "CodeStarSourceConnection" => self.source(action, &mut report).await,
                "CodeBuild" => self.build(action, &mut report).await,
                other => Err(anyhow!("the rehearsal does not implement {other} actions")),
            };
            finish(&mut report, outcome, started, progress);
            reports.push(report);
        }
        let this = &*self;
        let runs = deploys.iter().map(|action| async move {
            let mut report = this.report_for(action);
            let progress = this.ctx.printer.progress("Deploying", format!("{} ({})", action.name, report.region));
            let started = Instant::now();
            let outcome = this.deploy(action, &mut report).await;
            finish(&mut report, outcome, started, progress);
            report
        });
        reports.extend(join_all(runs).await);
        reports
    }

    fn report_for(&self, action: &ActionDef) -> ActionReport {
        ActionReport {
            name: action.name.clone(),
            provider: action.action_type_id.provider.clone(),
            account: self.config.tools.account.clone(),
            region: action.region.clone().unwrap_or_else(|| self.config.tools.region.clone()),
            identity: String::new(),
            status: Status::Failed,
            detail: String::new(),
            seconds: 0.0,
        }
    }

    /// Where CodePipeline keeps an artifact of this run: `<pipeline>/<artifact>/<id>`, both names
    /// cut as CodePipeline cuts them (20 and 10 characters).
    fn artifact_key(&self, artifact: &str) -> String {
        let cut = |text: &str, length: usize| text.chars().take(length).collect::<String>();
        format!("{}/{}/{}", cut(&self.pipeline.name, 20), cut(artifact, 10), self.execution)
    }

    async fn source(&mut self, action: &ActionDef, report: &mut ActionReport) -> Result<(Status, String)> {
        report.identity = self.pipeline_session.identity.clone();
        let format = action.setting("OutputArtifactFormat").unwrap_or_else(|_| "CODE_ZIP".into());
        if format != "CODE_ZIP" {
            bail!("the source action delivers {format}; the rehearsal implements CODE_ZIP, what our pipeline uses");
        }
        let branch = action.setting("BranchName")?;
        let reference = self.args.git_ref.clone().unwrap_or_else(|| branch.clone());
        let Some(commit) = commit_of(&self.ctx.root, &reference)? else {
            bail!(
                "`{reference}` is no commit, branch or tag of this repository ({}); name one with --ref",
                self.ctx.root.display()
            );
        };
        let sh = Shell::new()?;
        sh.change_dir(&self.ctx.root);
        let archive = cmd!(sh, "git archive --format=zip {commit}")
            .quiet()
            .output()
            .context("exporting the source with `git archive`")?;
        let zip = archive.stdout;
        let files = zip::ZipArchive::new(Cursor::new(&zip)).context("`git archive` gave no zip")?.len();
        let author_date = cmd!(sh, "git show -s --format=%aI {commit}").quiet().read()?;
        let message = cmd!(sh, "git show -s --format=%s {commit}").quiet().read()?;

        let output = action.output_artifacts.first().context("the source action has no output artifact")?.name.clone();
        let store = self.pipeline.store(&self.config.tools.region)?.clone();
        let key = self.artifact_key(&output);
        let s3 = self.pipeline_session.s3(&store.region);
        artifacts::encrypted_put(&s3, &store.bucket, &key, zip.clone(), &store.key_arn)
            .send()
            .await
            .aws(&s3)
            .with_context(|| format!("putting the source into the artifact store s3://{}/{key}", store.bucket))?;
        self.artifacts.insert(output, Stored { bucket: store.bucket.clone(), key: key.clone() });
        let repository = action.setting("RepositoryName").or_else(|_| action.setting("FullRepositoryId"))?;
        if let Some(namespace) = &action.namespace {
            self.variables.insert(
                namespace.clone(),
                BTreeMap::from([
                    ("CommitId".to_string(), commit.clone()),
                    ("AuthorDate".to_string(), author_date),
                    ("BranchName".to_string(), branch.clone()),
                    ("RepositoryName".to_string(), repository.clone()),
                    ("CommitMessage".to_string(), message),
                ]),
            );
        }
        self.revision = commit.clone();
        Ok((
            Status::Succeeded,
            format!(
                "{} ({reference}) as CODE_ZIP: {files} files, {} bytes, no .git, at s3://{}/{key}; the source is this \
                 repository, standing in for {repository}",
                &commit[..12],
                zip.len(),
                store.bucket
            ),
        ))
    }

    async fn build(&mut self, action: &ActionDef, report: &mut ActionReport) -> Result<(Status, String)> {
        let (ctx, config) = (self.ctx, &self.config);
        let project_name = action.setting("ProjectName")?;
        let project = definition::project(&ctx.root, &self.aws, config, &project_name).await?;
        let region = config.tools.region.clone();
        let tools_config = self.aws.sdk_config(&config.tools.account, &region).await?;
        let build_role = RoleSession::assume(&tools_config, &project.service_role, Some(&call_log_path(config)))
            .await
            .with_context(|| format!("acting as project {project_name}'s service role"))?;
        report.identity = build_role.identity.clone();
        self.build_role = Some((build_role.access_key_id().to_string(), build_role.role_arn.clone()));

        // CodeBuild downloads the input artifact as the project's role.
        let input = action.input_artifacts.first().context("the build action has no input artifact")?;
        let stored =
            self.artifacts.get(&input.name).with_context(|| format!("no earlier action made {}", input.name))?;
        let s3 = build_role.s3(&region);
        let source = get_object(&s3, &stored.bucket, &stored.key)
            .await?
            .with_context(|| format!("s3://{}/{} is not in the artifact store", stored.bucket, stored.key))?;
        let dir = export_dir(config);
        unpack_source(&source, &dir)?;
        // The artifact folder of an earlier run must not pass for this run's.
        let spec_path = dir.join(&project.buildspec);
        let spec_text = std::fs::read_to_string(&spec_path)
            .with_context(|| format!("the source has no {} (the project's buildspec)", project.buildspec))?;
        let spec = Buildspec::parse(&spec_text, &spec_path)?;
        if let Some(base) = &spec.base_directory {
            let stale = dir.join(base);
            if stale.exists() {
                std::fs::remove_dir_all(&stale).with_context(|| format!("clearing {}", stale.display()))?;
            }
        }
        let mut notes = Vec::new();
        let committed = dir.join("deploy.toml");
        let wanted = std::fs::read(&config.path).with_context(|| format!("reading {}", config.path.display()))?;
        if std::fs::read(&committed).ok().as_deref() != Some(wanted.as_slice()) {
            std::fs::write(&committed, &wanted).with_context(|| format!("writing {}", committed.display()))?;
            notes.push(format!(
                "deploy.toml in the build is {} (the config this rehearsal runs for), not the one committed: on AWS the build reads the committed one",
                config.path.display()
            ));
        }
        let environment = self.build_environment(action, &project, &build_role, &dir, stored)?;
        let install = spec.phases.iter().find(|phase| phase.name == "install");
        let install_note = match install {
            Some(phase) => format!(
                "it provisions CodeBuild's image {} ({} commands{}); this machine stands in for the image",
                project.image,
                phase.commands.len(),
                if phase.runtime_versions.is_empty() {
                    String::new()
                } else {
                    let runtimes: Vec<String> =
                        phase.runtime_versions.iter().map(|(name, version)| format!("{name} {version}")).collect();
                    format!(", runtime-versions {}", runtimes.join(", "))
                }
            ),
            None => "no install phase".into(),
        };
        ctx.printer.status(
            "Building",
            format!("in {} as {} (install phase skipped: {install_note})", dir.display(), build_role.identity),
        );
        if self.args.skip_check {
            notes.push("lint skipped (--skip-check: GBG_CI_SKIP_CHECK=1)".into());
        }
        notes.push(
            "emulator gap: the image goes to the local registries over the registry protocol; moto keeps each \
             account's ECR apart and ignores registryId, so the build's cross-account DescribeImages and PutImage \
             in the workload registries are not made locally (on AWS they are)"
                .into(),
        );
        let started = Instant::now();
        let spec_for_run = spec.clone();
        let dir_for_run = dir.clone();
        let phases = tokio::task::spawn_blocking(move || {
            buildspec::run(&spec_for_run, &dir_for_run, &environment, &install_note)
        })
        .await??;
        let phase_words: Vec<String> = phases
            .iter()
            .map(|phase| match phase.status {
                "SUCCEEDED" | "FAILED" if phase.seconds > 0.0 => {
                    format!("{} {} ({:.0} s)", phase.name, phase.status.to_lowercase(), phase.seconds)
                }
                status => format!("{} {}", phase.name, status.to_lowercase()),
            })
            .collect();
        if let Some(failed) = phases.iter().find(|phase| phase.status == "FAILED") {
            bail!(
                "buildspec phase {} failed: {} (phases: {})",
                failed.name,
                failed.detail.clone().unwrap_or_default(),
                phase_words.join(", ")
            );
        }

        // The artifact: what the buildspec's artifacts section names, checked against the deploy
        // actions' reads, and proof that the build worked on the exported tree.
        let (base, files) = spec.exported(&dir)?;
        let output = action.output_artifacts.first().context("the build action has no output artifact")?.name.clone();
        let wanted_paths = self.paths_read_from(&output)?;
        let missing: Vec<&String> = wanted_paths.iter().filter(|path| !files.contains(path)).collect();
        if !missing.is_empty() {
            bail!(
                "the build's artifact ({} files under {}) lacks what the deploy actions read: {}",
                files.len(),
                base.display(),
                missing.iter().map(|path| path.as_str()).collect::<Vec<_>>().join(", ")
            );
        }
        let manifest_bytes = std::fs::read(base.join(MANIFEST_FILE))
            .with_context(|| format!("the build's artifact has no {MANIFEST_FILE}"))?;
        let manifest = Manifest::parse(&manifest_bytes, MANIFEST_FILE)?;
        let tag = self.revision.chars().take(12).collect::<String>();
        if manifest.version != tag {
            bail!(
                "the build released version {} but the source is {tag}: the build did not work on the exported tree (a binary built for another checkout?)",
                manifest.version
            );
        }
        let mut entries = Vec::new();
        for file in &files {
            let bytes = std::fs::read(base.join(file)).with_context(|| format!("reading {file}"))?;
            entries.push(Entry::file(file.as_str(), bytes));
        }
        let zip = archive::zip(&entries)?;
        let key = self.artifact_key(&output);
        let store = self.pipeline.store(&region)?.clone();
        // CodeBuild uploads the output artifact as the project's role, under the project's key.
        artifacts::encrypted_put(&s3, &store.bucket, &key, zip, &project.encryption_key)
            .send()
            .await
            .aws(&s3)
            .with_context(|| format!("putting the build artifact into s3://{}/{key}", store.bucket))?;
        self.artifacts.insert(output, Stored { bucket: store.bucket.clone(), key: key.clone() });
        self.image = Some(ImageReport { tag: manifest.version.clone(), digest: manifest.image_digest.clone() });
        let mut detail = format!(
            "phases: {}; built in {} in {:.0} s; image {}:{} {}; artifact {} files at s3://{}/{key}",
            phase_words.join(", "),
            dir.display(),
            started.elapsed().as_secs_f64(),
            config.app,
            manifest.version,
            manifest.image_digest,
            files.len(),
            store.bucket
        );
        for note in notes {
            detail.push_str("; ");
            detail.push_str(&note);
        }
        Ok((Status::Succeeded, detail))
    }

    /// The files of artifact `name` that later actions read (CodeDeployToECS's template paths).
    fn paths_read_from(&self, name: &str) -> Result<Vec<String>> {
        let mut paths = Vec::new();
        for action in self.pipeline.stages.iter().flat_map(|stage| &stage.actions) {
            for (artifact, path) in [
                ("TaskDefinitionTemplateArtifact", "TaskDefinitionTemplatePath"),
                ("AppSpecTemplateArtifact", "AppSpecTemplatePath"),
            ] {
                if action.setting(artifact).ok().as_deref() == Some(name) {
                    paths.push(action.setting(path)?);
                }
            }
        }
        Ok(paths)
    }

    /// CodeBuild's environment for the build, in its order of precedence: the buildspec's
    /// variables, then the project's, then the action's
    /// (https://docs.aws.amazon.com/codebuild/latest/userguide/build-spec-ref.html#build-spec-ref-syntax).
    fn build_environment(
        &self,
        action: &ActionDef,
        project: &definition::Project,
        role: &RoleSession,
        dir: &Path,
        source: &Stored,
    ) -> Result<Vec<(String, String)>> {
        let config = &self.config;
        let region = &config.tools.region;
        let spec_path = dir.join(&project.buildspec);
        let spec = Buildspec::parse(&std::fs::read_to_string(&spec_path)?, &spec_path)?;
        let mut environment: BTreeMap<String, String> = BTreeMap::new();
        // What CodeBuild's image would provide: this machine's tools.
        for name in
            ["PATH", "HOME", "USER", "LANG", "LC_ALL", "TMPDIR", "DOCKER_HOST", "CARGO_HOME", "RUSTUP_HOME", "NO_COLOR"]
        {
            if let Ok(value) = std::env::var(name) {
                environment.insert(name.into(), value);
            }
        }
        let build_id = format!("{}:{}", project.name, self.execution);
        let codebuild = [
            ("CODEBUILD_SRC_DIR", dir.display().to_string()),
            (CODEBUILD_COMMIT_VAR, self.revision.clone()),
            ("CODEBUILD_SOURCE_VERSION", format!("arn:aws:s3:::{}/{}", source.bucket, source.key)),
            ("CODEBUILD_BUILD_ID", build_id.clone()),
            ("CODEBUILD_BUILD_ARN", format!("arn:aws:codebuild:{region}:{}:build/{build_id}", config.tools.account)),
            ("CODEBUILD_INITIATOR", format!("codepipeline/{}", self.pipeline.name)),
            ("CODEBUILD_BUILD_IMAGE", project.image.clone()),
            ("CODEBUILD_KMS_KEY_ID", project.encryption_key.clone()),
            ("CODEBUILD_BUILD_SUCCEEDING", "1".into()),
            ("AWS_REGION", region.clone()),
            ("AWS_DEFAULT_REGION", region.clone()),
        ];
        environment.extend(codebuild.into_iter().map(|(name, value)| (name.to_string(), value)));
        environment.extend(spec.variables.iter().cloned());
        environment.extend(project.variables.iter().cloned());
        environment.extend(definition::action_variables(action, &self.variables)?);
        environment.extend(role.environment().into_iter().map(|(name, value)| (name.to_string(), value)));
        // Locally only: the emulator and the local registries of this machine.
        environment.insert("GBG_LOCAL".into(), "1".into());
        environment.insert("GBG_LOCAL_DIR".into(), crate::local::daemon::state_dir().display().to_string());
        // The build's own calls go to the rehearsal's call log (`aws/record.rs`).
        environment.insert(CALL_LOG_VAR.into(), call_log_path(config).display().to_string());
        if self.args.skip_check {
            environment.insert("GBG_CI_SKIP_CHECK".into(), "1".into());
        }
        if !environment.contains_key(SOURCE_TIME_VAR) {
            self.ctx.printer.note(format!(
                "the build action passes no {SOURCE_TIME_VAR}: the image's build time will be the build's, not the commit's"
            ));
        }
        Ok(environment.into_iter().collect())
    }

    async fn deploy(&self, action: &ActionDef, report: &mut ActionReport) -> Result<(Status, String)> {
        let config = &self.config;
        let region = action.region.clone().unwrap_or_else(|| config.tools.region.clone());
        let role = action.role_arn.clone().context("the deploy action has no RoleArn")?;
        let workload = config
            .workloads
            .iter()
            .find(|workload| workload.region == region && config.release_role_arn(workload) == role)
            .with_context(|| {
                format!("no workload of {} in {region} has the release role {role}", config.path.display())
            })?;
        report.account = workload.account.clone();

        // CodePipeline copies the artifact into the store of the action's region, as its role.
        let input = action.input_artifacts.first().context("the deploy action has no input artifact")?;
        let stored =
            self.artifacts.get(&input.name).with_context(|| format!("no earlier action made {}", input.name))?;
        let store = self.pipeline.store(&region)?;
        if store.bucket != stored.bucket {
            let from = self.pipeline_session.s3(&config.tools.region);
            let bytes = get_object(&from, &stored.bucket, &stored.key)
                .await?
                .with_context(|| format!("s3://{}/{} is not in the artifact store", stored.bucket, stored.key))?;
            let to = self.pipeline_session.s3(&region);
            artifacts::encrypted_put(&to, &store.bucket, &stored.key, bytes, &store.key_arn)
                .send()
                .await
                .aws(&to)
                .with_context(|| {
                    format!("copying the artifact to the {region} store s3://{}/{}", store.bucket, stored.key)
                })?;
        }

        let release = self
            .pipeline_session
            .assume_role(&role, &region)
            .await
            .with_context(|| format!("the pipeline role assuming the action's role {role}"))?;
        report.identity = release.identity.clone();
        let bytes = get_object(&release.s3(&region), &store.bucket, &stored.key)
            .await?
            .with_context(|| format!("s3://{}/{} is not in the {region} store", store.bucket, stored.key))?;
        let files = release_files::unzip(&bytes)?;
        let file = |setting: &str| -> Result<(String, String)> {
            let path = action.setting(setting)?;
            let text = files.get(&path).with_context(|| format!("the artifact has no {path} ({setting})"))?;
            Ok((path, String::from_utf8_lossy(text).into_owned()))
        };
        let (taskdef_path, taskdef_text) = file("TaskDefinitionTemplatePath")?;
        let (_, appspec) = file("AppSpecTemplatePath")?;
        let definition = TaskDefinition::parse(&taskdef_text, &taskdef_path)?;
        definition.check()?;
        let image = definition.images().first().map(|image| image.to_string()).unwrap_or_default();
        // The image the build pushed, as imageDetail.json beside the task definition names it.
        let detail_path = Path::new(&taskdef_path).with_file_name(IMAGE_DETAIL_FILE).display().to_string();
        if let Some(detail) = files.get(&detail_path) {
            let detail: serde_json::Value = serde_json::from_slice(detail).context("reading imageDetail.json")?;
            if detail["ImageURI"] != image.as_str() {
                bail!("{taskdef_path} deploys {image}, but {detail_path} names {}", detail["ImageURI"]);
            }
        }

        let application = action.setting("ApplicationName")?;
        let group = action.setting("DeploymentGroupName")?;
        let gaps = self.ensure_codedeploy(workload).await?;

        let codedeploy = release.codedeploy(&region);
        let target = bluegreen::Deployment {
            application: &application,
            group: &group,
            place: format!("{}/{region}", workload.account),
            description: format!("pipeline {} rehearsal {}", self.pipeline.name, self.execution),
        };
        let (arn, id) =
            bluegreen::register_and_deploy(&release.ecs(&region), &codedeploy, &target, &definition, &appspec).await?;
        let status = codedeploy
            .get_deployment()
            .deployment_id(&id)
            .send()
            .await
            .aws(&codedeploy)
            .with_context(|| format!("reading deployment {id}"))?
            .deployment_info()
            .and_then(|info| info.status())
            .map(|status| status.as_str().to_string())
            .unwrap_or_else(|| "unknown".into());
        let mut detail = format!(
            "registered {arn} ({image}); deployment {id} is {status}: emulator gap: moto records a deployment and never \
             runs it (no task set, no traffic shift); on AWS the action waits for it to succeed"
        );
        for gap in gaps {
            detail.push_str("; ");
            detail.push_str(&gap);
        }
        Ok((Status::Recorded, detail))
    }

    /// Makes sure the CodeDeploy application and deployment group exist where the action deploys.
    /// moto's CloudFormation skips both resources of the release stack; `deploy --local` stands
    /// them in through the CodeDeploy API (`engine/stand_ins.rs`), and so does this, for a release
    /// stack deployed otherwise: what is missing is created, as the operator, from the release
    /// template's own properties resolved with the deployed stack. Each one is returned as a note;
    /// one that cannot be stood in is an error (the deploy action would fail on it).
    async fn ensure_codedeploy(&self, workload: &crate::config::Workload) -> Result<Vec<String>> {
        let stack = self.config.stack_name("release");
        let template = Template::load(&self.ctx.root.join("cfn/workload/release.yaml"))?;
        let deployed = Deployed::read(&self.aws, &workload.account, &workload.region, &stack, template.body).await?;
        let listed = deployed.scope.physical_ids.keys().cloned().collect();
        let mut gaps = crate::engine::gaps::missing_in(&deployed.template, &deployed.scope, &listed)?;
        gaps.retain(|gap| gap.kind.starts_with("AWS::CodeDeploy::"));
        stand_ins::stand_in(&self.aws, &deployed, &mut gaps, None).await;
        gaps.iter()
            .map(|gap| {
                let note = gap.note.as_deref().unwrap_or_default();
                match gap.stand_in {
                    Some(_) => Ok(format!(
                        "emulator gap: moto's CloudFormation skipped {} {} of {stack}; stand-in: {note}",
                        gap.kind, gap.logical_id
                    )),
                    None => Err(anyhow!("{} {} of {stack}: {note}", gap.kind, gap.logical_id)),
                }
            })
            .collect()
    }
}

fn finish(
    report: &mut ActionReport,
    outcome: Result<(Status, String)>,
    started: Instant,
    progress: crate::output::Progress,
) {
    report.seconds = started.elapsed().as_secs_f64();
    match outcome {
        Ok((status, detail)) => {
            report.status = status;
            report.detail = detail;
            progress.finish(
                match status {
                    Status::Recorded => "Recorded",
                    _ => "Succeeded",
                },
                format!("{} as {} ({:.1} s)", report.name, report.identity, report.seconds),
            );
        }
        Err(error) => {
            report.status = Status::Failed;
            report.detail = one_line(&error);
            progress.fail(format!(
                "{} ({}) as {}: {}",
                report.name,
                report.provider,
                if report.identity.is_empty() { "no identity yet" } else { report.identity.as_str() },
                report.detail
            ));
        }
    }
}

fn print_report(ctx: &Ctx, report: &Report) {
    let mut rows = vec![
        ["STAGE", "ACTION", "PROVIDER", "ACCOUNT/REGION", "IDENTITY", "STATUS", "SECONDS"].map(String::from).to_vec(),
    ];
    for stage in &report.stages {
        for action in &stage.actions {
            rows.push(vec![
                stage.name.clone(),
                action.name.clone(),
                action.provider.clone(),
                format!("{}/{}", action.account, action.region),
                action.identity.clone(),
                action.status.word().to_string(),
                format!("{:.1}", action.seconds),
            ]);
        }
    }
    ctx.printer.text(table(&rows).trim_end());
    for stage in &report.stages {
        for action in stage.actions.iter().filter(|action| action.status != Status::Skipped) {
            ctx.printer.detail(action.status.word(), format!("{} / {}: {}", stage.name, action.name, action.detail));
        }
    }
    let total: usize = report.calls.by_role.values().sum();
    let source = format!("{total} calls of {} roles in {}", report.calls.by_role.len(), report.calls.file.display());
    let denied: Vec<&access::Finding> = report.access.iter().filter(|finding| !finding.allowed).collect();
    if denied.is_empty() {
        ctx.printer.status(
            "Proven",
            format!("{source}: all {} authorizations allowed by the policies we ship (`cargo xtask verify --local` lists them)", report.access.len()),
        );
    } else {
        access::report(&ctx.printer, &report.access, total, &source);
    }
    let failed = report.stages.iter().find_map(|stage| {
        stage.actions.iter().find(|action| action.status == Status::Failed).map(|action| (stage, action))
    });
    let stage_times: Vec<String> =
        report.stages.iter().map(|stage| format!("{} {:.1} s", stage.name, stage.seconds)).collect();
    match failed {
        None if !denied.is_empty() => ctx.printer.error(format!(
            "every action got through on the emulator, which evaluates no IAM, but on AWS the policies we ship would refuse {} of the calls (above)",
            denied.len()
        )),
        Some((stage, action)) => ctx.printer.error(format!(
            "the rehearsal failed at stage {}, action {} ({}) as {}: {}; later stages were skipped",
            stage.name,
            action.name,
            action.provider,
            if action.identity.is_empty() { "no identity yet" } else { action.identity.as_str() },
            action.detail
        )),
        None => ctx.printer.status(
            "Rehearsed",
            format!(
                "commit {} through every stage in {:.1} s ({}); deploys are recorded by the emulator, not run",
                report.revision.chars().take(12).collect::<String>(),
                report.seconds,
                stage_times.join(", ")
            ),
        ),
    }
}

/// Where the rehearsal records the calls its actions make: `target/pipeline/<app>/calls.jsonl`.
pub fn call_log_path(config: &Config) -> PathBuf {
    crate::project::target_dir().join("pipeline").join(&config.app).join("calls.jsonl")
}

/// The commit `reference` (a commit, branch or tag) names in the repository at `root`, or `None`
/// when it names none.
fn commit_of(root: &Path, reference: &str) -> Result<Option<String>> {
    let sh = Shell::new()?;
    sh.change_dir(root);
    let spec = format!("{reference}^{{commit}}");
    Ok(cmd!(sh, "git rev-parse --verify --quiet {spec}").quiet().ignore_stderr().read().ok())
}

/// Names the role of every call the build's process made (it knows its credentials only as the
/// ambient ones: `build:default-chain`) by the build session's access key, rewrites the log, and
/// counts the calls per role. A build call signed with another key is an error: something in the
/// build used credentials the rehearsal did not give it.
fn attribute_calls(path: &Path, build_role: Option<&(String, String)>) -> Result<(Vec<record::Call>, CallsReport)> {
    let mut calls = record::read(path)?;
    for call in &mut calls {
        if !call.principal.starts_with("build:") {
            continue;
        }
        match build_role {
            Some((key, role)) if *key == call.access_key => call.principal = role.clone(),
            _ => bail!(
                "the build called {} {} with credentials that are not the build role's ({}); the build must use only what CodeBuild gives it",
                call.service,
                call.operation,
                call.principal
            ),
        }
    }
    let mut text = String::new();
    let mut by_role = BTreeMap::new();
    for call in &calls {
        text.push_str(&serde_json::to_string(call)?);
        text.push('\n');
        *by_role.entry(call.principal.clone()).or_insert(0) += 1;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok((calls, CallsReport { file: path.to_path_buf(), by_role }))
}

/// Where the build runs: `target/pipeline/<app>/src`, kept between rehearsals so that its own
/// `target/` (the build's compiled dependencies, as CodeBuild's cache would keep them) survives.
pub fn export_dir(config: &Config) -> PathBuf {
    crate::project::target_dir().join("pipeline").join(&config.app).join("src")
}

/// Unzips the source into `dir`, first removing everything there but `target/`: the build gets
/// exactly the exported files.
fn unpack_source(zip_bytes: &[u8], dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        if path.file_name().is_some_and(|name| name == "target") {
            continue;
        }
        let removed = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        removed.with_context(|| format!("clearing {}", path.display()))?;
    }
    let mut archive = zip::ZipArchive::new(Cursor::new(zip_bytes)).context("the source artifact is not a zip")?;
    archive.extract(dir).with_context(|| format!("unzipping the source into {}", dir.display()))?;
    if dir.join(".git").exists() {
        bail!("the source export holds .git; CODE_ZIP delivers none");
    }
    Ok(())
}

/// A short id for this run's artifacts (CodePipeline's keys end in a random id too).
fn execution_id() -> String {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|time| time.as_nanos()).unwrap_or(0);
    let hash = archive::sha256_hex(format!("{nanos}-{}", std::process::id()).as_bytes());
    hash[..12].to_string()
}
