//! Blue/green releases: the three ways a packaged release reaches the workloads, shared by
//! `release`, `rollback` and `ci` so those subcommands never import one another.
//!
//! - [`start_pipeline`]: CodePipeline's `StartPipelineExecution` on the tools account's pipeline,
//!   which builds main once and deploys wave after wave through CodeDeployToECS.
//! - [`deploy_waves`]: without the pipeline, a CodeDeploy deployment per workload, wave by wave
//!   (`config.waves()`): each workload's artifact is downloaded and checked against the manifest,
//!   its task definition registered in the workload's account, and its AppSpec sent inline
//!   (`AppSpecContent`) with the registered ARN in place of `<TASK_DEFINITION>`. Every deployment
//!   is followed through its status and lifecycle events; the first failed wave stops the
//!   rollout, and later waves are not started.
//! - [`site_shift`]: the local rehearsal on one machine's Docker engine.
//!
//! What the emulator cannot prove: its CodeDeploy records a deployment (status `Created`) but never
//! runs it, and has no deployment targets or lifecycle events; its CodePipeline records an
//! execution as `Succeeded` at once without running an action. Locally these calls are made and
//! what the emulator records is reported, marked as the emulator gap, instead of being waited on.

pub mod site_shift;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use aws_sdk_codedeploy::types::{AppSpecContent, DeploymentStatus, RevisionLocation, RevisionLocationType};
use aws_sdk_codepipeline::types::PipelineExecutionStatus;
use futures_util::future::join_all;
use serde::Serialize;

use crate::archive::sha256_hex;
use crate::aws::error::one_line;
use crate::aws::{Aws, AwsError, AwsResultExt};
use crate::config::{Config, Workload};
use crate::output::Printer;
use crate::release_files::manifest::{Artifact, Manifest};
use crate::release_files::taskdef::TaskDefinition;
use crate::release_files::{self, render};

/// How long to follow, and whether to.
#[derive(Clone, Copy, Debug)]
pub struct Follow {
    /// Wait for each deployment (or the pipeline execution) to end; otherwise report it started.
    pub wait: bool,
    /// Longest wait for one deployment or execution.
    pub timeout: Duration,
    /// Time between two polls.
    pub interval: Duration,
}

impl Default for Follow {
    fn default() -> Follow {
        Follow { wait: true, timeout: Duration::from_secs(60 * 60), interval: Duration::from_secs(10) }
    }
}

/// The wait flags of `release` and `rollback`, flattened into each (the command must have a
/// `dry_run` flag: `--no-wait` conflicts with it).
#[derive(clap::Args, Clone, Debug)]
pub struct WaitArgs {
    /// Start the deployments (or the pipeline) and report; do not wait for them to end.
    #[arg(long, conflicts_with = "dry_run")]
    pub no_wait: bool,
    /// Longest wait for one deployment or pipeline execution, in minutes (1 to 7200: CodePipeline
    /// gives up on a CodeDeploy action after 5 days).
    #[arg(
        long,
        default_value_t = 60,
        value_name = "MINUTES",
        value_parser = clap::value_parser!(u64).range(1..=crate::cli::TIMEOUT_MINUTES_MAX),
        conflicts_with = "no_wait"
    )]
    pub timeout: u64,
}

impl WaitArgs {
    /// How to follow the deployments these flags ask for.
    pub fn follow(&self) -> Follow {
        Follow { wait: !self.no_wait, timeout: Duration::from_secs(self.timeout * 60), ..Follow::default() }
    }
}

/// One workload's deployment, as the summary shows it.
#[derive(Clone, Debug, Serialize)]
pub struct WorkloadDeployment {
    pub workload: String,
    pub account: String,
    pub region: String,
    pub wave: u32,
    /// The release (manifest id) deployed.
    pub release: String,
    pub task_definition: Option<String>,
    pub deployment_id: Option<String>,
    /// CodeDeploy's last status (`Succeeded`, `Failed`, `Stopped`, `Created`, ...), or
    /// `NOT STARTED` (an earlier wave failed), `WOULD DEPLOY` (dry run), `ERROR` (a call failed).
    pub status: String,
    /// The failure's cause, or a note worth reading.
    pub detail: Option<String>,
    /// How following it ended.
    pub outcome: Ending,
    pub ok: bool,
}

