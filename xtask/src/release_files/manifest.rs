//! The release manifest and the per-workload release history, and where both live in the
//! regional artifact buckets.
//!
//! A manifest lists every artifact of one release (workload, account, region, bucket, key,
//! SHA-256, size, the KMS key it is encrypted under, the image it deploys). Its id is derived
//! from that content, so packaging the same inputs again gives the same manifest, under the same
//! key, and uploads nothing. A copy of it sits in every regional bucket, beside the artifacts, so
//! any region can verify or roll back on its own.
//!
//! A history per workload (`releases/<workload>/history.json`, in that workload's regional
//! bucket) lists the releases packaged for it, oldest first, each marked when a rollback undid
//! it: the current release is the last one not rolled back, the previous one is the last one
//! before it that is not rolled back either. This is the one mutable object of a release; the
//! bucket is versioned, so its earlier states stay readable.
//!
//! Keys in a bucket:
//! - `releases/<workload>/<sha256>.zip`: an artifact, content-addressed;
//! - `releases/manifests/<id>.json`: a manifest;
//! - `releases/<workload>/history.json`: a workload's history.

use anyhow::{Context, Result, bail};
use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use serde::{Deserialize, Serialize};

use crate::archive::sha256_hex;
use crate::artifacts::encrypted_put;
use crate::aws::AwsResultExt;

/// The manifest format this xtask writes and reads.
pub const SCHEMA: u32 = 1;

/// One release: every artifact it consists of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub schema: u32,
    /// 16 hex digits of the SHA-256 over everything below: equal content, equal id.
    pub id: String,
    pub app: String,
    /// The image's tag (the commit, plus a content hash for a dirty tree).
    pub version: String,
    /// `sha256:...`, the same in every registry.
    pub image_digest: String,
    /// One per workload, in config order.
    pub artifacts: Vec<Artifact>,
}

/// One workload's artifact: a zip of its taskdef.json, appspec.yaml and imageDetail.json.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    pub workload: String,
    /// The workload's account and region (the artifact's bucket is the tools account's bucket of
    /// that region).
    pub account: String,
    pub region: String,
    pub bucket: String,
    pub key: String,
    /// Of the zip, lowercase hex.
    pub sha256: String,
    pub bytes: u64,
    /// The multi-Region key's id (`mrk-...` on AWS) and its ARN in the artifact's region.
    pub kms_key_id: String,
    pub kms_key_arn: String,
    /// The image the taskdef pins: `<registry>/<repository>@sha256:...`.
    pub image: String,
    pub image_digest: String,
}

/// The content a manifest's id is computed from (everything but the id).
#[derive(Serialize)]
struct Identity<'a> {
    schema: u32,
    app: &'a str,
    version: &'a str,
    image_digest: &'a str,
    artifacts: &'a [Artifact],
}

impl Manifest {
    pub fn new(app: &str, version: &str, image_digest: &str, artifacts: Vec<Artifact>) -> Manifest {
        let id = compute_id(app, version, image_digest, &artifacts);
        Manifest {
            schema: SCHEMA,
            id,
            app: app.to_string(),
            version: version.to_string(),
            image_digest: image_digest.to_string(),
            artifacts,
        }
    }

    /// Pretty JSON with a final newline: the bytes stored everywhere.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut text = serde_json::to_string_pretty(self).expect("a manifest serializes");
        text.push('\n');
        text.into_bytes()
    }

    /// Reads a manifest and checks its schema and its id; `origin` names it in errors.
    pub fn parse(bytes: &[u8], origin: &str) -> Result<Manifest> {
        let manifest: Manifest = serde_json::from_slice(bytes)
            .with_context(|| format!("{origin} is not a release manifest of this xtask"))?;
        if manifest.schema != SCHEMA {
            bail!(
                "{origin} has manifest schema {}, this xtask reads schema {SCHEMA}; use a matching xtask",
                manifest.schema
            );
        }
        let expected = compute_id(&manifest.app, &manifest.version, &manifest.image_digest, &manifest.artifacts);
        if manifest.id != expected {
            bail!(
                "{origin} says it is release {} but its content hashes to {expected}: it was edited or damaged",
                manifest.id
            );
        }
        Ok(manifest)
    }

    pub fn artifact(&self, workload: &str) -> Option<&Artifact> {
        self.artifacts.iter().find(|artifact| artifact.workload == workload)
    }
}

