//! What a release must know of the deployed stacks, published by the deploy where the pipeline's
//! build may read it.
//!
//! A task definition names the workload's execution role, task role and log group (outputs of its
//! `service` stack), and every artifact is encrypted under the multi-Region key, whose id the `key`
//! stack outputs. The build role may not read CloudFormation, let alone assume a role in a
//! workload account (cfn/tools/build.yaml), so the deploy, which runs as the operator and has just
//! read those outputs, writes them as one document, `releases/targets.json`, into the artifact
//! bucket of the tools region, SSE-KMS under the key like every artifact. `package` reads it from
//! there, whoever runs it: the operator, the plan's first release, or the pipeline's build with
//! nothing but `s3:GetObject` and `kms:Decrypt`, which its role already holds for the pipeline's
//! own artifacts. ARCHITECTURE.md gives the reasons for this choice over the alternatives.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::manifest;
use super::render::ServiceFacts;
use crate::aws::Aws;
use crate::config::{Config, changes, key_arn};

/// The document's key in the tools region's artifact bucket.
pub const TARGETS_KEY: &str = "releases/targets.json";

/// What the deployed stacks say that the artifacts need.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Targets {
    /// The key stack's `KeyId`: the multi-Region key's id, the same in every region.
    pub key_id: String,
    /// Per workload name.
    pub services: BTreeMap<String, ServiceFacts>,
    /// The frozen fields of deploy.toml as the stacks were deployed with them
    /// (`[service] container_port` -> `8080`; `config/changes.rs`): the deploy writes them only
    /// once it has found them equal to every deployed stack's, so a release can refuse a config
    /// that changed one since. Absent in a document of an older xtask.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub frozen: BTreeMap<String, String>,
}

/// Whether [`publish`] wrote the document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Published {
    Written,
    Unchanged,
}

impl Targets {
    /// The key's ARN in `region` (the primary's in the tools region, a replica's elsewhere).
    pub fn key_arn(&self, config: &Config, region: &str) -> String {
        key_arn(&config.tools.account, region, &self.key_id)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("targets serialize");
        bytes.push(b'\n');
        bytes
    }

    /// Every workload of `config` is described; a workload added since the last deploy is not.
    pub fn check(&self, config: &Config, source: &str) -> Result<()> {
        let missing: Vec<&str> = config
            .workloads
            .iter()
            .map(|workload| workload.name.as_str())
            .filter(|name| !self.services.contains_key(*name))
            .collect();
        if !missing.is_empty() {
            bail!(
                "{source} describes no service for workload {}: the config gained it since the last deploy; run `cargo xtask deploy`",
                missing.join(", ")
            );
        }
        // A release renders the task definition and the AppSpec from the config: with another
        // container port than the stacks serve, its tasks would listen where no target group
        // and no security group rule leads.
        let current = changes::frozen_values(config);
        let changed: Vec<String> = self
            .frozen
            .iter()
            .filter_map(|(field, deployed)| {
                let requested = current.get(field)?;
                (requested != deployed).then(|| format!("`{field}` is {requested} in deploy.toml, deployed {deployed}"))
            })
            .collect();
        if !changed.is_empty() {
            bail!(
                "{}: the stacks cannot serve a release with it (the field is frozen once deployed); set it back, \
                 and see `cargo xtask plan` for the fix",
                changed.join("; ")
            );
        }
        Ok(())
    }
}

/// Writes `targets` to the tools region's artifact bucket unless the same bytes are there.
pub async fn publish(aws: &Aws, config: &Config, targets: &Targets) -> Result<Published> {
    let (account, region) = (&config.tools.account, &config.tools.region);
    let s3 = aws.s3(account, region).await?;
    let bucket = config.bucket_name(region);
    let bytes = targets.to_bytes();
    if manifest::get_object(&s3, &bucket, TARGETS_KEY).await?.is_some_and(|there| there == bytes) {
        return Ok(Published::Unchanged);
    }
    manifest::put_object(&s3, &bucket, TARGETS_KEY, bytes, &targets.key_arn(config, region)).await?;
    Ok(Published::Written)
}

