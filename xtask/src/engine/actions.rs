//! The steps of a plan that are not stacks: checks between and after the stacks.
//!
//! Each returns what it did ([`ActionDone`]): its outcome for `--json`, a short status, its
//! outputs, and an optional note for the summary.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use aws_sdk_kms::error::ProvideErrorMetadata;

use crate::Ctx;
use crate::aws::AwsResultExt;
use crate::aws::error::one_line;
use crate::docker::Docker;
use crate::engine::executor::Env;
use crate::engine::stack::Action as Outcome;
use crate::engine::{Action, Outputs, Plan, Step};
use crate::http;
use crate::local::site;
use crate::output::{Printer, Progress, Verbosity};
use crate::release_files::render::ServiceFacts;
use crate::release_files::targets::{self, Targets};
use crate::release_files::{self, ImageSet};
use crate::{artifacts, lambda, publish, site_image};

/// What a step that is not a stack did.
#[derive(Debug)]
pub struct ActionDone {
    /// `built`, `pushed`, `uploaded`, `checked`, `serving`, `unchanged` or `emulator-gap`.
    pub outcome: Outcome,
    /// A short status for the summary: `BUILT web:1a2b`, `2/2 RUNNING`.
    pub status: String,
    /// What later steps may read (declared per action in `engine.rs`).
    pub outputs: BTreeMap<String, String>,
    /// A note worth reading in the summary.
    pub note: Option<String>,
}

impl ActionDone {
    fn new(outcome: Outcome, status: impl Into<String>, outputs: BTreeMap<String, String>) -> ActionDone {
        ActionDone { outcome, status: status.into(), outputs, note: None }
    }

    fn note(self, note: Option<String>) -> ActionDone {
        ActionDone { note, ..self }
    }
}