/// How following a deployment or a pipeline execution ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ending {
    Succeeded,
    /// Failed, stopped, superseded or cancelled, or a call failed: the status and detail say which.
    Failed,
    /// Still going when the wait ran out (`--timeout`); it goes on.
    TimedOut,
    /// Started and not followed (`--no-wait`).
    NotFollowed,
    /// The emulator records it and never runs it: nothing is proven.
    EmulatorGap,
    /// Not started: a dry run, or an earlier wave failed.
    NotStarted,
}

/// The status, detail and ending of one followed deployment.
struct Followed {
    status: String,
    detail: Option<String>,
    ending: Ending,
}

/// Deploys `manifest` wave by wave; see the module docs. Returns one row per workload of the
/// config, in wave order; a failed wave leaves the later ones `NOT STARTED`.
pub async fn deploy_waves(
    aws: &Aws,
    config: &Config,
    manifest: &Manifest,
    follow: Follow,
    dry_run: bool,
    printer: &Printer,
) -> Result<Vec<WorkloadDeployment>> {
    for workload in &config.workloads {
        if manifest.artifact(&workload.name).is_none() {
            bail!(
                "release {} has no artifact for workload {}: package it for this config (`cargo xtask package`)",
                manifest.id,
                workload.name
            );
        }
    }
    let mut rows = Vec::new();
    let mut stopped_at: Option<u32> = None;
    for (wave, workloads) in config.waves() {
        if let Some(failed) = stopped_at {
            rows.extend(workloads.iter().map(|workload| WorkloadDeployment {
                detail: Some(format!("wave {failed} failed, so the rollout stopped before wave {wave}")),
                ..row(workload, wave, manifest, "NOT STARTED", false)
            }));
            continue;
        }
        let names: Vec<&str> = workloads.iter().map(|workload| workload.name.as_str()).collect();
        printer.status("Wave", format!("{wave}: {}", names.join(", ")));
        let deployments = workloads.iter().map(|workload| {
            let artifact = manifest.artifact(&workload.name).expect("checked above");
            async move {
                match deploy_workload(aws, config, workload, wave, manifest, artifact, follow, dry_run, printer).await {
                    Ok(row) => row,
                    Err(error) => WorkloadDeployment {
                        detail: Some(one_line(&error)),
                        outcome: Ending::Failed,
                        ..row(workload, wave, manifest, "ERROR", false)
                    },
                }
            }
        });
        let results = join_all(deployments).await;
        for result in &results {
            let verb = match (dry_run, result.outcome) {
                (true, _) => "Planned",
                (false, Ending::EmulatorGap) => "Recorded",
                (false, Ending::NotFollowed) => "Started",
                (false, _) => "Deployed",
            };
            match (&result.ok, &result.detail) {
                (true, _) => {
                    printer.status(verb, format!("{} ({}): {}", result.workload, result.region, result.status))
                }
                (false, detail) => printer.error(format!(
                    "{} ({}): {}{}",
                    result.workload,
                    result.region,
                    result.status,
                    detail.as_deref().map(|detail| format!(": {detail}")).unwrap_or_default()
                )),
            }
        }
        if results.iter().any(|result| !result.ok) {
            stopped_at = Some(wave);
        }
        rows.extend(results);
    }
    Ok(rows)
}

fn row(workload: &Workload, wave: u32, manifest: &Manifest, status: &str, ok: bool) -> WorkloadDeployment {
    WorkloadDeployment {
        workload: workload.name.clone(),
        account: workload.account.clone(),
        region: workload.region.clone(),
        wave,
        release: manifest.id.clone(),
        task_definition: None,
        deployment_id: None,
        status: status.to_string(),
        detail: None,
        outcome: Ending::NotStarted,
        ok,
    }
}

