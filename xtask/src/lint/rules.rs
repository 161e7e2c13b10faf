//! The pattern's own invariants, checked in-process over the parsed templates (long form).
//!
//! The generic linters know CloudFormation and common security checks, not this pattern: which
//! key the buckets use, that a release can roll itself back, that the service belongs to
//! CodeDeploy. Each rule here is one promise of the pattern; every finding names the resource
//! and says what to write instead. The IAM rules (cfn_nag's IAM checks, on every machine) are in
//! `iam.rs`.
//!
//! A resource accepts a finding of these rules with `Metadata: gbg: rules_to_suppress: [{id:
//! <rule>, reason: <why it is safe>}]`, the shape cfn_nag's suppressions have. A suppression
//! without a reason is a `suppression-reason` finding, and one that hides nothing (its rule does
//! not fire on that resource, or is no rule of ours) a `stale-suppression` finding; the
//! suppression rules themselves cannot be suppressed.

use serde_json::Value;

use crate::lint::{Finding, iam};
use crate::template::{Template, pointer_segment};

/// The tool name in findings: `[gbg <rule>]`.
pub const TOOL: &str = "gbg";

/// Every rule, in a fixed order (the ids appear in findings and in the fixtures' names).
pub const RULES: &[&str] = &[
    "bucket-encryption",
    "bucket-tls",
    "artifact-store-kms",
    "build-kms",
    "key-multi-region",
    "ecr-immutable",
    "ecs-code-deploy",
    "auto-rollback",
    // lint/iam.rs
    "iam-passrole-wildcard",
    "iam-write-wildcard",
    "iam-wildcard-action",
    "iam-allow-not",
    "iam-managed-policy",
    "iam-open-principal",
    "iam-arn-malformed",
    "suppression-reason",
    "suppression-pair",
    "hard-coded-account",
    "hard-coded-region",
];

/// Rules a `gbg` suppression cannot hide: they are about the suppressions themselves.
const UNSUPPRESSIBLE: &[&str] = &["suppression-reason", "suppression-pair", "stale-suppression"];

/// Checks every rule on `template`; `file` is the name findings carry.
pub fn check(template: &Template, file: &str) -> Vec<Finding> {
    let mut out = Out::new(template, file);
    buckets(&mut out);
    artifact_stores(&mut out);
    builds(&mut out);
    keys(&mut out);
    registries(&mut out);
    services(&mut out);
    deployment_groups(&mut out);
    iam::check(&mut out);
    suppressions(&mut out);
    hard_coded(&mut out);
    own_suppressions(&mut out);
    out.into_findings()
}

/// The findings of one template so far, each with the resource it is on.
pub(super) struct Out<'a> {
    pub(super) template: &'a Template,
    file: &'a str,
    findings: Vec<(Option<String>, Finding)>,
}

impl<'a> Out<'a> {
    pub(super) fn new(template: &'a Template, file: &'a str) -> Out<'a> {
        Out { template, file, findings: Vec::new() }
    }

    /// A finding of `rule` at the node `pointer` (its line; its resource when under `/Resources`).
    pub(super) fn push(&mut self, pointer: &str, rule: &str, message: String) {
        let resource = pointer
            .strip_prefix("/Resources/")
            .map(|rest| rest.split('/').next().unwrap_or_default().replace("~1", "/").replace("~0", "~"));
        let finding = Finding {
            file: self.file.to_string(),
            line: self.template.line(pointer),
            tool: TOOL.to_string(),
            rule: rule.to_string(),
            message,
        };
        self.findings.push((resource, finding));
    }

    pub(super) fn into_findings(self) -> Vec<Finding> {
        self.findings.into_iter().map(|(_, finding)| finding).collect()
    }
}

fn resource_pointer(id: &str) -> String {
    format!("/Resources/{}", pointer_segment(id))
}

fn property<'a>(resource: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(resource.get("Properties")?, |value, key| value.get(key))
}

/// `value` as a list of values: a list as is, anything else as a one-element list.
fn list(value: Option<&Value>) -> Vec<&Value> {
    match value {
        None => Vec::new(),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(other) => vec![other],
    }
}

