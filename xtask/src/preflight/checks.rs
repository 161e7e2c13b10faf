//! The live checks only the real accounts can answer, each read-only:
//! - a replica of the multi-Region key in every region of the config, with the primary's `mrk-`
//!   id, multi-Region and enabled (KMS DescribeKey);
//! - every bucket policy and key policy of the topology in place, and the same, statement by
//!   statement (`Sid`, `Effect` and actions), as the one rendered from our templates
//!   (GetBucketPolicy, GetKeyPolicy);
//! - every workload's CodeDeploy application and deployment group (GetDeploymentGroup) and the
//!   tools account's pipeline (GetPipeline);
//! - the image each workload runs (its current release's manifest, else its ECS service's task
//!   definition) present by digest in every workload registry (ECR DescribeImages).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result};
use aws_sdk_ecr::types::ImageIdentifier;

use super::simulate::{bucket_policy, bucket_region, key_policy};
use super::{Check, Kind, emulator_gap};
use crate::access::policies::Policies;
use crate::access::policy::{Effect, Policy};
use crate::aws::{Aws, AwsResultExt};
use crate::config::Config;
use crate::release_files;

/// Every live check of `config`'s topology; locally the ones the emulator cannot answer are gaps.
pub async fn all(aws: &Aws, config: &Config, policies: &Policies) -> Result<Vec<Check>> {
    let local = aws.is_local();
    let gap = |kind| emulator_gap(kind).filter(|_| local);
    let mut checks = Vec::new();
    match gap(Kind::Replica) {
        Some(gap) => checks.push(Check::gap(Kind::Replica, "a key replica with the primary's id in every region", gap)),
        None => checks.extend(replicas(aws, config, policies).await?),
    }
    match gap(Kind::BucketPolicy) {
        Some(gap) => checks.push(Check::gap(Kind::BucketPolicy, "every bucket policy as rendered", gap)),
        None => {
            for (bucket, rendered) in &policies.buckets {
                let region = bucket_region(config, bucket)
                    .with_context(|| format!("bucket {bucket} of the templates is not a bucket of the config"))?;
                let s3 = aws.s3(&config.tools.account, &region).await?;
                let live = bucket_policy(&s3, bucket).await?;
                let place = format!("{}/{region}", config.tools.account);
                checks.push(policy_check(
                    Kind::BucketPolicy,
                    &format!("bucket policy of {bucket}"),
                    place,
                    rendered,
                    live,
                )?);
            }
        }
    }
    match gap(Kind::KeyPolicy) {
        Some(gap) => checks.push(Check::gap(Kind::KeyPolicy, "every key policy as rendered", gap)),
        None => {
            for ((account, region), rendered) in &policies.keys {
                let key_arn = key_arn_in(config, policies, region)?;
                let kms = aws.kms(account, region).await?;
                let live = key_policy(&kms, &key_arn).await?;
                let place = format!("{account}/{region}");
                checks.push(policy_check(Kind::KeyPolicy, &format!("key policy of {key_arn}"), place, rendered, live)?);
            }
        }
    }
    for workload in &config.workloads {
        let place = format!("{}/{}", workload.account, workload.region);
        let subject = format!("deployment group {}/{} of {}", config.app, config.app, workload.name);
        if let Some(gap) = gap(Kind::DeploymentGroup) {
            checks.push(Check::gap(Kind::DeploymentGroup, subject, gap));
            continue;
        }
        let codedeploy = aws.codedeploy(&workload.account, &workload.region).await?;
        let found = deployment_group(&codedeploy, &config.app, &config.app).await?;
        checks.push(presence(Kind::DeploymentGroup, subject, place, found));
    }
    let subject = format!("pipeline {}", config.app);
    match gap(Kind::Pipeline) {
        Some(gap) => checks.push(Check::gap(Kind::Pipeline, subject, gap)),
        None => {
            let codepipeline = aws.codepipeline(&config.tools.account, &config.tools.region).await?;
            let found = pipeline(&codepipeline, &config.app).await?;
            let place = format!("{}/{}", config.tools.account, config.tools.region);
            checks.push(presence(Kind::Pipeline, subject, place, found));
        }
    }
    match gap(Kind::Image) {
        Some(gap) => checks.push(Check::gap(Kind::Image, "the running image in every workload registry", gap)),
        None => checks.extend(images(aws, config).await?),
    }
    Ok(checks)
}

