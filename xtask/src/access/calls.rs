//! What a recorded call (`aws/record.rs`) asks of IAM: the actions AWS authorizes it with, on which
//! resource, owned by which account, with which request context. The table follows AWS's Service
//! Authorization Reference (https://docs.aws.amazon.com/service-authorization/latest/reference/)
//! for exactly the operations our code makes; an operation it does not know is an error naming
//! it, so a new call cannot slip past the proof.
//!
//! Calls through another service are listed with it: an SSE-KMS `PutObject` needs
//! `kms:GenerateDataKey` on the object's key and a `GetObject` of such an object `kms:Decrypt`,
//! both asked by S3 on the caller's behalf (`kms:ViaService` = `s3.<region>.amazonaws.com`,
//! https://docs.aws.amazon.com/kms/latest/developerguide/services-s3.html); registering a task
//! definition that names roles needs `iam:PassRole` on each, passed to `ecs-tasks.amazonaws.com`.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::aws::record::Call;
use crate::config::Config;

/// One authorization a call needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Need {
    pub action: String,
    pub resource: String,
    /// The account that owns the resource (empty for `*`).
    pub owner: String,
    /// Condition keys AWS sets for this request, lowercase.
    pub context: BTreeMap<String, Vec<String>>,
}

/// The role ARN behind a recorded principal (`arn:aws:iam::<account>:role/<name>`), and its account.
pub fn principal(call: &Call) -> Result<(String, String)> {
    let arn = &call.principal;
    let Some(rest) = arn.strip_prefix("arn:aws:iam::") else {
        bail!("call {} {} was made as `{arn}`, not a role the proof knows", call.service, call.operation);
    };
    let account = rest.split(':').next().unwrap_or_default().to_string();
    Ok((arn.clone(), account))
}

/// The services whose resources carry policies of ours (bucket, key, repository, trust policies):
/// every call to them must be in the table below, whoever makes it.
pub const WITH_RESOURCE_POLICIES: [&str; 4] = ["S3", "KMS", "ECR", "STS"];