fn is_ref_to(value: &Value, id: &str) -> bool {
    value.get("Ref").and_then(Value::as_str) == Some(id)
}

/// Every bucket is encrypted under a KMS key, except an access-log target, which AWS only
/// delivers to with SSE-S3; every bucket has a policy that denies requests without TLS.
fn buckets(out: &mut Out) {
    let template = out.template;
    let log_targets: Vec<&Value> = template
        .resources_of("AWS::S3::Bucket")
        .filter_map(|(_, bucket)| property(bucket, &["LoggingConfiguration", "DestinationBucketName"]))
        .collect();
    for (id, bucket) in template.resources_of("AWS::S3::Bucket") {
        let pointer = resource_pointer(id);
        let log_target = log_targets.iter().any(|target| is_ref_to(target, id));
        let rules = list(property(bucket, &["BucketEncryption", "ServerSideEncryptionConfiguration"]));
        if rules.is_empty() {
            out.push(
                &pointer,
                "bucket-encryption",
                format!(
                    "bucket {id} has no BucketEncryption: set SSEAlgorithm aws:kms with KMSMasterKeyID the artifact key \
                     (an access-log target: AES256)"
                ),
            );
        }
        for rule in rules {
            let default = rule.get("ServerSideEncryptionByDefault");
            let algorithm = default.and_then(|default| default.get("SSEAlgorithm")).and_then(Value::as_str);
            let key = default.and_then(|default| default.get("KMSMasterKeyID")).filter(|key| !key.is_null());
            match (algorithm, key) {
                (Some("aws:kms" | "aws:kms:dsse"), Some(_)) => {}
                (Some("AES256"), _) if log_target => {}
                (Some("aws:kms" | "aws:kms:dsse"), None) => out.push(
                    &pointer,
                    "bucket-encryption",
                    format!(
                        "bucket {id} uses SSE-KMS without KMSMasterKeyID (the AWS-managed key): name the artifact key"
                    ),
                ),
                (algorithm, _) => out.push(
                    &pointer,
                    "bucket-encryption",
                    format!(
                        "bucket {id} is encrypted with {} instead of the artifact key: set SSEAlgorithm aws:kms and \
                         KMSMasterKeyID (only an access-log target may use AES256)",
                        algorithm.unwrap_or("an unknown algorithm")
                    ),
                ),
            }
        }
        let denies_plain_http = template
            .resources_of("AWS::S3::BucketPolicy")
            .filter(|(_, policy)| property(policy, &["Bucket"]).is_some_and(|bucket| is_ref_to(bucket, id)))
            .filter_map(|(_, policy)| property(policy, &["PolicyDocument", "Statement"]))
            .flat_map(|statements| iam::statements(statements, ""))
            .any(|(_, _, statement)| denies_insecure_transport(statement));
        if !denies_plain_http {
            out.push(
                &pointer,
                "bucket-tls",
                format!(
                    "bucket {id} has no policy denying requests without TLS: add an AWS::S3::BucketPolicy with Bucket \
                     !Ref {id} and a Deny of s3:* for Principal * when aws:SecureTransport is false"
                ),
            );
        }
    }
}

fn denies_insecure_transport(statement: &Value) -> bool {
    let strings = |key: &str| -> Vec<&str> { list(statement.get(key)).into_iter().filter_map(Value::as_str).collect() };
    let principal_everyone = match statement.get("Principal") {
        Some(Value::String(principal)) => principal == "*",
        Some(principal) => list(principal.get("AWS")).iter().any(|aws| aws.as_str() == Some("*")),
        None => false,
    };
    let secure_transport = statement
        .get("Condition")
        .and_then(|condition| condition.get("Bool"))
        .and_then(|bool_condition| bool_condition.get("aws:SecureTransport"));
    let when_insecure = match secure_transport {
        Some(Value::String(text)) => text == "false",
        Some(Value::Bool(secure)) => !secure,
        _ => false,
    };
    statement.get("Effect").and_then(Value::as_str) == Some("Deny")
        && principal_everyone
        && strings("Action").iter().any(|action| matches!(*action, "s3:*" | "*"))
        && when_insecure
}

