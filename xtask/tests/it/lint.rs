//! `cargo xtask lint` against the real linters (cfn-lint and checkov from the project venv,
//! cfn-guard from target/tools, cfn_nag when on PATH) and the pattern's own rules: the project's
//! templates pass, each rule fails on a small template made to break it, and unreadable input
//! stops the lint with the file named. The venv and cfn-guard are installed on first use (about
//! two and five minutes; PyPI and crates.io must be reachable).

use std::collections::BTreeSet;
use std::path::PathBuf;

use xtask::Ctx;
use xtask::lint::{self, Args, Linter, Status, rules};
use xtask::output::{Exit, Printer, Verbosity};
use xtask::template::Template;

fn ctx() -> Ctx {
    Ctx { root: xtask::project::root(), printer: Printer::plain(Verbosity::Quiet) }
}

fn fixture(name: &str) -> PathBuf {
    xtask::project::root().join("xtask/tests/fixtures/lint").join(name)
}

fn only(paths: &[&str], linters: &[Linter]) -> Args {
    Args { paths: paths.iter().map(|name| fixture(name)).collect(), only: linters.to_vec(), ..Args::all() }
}

#[test]
fn the_project_templates_pass_every_linter() {
    let report = lint::lint(&ctx(), &Args::all()).unwrap();
    let findings: Vec<String> = report.findings.iter().map(ToString::to_string).collect();
    assert!(findings.is_empty(), "findings on the project's templates:\n{}", findings.join("\n"));

    assert_eq!(report.linters[&Linter::CfnLint], Status::Ran);
    assert_eq!(report.linters[&Linter::Checkov], Status::Ran);
    assert_eq!(report.linters[&Linter::CfnGuard], Status::Ran);
    assert_eq!(report.linters[&Linter::Rules], Status::Ran);
    assert_ne!(report.linters[&Linter::CfnNag], Status::NotSelected);

    let root = xtask::project::root();
    for dir in ["cfn/tools", "cfn/workload"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.strip_prefix(&root).unwrap().display().to_string();
            assert!(report.templates.contains(&name), "{name} was not linted: {:?}", report.templates);
        }
    }
    let expanded = report.templates.iter().find(|name| name.ends_with("cfn/pipeline.json"));
    let expanded = expanded.expect("the pipeline expanded for deploy.toml is linted");
    let expanded = Template::load(&root.join(expanded)).unwrap();
    let stages = expanded.body["Resources"]["Pipeline"]["Properties"]["Stages"].as_array().unwrap();
    let names: Vec<&str> = stages.iter().filter_map(|stage| stage["Name"].as_str()).collect();
    assert_eq!(names, ["Source", "Build", "Wave1", "Wave2"], "deploy.toml has waves 1 and 2");
}

#[test]
fn each_rule_fails_on_its_bad_template() {
    for rule in rules::RULES {
        let path = fixture(&format!("{rule}.yaml"));
        let template = Template::load(&path).unwrap();
        let findings = rules::check(&template, "fixture.yaml");
        let fired: BTreeSet<&str> = findings.iter().map(|finding| finding.rule.as_str()).collect();
        assert_eq!(fired, BTreeSet::from([*rule]), "{}: {findings:#?}", path.display());
        for finding in &findings {
            assert!(finding.line > 1, "{finding} points at the resource, not the top of the file");
        }
    }
}

#[test]
fn a_finding_fails_the_command_with_exit_1() {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let error = runtime.block_on(lint::run(&ctx(), only(&["ecr-immutable.yaml"], &[Linter::Rules]))).unwrap_err();
    let exit = error.downcast_ref::<Exit>().expect("findings exit through Exit");
    assert_eq!(exit.0, 1);

    let report = lint::lint(&ctx(), &only(&["ecr-immutable.yaml"], &[Linter::Rules])).unwrap();
    let lines: Vec<String> = report.findings.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "xtask/tests/fixtures/lint/ecr-immutable.yaml:3: [gbg ecr-immutable] repository Repository allows overwriting tags: \
          set ImageTagMutability: IMMUTABLE"
        ]
    );
    assert_eq!(report.linters[&Linter::Checkov], Status::NotSelected);
}

