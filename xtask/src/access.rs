//! The access proof: every AWS call a role of the running system makes, checked against the
//! policies we ship, with AWS's evaluation rules, before AWS is touched.
//!
//! - `calls.rs`: what a recorded call (`aws/record.rs`) asks of IAM (action, resource, owner,
//!   the condition keys AWS sets);
//! - `policies.rs`: every identity, trust, bucket, key and repository policy of the deployed
//!   topology, rendered from the templates for the stacks as deployed;
//! - `policy.rs` and `decide.rs`: one policy's verdict and AWS's rules for combining them.
//!
//! [`prove`] runs each recorded call through them. The calls come from the pipeline rehearsal
//! (`cargo xtask pipeline run --local`), which records every call of the source, the build's
//! process, the cross-region copies, the role assumptions and the deploy actions; `cargo xtask
//! verify --local` proves them and exits 1 on a denied one.

pub mod calls;
pub mod decide;
pub mod map;
pub mod policies;
pub mod policy;

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::aws::record::Call;
use crate::config::Config;
use crate::output::{Printer, table};
use decide::{Outcome, ResourceKind, ResourcePolicy};
use map::{Entry, OPERATOR};
use policies::Policies;
use policy::Request;

/// One authorization, proven or not.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// The role that made the call (or the service principal, or `operator`).
    pub actor: String,
    /// Who makes the call, in words (the map's actor), or `recorded` for a recorded call.
    pub by: String,
    /// The recorded call: `S3 PutObject`.
    pub call: String,
    pub action: String,
    pub resource: String,
    pub allowed: bool,
    /// The statements that allow it, or why it is denied.
    pub detail: String,
    /// How many recorded calls needed it.
    pub count: usize,
}

/// Proves every call of `calls` against `policies`, and that each is on the access map
/// (`map.rs`); one finding per (actor, action, resource).
pub fn prove(calls: &[Call], config: &Config, policies: &Policies) -> Result<Vec<Finding>> {
    let map = &map::entries(config, policies)?;
    if let Some(key) = foreign_key(calls, policies) {
        bail!(
            "the recorded calls name the KMS key {key}, which is none of the deployed topology's keys: they were \
             recorded against another deployment (the emulator makes new key ids each time it starts). Record them \
             again: `cargo xtask pipeline run --local`"
        );
    }
    let mut findings: BTreeMap<(String, String, String), Finding> = BTreeMap::new();
    for call in calls {
        let (actor, actor_account) = calls::principal(call)?;
        let ours = policies.identity.contains_key(&actor);
        let needs = match calls::needs(call, config, &policies.bucket_keys) {
            Ok(needs) => needs,
            // The operator's calls to services whose resources hold no policy of ours are its
            // own IAM's to decide (CloudFormation, EC2, ...): listed, not proven.
            Err(_) if !ours && !calls::WITH_RESOURCE_POLICIES.contains(&call.service.as_str()) => {
                let key = (actor.clone(), format!("{}:{}", call.service, call.operation), "*".to_string());
                findings.entry(key).and_modify(|finding| finding.count += 1).or_insert_with(|| Finding {
                    actor: actor.clone(),
                    by: "recorded".into(),
                    call: format!("{} {}", call.service, call.operation),
                    action: format!("{}:{}", call.service.to_lowercase(), call.operation),
                    resource: "*".into(),
                    allowed: true,
                    detail: "the operator's own IAM policies decide; no resource policy of ours applies".into(),
                    count: 1,
                });
                continue;
            }
            Err(error) => return Err(error),
        };
        for need in needs {
            let key = (actor.clone(), need.action.clone(), need.resource.clone());
            // Every call our roles and the operator make must be one the map lists: a call the
            // map does not know is a call nothing else proves (IAM's simulator on AWS included).
            if !on_map(map, &actor, ours, &need) {
                findings.insert(
                    key,
                    Finding {
                        actor: actor.clone(),
                        by: "recorded".into(),
                        call: format!("{} {}", call.service, call.operation),
                        action: need.action.clone(),
                        resource: need.resource.clone(),
                        allowed: false,
                        detail: "the call is not on the access map: add it to xtask/src/access/map.rs with AWS's \
                                 page for it, so that `cargo xtask verify` proves it on AWS too"
                            .into(),
                        count: 1,
                    },
                );
                continue;
            }
            let request = Request {
                principal: actor.clone(),
                principal_account: actor_account.clone(),
                action: need.action.clone(),
                resource: need.resource.clone(),
                context: need.context.clone(),
            };
            let resource = resource_policy(policies, &need).with_context(|| {
                format!("finding the policy of {} for {} {}", need.resource, call.service, call.operation)
            })?;
            // A role our templates do not define (the operator's) is not ours to prove: its own
            // IAM policies are taken as allowing; the resource side is still proven.
            let identity = policies.identity.get(&actor).map(Vec::as_slice);
            let outcome = decide::decide(&request, identity, resource);
            let (allowed, detail) = match outcome {
                Outcome::Allowed(by) => {
                    let by: Vec<String> =
                        by.iter().map(|found| format!("{} ({})", found.statement, found.source)).collect();
                    (true, format!("allowed by {}", by.join(" and ")))
                }
                Outcome::Denied(reason) => (false, reason),
            };
            // One finding per role, action and resource; every call is decided (its request
            // context may differ), and a denied one decides the finding.
            if let Some(finding) = findings.get_mut(&key) {
                finding.count += 1;
                if finding.allowed && !allowed {
                    finding.allowed = false;
                    finding.call = format!("{} {}", call.service, call.operation);
                    finding.detail = detail;
                }
                continue;
            }
            findings.insert(
                key,
                Finding {
                    actor: actor.clone(),
                    by: "recorded".into(),
                    call: format!("{} {}", call.service, call.operation),
                    action: need.action,
                    resource: need.resource,
                    allowed,
                    detail,
                    count: 1,
                },
            );
        }
    }
    Ok(findings.into_values().collect())
}

