//! `cargo xtask destroy`: tears down every stack of the plan in reverse dependency order,
//! independent stacks in parallel, and reports what it left behind and why.
//!
//! Before a service stack goes, its service is scaled to 0. Registries and artifact buckets hold
//! data that a stack deletion would fail on (or, for buckets, must not silently lose): they are
//! emptied (every image; every object version and delete marker) only with `--force` or a typed
//! `yes` on a terminal. Without that, those stacks stay, and the report says so. Keys are
//! scheduled for deletion with the shortest window KMS allows (7 days, set at deploy time). The
//! source repository is kept on purpose: it may hold work found nowhere else.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, Result, bail};
use tokio::task::JoinSet;

use crate::Ctx;
use crate::aws::AwsResultExt;
use crate::config::Target;
use crate::engine::deployed::Deployed;
use crate::engine::executor::{Env, StepResult};
use crate::engine::report::Summary;
use crate::engine::session::{self, Options};
use crate::engine::stack::{Action, StackFailed, Stacks};
use crate::engine::stand_ins;
use crate::engine::topology::Inputs;
use crate::engine::{Plan, StepId, StepKind};
use crate::output::Exit;
use crate::topology_lock::{self, LOCK_KEY, LockArgs};
use leftovers::{Deletion, Verdict};

mod leftovers;

/// Arguments of `cargo xtask destroy`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// Empty the registries and the artifact buckets (every image, every object version) without
    /// asking; without it, a terminal asks and anything else keeps them.
    #[arg(long)]
    pub force: bool,
    /// How many stacks are deleted at once (1 to 64).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// Print a machine-readable summary on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub lock: LockArgs,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let inputs = |_: &crate::config::Config| Inputs::stacks_only();
    let session = session::open(ctx, &args.target, inputs, Options { method: None, show_identities: true }).await?;
    let empty = args.force || confirm(ctx, &session.config)?;
    let lock =
        topology_lock::acquire(&session.env.aws, &session.config, "destroy", args.lock.wait(), &ctx.printer).await?;
    topology_lock::hold(lock, &ctx.printer, destroy(ctx, &args, &session, empty)).await
}

