//! IAM policy documents and AWS's evaluation of one request against them, for exactly the policy
//! language our templates use: `Effect`, `Action`/`NotAction`, `Resource`/`NotResource`,
//! `Principal` (`AWS`, `Service`, `*`), and the condition operators `StringEquals`,
//! `StringNotEquals`, `StringLike`, `StringNotLike`, `ArnEquals`, `ArnLike`, `ArnNotEquals`,
//! `ArnNotLike`, `Bool` and `Null`, each with `IfExists`. A document that uses anything else is
//! refused when it is read, never guessed at.
//!
//! The semantics are AWS's (IAM User Guide, "Policy evaluation logic" and "IAM JSON policy
//! elements"): actions match case-insensitively with `*` and `?`, resources case-sensitively with
//! the same wildcards; every condition of a statement must hold, and a condition with several
//! values holds when any value matches; a key missing from the request makes a condition false,
//! except with `...IfExists` and with the negated operators (`StringNotEquals`, `ArnNotLike`, ...),
//! where it makes it true.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// A policy document and where it came from (for messages).
#[derive(Clone, Debug)]
pub struct Policy {
    /// `cfn/tools/build.yaml BuildRole policy build-and-push`, `key policy of ...`.
    pub source: String,
    pub statements: Vec<Statement>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

#[derive(Clone, Debug)]
pub struct Statement {
    /// The `Sid`, or `#<index>`.
    pub id: String,
    pub effect: Effect,
    /// Patterns, and whether they are `NotAction`.
    pub actions: (Vec<String>, bool),
    /// Patterns, and whether they are `NotResource`; `None` in a trust policy.
    pub resources: Option<(Vec<String>, bool)>,
    /// `None` in an identity policy.
    pub principals: Option<Vec<PrincipalPattern>>,
    pub conditions: Vec<Condition>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrincipalPattern {
    /// `"*"` or `{"AWS": "*"}`.
    Anyone,
    /// `arn:aws:iam::<account>:root` or a bare account id: the account, which delegates to its
    /// identity policies.
    Account(String),
    /// A role (or user) ARN: that principal itself.
    Arn(String),
    /// `{"Service": "codebuild.amazonaws.com"}`.
    Service(String),
}

#[derive(Clone, Debug)]
pub struct Condition {
    pub operator: String,
    pub key: String,
    pub values: Vec<String>,
}

/// Who asks, what, on what, with which request context.
#[derive(Clone, Debug)]
pub struct Request {
    /// The role ARN (`arn:aws:iam::<account>:role/<name>`) or, for a service, `service:<name>`.
    pub principal: String,
    /// The account of the principal (empty for a service).
    pub principal_account: String,
    pub action: String,
    pub resource: String,
    /// Condition keys, lowercase, with their values (`aws:principalarn`, `kms:viaservice`, ...).
    pub context: BTreeMap<String, Vec<String>>,
}

/// A statement that decided, for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Match {
    pub source: String,
    pub statement: String,
}

/// What one policy says of a request.
#[derive(Clone, Debug, Default)]
pub struct Verdict {
    pub allows: Option<Match>,
    pub denies: Option<Match>,
    /// For a resource policy: the allow names the principal itself, not only its account.
    pub allows_principal_itself: bool,
}

impl Policy {
    /// Reads a policy document (a JSON value in long form, intrinsics resolved).
    pub fn parse(source: &str, document: &Value) -> Result<Policy> {
        let statements = match &document["Statement"] {
            Value::Array(statements) => statements.clone(),
            Value::Object(_) => vec![document["Statement"].clone()],
            other => bail!("{source}: Statement is {other}, not a list"),
        };
        let mut parsed = Vec::new();
        for (index, statement) in statements.iter().enumerate() {
            let id = statement["Sid"].as_str().map(str::to_string).unwrap_or_else(|| format!("#{}", index + 1));
            parsed.push(Statement::parse(statement, &id).with_context(|| format!("{source}: statement {id}"))?);
        }
        Ok(Policy { source: source.to_string(), statements: parsed })
    }

