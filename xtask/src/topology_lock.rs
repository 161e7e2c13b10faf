//! One operator at a time: `deploy`, `release`, `rollback` and `destroy` hold a lock on the
//! topology while they change it, so two operators (or an operator and a script) cannot interleave
//! stack updates, releases, rollbacks and deletions of the same app.
//!
//! The lock is an object, `locks/topology.json`, in the tools region's artifact bucket, written
//! with a conditional put (`If-None-Match: *`): S3 accepts it only when the key has no current
//! object, atomically, so of two operators exactly one gets it
//! (https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html; in the versioned
//! bucket the header looks at the current version only, so a released lock, a delete marker, is
//! free again). It says who holds it (the caller's ARN), from which host and process, for which
//! command and since when. It is released by a conditional delete on its own ETag
//! (https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-deletes.html), so a lock
//! broken and taken by someone else is never released by the first holder. This is how
//! Terraform's S3 backend locks state since 1.10 (`use_lockfile`).
//!
//! The bucket is made by the first deploy, so that deploy runs without a lock and says so;
//! CloudFormation still refuses a second creation of the same stack (`AlreadyExistsException`).
//! A holder that dies without releasing (a killed process, a lost machine) leaves a stale lock:
//! `cargo xtask lock status` shows it, `cargo xtask lock break` removes it.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use serde::{Deserialize, Serialize};

use crate::artifacts::encrypted_put;
use crate::aws::{Aws, AwsError, AwsResultExt};
use crate::config::{Config, key_arn};
use crate::engine::stack::Stacks;
use crate::output::{Exit, Printer};

/// The lock's key in the tools region's artifact bucket.
pub const LOCK_KEY: &str = "locks/topology.json";

/// How often a waiting operator looks again.
const POLL: Duration = Duration::from_secs(5);

/// The lock's flag, on every command that takes it.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct LockArgs {
    /// Wait up to this many seconds for another operator's deploy, release, rollback or destroy of
    /// this topology to finish; without it, a held lock is refused at once.
    #[arg(long = "lock-wait", value_name = "SECONDS", default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=7200))]
    pub seconds: u64,
}

impl LockArgs {
    pub fn wait(&self) -> Duration {
        Duration::from_secs(self.seconds)
    }
}

/// Who holds the lock: the object's body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The caller's ARN in the tools account.
    pub who: String,
    pub host: String,
    pub pid: u32,
    /// `deploy`, `release`, `rollback`, `destroy`.
    pub command: String,
    /// RFC 3339, UTC.
    pub since: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({} on {}, pid {}) since {}", self.who, self.command, self.host, self.pid, self.since)
    }
}

/// Where the lock lives for a config: the bucket, and the key its uploads are encrypted under.
pub struct Place {
    s3: Client,
    pub bucket: String,
    kms_key_arn: String,
}

/// A lock this process holds.
pub struct Lock {
    place: Place,
    etag: String,
    pub holder: Holder,
}

/// The lock's place, or `None` when the artifact bucket (or the key that encrypts it) is not
/// deployed yet: the first deploy.
pub async fn place(aws: &Aws, config: &Config) -> Result<Option<Place>> {
    let (account, region) = (&config.tools.account, &config.tools.region);
    let stacks = Stacks::new(aws.cloudformation(account, region).await?, Duration::from_secs(60));
    let Some(key_stack) = stacks.describe(&config.stack_name("key")).await? else {
        return Ok(None);
    };
    let Some(key_id) = key_stack.outputs.get("KeyId") else {
        return Ok(None);
    };
    let s3 = aws.s3(account, region).await?;
    let bucket = config.bucket_name(region);
    match s3.head_bucket().bucket(&bucket).send().await {
        Ok(_) => {}
        Err(error) if error.as_service_error().is_some_and(|service| service.is_not_found()) => return Ok(None),
        Err(error) => return Err(error).aws(&s3).with_context(|| format!("looking for the artifact bucket {bucket}")),
    }
    Ok(Some(Place { s3, bucket, kms_key_arn: key_arn(account, region, key_id) }))
}

