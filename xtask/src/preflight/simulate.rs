//! The access map through IAM's own evaluator, and the service principals' calls through ours.
//!
//! For a call of one of our roles, `iam:SimulatePrincipalPolicy` in the role's account evaluates
//! the role's side: its identity policies (inline and attached), its permissions boundary, and
//! the SCPs of its organization, with the request context we pass as `ContextEntries`
//! (https://docs.aws.amazon.com/IAM/latest/APIReference/API_SimulatePrincipalPolicy.html). What
//! the simulator cannot do for us, and what we do instead:
//! - a resource policy is taken only with a `CallerArn`, which "can specify only the ARN of an IAM
//!   user", never a role, and "is required if you include a ResourcePolicy and the
//!   PolicySourceArn is not the ARN for an IAM user" (same page). Our principals are roles, so the
//!   simulator cannot weigh a bucket, key, repository or trust policy for them (and for
//!   `sts:AssumeRole` it ignores the resource policy even for a user: aws/aws-cli#10314). The
//!   resource's side is therefore the resource's LIVE policy (GetBucketPolicy, GetKeyPolicy,
//!   GetRepositoryPolicy, GetRole's trust policy), read in the owner's account and region and
//!   evaluated by our evaluator (`access/policy.rs`) with AWS's combining rules
//!   (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html):
//!   an explicit deny anywhere decides, across accounts both sides must allow, a key policy must
//!   allow. Each row says which side was simulated and which evaluated;
//! - a cross-account call's resource side belongs to the other account: the identity side is
//!   simulated in the principal's account, the resource side read from the owner's;
//! - the simulator "does not support" service principals (`CallerArn` above; the IAM user guide's
//!   policy simulator page:
//!   https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_testing-policies.html), so
//!   a service's `sts:AssumeRole` on our role is evaluated by our evaluator over the role's live
//!   trust policy, and any other call of a service principal over the resource's live policy;
//! - a map resource's `*` (any object key, any log stream) is simulated with the map's sample
//!   name (`Entry::sample_resource`), and the row says so.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use aws_sdk_iam::types::{ContextEntry, ContextKeyTypeEnum, PolicyEvaluationDecisionType};
use aws_sdk_s3::error::ProvideErrorMetadata;
use serde_json::Value;

use super::{Check, Kind, emulator_gap};
use crate::access::decide::{self, Outcome as Decided, ResourceKind, ResourcePolicy};
use crate::access::map::Entry;
use crate::access::policies::Policies;
use crate::access::policy::{Policy, Request};
use crate::aws::{Aws, AwsResultExt};
use crate::config::Config;
use crate::output::Progress;

/// One `SimulatePrincipalPolicy` request: a role, one resource, the actions it takes there, one
/// request context. The calls of one role on one resource with one context share a request.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Simulation {
    pub role: String,
    /// The resource as simulated (`Entry::sample_resource`).
    pub resource: String,
    pub actions: Vec<String>,
    pub context: BTreeMap<String, Vec<String>>,
}

/// IAM's decision on one action, for the role's side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentitySide {
    pub decision: Decision,
    /// The matched statements: `<policy id> (<policy type>)`.
    pub statements: Vec<String>,
    /// Condition keys the policies needed that the request did not carry.
    pub missing_context: Vec<String>,
    /// `Some(false)` when the organization's SCPs deny it.
    pub allowed_by_organizations: Option<bool>,
}

/// The simulator's `EvalDecision`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    ExplicitDeny,
    ImplicitDeny,
}

/// A resource's live policy and what kind it is.
#[derive(Clone, Debug)]
pub struct LivePolicy {
    pub policy: Policy,
    pub kind: ResourceKind,
}