pub async fn run(
    action: &Action,
    step: &Step,
    plan: &Plan,
    env: &Env,
    outputs: &Outputs,
    progress: &Progress,
) -> Result<ActionDone> {
    match action {
        Action::CheckReplica { key_arn } => check_replica(step, env, &key_arn.resolve(plan, outputs)?).await,
        Action::WaitService { cluster, service } => {
            wait_service(step, env, &cluster.resolve(plan, outputs)?, &service.resolve(plan, outputs)?, progress).await
        }
        Action::CheckSite { dns_name } => check_site(env, &dns_name.resolve(plan, outputs)?, progress).await,
        Action::BuildLambda => build_lambda(env).await,
        Action::BuildImage => {
            let ctx = Ctx { root: env.root.clone(), printer: env.printer.clone() };
            let options = site_image::Options { config: env.config.path.clone(), dockerfile: None };
            let image = site_image::build(&ctx, &options).await?;
            let outputs = BTreeMap::from([
                ("Reference".to_string(), image.reference.clone()),
                ("Tag".to_string(), image.tag.clone()),
                ("Id".to_string(), image.id.clone()),
            ]);
            Ok(ActionDone::new(Outcome::Built, format!("BUILT {}", image.reference), outputs))
        }
        Action::PushImage { workload, reference, tag } => {
            let workload = &env.config.workloads[*workload];
            let docker = Docker::connect().await?;
            let destination = publish::destination(&env.aws, &env.config, workload, &env.printer).await?;
            let pushed = publish::push(
                &docker,
                &env.aws,
                &reference.resolve(plan, outputs)?,
                &tag.resolve(plan, outputs)?,
                &destination,
            )
            .await?;
            let status =
                format!("{} ({} of {} layers sent)", short(&pushed.digest), pushed.layers_pushed, pushed.layers_total);
            let values = BTreeMap::from([
                ("ImageUri".to_string(), pushed.image_uri.clone()),
                ("Digest".to_string(), pushed.digest.clone()),
                ("LayersPushed".to_string(), pushed.layers_pushed.to_string()),
                ("BytesPushed".to_string(), pushed.bytes_pushed.to_string()),
            ]);
            Ok(ActionDone::new(Outcome::Pushed, status, values))
        }
        Action::SameDigest { digests } => {
            let digests = digests.iter().map(|digest| digest.resolve(plan, outputs)).collect::<Result<Vec<_>>>()?;
            let first = digests.first().cloned().unwrap_or_default();
            if let Some(other) = digests.iter().find(|digest| **digest != first) {
                bail!("the registries hold different digests for one image: {first} and {other}");
            }
            Ok(ActionDone::new(
                Outcome::Checked,
                format!("{} in {} registries", short(&first), digests.len()),
                BTreeMap::from([("Digest".to_string(), first)]),
            ))
        }
        Action::PackageRelease { images, digest, version } => {
            let mut references = BTreeMap::new();
            for (workload, image) in env.config.workloads.iter().zip(images) {
                references.insert(workload.name.clone(), image.resolve(plan, outputs)?);
            }
            let images = ImageSet {
                version: version.resolve(plan, outputs)?,
                digest: digest.resolve(plan, outputs)?,
                references,
            };
            let options = release_files::Options { out_dir: Some(release_files::default_out_dir()), dry_run: false };
            let quiet = Printer::plain(Verbosity::Quiet);
            let packaged = release_files::package(&env.root, &env.aws, &env.config, &images, &options, &quiet).await?;
            let id = packaged.manifest.id.clone();
            let status = format!("RELEASE {id} ({} bytes uploaded)", packaged.bytes_uploaded);
            let outcome = if packaged.bytes_uploaded == 0 { Outcome::Unchanged } else { Outcome::Uploaded };
            Ok(ActionDone::new(outcome, status, BTreeMap::from([("Release".to_string(), id)])))
        }
        Action::PublishTargets { key_id, services } => {
            let mut facts = BTreeMap::new();
            for (workload, [execution, task, log_group]) in env.config.workloads.iter().zip(services) {
                facts.insert(
                    workload.name.clone(),
                    ServiceFacts {
                        execution_role_arn: execution.resolve(plan, outputs)?,
                        task_role_arn: task.resolve(plan, outputs)?,
                        log_group: log_group.resolve(plan, outputs)?,
                    },
                );
            }
            // The frozen fields as deployed: this step runs after every service stack, and the
            // deploy refused any frozen change before it began (`config/changes.rs`).
            let frozen = crate::config::changes::frozen_values(&env.config);
            let targets = Targets { key_id: key_id.resolve(plan, outputs)?, services: facts, frozen };
            let published = targets::publish(&env.aws, &env.config, &targets).await?;
            let (outcome, status) = match published {
                targets::Published::Written => (Outcome::Uploaded, "PUBLISHED"),
                targets::Published::Unchanged => (Outcome::Unchanged, "UNCHANGED"),
            };
            let bucket = env.config.bucket_name(&env.config.tools.region);
            let values =
                BTreeMap::from([("Bucket".to_string(), bucket), ("Key".to_string(), targets::TARGETS_KEY.to_string())]);
            Ok(ActionDone::new(outcome, status, values))
        }
        Action::LocalSite { reference, tag } => {
            let docker = Docker::connect().await?;
            let spec = site::SiteSpec {
                app: env.config.app.clone(),
                image: reference.resolve(plan, outputs)?,
                version: tag.resolve(plan, outputs)?,
                colour: site::Colour::Blue,
                host_port: env.config.local.site_port,
                container_port: env.config.service.container_port,
            };
            let (running, note) = site::ensure_serving(&docker, &spec, &env.printer).await?;
            let outputs = BTreeMap::from([("Url".to_string(), running.url)]);
            Ok(ActionDone::new(Outcome::Serving, format!("SERVING {}", running.version), outputs).note(note))
        }
        Action::Upload { file, bucket, object_key, kms_key_arn } => {
            let file = file.resolve(plan, outputs)?;
            let body = tokio::fs::read(&file).await.with_context(|| format!("reading {file}"))?;
            let s3 = env.aws.s3(&step.account, &step.region).await?;
            let (bucket, key) = (bucket.resolve(plan, outputs)?, object_key.resolve(plan, outputs)?);
            let uploaded = artifacts::put_once(&s3, &bucket, &key, body, &kms_key_arn.resolve(plan, outputs)?).await?;
            let (outcome, status) = match uploaded.uploaded {
                true => (Outcome::Uploaded, format!("UPLOADED {} bytes", uploaded.bytes)),
                false => (Outcome::Unchanged, "ALREADY THERE".to_string()),
            };
            let note = uploaded.replaced.map(|why| format!("s3://{bucket}/{key} was uploaded again: {why}"));
            let outputs = BTreeMap::from([("Bucket".to_string(), bucket), ("Key".to_string(), key)]);
            Ok(ActionDone::new(outcome, status, outputs).note(note))
        }
    }
}