/// One key's facts, as DescribeKey reports them
/// (https://docs.aws.amazon.com/kms/latest/APIReference/API_DescribeKey.html).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyFacts {
    pub arn: String,
    pub key_id: String,
    pub multi_region: bool,
    pub state: String,
}

/// A replica of the multi-Region key in every region: "a set of interoperable KMS keys ... that
/// have the same key ID"
/// (https://docs.aws.amazon.com/kms/latest/developerguide/multi-region-keys-overview.html).
async fn replicas(aws: &Aws, config: &Config, policies: &Policies) -> Result<Vec<Check>> {
    let tools = &config.tools;
    let primary_arn = key_arn_in(config, policies, &tools.region)?;
    let primary = describe_key(&aws.kms(&tools.account, &tools.region).await?, &primary_arn).await?;
    let mut checks = Vec::new();
    for region in config.regions() {
        let place = format!("{}/{region}", tools.account);
        let subject = format!("key in {region}");
        let arn = key_arn_in(config, policies, &region)?;
        let found = match region == tools.region {
            true => primary.clone(),
            false => describe_key(&aws.kms(&tools.account, &region).await?, &arn).await?,
        };
        let (passed, detail) = replica_verdict(primary.as_ref(), found.as_ref(), &arn);
        checks.push(Check::new(Kind::Replica, subject, place, passed, detail));
    }
    Ok(checks)
}

/// Whether `replica` is a replica of `primary`: there, enabled, multi-Region, the same key id.
pub fn replica_verdict(primary: Option<&KeyFacts>, replica: Option<&KeyFacts>, arn: &str) -> (bool, String) {
    let Some(primary) = primary else {
        return (false, "the primary key is missing in the tools region; deploy the key stack".into());
    };
    let Some(replica) = replica else {
        return (false, format!("{arn} does not exist; deploy the key-replica stack of its region"));
    };
    let mut problems = Vec::new();
    if !replica.multi_region {
        problems.push("it is not a multi-Region key".to_string());
    }
    if replica.key_id != primary.key_id {
        problems.push(format!("its key id {} is not the primary's {}", replica.key_id, primary.key_id));
    }
    if replica.state != "Enabled" {
        problems.push(format!("it is {} instead of Enabled", replica.state));
    }
    if problems.is_empty() {
        return (true, format!("{} enabled, multi-Region, key id {}", replica.arn, replica.key_id));
    }
    (false, format!("{}: {}", replica.arn, problems.join("; ")))
}

/// DescribeKey on `key_arn`; `None` when it does not exist.
pub async fn describe_key(kms: &aws_sdk_kms::Client, key_arn: &str) -> Result<Option<KeyFacts>> {
    match kms.describe_key().key_id(key_arn).send().await {
        Ok(reply) => {
            let key = reply.key_metadata().with_context(|| format!("KMS described no key for {key_arn}"))?;
            Ok(Some(KeyFacts {
                arn: key.arn().unwrap_or(key_arn).to_string(),
                key_id: key.key_id().to_string(),
                multi_region: key.multi_region().unwrap_or(false),
                state: key.key_state().map(|state| state.as_str().to_string()).unwrap_or_else(|| "unknown".into()),
            }))
        }
        Err(error) if error.as_service_error().is_some_and(|service| service.is_not_found_exception()) => Ok(None),
        Err(error) => Err(error).aws(&kms).with_context(|| format!("describing key {key_arn} (kms:DescribeKey)")),
    }
}