#[test]
fn iam_findings_name_the_resource_the_statement_and_the_fix() {
    let fixtures =
        ["iam-passrole-wildcard.yaml", "iam-write-wildcard.yaml", "iam-managed-policy.yaml", "iam-open-principal.yaml"];
    let report = lint::lint(&ctx(), &only(&fixtures, &[Linter::Rules])).unwrap();
    let lines: Vec<String> = report.findings.iter().map(ToString::to_string).collect();
    let dir = "xtask/tests/fixtures/lint";
    assert_eq!(
        lines,
        [
            format!(
                "{dir}/iam-managed-policy.yaml:14: [gbg iam-managed-policy] role Role attaches the AWS-managed policy \
                 AmazonEC2ContainerRegistryFullAccess, which allows every action of its services on every resource: \
                 replace it with an inline policy naming the actions and resources the role needs"
            ),
            format!(
                "{dir}/iam-managed-policy.yaml:15: [gbg iam-managed-policy] role Role attaches the AWS-managed policy \
                 AdministratorAccess, which allows every action on every resource: replace it with an inline policy \
                 naming the actions and resources the role needs"
            ),
            format!(
                "{dir}/iam-open-principal.yaml:15: [gbg iam-open-principal] role Role, trust policy, statement 1 lets \
                 every principal of account arn:${{AWS::Partition}}:iam::${{ToolsAccount}}:root that its own policies \
                 allow assume the role, without a Condition: add a Condition naming the roles that may (ArnEquals \
                 aws:PrincipalArn), or trust those roles' ARNs"
            ),
            format!(
                "{dir}/iam-open-principal.yaml:27: [gbg iam-open-principal] queue policy QueuePolicy, statement 1 \
                 allows everyone (Principal `*`) without a Condition: name the principals, or add a Condition \
                 (aws:PrincipalOrgID, aws:SourceArn, aws:SourceAccount)"
            ),
            format!(
                "{dir}/iam-passrole-wildcard.yaml:19: [gbg iam-passrole-wildcard] role Role, inline policy \
                 pass-any-role, statement PassAnyRole allows iam:PassRole on every role (arn:aws:iam::*:*): name the \
                 roles it may pass in Resource (a role passed to a service acts with that role's permissions; \
                 iam:PassedToService limits the service, not the role)"
            ),
            format!(
                "{dir}/iam-write-wildcard.yaml:10: [gbg iam-write-wildcard] policy Policy, statement EveryBucket allows \
                 s3:Put*, s3:Delete* on every resource (arn:aws:s3::*:*): name the resources it writes \
                 (arn:${{AWS::Partition}}:s3:::<bucket>/<key prefix>*)"
            ),
        ]
    );
}

#[test]
fn unreadable_input_names_the_file() {
    let cases = [
        (
            "syntax-error.yaml",
            "1 of 1 files cannot be linted:\nxtask/tests/fixtures/lint/syntax-error.yaml:5: YAML syntax error",
        ),
        ("not-a-template.yaml", "xtask/tests/fixtures/lint/not-a-template.yaml is not a CloudFormation template"),
        ("no-such-file.yaml", "no-such-file.yaml does not exist"),
    ];
    for (name, expected) in cases {
        let error = lint::lint(&ctx(), &only(&[name], &[Linter::Rules])).unwrap_err();
        let message = format!("{error:#}");
        assert!(message.contains(expected), "{name}: {message}");
    }
}

#[test]
fn checkov_findings_and_stale_suppressions_are_reported() {
    let report = lint::lint(&ctx(), &only(&["stale-suppression.yaml"], &[Linter::Checkov])).unwrap();
    let lines: Vec<String> = report.findings.iter().map(ToString::to_string).collect();
    let file = "xtask/tests/fixtures/lint/stale-suppression.yaml";
    assert!(
        lines.contains(&format!(
            "{file}:10: [gbg stale-suppression] Repository suppresses checkov CKV_AWS_18, which checkov does not run \
             on it: remove the suppression"
        )),
        "{lines:#?}"
    );
    assert!(!lines.iter().any(|line| line.contains("CKV_AWS_136")), "the live suppression suppresses: {lines:#?}");
    assert!(
        lines.contains(&format!(
            "{file}:19: [checkov CKV_AWS_21] AWS::S3::Bucket.Bucket: Ensure the S3 bucket has versioning enabled"
        )),
        "checkov's own findings carry the resource's line: {lines:#?}"
    );
}