/// Reads the document the last deploy published.
pub async fn read(aws: &Aws, config: &Config) -> Result<Targets> {
    let (account, region) = (&config.tools.account, &config.tools.region);
    let s3 = aws.s3(account, region).await?;
    let bucket = config.bucket_name(region);
    let source = format!("s3://{bucket}/{TARGETS_KEY}");
    let Some(bytes) = manifest::get_object(&s3, &bucket, TARGETS_KEY).await? else {
        bail!(
            "{source} is missing: the deploy publishes it once the key and service stacks exist; run `cargo xtask deploy`"
        );
    };
    let targets: Targets = serde_json::from_slice(&bytes)
        .with_context(|| format!("{source} is not a targets document of this xtask; run `cargo xtask deploy`"))?;
    targets.check(config, &source)?;
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workload_the_document_does_not_know_is_named() {
        let text = "app = \"web\"\n[tools]\naccount = \"111111111111\"\nregion = \"ap-south-1\"\n\
                    [[workloads]]\nname = \"india\"\naccount = \"222222222222\"\nregion = \"ap-south-1\"\n\
                    [[workloads]]\nname = \"europe\"\naccount = \"333333333333\"\nregion = \"eu-central-1\"\n";
        let config = Config::parse(std::path::Path::new("deploy.toml"), text).unwrap();
        let facts = ServiceFacts {
            execution_role_arn: "arn:aws:iam::222222222222:role/x".into(),
            task_role_arn: "arn:aws:iam::222222222222:role/y".into(),
            log_group: "/ecs/web".into(),
        };
        let first = config.workloads[0].name.clone();
        let targets =
            Targets { key_id: "mrk-1".into(), services: BTreeMap::from([(first, facts)]), frozen: BTreeMap::new() };
        let error = targets.check(&config, "s3://b/k").unwrap_err().to_string();
        assert!(error.contains(&config.workloads[1].name) && error.contains("cargo xtask deploy"), "{error}");
        let parsed: Targets = serde_json::from_slice(&targets.to_bytes()).unwrap();
        assert_eq!(parsed, targets);
    }

    /// A frozen field changed since the deploy that published the document stops a release; an
    /// older document without the record is read as it was.
    #[test]
    fn a_changed_frozen_field_stops_a_release() {
        let text = "app = \"web\"\n[tools]\naccount = \"111111111111\"\nregion = \"ap-south-1\"\n\
                    [[workloads]]\nname = \"india\"\naccount = \"222222222222\"\nregion = \"ap-south-1\"\n";
        let config = Config::parse(std::path::Path::new("deploy.toml"), text).unwrap();
        let facts = ServiceFacts {
            execution_role_arn: "arn:aws:iam::222222222222:role/x".into(),
            task_role_arn: "arn:aws:iam::222222222222:role/y".into(),
            log_group: "/ecs/web".into(),
        };
        let services = BTreeMap::from([("india".to_string(), facts)]);
        let mut targets = Targets { key_id: "mrk-1".into(), services, frozen: changes::frozen_values(&config) };
        targets.check(&config, "s3://b/k").unwrap();
        let older = String::from_utf8(targets.to_bytes()).unwrap().replace("\"frozen\"", "\"ignored\"");
        let older: Targets = serde_json::from_str(&older).unwrap();
        assert!(older.frozen.is_empty());
        older.check(&config, "s3://b/k").unwrap();
        targets.frozen.insert("[service] container_port".into(), "9090".into());
        let error = targets.check(&config, "s3://b/k").unwrap_err().to_string();
        assert!(error.contains("`[service] container_port` is 8080 in deploy.toml, deployed 9090"), "{error}");
        assert!(error.contains("cargo xtask plan"), "{error}");
    }
}