/// Every artifact store of a pipeline is encrypted with a KMS key.
fn artifact_stores(out: &mut Out) {
    let template = out.template;
    for (id, pipeline) in template.resources_of("AWS::CodePipeline::Pipeline") {
        let mut stores: Vec<(String, &Value)> = Vec::new();
        if let Some(store) = property(pipeline, &["ArtifactStore"]) {
            stores.push((format!("{}/Properties/ArtifactStore", resource_pointer(id)), store));
        }
        for (index, entry) in list(property(pipeline, &["ArtifactStores"])).into_iter().enumerate() {
            let pointer = format!("{}/Properties/ArtifactStores/{index}/ArtifactStore", resource_pointer(id));
            match entry.get("ArtifactStore") {
                Some(store) => stores.push((pointer, store)),
                None => out.push(
                    &pointer,
                    "artifact-store-kms",
                    format!("pipeline {id}: artifact store {index} is malformed"),
                ),
            }
        }
        if stores.is_empty() {
            out.push(&resource_pointer(id), "artifact-store-kms", format!("pipeline {id} names no artifact store"));
        }
        for (pointer, store) in stores {
            let key = store.get("EncryptionKey");
            let kms = key.and_then(|key| key.get("Type")).and_then(Value::as_str) == Some("KMS");
            let named = key.and_then(|key| key.get("Id")).is_some_and(|id| !id.is_null());
            if !(kms && named) {
                out.push(
                    &pointer,
                    "artifact-store-kms",
                    format!(
                        "pipeline {id} has an artifact store without its region's key: set EncryptionKey {{Type: KMS, \
                         Id: <the multi-Region key's ARN in that region>}}"
                    ),
                );
            }
        }
    }
}

/// Every CodeBuild project encrypts its artifacts with the artifact key.
fn builds(out: &mut Out) {
    let template = out.template;
    for (id, project) in template.resources_of("AWS::CodeBuild::Project") {
        if property(project, &["EncryptionKey"]).is_none_or(Value::is_null) {
            out.push(
                &resource_pointer(id),
                "build-kms",
                format!("build project {id} has no EncryptionKey (it would use the AWS-managed S3 key): set the artifact key's ARN"),
            );
        }
    }
}

/// The artifact key is multi-Region (one id in every region) and rotated.
fn keys(out: &mut Out) {
    let template = out.template;
    for (id, key) in template.resources_of("AWS::KMS::Key") {
        for (setting, fix) in [("MultiRegion", "MultiRegion: true"), ("EnableKeyRotation", "EnableKeyRotation: true")] {
            if property(key, &[setting]).and_then(Value::as_bool) != Some(true) {
                out.push(&resource_pointer(id), "key-multi-region", format!("key {id} lacks {fix}"));
            }
        }
    }
}

/// Image tags are immutable: a tag names one image forever, so a rollback gets what was tested.
fn registries(out: &mut Out) {
    let template = out.template;
    for (id, repository) in template.resources_of("AWS::ECR::Repository") {
        if property(repository, &["ImageTagMutability"]).and_then(Value::as_str) != Some("IMMUTABLE") {
            out.push(
                &resource_pointer(id),
                "ecr-immutable",
                format!("repository {id} allows overwriting tags: set ImageTagMutability: IMMUTABLE"),
            );
        }
    }
}

/// The service's deployments belong to CodeDeploy (blue/green), not to ECS rolling updates.
fn services(out: &mut Out) {
    let template = out.template;
    for (id, service) in template.resources_of("AWS::ECS::Service") {
        if property(service, &["DeploymentController", "Type"]).and_then(Value::as_str) != Some("CODE_DEPLOY") {
            out.push(
                &resource_pointer(id),
                "ecs-code-deploy",
                format!("service {id} is not released blue/green: set DeploymentController: {{Type: CODE_DEPLOY}}"),
            );
        }
    }
}

