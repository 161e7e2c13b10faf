//! AWS's rules for combining the policies that bear on one request
//! (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html and
//! its cross-account page):
//! - an explicit `Deny` in any of them decides;
//! - within one account, an allow in the identity policies or a resource policy that names the
//!   principal itself is enough; a resource policy that names only the account delegates to the
//!   identity policies;
//! - across accounts, both sides must allow: the caller's identity policies, and the resource's
//!   policy naming the caller or its account;
//! - a KMS key is special: the key policy must allow, directly or through the account it names,
//!   and "unless the key policy explicitly allows it, you cannot use IAM policies to allow access
//!   to a KMS key" (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html);
//! - a role's trust policy is the resource policy of `sts:AssumeRole` on it, with the same rules.

use super::policy::{Match, Policy, Request};

/// The kind of resource policy, where it changes the rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceKind {
    /// A KMS key policy: it must allow.
    Key,
    /// Any other resource policy (bucket, repository, role trust).
    Other,
}

/// The resource's policy and the account that owns the resource.
#[derive(Clone, Copy, Debug)]
pub struct ResourcePolicy<'a> {
    pub policy: &'a Policy,
    pub owner: &'a str,
    pub kind: ResourceKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Allowed, with the statements that allow it.
    Allowed(Vec<Match>),
    /// Denied, with the reason: which statement denies it, or which policy lacks the grant.
    Denied(String),
}