/// One workload: fetch and check the artifact, register its task definition, create the
/// deployment with the AppSpec inline, follow it.
#[allow(clippy::too_many_arguments)]
pub async fn deploy_workload(
    aws: &Aws,
    config: &Config,
    workload: &Workload,
    wave: u32,
    manifest: &Manifest,
    artifact: &Artifact,
    follow: Follow,
    dry_run: bool,
    printer: &Printer,
) -> Result<WorkloadDeployment> {
    let mut result = row(workload, wave, manifest, "WOULD DEPLOY", true);
    if dry_run {
        result.detail = Some(format!(
            "would register {} and deploy it through {}/{} in {}/{}",
            artifact.image, config.app, config.app, workload.account, workload.region
        ));
        return Ok(result);
    }
    let documents = release_files::fetch_artifact(aws, config, artifact).await?;
    let (definition, appspec) = (documents.task_definition, documents.appspec);

    let ecs = aws.ecs(&workload.account, &workload.region).await?;
    let codedeploy = aws.codedeploy(&workload.account, &workload.region).await?;
    let target = Deployment {
        application: &config.app,
        group: &config.app,
        place: format!("{}/{}", workload.account, workload.region),
        description: format!("release {} ({}) by cargo xtask", manifest.id, manifest.version),
    };
    let (arn, id) =
        register_and_deploy(&ecs, &codedeploy, &target, &definition, &appspec).await.with_context(|| {
            if aws.is_local() {
                "is the release stack deployed (`cargo xtask deploy --local` creates its CodeDeploy application and \
                 group through the CodeDeploy API, which the emulator's CloudFormation skips)?"
            } else {
                "is the release stack deployed (`cargo xtask deploy`)?"
            }
        })?;
    result.task_definition = Some(arn.clone());
    printer.status("Started", format!("deployment {id} of {} ({}) with {arn}", workload.name, workload.region));
    result.deployment_id = Some(id.clone());
    let followed = follow_deployment(&codedeploy, aws.is_local(), &id, workload, follow, printer).await?;
    result.status = followed.status;
    result.detail = followed.detail;
    result.ok = !matches!(followed.ending, Ending::Failed | Ending::TimedOut);
    result.outcome = followed.ending;
    Ok(result)
}

/// Where a deployment goes, and what it says of itself.
pub struct Deployment<'a> {
    pub application: &'a str,
    pub group: &'a str,
    /// `<account>/<region>`, for messages.
    pub place: String,
    pub description: String,
}

/// What CodeDeployToECS does with a workload's documents: registers the task definition, then
/// creates the deployment with the AppSpec inline (`AppSpecContent`), its `<TASK_DEFINITION>`
/// replaced by that registration
/// (https://docs.aws.amazon.com/codepipeline/latest/userguide/action-reference-ECSbluegreen.html).
/// Returns the task definition's ARN and the deployment's id.
pub async fn register_and_deploy(
    ecs: &aws_sdk_ecs::Client,
    codedeploy: &aws_sdk_codedeploy::Client,
    target: &Deployment<'_>,
    definition: &TaskDefinition,
    appspec: &str,
) -> Result<(String, String)> {
    let registered = definition
        .to_request(ecs.register_task_definition())?
        .send()
        .await
        .aws(&ecs)
        .with_context(|| format!("ecs:RegisterTaskDefinition of {} in {}", definition.family, target.place))?;
    let arn = registered
        .task_definition()
        .and_then(|registered| registered.task_definition_arn())
        .context("ECS registered the task definition but returned no ARN")?
        .to_string();
    let content = render::appspec_for(appspec, &arn);
    let revision = RevisionLocation::builder()
        .revision_type(RevisionLocationType::AppSpecContent)
        .app_spec_content(AppSpecContent::builder().content(&content).sha256(sha256_hex(content.as_bytes())).build())
        .build();
    let created = codedeploy
        .create_deployment()
        .application_name(target.application)
        .deployment_group_name(target.group)
        .revision(revision)
        .description(&target.description)
        .send()
        .await
        .aws(&codedeploy)
        .with_context(|| {
            format!("codedeploy:CreateDeployment of {}/{} in {}", target.application, target.group, target.place)
        })?;
    let id = created.deployment_id().context("CodeDeploy returned no deployment id")?.to_string();
    Ok((arn, id))
}