/// A failed or alarming release rolls itself back.
fn deployment_groups(out: &mut Out) {
    let template = out.template;
    for (id, group) in template.resources_of("AWS::CodeDeploy::DeploymentGroup") {
        let pointer = resource_pointer(id);
        let enabled = property(group, &["AutoRollbackConfiguration", "Enabled"]).and_then(Value::as_bool) == Some(true);
        let events: Vec<&str> = list(property(group, &["AutoRollbackConfiguration", "Events"]))
            .into_iter()
            .filter_map(Value::as_str)
            .collect();
        let missing: Vec<&str> = ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]
            .into_iter()
            .filter(|event| !events.contains(event))
            .collect();
        if !enabled || !missing.is_empty() {
            out.push(
                &pointer,
                "auto-rollback",
                format!(
                    "deployment group {id} does not roll back by itself: set AutoRollbackConfiguration {{Enabled: true, \
                     Events: [DEPLOYMENT_FAILURE, DEPLOYMENT_STOP_ON_ALARM]}}"
                ),
            );
        }
        let alarms = property(group, &["AlarmConfiguration", "Enabled"]).and_then(Value::as_bool) == Some(true)
            && !list(property(group, &["AlarmConfiguration", "Alarms"])).is_empty();
        if !alarms {
            out.push(
                &pointer,
                "auto-rollback",
                format!(
                    "deployment group {id} watches no alarm: set AlarmConfiguration {{Enabled: true, Alarms: [...]}}"
                ),
            );
        }
    }
}

/// checkov checks and the cfn_nag rules that flag the same thing, read from each tool's rule
/// source: checkov's `checkov/cloudformation/checks/resource/aws/<file>.py` (checkov 3.3.30, in
/// the venv) and cfn_nag's `lib/cfn-nag/custom_rules/<file>.rb` (stelligent/cfn_nag 0.8.10), both
/// named in the comments. Where cfn_nag splits a check by resource type, any of its ids counts.
///
/// Left out on purpose: CKV_AWS_103 (TLS 1.2 on a load balancer listener), because cfn_nag's W55
/// (ElasticLoadBalancerV2ListenerSslPolicyRule.rb) looks only at HTTPS and TLS listeners, so it
/// never fires where checkov's check does on an HTTP listener; CKV_AWS_78 (CodeBuild artifact
/// encryption not disabled), which is not W32's "EncryptionKey set"; CKV_AWS_136 (ECR encrypted
/// with KMS) and CKV_AWS_53..56 (S3 public access block), which cfn_nag has no rule for.
pub const CHECKOV_CFN_NAG: &[(&str, &[&str])] = &[
    // ALBListenerHTTPS.py / ElasticLoadBalancerV2ListenerProtocolRule.rb
    ("CKV_AWS_2", &["W56"]),
    // KMSRotation.py / KMSKeyRotationRule.rb
    ("CKV_AWS_7", &["F19"]),
    // S3AccessLogs.py / S3BucketAccessLoggingRule.rb
    ("CKV_AWS_18", &["W35"]),
    // S3Encryption.py / S3BucketEncryptionSetRule.rb
    ("CKV_AWS_19", &["W41"]),
    // SecurityGroupUnrestrictedIngress22.py / SecurityGroupIngressOpenToWorldRule.rb
    ("CKV_AWS_24", &["W2"]),
    // SecurityGroupUnrestrictedIngress3389.py / SecurityGroupIngressOpenToWorldRule.rb
    ("CKV_AWS_25", &["W2"]),
    // SNSTopicEncryption.py / SnsTopicKmsMasterKeyIdRule.rb
    ("CKV_AWS_26", &["W47"]),
    // SQSQueueEncryption.py / SqsQueueKmsMasterKeyIdRule.rb
    ("CKV_AWS_27", &["W48"]),
    // CloudWatchLogGroupRetention.py / LogsLogGroupRetentionRule.rb
    ("CKV_AWS_66", &["W86"]),
    // ELBv2AccessLogs.py / ElasticLoadBalancerV2AccessLoggingRule.rb
    ("CKV_AWS_91", &["W52"]),
    // ELBAccessLogs.py / ElasticLoadBalancerAccessLoggingRule.rb
    ("CKV_AWS_92", &["W26"]),
    // LambdaFunctionLevelConcurrentExecutionLimit.py / LambdaFunctionReservedConcurrentExecutionsRule.rb
    ("CKV_AWS_115", &["W92"]),
    // LambdaInVPC.py / LambdaFunctionInsideVPCRule.rb
    ("CKV_AWS_117", &["W89"]),
    // CloudWatchLogGroupKMSKey.py / LogsLogGroupEncryptedRule.rb
    ("CKV_AWS_158", &["W84"]),
    // ECRImageScanning.py / ECRRepositoryScanOnPushRule.rb
    ("CKV_AWS_163", &["W79"]),
    // SecurityGroupUnrestrictedIngress80.py / SecurityGroupIngressOpenToWorldRule.rb
    ("CKV_AWS_260", &["W2"]),
];

