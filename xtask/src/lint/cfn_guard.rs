//! cfn-guard, AWS's CloudFormation Guard: run the project's own Guard rules (`cfn/guard/*.guard`)
//! over every linted template and turn each failed rule into one finding per resource.
//!
//! The rules hold the security controls the pattern relies on (KMS-encrypted, versioned,
//! private, TLS-only buckets; rotated keys; no wildcard IAM actions or PassRole on every role; no
//! internet ingress but the load balancer's listeners; immutable, scanned image repositories;
//! KMS-encrypted builds; read-only, non-root tasks; expiring logs): the controls cfn_nag would
//! check, checked here on every machine, since cfn_nag cannot be installed everywhere. cfn-guard
//! itself is pinned and installed into `target/tools` on first use (`tools.rs`).
//!
//! `cfn-guard validate --output-format json --show-summary none --structured` prints one report
//! per data file: `[{name, status, not_compliant: [{"Rule": {name, checks}}], not_applicable,
//! compliant}]`. The checks nest (`Rule`, `Block`, `Disjunctions`, `Clause` with `Unary` or
//! `Binary`), and each failed clause carries the value it failed on with its path in the template
//! (`/Resources/<id>/...`) and the rule's message. Its exit code is 0 (pass), 19 (a rule failed)
//! or 5 (error); a rule file that does not parse is only reported on stderr while the other files
//! still run, so every rule of `cfn/guard` must appear in every file's report, or the run is an
//! error rather than a pass.
//!
//! A resource opts out of a rule with `Metadata: guard: SuppressedRules: [RULE]` (Guard's own
//! convention, honoured by each rule's filter) and says why in `Metadata: guard: Reasons: {RULE:
//! why}`, which the pattern's `suppression-reason` rule requires.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;
use xshell::{Shell, cmd};

use crate::lint::Finding;
use crate::template::{Template, pointer_segment};

pub const TOOL: &str = "cfn-guard";

/// Where the rules live, relative to the project root.
pub const RULES_DIR: &str = "cfn/guard";

/// Runs every rule of `rules` (a folder of `.guard` files) over `templates`.
pub fn run(bin: &Path, rules: &Path, templates: &[&Template]) -> Result<Vec<Finding>> {
    let expected = rule_names(rules)?;
    if expected.is_empty() {
        bail!("{} holds no Guard rule (`rule NAME {{ ... }}` in a .guard file)", rules.display());
    }
    let mut arguments: Vec<String> = vec!["validate".into(), "--rules".into(), rules.display().to_string()];
    for template in templates {
        arguments.push("--data".into());
        arguments.push(template.path.display().to_string());
    }
    arguments.extend(["--output-format", "json", "--show-summary", "none", "--structured"].map(String::from));
    let sh = Shell::new()?;
    let output = cmd!(sh, "{bin} {arguments...}")
        .quiet()
        .ignore_status()
        .output()
        .with_context(|| format!("running {}; remove it to have it installed again", bin.display()))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    // 0: every rule passed or did not apply; 19: some rule failed. Anything else is an error of
    // the run, which the report does not describe.
    if !matches!(output.status.code(), Some(0 | 19)) {
        bail!("cfn-guard failed ({}) on the rules in {}: {}", output.status, rules.display(), stderr.trim());
    }
    let reports = parse(&stdout).with_context(|| format!("reading cfn-guard's report: {}", stderr.trim()))?;

    let mut by_name = BTreeMap::new();
    for template in templates {
        // cfn-guard names each data file by its canonical path.
        let canonical =
            template.path.canonicalize().with_context(|| format!("resolving {}", template.path.display()))?;
        by_name.insert(canonical, *template);
    }
    let mut findings = Vec::new();
    let mut reported = BTreeSet::new();
    for report in reports {
        let Some(template) = by_name.get(Path::new(&report.file)) else {
            bail!("cfn-guard reported on {}, which was not linted", report.file);
        };
        let missing: Vec<&str> =
            expected.iter().filter(|rule| !report.evaluated.contains(*rule)).map(String::as_str).collect();
        if !missing.is_empty() {
            bail!(
                "cfn-guard did not evaluate {} on {}: fix the rule file it names: {}",
                missing.join(", "),
                template.path.display(),
                stderr.trim()
            );
        }
        reported.insert(template.path.clone());
        findings.extend(report.failures.into_iter().map(|failure| finding(template, failure)));
    }
    let unreported: Vec<String> = templates
        .iter()
        .filter(|template| !reported.contains(&template.path))
        .map(|template| template.path.display().to_string())
        .collect();
    if !unreported.is_empty() {
        bail!("cfn-guard printed no report on {}: {}", unreported.join(", "), stderr.trim());
    }
    Ok(findings)
}

