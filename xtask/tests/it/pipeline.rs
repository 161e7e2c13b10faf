//! `cargo xtask pipeline run --local` through the real binary, after `deploy --local` built the
//! topology on a `moto_server` of the test's own: Source, Build and every deploy action, each as
//! the role AWS would use, the build running buildspec.yaml's own commands in a `.git`-less export
//! of this repository, pushing to the test's own local registries through the real Docker engine.
//!
//! What the emulator cannot prove, and so these tests do not claim: it evaluates no IAM policy
//! (an action runs under the right role, but nothing here says the role may do what it does:
//! that is the access proof's part) and checks no trust policy; its CodeDeploy records a
//! deployment and never runs it, so the deploy actions end `recorded`, with no traffic shifted.

use std::time::Duration;

use serde_json::Value;
use xshell::{Shell, cmd};

use aws_sdk_cloudformation::types::{Capability, Parameter};
use xtask::aws::Aws;

use crate::package::Topology;
use crate::support::{Cleanup, run_xtask};

/// The app of this test: fixed, so that the rehearsal's build folder (and its compiled
/// dependencies) is reused from one test run to the next.
const APP: &str = "plrehearse";

/// A commit on a scratch branch of this repository whose `index.html` differs from `base`'s,
/// made without touching the working tree, the index or any other branch; the branch is deleted
/// when dropped.
struct ScratchCommit {
    branch: String,
    commit: String,
}

impl ScratchCommit {
    fn new(base: &str) -> ScratchCommit {
        let sh = Shell::new().unwrap();
        sh.change_dir(xtask::project::root());
        let index = std::env::temp_dir().join(format!("gbg-it-index-{}", std::process::id()));
        let index_arg = index.display().to_string();
        cmd!(sh, "git read-tree {base}").env("GIT_INDEX_FILE", &index_arg).quiet().run().unwrap();
        let page = cmd!(sh, "git show {base}:index.html").quiet().read().unwrap();
        let changed = format!("{page}\n<!-- pipeline rehearsal test {} -->\n", std::process::id());
        let blob = cmd!(sh, "git hash-object -w --stdin").stdin(changed).quiet().read().unwrap();
        let entry = format!("100644,{blob},index.html");
        cmd!(sh, "git update-index --cacheinfo {entry}").env("GIT_INDEX_FILE", &index_arg).quiet().run().unwrap();
        let tree = cmd!(sh, "git write-tree").env("GIT_INDEX_FILE", &index_arg).quiet().read().unwrap();
        let _ = std::fs::remove_file(&index);
        let commit = cmd!(sh, "git commit-tree {tree} -p {base} -m 'pipeline rehearsal test'")
            .env("GIT_AUTHOR_NAME", "gbg test")
            .env("GIT_AUTHOR_EMAIL", "test@example.com")
            .env("GIT_COMMITTER_NAME", "gbg test")
            .env("GIT_COMMITTER_EMAIL", "test@example.com")
            .quiet()
            .read()
            .unwrap();
        let branch = format!("gbg-it-rehearsal-{}", std::process::id());
        let reference = format!("refs/heads/{branch}");
        cmd!(sh, "git update-ref {reference} {commit}").quiet().run().unwrap();
        ScratchCommit { branch, commit }
    }
}

impl Drop for ScratchCommit {
    fn drop(&mut self) {
        let sh = Shell::new().unwrap();
        sh.change_dir(xtask::project::root());
        let reference = format!("refs/heads/{}", self.branch);
        let _ = cmd!(sh, "git update-ref -d {reference}").quiet().run();
    }
}

fn head() -> String {
    let sh = Shell::new().unwrap();
    sh.change_dir(xtask::project::root());
    cmd!(sh, "git rev-parse HEAD").quiet().read().unwrap()
}

/// The rehearsal's JSON, expecting success.
fn rehearse(topology: &Topology, reference: &str) -> (Value, String) {
    let run = topology.xtask(&["pipeline", "run", "--ref", reference, "--skip-check", "--json"]);
    assert_eq!(run.code, Some(0), "the rehearsal of {reference} failed:\n{}", run.stderr);
    let report: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|error| panic!("no JSON from the rehearsal ({error}):\n{}", run.stderr));
    (report, run.stderr)
}