/// Every suppression of a finding carries its written reason (checkov `comment`, cfn_nag
/// `reason`, Guard `Reasons: {RULE: why}`, gbg `reason`), and a finding accepted for checkov is accepted, with
/// a reason, for cfn_nag too where cfn_nag checks the same thing ([`CHECKOV_CFN_NAG`]): a linter
/// that does not run here must not fail a build elsewhere on a finding accepted here.
fn suppressions(out: &mut Out) {
    let template = out.template;
    for (id, resource) in template.resources() {
        let pointer = format!("{}/Metadata", resource_pointer(id));
        let metadata = resource.get("Metadata");
        let checkov = metadata.and_then(|metadata| metadata.get("checkov")).and_then(|checkov| checkov.get("skip"));
        let cfn_nag =
            metadata.and_then(|metadata| metadata.get("cfn_nag")).and_then(|nag| nag.get("rules_to_suppress"));
        let nag_suppressed: Vec<&str> =
            list(cfn_nag).into_iter().filter_map(|rule| rule.get("id").and_then(Value::as_str)).collect();
        for (index, skip) in list(checkov).into_iter().enumerate() {
            let check = skip.get("id").and_then(Value::as_str).unwrap_or("?");
            let skip_pointer = format!("{pointer}/checkov/skip/{index}");
            if !has_text(skip.get("comment")) {
                out.push(
                    &skip_pointer,
                    "suppression-reason",
                    format!("{id} suppresses checkov {check} without a reason: add `comment:` saying why it is safe"),
                );
            }
            let Some((_, nag_rules)) = CHECKOV_CFN_NAG.iter().find(|(checkov_id, _)| *checkov_id == check) else {
                continue;
            };
            if !nag_rules.iter().any(|rule| nag_suppressed.contains(rule)) {
                out.push(
                    &skip_pointer,
                    "suppression-pair",
                    format!(
                        "{id} suppresses checkov {check} but not cfn_nag {}, which checks the same: add `cfn_nag: \
                         rules_to_suppress: [{{id: {}, reason: ...}}]` with the same reason",
                        nag_rules.join(" or "),
                        nag_rules[0]
                    ),
                );
            }
        }
        for (index, rule) in list(cfn_nag).into_iter().enumerate() {
            if !has_text(rule.get("reason")) {
                let check = rule.get("id").and_then(Value::as_str).unwrap_or("?");
                out.push(
                    &format!("{pointer}/cfn_nag/rules_to_suppress/{index}"),
                    "suppression-reason",
                    format!("{id} suppresses cfn_nag {check} without a reason: add `reason:` saying why it is safe"),
                );
            }
        }
        for (index, rule) in list(own_rules(metadata)).into_iter().enumerate() {
            if !has_text(rule.get("reason")) {
                let check = rule.get("id").and_then(Value::as_str).unwrap_or("?");
                out.push(
                    &format!("{pointer}/{TOOL}/rules_to_suppress/{index}"),
                    "suppression-reason",
                    format!("{id} suppresses {TOOL} {check} without a reason: add `reason:` saying why it is safe"),
                );
            }
        }
        let guard = metadata.and_then(|metadata| metadata.get("guard"));
        let reasons = guard.and_then(|guard| guard.get("Reasons"));
        let suppressed = guard.and_then(|guard| guard.get("SuppressedRules"));
        for (index, rule) in list(suppressed).into_iter().enumerate() {
            let rule = rule.as_str().unwrap_or("?");
            if !has_text(reasons.and_then(|reasons| reasons.get(rule))) {
                out.push(
                    &format!("{pointer}/guard/SuppressedRules/{index}"),
                    "suppression-reason",
                    format!(
                        "{id} suppresses Guard rule {rule} without a reason: add `Reasons: {{{rule}: ...}}` under \
                         `guard:` saying why it is safe"
                    ),
                );
            }
        }
    }
}