/// `sha256:0123456789ab`: enough of a digest to tell images apart in a status line.
fn short(digest: &str) -> &str {
    &digest[..digest.len().min(19)]
}

/// Builds the Lambda's zip on a blocking thread (cargo runs for minutes the first time).
async fn build_lambda(env: &Env) -> Result<ActionDone> {
    let ctx = Ctx { root: env.root.clone(), printer: env.printer.clone() };
    let package = tokio::task::spawn_blocking(move || lambda::build(&ctx)).await??;
    let outputs = BTreeMap::from([
        ("ZipPath".to_string(), package.zip_path.display().to_string()),
        ("Sha256".to_string(), package.sha256.clone()),
        ("ObjectKey".to_string(), package.s3_key.clone()),
    ]);
    Ok(ActionDone::new(Outcome::Built, format!("BUILT {} bytes", package.zip_size), outputs))
}

/// A multi-Region key's replica keeps the primary's id, so its ARN in this region is known; this
/// checks that the key really is there and enabled.
async fn check_replica(step: &Step, env: &Env, key_arn: &str) -> Result<ActionDone> {
    let kms = env.aws.kms(&step.account, &step.region).await?;
    let outputs = BTreeMap::from([("KeyArn".to_string(), key_arn.to_string())]);
    match kms.describe_key().key_id(key_arn).send().await {
        Ok(reply) => {
            let state = reply.key_metadata().and_then(|key| key.key_state()).map(|state| state.as_str().to_string());
            match state.as_deref() {
                Some("Enabled") => Ok(ActionDone::new(Outcome::Checked, "ENABLED", outputs)),
                other => {
                    bail!("the key replica {key_arn} is {} instead of Enabled", other.unwrap_or("in an unknown state"))
                }
            }
        }
        Err(error) if env.aws.is_local() && error.code() == Some("NotFoundException") => {
            let note = format!(
                "{} uses the derived key ARN {key_arn} (no replica on the emulator; on AWS a missing one fails here)",
                step.region
            );
            Ok(ActionDone::new(Outcome::EmulatorGap, "EMULATOR_GAP", outputs).note(Some(note)))
        }
        Err(error) => Err(error).aws(&kms).with_context(|| {
            format!("the replica {key_arn} of the multi-Region key is missing or unreadable in {}", step.region)
        }),
    }
}