/// Compares a live policy with the rendered one, statement by statement: the same `Sid`s, each
/// with the same `Effect` and the same actions. Principals, resources and conditions are not
/// compared (AWS may rewrite a principal: an account id becomes its root ARN).
pub fn policy_check(
    kind: Kind,
    subject: &str,
    place: String,
    rendered: &Policy,
    live: Option<serde_json::Value>,
) -> Result<Check> {
    let Some(live) = live else {
        return Ok(Check::new(
            kind,
            subject,
            place,
            false,
            "missing: the resource has no policy; deploy its stack".into(),
        ));
    };
    let live = Policy::parse(&format!("the live {subject}"), &live)?;
    let shape = |policy: &Policy| -> BTreeMap<String, (bool, BTreeSet<String>, bool)> {
        policy
            .statements
            .iter()
            .map(|statement| {
                let actions = statement.actions.0.iter().map(|action| action.to_lowercase()).collect();
                (statement.id.clone(), (statement.effect == Effect::Allow, actions, statement.actions.1))
            })
            .collect()
    };
    let (want, have) = (shape(rendered), shape(&live));
    let mut problems = Vec::new();
    for (sid, wanted) in &want {
        match have.get(sid) {
            None => problems.push(format!("statement {sid} is missing")),
            Some(found) if found != wanted => problems.push(format!("statement {sid} has other effect or actions")),
            Some(_) => {}
        }
    }
    for sid in have.keys().filter(|sid| !want.contains_key(*sid)) {
        problems.push(format!("statement {sid} is not in the template"));
    }
    let compared = "compared statement Sids, effects and actions with the rendered template";
    if problems.is_empty() {
        return Ok(Check::new(kind, subject, place, true, format!("in place; {compared}")));
    }
    Ok(Check::new(
        kind,
        subject,
        place,
        false,
        format!("{}; {compared}; redeploy (`cargo xtask deploy`)", problems.join("; ")),
    ))
}

/// Whether the deployment group exists
/// (https://docs.aws.amazon.com/codedeploy/latest/APIReference/API_GetDeploymentGroup.html).
pub async fn deployment_group(codedeploy: &aws_sdk_codedeploy::Client, application: &str, group: &str) -> Result<bool> {
    match codedeploy.get_deployment_group().application_name(application).deployment_group_name(group).send().await {
        Ok(reply) => Ok(reply.deployment_group_info().is_some()),
        Err(error)
            if error.as_service_error().is_some_and(|service| {
                service.is_deployment_group_does_not_exist_exception()
                    || service.is_application_does_not_exist_exception()
            }) =>
        {
            Ok(false)
        }
        Err(error) => Err(error)
            .aws(&codedeploy)
            .with_context(|| format!("reading deployment group {application}/{group} (codedeploy:GetDeploymentGroup)")),
    }
}

/// Whether the pipeline exists
/// (https://docs.aws.amazon.com/codepipeline/latest/APIReference/API_GetPipeline.html).
pub async fn pipeline(codepipeline: &aws_sdk_codepipeline::Client, name: &str) -> Result<bool> {
    match codepipeline.get_pipeline().name(name).send().await {
        Ok(reply) => Ok(reply.pipeline().is_some()),
        Err(error) if error.as_service_error().is_some_and(|service| service.is_pipeline_not_found_exception()) => {
            Ok(false)
        }
        Err(error) => {
            Err(error).aws(&codepipeline).with_context(|| format!("reading pipeline {name} (codepipeline:GetPipeline)"))
        }
    }
}

fn presence(kind: Kind, subject: String, place: String, found: bool) -> Check {
    let detail = match found {
        true => "present".to_string(),
        false => "missing: deploy its stack (`cargo xtask deploy`)".to_string(),
    };
    Check::new(kind, subject, place, found, detail)
}

/// The digest each workload runs, then each such digest in every workload registry.
async fn images(aws: &Aws, config: &Config) -> Result<Vec<Check>> {
    let mut digests: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for workload in &config.workloads {
        let (_, current, _) = release_files::releases_of(aws, config, workload).await?;
        let (digest, source) = match current {
            Some(manifest) => (manifest.image_digest, format!("release {}", manifest.id)),
            None => {
                let ecs = aws.ecs(&workload.account, &workload.region).await?;
                let digest = running_digest(&ecs, &config.app, &config.app).await?.with_context(|| {
                    format!(
                        "workload {} has no release and its service {} runs no image pinned by digest; run `cargo xtask deploy`",
                        workload.name, config.app
                    )
                })?;
                (digest, format!("the task definition of service {}", config.app))
            }
        };
        digests.entry(digest).or_default().push(format!("{} ({source})", workload.name));
    }
    let mut checks = Vec::new();
    for (digest, runners) in &digests {
        for workload in &config.workloads {
            let ecr = aws.ecr(&workload.account, &workload.region).await?;
            let found = image_present(&ecr, &workload.account, &config.app, digest).await?;
            let place = format!("{}/{}", workload.account, workload.region);
            let subject = format!("{digest} in registry {}/{}", workload.name, config.app);
            let detail = match found {
                true => format!("present; run by {}", runners.join(", ")),
                false => format!(
                    "missing, yet {} runs it: a scale-out or rollback there cannot pull it; push it (`cargo xtask push`)",
                    runners.join(", ")
                ),
            };
            checks.push(Check::new(Kind::Image, subject, place, found, detail));
        }
    }
    Ok(checks)
}