fn compute_id(app: &str, version: &str, image_digest: &str, artifacts: &[Artifact]) -> String {
    let identity = Identity { schema: SCHEMA, app, version, image_digest, artifacts };
    let bytes = serde_json::to_vec(&identity).expect("a manifest serializes");
    sha256_hex(&bytes)[..16].to_string()
}

/// `releases/<workload>/<sha256>.zip`.
pub fn artifact_key(workload: &str, sha256: &str) -> String {
    format!("releases/{workload}/{sha256}.zip")
}

/// `releases/manifests/<id>.json`.
pub fn manifest_key(id: &str) -> String {
    format!("releases/manifests/{id}.json")
}

/// `releases/<workload>/history.json`.
pub fn history_key(workload: &str) -> String {
    format!("releases/{workload}/history.json")
}

/// The releases of one workload, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct History {
    pub workload: String,
    pub releases: Vec<HistoryEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryEntry {
    /// The manifest's id.
    pub id: String,
    pub version: String,
    /// Set when a rollback replaced this release with the one before it.
    #[serde(default)]
    pub rolled_back: bool,
}

impl History {
    pub fn new(workload: &str) -> History {
        History { workload: workload.to_string(), releases: Vec::new() }
    }

    fn current_index(&self) -> Option<usize> {
        self.releases.iter().rposition(|entry| !entry.rolled_back)
    }

    /// The release deployed last and not rolled back.
    pub fn current(&self) -> Option<&HistoryEntry> {
        self.current_index().map(|index| &self.releases[index])
    }

    /// The release a rollback goes back to: the last one before the current, not rolled back,
    /// and not the current release itself packaged again.
    pub fn previous(&self) -> Option<&HistoryEntry> {
        let current = self.current_index()?;
        let id = &self.releases[current].id;
        self.releases[..current].iter().rev().find(|entry| !entry.rolled_back && entry.id != *id)
    }

    /// Records a new release; returns false when it already is the current one (nothing changes).
    pub fn record(&mut self, id: &str, version: &str) -> bool {
        if self.current().is_some_and(|entry| entry.id == id) {
            return false;
        }
        self.releases.push(HistoryEntry { id: id.to_string(), version: version.to_string(), rolled_back: false });
        true
    }

    /// Marks the current release as rolled back, so the previous one becomes current; returns
    /// the entry it marked.
    pub fn roll_back(&mut self) -> Option<HistoryEntry> {
        let current = self.current_index()?;
        self.releases[current].rolled_back = true;
        Some(self.releases[current].clone())
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut text = serde_json::to_string_pretty(self).expect("a history serializes");
        text.push('\n');
        text.into_bytes()
    }
}

/// The bytes at `bucket/key`, or `None` when there is no such object.
pub async fn get_object(s3: &Client, bucket: &str, key: &str) -> Result<Option<Vec<u8>>> {
    match s3.get_object().bucket(bucket).key(key).send().await {
        Ok(reply) => {
            let body = reply.body.collect().await.with_context(|| format!("reading s3://{bucket}/{key}"))?;
            Ok(Some(body.into_bytes().to_vec()))
        }
        Err(error) if error.as_service_error().is_some_and(|service| service.is_no_such_key()) => Ok(None),
        Err(error) => Err(error).aws(&s3).with_context(|| format!("downloading s3://{bucket}/{key}")),
    }
}

/// Writes a small mutable object (a history) under SSE-KMS with `kms_key_arn` and a SHA-256
/// checksum, as the bucket policy demands of every upload.
pub async fn put_object(s3: &Client, bucket: &str, key: &str, body: Vec<u8>, kms_key_arn: &str) -> Result<()> {
    encrypted_put(s3, bucket, key, body, kms_key_arn)
        .content_type("application/json")
        .send()
        .await
        .aws(s3)
        .with_context(|| format!("writing s3://{bucket}/{key} encrypted under {kms_key_arn}"))?;
    Ok(())
}

/// Creates `bucket/key` under SSE-KMS with a SHA-256 checksum only if no object is there
/// (`If-None-Match: *`); returns false when one was.
pub async fn put_new(s3: &Client, bucket: &str, key: &str, body: Vec<u8>, kms_key_arn: &str) -> Result<bool> {
    let sent = encrypted_put(s3, bucket, key, body, kms_key_arn)
        .if_none_match("*")
        .content_type("application/json")
        .send()
        .await;
    match sent {
        Ok(_) => Ok(true),
        Err(error) if error.code() == Some("PreconditionFailed") => Ok(false),
        Err(error) => {
            Err(error).aws(s3).with_context(|| format!("writing s3://{bucket}/{key} encrypted under {kms_key_arn}"))
        }
    }
}