/// Takes the lock for `command`, waiting up to `wait` for a holder to release it. `None` when there
/// is no bucket to hold it yet (said on `printer`).
pub async fn acquire(
    aws: &Aws,
    config: &Config,
    command: &str,
    wait: Duration,
    printer: &Printer,
) -> Result<Option<Lock>> {
    let Some(place) = place(aws, config).await? else {
        printer.note(format!(
            "no topology lock: the artifact bucket {} does not exist yet (first deploy); from now on deploy, release and destroy take one",
            config.bucket_name(&config.tools.region)
        ));
        return Ok(None);
    };
    let sts = aws.sts(&config.tools.account, &config.tools.region).await?;
    let who = sts.get_caller_identity().send().await.aws(&sts)?.arn().unwrap_or("unknown").to_string();
    let holder = Holder {
        who,
        host: host_name(),
        pid: std::process::id(),
        command: command.to_string(),
        since: crate::project::now_utc(),
    };
    let body = serde_json::to_vec_pretty(&holder).context("serializing the lock")?;
    let deadline = Instant::now() + wait;
    let mut said = false;
    loop {
        let put = encrypted_put(&place.s3, &place.bucket, LOCK_KEY, body.clone(), &place.kms_key_arn)
            .if_none_match("*")
            .content_type("application/json")
            .send()
            .await;
        match put {
            Ok(reply) => {
                let etag = reply.e_tag().unwrap_or_default().to_string();
                printer.status("Locked", format!("the topology (s3://{}/{LOCK_KEY})", place.bucket));
                return Ok(Some(Lock { place, etag, holder }));
            }
            // Taken (possibly by this very put: the SDK retries a put whose answer was lost, and
            // the retry then finds our own lock, recognized below); `ConditionalRequestConflict`
            // (409) is a concurrent put that S3 has not decided yet: look again.
            Err(error) if matches!(error.code(), Some("PreconditionFailed" | "ConditionalRequestConflict")) => {}
            Err(error) => {
                return Err(error)
                    .aws(&place.s3)
                    .with_context(|| format!("taking the topology lock s3://{}/{LOCK_KEY}", place.bucket));
            }
        }
        let current = read(&place).await?;
        // Released between the put and the read: try again, but never in a tight loop (a store
        // that refused the put yet shows no lock would otherwise spin here).
        let Some((current, current_etag)) = current else {
            if Instant::now() >= deadline + POLL {
                bail!(
                    "S3 refused the topology lock s3://{}/{LOCK_KEY} as taken, yet holds no lock there; `cargo xtask lock status` shows it, `cargo xtask lock break` clears it",
                    place.bucket
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        if current == holder {
            printer.status("Locked", format!("the topology (s3://{}/{LOCK_KEY})", place.bucket));
            return Ok(Some(Lock { place, etag: current_etag, holder }));
        }
        if Instant::now() >= deadline {
            bail!(Held { holder: current, bucket: place.bucket.clone(), waited: wait });
        }
        if !said {
            printer.status("Waiting", format!("for the topology lock, held by {current}"));
            said = true;
        }
        tokio::time::sleep(POLL.min(deadline.saturating_duration_since(Instant::now()))).await;
    }
}

/// The lock is held by someone else.
#[derive(Debug, thiserror::Error)]
#[error(
    "the topology is locked by {holder}{}: wait for it to finish (or pass --lock-wait SECONDS); if that run is gone, \
     `cargo xtask lock break` removes the lock (s3://{bucket}/{LOCK_KEY})",
    if waited.is_zero() { String::new() } else { format!(" (waited {} s)", waited.as_secs()) }
)]
pub struct Held {
    pub holder: Holder,
    pub bucket: String,
    pub waited: Duration,
}

/// The current holder and the object's ETag, if the lock is taken.
pub async fn read(place: &Place) -> Result<Option<(Holder, String)>> {
    match place.s3.get_object().bucket(&place.bucket).key(LOCK_KEY).send().await {
        Ok(reply) => {
            let etag = reply.e_tag().unwrap_or_default().to_string();
            let bytes = reply.body.collect().await.context("reading the topology lock")?.into_bytes();
            let holder = serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "s3://{}/{LOCK_KEY} is not a lock this xtask wrote; `cargo xtask lock break` removes it",
                    place.bucket
                )
            })?;
            Ok(Some((holder, etag)))
        }
        // No lock, or no bucket any more (a destroy deleted it, and the lock with it).
        Err(error) if error.as_service_error().is_some_and(|service| service.is_no_such_key()) => Ok(None),
        Err(error) if error.code() == Some("NoSuchBucket") => Ok(None),
        Err(error) => Err(AwsError::from_call(error, &place.s3).into()),
    }
}