/// Whether `digest` is in `registry`'s repository `repository`
/// (https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_DescribeImages.html:
/// `ImageNotFoundException` when it is not).
pub async fn image_present(ecr: &aws_sdk_ecr::Client, registry: &str, repository: &str, digest: &str) -> Result<bool> {
    let image = ImageIdentifier::builder().image_digest(digest).build();
    match ecr.describe_images().registry_id(registry).repository_name(repository).image_ids(image).send().await {
        Ok(reply) => Ok(reply.image_details().iter().any(|detail| detail.image_digest() == Some(digest))),
        Err(error) if error.as_service_error().is_some_and(|service| service.is_image_not_found_exception()) => {
            Ok(false)
        }
        Err(error) => Err(error)
            .aws(&ecr)
            .with_context(|| format!("looking for {digest} in {registry}/{repository} (ecr:DescribeImages)")),
    }
}

/// The digest the service's current task definition pins (`<registry>/<repo>@sha256:...`)
/// (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeServices.html,
/// API_DescribeTaskDefinition.html).
pub async fn running_digest(ecs: &aws_sdk_ecs::Client, cluster: &str, service: &str) -> Result<Option<String>> {
    let described = ecs
        .describe_services()
        .cluster(cluster)
        .services(service)
        .send()
        .await
        .aws(&ecs)
        .with_context(|| format!("describing service {service} of cluster {cluster} (ecs:DescribeServices)"))?;
    let Some(task_definition) = described.services().first().and_then(|service| service.task_definition()) else {
        return Ok(None);
    };
    let definition = ecs
        .describe_task_definition()
        .task_definition(task_definition)
        .send()
        .await
        .aws(&ecs)
        .with_context(|| format!("describing task definition {task_definition} (ecs:DescribeTaskDefinition)"))?;
    let images = definition.task_definition().map(|definition| definition.container_definitions()).unwrap_or_default();
    Ok(images
        .iter()
        .filter_map(|container| container.image())
        .find_map(|image| image.split_once('@').map(|(_, digest)| digest.to_string())))
}

