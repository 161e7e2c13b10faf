//! The steps of a plan that are not stacks: checks between and after the stacks.
//!
//! Each returns a short status word, its outputs, and an optional note for the summary.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use aws_sdk_kms::error::ProvideErrorMetadata;

use crate::Ctx;
use crate::aws::error_text;
use crate::docker::Docker;
use crate::engine::executor::Env;
use crate::engine::{Action, Outputs, Plan, Step};
use crate::http;
use crate::local::site;
use crate::output::{Printer, Progress, Verbosity};
use crate::release_files::render::ServiceFacts;
use crate::release_files::targets::{self, Targets};
use crate::release_files::{self, ImageSet};
use crate::{artifacts, lambda, publish, site_image};

pub type ActionOutcome = (String, BTreeMap<String, String>, Option<String>);

pub async fn run(
    action: &Action,
    step: &Step,
    plan: &Plan,
    env: &Env,
    outputs: &Outputs,
    progress: &Progress,
) -> Result<ActionOutcome> {
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
            Ok((format!("BUILT {}", image.reference), outputs, None))
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
            Ok((status, values, None))
        }
        Action::SameDigest { digests } => {
            let digests = digests.iter().map(|digest| digest.resolve(plan, outputs)).collect::<Result<Vec<_>>>()?;
            let first = digests.first().cloned().unwrap_or_default();
            if let Some(other) = digests.iter().find(|digest| **digest != first) {
                bail!("the registries hold different digests for one image: {first} and {other}");
            }
            Ok((
                format!("{} in {} registries", short(&first), digests.len()),
                BTreeMap::from([("Digest".to_string(), first)]),
                None,
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
            Ok((status, BTreeMap::from([("Release".to_string(), id)]), None))
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
            let targets = Targets { key_id: key_id.resolve(plan, outputs)?, services: facts };
            let published = targets::publish(&env.aws, &env.config, &targets).await?;
            let status = match published {
                targets::Published::Written => "PUBLISHED",
                targets::Published::Unchanged => "UNCHANGED",
            };
            let bucket = env.config.bucket_name(&env.config.tools.region);
            let values =
                BTreeMap::from([("Bucket".to_string(), bucket), ("Key".to_string(), targets::TARGETS_KEY.to_string())]);
            Ok((status.into(), values, None))
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
            Ok((format!("SERVING {}", running.version), BTreeMap::from([("Url".to_string(), running.url)]), note))
        }
        Action::Upload { file, bucket, object_key, kms_key_arn } => {
            let file = file.resolve(plan, outputs)?;
            let body = tokio::fs::read(&file).await.with_context(|| format!("reading {file}"))?;
            let s3 = env.aws.s3(&step.account, &step.region).await?;
            let (bucket, key) = (bucket.resolve(plan, outputs)?, object_key.resolve(plan, outputs)?);
            let uploaded = artifacts::put_once(&s3, &bucket, &key, body, &kms_key_arn.resolve(plan, outputs)?).await?;
            let status =
                if uploaded.uploaded { format!("UPLOADED {} bytes", uploaded.bytes) } else { "ALREADY THERE".into() };
            Ok((status, BTreeMap::from([("Bucket".to_string(), bucket), ("Key".to_string(), key)]), None))
        }
    }
}

/// `sha256:0123456789ab`: enough of a digest to tell images apart in a status line.
fn short(digest: &str) -> &str {
    &digest[..digest.len().min(19)]
}

/// Builds the Lambda's zip on a blocking thread (cargo runs for minutes the first time).
async fn build_lambda(env: &Env) -> Result<ActionOutcome> {
    let ctx = Ctx { root: env.root.clone(), printer: env.printer.clone() };
    let package = tokio::task::spawn_blocking(move || lambda::build(&ctx)).await??;
    let outputs = BTreeMap::from([
        ("ZipPath".to_string(), package.zip_path.display().to_string()),
        ("Sha256".to_string(), package.sha256.clone()),
        ("ObjectKey".to_string(), package.s3_key.clone()),
    ]);
    Ok((format!("BUILT {} bytes", package.zip_size), outputs, None))
}