/// A KMS key id the recorded calls name (in an SSE-KMS header or a KMS request) that no key of
/// the deployed topology has: the sign of calls recorded against another deployment.
fn foreign_key(calls: &[Call], policies: &Policies) -> Option<String> {
    let key_id = |text: &str| text.rsplit('/').next().unwrap_or(text).to_string();
    let known: std::collections::BTreeSet<String> = policies.bucket_keys.values().map(|arn| key_id(arn)).collect();
    if known.is_empty() {
        return None;
    }
    calls.iter().find_map(|call| {
        let from_header = call.headers.get("x-amz-server-side-encryption-aws-kms-key-id").cloned();
        let from_body = (call.service == "KMS")
            .then(|| call.body.as_deref().and_then(|body| serde_json::from_str::<serde_json::Value>(body).ok()))
            .flatten()
            .and_then(|body| body["KeyId"].as_str().map(str::to_string));
        [from_header, from_body]
            .into_iter()
            .flatten()
            .filter(|key| !key.starts_with("alias/") && !key.contains(":alias/"))
            .find(|key| !known.contains(&key_id(key)))
    })
}

/// Whether a recorded `need` of `actor` is on the map: the same principal (the operator for a
/// role our templates do not define), action and a resource the entry's pattern covers.
fn on_map(map: &[Entry], actor: &str, ours: bool, need: &calls::Need) -> bool {
    map.iter().any(|entry| {
        let same_principal = if ours { entry.principal == actor } else { entry.principal == OPERATOR };
        same_principal && entry.action == need.action && policy::wildcard(&entry.resource, &need.resource)
    })
}

/// Proves every entry of the access map against `policies`: one finding per entry.
pub fn prove_map(map: &[Entry], policies: &Policies) -> Result<Vec<Finding>> {
    let mut findings = Vec::new();
    for entry in map {
        let need = calls::Need {
            action: entry.action.clone(),
            resource: entry.sample_resource(),
            owner: entry.owner.clone(),
            context: entry.context.clone(),
        };
        let request = Request {
            principal: entry.principal.clone(),
            principal_account: entry.principal_account.clone(),
            action: need.action.clone(),
            resource: need.resource.clone(),
            context: need.context.clone(),
        };
        let resource = resource_policy(policies, &need).with_context(|| {
            format!("finding the policy of {} for {} ({})", need.resource, entry.action, entry.actor)
        })?;
        // The operator's own policies are not ours (taken as allowing); a service principal has
        // none (its resource's policy alone decides).
        let identity = if entry.principal == OPERATOR || entry.by_service_principal() {
            None
        } else {
            Some(policies.identity.get(&entry.principal).map(Vec::as_slice).with_context(|| {
                format!(
                    "{} runs as {}, which no deployed stack defines: run `cargo xtask deploy`",
                    entry.actor, entry.principal
                )
            })?)
        };
        let (allowed, detail) = match decide::decide(&request, identity, resource) {
            Outcome::Allowed(by) => {
                let by: Vec<String> =
                    by.iter().map(|found| format!("{} ({})", found.statement, found.source)).collect();
                (true, format!("allowed by {}", by.join(" and ")))
            }
            Outcome::Denied(reason) => (false, reason),
        };
        findings.push(Finding {
            actor: entry.principal.clone(),
            by: entry.actor.clone(),
            call: entry.doc.to_string(),
            action: entry.action.clone(),
            resource: entry.resource.clone(),
            allowed,
            detail,
            count: 0,
        });
    }
    Ok(findings)
}