/// The destroy itself, under the topology lock (which goes with the artifact bucket, if that is
/// emptied and deleted).
async fn destroy(ctx: &Ctx, args: &Args, session: &session::Session, empty: bool) -> Result<()> {
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
        // Against the emulator, what stood in for the resources its CloudFormation skipped goes
        // first, through the same APIs (stand_ins.rs): moto would keep it otherwise.
        // A stack that is not complete (a failed create) is deleted as it is.
        let stand_ins = match env.aws.is_local() && state.is_complete() {
            true => remove_stand_ins(env, step, &stack.name, &progress).await?,
            false => None,
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
                    state.status_text(),
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
                    empty_bucket(env, &step.account, &step.region, &bucket, keep_lock(env, &step.region, &bucket))
                        .await?;
                }
            }
        }
        // What the stack holds, read before it goes: after the deletion, each is looked for.
        progress.update("listing its resources");
        let resources = leftovers::resources(&env.aws, &step.account, &step.region, &stack.name).await?;
        let deleted = match empty && template.ends_with("artifacts.yaml") {
            true => delete_artifact_stack(env, step, &stacks, &stack.name, &progress).await,
            false => stacks.delete(&stack.name, &progress).await.map(|_| ()),
        };
        let deletion = match deleted {
            Ok(()) => Deletion::Complete,
            // A failed deletion that left the stack is an ordinary failure, with the fix for
            // network interfaces still in its VPC when that is the cause.
            Err(error) if stacks.describe(&stack.name).await?.is_some() => {
                return Err(with_dependency_fix(error, &resources, &step.region));
            }
            Err(error) => Deletion::Dropped { cause: StepResult::failure(&error, "DELETE_FAILED").1 },
        };
        progress.update("looking for what it left");
        let mut left = leftovers::still_there(&env.aws, &step.account, &step.region, &resources).await?;
        // On AWS a resource CloudFormation just deleted can still be found for a moment ("If you
        // delete a bucket and immediately list all buckets, the deleted bucket might still
        // appear": https://docs.aws.amazon.com/AmazonS3/latest/userguide/Welcome.html#ConsistencyModel):
        // look again for up to a minute before calling it left behind.
        let patience = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !env.aws.is_local()
            && left.iter().any(|item| !item.resource.retained)
            && std::time::Instant::now() < patience
        {
            progress.update("looking again in 10 s for what it left (deletions show with a delay)");
            tokio::time::sleep(std::time::Duration::from_secs(10)).await;
            left = leftovers::still_there(&env.aws, &step.account, &step.region, &resources).await?;
        }
        let where_ = format!("{}/{}", step.account, step.region);
        // What the stand-ins' removal said goes with the verdict's own note.
        let with_stand_ins = |note: Option<String>| match (note, stand_ins.clone()) {
            (Some(note), Some(stand_ins)) => Some(format!("{note}; {stand_ins}")),
            (note, stand_ins) => note.or(stand_ins),
        };
        match leftovers::classify(&stack.name, &where_, &resources, &left, &deletion, env.aws.is_local()) {
            Verdict::Gone { note } => {
                anyhow::Ok((Action::Deleted, "DELETE_COMPLETE".to_string(), with_stand_ins(note)))
            }
            Verdict::Failed { detail } => Ok((Action::Failed, LEFT_BEHIND.to_string(), Some(detail))),
            Verdict::EmulatorGap { remove, note, complete } => {
                progress.update("deleting what the emulator left");
                leftovers::remove(&env.aws, &step.account, &step.region, &remove).await?;
                let status = if complete { "DELETE_COMPLETE" } else { "LEFT_BY_EMULATOR" };
                Ok((Action::EmulatorGap, status.to_string(), with_stand_ins(Some(note))))
            }
        }
    }
    .await;
    let seconds = clock.elapsed().as_secs_f64();
    match outcome {
        Ok((Action::Failed, status, detail)) => {
            progress.fail(format!("{place}: {}", detail.as_deref().unwrap_or("left resources behind")));
            StepResult::new(plan, id, Action::Failed, status, detail, seconds)
        }
        Ok((action, status, detail)) => {
            let word = match action {
                Action::Deleted => "Deleted",
                Action::Skipped => "Kept",
                Action::EmulatorGap => "Left",
                _ => "Absent",
            };
            progress.finish(word, format!("{place} in {seconds:.1}s"));
            StepResult::new(plan, id, action, status, detail, seconds)
        }
        Err(error) => {
            let (status, cause) = StepResult::failure(&error, "DELETE_FAILED");
            progress.fail(format!("{place}: {cause}"));
            StepResult::new(plan, id, Action::Failed, status, Some(cause), seconds)
        }
    }
}

/// The status of a stack that CloudFormation deleted but that left resources behind (on AWS):
/// never DELETE_COMPLETE.
const LEFT_BEHIND: &str = "LEFT_BEHIND";

/// `error` (a failed deletion) with the fix for network interfaces still in the stack's VPC, when
/// its root cause is a dependency (`leftovers::dependency_fix`).
fn with_dependency_fix(error: anyhow::Error, resources: &[leftovers::Resource], region: &str) -> anyhow::Error {
    match error.downcast::<StackFailed>() {
        Ok(failed) => match leftovers::dependency_fix(&failed.root_cause, resources, region) {
            Some(fix) => StackFailed { root_cause: format!("{}; {fix}", failed.root_cause), ..failed }.into(),
            None => failed.into(),
        },
        Err(error) => error,
    }
}

/// Removes the stand-ins of stack `name` (deployed in the emulator) and says what was removed
/// and what kept; `None` when the stack has none. The template is the one the stack was deployed
/// from (GetTemplate), so its `DeletionPolicy` is what CloudFormation would go by.
async fn remove_stand_ins(
    env: &Env,
    step: &crate::engine::Step,
    name: &str,
    progress: &crate::output::Progress,
) -> Result<Option<String>> {
    let deployed = Deployed::read_as_deployed(&env.aws, &step.account, &step.region, name)
        .await
        .with_context(|| format!("reading stack {name} to find its stand-ins"))?;
    let removed = stand_ins::remove(&env.aws, &deployed, Some(progress))
        .await
        .with_context(|| format!("removing the stand-ins of stack {name}"))?;
    if removed.is_empty() {
        return Ok(None);
    }
    let rows: Vec<String> = removed.iter().map(stand_ins::Removed::describe).collect();
    Ok(Some(format!(
        "{name} ({}/{}): stand-ins of what the emulator's CloudFormation skipped: {}",
        step.account,
        step.region,
        rows.join("; ")
    )))
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
        Err(error) => Err(error).aws(&ecs).with_context(|| format!("scaling service {app} to 0 in {account}/{region}")),
    }
}