/// The authorizations `call` needs (none for `sts:GetCallerIdentity`). `bucket_keys` gives each
/// bucket's default KMS key: what S3 decrypts its objects with.
pub fn needs(call: &Call, config: &Config, bucket_keys: &BTreeMap<String, String>) -> Result<Vec<Need>> {
    let (role, account) = principal(call)?;
    let region = call.region.as_str();
    let mut base = BTreeMap::new();
    base.insert("aws:principalarn".to_string(), vec![role.clone()]);
    base.insert("aws:principalaccount".to_string(), vec![account.clone()]);
    // Every SDK call to AWS goes over TLS; the emulator's plain HTTP is not what AWS sees.
    base.insert("aws:securetransport".to_string(), vec!["true".to_string()]);
    let need = |action: &str, resource: String, owner: &str, extra: &[(&str, &str)]| {
        let mut context = base.clone();
        for (key, value) in extra {
            context.insert(key.to_lowercase(), vec![value.to_string()]);
        }
        Need { action: action.to_string(), resource, owner: owner.to_string(), context }
    };
    let body = || -> Result<Value> {
        serde_json::from_str(call.body.as_deref().unwrap_or("{}"))
            .with_context(|| format!("the recorded body of {} {} is not JSON", call.service, call.operation))
    };
    let tools = config.tools.account.as_str();
    let via_s3 = format!("s3.{region}.amazonaws.com");
    let region_key = |bucket: &str| -> Result<String> {
        bucket_keys
            .get(bucket)
            .cloned()
            .with_context(|| format!("bucket {bucket} is none of the topology's KMS-encrypted buckets"))
    };
    let found = match (call.service.as_str(), call.operation.as_str()) {
        ("STS", "GetCallerIdentity") => Vec::new(),
        ("STS", "AssumeRole") => {
            let role_arn = query_value(call, "RoleArn")?;
            let owner = role_arn.trim_start_matches("arn:aws:iam::").split(':').next().unwrap_or_default().to_string();
            vec![need("sts:AssumeRole", role_arn, &owner, &[])]
        }
        ("S3", operation @ ("GetObject" | "HeadObject" | "PutObject")) => {
            let (bucket, key) = s3_object(call)?;
            let object = format!("arn:aws:s3:::{bucket}/{key}");
            let key_arn = region_key(&bucket)?;
            if operation == "PutObject" {
                let encryption = call.headers.get("x-amz-server-side-encryption").cloned().unwrap_or_default();
                let kms_key = call.headers.get("x-amz-server-side-encryption-aws-kms-key-id").cloned();
                let mut extra = vec![("s3:x-amz-server-side-encryption", encryption.as_str())];
                if let Some(kms_key) = &kms_key {
                    extra.push(("s3:x-amz-server-side-encryption-aws-kms-key-id", kms_key.as_str()));
                }
                let mut found = vec![need("s3:PutObject", object, tools, &extra)];
                // With no encryption header, the bucket's default (SSE-KMS under its key) applies,
                // and S3 still asks KMS for a data key as the caller.
                if encryption == "aws:kms" || encryption.is_empty() {
                    let key = kms_key.unwrap_or(key_arn);
                    found.push(need(
                        "kms:GenerateDataKey",
                        key,
                        tools,
                        &[("kms:ViaService", &via_s3), ("kms:CallerAccount", &account)],
                    ));
                }
                found
            } else {
                // Every object in our buckets is SSE-KMS under the region's key: S3 decrypts it.
                vec![
                    need("s3:GetObject", object, tools, &[]),
                    need(
                        "kms:Decrypt",
                        key_arn,
                        tools,
                        &[("kms:ViaService", &via_s3), ("kms:CallerAccount", &account)],
                    ),
                ]
            }
        }
        ("KMS", operation @ ("DescribeKey" | "Decrypt" | "Encrypt" | "GenerateDataKey")) => {
            let body = body()?;
            let key = body["KeyId"].as_str().context("a KMS call names its key")?;
            let arn = if key.starts_with("arn:") {
                key.to_string()
            } else {
                format!("arn:aws:kms:{region}:{}:key/{key}", call.account)
            };
            let owner = arn.split(':').nth(4).unwrap_or_default().to_string();
            vec![need(&format!("kms:{operation}"), arn, &owner, &[("kms:CallerAccount", &account)])]
        }
        ("ECR", "GetAuthorizationToken") => vec![need("ecr:GetAuthorizationToken", "*".into(), "", &[])],
        ("ECR", operation @ ("DescribeImages" | "PutImage" | "BatchGetImage" | "BatchCheckLayerAvailability")) => {
            let body = body()?;
            let registry = body["registryId"].as_str().unwrap_or(&call.account).to_string();
            let repository = body["repositoryName"].as_str().context("an ECR call names its repository")?;
            let arn = format!("arn:aws:ecr:{region}:{registry}:repository/{repository}");
            vec![need(&format!("ecr:{operation}"), arn, &registry, &[])]
        }
        ("ECS", "RegisterTaskDefinition") => {
            let body = body()?;
            // Authorized on the family's task definitions (Service Authorization Reference, ECS:
            // `task-definition/${TaskDefinitionFamilyName}:${TaskDefinitionRevisionNumber}`); the
            // revision is not known before the call.
            let family = body["family"].as_str().context("RegisterTaskDefinition names its family")?;
            let arn = format!("arn:aws:ecs:{region}:{}:task-definition/{family}:*", call.account);
            let mut found = vec![need("ecs:RegisterTaskDefinition", arn, &call.account, &[])];
            for field in ["executionRoleArn", "taskRoleArn"] {
                if let Some(role) = body[field].as_str() {
                    let owner =
                        role.trim_start_matches("arn:aws:iam::").split(':').next().unwrap_or_default().to_string();
                    found.push(need(
                        "iam:PassRole",
                        role.to_string(),
                        &owner,
                        &[("iam:PassedToService", "ecs-tasks.amazonaws.com")],
                    ));
                }
            }
            found
        }
        ("CodeDeploy", "CreateDeployment") => {
            let body = body()?;
            let application = body["applicationName"].as_str().context("CreateDeployment names its application")?;
            let group = body["deploymentGroupName"].as_str().context("CreateDeployment names its group")?;
            let arn = format!("arn:aws:codedeploy:{region}:{}:deploymentgroup:{application}/{group}", call.account);
            vec![need("codedeploy:CreateDeployment", arn, &call.account, &[])]
        }
        // GetDeployment is authorized on the deployment group, which the call does not name: the
        // groups of our config are the only ones a release role deploys to.
        ("CodeDeploy", "GetDeployment") => {
            let arn =
                format!("arn:aws:codedeploy:{region}:{}:deploymentgroup:{}/{}", call.account, config.app, config.app);
            vec![need("codedeploy:GetDeployment", arn, &call.account, &[])]
        }
        (service, operation) => bail!(
            "the access proof does not know what {service} {operation} needs (made as {role}); add it to xtask/src/access/calls.rs from AWS's Service Authorization Reference"
        ),
    };
    Ok(found)
}

/// `(bucket, key)` of a path-style S3 request (`/<bucket>/<key>?...`).
fn s3_object(call: &Call) -> Result<(String, String)> {
    let path = call.path.split('?').next().unwrap_or_default();
    let path = path.trim_start_matches('/');
    let (bucket, key) =
        path.split_once('/').with_context(|| format!("S3 {} of `{}` names no object", call.operation, call.path))?;
    Ok((bucket.to_string(), percent_decode(key)))
}