    /// Evaluates `request` against every statement.
    pub fn evaluate(&self, request: &Request) -> Verdict {
        let mut verdict = Verdict::default();
        for statement in &self.statements {
            let Some(itself) = statement.applies(request) else { continue };
            let found = Match { source: self.source.clone(), statement: statement.id.clone() };
            match statement.effect {
                Effect::Deny => {
                    verdict.denies.get_or_insert(found);
                }
                Effect::Allow => {
                    verdict.allows_principal_itself |= itself;
                    verdict.allows.get_or_insert(found);
                }
            }
        }
        verdict
    }
}

impl Statement {
    fn parse(statement: &Value, id: &str) -> Result<Statement> {
        let object = statement.as_object().context("a statement is not an object")?;
        for key in object.keys() {
            if !matches!(
                key.as_str(),
                "Sid" | "Effect" | "Action" | "NotAction" | "Resource" | "NotResource" | "Principal" | "Condition"
            ) {
                bail!("the access proof does not know the policy element `{key}`");
            }
        }
        let effect = match statement["Effect"].as_str() {
            Some("Allow") => Effect::Allow,
            Some("Deny") => Effect::Deny,
            other => bail!("Effect is {other:?}, not Allow or Deny"),
        };
        let actions = match (object.get("Action"), object.get("NotAction")) {
            (Some(actions), None) => (strings(actions)?, false),
            (None, Some(actions)) => (strings(actions)?, true),
            _ => bail!("a statement has exactly one of Action and NotAction"),
        };
        let resources = match (object.get("Resource"), object.get("NotResource")) {
            (Some(resources), None) => Some((strings(resources)?, false)),
            (None, Some(resources)) => Some((strings(resources)?, true)),
            (None, None) => None,
            _ => bail!("a statement has at most one of Resource and NotResource"),
        };
        if object.contains_key("NotPrincipal") {
            bail!("the access proof does not know NotPrincipal");
        }
        let principals = object.get("Principal").map(principals).transpose()?;
        let mut conditions = Vec::new();
        if let Some(block) = object.get("Condition") {
            for (operator, keys) in block.as_object().context("Condition is not an object")? {
                if !KNOWN_OPERATORS.contains(&operator.trim_end_matches("IfExists")) {
                    bail!("the access proof does not know the condition operator {operator}");
                }
                for (key, values) in keys.as_object().context("a condition operator takes an object")? {
                    conditions.push(Condition {
                        operator: operator.clone(),
                        key: key.to_lowercase(),
                        values: strings(values)?,
                    });
                }
            }
        }
        let _ = id;
        Ok(Statement { id: id.to_string(), effect, actions, resources, principals, conditions })
    }