/// Decides `request`, made by a principal whose identity policies are `identity` (`None` for a
/// principal whose own policies are not ours to prove, e.g. the operator: taken as allowing),
/// on a resource with `resource`'s policy, if it has one.
pub fn decide(request: &Request, identity: Option<&[Policy]>, resource: Option<ResourcePolicy>) -> Outcome {
    let identity_verdicts: Vec<_> =
        identity.unwrap_or_default().iter().map(|policy| policy.evaluate(request)).collect();
    let resource_verdict = resource.map(|resource| resource.policy.evaluate(request));
    for verdict in identity_verdicts.iter().chain(resource_verdict.iter()) {
        if let Some(deny) = &verdict.denies {
            return Outcome::Denied(format!("statement {} of {} denies it", deny.statement, deny.source));
        }
    }
    // A service principal (`codebuild.amazonaws.com` assuming a role, S3 delivering logs) has no
    // identity policies: the resource's policy must name it
    // (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html#principal-services).
    if let Some(service) = request.principal.strip_prefix("service:") {
        return match (resource, &resource_verdict) {
            (Some(_), Some(verdict)) if verdict.allows_principal_itself && verdict.allows.is_some() => {
                Outcome::Allowed(verdict.allows.clone().into_iter().collect())
            }
            (Some(resource), _) => Outcome::Denied(format!(
                "{} does not name the service {service} for {} on {}",
                resource.policy.source, request.action, request.resource
            )),
            (None, _) => Outcome::Denied(format!(
                "{} on {} has no resource policy that could name the service {service}",
                request.action, request.resource
            )),
        };
    }
    let identity_allow: Option<Match> = match identity {
        None => {
            Some(Match { source: "the operator's own IAM policies (not ours to prove)".into(), statement: "-".into() })
        }
        Some(_) => identity_verdicts.iter().find_map(|verdict| verdict.allows.clone()),
    };
    let missing_identity = || {
        let sources: Vec<&str> = identity.unwrap_or_default().iter().map(|policy| policy.source.as_str()).collect();
        format!("no statement of {} allows {} on {}", sources.join(" or "), request.action, request.resource)
    };
    let Some(resource) = resource else {
        return match identity_allow {
            Some(allow) => Outcome::Allowed(vec![allow]),
            None => Outcome::Denied(missing_identity()),
        };
    };
    let verdict = resource_verdict.expect("evaluated with the resource");
    let same_account = request.principal_account == resource.owner;
    let missing_resource = || {
        format!(
            "{} (account {}) grants {} {} on {} neither itself nor through its account",
            resource.policy.source, resource.owner, request.principal, request.action, request.resource
        )
    };
    match (&verdict.allows, resource.kind, same_account) {
        // A key policy must allow; naming the principal itself suffices in its own account.
        (None, ResourceKind::Key, _) => Outcome::Denied(missing_resource()),
        (Some(allow), _, true) if verdict.allows_principal_itself => Outcome::Allowed(vec![allow.clone()]),
        (Some(allow), _, _) => match identity_allow {
            Some(identity_allow) => Outcome::Allowed(vec![identity_allow, allow.clone()]),
            None => Outcome::Denied(missing_identity()),
        },
        (None, ResourceKind::Other, true) => match identity_allow {
            Some(identity_allow) => Outcome::Allowed(vec![identity_allow]),
            None => Outcome::Denied(missing_identity()),
        },
        (None, ResourceKind::Other, false) => Outcome::Denied(missing_resource()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(source: &str, document: serde_json::Value) -> Policy {
        Policy::parse(source, &document).unwrap()
    }

    fn request(principal_account: &str, action: &str, resource: &str) -> Request {
        Request {
            principal: format!("arn:aws:iam::{principal_account}:role/caller"),
            principal_account: principal_account.into(),
            action: action.into(),
            resource: resource.into(),
            context: Default::default(),
        }
    }

    /// AWS's cross-account example: account A's role reads a bucket of account B only when its
    /// identity policy and B's bucket policy both allow.
    #[test]
    fn across_accounts_both_sides_must_allow() {
        let identity = [policy(
            "identity",
            json!({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]}),
        )];
        let bucket = policy(
            "bucket policy",
            json!({"Statement": [{"Sid": "A", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]}),
        );
        let empty = policy("bucket policy", json!({"Statement": []}));
        let on = |policy| Some(ResourcePolicy { policy, owner: "222222222222", kind: ResourceKind::Other });
        let get = request("111111111111", "s3:GetObject", "arn:aws:s3:::b/k");
        assert!(matches!(decide(&get, Some(&identity), on(&bucket)), Outcome::Allowed(by) if by.len() == 2));
        assert!(
            matches!(decide(&get, Some(&identity), on(&empty)), Outcome::Denied(reason) if reason.contains("neither itself nor through its account"))
        );
        assert!(
            matches!(decide(&get, Some(&[]), on(&bucket)), Outcome::Denied(reason) if reason.contains("no statement"))
        );
        // Within one account the identity policy alone is enough.
        let same = Some(ResourcePolicy { policy: &empty, owner: "111111111111", kind: ResourceKind::Other });
        assert!(matches!(decide(&get, Some(&identity), same), Outcome::Allowed(_)));
    }

    /// A key policy that delegates only administration to the account: IAM cannot grant use.
    #[test]
    fn a_key_policy_must_allow_use() {
        let admin_only = policy(
            "key policy",
            json!({"Statement": [{"Sid": "Admin", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"}, "Action": ["kms:Create*", "kms:Describe*", "kms:Put*"], "Resource": "*"}]}),
        );
        let delegating = policy(
            "key policy",
            json!({"Statement": [{"Sid": "Use", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"}, "Action": "kms:GenerateDataKey*", "Resource": "*"}]}),
        );
        let key = |policy| Some(ResourcePolicy { policy, owner: "111111111111", kind: ResourceKind::Key });
        let use_key = request("111111111111", "kms:GenerateDataKey", "arn:aws:kms:ap-south-1:111111111111:key/mrk-1");
        assert!(matches!(decide(&use_key, None, key(&admin_only)), Outcome::Denied(_)));
        assert!(matches!(decide(&use_key, None, key(&delegating)), Outcome::Allowed(_)));
        // Through the account, the identity policy must allow too.
        assert!(matches!(decide(&use_key, Some(&[]), key(&delegating)), Outcome::Denied(_)));
    }

    #[test]
    fn an_explicit_deny_decides() {
        let identity =
            [policy("identity", json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))];
        let bucket = policy(
            "bucket policy",
            json!({"Statement": [{"Sid": "NoWrites", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": "*"}]}),
        );
        let put = request("111111111111", "s3:PutObject", "arn:aws:s3:::b/k");
        let outcome = decide(
            &put,
            Some(&identity),
            Some(ResourcePolicy { policy: &bucket, owner: "111111111111", kind: ResourceKind::Other }),
        );
        assert_eq!(outcome, Outcome::Denied("statement NoWrites of bucket policy denies it".into()));
    }

    /// AWS's trust policy for a service role: the service, named in the trust policy, may assume
    /// it where the condition holds; another service may not, nor the service without the trust
    /// (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_create_for-service.html).
    #[test]
    fn a_service_needs_the_trust_to_name_it() {
        let trust = policy(
            "trust policy",
            json!({"Statement": [{"Effect": "Allow", "Principal": {"Service": "codebuild.amazonaws.com"}, "Action": "sts:AssumeRole",
                   "Condition": {"StringEquals": {"aws:SourceAccount": "111111111111"}}}]}),
        );
        let resource = Some(ResourcePolicy { policy: &trust, owner: "111111111111", kind: ResourceKind::Other });
        let assume = |service: &str, account: &str| Request {
            principal: format!("service:{service}"),
            principal_account: String::new(),
            action: "sts:AssumeRole".into(),
            resource: "arn:aws:iam::111111111111:role/web-build".into(),
            context: [("aws:sourceaccount".to_string(), vec![account.to_string()])].into(),
        };
        assert!(matches!(
            decide(&assume("codebuild.amazonaws.com", "111111111111"), None, resource),
            Outcome::Allowed(_)
        ));
        assert!(matches!(
            decide(&assume("codebuild.amazonaws.com", "999999999999"), None, resource),
            Outcome::Denied(_)
        ));
        let Outcome::Denied(reason) = decide(&assume("lambda.amazonaws.com", "111111111111"), None, resource) else {
            panic!("another service may not assume the role");
        };
        assert!(reason.contains("does not name the service lambda.amazonaws.com"), "{reason}");
        // Without a trust policy (no resource policy), a service has nothing that allows it.
        assert!(matches!(decide(&assume("codebuild.amazonaws.com", "111111111111"), None, None), Outcome::Denied(_)));
    }
}