/// The names of the rules defined in the `.guard` files of `dir` (`rule NAME` at the start of a
/// line; parameterized helper rules, `rule NAME(args)`, report under the rules that call them).
pub fn rule_names(dir: &Path) -> Result<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    for path in guard_files(dir)? {
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        for line in text.lines() {
            let Some(rest) = line.trim_start().strip_prefix("rule ") else { continue };
            let rest = rest.trim_start();
            let end = rest.find(|character: char| !(character.is_ascii_alphanumeric() || character == '_'));
            let (name, after) = rest.split_at(end.unwrap_or(rest.len()));
            if !name.is_empty() && !after.trim_start().starts_with('(') {
                names.insert(name.to_string());
            }
        }
    }
    Ok(names)
}

fn guard_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("listing the Guard rules in {}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.with_context(|| format!("listing {}", dir.display()))?.path();
        if path.extension().is_some_and(|extension| extension == "guard") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// One data file's result.
#[derive(Debug, PartialEq, Eq)]
pub struct FileReport {
    /// The data file, as cfn-guard names it (its canonical path).
    pub file: String,
    /// Every rule that ran on it: passed, failed or not applicable.
    pub evaluated: BTreeSet<String>,
    /// One per failed rule and resource (or per failed rule, when no resource is named).
    pub failures: Vec<Failure>,
}

/// A rule that failed, and where.
#[derive(Debug, PartialEq, Eq)]
pub struct Failure {
    pub rule: String,
    /// The logical id of the resource that broke it, when the failed clause names one.
    pub resource: Option<String>,
    /// Path of the failing value (`/Resources/Bucket/Properties/...`), for the line.
    pub path: String,
    /// The rule's own message, or cfn-guard's when the rule has none.
    pub message: String,
}

// cfn-guard's structured report (src/rules/eval_context.rs: FileReport, ClauseReport and the
// check types below it); fields not read here are left out.

#[derive(Deserialize)]
struct RawFileReport {
    name: String,
    #[serde(default)]
    not_compliant: Vec<ClauseReport>,
    #[serde(default)]
    not_applicable: Vec<String>,
    #[serde(default)]
    compliant: Vec<String>,
}

#[derive(Deserialize)]
enum ClauseReport {
    Rule(RuleReport),
    Block(BlockReport),
    Disjunctions(Disjunctions),
    Clause(GuardClause),
}

#[derive(Deserialize)]
struct RuleReport {
    name: String,
    #[serde(default)]
    checks: Vec<ClauseReport>,
}

#[derive(Deserialize)]
struct BlockReport {
    messages: Messages,
    unresolved: Option<UnResolved>,
}

#[derive(Deserialize)]
struct Disjunctions {
    #[serde(default)]
    checks: Vec<ClauseReport>,
}

#[derive(Deserialize)]
enum GuardClause {
    Unary(UnaryReport),
    Binary(BinaryReport),
}

#[derive(Deserialize)]
struct UnaryReport {
    messages: Messages,
    check: UnaryCheck,
}

#[derive(Deserialize)]
enum UnaryCheck {
    Resolved(Compared),
    UnResolved(NotFound),
    /// A variable that resolved to nothing: no value, so no place.
    UnResolvedContext(IgnoredAny),
}

#[derive(Deserialize)]
struct BinaryReport {
    messages: Messages,
    check: BinaryCheck,
}

#[derive(Deserialize)]
enum BinaryCheck {
    Resolved(ComparedFrom),
    UnResolved(NotFound),
    InResolved(ComparedFrom),
}

/// A unary check on a value that exists.
#[derive(Deserialize)]
struct Compared {
    value: PathValue,
}

/// A binary check: `from` is the template's value, `to` what it was compared with.
#[derive(Deserialize)]
struct ComparedFrom {
    from: PathValue,
}

/// A check whose value is missing: `value.traversed_to` is as far as the query got.
#[derive(Deserialize)]
struct NotFound {
    value: UnResolved,
}

#[derive(Deserialize)]
struct UnResolved {
    traversed_to: PathValue,
}

#[derive(Deserialize)]
struct PathValue {
    path: String,
    #[serde(default)]
    value: Value,
}

#[derive(Deserialize, Default)]
struct Messages {
    custom_message: Option<String>,
    error_message: Option<String>,
}

/// Parses `cfn-guard validate --output-format json --structured` output.
pub fn parse(stdout: &str) -> Result<Vec<FileReport>> {
    if stdout.trim().is_empty() {
        bail!("cfn-guard printed nothing");
    }
    let raw: Vec<RawFileReport> =
        serde_json::from_str(stdout).context("cfn-guard's output is not its structured JSON report")?;
    let mut reports = Vec::new();
    for file in raw {
        let mut evaluated: BTreeSet<String> = file.compliant.into_iter().chain(file.not_applicable).collect();
        let mut failures = Vec::new();
        for report in file.not_compliant {
            let ClauseReport::Rule(rule) = report else {
                bail!("cfn-guard reported a failure on {} outside any rule", file.name);
            };
            evaluated.insert(rule.name.clone());
            let mut clauses = Vec::new();
            collect(&rule.checks, &mut clauses);
            // One failure per resource: the first failed clause's message and place.
            let mut seen = BTreeSet::new();
            for clause in clauses {
                if seen.insert(clause.resource.clone()) {
                    failures.push(Failure { rule: rule.name.clone(), ..clause });
                }
            }
            if seen.is_empty() {
                failures.push(Failure {
                    rule: rule.name.clone(),
                    resource: None,
                    path: String::new(),
                    message: format!(
                        "the rule failed without naming a value; run `cfn-guard validate --rules cfn/guard --data {} \
                         --show-summary all` to see why",
                        file.name
                    ),
                });
            }
        }
        reports.push(FileReport { file: file.name, evaluated, failures });
    }
    Ok(reports)
}

/// Every failed clause below `checks`, in order, with its resource, path and message (`rule` is
/// filled in by the caller).
fn collect(checks: &[ClauseReport], out: &mut Vec<Failure>) {
    for check in checks {
        let (value, messages) = match check {
            ClauseReport::Rule(rule) => {
                collect(&rule.checks, out);
                continue;
            }
            ClauseReport::Disjunctions(disjunctions) => {
                collect(&disjunctions.checks, out);
                continue;
            }
            ClauseReport::Block(block) => {
                (block.unresolved.as_ref().map(|unresolved| &unresolved.traversed_to), &block.messages)
            }
            ClauseReport::Clause(GuardClause::Unary(unary)) => {
                let value = match &unary.check {
                    UnaryCheck::Resolved(compared) => Some(&compared.value),
                    UnaryCheck::UnResolved(missing) => Some(&missing.value.traversed_to),
                    UnaryCheck::UnResolvedContext(_) => None,
                };
                (value, &unary.messages)
            }
            ClauseReport::Clause(GuardClause::Binary(binary)) => {
                let value = match &binary.check {
                    BinaryCheck::Resolved(compared) | BinaryCheck::InResolved(compared) => Some(&compared.from),
                    BinaryCheck::UnResolved(missing) => Some(&missing.value.traversed_to),
                };
                (value, &binary.messages)
            }
        };
        let (resource, path) = match value {
            Some(value) => place(value),
            None => (None, String::new()),
        };
        out.push(Failure { rule: String::new(), resource, path, message: message(messages) });
    }
}

/// The resource a failing value belongs to, and its path. A rule that binds resource ids
/// (`Resources[ id | ... ]`) fails on the id itself, which cfn-guard places at `/Resources`.
fn place(value: &PathValue) -> (Option<String>, String) {
    let path = value.path.as_str();
    if let Some(rest) = path.strip_prefix("/Resources/") {
        let id = rest.split('/').next().unwrap_or(rest);
        return (Some(id.to_string()), path.to_string());
    }
    match (&value.value, path) {
        (Value::String(id), "/Resources") => (Some(id.clone()), format!("/Resources/{}", pointer_segment(id))),
        _ => (None, path.to_string()),
    }
}

/// The rule's message on one line, else cfn-guard's.
fn message(messages: &Messages) -> String {
    let custom = messages.custom_message.as_deref().map(|text| text.split_whitespace().collect::<Vec<_>>().join(" "));
    match custom {
        Some(text) if !text.is_empty() => text,
        // cfn-guard's own message ends with a dump of the value; the place is in the finding.
        _ => match messages.error_message.as_deref() {
            Some(text) => text.split(" Value traversed to").next().unwrap_or(text).trim().to_string(),
            None => "the rule failed".to_string(),
        },
    }
}

fn finding(template: &Template, failure: Failure) -> Finding {
    let message = match &failure.resource {
        Some(resource) => format!("{resource}: {}", failure.message),
        None => failure.message,
    };
    Finding {
        file: template.path.display().to_string(),
        line: if failure.path.is_empty() { 1 } else { template.line(&failure.path) },
        tool: TOOL.to_string(),
        rule: failure.rule,
        message,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::output::{Printer, Verbosity};
    use crate::project;
    use crate::tools;

    /// Real output of cfn-guard 3.2.1 with the rules of cfn/guard on
    /// tests/fixtures/lint/captured-bad.yaml (the data file's absolute path cut to its name).
    const CAPTURED: &str = include_str!("../../tests/fixtures/lint/cfn-guard-output.json");

    #[test]
    fn parses_the_captured_report() {
        let reports = parse(CAPTURED).unwrap();
        assert_eq!(reports.len(), 1);
        let report = &reports[0];
        assert_eq!(report.file, "captured-bad.yaml");
        assert_eq!(report.evaluated, rule_names(&project::root().join(RULES_DIR)).unwrap());
        let failures: Vec<(&str, Option<&str>, &str)> = report
            .failures
            .iter()
            .map(|failure| (failure.rule.as_str(), failure.resource.as_deref(), failure.path.as_str()))
            .collect();
        let statement = "/Resources/Role/Properties/Policies/0/PolicyDocument/Statement/0";
        assert_eq!(
            failures,
            [
                ("IAM_NO_WILDCARD_ACTION", Some("Role"), statement),
                ("IAM_NO_PASSROLE_ON_ANY_ROLE", Some("Role"), statement),
                ("S3_BUCKET_KMS_ENCRYPTION", Some("Bucket"), "/Resources/Bucket"),
                ("S3_BUCKET_VERSIONING", Some("Bucket"), "/Resources/Bucket"),
                ("S3_BUCKET_PUBLIC_ACCESS_BLOCK", Some("Bucket"), "/Resources/Bucket"),
                ("S3_BUCKET_TLS_POLICY", Some("Bucket"), "/Resources/Bucket"),
            ]
        );
        assert_eq!(report.failures[3].message, "bucket is not versioned: set VersioningConfiguration Status Enabled");
    }

    #[test]
    fn other_output_is_an_error() {
        for bad in ["", "Parsing error handling rule file", "{\"name\": \"a.yaml\"}", "[{\"not_compliant\": []}]"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rule_names_skip_helpers_and_comments() {
        let dir = scratch("rule-names");
        std::fs::write(
            dir.join("a.guard"),
            "# rule NOT_A_RULE\nrule FIRST when %x !empty {\n}\n  rule SECOND {\n}\nrule helper(x) {\n}\n",
        )
        .unwrap();
        std::fs::write(dir.join("ignored.txt"), "rule IGNORED {}\n").unwrap();
        let names: Vec<String> = rule_names(&dir).unwrap().into_iter().collect();
        assert_eq!(names, ["FIRST", "SECOND"]);
    }

    /// One template per way to break each rule of cfn/guard, each breaking that rule only.
    const BAD: &[(&str, &str)] = &[
        (
            "S3_BUCKET_KMS_ENCRYPTION",
            r#"
Resources:
  Bucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketEncryption:
        ServerSideEncryptionConfiguration:
          - ServerSideEncryptionByDefault: {SSEAlgorithm: AES256}
      VersioningConfiguration: {Status: Enabled}
      PublicAccessBlockConfiguration: {BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true}
  Policy:
    Type: AWS::S3::BucketPolicy
    Properties:
      Bucket: !Ref Bucket
      PolicyDocument:
        Statement:
          - {Effect: Deny, Principal: "*", Action: "s3:*", Resource: "*", Condition: {Bool: {aws:SecureTransport: "false"}}}
"#,
        ),
        (
            "S3_BUCKET_KMS_ENCRYPTION",
            r#"
Resources:
  Bucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketEncryption:
        ServerSideEncryptionConfiguration:
          - ServerSideEncryptionByDefault: {SSEAlgorithm: "aws:kms"}
      VersioningConfiguration: {Status: Enabled}
      PublicAccessBlockConfiguration: {BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true}
  Policy:
    Type: AWS::S3::BucketPolicy
    Properties:
      Bucket: !Ref Bucket
      PolicyDocument:
        Statement:
          - {Effect: Deny, Principal: "*", Action: "s3:*", Resource: "*", Condition: {Bool: {aws:SecureTransport: "false"}}}
"#,
        ),
        (
            "S3_BUCKET_VERSIONING",
            r#"
Resources:
  Bucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketEncryption:
        ServerSideEncryptionConfiguration:
          - ServerSideEncryptionByDefault: {SSEAlgorithm: "aws:kms", KMSMasterKeyID: !Ref Key}
      VersioningConfiguration: {Status: Suspended}
      PublicAccessBlockConfiguration: {BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true}
  Policy:
    Type: AWS::S3::BucketPolicy
    Properties:
      Bucket: !Ref Bucket
      PolicyDocument:
        Statement:
          - {Effect: Deny, Principal: "*", Action: "s3:*", Resource: "*", Condition: {Bool: {aws:SecureTransport: "false"}}}
"#,
        ),
        (
            "S3_BUCKET_PUBLIC_ACCESS_BLOCK",
            r#"
Resources:
  Bucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketEncryption:
        ServerSideEncryptionConfiguration:
          - ServerSideEncryptionByDefault: {SSEAlgorithm: "aws:kms", KMSMasterKeyID: !Ref Key}
      VersioningConfiguration: {Status: Enabled}
      PublicAccessBlockConfiguration: {BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: false}
  Policy:
    Type: AWS::S3::BucketPolicy
    Properties:
      Bucket: !Ref Bucket
      PolicyDocument:
        Statement:
          - {Effect: Deny, Principal: "*", Action: "s3:*", Resource: "*", Condition: {Bool: {aws:SecureTransport: "false"}}}
"#,
        ),
        (
            // Two buckets, one of them covered: the rule names the other by its logical id.
            "S3_BUCKET_TLS_POLICY",
            r#"
Resources:
  Covered:
    Type: AWS::S3::Bucket
    Properties:
      BucketEncryption:
        ServerSideEncryptionConfiguration:
          - ServerSideEncryptionByDefault: {SSEAlgorithm: "aws:kms", KMSMasterKeyID: !Ref Key}
      VersioningConfiguration: {Status: Enabled}
      PublicAccessBlockConfiguration: {BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true}
  Bucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketEncryption:
        ServerSideEncryptionConfiguration:
          - ServerSideEncryptionByDefault: {SSEAlgorithm: "aws:kms", KMSMasterKeyID: !Ref Key}
      VersioningConfiguration: {Status: Enabled}
      PublicAccessBlockConfiguration: {BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true}
  Policy:
    Type: AWS::S3::BucketPolicy
    Properties:
      Bucket: !Ref Covered
      PolicyDocument:
        Statement:
          - {Effect: Deny, Principal: "*", Action: "s3:*", Resource: "*", Condition: {Bool: {aws:SecureTransport: "false"}}}
"#,
        ),
        (
            // A policy that allows plain HTTP is no TLS policy.
            "S3_BUCKET_TLS_POLICY",
            r#"
Resources:
  Bucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketEncryption:
        ServerSideEncryptionConfiguration:
          - ServerSideEncryptionByDefault: {SSEAlgorithm: "aws:kms", KMSMasterKeyID: !Ref Key}
      VersioningConfiguration: {Status: Enabled}
      PublicAccessBlockConfiguration: {BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true}
  Policy:
    Type: AWS::S3::BucketPolicy
    Properties:
      Bucket: !Ref Bucket
      PolicyDocument:
        Statement:
          - {Effect: Deny, Principal: "*", Action: "s3:*", Resource: "*", Condition: {Bool: {aws:SecureTransport: "true"}}}
"#,
        ),
        (
            "KMS_KEY_ROTATION",
            r#"
Resources:
  Key:
    Type: AWS::KMS::Key
    Properties:
      EnableKeyRotation: false
"#,
        ),
        (
            "IAM_NO_WILDCARD_ACTION",
            r#"
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: {}
      Policies:
        - PolicyName: read
          PolicyDocument:
            Statement:
              - {Effect: Allow, Action: [s3:GetObject, "s3:*"], Resource: "arn:aws:s3:::bucket/*"}
"#,
        ),
        (
            // Behind Fn::If, in the branch CloudFormation takes when the condition holds.
            "IAM_NO_WILDCARD_ACTION",
            r#"
Conditions:
  Always: !Equals [a, a]
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: {}
      Policies:
        - PolicyName: read
          PolicyDocument:
            Statement:
              - {Effect: Allow, Action: s3:GetObject, Resource: "arn:aws:s3:::bucket/*"}
              - !If
                - Always
                - {Effect: Allow, Action: "*", Resource: "arn:aws:s3:::bucket/*"}
                - !Ref AWS::NoValue
"#,
        ),
        (
            "IAM_NO_WILDCARD_ACTION",
            r#"
Resources:
  Policy:
    Type: AWS::IAM::ManagedPolicy
    Properties:
      PolicyDocument:
        Statement:
          - {Effect: Allow, NotAction: "s3:DeleteBucket", Resource: "arn:aws:s3:::bucket"}
"#,
        ),
        (
            "IAM_NO_PASSROLE_ON_ANY_ROLE",
            r#"
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: {}
      Policies:
        - PolicyName: deploy
          PolicyDocument:
            Statement:
              - {Effect: Allow, Action: [ecs:RegisterTaskDefinition, iam:PassRole], Resource: "*"}
"#,
        ),
        (
            "SECURITY_GROUP_NO_WORLD_INGRESS",
            r#"
Parameters:
  Port: {Type: Number}
  AdminPort: {Type: Number}
Resources:
  Group:
    Type: AWS::EC2::SecurityGroup
    Properties:
      GroupDescription: the load balancer
      SecurityGroupIngress:
        - {IpProtocol: tcp, FromPort: !Ref Port, ToPort: !Ref Port, CidrIp: 0.0.0.0/0}
        - {IpProtocol: tcp, FromPort: !Ref AdminPort, ToPort: !Ref AdminPort, CidrIp: 0.0.0.0/0}
  Listener:
    Type: AWS::ElasticLoadBalancingV2::Listener
    Properties: {Port: !Ref Port, Protocol: HTTP}
"#,
        ),
        (
            // Without a load balancer listener, no port may be open to the internet.
            "SECURITY_GROUP_NO_WORLD_INGRESS",
            r#"
Resources:
  Ingress:
    Type: AWS::EC2::SecurityGroupIngress
    Properties: {GroupId: sg-0123, IpProtocol: tcp, FromPort: 22, ToPort: 22, CidrIpv6: "::/0"}
"#,
        ),
        (
            "ECR_REPOSITORY_IMMUTABLE_TAGS",
            r#"
Resources:
  Repository:
    Type: AWS::ECR::Repository
    Properties:
      ImageTagMutability: MUTABLE
      ImageScanningConfiguration: {ScanOnPush: true}
"#,
        ),
        (
            "ECR_REPOSITORY_SCAN_ON_PUSH",
            r#"
Resources:
  Repository:
    Type: AWS::ECR::Repository
    Properties:
      ImageTagMutability: IMMUTABLE
"#,
        ),
        (
            "CODEBUILD_PROJECT_KMS",
            r#"
Resources:
  Project:
    Type: AWS::CodeBuild::Project
    Properties:
      ServiceRole: !Ref Role
"#,
        ),
        (
            "ECS_TASK_READ_ONLY_ROOT_FILESYSTEM",
            r#"
Resources:
  Task:
    Type: AWS::ECS::TaskDefinition
    Properties:
      ContainerDefinitions:
        - {Name: app, Image: app, User: "1000", ReadonlyRootFilesystem: true}
        - {Name: sidecar, Image: sidecar, User: "1000"}
"#,
        ),
        (
            "ECS_TASK_NON_ROOT_USER",
            r#"
Resources:
  Task:
    Type: AWS::ECS::TaskDefinition
    Properties:
      ContainerDefinitions:
        - {Name: app, Image: app, User: "0:1000", ReadonlyRootFilesystem: true}
"#,
        ),
        (
            "ECS_TASK_NON_ROOT_USER",
            r#"
Resources:
  Task:
    Type: AWS::ECS::TaskDefinition
    Properties:
      ContainerDefinitions:
        - {Name: app, Image: app, ReadonlyRootFilesystem: true}
"#,
        ),
        (
            "ECS_TASK_NON_ROOT_USER",
            r#"
Resources:
  Task:
    Type: AWS::ECS::TaskDefinition
    Properties:
      ContainerDefinitions:
        - {Name: app, Image: app, User: "1000", ReadonlyRootFilesystem: true, Privileged: true}
"#,
        ),
        (
            "LOG_GROUP_RETENTION",
            r#"
Resources:
  Logs:
    Type: AWS::Logs::LogGroup
    Properties:
      LogGroupName: /app
"#,
        ),
    ];

    /// A folder under the target directory for one test's files.
    fn scratch(name: &str) -> PathBuf {
        let dir = project::target_dir().join("lint-tests/cfn-guard").join(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).unwrap();
        }
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Runs the project's rules for real over `templates` (name, text) and returns the findings.
    fn check(test: &str, templates: &[(String, &str)]) -> Vec<Finding> {
        let bin = tools::CFN_GUARD.ensure(&Printer::plain(Verbosity::Quiet)).unwrap();
        let dir = scratch(test);
        let mut parsed = Vec::new();
        for (name, text) in templates {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            parsed.push(Template::parse(&path, text).unwrap());
        }
        let refs: Vec<&Template> = parsed.iter().collect();
        run(&bin, &project::root().join(RULES_DIR), &refs).unwrap()
    }

    #[test]
    fn each_rule_fails_on_its_bad_templates_only() {
        let templates: Vec<(String, &str)> =
            BAD.iter().enumerate().map(|(index, (rule, text))| (format!("{index:02}-{rule}.yaml"), *text)).collect();
        let findings = check("bad", &templates);
        let mut fired: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for finding in &findings {
            let name = Path::new(&finding.file).file_name().unwrap().to_string_lossy().into_owned();
            fired.entry(name).or_default().insert(finding.rule.clone());
            let resource = finding.message.split(':').next().unwrap();
            assert!(
                ["Bucket", "Key", "Role", "Policy", "Group", "Ingress", "Repository", "Project", "Task", "Logs"]
                    .contains(&resource),
                "{finding} names its resource"
            );
            assert!(finding.line > 1, "{finding} points into the template");
            // cfn-guard's own messages start "Check was not compliant" or "The comparison could not".
            assert!(
                !finding.message.contains("not compliant") && !finding.message.contains("could not"),
                "{finding} carries the rule's own message"
            );
        }
        for (name, _) in &templates {
            let rule = name[3..].trim_end_matches(".yaml");
            assert_eq!(fired.get(name), Some(&BTreeSet::from([rule.to_string()])), "{name}: {findings:#?}");
        }
        let covered: BTreeSet<String> = BAD.iter().map(|(rule, _)| rule.to_string()).collect();
        assert_eq!(covered, rule_names(&project::root().join(RULES_DIR)).unwrap(), "every rule has a bad template");
    }

    #[test]
    fn the_project_templates_pass_and_suppressions_hold() {
        let root = project::root();
        let texts: Vec<(String, String)> = crate::template::files(&root.join("cfn"))
            .unwrap()
            .into_iter()
            .map(|path| {
                let name = path.strip_prefix(root.join("cfn")).unwrap().display().to_string().replace('/', "-");
                (name, std::fs::read_to_string(&path).unwrap())
            })
            .collect();
        let suppressed = r#"
Resources:
  Bucket:
    Type: AWS::S3::Bucket
    Metadata:
      guard:
        SuppressedRules: [S3_BUCKET_KMS_ENCRYPTION, S3_BUCKET_VERSIONING, S3_BUCKET_PUBLIC_ACCESS_BLOCK, S3_BUCKET_TLS_POLICY]
        Reasons: {S3_BUCKET_KMS_ENCRYPTION: test, S3_BUCKET_VERSIONING: test, S3_BUCKET_PUBLIC_ACCESS_BLOCK: test, S3_BUCKET_TLS_POLICY: test}
"#;
        let mut templates: Vec<(String, &str)> =
            texts.iter().map(|(name, text)| (name.clone(), text.as_str())).collect();
        templates.push(("suppressed.yaml".to_string(), suppressed));
        let findings = check("project", &templates);
        let lines: Vec<String> = findings.iter().map(ToString::to_string).collect();
        assert!(lines.is_empty(), "{}", lines.join("\n"));
    }
}