    /// Whether the statement applies to `request`; when it does, whether it names the principal
    /// itself (not only its account).
    fn applies(&self, request: &Request) -> Option<bool> {
        let (actions, negated) = &self.actions;
        if actions.iter().any(|pattern| wildcard(&pattern.to_lowercase(), &request.action.to_lowercase())) == *negated {
            return None;
        }
        if let Some((resources, negated)) = &self.resources
            && resources.iter().any(|pattern| wildcard(pattern, &request.resource)) == *negated
        {
            return None;
        }
        let itself = match &self.principals {
            None => false,
            Some(principals) => {
                let mut matched = None;
                for principal in principals {
                    let this = match principal {
                        PrincipalPattern::Anyone => Some(false),
                        PrincipalPattern::Account(account) => (*account == request.principal_account).then_some(false),
                        PrincipalPattern::Arn(arn) => (*arn == request.principal).then_some(true),
                        PrincipalPattern::Service(service) => {
                            (request.principal == format!("service:{service}")).then_some(true)
                        }
                    };
                    if let Some(this) = this {
                        matched = Some(matched.unwrap_or(false) || this);
                    }
                }
                matched?
            }
        };
        self.conditions.iter().all(|condition| condition.holds(&request.context)).then_some(itself)
    }
}

const KNOWN_OPERATORS: [&str; 10] = [
    "StringEquals",
    "StringNotEquals",
    "StringLike",
    "StringNotLike",
    "ArnEquals",
    "ArnLike",
    "ArnNotEquals",
    "ArnNotLike",
    "Bool",
    "Null",
];

impl Condition {
    fn holds(&self, context: &BTreeMap<String, Vec<String>>) -> bool {
        let if_exists = self.operator.ends_with("IfExists");
        let operator = self.operator.trim_end_matches("IfExists");
        let negated = operator.contains("Not");
        if operator == "Null" {
            let absent = !context.contains_key(&self.key);
            return self.values.iter().any(|value| (value == "true") == absent);
        }
        let Some(actual) = context.get(&self.key) else {
            return if_exists || negated;
        };
        let matches = |pattern: &str, value: &str| match operator.trim_start_matches("String").trim_start_matches("Arn")
        {
            "Equals" | "NotEquals" if operator.starts_with("Arn") => wildcard(pattern, value),
            "Equals" | "NotEquals" => pattern == value,
            "Like" | "NotLike" => wildcard(pattern, value),
            _ if operator == "Bool" => pattern.eq_ignore_ascii_case(value),
            _ => false,
        };
        let any = actual.iter().any(|value| self.values.iter().any(|pattern| matches(pattern, value)));
        if negated { !any } else { any }
    }
}

fn strings(value: &Value) -> Result<Vec<String>> {
    match value {
        Value::String(text) => Ok(vec![text.clone()]),
        Value::Bool(flag) => Ok(vec![flag.to_string()]),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => Ok(text.clone()),
                Value::Bool(flag) => Ok(flag.to_string()),
                other => bail!("{other} is not a string (a list of lists is no policy value)"),
            })
            .collect(),
        other => bail!("{other} is not a string or a list of strings"),
    }
}

fn principals(value: &Value) -> Result<Vec<PrincipalPattern>> {
    if value == "*" {
        return Ok(vec![PrincipalPattern::Anyone]);
    }
    let mut found = Vec::new();
    for (kind, names) in value.as_object().context("Principal is not \"*\" or an object")? {
        for name in strings(names)? {
            found.push(match kind.as_str() {
                "AWS" if name == "*" => PrincipalPattern::Anyone,
                "AWS" => match account_of_root(&name) {
                    Some(account) => PrincipalPattern::Account(account),
                    None => PrincipalPattern::Arn(name),
                },
                "Service" => PrincipalPattern::Service(name),
                other => bail!("the access proof does not know {other} principals"),
            });
        }
    }
    Ok(found)
}

/// `arn:aws:iam::111111111111:root` or `111111111111`: the account.
fn account_of_root(name: &str) -> Option<String> {
    if name.len() == 12 && name.chars().all(|digit| digit.is_ascii_digit()) {
        return Some(name.to_string());
    }
    let rest = name.strip_prefix("arn:")?;
    let (_, rest) = rest.split_once(":iam::")?;
    rest.strip_suffix(":root").map(str::to_string)
}