/// A resource's `Metadata: gbg: rules_to_suppress`.
fn own_rules(metadata: Option<&Value>) -> Option<&Value> {
    metadata.and_then(|metadata| metadata.get(TOOL)).and_then(|own| own.get("rules_to_suppress"))
}

/// Applies the `gbg` suppressions: drops the findings they accept, and reports each one that
/// accepts nothing (see the module doc).
fn own_suppressions(out: &mut Out) {
    let template = out.template;
    for (id, resource) in template.resources() {
        let rules = list(own_rules(resource.get("Metadata")));
        for (index, rule) in rules.into_iter().enumerate() {
            let pointer = format!("{}/Metadata/{TOOL}/rules_to_suppress/{index}", resource_pointer(id));
            let Some(rule) = rule.get("id").and_then(Value::as_str) else {
                out.push(
                    &pointer,
                    "suppression-reason",
                    format!("{id} has a {TOOL} suppression without `id:`: name the rule it accepts"),
                );
                continue;
            };
            if !RULES.contains(&rule) || UNSUPPRESSIBLE.contains(&rule) {
                out.push(
                    &pointer,
                    "stale-suppression",
                    format!(
                        "{id} suppresses {TOOL} {rule}, which is no rule a suppression can accept (see RULES in \
                         xtask/src/lint/rules.rs): fix the id or remove the suppression"
                    ),
                );
                continue;
            }
            let before = out.findings.len();
            out.findings.retain(|(owner, finding)| !(owner.as_deref() == Some(id) && finding.rule == rule));
            if out.findings.len() == before {
                out.push(
                    &pointer,
                    "stale-suppression",
                    format!("{id} suppresses {TOOL} {rule}, which does not fire on it: remove the suppression"),
                );
            }
        }
    }
}

fn has_text(value: Option<&Value>) -> bool {
    value.and_then(Value::as_str).is_some_and(|text| !text.trim().is_empty())
}

/// No account id and no region is written into a template: they come from parameters or
/// pseudo parameters, so one template serves every account and region.
fn hard_coded(out: &mut Out) {
    let mut found = Vec::new();
    scan_literals(&out.template.body, "", &mut found);
    for (pointer, rule, literal) in found {
        let message = match rule {
            "hard-coded-account" => {
                format!("account id {literal} written into the template: use a parameter or ${{AWS::AccountId}}")
            }
            _ => format!("region {literal} written into the template: use a parameter or ${{AWS::Region}}"),
        };
        out.push(&pointer, rule, message);
    }
}

fn scan_literals(value: &Value, pointer: &str, found: &mut Vec<(String, &'static str, String)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                // A parameter's pattern describes values; it holds none.
                if key != "AllowedPattern" {
                    scan_literals(child, &format!("{pointer}/{}", pointer_segment(key)), found);
                }
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                scan_literals(item, &format!("{pointer}/{index}"), found);
            }
        }
        Value::String(text) => {
            if let Some(account) = account_id_in(text) {
                found.push((pointer.to_string(), "hard-coded-account", account.to_string()));
            }
            if let Some(region) = region_in(text) {
                found.push((pointer.to_string(), "hard-coded-region", region.to_string()));
            }
        }
        Value::Number(number)
            if number.as_u64().is_some_and(|id| (100_000_000_000..1_000_000_000_000).contains(&id)) =>
        {
            found.push((pointer.to_string(), "hard-coded-account", number.to_string()));
        }
        _ => {}
    }
}

/// The first run of exactly twelve digits in `text`.
fn account_id_in(text: &str) -> Option<&str> {
    text.split(|character: char| !character.is_ascii_digit()).find(|run| run.len() == 12)
}

