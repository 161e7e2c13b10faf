//! `cargo xtask destroy`: tears down every stack of the plan in reverse dependency order,
//! independent stacks in parallel, and reports what it left behind and why.
//!
//! Before a service stack goes, its service is scaled to 0. Registries and artifact buckets hold
//! data that a stack deletion would fail on (or, for buckets, must not silently lose): they are
//! emptied (every image; every object version and delete marker) only with `--force` or a typed
//! `yes` on a terminal. Without that, those stacks stay, and the report says so. Keys are
//! scheduled for deletion with the shortest window KMS allows (7 days, set at deploy time). The
//! source repository is kept on purpose: it may hold work found nowhere else.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, Result, anyhow};
use tokio::task::JoinSet;

use crate::Ctx;
use crate::aws::error_text;
use crate::config::Target;
use crate::engine::executor::{Env, StepResult};
use crate::engine::report::Summary;
use crate::engine::session::{self, Options};
use crate::engine::stack::{Action, Stacks};
use crate::engine::topology::Inputs;
use crate::engine::{Plan, StepId, StepKind};
use crate::output::Exit;

/// Arguments of `cargo xtask destroy`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// Empty the registries and the artifact buckets (every image, every object version) without
    /// asking; without it, a terminal asks and anything else keeps them.
    #[arg(long)]
    pub force: bool,
    /// How many stacks are deleted at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// Print a machine-readable summary on stdout.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let inputs = |_: &crate::config::Config| Inputs::stacks_only();
    let session = session::open(ctx, &args.target, inputs, Options { method: None, show_identities: true }).await?;
    let empty = args.force || confirm(ctx, &session.config)?;
    let plan = session.plan.clone();
    let env = session.env.clone();
    let stacks: Vec<StepId> = plan.stacks().map(|(id, _, _)| id).collect();
    // A stack goes once every stack that depends on it is gone.
    let blockers: BTreeMap<StepId, Vec<StepId>> = stacks
        .iter()
        .map(|id| (*id, plan.dependents(*id).into_iter().filter(|dependent| stacks.contains(dependent)).collect()))
        .collect();
    let mut results: BTreeMap<StepId, StepResult> = BTreeMap::new();
    let mut running = JoinSet::new();
    let mut started: Vec<StepId> = Vec::new();
    loop {
        for id in stacks.iter().rev() {
            if started.contains(id) {
                continue;
            }
            let waiting_on = &blockers[id];
            if let Some(kept) =
                waiting_on.iter().find(|blocker| results.get(blocker).is_some_and(|result| !gone(result.action)))
            {
                started.push(*id);
                results.insert(*id, kept_because(&plan, *id, *kept));
                continue;
            }
            let ready = waiting_on.iter().all(|blocker| results.contains_key(blocker));
            if ready && running.len() < usize::from(args.concurrency) {
                started.push(*id);
                let (plan, env, id) = (plan.clone(), env.clone(), *id);
                running.spawn(async move { destroy_stack(&plan, &env, id, empty).await });
            }
        }
        let Some(joined) = running.join_next().await else { break };
        let result = joined.context("a destroy step panicked")?;
        results.insert(result.step, result);
    }
    let ordered: Vec<StepResult> = stacks.iter().filter_map(|id| results.remove(id)).collect();
    let summary = Summary::new(&plan, &ordered);
    summary.print(&ctx.printer);
    report_left_behind(ctx, &session.config, &ordered, empty);
    if args.json {
        ctx.printer.json(&summary)?;
    }
    if summary.failed() > 0 {
        return Err(Exit(1).into());
    }
    Ok(())
}

fn gone(action: Action) -> bool {
    matches!(action, Action::Deleted | Action::Unchanged | Action::EmulatorGap)
}

fn kept_because(plan: &Plan, id: StepId, blocker: StepId) -> StepResult {
    let detail = format!("kept: {} still exists and depends on it", plan.steps[blocker].id);
    StepResult::new(plan, id, Action::Skipped, "KEPT", Some(detail), 0.0)
}

