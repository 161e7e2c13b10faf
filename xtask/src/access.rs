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
pub mod policies;
pub mod policy;

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::aws::record::Call;
use crate::config::Config;
use crate::output::{Printer, table};
use decide::{Outcome, ResourceKind, ResourcePolicy};
use policies::Policies;
use policy::Request;

/// One authorization, proven or not.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// The role that made the call.
    pub actor: String,
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

/// Proves every call of `calls` against `policies`; one finding per (actor, action, resource).
pub fn prove(calls: &[Call], config: &Config, policies: &Policies) -> Result<Vec<Finding>> {
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
    let mut rows = vec![["ROLE", "ACTION", "RESOURCE", "CALLS", "RESULT"].map(String::from).to_vec()];
    for finding in findings {
        let role = finding.actor.rsplit('/').next().unwrap_or(&finding.actor).to_string();
        rows.push(vec![
            role,
            finding.action.clone(),
            finding.resource.clone(),
            finding.count.to_string(),
            if finding.allowed { "allowed".into() } else { "DENIED".into() },
        ]);
    }
    printer.text(table(&rows).trim_end());
    let denied: Vec<&Finding> = findings.iter().filter(|finding| !finding.allowed).collect();
    for finding in &denied {
        printer.error(format!(
            "{} may not {} on {} ({}): {}",
            finding.actor, finding.action, finding.resource, finding.call, finding.detail
        ));
    }
    let summary = format!(
        "{} authorizations for {calls} recorded calls ({source}): {} allowed, {} denied",
        findings.len(),
        findings.len() - denied.len(),
        denied.len()
    );
    if denied.is_empty() {
        printer.status("Proven", summary);
    } else {
        printer.error(summary);
    }
}