/// Simulates every call of our roles in `entries`; one check per call.
pub async fn simulate_all(
    aws: &Aws,
    config: &Config,
    policies: &Policies,
    entries: &[Entry],
    progress: &Progress,
) -> Result<Vec<Check>> {
    let ours: Vec<&Entry> = entries
        .iter()
        .filter(|entry| {
            entry.principal.starts_with("arn:aws:iam::")
                && entry.principal.contains(":role/")
                && policies.identity.contains_key(&entry.principal)
        })
        .collect();
    let mut answers: BTreeMap<(String, String, String, String), IdentitySide> = BTreeMap::new();
    let simulations = group(&ours);
    for (index, simulation) in simulations.iter().enumerate() {
        progress.update(format!("simulating {}/{}", index + 1, simulations.len()));
        let account = arn_account(&simulation.role);
        let iam = aws.iam(account, &config.tools.region).await?;
        let context = serde_json::to_string(&simulation.context).unwrap_or_default();
        for (action, side) in simulate(&iam, simulation).await? {
            answers.insert((simulation.role.clone(), action, simulation.resource.clone(), context.clone()), side);
        }
    }
    let mut live = LiveCache::default();
    let mut checks = Vec::new();
    for entry in ours {
        let resource = entry.sample_resource();
        let context = serde_json::to_string(&entry.context).unwrap_or_default();
        let key = (entry.principal.clone(), entry.action.to_lowercase(), resource.clone(), context);
        let identity = answers.get(&key).with_context(|| {
            format!(
                "IAM's simulator returned no result for {} {} on {resource}; run `cargo xtask verify` again",
                entry.principal, entry.action
            )
        })?;
        let policy = live.get(aws, config, &entry.action, &resource).await?;
        let request = request(entry, &resource);
        let (allowed, verdict) = combine(&request, identity, policy.as_ref().map(|(policy, _)| policy), &entry.owner);
        let mut detail = format!(
            "role side: IAM SimulatePrincipalPolicy in {} said {}",
            request.principal_account,
            identity.describe()
        );
        match &policy {
            Some((_, source)) => detail.push_str(&format!(
                "; resource side: {source} (account {}), evaluated by our evaluator (IAM's simulator takes a resource policy only with an IAM user as caller)",
                entry.owner
            )),
            None => detail.push_str("; no resource policy applies"),
        }
        if resource != entry.resource {
            detail.push_str(&format!("; `*` simulated as {resource}"));
        }
        detail.push_str(&format!(": {verdict}"));
        let mut check = Check::new(Kind::Simulation, subject(entry), place(entry), allowed, detail);
        check.entry = Some(entry.clone());
        checks.push(check);
    }
    Ok(checks)
}

/// Evaluates every call of a service principal in `entries` against the resource's live policy.
pub async fn service_principals(aws: &Aws, config: &Config, entries: &[Entry]) -> Result<Vec<Check>> {
    let mut live = LiveCache::default();
    let mut checks = Vec::new();
    for entry in entries.iter().filter(|entry| entry.by_service_principal()) {
        let kind = if entry.action == "sts:AssumeRole" { Kind::Trust } else { Kind::ServiceGrant };
        let resource = entry.sample_resource();
        // Locally the emulator holds trust policies (IAM), but neither the bucket policies nor
        // key policies to trust.
        let policy_kind = match policy_owner(&entry.action, &resource) {
            Some(PolicyOwner::Bucket(_)) => Some(Kind::BucketPolicy),
            Some(PolicyOwner::Key { .. }) => Some(Kind::KeyPolicy),
            _ => None,
        };
        if aws.is_local()
            && let Some(gap) = policy_kind.and_then(emulator_gap)
        {
            let mut check = Check::gap(kind, subject(entry), gap);
            check.entry = Some(entry.clone());
            checks.push(check);
            continue;
        }
        let policy = live.get(aws, config, &entry.action, &resource).await?;
        let (allowed, detail) = service_verdict(entry, &resource, policy.as_ref());
        let mut check = Check::new(kind, subject(entry), place(entry), allowed, detail);
        check.entry = Some(entry.clone());
        checks.push(check);
    }
    Ok(checks)
}

/// A service principal's call decided by the resource's live policy alone: a service has no
/// identity policies, so only a resource policy can allow it.
pub fn service_verdict(entry: &Entry, resource: &str, policy: Option<&(LivePolicy, String)>) -> (bool, String) {
    let service = entry.principal.trim_start_matches("service:");
    let Some((live, source)) = policy else {
        return (false, format!("{resource} has no resource policy, and only a resource policy can allow {service}"));
    };
    let request = request(entry, resource);
    let outcome = decide::decide(
        &request,
        None,
        Some(ResourcePolicy { policy: &live.policy, owner: &entry.owner, kind: live.kind }),
    );
    let evaluated =
        format!("{source}, evaluated by our evaluator (IAM's simulator cannot simulate a service principal)");
    match outcome {
        // `decide` lists a stand-in for the identity side (`-`); a service has none.
        Decided::Allowed(by) => {
            let by: Vec<String> = by
                .iter()
                .filter(|found| found.statement != "-")
                .map(|found| format!("statement {} of {}", found.statement, found.source))
                .collect();
            (true, format!("{evaluated}: {service} allowed by {}", by.join(" and ")))
        }
        Decided::Denied(reason) => (false, format!("{evaluated}: {reason}")),
    }
}