/// Asks on a terminal whether registries and buckets may be emptied; `false` elsewhere.
fn confirm(ctx: &Ctx, config: &crate::config::Config) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        ctx.printer.note("registries and artifact buckets are kept (not a terminal; pass --force to empty them)");
        return Ok(false);
    }
    eprint!(
        "Empty {} ECR repositories and {} artifact buckets (every image, every object version)? Type yes: ",
        config.workloads.len(),
        config.regions().len() * 2
    );
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}

async fn destroy_stack(plan: &Plan, env: &Env, id: StepId, empty: bool) -> StepResult {
    let step = &plan.steps[id];
    let StepKind::Stack(stack) = &step.kind else { unreachable!("only stacks are destroyed") };
    let place = format!("{} ({}/{})", step.id, step.account, step.region);
    let clock = std::time::Instant::now();
    if env.aws.is_local()
        && let Some(gap) = stack.emulator_gap
    {
        return StepResult::new(plan, id, Action::EmulatorGap, "NOT_DEPLOYED", Some(gap.to_string()), 0.0);
    }
    let progress = env.printer.progress("Destroying", &place);
    let outcome = async {
        let stacks = Stacks::new(env.aws.cloudformation(&step.account, &step.region).await?, env.timeout);
        let Some(state) = stacks.describe(&stack.name).await? else {
            return Ok((Action::Unchanged, "NOT_DEPLOYED".to_string(), None));
        };
        let template = stack.template.to_string_lossy();
        if template.ends_with("service.yaml") {
            progress.update("scaling the service to 0");
            scale_to_zero(env, &step.account, &step.region).await?;
        }
        if template.ends_with("ecr.yaml") || template.ends_with("artifacts.yaml") {
            if !empty {
                return Ok((
                    Action::Skipped,
                    state.status,
                    Some(
                        "kept: it may hold images or artifacts; run again with --force to empty and delete it"
                            .to_string(),
                    ),
                ));
            }
            if template.ends_with("ecr.yaml") {
                progress.update("deleting every image");
                empty_repository(env, &step.account, &step.region).await?;
            } else {
                for bucket in [env.config.bucket_name(&step.region), env.config.log_bucket_name(&step.region)] {
                    progress.update(format!("deleting every object version in {bucket}"));
                    empty_bucket(env, &step.account, &step.region, &bucket).await?;
                }
            }
        }
        stacks.delete(&stack.name, &progress).await?;
        anyhow::Ok((Action::Deleted, "DELETE_COMPLETE".to_string(), None))
    }
    .await;
    let seconds = clock.elapsed().as_secs_f64();
    match outcome {
        Ok((action, status, detail)) => {
            let word = match action {
                Action::Deleted => "Deleted",
                Action::Skipped => "Kept",
                _ => "Absent",
            };
            progress.finish(word, format!("{place} in {seconds:.1}s"));
            StepResult::new(plan, id, action, status, detail, seconds)
        }
        Err(error) => {
            let (status, cause) = StepResult::failure(&error, "DELETE_FAILED");
            if env.aws.is_local() && stack.template.ends_with("network.yaml") && cause.contains("DependencyViolation") {
                // moto has no delete handler for route tables: it drops the stack record and keeps
                // the VPC. Say so instead of failing; on AWS this path is an ordinary failure.
                let note = format!(
                    "{} left in the emulator: moto's CloudFormation cannot delete route tables, so the VPC and subnets stay there until `cargo xtask local down` ({cause})",
                    step.id
                );
                progress.finish("Left", format!("{place}: emulator gap"));
                return StepResult::new(plan, id, Action::EmulatorGap, "LEFT_BY_EMULATOR", Some(note), seconds);
            }
            progress.fail(format!("{place}: {cause}"));
            StepResult::new(plan, id, Action::Failed, status, Some(cause), seconds)
        }
    }
}