/// How often the artifacts stack is deleted again after a late access log refilled its log bucket.
const LATE_LOG_RETRIES: usize = 3;

/// Deletes the artifacts stack, whose two buckets were just emptied. S3 delivers server access
/// logs "on a best-effort basis", most "within a few hours of the time that they are recorded"
/// (https://docs.aws.amazon.com/AmazonS3/latest/userguide/ServerLogs.html#LogDeliveryBestEffort):
/// the artifact bucket's last requests (our own emptying) can land in the log bucket after it was
/// emptied, and CloudFormation then fails to delete it (`BucketNotEmpty`, the stack
/// DELETE_FAILED). So the log bucket is emptied again and the stack deleted again, a few times,
/// before that is reported.
async fn delete_artifact_stack(
    env: &Env,
    step: &crate::engine::Step,
    stacks: &Stacks,
    name: &str,
    progress: &crate::output::Progress,
) -> Result<()> {
    let log_bucket = env.config.log_bucket_name(&step.region);
    // The topology lock lives in the tools region's artifact bucket and was kept while the rest
    // was emptied: it goes now, with the bucket (the lock's release then says so).
    let bucket = env.config.bucket_name(&step.region);
    if keep_lock(env, &step.region, &bucket) != Versions::All {
        empty_bucket(env, &step.account, &step.region, &bucket, Versions::Only(LOCK_KEY)).await?;
    }
    let mut attempt = 0;
    loop {
        match stacks.delete(name, progress).await {
            Ok(_) => return Ok(()),
            Err(error)
                if attempt < LATE_LOG_RETRIES
                    && error
                        .downcast_ref::<StackFailed>()
                        .is_some_and(|failed| is_bucket_not_empty(&failed.root_cause)) =>
            {
                attempt += 1;
                progress.update(format!(
                    "late access logs in {log_bucket}: emptying it again ({attempt}/{LATE_LOG_RETRIES})"
                ));
                // The artifact bucket first: emptying it is itself logged into the log bucket.
                let bucket = env.config.bucket_name(&step.region);
                empty_bucket(env, &step.account, &step.region, &bucket, keep_lock(env, &step.region, &bucket)).await?;
                tokio::time::sleep(LATE_LOG_PAUSE).await;
                empty_bucket(env, &step.account, &step.region, &log_bucket, Versions::All).await?;
            }
            Err(error) => return Err(error),
        }
    }
}

/// Whether a failed stack deletion's root cause is a bucket that is not empty: S3's
/// `BucketNotEmpty` ("The bucket you tried to delete is not empty"), as CloudFormation relays it
/// in the resource's status reason (a text, not an error code, hence matched here and tested).
fn is_bucket_not_empty(cause: &str) -> bool {
    cause.contains("BucketNotEmpty") || cause.contains("bucket you tried to delete is not empty")
}

async fn empty_repository(env: &Env, account: &str, region: &str) -> Result<()> {
    let ecr = env.aws.ecr(account, region).await?;
    let repository = &env.config.app;
    // Every image first, then the deletions: a page token stays valid only for the listing it
    // came from.
    let mut ids = Vec::new();
    let mut pages = ecr.list_images().repository_name(repository).into_paginator().send();
    while let Some(page) = pages.next().await {
        match page {
            Ok(listed) => ids.extend(listed.image_ids().iter().cloned()),
            Err(error)
                if error.as_service_error().is_some_and(|service| service.is_repository_not_found_exception()) =>
            {
                return Ok(());
            }
            Err(error) => {
                return Err(error).aws(&ecr).with_context(|| format!("listing the images of {repository}"));
            }
        }
    }
    // BatchDeleteImage takes at most 100 image ids
    // (https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_BatchDeleteImage.html).
    for chunk in ids.chunks(100) {
        ecr.batch_delete_image()
            .repository_name(repository)
            .set_image_ids(Some(chunk.to_vec()))
            .send()
            .await
            .aws(&ecr)
            .with_context(|| format!("deleting images of {repository} in {account}/{region}"))?;
    }
    Ok(())
}

/// Deletes every object version and delete marker (of `versions`): a versioned bucket is empty
/// only then.
async fn empty_bucket(env: &Env, account: &str, region: &str, bucket: &str, versions: Versions<'_>) -> Result<()> {
    let s3 = env.aws.s3(account, region).await?;
    delete_every_version(&s3, bucket, versions)
        .await
        .with_context(|| format!("emptying s3://{bucket} in {account}/{region}"))
}