/// Groups `entries` into simulations: one per role, resource and request context.
pub fn group(entries: &[&Entry]) -> Vec<Simulation> {
    let mut groups: BTreeMap<(String, String, String), Simulation> = BTreeMap::new();
    for entry in entries {
        let resource = entry.sample_resource();
        let context = serde_json::to_string(&entry.context).unwrap_or_default();
        let simulation = groups.entry((entry.principal.clone(), resource.clone(), context)).or_insert_with(|| {
            Simulation { role: entry.principal.clone(), resource, actions: Vec::new(), context: entry.context.clone() }
        });
        if !simulation.actions.contains(&entry.action) {
            simulation.actions.push(entry.action.clone());
        }
    }
    groups.into_values().collect()
}

/// Runs one simulation, every page of it (`IsTruncated`/`Marker`, through the SDK's paginator);
/// IAM's decision per action, lowercase.
pub async fn simulate(iam: &aws_sdk_iam::Client, simulation: &Simulation) -> Result<BTreeMap<String, IdentitySide>> {
    let mut pages = iam
        .simulate_principal_policy()
        .policy_source_arn(&simulation.role)
        .set_action_names(Some(simulation.actions.clone()))
        .resource_arns(&simulation.resource)
        .set_context_entries(Some(context_entries(&simulation.context)))
        .into_paginator()
        .send();
    let mut sides = BTreeMap::new();
    while let Some(page) = pages.next().await {
        let page = page.aws(iam).with_context(|| {
            format!(
                "simulating {} for {} on {} (iam:SimulatePrincipalPolicy in its account); the operator needs that permission there",
                simulation.actions.join(", "),
                simulation.role,
                simulation.resource
            )
        })?;
        for result in page.evaluation_results() {
            let decision = match result.eval_decision() {
                PolicyEvaluationDecisionType::Allowed => Decision::Allowed,
                PolicyEvaluationDecisionType::ExplicitDeny => Decision::ExplicitDeny,
                _ => Decision::ImplicitDeny,
            };
            let statements = result
                .matched_statements()
                .iter()
                .map(|statement| {
                    let id = statement.source_policy_id().unwrap_or("?");
                    match statement.source_policy_type() {
                        Some(kind) => format!("{id} ({})", kind.as_str()),
                        None => id.to_string(),
                    }
                })
                .collect();
            let side = IdentitySide {
                decision,
                statements,
                missing_context: result.missing_context_values().to_vec(),
                allowed_by_organizations: result
                    .organizations_decision_detail()
                    .map(|detail| detail.allowed_by_organizations()),
            };
            sides.insert(result.eval_action_name().to_lowercase(), side);
        }
    }
    if let Some(action) = simulation.actions.iter().find(|action| !sides.contains_key(&action.to_lowercase())) {
        bail!("IAM's simulator returned no result for {action} of {} on {}", simulation.role, simulation.resource);
    }
    Ok(sides)
}

/// The request context as the simulator takes it: booleans typed as such, several values as a
/// list (https://docs.aws.amazon.com/IAM/latest/APIReference/API_ContextEntry.html).
pub fn context_entries(context: &BTreeMap<String, Vec<String>>) -> Vec<ContextEntry> {
    context
        .iter()
        .map(|(key, values)| {
            let boolean = values.iter().all(|value| value == "true" || value == "false");
            let kind = match (boolean, values.len()) {
                (true, 1) => ContextKeyTypeEnum::Boolean,
                (true, _) => ContextKeyTypeEnum::BooleanList,
                (false, 1) => ContextKeyTypeEnum::String,
                (false, _) => ContextKeyTypeEnum::StringList,
            };
            ContextEntry::builder()
                .context_key_name(key)
                .set_context_key_values(Some(values.clone()))
                .context_key_type(kind)
                .build()
        })
        .collect()
}