/// Polls a deployment until it ends, printing each lifecycle event as it changes. Returns the
/// last status, a detail, and how it ended (locally: recorded, an emulator gap).
async fn follow_deployment(
    codedeploy: &aws_sdk_codedeploy::Client,
    local: bool,
    id: &str,
    workload: &Workload,
    follow: Follow,
    printer: &Printer,
) -> Result<Followed> {
    let deadline = Instant::now() + follow.timeout;
    let ended =
        |status: &str, detail: Option<String>, ending: Ending| Followed { status: status.to_string(), detail, ending };
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    let mut events_unreadable = false;
    loop {
        let reply = codedeploy
            .get_deployment()
            .deployment_id(id)
            .send()
            .await
            .aws(&codedeploy)
            .with_context(|| format!("reading deployment {id} of workload {}", workload.name))?;
        let info = reply.deployment_info().context("CodeDeploy described no deployment")?;
        let status = info.status().map(|status| status.as_str().to_string()).unwrap_or_else(|| "Unknown".into());
        if local {
            let note = format!(
                "the emulator records deployment {id} as {status} and never runs it (no task set, no traffic shift); on AWS this waits for Succeeded"
            );
            return Ok(ended(&status, Some(note), Ending::EmulatorGap));
        }
        // The lifecycle lines are progress, not the outcome: an unreadable target is said once and
        // the deployment's own status still decides.
        match lifecycle_events(codedeploy, id).await {
            Ok(events) => {
                for (name, event_status) in events {
                    if seen.insert((name.clone(), event_status.clone())) {
                        printer.status(
                            "Lifecycle",
                            format!("{} ({}): {name} {event_status}", workload.name, workload.region),
                        );
                    }
                }
            }
            Err(error) if !events_unreadable => {
                events_unreadable = true;
                printer.note(format!(
                    "cannot list the lifecycle events of deployment {id} ({error}); following its status only"
                ));
            }
            Err(_) => {}
        }
        match info.status() {
            Some(DeploymentStatus::Succeeded) => return Ok(ended(&status, None, Ending::Succeeded)),
            Some(DeploymentStatus::Failed | DeploymentStatus::Stopped) => {
                let cause = info
                    .error_information()
                    .map(|error| {
                        format!(
                            "{}: {}",
                            error.code().map(|code| code.as_str()).unwrap_or("error"),
                            error.message().unwrap_or("no message")
                        )
                    })
                    .unwrap_or_else(|| "CodeDeploy gave no reason".into());
                let detail = format!(
                    "{cause}; CodeDeploy rolls traffic back to blue; see `aws deploy get-deployment --deployment-id {id} --region {}`",
                    workload.region
                );
                return Ok(ended(&status, Some(detail), Ending::Failed));
            }
            _ => {}
        }
        if !follow.wait {
            return Ok(ended(&status, Some("not followed (--no-wait)".into()), Ending::NotFollowed));
        }
        if Instant::now() > deadline {
            let detail = format!(
                "still {status} after {} minutes; the deployment goes on: follow it with `aws deploy get-deployment --deployment-id {id} --region {}`",
                follow.timeout.as_secs() / 60,
                workload.region
            );
            return Ok(ended(&status, Some(detail), Ending::TimedOut));
        }
        tokio::time::sleep(follow.interval).await;
    }
}