/// Every action of the report: (stage, action, status, identity).
fn actions(report: &Value) -> Vec<(String, String, String, String)> {
    let mut all = Vec::new();
    for stage in report["stages"].as_array().unwrap() {
        for action in stage["actions"].as_array().unwrap() {
            all.push((
                stage["name"].as_str().unwrap().to_string(),
                action["name"].as_str().unwrap().to_string(),
                action["status"].as_str().unwrap().to_string(),
                action["identity"].as_str().unwrap().to_string(),
            ));
        }
    }
    all
}

/// The digest the region's local registry holds for `tag`, read over the registry protocol.
fn registry_digest(topology: &Topology, region: &str, tag: &str) -> Option<String> {
    let state: Value = serde_json::from_slice(
        &std::fs::read(topology.scratch.path.join("local").join("registries.json")).expect("the registries' state"),
    )
    .unwrap();
    let port = state[region]["port"].as_u64().expect("a port per region");
    let url = format!("http://127.0.0.1:{port}/v2/{APP}/manifests/{tag}");
    let answer = xtask::http::request(
        "GET",
        &url,
        &[(
            "Accept",
            "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json",
        )],
        &[],
        Duration::from_secs(10),
    )
    .unwrap();
    (answer.status == 200).then(|| answer.header("docker-content-digest").unwrap().to_string())
}

/// A stack as deployed: its template and its parameters' values.
struct Snapshot {
    body: String,
    parameters: Vec<Parameter>,
}

/// Deploys `stack` again with its deployed template changed by `edit` and every parameter as it
/// was, as `cargo xtask deploy` would after that edit of the template; returns the stack as it was.
/// Every parameter is given its value again: moto's UsePreviousValue fails (HTTP 500) on a
/// parameter that took its default.
async fn redeploy_edited(
    aws: &Aws,
    account: &str,
    region: &str,
    stack: &str,
    edit: impl Fn(&str) -> String,
) -> Snapshot {
    let cloudformation = aws.cloudformation(account, region).await.unwrap();
    let body =
        cloudformation.get_template().stack_name(stack).send().await.unwrap().template_body().unwrap().to_string();
    let described = cloudformation.describe_stacks().stack_name(stack).send().await.unwrap();
    // moto's DescribeStacks shows a list parameter as Python's list repr: given back as the list.
    let parameters: Vec<Parameter> = described.stacks()[0]
        .parameters()
        .iter()
        .map(|parameter| {
            let value = parameter.parameter_value().unwrap_or_default();
            let value =
                xtask::engine::deployed::python_list(value).map_or_else(|| value.to_string(), |items| items.join(","));
            Parameter::builder().parameter_key(parameter.parameter_key().unwrap()).parameter_value(value).build()
        })
        .collect();
    let original = Snapshot { body, parameters };
    let edited = edit(&original.body);
    assert_ne!(edited, original.body, "the edit of {stack} changed nothing");
    update(aws, account, region, stack, &edited, &original.parameters).await;
    original
}

/// Puts `snapshot` back.
async fn restore(aws: &Aws, account: &str, region: &str, stack: &str, snapshot: &Snapshot) {
    update(aws, account, region, stack, &snapshot.body, &snapshot.parameters).await;
}

async fn update(aws: &Aws, account: &str, region: &str, stack: &str, body: &str, parameters: &[Parameter]) {
    let cloudformation = aws.cloudformation(account, region).await.unwrap();
    cloudformation
        .update_stack()
        .stack_name(stack)
        .template_body(body)
        .set_parameters(Some(parameters.to_vec()))
        .capabilities(Capability::CapabilityNamedIam)
        .send()
        .await
        .unwrap_or_else(|error| panic!("updating {stack}: {}", xtask::aws::AwsError::new(error, account, region)));
    let status = cloudformation.describe_stacks().stack_name(stack).send().await.unwrap().stacks()[0]
        .stack_status()
        .map(|status| status.as_str().to_string());
    assert_eq!(status.as_deref(), Some("UPDATE_COMPLETE"), "{stack}");
}