/// `*` matches any run of characters, `?` one character.
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let (pattern, text): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut p, mut t, mut star, mut mark) = (0, 0, None, 0);
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some(p);
            mark = t;
            p += 1;
        } else if let Some(star) = star {
            p = star + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|symbol| *symbol == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(action: &str, resource: &str, context: &[(&str, &str)]) -> Request {
        Request {
            principal: "arn:aws:iam::111111111111:role/web-build".into(),
            principal_account: "111111111111".into(),
            action: action.into(),
            resource: resource.into(),
            context: context.iter().map(|(key, value)| (key.to_lowercase(), vec![value.to_string()])).collect(),
        }
    }

    #[test]
    fn wildcards_match_as_iam_does() {
        assert!(wildcard("s3:Get*", "s3:GetObject"));
        assert!(wildcard("arn:aws:s3:::b/*", "arn:aws:s3:::b/releases/x.zip"));
        assert!(!wildcard("arn:aws:s3:::b/*", "arn:aws:s3:::b"));
        assert!(wildcard("kms:GenerateDataKey*", "kms:GenerateDataKey"));
        assert!(wildcard("ab?d", "abcd"));
        assert!(!wildcard("ab?d", "abd"));
    }

    /// The example of AWS's "Policy evaluation logic": an explicit deny overrides any allow.
    #[test]
    fn an_explicit_deny_wins_and_conditions_decide() {
        let policy = Policy::parse(
            "bucket policy",
            &json!({"Statement": [
                {"Sid": "Use", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
                 "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/*"},
                {"Sid": "OnlyKms", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/*",
                 "Condition": {"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": "aws:kms"}}},
                {"Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
                 "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
            ]}),
        )
        .unwrap();
        let put = |context: &[(&str, &str)]| policy.evaluate(&request("s3:PutObject", "arn:aws:s3:::b/k", context));
        let allowed = put(&[("aws:SecureTransport", "true"), ("s3:x-amz-server-side-encryption", "aws:kms")]);
        assert_eq!(allowed.allows.unwrap().statement, "Use");
        assert!(allowed.denies.is_none() && !allowed.allows_principal_itself);
        // No encryption header: StringNotEqualsIfExists is true when the key is missing.
        assert_eq!(put(&[("aws:SecureTransport", "true")]).denies.unwrap().statement, "OnlyKms");
        assert_eq!(
            put(&[("aws:SecureTransport", "false"), ("s3:x-amz-server-side-encryption", "aws:kms")])
                .denies
                .unwrap()
                .statement,
            "TlsOnly"
        );
        // Another account's principal is not the account named.
        let mut foreign = request(
            "s3:PutObject",
            "arn:aws:s3:::b/k",
            &[("aws:SecureTransport", "true"), ("s3:x-amz-server-side-encryption", "aws:kms")],
        );
        foreign.principal_account = "999999999999".into();
        assert!(policy.evaluate(&foreign).allows.is_none());
    }

    #[test]
    fn principals_and_arn_conditions() {
        let policy = Policy::parse(
            "key policy",
            &json!({"Statement": [{"Sid": "Build", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*",
                "Condition": {"ArnEquals": {"aws:PrincipalArn": ["arn:aws:iam::111111111111:role/web-build"]}}}]}),
        )
        .unwrap();
        let with_arn = request(
            "kms:GenerateDataKey",
            "arn:aws:kms:ap-south-1:111111111111:key/mrk-1",
            &[("aws:PrincipalArn", "arn:aws:iam::111111111111:role/web-build")],
        );
        assert!(policy.evaluate(&with_arn).allows.is_some());
        let other = request(
            "kms:Decrypt",
            "arn:aws:kms:ap-south-1:111111111111:key/mrk-1",
            &[("aws:PrincipalArn", "arn:aws:iam::111111111111:role/other")],
        );
        assert!(policy.evaluate(&other).allows.is_none());
        let trust = Policy::parse(
            "trust policy",
            &json!({"Statement": [{"Effect": "Allow", "Principal": {"Service": "codebuild.amazonaws.com"}, "Action": "sts:AssumeRole"}]}),
        )
        .unwrap();
        let mut service = request("sts:AssumeRole", "arn:aws:iam::111111111111:role/web-build", &[]);
        service.principal = "service:codebuild.amazonaws.com".into();
        let verdict = trust.evaluate(&service);
        assert!(verdict.allows.is_some() && verdict.allows_principal_itself);
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        let check = |document: Value, expect: &str| {
            let error = format!("{:#}", Policy::parse("p", &document).unwrap_err());
            assert!(error.contains(expect), "{error}");
        };
        check(
            json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"IpAddress": {"aws:SourceIp": "1.2.3.4"}}}]}),
            "IpAddress",
        );
        check(json!({"Statement": [{"Effect": "Allow", "NotPrincipal": {"AWS": "x"}, "Action": "*"}]}), "NotPrincipal");
        check(json!({"Statement": [{"Effect": "Maybe", "Action": "*", "Resource": "*"}]}), "not Allow or Deny");
        check(
            json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Principal": {"Federated": "x"}}]}),
            "Federated",
        );
    }
}