/// Waits until the service runs as many tasks as it wants, with no deployment in flight (see
/// [`settled`]).
async fn wait_service(step: &Step, env: &Env, cluster: &str, service: &str, progress: &Progress) -> Result<ActionDone> {
    let ecs = env.aws.ecs(&step.account, &step.region).await?;
    let deadline = Instant::now() + env.timeout;
    loop {
        let reply = ecs
            .describe_services()
            .cluster(cluster)
            .services(service)
            .send()
            .await
            .aws(&ecs)
            .with_context(|| format!("describing service {service} in cluster {cluster}"))?;
        let Some(found) = reply.services().first() else {
            bail!("service {service} is not in cluster {cluster}");
        };
        let (desired, running) = (found.desired_count(), found.running_count());
        if env.aws.is_local() {
            // The emulator records the service but starts no task (no container runs there), so
            // what it can show is the desired count; the site itself runs as a local container.
            let outputs = BTreeMap::from([("DesiredCount".to_string(), desired.to_string())]);
            let note = format!(
                "the emulator records {service} with {desired} desired tasks but runs none ({} pending); the local site container stands in",
                found.pending_count()
            );
            return Ok(ActionDone::new(Outcome::EmulatorGap, format!("{desired} DESIRED"), outputs).note(Some(note)));
        }
        let waiting = match settled(found) {
            Settled::Done => {
                let outputs = BTreeMap::from([("RunningCount".to_string(), running.to_string())]);
                return Ok(ActionDone::new(Outcome::Checked, format!("{running}/{desired} RUNNING"), outputs));
            }
            Settled::Failed(why) => bail!(
                "the deployment of service {service} failed: {why}; its events: `aws ecs describe-services --cluster {cluster} --services {service}`"
            ),
            Settled::Waiting(why) => why,
        };
        if Instant::now() > deadline {
            bail!(
                "service {service} is not settled after {} s ({waiting}); its events: `aws ecs describe-services --cluster {cluster} --services {service}`",
                env.timeout.as_secs()
            );
        }
        progress.update(waiting);
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// Where a service's rollout stands.
#[derive(Debug, PartialEq, Eq)]
enum Settled {
    Done,
    Waiting(String),
    Failed(String),
}

/// Whether `service` runs its desired count with no deployment in flight, by its controller:
/// - `CODE_DEPLOY`: one task set, the `PRIMARY`, in `STEADY_STATE`; a second task set is a
///   CodeDeploy deployment in flight (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_TaskSet.html,
///   `status`, `stabilityStatus`);
/// - `ECS`: one deployment, its `rolloutState` `COMPLETED` (`FAILED` is final, with its reason;
///   https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Deployment.html);
/// - and in both, as many running tasks as desired.
fn settled(service: &aws_sdk_ecs::types::Service) -> Settled {
    use aws_sdk_ecs::types::{DeploymentControllerType, DeploymentRolloutState, StabilityStatus};
    let (desired, running) = (service.desired_count(), service.running_count());
    let controller = service.deployment_controller().map(|controller| controller.r#type().clone());
    if controller == Some(DeploymentControllerType::CodeDeploy) {
        let sets = service.task_sets();
        if sets.len() > 1 {
            let states: Vec<String> =
                sets.iter().map(|set| format!("{} {}", set.status().unwrap_or("?"), set.running_count())).collect();
            return Settled::Waiting(format!("a CodeDeploy deployment in flight: task sets {}", states.join(", ")));
        }
        if let Some(primary) = sets.first()
            && primary.stability_status() != Some(&StabilityStatus::SteadyState)
        {
            return Settled::Waiting(format!("task set {} stabilizing", primary.id().unwrap_or("?")));
        }
    } else {
        let deployments = service.deployments();
        if deployments.len() > 1 {
            return Settled::Waiting(format!("{} deployments in flight", deployments.len()));
        }
        if let Some(deployment) = deployments.first() {
            match deployment.rollout_state() {
                Some(DeploymentRolloutState::Failed) => {
                    return Settled::Failed(deployment.rollout_state_reason().unwrap_or("no reason given").to_string());
                }
                Some(DeploymentRolloutState::InProgress) => {
                    return Settled::Waiting(format!("deployment {} in progress", deployment.id().unwrap_or("?")));
                }
                _ => {}
            }
        }
    }
    match running == desired {
        true => Settled::Done,
        false => Settled::Waiting(format!("{running}/{desired} tasks running")),
    }
}

/// Fetches `/healthz` through the load balancer until it answers 200.
///
/// On AWS the step fails when no attempt got a 200 within [`Patience::AWS`]: a load balancer that
/// never answered, or answered only errors, is not a deployed site. Locally it asks once; the
/// emulator's load balancers have no address (a declared emulator gap, see [`site_verdict`]).
async fn check_site(env: &Env, dns_name: &str, progress: &Progress) -> Result<ActionDone> {
    let url = format!("http://{dns_name}/healthz");
    let local = env.aws.is_local();
    let patience = if local { Patience::ONCE } else { Patience::AWS };
    let probed = probe_until_ok(&url, patience, progress).await;
    site_verdict(dns_name, &env.config.app, probed, local)
}

/// How long the site check keeps asking, and how often.
#[derive(Clone, Copy, Debug)]
struct Patience {
    /// No new attempt starts once this much time has passed since the first.
    window: Duration,
    /// The pause between two attempts.
    interval: Duration,
    /// The limit of one request (connect, send, read).
    request: Duration,
}

impl Patience {
    /// A new ALB's DNS name takes a minute or two to resolve and its targets must pass their
    /// health checks first (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html):
    /// five minutes, every ten seconds.
    const AWS: Patience = Patience {
        window: Duration::from_secs(300),
        interval: Duration::from_secs(10),
        request: Duration::from_secs(5),
    };
    /// One attempt.
    const ONCE: Patience =
        Patience { window: Duration::ZERO, interval: Duration::ZERO, request: Duration::from_secs(5) };
}

/// Asks `url` until it answers 200 or `patience.window` has passed (at least once). The error
/// counts what every failed attempt ran into.
async fn probe_until_ok(url: &str, patience: Patience, progress: &Progress) -> Result<(), SiteMisses> {
    let start = Instant::now();
    let mut misses = SiteMisses { url: url.to_string(), ..SiteMisses::default() };
    loop {
        let probe = url.to_string();
        let answer = tokio::task::spawn_blocking(move || http::get(&probe, patience.request))
            .await
            .unwrap_or_else(|join| Err(anyhow!("the probe's thread ended early: {join}")));
        match answer {
            Ok(response) if response.status == 200 => return Ok(()),
            Ok(response) => misses.record(Miss::Status(response.status), format!("HTTP {}", response.status)),
            Err(error) => misses.record(Miss::of(&error), one_line(&error)),
        }
        misses.elapsed = start.elapsed();
        if misses.elapsed + patience.interval > patience.window {
            return Err(misses);
        }
        progress.update(format!("{url}: {}; retrying", misses.last));
        tokio::time::sleep(patience.interval).await;
    }
}

/// The outcome of the site check. On AWS anything but a 200 fails the step. Locally an answer
/// other than 200 fails too, but an address that does not resolve or answer is the emulator's
/// gap (its load balancers have no address; the local site container is checked instead) and
/// becomes a note.
fn site_verdict(dns_name: &str, app: &str, probed: Result<(), SiteMisses>, local: bool) -> Result<ActionDone> {
    let misses = match probed {
        Ok(()) => {
            let outputs = BTreeMap::from([("Url".to_string(), format!("http://{dns_name}/"))]);
            return Ok(ActionDone::new(Outcome::Checked, "HTTP 200", outputs));
        }
        Err(misses) => misses,
    };
    let answered = matches!(misses.last_miss, Some(Miss::Status(_)));
    if local && !answered {
        let kind = misses.last_miss.map(|miss| miss.to_string()).unwrap_or_default();
        let note = format!(
            "{} is not reachable from here ({kind}: {}): the emulator's load balancers have no address",
            misses.url, misses.last
        );
        return Ok(ActionDone::new(Outcome::EmulatorGap, "UNREACHABLE", BTreeMap::new()).note(Some(note)));
    }
    bail!(
        "{misses}; see why the load balancer's targets are unhealthy: `aws elbv2 describe-target-health --target-group-arn <the {app}-blue or {app}-green target group>` and the service's events: `aws ecs describe-services --cluster {app} --services {app}`"
    )
}

/// What one failed attempt of the site check ran into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Miss {
    /// An HTTP answer other than 200.
    Status(u16),
    /// The name did not resolve (a new ALB's name takes a while).
    Unresolved,
    Refused,
    TimedOut,
    /// The connection broke before a whole answer arrived.
    Reset,
    Other,
}

impl Miss {
    /// Classifies an error of [`http::get`] by the I/O error in its chain, or by the step that
    /// failed (`http.rs` names resolution in its context: "resolving <host>").
    fn of(error: &anyhow::Error) -> Miss {
        use std::io::ErrorKind;
        let io = error.chain().find_map(|cause| cause.downcast_ref::<std::io::Error>());
        match io.map(std::io::Error::kind) {
            Some(ErrorKind::ConnectionRefused) => return Miss::Refused,
            // A read timeout is EAGAIN on Unix, `WouldBlock` in Rust.
            Some(ErrorKind::TimedOut | ErrorKind::WouldBlock) => return Miss::TimedOut,
            Some(
                ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::BrokenPipe
                | ErrorKind::UnexpectedEof,
            ) => return Miss::Reset,
            _ => {}
        }
        let top = error.to_string();
        if top.starts_with("resolving ") || top.ends_with("resolves to no address") {
            return Miss::Unresolved;
        }
        Miss::Other
    }
}

impl std::fmt::Display for Miss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Miss::Status(status) => write!(f, "HTTP {status}"),
            Miss::Unresolved => f.write_str("name not resolved"),
            Miss::Refused => f.write_str("connection refused"),
            Miss::TimedOut => f.write_str("timed out"),
            Miss::Reset => f.write_str("connection reset"),
            Miss::Other => f.write_str("other error"),
        }
    }
}