/// The key ARN the artifact bucket of `region` encrypts with: the key (or replica) there.
fn key_arn_in(config: &Config, policies: &Policies, region: &str) -> Result<String> {
    let bucket = config.bucket_name(region);
    policies.bucket_keys.get(&bucket).cloned().with_context(|| {
        format!("the artifact bucket {bucket} names no KMS key in its deployed template; deploy the artifacts stack")
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::aws::replay::{config, replay};
    use crate::preflight::Outcome;

    const JSON: &str = "application/x-amz-json-1.1";

    fn describe_key_response(arn: &str, key_id: &str) -> String {
        json!({"KeyMetadata": {
            "AWSAccountId": "111111111111", "Arn": arn, "KeyId": key_id, "CreationDate": 1.700000000E9,
            "Enabled": true, "KeyState": "Enabled", "KeyUsage": "ENCRYPT_DECRYPT", "KeySpec": "SYMMETRIC_DEFAULT",
            "KeyManager": "CUSTOMER", "Origin": "AWS_KMS", "MultiRegion": true,
            "MultiRegionConfiguration": {"MultiRegionKeyType": "REPLICA"}
        }})
        .to_string()
    }

    /// Response shape from AWS's API reference:
    /// https://docs.aws.amazon.com/kms/latest/APIReference/API_DescribeKey.html. A replica whose
    /// key id differs from the primary's fails; one with the same id passes; a missing one
    /// (`NotFoundException`) fails.
    #[tokio::test]
    async fn a_replica_with_another_key_id_fails() {
        let primary_arn = "arn:aws:kms:eu-west-1:111111111111:key/mrk-1234abcd12ab34cd56ef1234567890ab";
        let replica_arn = "arn:aws:kms:us-east-1:111111111111:key/mrk-1234abcd12ab34cd56ef1234567890ab";
        let http = replay(&[
            (200, JSON, &describe_key_response(primary_arn, "mrk-1234abcd12ab34cd56ef1234567890ab")),
            (200, JSON, &describe_key_response(replica_arn, "mrk-99999999999999999999999999999999")),
            (200, JSON, &describe_key_response(replica_arn, "mrk-1234abcd12ab34cd56ef1234567890ab")),
            (400, JSON, r#"{"__type": "NotFoundException", "message": "Key 'arn:...' does not exist"}"#),
        ]);
        let kms = aws_sdk_kms::Client::new(&config(&http));
        let primary = describe_key(&kms, primary_arn).await.unwrap();
        let other = describe_key(&kms, replica_arn).await.unwrap();
        let (passed, detail) = replica_verdict(primary.as_ref(), other.as_ref(), replica_arn);
        assert!(!passed);
        assert!(detail.contains("mrk-9999") && detail.contains("is not the primary's mrk-1234"), "{detail}");
        let same = describe_key(&kms, replica_arn).await.unwrap();
        assert!(replica_verdict(primary.as_ref(), same.as_ref(), replica_arn).0);
        let missing = describe_key(&kms, replica_arn).await.unwrap();
        assert_eq!(missing, None);
        let (passed, detail) = replica_verdict(primary.as_ref(), None, replica_arn);
        assert!(!passed && detail.contains("deploy the key-replica stack"), "{detail}");
        let sent = http.bodies().remove(0);
        assert!(sent.contains(primary_arn), "DescribeKey names the key by ARN: {sent}");
    }

    /// Response shapes from AWS's API reference:
    /// https://docs.aws.amazon.com/codedeploy/latest/APIReference/API_GetDeploymentGroup.html and
    /// https://docs.aws.amazon.com/codepipeline/latest/APIReference/API_GetPipeline.html. A
    /// missing deployment group (`DeploymentGroupDoesNotExistException`) or application fails the
    /// check; a present one and a present pipeline pass; a missing pipeline fails.
    #[tokio::test]
    async fn a_missing_deployment_group_fails() {
        let group = json!({"deploymentGroupInfo": {
            "applicationName": "web", "deploymentGroupId": "a1b2c3d4-5678-90ab-cdef-11111EXAMPLE",
            "deploymentGroupName": "web", "computePlatform": "ECS",
            "serviceRoleArn": "arn:aws:iam::222222222222:role/web-codedeploy"
        }});
        let http = replay(&[
            (200, JSON, &group.to_string()),
            (
                400,
                JSON,
                r#"{"__type": "DeploymentGroupDoesNotExistException", "message": "No Deployment Group found for name: web"}"#,
            ),
            (
                400,
                JSON,
                r#"{"__type": "ApplicationDoesNotExistException", "message": "No application found for name: web"}"#,
            ),
        ]);
        let codedeploy = aws_sdk_codedeploy::Client::new(&config(&http));
        assert!(deployment_group(&codedeploy, "web", "web").await.unwrap());
        let missing = deployment_group(&codedeploy, "web", "web").await.unwrap();
        let check = presence(Kind::DeploymentGroup, "deployment group web/web of india".into(), String::new(), missing);
        assert_eq!(check.outcome, Outcome::Failed);
        assert!(check.detail.contains("cargo xtask deploy"), "{}", check.detail);
        assert!(!deployment_group(&codedeploy, "web", "web").await.unwrap());
        let sent = http.bodies().remove(0);
        assert!(
            sent.contains(r#""applicationName":"web""#) && sent.contains(r#""deploymentGroupName":"web""#),
            "{sent}"
        );

        let pipeline_json = json!({"pipeline": {"name": "web", "roleArn": "arn:aws:iam::111111111111:role/web-pipeline",
            "stages": [], "version": 3}, "metadata": {"pipelineArn": "arn:aws:codepipeline:eu-west-1:111111111111:web"}});
        let http = replay(&[
            (200, JSON, &pipeline_json.to_string()),
            (
                400,
                JSON,
                r#"{"__type": "PipelineNotFoundException", "message": "Account '111111111111' does not have a pipeline with name 'web'"}"#,
            ),
        ]);
        let codepipeline = aws_sdk_codepipeline::Client::new(&config(&http));
        assert!(pipeline(&codepipeline, "web").await.unwrap());
        assert!(!pipeline(&codepipeline, "web").await.unwrap());
    }

    /// Response shapes from AWS's API reference:
    /// https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketPolicy.html (the policy
    /// document as the body; `NoSuchBucketPolicy` when there is none) and
    /// https://docs.aws.amazon.com/kms/latest/APIReference/API_GetKeyPolicy.html. A live policy
    /// with the rendered statements passes, one lacking a statement fails naming it, a missing
    /// one fails.
    #[tokio::test]
    async fn a_live_policy_is_compared_with_the_rendered_one() {
        let rendered = json!({"Statement": [
            {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
            {"Sid": "WorkloadRead", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::222222222222:root"}, "Action": ["s3:GetObject", "s3:GetObjectVersion"], "Resource": "*"}
        ]});
        let rendered = Policy::parse("the rendered bucket policy", &rendered).unwrap();
        let mut lacking = json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
        ]});
        let s3_missing = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>NoSuchBucketPolicy</Code>\
                          <Message>The bucket policy does not exist</Message><BucketName>b</BucketName>\
                          <RequestId>4442587FB7D0A2F9</RequestId><HostId>host</HostId></Error>";
        let http = replay(&[(200, "application/json", &lacking.to_string()), (404, "application/xml", s3_missing)]);
        let s3 = aws_sdk_s3::Client::new(&config(&http));
        let live = bucket_policy(&s3, "b").await.unwrap();
        let check = policy_check(Kind::BucketPolicy, "bucket policy of b", String::new(), &rendered, live).unwrap();
        assert_eq!(check.outcome, Outcome::Failed);
        assert!(
            check.detail.contains("statement WorkloadRead is missing") && check.detail.contains("Sids"),
            "{}",
            check.detail
        );
        let none = bucket_policy(&s3, "b").await.unwrap();
        assert_eq!(none, None);
        let check = policy_check(Kind::BucketPolicy, "bucket policy of b", String::new(), &rendered, none).unwrap();
        assert_eq!(check.outcome, Outcome::Failed);

        lacking["Statement"].as_array_mut().unwrap().push(json!(
            {"Sid": "WorkloadRead", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::222222222222:root"}, "Action": ["s3:GetObjectVersion", "s3:GetObject"], "Resource": "*"}
        ));
        let key_reply = json!({"Policy": lacking.to_string(), "PolicyName": "default"});
        let http = replay(&[(200, JSON, &key_reply.to_string())]);
        let kms = aws_sdk_kms::Client::new(&config(&http));
        let live = key_policy(&kms, "arn:aws:kms:eu-west-1:111111111111:key/mrk-1").await.unwrap();
        let check = policy_check(Kind::KeyPolicy, "key policy", String::new(), &rendered, live).unwrap();
        assert_eq!(check.outcome, Outcome::Passed, "{}", check.detail);
        let sent = http.bodies().remove(0);
        assert!(sent.contains(r#""PolicyName":"default""#), "{sent}");
    }

    /// Response shape from AWS's API reference:
    /// https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_DescribeImages.html. The
    /// digest found passes; `ImageNotFoundException` fails.
    #[tokio::test]
    async fn the_running_digest_must_be_in_every_registry() {
        let digest = "sha256:8d1b7a0e5f9c3b2a1d4e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4";
        let found = json!({"imageDetails": [{"registryId": "222222222222", "repositoryName": "web",
            "imageDigest": digest, "imageTags": ["abc1234"], "imageSizeInBytes": 1234567, "imagePushedAt": 1.7E9}]});
        let http = replay(&[
            (200, JSON, &found.to_string()),
            (400, JSON, r#"{"__type": "ImageNotFoundException", "message": "The image requested does not exist"}"#),
        ]);
        let ecr = aws_sdk_ecr::Client::new(&config(&http));
        assert!(image_present(&ecr, "222222222222", "web", digest).await.unwrap());
        assert!(!image_present(&ecr, "333333333333", "web", digest).await.unwrap());
        let sent: Vec<String> = http.bodies();
        assert!(sent[1].contains(r#""registryId":"333333333333""#) && sent[1].contains(digest), "{}", sent[1]);
    }
}