/// A value of a query-protocol body (`Action=AssumeRole&RoleArn=arn%3Aaws...`).
fn query_value(call: &Call, name: &str) -> Result<String> {
    let body = call.body.as_deref().unwrap_or_default();
    body.split('&')
        .find_map(|pair| pair.split_once('=').filter(|(key, _)| *key == name).map(|(_, value)| percent_decode(value)))
        .with_context(|| format!("the recorded {} {} has no {name}", call.service, call.operation))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = bytes.get(index + 1..index + 3).and_then(|pair| std::str::from_utf8(pair).ok());
        match (bytes[index], hex.and_then(|pair| u8::from_str_radix(pair, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                index += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                index += 1;
            }
            (byte, _) => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let text = "app = \"web\"\n[tools]\naccount = \"111111111111\"\nregion = \"ap-south-1\"\n\
                    [[workloads]]\nname = \"india\"\naccount = \"222222222222\"\nregion = \"ap-south-1\"\n";
        Config::parse(std::path::Path::new("deploy.toml"), text).unwrap()
    }

    fn keys() -> BTreeMap<String, String> {
        BTreeMap::from([(
            "web-artifacts-111111111111-ap-south-1".to_string(),
            "arn:aws:kms:ap-south-1:111111111111:key/mrk-1".to_string(),
        )])
    }

    fn call(service: &str, operation: &str, path: &str, body: Option<&str>) -> Call {
        Call {
            principal: "arn:aws:iam::111111111111:role/web-build".into(),
            access_key: "ASIA".into(),
            account: "111111111111".into(),
            region: "ap-south-1".into(),
            service: service.into(),
            operation: operation.into(),
            method: "POST".into(),
            path: path.into(),
            body: body.map(str::to_string),
            headers: BTreeMap::new(),
        }
    }

    #[test]
    fn an_encrypted_put_needs_the_bucket_and_the_key() {
        let mut put = call(
            "S3",
            "PutObject",
            "/web-artifacts-111111111111-ap-south-1/releases/india/a%20b.zip?x-id=PutObject",
            None,
        );
        put.headers.insert("x-amz-server-side-encryption".into(), "aws:kms".into());
        put.headers.insert(
            "x-amz-server-side-encryption-aws-kms-key-id".into(),
            "arn:aws:kms:ap-south-1:111111111111:key/mrk-1".into(),
        );
        let found = needs(&put, &config(), &keys()).unwrap();
        assert_eq!(found[0].action, "s3:PutObject");
        assert_eq!(found[0].resource, "arn:aws:s3:::web-artifacts-111111111111-ap-south-1/releases/india/a b.zip");
        assert_eq!(found[0].context["s3:x-amz-server-side-encryption"], ["aws:kms"]);
        assert_eq!(found[1].action, "kms:GenerateDataKey");
        assert_eq!(found[1].resource, "arn:aws:kms:ap-south-1:111111111111:key/mrk-1");
        assert_eq!(found[1].context["kms:viaservice"], ["s3.ap-south-1.amazonaws.com"]);
    }

    #[test]
    fn assume_role_and_pass_role_name_their_roles() {
        let assume = call(
            "STS",
            "AssumeRole",
            "/",
            Some(
                "Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A222222222222%3Arole%2Fweb-release-ap-south-1&RoleSessionName=x",
            ),
        );
        let found = needs(&assume, &config(), &keys()).unwrap();
        assert_eq!(
            (found[0].action.as_str(), found[0].resource.as_str(), found[0].owner.as_str()),
            ("sts:AssumeRole", "arn:aws:iam::222222222222:role/web-release-ap-south-1", "222222222222")
        );
        let register = call(
            "ECS",
            "RegisterTaskDefinition",
            "/",
            Some(r#"{"family":"web","executionRoleArn":"arn:aws:iam::222222222222:role/exec"}"#),
        );
        let found = needs(&register, &config(), &keys()).unwrap();
        assert_eq!(found[1].action, "iam:PassRole");
        assert_eq!(found[1].context["iam:passedtoservice"], ["ecs-tasks.amazonaws.com"]);
    }

    #[test]
    fn percent_decoding_never_panics() {
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("%é1"), "%é1");
        assert_eq!(percent_decode("end%2"), "end%2");
    }

    #[test]
    fn an_unknown_call_is_named() {
        let error = needs(&call("ECS", "DeleteCluster", "/", Some("{}")), &config(), &keys()).unwrap_err().to_string();
        assert!(error.contains("ECS DeleteCluster") && error.contains("access/calls.rs"), "{error}");
    }
}