async fn bucket_exists(place: &Place) -> Result<bool> {
    match place.s3.head_bucket().bucket(&place.bucket).send().await {
        Ok(_) => Ok(true),
        Err(error) if error.as_service_error().is_some_and(|service| service.is_not_found()) => Ok(false),
        Err(error) => Err(AwsError::from_call(error, &place.s3).into()),
    }
}

/// Removes the lock whoever holds it; returns the holder it removed.
pub async fn break_lock(place: &Place) -> Result<Option<Holder>> {
    let Some((holder, etag)) = read(place).await? else { return Ok(None) };
    delete(place, &etag).await?;
    Ok(Some(holder))
}

async fn delete(place: &Place, etag: &str) -> Result<()> {
    place
        .s3
        .delete_object()
        .bucket(&place.bucket)
        .key(LOCK_KEY)
        .if_match(etag)
        .send()
        .await
        .aws(&place.s3)
        .with_context(|| format!("removing the topology lock s3://{}/{LOCK_KEY}", place.bucket))?;
    Ok(())
}

impl Lock {
    /// Gives the lock back, if it is still ours (its ETag unchanged); a lock broken and taken by
    /// someone else since is left alone, and said.
    pub async fn release(self, printer: &Printer) -> Result<()> {
        match read(&self.place).await? {
            Some((_, etag)) if etag == self.etag => {
                delete(&self.place, &self.etag).await?;
                printer.status("Unlocked", "the topology");
            }
            Some((other, _)) => printer.warn(format!("the topology lock was broken and is now held by {other}")),
            None if !bucket_exists(&self.place).await? => printer
                .status("Unlocked", format!("the topology (the lock went with the bucket {})", self.place.bucket)),
            None => printer.warn("the topology lock was broken while this command ran"),
        }
        Ok(())
    }
}

/// Runs `work` holding `lock` (if any), and releases it when `work` ends or fails.
///
/// A first Ctrl-C does not drop the work: stack operations and deployments already sent to AWS go
/// on without us, and a lock given back then would let a second operator in while they run. So
/// the run goes on to its end and the lock is released with nothing in flight; a second Ctrl-C
/// exits at once (130, as a shell does for SIGINT) and leaves the lock, saying how to remove it.
pub async fn hold<T>(lock: Option<Lock>, printer: &Printer, work: impl Future<Output = Result<T>>) -> Result<T> {
    let Some(lock) = lock else { return work.await };
    let mut work = std::pin::pin!(work);
    let result = tokio::select! {
        result = &mut work => result,
        _ = tokio::signal::ctrl_c() => {
            printer.warn(
                "Ctrl-C: what was sent to AWS goes on, so this run finishes it and then releases the topology lock; \
                 Ctrl-C again exits now and leaves the lock",
            );
            tokio::select! {
                result = &mut work => result,
                _ = tokio::signal::ctrl_c() => {
                    printer.warn(format!(
                        "left the topology lock held by {}: once nothing of this run is in flight \
                         (`cargo xtask status`), `cargo xtask lock break` removes it",
                        lock.holder
                    ));
                    return Err(Exit(130).into());
                }
            }
        }
    };
    // The lock is released whatever the outcome; a failure to release is reported after the
    // work's own error, which matters more.
    if let Err(error) = lock.release(printer).await {
        printer.warn(format!(
            "could not release the topology lock: {}; `cargo xtask lock break` removes it",
            crate::aws::error::one_line(&error)
        ));
    }
    result
}

fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown-host".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_says_who_since_when_and_the_way_out() {
        let holder = Holder {
            who: "arn:aws:sts::111111111111:assumed-role/Admin/alice".into(),
            host: "laptop".into(),
            pid: 42,
            command: "deploy".into(),
            since: "2026-12-03T15:00:00Z".into(),
        };
        let text = Held { holder, bucket: "web-artifacts-x".into(), waited: Duration::ZERO }.to_string();
        assert_eq!(
            text,
            "the topology is locked by arn:aws:sts::111111111111:assumed-role/Admin/alice (deploy on laptop, pid 42) \
             since 2026-12-03T15:00:00Z: wait for it to finish (or pass --lock-wait SECONDS); if that run is gone, \
             `cargo xtask lock break` removes the lock (s3://web-artifacts-x/locks/topology.json)"
        );
    }
}