/// The resource policy that bears on `need`, if its resource has one of ours.
fn resource_policy<'a>(policies: &'a Policies, need: &'a calls::Need) -> Result<Option<ResourcePolicy<'a>>> {
    let action = need.action.as_str();
    let resource = need.resource.as_str();
    let other = |policy| Some(ResourcePolicy { policy, owner: &need.owner, kind: ResourceKind::Other });
    if action.starts_with("kms:") {
        let (region, account) =
            (resource.split(':').nth(3).unwrap_or_default(), resource.split(':').nth(4).unwrap_or_default());
        let policy = policies
            .keys
            .get(&(account.to_string(), region.to_string()))
            .with_context(|| format!("no key of the topology is {resource} (account {account}, region {region})"))?;
        return Ok(Some(ResourcePolicy { policy, owner: &need.owner, kind: ResourceKind::Key }));
    }
    if let Some(path) = resource.strip_prefix("arn:aws:s3:::") {
        let bucket = path.split('/').next().unwrap_or_default();
        return Ok(policies.buckets.get(bucket).and_then(other));
    }
    if action.starts_with("ecr:") && resource.contains(":repository/") {
        return Ok(policies.repositories.get(resource).and_then(other));
    }
    if action == "sts:AssumeRole" {
        return Ok(policies.trust.get(resource).and_then(other));
    }
    Ok(None)
}

/// Prints the findings' table, the denied ones as errors, and a summary line.
pub fn report(printer: &Printer, findings: &[Finding], calls: usize, source: &str) {
    print_findings(
        printer,
        findings,
        ["ROLE", "ACTION", "RESOURCE", "CALLS", "RESULT"],
        |finding| {
            [role_name(&finding.actor), finding.action.clone(), finding.resource.clone(), finding.count.to_string()]
        },
        |finding| {
            format!(
                "{} may not {} on {} ({}): {}",
                finding.actor, finding.action, finding.resource, finding.call, finding.detail
            )
        },
        &format!("authorizations for {calls} recorded calls ({source})"),
    );
}

/// Prints the access map's proof: a row per call of each actor, the denied ones as errors, and a
/// summary line.
pub fn report_map(printer: &Printer, findings: &[Finding]) {
    let actors: std::collections::BTreeSet<&str> = findings.iter().map(|finding| finding.by.as_str()).collect();
    print_findings(
        printer,
        findings,
        ["ACTOR", "AS", "ACTION", "RESOURCE", "RESULT"],
        |finding| {
            let principal = role_name(&finding.actor).trim_start_matches("service:").to_string();
            [finding.by.clone(), principal, finding.action.clone(), finding.resource.clone()]
        },
        |finding| {
            format!(
                "{} (as {}) may not {} on {}: {} (the call: {})",
                finding.by, finding.actor, finding.action, finding.resource, finding.detail, finding.call
            )
        },
        &format!("calls of {} actors on the access map", actors.len()),
    );
}

/// `arn:aws:iam::<account>:role/<name>` → `<name>` (anything else as it is).
fn role_name(principal: &str) -> String {
    principal.rsplit('/').next().unwrap_or(principal).to_string()
}