/// AWS's combining rules over IAM's verdict on the role's side and our evaluator's on the live
/// resource policy (the rules `access/decide.rs` cites). Returns whether it is allowed and why.
pub fn combine(
    request: &Request,
    identity: &IdentitySide,
    resource: Option<&LivePolicy>,
    owner: &str,
) -> (bool, String) {
    if identity.decision == Decision::ExplicitDeny {
        return (false, format!("explicitly denied on the role's side by {}", identity.statements.join(", ")));
    }
    let identity_allows = identity.decision == Decision::Allowed;
    let missing_identity = || format!("no policy of the role allows it ({})", identity.describe());
    let Some(resource) = resource else {
        return match identity_allows {
            true => (true, "allowed".into()),
            false => (false, missing_identity()),
        };
    };
    let verdict = resource.policy.evaluate(request);
    if let Some(deny) = &verdict.denies {
        return (false, format!("statement {} of {} denies it", deny.statement, deny.source));
    }
    let same_account = request.principal_account == owner;
    let missing_resource = || {
        format!(
            "{} (account {owner}) grants {} {} neither itself nor through its account",
            resource.policy.source, request.principal, request.action
        )
    };
    match (&verdict.allows, resource.kind, same_account) {
        (None, ResourceKind::Key, _) => (false, missing_resource()),
        (Some(allow), _, true) if verdict.allows_principal_itself => {
            (true, format!("allowed by statement {} of {}", allow.statement, allow.source))
        }
        (Some(allow), _, _) if identity_allows => {
            (true, format!("allowed on both sides (statement {} of {})", allow.statement, allow.source))
        }
        (Some(_), _, _) => (false, missing_identity()),
        (None, ResourceKind::Other, true) if identity_allows => (true, "allowed by the role's policies".into()),
        (None, ResourceKind::Other, true) => (false, missing_identity()),
        (None, ResourceKind::Other, false) => (false, missing_resource()),
    }
}

impl IdentitySide {
    /// `allowed (by web-build-policy (role))`, `implicitDeny`, ...
    pub fn describe(&self) -> String {
        let decision = match self.decision {
            Decision::Allowed => "allowed",
            Decision::ExplicitDeny => "explicitDeny",
            Decision::ImplicitDeny => "implicitDeny",
        };
        let mut text = decision.to_string();
        if !self.statements.is_empty() {
            text.push_str(&format!(" (matched {})", self.statements.join(", ")));
        }
        if !self.missing_context.is_empty() {
            text.push_str(&format!(", missing context {}", self.missing_context.join(", ")));
        }
        if self.allowed_by_organizations == Some(false) {
            text.push_str(", denied by the organization's SCPs");
        }
        text
    }
}

/// The live policies read so far, by resource.
#[derive(Default)]
struct LiveCache {
    /// By the ARN the policy belongs to (bucket, key, repository, role).
    policies: BTreeMap<String, Option<(LivePolicy, String)>>,
}

impl LiveCache {
    /// The live policy that bears on `action` on `resource`, with its source for messages.
    async fn get(
        &mut self,
        aws: &Aws,
        config: &Config,
        action: &str,
        resource: &str,
    ) -> Result<Option<(LivePolicy, String)>> {
        let Some(owner) = policy_owner(action, resource) else { return Ok(None) };
        if let Some(found) = self.policies.get(&owner.arn()) {
            return Ok(found.clone());
        }
        let found = match &owner {
            PolicyOwner::Key { arn, account, region } => {
                let kms = aws.kms(account, region).await?;
                // Every key use is decided by its key policy: a key that is not there is a
                // topology not deployed, not a policy to skip.
                let Some(document) = key_policy(&kms, arn).await? else {
                    bail!("key {arn} of the access map does not exist; deploy the key stacks (`cargo xtask deploy`)")
                };
                Some((document, ResourceKind::Key, format!("the live key policy of {arn}")))
            }
            PolicyOwner::Bucket(bucket) => {
                let Some(region) = bucket_region(config, bucket) else {
                    bail!(
                        "bucket {bucket} of the access map is not a bucket of the config; fix the map (`access/map.rs`)"
                    )
                };
                let s3 = aws.s3(&config.tools.account, &region).await?;
                bucket_policy(&s3, bucket)
                    .await?
                    .map(|document| (document, ResourceKind::Other, format!("the live bucket policy of {bucket}")))
            }
            PolicyOwner::Repository { arn, account, region, name } => {
                let ecr = aws.ecr(account, region).await?;
                repository_policy(&ecr, account, name)
                    .await?
                    .map(|document| (document, ResourceKind::Other, format!("the live repository policy of {arn}")))
            }
            PolicyOwner::Role { arn, account } => {
                let iam = aws.iam(account, &config.tools.region).await?;
                trust_policy(&iam, arn)
                    .await?
                    .map(|document| (document, ResourceKind::Other, format!("the live trust policy of {arn}")))
            }
        };
        let parsed = match found {
            Some((document, kind, source)) => {
                let policy = Policy::parse(&source, &document)
                    .with_context(|| format!("{source} uses policy language our evaluator does not read"))?;
                Some((LivePolicy { policy, kind }, source))
            }
            None => None,
        };
        self.policies.insert(owner.arn(), parsed.clone());
        Ok(parsed)
    }
}

/// What holds the resource policy of a call, if anything does.
#[derive(Clone, Debug, PartialEq, Eq)]
enum PolicyOwner {
    Key { arn: String, account: String, region: String },
    Bucket(String),
    Repository { arn: String, account: String, region: String, name: String },
    Role { arn: String, account: String },
}