async fn scale_to_zero(env: &Env, account: &str, region: &str) -> Result<()> {
    let ecs = env.aws.ecs(account, region).await?;
    let app = &env.config.app;
    match ecs.update_service().cluster(app).service(app).desired_count(0).send().await {
        Ok(_) => Ok(()),
        // Already gone: nothing to scale.
        Err(error) if matches!(error.as_service_error(), Some(service) if service.is_service_not_found_exception() || service.is_cluster_not_found_exception()) => {
            Ok(())
        }
        Err(error) => Err(anyhow!(error_text(&error)))
            .with_context(|| format!("scaling service {app} to 0 in {account}/{region}")),
    }
}

async fn empty_repository(env: &Env, account: &str, region: &str) -> Result<()> {
    let ecr = env.aws.ecr(account, region).await?;
    let repository = &env.config.app;
    let mut token = None;
    loop {
        let listed = match ecr.list_images().repository_name(repository).set_next_token(token).send().await {
            Ok(listed) => listed,
            Err(error)
                if error.as_service_error().is_some_and(|service| service.is_repository_not_found_exception()) =>
            {
                return Ok(());
            }
            Err(error) => {
                return Err(anyhow!(error_text(&error))).with_context(|| format!("listing the images of {repository}"));
            }
        };
        let ids = listed.image_ids().to_vec();
        if !ids.is_empty() {
            for chunk in ids.chunks(100) {
                ecr.batch_delete_image()
                    .repository_name(repository)
                    .set_image_ids(Some(chunk.to_vec()))
                    .send()
                    .await
                    .map_err(|error| anyhow!(error_text(&error)))
                    .with_context(|| format!("deleting images of {repository} in {account}/{region}"))?;
            }
        }
        token = listed.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(());
        }
    }
}

/// Deletes every object version and delete marker: a versioned bucket is empty only then.
async fn empty_bucket(env: &Env, account: &str, region: &str, bucket: &str) -> Result<()> {
    use aws_sdk_s3::types::{Delete, ObjectIdentifier};
    let s3 = env.aws.s3(account, region).await?;
    loop {
        let listed = match s3.list_object_versions().bucket(bucket).send().await {
            Ok(listed) => listed,
            Err(error)
                if error.as_service_error().is_some_and(|service| service.meta().code() == Some("NoSuchBucket")) =>
            {
                return Ok(());
            }
            Err(error) => {
                return Err(anyhow!(error_text(&error))).with_context(|| format!("listing the versions in {bucket}"));
            }
        };
        let identifiers: Vec<ObjectIdentifier> = listed
            .versions()
            .iter()
            .filter_map(|version| Some((version.key()?, version.version_id())))
            .chain(listed.delete_markers().iter().filter_map(|marker| Some((marker.key()?, marker.version_id()))))
            .filter_map(|(key, version)| {
                ObjectIdentifier::builder().key(key).set_version_id(version.map(str::to_string)).build().ok()
            })
            .collect();
        if identifiers.is_empty() {
            return Ok(());
        }
        for chunk in identifiers.chunks(1000) {
            let delete = Delete::builder().set_objects(Some(chunk.to_vec())).quiet(true).build()?;
            s3.delete_objects()
                .bucket(bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|error| anyhow!(error_text(&error)))
                .with_context(|| format!("deleting object versions in {bucket}"))?;
        }
    }
}

fn report_left_behind(ctx: &Ctx, config: &crate::config::Config, results: &[StepResult], emptied: bool) {
    ctx.printer.text("");
    ctx.printer.note(format!(
        "the CodeCommit repository {} is kept on purpose (it may hold work found nowhere else): `aws codecommit delete-repository --repository-name {}` removes it",
        config.source.repository, config.source.repository
    ));
    ctx.printer.note("the multi-Region key and its replicas are scheduled for deletion in 7 days (KMS's shortest window); `aws kms cancel-key-deletion` keeps them");
    let kept = results.iter().filter(|result| result.action == Action::Skipped).count();
    if kept > 0 && !emptied {
        ctx.printer.note(format!(
            "{kept} stacks kept: run `cargo xtask destroy --force` to empty registries and buckets and delete them too"
        ));
    }
}