/// The table (`columns` of `row` plus the result), an error per denied finding, and the summary
/// `<count> <what>: <allowed> allowed, <denied> denied`.
fn print_findings(
    printer: &Printer,
    findings: &[Finding],
    header: [&str; 5],
    row: impl Fn(&Finding) -> [String; 4],
    denial: impl Fn(&Finding) -> String,
    what: &str,
) {
    let mut rows = vec![header.map(String::from).to_vec()];
    for finding in findings {
        let mut cells = row(finding).to_vec();
        cells.push(if finding.allowed { "allowed".into() } else { "DENIED".into() });
        rows.push(cells);
    }
    printer.text(table(&rows).trim_end());
    let denied: Vec<&Finding> = findings.iter().filter(|finding| !finding.allowed).collect();
    for finding in &denied {
        printer.error(denial(finding));
    }
    let summary =
        format!("{} {what}: {} allowed, {} denied", findings.len(), findings.len() - denied.len(), denied.len());
    if denied.is_empty() {
        printer.status("Proven", summary);
    } else {
        printer.error(summary);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn call(headers: &[(&str, &str)], body: Option<&str>, service: &str) -> Call {
        Call {
            principal: "arn:aws:iam::111111111111:role/web-build".into(),
            access_key: "ASIA".into(),
            account: "111111111111".into(),
            region: "ap-south-1".into(),
            service: service.into(),
            operation: "PutObject".into(),
            method: "PUT".into(),
            path: "/b/releases/x".into(),
            body: body.map(str::to_string),
            headers: headers.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect(),
        }
    }

    #[test]
    fn calls_recorded_against_another_deployment_are_refused() {
        let policies = Policies {
            bucket_keys: BTreeMap::from([("b".into(), "arn:aws:kms:ap-south-1:111111111111:key/mrk-1".into())]),
            ..Policies::default()
        };
        let header = "x-amz-server-side-encryption-aws-kms-key-id";
        let current = call(&[(header, "arn:aws:kms:ap-south-1:111111111111:key/mrk-1")], None, "S3");
        let replica = call(&[(header, "arn:aws:kms:eu-central-1:111111111111:key/mrk-1")], None, "S3");
        let by_id = call(&[], Some(r#"{"KeyId":"mrk-1"}"#), "KMS");
        let by_alias = call(&[], Some(r#"{"KeyId":"alias/web-artifacts"}"#), "KMS");
        assert_eq!(foreign_key(&[current, replica, by_id, by_alias], &policies), None);
        let old = call(&[], Some(r#"{"KeyId":"arn:aws:kms:ap-south-1:111111111111:key/mrk-0"}"#), "KMS");
        assert_eq!(foreign_key(&[old], &policies).as_deref(), Some("arn:aws:kms:ap-south-1:111111111111:key/mrk-0"));
    }

    fn entry(principal: &str, action: &str, resource: &str) -> Entry {
        Entry {
            actor: "test".into(),
            principal: principal.into(),
            principal_account: "111111111111".into(),
            action: action.into(),
            resource: resource.into(),
            owner: "111111111111".into(),
            context: BTreeMap::new(),
            origin: map::Origin::Code,
            doc: "https://docs.aws.amazon.com/",
        }
    }

    #[test]
    fn a_recorded_call_is_on_the_map_by_principal_action_and_resource_pattern() {
        let build = "arn:aws:iam::111111111111:role/web-build";
        let map = [entry(build, "s3:PutObject", "arn:aws:s3:::b/releases/*"), entry(OPERATOR, "s3:GetObject", "*")];
        let need = |action: &str, resource: &str| calls::Need {
            action: action.into(),
            resource: resource.into(),
            owner: "111111111111".into(),
            context: BTreeMap::new(),
        };
        assert!(on_map(&map, build, true, &need("s3:PutObject", "arn:aws:s3:::b/releases/india/x.zip")));
        assert!(!on_map(&map, build, true, &need("s3:PutObject", "arn:aws:s3:::b/other/x.zip")));
        assert!(!on_map(&map, build, true, &need("s3:GetObject", "arn:aws:s3:::b/releases/x.zip")));
        // A role our templates do not define is the operator.
        let operator = "arn:aws:iam::111111111111:role/Admin";
        assert!(on_map(&map, operator, false, &need("s3:GetObject", "arn:aws:s3:::b/x")));
        assert!(!on_map(&map, operator, false, &need("s3:PutObject", "arn:aws:s3:::b/releases/x")));
    }
}