impl PolicyOwner {
    fn arn(&self) -> String {
        match self {
            PolicyOwner::Bucket(bucket) => format!("arn:aws:s3:::{bucket}"),
            PolicyOwner::Key { arn, .. } | PolicyOwner::Repository { arn, .. } | PolicyOwner::Role { arn, .. } => {
                arn.clone()
            }
        }
    }
}

/// The resource whose policy bears on `action` on `resource` (as `access.rs` decides it).
fn policy_owner(action: &str, resource: &str) -> Option<PolicyOwner> {
    let parts: Vec<&str> = resource.splitn(6, ':').collect();
    let (region, account) = (parts.get(3).copied().unwrap_or_default(), parts.get(4).copied().unwrap_or_default());
    if action.starts_with("kms:") && resource.starts_with("arn:aws:kms:") {
        return Some(PolicyOwner::Key { arn: resource.into(), account: account.into(), region: region.into() });
    }
    if let Some(path) = resource.strip_prefix("arn:aws:s3:::") {
        return Some(PolicyOwner::Bucket(path.split('/').next().unwrap_or_default().to_string()));
    }
    if action.starts_with("ecr:")
        && let Some(name) = parts.get(5).and_then(|rest| rest.strip_prefix("repository/"))
    {
        return Some(PolicyOwner::Repository {
            arn: resource.into(),
            account: account.into(),
            region: region.into(),
            name: name.into(),
        });
    }
    if action == "sts:AssumeRole" && resource.starts_with("arn:aws:iam::") && resource.contains(":role/") {
        return Some(PolicyOwner::Role { arn: resource.into(), account: account.into() });
    }
    None
}

/// The region of one of the config's buckets (artifact or access-log bucket).
pub fn bucket_region(config: &Config, bucket: &str) -> Option<String> {
    config
        .regions()
        .into_iter()
        .find(|region| config.bucket_name(region) == bucket || config.log_bucket_name(region) == bucket)
}

/// A key's live policy; its one policy is named `default`
/// (https://docs.aws.amazon.com/kms/latest/APIReference/API_GetKeyPolicy.html).
pub async fn key_policy(kms: &aws_sdk_kms::Client, key_arn: &str) -> Result<Option<Value>> {
    match kms.get_key_policy().key_id(key_arn).policy_name("default").send().await {
        Ok(reply) => {
            reply.policy().map(|text| parse_document(text, &format!("the key policy of {key_arn}"))).transpose()
        }
        Err(error) if error.as_service_error().is_some_and(|service| service.is_not_found_exception()) => Ok(None),
        Err(error) => {
            Err(error).aws(&kms).with_context(|| format!("reading the key policy of {key_arn} (kms:GetKeyPolicy)"))
        }
    }
}