/// The manifest `id` from `bucket`.
pub async fn load_manifest(s3: &Client, bucket: &str, id: &str) -> Result<Manifest> {
    let key = manifest_key(id);
    let Some(bytes) = get_object(s3, bucket, &key).await? else {
        bail!("release {id} has no manifest at s3://{bucket}/{key}; `cargo xtask package` writes one per release");
    };
    Manifest::parse(&bytes, &format!("s3://{bucket}/{key}"))
}

/// The history of `workload` from `bucket` (empty when none was written yet).
pub async fn load_history(s3: &Client, bucket: &str, workload: &str) -> Result<History> {
    let key = history_key(workload);
    match get_object(s3, bucket, &key).await? {
        None => Ok(History::new(workload)),
        Some(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("s3://{bucket}/{key} is not a release history of this xtask")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artifact(workload: &str, sha: &str) -> Artifact {
        Artifact {
            workload: workload.into(),
            account: "222222222222".into(),
            region: "ap-south-1".into(),
            bucket: "web-artifacts-111111111111-ap-south-1".into(),
            key: artifact_key(workload, sha),
            sha256: sha.into(),
            bytes: 10,
            kms_key_id: "mrk-1".into(),
            kms_key_arn: "arn:aws:kms:ap-south-1:111111111111:key/mrk-1".into(),
            image: "r/web@sha256:00".into(),
            image_digest: "sha256:00".into(),
        }
    }

    #[test]
    fn ids_follow_the_content() {
        let first = Manifest::new("web", "abc", "sha256:00", vec![artifact("india", "aa")]);
        let same = Manifest::new("web", "abc", "sha256:00", vec![artifact("india", "aa")]);
        let other = Manifest::new("web", "abc", "sha256:00", vec![artifact("india", "ab")]);
        assert_eq!(first.id, same.id);
        assert_ne!(first.id, other.id);
        assert_eq!(first.id.len(), 16);
        assert_eq!(Manifest::parse(&first.to_bytes(), "m").unwrap(), first);
    }

    #[test]
    fn edited_manifests_are_refused() {
        let manifest = Manifest::new("web", "abc", "sha256:00", vec![artifact("india", "aa")]);
        let text = String::from_utf8(manifest.to_bytes()).unwrap();
        let check = |text: String, expect: &str| {
            let error = format!("{:#}", Manifest::parse(text.as_bytes(), "m.json").unwrap_err());
            assert!(error.contains(expect), "`{expect}` not in: {error}");
        };
        check(text.replace("\"aa\"", "\"ab\""), "was edited or damaged");
        check(text.replace("\"schema\": 1", "\"schema\": 2"), "schema 2");
        check(text.replace("\"version\"", "\"versoin\""), "not a release manifest");
        check("{".into(), "not a release manifest");
    }

    #[test]
    fn history_finds_current_and_previous() {
        let history = |entries: &[(&str, bool)]| History {
            workload: "india".into(),
            releases: entries
                .iter()
                .map(|(id, rolled_back)| HistoryEntry {
                    id: id.to_string(),
                    version: "v".into(),
                    rolled_back: *rolled_back,
                })
                .collect(),
        };
        let check = |entries: &[(&str, bool)], current: Option<&str>, previous: Option<&str>| {
            let history = history(entries);
            assert_eq!(history.current().map(|entry| entry.id.as_str()), current, "{entries:?}");
            assert_eq!(history.previous().map(|entry| entry.id.as_str()), previous, "{entries:?}");
        };
        check(&[], None, None);
        check(&[("a", false)], Some("a"), None);
        check(&[("a", false), ("b", false)], Some("b"), Some("a"));
        check(&[("a", false), ("b", false), ("c", true)], Some("b"), Some("a"));
        check(&[("a", false), ("b", true), ("c", false)], Some("c"), Some("a"));
        check(&[("a", false), ("b", false), ("a", false)], Some("a"), Some("b"));
        check(&[("a", false), ("a", false)], Some("a"), None);
        check(&[("a", true), ("b", true)], None, None);
    }

    #[test]
    fn record_and_roll_back() {
        let mut history = History::new("india");
        assert!(history.record("a", "1"));
        assert!(!history.record("a", "1"), "the current release again changes nothing");
        assert!(history.record("b", "2"));
        assert_eq!(history.roll_back().unwrap().id, "b");
        assert_eq!(history.current().unwrap().id, "a");
        assert_eq!(history.previous(), None);
        assert!(history.record("c", "3"));
        assert_eq!(history.previous().unwrap().id, "a");
    }
}