/// Which versions of a bucket to delete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Versions<'a> {
    All,
    /// Every key but this one.
    AllBut(&'a str),
    /// This key alone.
    Only(&'a str),
}

/// The tools region's artifact bucket holds the topology lock of this very destroy: it is kept
/// until that bucket's stack goes, so that no one else takes the lock while stacks are deleted.
fn keep_lock<'a>(env: &Env, region: &str, bucket: &str) -> Versions<'a> {
    match region == env.config.tools.region && bucket == env.config.bucket_name(region) {
        true => Versions::AllBut(LOCK_KEY),
        false => Versions::All,
    }
}

/// The pause between two deletions of the artifacts stack, for late access logs.
const LATE_LOG_PAUSE: std::time::Duration = std::time::Duration::from_secs(30);

/// How many object versions DeleteObjects takes at once
/// (https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjects.html).
const DELETE_BATCH: usize = 1000;

/// How many refused deletions an error names; the count says how many there were.
const ERRORS_SHOWN: usize = 3;

/// Lists the bucket's versions and delete markers and deletes them, a batch at a time, until a
/// listing comes back empty; a missing bucket is already empty.
///
/// DeleteObjects answers 200 even when it deleted nothing: each object it did not delete is an
/// `<Error>` in the answer (quiet mode leaves out only the successes; same page as above). Those
/// are read after every batch, and the first batch with any stops the loop with them: listing
/// and retrying the same versions would never end. A version listed again after DeleteObjects
/// reported it deleted stops the loop too, for the same reason.
async fn delete_every_version(s3: &aws_sdk_s3::Client, bucket: &str, which: Versions<'_>) -> Result<()> {
    use aws_sdk_s3::types::{Delete, ObjectIdentifier};
    let mut deleted: HashSet<(String, Option<String>)> = HashSet::new();
    let prefix = match which {
        Versions::Only(key) => Some(key.to_string()),
        _ => None,
    };
    loop {
        let listed = match s3.list_object_versions().bucket(bucket).set_prefix(prefix.clone()).send().await {
            Ok(listed) => listed,
            Err(error)
                if error.as_service_error().is_some_and(|service| service.meta().code() == Some("NoSuchBucket")) =>
            {
                return Ok(());
            }
            Err(error) => {
                return Err(error).aws(&s3).with_context(|| format!("listing the versions in {bucket}"));
            }
        };
        let versions: Vec<(String, Option<String>)> = listed
            .versions()
            .iter()
            .filter_map(|version| Some((version.key()?, version.version_id())))
            .chain(listed.delete_markers().iter().filter_map(|marker| Some((marker.key()?, marker.version_id()))))
            .map(|(key, version)| (key.to_string(), version.map(str::to_string)))
            .filter(|(key, _)| match which {
                Versions::All => true,
                Versions::AllBut(kept) => key != kept,
                Versions::Only(only) => key == only,
            })
            .collect();
        if versions.is_empty() {
            return Ok(());
        }
        if let Some((key, version)) = versions.iter().find(|version| deleted.contains(*version)) {
            bail!(
                "S3 still lists {key} (version {}) in {bucket} after DeleteObjects reported it deleted; stopped instead of retrying: list what is left with `aws s3api list-object-versions --bucket {bucket}` and delete it by hand",
                version.as_deref().unwrap_or("null")
            );
        }
        for chunk in versions.chunks(DELETE_BATCH) {
            let identifiers = chunk
                .iter()
                .map(|(key, version)| ObjectIdentifier::builder().key(key).set_version_id(version.clone()).build())
                .collect::<Result<Vec<_>, _>>()?;
            let delete = Delete::builder().set_objects(Some(identifiers)).quiet(true).build()?;
            let answer = s3
                .delete_objects()
                .bucket(bucket)
                .delete(delete)
                .send()
                .await
                .aws(&s3)
                .with_context(|| format!("deleting object versions in {bucket}"))?;
            if !answer.errors().is_empty() {
                bail!(refused(bucket, answer.errors()));
            }
            deleted.extend(chunk.iter().cloned());
        }
    }
}

/// Names the objects DeleteObjects refused, with AWS's code and message for each, and the fix.
fn refused(bucket: &str, errors: &[aws_sdk_s3::types::Error]) -> String {
    let shown: Vec<String> = errors
        .iter()
        .take(ERRORS_SHOWN)
        .map(|error| {
            format!(
                "{} (version {}): {}: {}",
                error.key().unwrap_or("?"),
                error.version_id().unwrap_or("null"),
                error.code().unwrap_or("no code"),
                error.message().unwrap_or("no message")
            )
        })
        .collect();
    let more = errors.len().saturating_sub(ERRORS_SHOWN);
    let more = if more > 0 { format!("; and {more} more") } else { String::new() };
    // S3 refuses a version under Object Lock retention or a legal hold with AccessDenied
    // (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock-managing.html).
    format!(
        "S3 did not delete {} object versions in {bucket}: {}{more}. For AccessDenied: see whether Object Lock keeps them (`aws s3api get-object-retention --bucket {bucket} --key <key> --version-id <version>`, `aws s3api get-object-legal-hold ...`), else give the caller s3:DeleteObjectVersion in its policy and the bucket policy; then run destroy again",
        errors.len(),
        shown.join("; ")
    )
}

fn report_left_behind(ctx: &Ctx, config: &crate::config::Config, results: &[StepResult], emptied: bool) {
    ctx.printer.text("");
    ctx.printer.note(format!(
        "the CodeCommit repository {} is kept on purpose (it may hold work found nowhere else): `aws codecommit delete-repository --repository-name {}` removes it",
        config.source.repository, config.source.repository
    ));
    ctx.printer.note("the multi-Region key and its replicas are scheduled for deletion in 7 days (KMS's shortest window); `aws kms cancel-key-deletion` keeps them");
    // What a deleted stack's DeletionPolicy kept (`leftovers.rs`): expected, said once each.
    for result in results.iter().filter(|result| result.action == Action::Deleted) {
        if let Some(kept) = &result.detail {
            ctx.printer.note(kept);
        }
    }
    let kept = results.iter().filter(|result| result.action == Action::Skipped).count();
    if kept > 0 && !emptied {
        ctx.printer.note(format!(
            "{kept} stacks kept: run `cargo xtask destroy --force` to empty registries and buckets and delete them too"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_access_log_is_told_from_other_failures() {
        assert!(is_bucket_not_empty(
            "LogBucket: The bucket you tried to delete is not empty (Service: S3, Status Code: 409, Request ID: X)"
        ));
        assert!(is_bucket_not_empty("Bucket web-logs: BucketNotEmpty"));
        assert!(!is_bucket_not_empty("ArtifactBucket: Access Denied"));
    }
    use crate::aws::replay::{Replay, config, replay};

    #[test]
    fn a_failed_deletion_of_a_vpc_stack_on_a_dependency_carries_the_network_interfaces_fix() {
        let vpc = leftovers::Resource {
            logical_id: "Vpc".into(),
            resource_type: "AWS::EC2::VPC".into(),
            physical_id: "vpc-0bb2".into(),
            retained: false,
        };
        let failed = |cause: &str| -> anyhow::Error {
            StackFailed { stack: "web-network".into(), status: "DELETE_FAILED".into(), root_cause: cause.into() }.into()
        };
        let error = with_dependency_fix(
            failed("PublicSubnetA (AWS::EC2::Subnet) DELETE_FAILED: DependencyViolation"),
            std::slice::from_ref(&vpc),
            "eu-central-1",
        );
        let (status, cause) = StepResult::failure(&error, "DELETE_FAILED");
        assert_eq!(status, "DELETE_FAILED");
        assert!(cause.starts_with("PublicSubnetA (AWS::EC2::Subnet) DELETE_FAILED: DependencyViolation; network interfaces still use VPC vpc-0bb2"), "{cause}");
        let other = with_dependency_fix(failed("Vpc DELETE_FAILED: Access Denied"), &[vpc], "eu-central-1");
        assert_eq!(StepResult::failure(&other, "DELETE_FAILED").1, "Vpc DELETE_FAILED: Access Denied");
    }

    /// ListObjectVersions' answer with one version and one delete marker, in the shape of AWS's
    /// documented example (https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectVersions.html).
    const LISTED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListVersionsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>web-artifacts</Name>
  <Prefix></Prefix>
  <KeyMarker></KeyMarker>
  <VersionIdMarker></VersionIdMarker>
  <MaxKeys>1000</MaxKeys>
  <IsTruncated>false</IsTruncated>
  <Version>
    <Key>releases/r1/web.zip</Key>
    <VersionId>3/L4kqtJl40Nr8X8gdRQBpUMLUo</VersionId>
    <IsLatest>true</IsLatest>
    <LastModified>2009-10-12T17:50:30.000Z</LastModified>
    <ETag>"fba9dede5f27731c9771645a39863328"</ETag>
    <Size>434234</Size>
    <StorageClass>STANDARD</StorageClass>
  </Version>
  <DeleteMarker>
    <Key>targets.json</Key>
    <VersionId>03jpff543dhffds434rfdsFDN943fdsFkdmqnh892</VersionId>
    <IsLatest>true</IsLatest>
    <LastModified>2009-10-15T17:50:30.000Z</LastModified>
  </DeleteMarker>
</ListVersionsResult>"#;

    const LISTED_NOTHING: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListVersionsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>web-artifacts</Name>
  <MaxKeys>1000</MaxKeys>
  <IsTruncated>false</IsTruncated>
</ListVersionsResult>"#;

    /// DeleteObjects' answer when S3 refused one version: HTTP 200 with an `<Error>` element, as in
    /// AWS's documented example "Multi-object delete resulting in mixed success/error response"
    /// (https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjects.html), with the message
    /// S3 gives for a version under Object Lock.
    const REFUSED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Error>
    <Key>releases/r1/web.zip</Key>
    <VersionId>3/L4kqtJl40Nr8X8gdRQBpUMLUo</VersionId>
    <Code>AccessDenied</Code>
    <Message>Access Denied because object protected by object lock.</Message>
  </Error>
</DeleteResult>"#;

    /// DeleteObjects' answer in quiet mode when every object went: no element at all.
    const ALL_DELETED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"></DeleteResult>"#;

    /// An S3 client whose answers are `answers`, one per request, in order (`aws/replay.rs`).
    fn s3_answering(answers: &[&'static str]) -> (aws_sdk_s3::Client, Replay) {
        let answers: Vec<(u16, &str, &str)> = answers.iter().map(|body| (200, "application/xml", *body)).collect();
        let http = replay(&answers);
        (aws_sdk_s3::Client::new(&config(&http)), http)
    }

    #[tokio::test]
    async fn a_refused_deletion_stops_with_the_key_version_and_aws_code() {
        let (s3, replay) = s3_answering(&[LISTED, REFUSED]);
        let error = delete_every_version(&s3, "web-artifacts", Versions::All).await.unwrap_err();
        let text = format!("{error:#}");
        assert!(text.contains("S3 did not delete 1 object versions in web-artifacts"), "{text}");
        assert!(
            text.contains("releases/r1/web.zip (version 3/L4kqtJl40Nr8X8gdRQBpUMLUo): AccessDenied: Access Denied because object protected by object lock."),
            "{text}"
        );
        assert!(text.contains("get-object-retention"), "{text}");
        // One listing, one DeleteObjects, and no retry of the same versions.
        assert_eq!(replay.bodies().len(), 2);
    }

    #[tokio::test]
    async fn a_version_listed_again_after_its_deletion_stops_the_loop() {
        let (s3, replay) = s3_answering(&[LISTED, ALL_DELETED, LISTED]);
        let error = delete_every_version(&s3, "web-artifacts", Versions::All).await.unwrap_err();
        let text = format!("{error:#}");
        assert!(text.contains("still lists releases/r1/web.zip (version 3/L4kqtJl40Nr8X8gdRQBpUMLUo)"), "{text}");
        assert_eq!(replay.bodies().len(), 3);
    }

    #[tokio::test]
    async fn a_bucket_is_empty_when_the_listing_is() {
        let (s3, replay) = s3_answering(&[LISTED, ALL_DELETED, LISTED_NOTHING]);
        delete_every_version(&s3, "web-artifacts", Versions::All).await.unwrap();
        assert_eq!(replay.bodies().len(), 3);
    }

    #[test]
    fn a_long_list_of_refusals_names_the_first_few() {
        let errors: Vec<aws_sdk_s3::types::Error> = (0..5)
            .map(|n| {
                aws_sdk_s3::types::Error::builder()
                    .key(format!("k{n}"))
                    .version_id(format!("v{n}"))
                    .code("AccessDenied")
                    .message("Access Denied")
                    .build()
            })
            .collect();
        let text = refused("b", &errors);
        assert!(
            text.starts_with(
                "S3 did not delete 5 object versions in b: k0 (version v0): AccessDenied: Access Denied; k1"
            ),
            "{text}"
        );
        assert!(text.contains("k2 (version v2)") && !text.contains("k3") && text.contains("and 2 more"), "{text}");
    }
}