/// The first AWS region name in `text` (`eu-central-1`, `us-gov-west-1`), also inside a longer
/// hyphenated name (`web-eu-central-1`).
fn region_in(text: &str) -> Option<String> {
    const AREAS: &[&str] = &["af", "ap", "ca", "cn", "eu", "il", "me", "mx", "sa", "us"];
    const PARTITIONS: &[&str] = &["gov", "iso", "isob"];
    const DIRECTIONS: &[&str] =
        &["central", "east", "north", "northeast", "northwest", "south", "southeast", "southwest", "west"];
    let is_number = |part: &str| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit());
    for token in text.split(|character: char| !(character.is_ascii_alphanumeric() || character == '-')) {
        let parts: Vec<&str> = token.split('-').collect();
        for start in 0..parts.len() {
            let rest = &parts[start..];
            let found = match rest {
                [area, partition, direction, number, ..]
                    if AREAS.contains(area)
                        && PARTITIONS.contains(partition)
                        && DIRECTIONS.contains(direction)
                        && is_number(number) =>
                {
                    Some(&rest[..4])
                }
                [area, direction, number, ..]
                    if AREAS.contains(area) && DIRECTIONS.contains(direction) && is_number(number) =>
                {
                    Some(&rest[..3])
                }
                _ => None,
            };
            if let Some(parts) = found {
                return Some(parts.join("-"));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// The findings of the suppression rules on a template made of `resource` (YAML of one
    /// resource named `Logs`), as `rule: message`.
    fn suppression_findings(resource: &str) -> Vec<String> {
        let text = format!("Resources:\n  Logs:\n{resource}");
        let template = Template::parse(Path::new("bad.yaml"), &text).unwrap();
        let mut out = Out::new(&template, "bad.yaml");
        suppressions(&mut out);
        out.into_findings().into_iter().map(|finding| format!("{}: {}", finding.rule, finding.message)).collect()
    }

    #[test]
    fn every_suppression_has_a_reason_and_its_cfn_nag_pair() {
        let cases: &[(&str, &[&str])] = &[
            (
                // A checkov skip of a check cfn_nag makes too, without the cfn_nag suppression.
                "    Type: AWS::Logs::LogGroup
    Metadata:
      checkov:
        skip:
          - {id: CKV_AWS_158, comment: AWS-owned encryption is enough.}
",
                &["suppression-pair: Logs suppresses checkov CKV_AWS_158 but not cfn_nag W84, which checks the same: \
                   add `cfn_nag: rules_to_suppress: [{id: W84, reason: ...}]` with the same reason"],
            ),
            (
                "    Type: AWS::Logs::LogGroup
    Metadata:
      cfn_nag:
        rules_to_suppress:
          - {id: W84, reason: AWS-owned encryption is enough.}
      checkov:
        skip:
          - {id: CKV_AWS_158, comment: AWS-owned encryption is enough.}
",
                &[],
            ),
            (
                // The pair is there, but one reason is blank.
                "    Type: AWS::Logs::LogGroup
    Metadata:
      cfn_nag:
        rules_to_suppress:
          - {id: W84, reason: \"  \"}
      checkov:
        skip:
          - {id: CKV_AWS_158, comment: AWS-owned encryption is enough.}
",
                &[
                    "suppression-reason: Logs suppresses cfn_nag W84 without a reason: add `reason:` saying why it is safe",
                ],
            ),
            (
                // cfn_nag has no rule for CKV_AWS_136, so no pair is needed; the reason still is.
                "    Type: AWS::ECR::Repository
    Metadata:
      checkov:
        skip:
          - {id: CKV_AWS_136}
",
                &[
                    "suppression-reason: Logs suppresses checkov CKV_AWS_136 without a reason: add `comment:` saying why it \
                   is safe",
                ],
            ),
            (
                "    Type: AWS::S3::Bucket
    Metadata:
      guard:
        SuppressedRules: [S3_BUCKET_KMS_ENCRYPTION, S3_BUCKET_VERSIONING]
        Reasons:
          S3_BUCKET_KMS_ENCRYPTION: Access logs are delivered to SSE-S3 buckets only.
",
                &[
                    "suppression-reason: Logs suppresses Guard rule S3_BUCKET_VERSIONING without a reason: add `Reasons: \
                   {S3_BUCKET_VERSIONING: ...}` under `guard:` saying why it is safe",
                ],
            ),
        ];
        for (resource, expected) in cases {
            assert_eq!(suppression_findings(resource), *expected, "{resource}");
        }
    }

    #[test]
    fn own_rules_are_suppressed_with_a_reason_and_stale_ones_are_reported() {
        let role = |metadata: &str| {
            format!(
                "Resources:
  Role:
    Type: AWS::IAM::Role
{metadata}    Properties:
      AssumeRolePolicyDocument:
        Statement:
          - {{Effect: Allow, Principal: {{Service: ecs-tasks.amazonaws.com}}, Action: sts:AssumeRole}}
      Policies:
        - PolicyName: app
          PolicyDocument:
            Statement:
              - {{Effect: Allow, Action: \"logs:*\", Resource: !Sub \"arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:app\"}}
"
            )
        };
        let cases: &[(&str, &[&str])] = &[
            (
                "",
                &[
                    "12: iam-wildcard-action: role Role, inline policy app, statement 1 allows every action of a service \
                   (logs:*): list the actions it needs",
                ],
            ),
            (
                "    Metadata:
      gbg:
        rules_to_suppress:
          - {id: iam-wildcard-action, reason: The log group is the role's own.}
",
                &[],
            ),
            (
                // Accepted, but the reason is missing.
                "    Metadata:
      gbg:
        rules_to_suppress:
          - {id: iam-wildcard-action}
",
                &["7: suppression-reason: Role suppresses gbg iam-wildcard-action without a reason: add `reason:` \
                   saying why it is safe"],
            ),
            (
                "    Metadata:
      gbg:
        rules_to_suppress:
          - {id: iam-wildcard-action, reason: The log group is the role's own.}
          - {id: iam-write-wildcard, reason: Nothing to hide.}
          - {id: suppression-reason, reason: Not allowed.}
          - {id: no-such-rule, reason: A typo.}
",
                &[
                    "8: stale-suppression: Role suppresses gbg iam-write-wildcard, which does not fire on it: remove the \
                     suppression",
                    "9: stale-suppression: Role suppresses gbg suppression-reason, which is no rule a suppression can \
                     accept (see RULES in xtask/src/lint/rules.rs): fix the id or remove the suppression",
                    "10: stale-suppression: Role suppresses gbg no-such-rule, which is no rule a suppression can accept \
                     (see RULES in xtask/src/lint/rules.rs): fix the id or remove the suppression",
                ],
            ),
        ];
        for (metadata, expected) in cases {
            let text = role(metadata);
            let template = Template::parse(Path::new("bad.yaml"), &text).unwrap();
            let lines: Vec<String> = check(&template, "bad.yaml")
                .into_iter()
                .map(|finding| format!("{}: {}: {}", finding.line, finding.rule, finding.message))
                .collect();
            assert_eq!(lines, *expected, "{metadata}");
        }
    }

    #[test]
    fn the_pair_table_names_real_ids() {
        for (checkov, nag) in CHECKOV_CFN_NAG {
            assert!(checkov.starts_with("CKV_AWS_"), "{checkov}");
            assert!(!nag.is_empty(), "{checkov} has no cfn_nag id");
            for id in *nag {
                let (kind, number) = id.split_at(1);
                assert!(matches!(kind, "W" | "F") && number.parse::<u32>().is_ok(), "{checkov}: {id}");
            }
        }
    }

    #[test]
    fn account_ids_are_twelve_digits_exactly() {
        let cases = [
            ("arn:aws:iam::111111111111:root", Some("111111111111")),
            ("1111111111111", None),
            ("11111111111", None),
            ("port 8080", None),
            ("^\\d{12}$", None),
        ];
        for (text, expected) in cases {
            assert_eq!(account_id_in(text), expected, "{text}");
        }
    }

    #[test]
    fn regions_are_recognized_in_text() {
        let cases = [
            ("arn:aws:kms:eu-central-1:x", Some("eu-central-1")),
            ("ap-south-1", Some("ap-south-1")),
            ("us-gov-west-1", Some("us-gov-west-1")),
            ("web-release-eu-central-1", Some("eu-central-1")),
            ("https://git-codecommit.${AWS::Region}.amazonaws.com", None),
            ("aws/codebuild/amazonlinux-x86_64-standard:5.0", None),
            ("web-release-eu", None),
            ("us-east", None),
        ];
        for (text, expected) in cases {
            assert_eq!(region_in(text).as_deref(), expected, "{text}");
        }
    }
}