/// A bucket's live policy; `NoSuchBucketPolicy` when it has none
/// (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketPolicy.html).
pub async fn bucket_policy(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<Option<Value>> {
    match s3.get_bucket_policy().bucket(bucket).send().await {
        Ok(reply) => {
            reply.policy().map(|text| parse_document(text, &format!("the bucket policy of {bucket}"))).transpose()
        }
        Err(error) if error.code() == Some("NoSuchBucketPolicy") => Ok(None),
        Err(error) => {
            Err(error).aws(&s3).with_context(|| format!("reading the bucket policy of {bucket} (s3:GetBucketPolicy)"))
        }
    }
}

/// A repository's live policy; `RepositoryPolicyNotFoundException` when it has none
/// (https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_GetRepositoryPolicy.html).
pub async fn repository_policy(ecr: &aws_sdk_ecr::Client, registry: &str, name: &str) -> Result<Option<Value>> {
    match ecr.get_repository_policy().registry_id(registry).repository_name(name).send().await {
        Ok(reply) => reply
            .policy_text()
            .map(|text| parse_document(text, &format!("the repository policy of {registry}/{name}")))
            .transpose(),
        Err(error)
            if error.as_service_error().is_some_and(|service| service.is_repository_policy_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(error) => Err(error)
            .aws(&ecr)
            .with_context(|| format!("reading the repository policy of {registry}/{name} (ecr:GetRepositoryPolicy)")),
    }
}

/// A role's live trust policy. GetRole returns it URL-encoded (RFC 3986)
/// (https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetRole.html, `AssumeRolePolicyDocument`).
pub async fn trust_policy(iam: &aws_sdk_iam::Client, role_arn: &str) -> Result<Option<Value>> {
    let name = role_arn.rsplit('/').next().unwrap_or(role_arn);
    match iam.get_role().role_name(name).send().await {
        Ok(reply) => {
            let Some(encoded) = reply.role().and_then(|role| role.assume_role_policy_document()) else {
                return Ok(None);
            };
            let text = percent_encoding::percent_decode_str(encoded)
                .decode_utf8()
                .with_context(|| format!("the trust policy of {role_arn} is not URL-encoded UTF-8"))?;
            parse_document(&text, &format!("the trust policy of {role_arn}")).map(Some)
        }
        Err(error) if error.as_service_error().is_some_and(|service| service.is_no_such_entity_exception()) => {
            bail!("role {role_arn} does not exist; deploy its stack (`cargo xtask deploy`)")
        }
        Err(error) => Err(error).aws(&iam).with_context(|| format!("reading role {role_arn} (iam:GetRole)")),
    }
}

fn parse_document(text: &str, what: &str) -> Result<Value> {
    serde_json::from_str(text).with_context(|| format!("{what} is not JSON"))
}

/// The request our evaluator judges for `entry` on the sampled `resource`.
fn request(entry: &Entry, resource: &str) -> Request {
    Request {
        principal: entry.principal.clone(),
        principal_account: entry.principal_account.clone(),
        action: entry.action.clone(),
        resource: resource.to_string(),
        context: entry.context.clone(),
    }
}

/// `web-build s3:PutObject arn:aws:s3:::bucket/*`.
fn subject(entry: &Entry) -> String {
    let who = match entry.principal.strip_prefix("service:") {
        Some(service) => service,
        None => entry.principal.rsplit('/').next().unwrap_or(&entry.principal),
    };
    format!("{who} {} {}", entry.action, entry.resource)
}

/// `principal account -> owner account`.
fn place(entry: &Entry) -> String {
    match (entry.principal_account.as_str(), entry.owner.as_str()) {
        ("", owner) => owner.to_string(),
        (principal, "") => principal.to_string(),
        (principal, owner) if principal == owner => principal.to_string(),
        (principal, owner) => format!("{principal} -> {owner}"),
    }
}

fn arn_account(arn: &str) -> &str {
    arn.split(':').nth(4).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    use serde_json::json;

    use super::*;
    use crate::access::map::Origin;
    use crate::aws::replay::{config, replay};
    use crate::output::Exit;
    use crate::preflight::Report;

    const XML: &str = "text/xml";
    const BUILD_ROLE: &str = "arn:aws:iam::111111111111:role/web-build";

    fn entry(principal: &str, action: &str, resource: &str, owner: &str) -> Entry {
        let principal_account = principal.split(':').nth(4).unwrap_or_default().to_string();
        Entry {
            actor: "test".into(),
            principal: principal.into(),
            principal_account,
            action: action.into(),
            resource: resource.into(),
            owner: owner.into(),
            context: BTreeMap::from([("aws:principalarn".to_string(), vec![principal.to_string()])]),
            origin: Origin::Code,
            doc: "https://docs.aws.amazon.com/",
        }
    }

    /// One `EvaluationResults` member of a SimulatePrincipalPolicy response.
    fn result(action: &str, resource: &str, decision: &str, policy: &str) -> String {
        format!(
            "<member><EvalActionName>{action}</EvalActionName><EvalResourceName>{resource}</EvalResourceName>\
             <EvalDecision>{decision}</EvalDecision><MatchedStatements><member><SourcePolicyId>{policy}</SourcePolicyId>\
             <SourcePolicyType>role</SourcePolicyType><StartPosition><Line>1</Line><Column>40</Column></StartPosition>\
             <EndPosition><Line>1</Line><Column>160</Column></EndPosition></member></MatchedStatements>\
             <MissingContextValues/><OrganizationsDecisionDetail><AllowedByOrganizations>true</AllowedByOrganizations>\
             </OrganizationsDecisionDetail></member>"
        )
    }

    /// A SimulatePrincipalPolicy response page.
    fn page(results: &[String], marker: Option<&str>) -> String {
        let (truncated, marker) = match marker {
            Some(marker) => ("true", format!("<Marker>{marker}</Marker>")),
            None => ("false", String::new()),
        };
        format!(
            "<SimulatePrincipalPolicyResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">\
             <SimulatePrincipalPolicyResult><EvaluationResults>{}</EvaluationResults>\
             <IsTruncated>{truncated}</IsTruncated>{marker}</SimulatePrincipalPolicyResult>\
             <ResponseMetadata><RequestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestId></ResponseMetadata>\
             </SimulatePrincipalPolicyResponse>",
            results.join("")
        )
    }

    /// Response shape from AWS's API reference:
    /// https://docs.aws.amazon.com/IAM/latest/APIReference/API_SimulatePrincipalPolicy.html.
    /// An allowed action and an explicitly denied one, on two pages (`IsTruncated`/`Marker`):
    /// both are read, the denial with its matched statement, and it fails the verification
    /// (exit 1). The requests carry the role, the actions, the sampled resource, the request
    /// context as typed `ContextEntries`, the marker on the second page, and no
    /// `ResourcePolicy` (a role can be simulated with one only with an IAM user as caller).
    #[tokio::test]
    async fn an_allowed_and_an_explicitly_denied_action_are_reported_and_the_denial_fails() {
        let object = "arn:aws:s3:::web-artifacts-111111111111-eu-west-1/*";
        let sampled = "arn:aws:s3:::web-artifacts-111111111111-eu-west-1/sample";
        let http = replay(&[
            (200, XML, &page(&[result("s3:PutObject", sampled, "allowed", "build-and-push")], Some("page-2"))),
            (200, XML, &page(&[result("s3:DeleteObject", sampled, "explicitDeny", "no-deletes")], None)),
        ]);
        let iam = aws_sdk_iam::Client::new(&config(&http));
        let put = entry(BUILD_ROLE, "s3:PutObject", object, "111111111111");
        let delete = entry(BUILD_ROLE, "s3:DeleteObject", object, "111111111111");
        let simulations = group(&[&put, &delete]);
        assert_eq!(simulations.len(), 1, "one role, one resource, one context: one request");
        assert_eq!(simulations[0].resource, sampled);

        let sides = simulate(&iam, &simulations[0]).await.unwrap();
        assert_eq!(sides["s3:putobject"].decision, Decision::Allowed);
        let denied = &sides["s3:deleteobject"];
        assert_eq!(denied.decision, Decision::ExplicitDeny);
        assert_eq!(denied.statements, ["no-deletes (role)"]);

        let (allowed, _) = combine(&request(&put, sampled), &sides["s3:putobject"], None, "111111111111");
        assert!(allowed);
        let (allowed, why) = combine(&request(&delete, sampled), denied, None, "111111111111");
        assert!(!allowed && why.contains("explicitly denied") && why.contains("no-deletes"), "{why}");
        let report = Report {
            checks: vec![
                Check::new(Kind::Simulation, subject(&put), place(&put), true, "allowed".into()),
                Check::new(Kind::Simulation, subject(&delete), place(&delete), allowed, why),
            ],
            not_ours: 0,
        };
        assert!(matches!(report.exit().unwrap_err().downcast_ref::<Exit>(), Some(Exit(1))));

        let requests: Vec<String> = http.bodies();
        assert_eq!(requests.len(), 2, "both pages were read");
        let first = &requests[0];
        for expected in [
            "Action=SimulatePrincipalPolicy",
            "PolicySourceArn=arn%3Aaws%3Aiam%3A%3A111111111111%3Arole%2Fweb-build",
            "ActionNames.member.1=s3%3APutObject",
            "ActionNames.member.2=s3%3ADeleteObject",
            "ResourceArns.member.1=arn%3Aaws%3As3%3A%3A%3Aweb-artifacts-111111111111-eu-west-1%2Fsample",
            "ContextEntries.member.1.ContextKeyName=aws%3Aprincipalarn",
            "ContextEntries.member.1.ContextKeyValues.member.1=arn%3Aaws%3Aiam%3A%3A111111111111%3Arole%2Fweb-build",
            "ContextEntries.member.1.ContextKeyType=string",
        ] {
            assert!(first.contains(expected), "{expected} not in {first}");
        }
        assert!(!first.contains("ResourcePolicy") && !first.contains("CallerArn"), "{first}");
        assert!(requests[1].contains("Marker=page-2"), "{}", requests[1]);
    }

    /// Cross-account, the resource's live policy must allow too; a key policy must allow; an
    /// allow of the role itself suffices in its own account (`access/decide.rs`'s rules).
    #[test]
    fn the_role_side_and_the_live_resource_side_combine_as_aws_combines_them() {
        let allowed = IdentitySide {
            decision: Decision::Allowed,
            statements: vec!["p (role)".into()],
            missing_context: vec![],
            allowed_by_organizations: Some(true),
        };
        let implicit = IdentitySide { decision: Decision::ImplicitDeny, statements: vec![], ..allowed.clone() };
        let live = |kind, document| LivePolicy { policy: Policy::parse("live", &document).unwrap(), kind };
        let to_account = live(
            ResourceKind::Other,
            json!({"Statement": [{"Sid": "Tools", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"}, "Action": "ecr:PutImage", "Resource": "*"}]}),
        );
        let nothing = live(ResourceKind::Other, json!({"Statement": []}));
        let repository = "arn:aws:ecr:eu-west-1:222222222222:repository/web";
        let push = request(&entry(BUILD_ROLE, "ecr:PutImage", repository, "222222222222"), repository);
        let check = |identity, resource, owner| combine(&push, identity, resource, owner).0;
        assert!(check(&allowed, Some(&to_account), "222222222222"));
        assert!(!check(&implicit, Some(&to_account), "222222222222"), "cross-account needs the role's side");
        assert!(!check(&allowed, Some(&nothing), "222222222222"), "cross-account needs the resource's side");
        assert!(check(&allowed, Some(&nothing), "111111111111"), "in one account the role's side suffices");
        let key = live(ResourceKind::Key, json!({"Statement": []}));
        assert!(!check(&allowed, Some(&key), "111111111111"), "a key policy must allow");
    }

    /// Response shape from AWS's API reference:
    /// https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetRole.html (the trust policy
    /// URL-encoded). A trust policy that admits CodePipeline but not CodeBuild fails CodeBuild's
    /// `sts:AssumeRole`, and passes CodePipeline's.
    #[tokio::test]
    async fn a_trust_policy_that_lacks_the_service_fails() {
        let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "codepipeline.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
        let encoded = utf8_percent_encode(&trust.to_string(), NON_ALPHANUMERIC).to_string();
        let response = format!(
            "<GetRoleResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><GetRoleResult><Role>\
             <Path>/</Path><AssumeRolePolicyDocument>{encoded}</AssumeRolePolicyDocument>\
             <RoleId>AROADBQP57FF2AEXAMPLE</RoleId><RoleName>web-build</RoleName><Arn>{BUILD_ROLE}</Arn>\
             <CreateDate>2024-04-18T05:01:58Z</CreateDate><MaxSessionDuration>3600</MaxSessionDuration>\
             </Role></GetRoleResult><ResponseMetadata><RequestId>df37e965-EXAMPLE</RequestId></ResponseMetadata>\
             </GetRoleResponse>"
        );
        let http = replay(&[(200, XML, &response)]);
        let iam = aws_sdk_iam::Client::new(&config(&http));
        let document = trust_policy(&iam, BUILD_ROLE).await.unwrap().expect("a trust policy");
        assert_eq!(document, trust);
        let policy = Policy::parse("the live trust policy of web-build", &document).unwrap();
        let live = (LivePolicy { policy, kind: ResourceKind::Other }, "the live trust policy of web-build".to_string());
        let mut codebuild = entry("service:codebuild.amazonaws.com", "sts:AssumeRole", BUILD_ROLE, "111111111111");
        codebuild.principal_account = String::new();
        codebuild.context.clear();
        let (allowed, detail) = service_verdict(&codebuild, BUILD_ROLE, Some(&live));
        assert!(!allowed, "{detail}");
        assert!(detail.contains("cannot simulate a service principal"), "{detail}");
        let mut codepipeline = codebuild.clone();
        codepipeline.principal = "service:codepipeline.amazonaws.com".into();
        let (allowed, detail) = service_verdict(&codepipeline, BUILD_ROLE, Some(&live));
        assert!(allowed, "{detail}");
        assert!(!detail.contains("operator"), "no stand-in identity side for a service: {detail}");
        let (allowed, _) = service_verdict(&codebuild, BUILD_ROLE, None);
        assert!(!allowed, "no resource policy: nothing can allow a service");
        let request = http.bodies().remove(0);
        assert!(request.contains("Action=GetRole") && request.contains("RoleName=web-build"), "{request}");
    }

    /// The request context is typed as the simulator wants it (ContextEntry's reference:
    /// https://docs.aws.amazon.com/IAM/latest/APIReference/API_ContextEntry.html).
    #[test]
    fn the_context_is_typed() {
        let entries = context_entries(&BTreeMap::from([
            ("aws:securetransport".to_string(), vec!["true".to_string()]),
            (
                "kms:viaservice".to_string(),
                vec!["s3.eu-west-1.amazonaws.com".to_string(), "s3.us-east-1.amazonaws.com".to_string()],
            ),
        ]));
        assert_eq!(entries[0].context_key_type(), Some(&ContextKeyTypeEnum::Boolean));
        assert_eq!(entries[1].context_key_type(), Some(&ContextKeyTypeEnum::StringList));
    }
}