/// Every failed attempt of a site check, counted by kind in the order first seen.
#[derive(Debug, Default)]
struct SiteMisses {
    url: String,
    attempts: u32,
    elapsed: Duration,
    kinds: Vec<MissTally>,
    /// What the last attempt saw.
    last_miss: Option<Miss>,
    last: String,
    last_status: Option<u16>,
}

#[derive(Debug)]
struct MissTally {
    miss: Miss,
    count: u32,
    /// What the last attempt of this kind saw.
    last: String,
}

impl SiteMisses {
    fn record(&mut self, miss: Miss, detail: String) {
        self.attempts += 1;
        match self.kinds.iter_mut().find(|tally| tally.miss == miss) {
            Some(tally) => {
                tally.count += 1;
                tally.last.clone_from(&detail);
            }
            None => self.kinds.push(MissTally { miss, count: 1, last: detail.clone() }),
        }
        if let Miss::Status(status) = miss {
            self.last_status = Some(status);
        }
        self.last_miss = Some(miss);
        self.last = detail;
    }
}

impl std::fmt::Display for SiteMisses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} never answered HTTP 200 ({} attempts in {} s): ",
            self.url,
            self.attempts,
            self.elapsed.as_secs()
        )?;
        for (index, tally) in self.kinds.iter().enumerate() {
            if index > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{} ×{}", tally.miss, tally.count)?;
            if !matches!(tally.miss, Miss::Status(_)) {
                write!(f, " (last: {})", tally.last)?;
            }
        }
        if let Some(status) = self.last_status {
            write!(f, "; last status HTTP {status}")?;
        }
        write!(f, "; last attempt: {}", self.last)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;

    use super::*;

    /// DescribeServices' `Service` as the SDK's own types build it, in the shapes AWS documents
    /// for each controller (API_Service, API_TaskSet, API_Deployment).
    #[test]
    fn a_service_is_settled_only_with_no_deployment_in_flight() {
        use aws_sdk_ecs::types::{
            Deployment, DeploymentController, DeploymentControllerType, DeploymentRolloutState, Service,
            StabilityStatus, TaskSet,
        };
        let set = |status: &str, stability: StabilityStatus| {
            TaskSet::builder().id(format!("ecs-svc/{status}")).status(status).stability_status(stability).build()
        };
        let code_deploy = |running: i32, sets: Vec<TaskSet>| {
            Service::builder()
                .desired_count(2)
                .running_count(running)
                .deployment_controller(
                    DeploymentController::builder().r#type(DeploymentControllerType::CodeDeploy).build().unwrap(),
                )
                .set_task_sets(Some(sets))
                .build()
        };
        let rolling = |running: i32, states: &[DeploymentRolloutState]| {
            let deployments = states
                .iter()
                .map(|state| {
                    Deployment::builder()
                        .id("ecs-svc/1")
                        .rollout_state(state.clone())
                        .rollout_state_reason("tasks failed to start")
                        .build()
                })
                .collect();
            Service::builder().desired_count(2).running_count(running).set_deployments(Some(deployments)).build()
        };
        let check = |service: Service, expect: &str| {
            let found = match settled(&service) {
                Settled::Done => "done".to_string(),
                Settled::Waiting(why) => format!("waiting: {why}"),
                Settled::Failed(why) => format!("failed: {why}"),
            };
            assert!(found.starts_with(expect), "{found} (expected {expect})");
        };
        check(code_deploy(2, vec![set("PRIMARY", StabilityStatus::SteadyState)]), "done");
        check(code_deploy(2, vec![set("PRIMARY", StabilityStatus::Stabilizing)]), "waiting: task set ecs-svc/PRIMARY");
        check(
            code_deploy(
                2,
                vec![set("PRIMARY", StabilityStatus::SteadyState), set("ACTIVE", StabilityStatus::Stabilizing)],
            ),
            "waiting: a CodeDeploy deployment in flight",
        );
        check(code_deploy(1, vec![set("PRIMARY", StabilityStatus::SteadyState)]), "waiting: 1/2 tasks running");
        check(rolling(2, &[DeploymentRolloutState::Completed]), "done");
        check(rolling(2, &[DeploymentRolloutState::InProgress]), "waiting: deployment");
        check(
            rolling(2, &[DeploymentRolloutState::Completed, DeploymentRolloutState::InProgress]),
            "waiting: 2 deployments",
        );
        check(rolling(0, &[DeploymentRolloutState::Failed]), "failed: tasks failed to start");
        check(rolling(1, &[]), "waiting: 1/2");
    }

    /// Short enough for a test, long enough for several attempts.
    const QUICK: Patience = Patience {
        window: Duration::from_secs(2),
        interval: Duration::from_millis(20),
        request: Duration::from_secs(5),
    };

    /// Plays the ALB when its targets are unhealthy: every request gets `503 Service Unavailable`
    /// (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-troubleshooting.html#http-503-issues).
    /// With `then_refuse`, it answers the first request only after closing its listener, so every
    /// later attempt is refused, like an ALB whose listener went away.
    fn alb_answering_503(then_refuse: bool) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut listener = Some(listener);
            while let Some(open) = &listener {
                let Ok((mut stream, _)) = open.accept() else { return };
                if then_refuse {
                    listener = None;
                }
                // Read the request head first: closing a socket with unread data resets it.
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let _ = stream.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
            }
        });
        format!("http://{address}/healthz")
    }

    /// Plays an ALB address nothing listens on: every connection is refused.
    fn alb_refusing() -> String {
        let address = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        format!("http://{address}/healthz")
    }

    async fn probe(url: &str) -> Result<(), SiteMisses> {
        let progress = Printer::plain(Verbosity::Quiet).progress("Checking", url);
        probe_until_ok(url, QUICK, &progress).await
    }

    #[tokio::test]
    async fn a_site_that_only_answers_503_fails_on_aws_and_locally() {
        let url = alb_answering_503(false);
        let misses = probe(&url).await.unwrap_err();
        assert!(misses.attempts > 1, "{misses}");
        let text = misses.to_string();
        assert!(text.contains(&format!("HTTP 503 ×{}", misses.attempts)), "{text}");
        assert!(text.contains("last status HTTP 503"), "{text}");
        let error = site_verdict("alb", "web", Err(misses), false).unwrap_err().to_string();
        assert!(error.contains(&url) && error.contains("describe-target-health"), "{error}");
        let local = probe(&url).await;
        assert!(site_verdict("alb", "web", local, true).is_err());
    }

    #[tokio::test]
    async fn a_site_that_never_answered_fails_on_aws_and_is_a_gap_locally() {
        let url = alb_refusing();
        let misses = probe(&url).await.unwrap_err();
        let text = misses.to_string();
        assert!(text.contains(&format!("connection refused ×{} (last: connecting to", misses.attempts)), "{text}");
        assert!(!text.contains("last status"), "{text}");
        let error = site_verdict("alb", "web", Err(misses), false).unwrap_err().to_string();
        assert!(error.contains("never answered HTTP 200"), "{error}");
        let local = probe(&url).await;
        let done = site_verdict("alb", "web", local, true).unwrap();
        assert_eq!((done.outcome, done.status.as_str()), (Outcome::EmulatorGap, "UNREACHABLE"));
        assert!(done.note.is_some_and(|note| note.contains("connection refused")));
    }

    #[tokio::test]
    async fn every_kind_seen_is_counted_with_its_last_error() {
        let url = alb_answering_503(true);
        let misses = probe(&url).await.unwrap_err();
        let text = misses.to_string();
        let refused = misses.attempts - 1;
        assert!(text.contains(&format!("HTTP 503 ×1, connection refused ×{refused} (last: connecting to")), "{text}");
        assert!(text.contains("last status HTTP 503; last attempt: connecting to"), "{text}");
        assert!(site_verdict("alb", "web", Err(misses), false).is_err());
    }

    #[tokio::test]
    async fn a_200_passes() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut buffer = [0u8; 1024];
            let _ = stream.read(&mut buffer);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        });
        let probed = probe(&format!("http://{address}/healthz")).await;
        let done = site_verdict("alb", "web", probed, false).unwrap();
        assert_eq!(done.outcome, Outcome::Checked);
        assert_eq!((done.status.as_str(), done.outputs["Url"].as_str(), done.note), ("HTTP 200", "http://alb/", None));
    }
}