/// The (name, status) of every lifecycle event of an ECS deployment's targets.
async fn lifecycle_events(
    codedeploy: &aws_sdk_codedeploy::Client,
    id: &str,
) -> Result<Vec<(String, String)>, AwsError> {
    let targets = codedeploy.list_deployment_targets().deployment_id(id).send().await.aws(codedeploy)?;
    if targets.target_ids().is_empty() {
        return Ok(Vec::new());
    }
    let details = codedeploy
        .batch_get_deployment_targets()
        .deployment_id(id)
        .set_target_ids(Some(targets.target_ids().to_vec()))
        .send()
        .await
        .aws(codedeploy)?;
    Ok(details
        .deployment_targets()
        .iter()
        .filter_map(|target| target.ecs_target())
        .flat_map(|target| target.lifecycle_events())
        .map(|event| {
            (
                event.lifecycle_event_name().unwrap_or("?").to_string(),
                event.status().map(|status| status.as_str().to_string()).unwrap_or_else(|| "?".into()),
            )
        })
        .collect())
}

/// One pipeline execution.
#[derive(Clone, Debug, Serialize)]
pub struct PipelineRun {
    pub pipeline: String,
    pub execution_id: String,
    pub status: String,
    pub detail: Option<String>,
    /// How following it ended.
    pub outcome: Ending,
    pub ok: bool,
}

/// Starts the tools account's pipeline and, with `follow.wait`, follows the execution to its end.
pub async fn start_pipeline(aws: &Aws, config: &Config, follow: Follow, printer: &Printer) -> Result<PipelineRun> {
    let (account, region, name) = (&config.tools.account, &config.tools.region, &config.app);
    let client = aws.codepipeline(account, region).await?;
    let started = client.start_pipeline_execution().name(name).send().await.aws(&client).with_context(|| {
        format!(
            "starting pipeline {name} in {account}/{region}; is the pipeline stack deployed (`cargo xtask deploy`)?"
        )
    })?;
    let execution_id = started.pipeline_execution_id().context("CodePipeline returned no execution id")?.to_string();
    printer.status(
        "Started",
        format!(
            "pipeline {name} execution {execution_id}: https://{region}.console.aws.amazon.com/codesuite/codepipeline/pipelines/{name}/executions/{execution_id}"
        ),
    );
    let deadline = Instant::now() + follow.timeout;
    let mut last = String::new();
    loop {
        let reply = client
            .get_pipeline_execution()
            .pipeline_name(name)
            .pipeline_execution_id(&execution_id)
            .send()
            .await
            .aws(&client)
            .with_context(|| format!("reading execution {execution_id} of pipeline {name}"))?;
        let execution = reply.pipeline_execution().context("CodePipeline described no execution")?;
        let status = execution.status().map(|status| status.as_str().to_string()).unwrap_or_else(|| "Unknown".into());
        if status != last {
            printer.status("Pipeline", format!("{name} {execution_id}: {status}"));
            last = status.clone();
        }
        let summary = execution.status_summary().map(|summary| summary.to_string());
        let run = |ok: bool, detail: Option<String>, outcome: Ending| PipelineRun {
            pipeline: name.clone(),
            execution_id: execution_id.clone(),
            status: status.clone(),
            detail,
            outcome,
            ok,
        };
        if aws.is_local() {
            let note = format!(
                "the emulator records execution {execution_id} as {status} at once and runs no stage (no build, no deployment)"
            );
            return Ok(run(status == "Succeeded", Some(note), Ending::EmulatorGap));
        }
        match execution.status() {
            Some(PipelineExecutionStatus::Succeeded) => return Ok(run(true, summary, Ending::Succeeded)),
            Some(
                PipelineExecutionStatus::Failed
                | PipelineExecutionStatus::Stopped
                | PipelineExecutionStatus::Superseded
                | PipelineExecutionStatus::Cancelled,
            ) => {
                let detail = summary.unwrap_or_else(|| "see the execution in the console (link above)".into());
                return Ok(run(false, Some(detail), Ending::Failed));
            }
            _ => {}
        }
        if !follow.wait {
            return Ok(run(true, Some("not followed (--no-wait)".into()), Ending::NotFollowed));
        }
        if Instant::now() > deadline {
            let detail =
                format!("still {status} after {} minutes; it goes on (link above)", follow.timeout.as_secs() / 60);
            return Ok(run(false, Some(detail), Ending::TimedOut));
        }
        tokio::time::sleep(follow.interval).await;
    }
}