/// A multi-Region key's replica keeps the primary's id, so its ARN in this region is known; this
/// checks that the key really is there and enabled.
async fn check_replica(step: &Step, env: &Env, key_arn: &str) -> Result<ActionOutcome> {
    let kms = env.aws.kms(&step.account, &step.region).await?;
    let outputs = BTreeMap::from([("KeyArn".to_string(), key_arn.to_string())]);
    match kms.describe_key().key_id(key_arn).send().await {
        Ok(reply) => {
            let state = reply.key_metadata().and_then(|key| key.key_state()).map(|state| state.as_str().to_string());
            match state.as_deref() {
                Some("Enabled") => Ok(("ENABLED".into(), outputs, None)),
                other => {
                    bail!("the key replica {key_arn} is {} instead of Enabled", other.unwrap_or("in an unknown state"))
                }
            }
        }
        Err(error) if env.aws.is_local() && error.code() == Some("NotFoundException") => Ok((
            "EMULATOR_GAP".into(),
            outputs,
            Some(format!(
                "{} uses the derived key ARN {key_arn} (no replica on the emulator; on AWS a missing one fails here)",
                step.region
            )),
        )),
        Err(error) => Err(anyhow!(error_text(&error))).with_context(|| {
            format!("the replica {key_arn} of the multi-Region key is missing or unreadable in {}", step.region)
        }),
    }
}

/// Waits until the service runs as many tasks as it wants, with no deployment in flight.
async fn wait_service(
    step: &Step,
    env: &Env,
    cluster: &str,
    service: &str,
    progress: &Progress,
) -> Result<ActionOutcome> {
    let ecs = env.aws.ecs(&step.account, &step.region).await?;
    let deadline = Instant::now() + env.timeout;
    loop {
        let reply = ecs
            .describe_services()
            .cluster(cluster)
            .services(service)
            .send()
            .await
            .map_err(|error| anyhow!(error_text(&error)))
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
            return Ok((format!("{desired} DESIRED"), outputs, Some(note)));
        }
        if running == desired {
            let outputs = BTreeMap::from([("RunningCount".to_string(), running.to_string())]);
            return Ok((format!("{running}/{desired} RUNNING"), outputs, None));
        }
        if Instant::now() > deadline {
            bail!(
                "service {service} runs {running} of {desired} tasks after {} s; its events: `aws ecs describe-services --cluster {cluster} --services {service}`",
                env.timeout.as_secs()
            );
        }
        progress.update(format!("{running}/{desired} tasks running"));
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// Fetches `/healthz` through the load balancer. An address that does not resolve or answer from
/// here (the emulator's load balancers have none) is a note, not a failure; an answer other than
/// 200 is a failure.
async fn check_site(env: &Env, dns_name: &str, progress: &Progress) -> Result<ActionOutcome> {
    let url = format!("http://{dns_name}/healthz");
    let attempts = if env.aws.is_local() { 1 } else { 30 };
    let mut last = String::new();
    for attempt in 0..attempts {
        let probe = url.clone();
        let answer = tokio::task::spawn_blocking(move || http::get(&probe, Duration::from_secs(5))).await?;
        match answer {
            Ok(response) if response.status == 200 => {
                let outputs = BTreeMap::from([("Url".to_string(), format!("http://{dns_name}/"))]);
                return Ok(("HTTP 200".into(), outputs, None));
            }
            Ok(response) => last = format!("HTTP {}", response.status),
            Err(error) => last = format!("{error:#}"),
        }
        if attempt + 1 < attempts {
            progress.update(format!("{url}: {last}; retrying"));
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
    }
    if last.starts_with("HTTP ") {
        bail!("{url} answered {last}");
    }
    Ok(("UNREACHABLE".into(), BTreeMap::new(), Some(format!("{url} is not reachable from here ({last})"))))
}