/// `verify --local` over the rehearsal's recorded calls, expecting it to deny `action` to `role`.
fn verify_denies(topology: &Topology, role: &str, action: &str) {
    let run = topology.xtask(&["verify"]);
    assert_eq!(run.code, Some(1), "verify should deny {role} {action}:\n{}", run.stderr);
    let line = run
        .stderr
        .lines()
        .find(|line| line.starts_with("error: ") && line.contains(&format!("role/{role} may not {action} ")))
        .unwrap_or_else(|| panic!("no denial of {action} to {role}:\n{}", run.stderr));
    assert!(line.contains(" on arn:aws:"), "the denial names the resource: {line}");
}

/// After `deploy --local`: the whole pipeline rehearsed from this repository's HEAD with every
/// action under its own role and the image tagged with the source commit; a new commit on a
/// scratch branch pushes a new tag; the same commit again builds and uploads nothing new; and the
/// build folder, which has no `.git`, refuses to tag an image without CodeBuild's variable.
#[tokio::test(flavor = "multi_thread")]
async fn the_pipeline_runs_as_aws_runs_it_on_every_commit() {
    let topology = Topology::new("pipeline", Some(APP), "");
    let deploy_calls = topology.out("deploy-calls.jsonl");
    let deployed = run_xtask(
        &["deploy", "--image", crate::package::IMAGE, "--config", topology.config.to_str().unwrap(), "--local"],
        &[
            ("GBG_LOCAL_DIR", topology.scratch.path.join("local").to_str().unwrap()),
            ("GBG_CALL_LOG", deploy_calls.to_str().unwrap()),
            ("NO_COLOR", "1"),
        ],
    );
    assert_eq!(deployed.code, Some(0), "deploy --local failed:\n{}", deployed.stderr);
    let mut cleanup = Cleanup::default();

    // 0. The operator's own calls: the key policy lets it use the key through S3 (the first
    // release's targets and the gitflow Lambda's code are uploaded under it).
    let proven = topology.xtask(&["verify", "--calls", deploy_calls.to_str().unwrap(), "--json"]);
    assert_eq!(proven.code, Some(0), "the operator's deploy calls are not all allowed:\n{}", proven.stderr);
    let proof: Value = serde_json::from_str(&proven.stdout).unwrap();
    let findings = proof["findings"].as_array().unwrap();
    // The access map, proven too: the AWS services' own calls as our roles, each service's trust.
    let map = proof["map"].as_array().unwrap();
    assert!(map.len() > 100 && map.iter().all(|finding| finding["allowed"] == true), "{map:?}");
    for by in [
        "CodeBuild",
        "CodePipeline",
        "CodeDeploy for india",
        "ECS starting a task of india",
        "EventBridge's pipeline trigger",
    ] {
        assert!(map.iter().any(|finding| finding["by"] == by), "{by} is on the access map");
    }
    assert!(
        findings.iter().any(|finding| finding["actor"]
            .as_str()
            .unwrap()
            .ends_with("role/OrganizationAccountAccessRole")
            && finding["action"] == "kms:GenerateDataKey"
            && finding["allowed"] == true),
        "the operator's SSE-KMS uploads are proven: {findings:?}"
    );
    let (config, aws) = topology.aws().await;
    let head = head();

    // 1. This repository's HEAD, through every stage, every recorded call proven.
    let (first, first_log) = rehearse(&topology, "HEAD");
    assert!(first_log.contains("authorizations allowed by the policies we ship"), "{first_log}");
    let access = first["access"].as_array().unwrap();
    assert!(access.iter().all(|finding| finding["allowed"] == true), "{access:?}");
    for (role, action) in
        [("build", "s3:PutObject"), ("pipeline", "sts:AssumeRole"), ("release-ap-south-1", "kms:Decrypt")]
    {
        assert!(
            access.iter().any(|finding| finding["actor"].as_str().unwrap().ends_with(&format!("role/{APP}-{role}"))
                && finding["action"] == action),
            "the rehearsal recorded {role} {action}: {access:?}"
        );
    }
    assert_eq!(first["revision"], head.as_str());
    let tag = &head[..12];
    assert_eq!(first["image"]["tag"], tag);
    cleanup.image(format!("{APP}:{tag}"));
    let stages: Vec<&str> =
        first["stages"].as_array().unwrap().iter().map(|stage| stage["name"].as_str().unwrap()).collect();
    assert_eq!(stages, ["Source", "Build", "Wave1", "Wave2"]);
    let all = actions(&first);
    let (_, _, status, identity) = &all[0];
    assert_eq!(status, "succeeded");
    assert!(
        identity.contains(&format!(":assumed-role/{APP}-pipeline/")),
        "the source runs as the pipeline role: {identity}"
    );
    let (_, _, status, identity) = &all[1];
    assert_eq!(status, "succeeded");
    assert!(
        identity.starts_with(&format!("arn:aws:sts::{}:assumed-role/{APP}-build/", config.tools.account)),
        "the build runs as the build role: {identity}"
    );
    for workload in &config.workloads {
        let (_, _, status, identity) = all
            .iter()
            .find(|(_, name, _, _)| *name == format!("Deploy-{}", workload.name))
            .expect("a deploy action per workload");
        assert_eq!(status, "recorded", "the emulator records the deployment, never runs it");
        assert!(
            identity.starts_with(&format!(
                "arn:aws:sts::{}:assumed-role/{APP}-release-{}/",
                workload.account, workload.region
            )),
            "{}'s deploy runs as its release role: {identity}",
            workload.name
        );
        let codedeploy = aws.codedeploy(&workload.account, &workload.region).await.unwrap();
        let listed =
            codedeploy.list_deployments().application_name(APP).deployment_group_name(APP).send().await.unwrap();
        assert_eq!(listed.deployments().len(), 1, "one deployment in {}", workload.name);
    }
    let digest = first["image"]["digest"].as_str().unwrap().to_string();
    for region in
        config.regions().iter().filter(|region| config.workloads.iter().any(|workload| &workload.region == *region))
    {
        assert_eq!(
            registry_digest(&topology, region, tag).as_deref(),
            Some(digest.as_str()),
            "{region} holds the image"
        );
    }

    // 2. A new commit on a scratch branch: a new tag, everywhere.
    let scratch = ScratchCommit::new(&head);
    let (second, _) = rehearse(&topology, &scratch.branch);
    let second_tag = &scratch.commit[..12];
    cleanup.image(format!("{APP}:{second_tag}"));
    assert_eq!(second["revision"], scratch.commit.as_str());
    assert_eq!(second["image"]["tag"], second_tag);
    assert_ne!(second["image"]["digest"], digest.as_str(), "a changed page is another image");
    for workload in &config.workloads {
        assert!(
            registry_digest(&topology, &workload.region, second_tag).is_some(),
            "{} got the new tag",
            workload.name
        );
    }

    // 3. The same commit again, with the build role's s3:PutObject taken away and its stack
    // redeployed: the image is found in every registry and nothing is built, pushed or uploaded,
    // but the build's artifact upload is a call AWS would refuse: the rehearsal fails, naming it.
    let tools = (config.tools.account.clone(), config.tools.region.clone());
    let build_stack = format!("{APP}-build");
    // The log groups' ARNs are written out instead of read with Fn::GetAtt (the same ARNs, so the
    // same policy): after one UpdateStack, moto's next one fails on a modified resource that names
    // an unmodified one with Fn::GetAtt ("references undefined resource BuildLogGroup").
    let without_get_att = |body: &str| {
        body.replace(
            "!GetAtt BuildLogGroup.Arn",
            "!Sub \"arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/codebuild/${ProjectName}:*\"",
        )
        .replace(
            "!GetAtt ValidateLogGroup.Arn",
            "!Sub \"arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/codebuild/${ValidateProjectName}:*\"",
        )
    };
    let mut original = redeploy_edited(&aws, &tools.0, &tools.1, &build_stack, |body| {
        without_get_att(body).replacen("                  - s3:PutObject\n", "", 1)
    })
    .await;
    original.body = without_get_att(&original.body);
    let third = topology.xtask(&["pipeline", "run", "--ref", &scratch.branch, "--skip-check", "--json"]);
    assert_eq!(third.code, Some(1), "a build role without s3:PutObject must fail the rehearsal:\n{}", third.stderr);
    let third_report: Value = serde_json::from_str(&third.stdout).unwrap();
    assert_eq!(third_report["image"], second["image"]);
    assert!(third.stderr.contains("nothing to build or push"), "{}", third.stderr);
    assert!(third.stderr.contains("0 objects uploaded (0 bytes)"), "{}", third.stderr);
    assert!(
        third.stderr.lines().any(|line| line.starts_with("error: ")
            && line.contains(&format!("role/{APP}-build may not s3:PutObject on arn:aws:s3:::"))
            && line.contains("(S3 PutObject)")),
        "the denied call is named:\n{}",
        third.stderr
    );
    verify_denies(&topology, &format!("{APP}-build"), "s3:PutObject");
    restore(&aws, &tools.0, &tools.1, &build_stack, &original).await;

    // 4. More grants the pipeline needs, each taken away and redeployed: the proof names the call.
    let india = &config.workloads[0];
    let release_stack = format!("{APP}-release");
    // With it, a grant no recorded call needs but CodeDeploy does (it shifts the listeners as its
    // service role): the access map names the actor, the call and the listener.
    let original = redeploy_edited(&aws, &india.account, &india.region, &release_stack, |body| {
        body.replacen("                  - kms:Decrypt\n                  - kms:DescribeKey\n                Resource: !Ref ArtifactKeyArn", "                  - kms:DescribeKey\n                Resource: !Ref ArtifactKeyArn", 1)
            .replacen("                  - elasticloadbalancing:ModifyListener\n", "", 1)
    })
    .await;
    verify_denies(&topology, &format!("{APP}-release-{}", india.region), "kms:Decrypt");
    let run = topology.xtask(&["verify"]);
    assert!(
        run.stderr.lines().any(|line| line.starts_with("error: CodeDeploy for india (as arn:aws:iam::")
            && line.contains("CodeDeployRole")
            && line
                .contains("may not elasticloadbalancing:ModifyListener on arn:aws:elasticloadbalancing:ap-south-1:")
            && line.contains("getting-started-create-service-role")),
        "the map's denial names CodeDeploy, the listener and AWS's page:\n{}",
        run.stderr
    );
    restore(&aws, &india.account, &india.region, &release_stack, &original).await;

    let pipeline_stack = format!("{APP}-pipeline");
    let original = redeploy_edited(&aws, &tools.0, &tools.1, &pipeline_stack, |body| {
        let mut template: Value = serde_json::from_str(body).unwrap();
        let statements =
            template.pointer_mut("/Resources/PipelineRole/Properties/Policies/0/PolicyDocument/Statement").unwrap();
        for statement in statements.as_array_mut().unwrap() {
            if statement["Sid"] == "AssumeTheReleaseRoles" {
                statement["Action"] = Value::from("sts:TagSession");
            }
        }
        serde_json::to_string(&template).unwrap()
    })
    .await;
    verify_denies(&topology, &format!("{APP}-pipeline"), "sts:AssumeRole");
    restore(&aws, &tools.0, &tools.1, &pipeline_stack, &original).await;
    let restored = topology.xtask(&["verify"]);
    assert_eq!(restored.code, Some(0), "with every grant back, the proof passes:\n{}", restored.stderr);

    // 5. The build's folder has no .git: without CodeBuild's variable nothing is tagged.
    let export = xtask::project::target_dir().join("pipeline").join(APP).join("src");
    assert!(!export.join(".git").exists());
    let binary = export.join("target").join("debug").join("xtask");
    assert!(binary.is_file(), "the build compiled its own xtask in {}", export.display());
    let sh = Shell::new().unwrap();
    sh.change_dir(&export);
    let refused = cmd!(sh, "{binary} image")
        .env_remove("CODEBUILD_RESOLVED_SOURCE_VERSION")
        .quiet()
        .ignore_status()
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is not a git checkout") && stderr.contains("CODEBUILD_RESOLVED_SOURCE_VERSION="),
        "{stderr}"
    );
    assert!(!stderr.contains("Error {") && !stderr.contains("{ "), "no debug dump: {stderr}");
}
