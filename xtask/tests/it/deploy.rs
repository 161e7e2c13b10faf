//! `cargo xtask deploy`, `plan`, `status` and `destroy` through the real binary against a real
//! `moto_server` of the test's own, with the repo's topology (tools 111111111111 in ap-south-1;
//! workloads in 222222222222/ap-south-1, 333333333333/eu-central-1, 444444444444/us-east-1).
//!
//! These runs pass `--image`, so they deploy the stacks without building and pushing the site's
//! image (the release tests cover that path). What the emulator cannot prove: replica keys (its
//! CloudFormation skips them; the plan reports them as an emulator gap), bucket policies (declared
//! gaps; the Code* resources it skips get API stand-ins, asserted here), running tasks,
//! change-set diffs of updates, and deleting a VPC with route tables.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use xtask::aws::{Aws, Endpoint};
use xtask::config::Config;

use crate::release::deployments;
use crate::support::{Moto, Scratch, stderr};

const IMAGE: &str = "222222222222.dkr.ecr.ap-south-1.amazonaws.com/web@sha256:1111111111111111111111111111111111111111111111111111111111111111";

/// The repo's deploy.toml pointed at `port`, written into `scratch`, with `edit` applied.
fn write_config(scratch: &Scratch, port: u16, edit: impl Fn(String) -> String) -> PathBuf {
    let text = std::fs::read_to_string(xtask::project::root().join("deploy.toml")).expect("the repo's deploy.toml");
    let text = edit(format!("{text}\n[local]\nemulator_port = {port}\n"));
    let path = scratch.path.join("deploy.toml");
    std::fs::write(&path, text).expect("writing the test config");
    path
}

/// Runs `xtask <args> --config <config> --local` with the local state in `scratch`.
fn run(scratch: &Scratch, config: &Path, args: &[&str]) -> Output {
    let sh = xshell::Shell::new().expect("a shell");
    sh.change_dir(xtask::project::root());
    let xtask = env!("CARGO_BIN_EXE_xtask");
    xshell::cmd!(sh, "{xtask} {args...} --config {config} --local")
        .env("GBG_LOCAL_DIR", scratch.path.join("local"))
        .env("NO_COLOR", "1")
        .quiet()
        .ignore_status()
        .output()
        .expect("running the xtask binary")
}

fn summary(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("no JSON summary on stdout ({error}); stderr:\n{}", stderr(output)))
}

/// `(name, account, region) -> action` of a JSON summary.
fn actions(summary: &serde_json::Value) -> Vec<(String, String, String, String)> {
    summary["stacks"]
        .as_array()
        .expect("a stacks list")
        .iter()
        .map(|stack| {
            let field = |name: &str| stack[name].as_str().unwrap_or_default().to_string();
            (field("name"), field("account"), field("region"), field("action"))
        })
        .collect()
}

/// Asserts that a deploy's summary updated the service stacks and left every other stack alone
/// (the replica keys stay an emulator gap).
fn only_the_services_updated(summary: &serde_json::Value) {
    for (name, account, region, action) in actions(summary) {
        let expected = match name.as_str() {
            "web-service" => "updated",
            "web-key-replica" => "emulator-gap",
            _ => "unchanged",
        };
        assert_eq!(action, expected, "{name} in {account}/{region}");
    }
}

async fn aws(config: &Path, moto: &Moto) -> (Config, Aws) {
    let config = Config::load(config).expect("the test config loads");
    let aws = Aws::new(&config, Endpoint::Local(moto.url.clone())).await;
    (config, aws)
}

async fn outputs(aws: &Aws, account: &str, region: &str, stack: &str) -> std::collections::BTreeMap<String, String> {
    let client = aws.cloudformation(account, region).await.unwrap();
    let reply = client.describe_stacks().stack_name(stack).send().await.unwrap();
    reply.stacks()[0]
        .outputs()
        .iter()
        .map(|output| (output.output_key().unwrap().to_string(), output.output_value().unwrap().to_string()))
        .collect()
}

async fn parameters(aws: &Aws, account: &str, region: &str, stack: &str) -> std::collections::BTreeMap<String, String> {
    let client = aws.cloudformation(account, region).await.unwrap();
    let reply = client.describe_stacks().stack_name(stack).send().await.unwrap();
    reply.stacks()[0]
        .parameters()
        .iter()
        .map(|parameter| {
            (
                parameter.parameter_key().unwrap().to_string(),
                parameter.parameter_value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The kinds of resource the emulator's CloudFormation skips and a local deploy stands in for
/// through their own APIs, and how many the default topology has of each.
const STAND_INS: [(&str, usize); 5] = [
    ("AWS::CodeCommit::Repository", 1),
    ("AWS::CodeBuild::Project", 2),
    ("AWS::CodePipeline::Pipeline", 1),
    ("AWS::CodeDeploy::Application", 3),
    ("AWS::CodeDeploy::DeploymentGroup", 3),
];

/// Every gap of a stand-in kind in a deploy's JSON summary says `stand_in: api`, there are as
/// many as the topology has, and each note contains `word` (`created`, `found`) or, for those
/// `destroy` could not remove, `found`.
fn assert_stood_in(summary: &serde_json::Value, created: &[&str]) {
    let gaps: Vec<serde_json::Value> = summary["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row["emulator_gaps"].as_array().unwrap().clone())
        .collect();
    for (kind, count) in STAND_INS {
        let of_kind: Vec<&serde_json::Value> = gaps.iter().filter(|gap| gap["type"] == kind).collect();
        assert_eq!(of_kind.len(), count, "{kind}: {gaps:?}");
        for gap in of_kind {
            assert_eq!(gap["stand_in"], "api", "{gap}");
            let note = gap["note"].as_str().unwrap_or_default();
            let word = if created.contains(&kind) { "created through the" } else { "found (made by an earlier run)" };
            assert!(note.contains(word), "{kind}: {word:?} expected in {note:?}");
        }
    }
    // The other gaps (bucket policies, the alarm) have no stand-in, and say none.
    for gap in gaps.iter().filter(|gap| !STAND_INS.iter().any(|(kind, _)| gap["type"] == *kind)) {
        assert_eq!(gap["stand_in"], serde_json::Value::Null, "{gap}");
    }
}

/// The stand-ins as the emulator's APIs hold them: the repository, both build projects, the
/// pipeline and each workload's CodeDeploy application and group, with the template's key
/// properties. Returns the pipeline's and the release project's creation times, which a deploy
/// that leaves them does not change.
async fn assert_stand_ins_exist(aws: &Aws, config: &Config) -> (String, String) {
    let (tools, region) = (config.tools.account.as_str(), config.tools.region.as_str());
    let codecommit = aws.codecommit(tools, region).await.unwrap();
    let repository = codecommit.get_repository().repository_name(&config.source.repository).send().await.unwrap();
    let metadata = repository.repository_metadata().unwrap();
    assert_eq!(
        metadata.repository_description(),
        Some("Source of web-source; a merge to main starts the release pipeline.")
    );

    let codebuild = aws.codebuild(tools, region).await.unwrap();
    let names = [config.build_role_name(), config.validate_project_name()];
    let projects = codebuild.batch_get_projects().set_names(Some(names.to_vec())).send().await.unwrap();
    assert_eq!(projects.projects().len(), 2, "{:?}", projects.projects());
    for project in projects.projects() {
        assert_eq!(project.service_role(), Some("arn:aws:iam::111111111111:role/web-build"), "{project:?}");
        let variables = project.environment().unwrap().environment_variables();
        assert_eq!(variables[0].name(), "CI_STEP");
        let (source, step) = match project.name() == Some(names[0].as_str()) {
            true => ("CODEPIPELINE", "build"),
            false => ("CODECOMMIT", "check"),
        };
        assert_eq!(project.source().unwrap().r#type().as_str(), source);
        assert_eq!(variables[0].value(), step);
    }
    let release_project = projects
        .projects()
        .iter()
        .find(|project| project.name() == Some(names[0].as_str()))
        .and_then(|project| project.created())
        .map(|time| time.to_string())
        .unwrap();

    let codepipeline = aws.codepipeline(tools, region).await.unwrap();
    let pipeline = codepipeline.get_pipeline().name(&config.app).send().await.unwrap();
    let declaration = pipeline.pipeline().unwrap();
    assert_eq!(declaration.role_arn(), "arn:aws:iam::111111111111:role/web-pipeline");
    let stages: Vec<&str> = declaration.stages().iter().map(|stage| stage.name()).collect();
    assert_eq!(stages, ["Source", "Build", "Wave1", "Wave2"]);
    let deploys: Vec<&str> = declaration.stages()[3].actions().iter().map(|action| action.name()).collect();
    assert_eq!(deploys, ["Deploy-europe", "Deploy-us"]);
    let stores = declaration.artifact_stores().unwrap();
    assert_eq!(stores.len(), 3, "one artifact store per region: {stores:?}");
    let pipeline_created = pipeline.metadata().and_then(|metadata| metadata.created()).map(|time| time.to_string());

    for workload in &config.workloads {
        let codedeploy = aws.codedeploy(&workload.account, &workload.region).await.unwrap();
        let application = codedeploy.get_application().application_name(&config.app).send().await.unwrap();
        let platform = application.application().and_then(|info| info.compute_platform()).map(|p| p.as_str());
        assert_eq!(platform, Some("ECS"), "{}", workload.name);
        let group = codedeploy
            .get_deployment_group()
            .application_name(&config.app)
            .deployment_group_name(&config.app)
            .send()
            .await
            .unwrap();
        let info = group.deployment_group_info().unwrap();
        let role = info.service_role_arn().unwrap_or_default();
        assert!(
            role.starts_with(&format!("arn:aws:iam::{}:role/", workload.account)) && role.contains("CodeDeployRole"),
            "{}: {role}",
            workload.name
        );
        assert_eq!(info.deployment_config_name(), Some("CodeDeployDefault.ECSCanary10Percent5Minutes"));
        let services = info.ecs_services();
        assert_eq!((services[0].cluster_name(), services[0].service_name()), (Some("web"), Some("web")));
    }
    (pipeline_created.unwrap_or_default(), release_project)
}

/// After a destroy: the retained repository is still there, the projects and the pipeline are
/// gone, and the CodeDeploy stand-ins (which moto's API cannot delete) are still there; the
/// destroy's output said each.
async fn assert_stand_ins_removed(aws: &Aws, config: &Config, destroyed: &Output) {
    let text = stderr(destroyed);
    let (tools, region) = (config.tools.account.as_str(), config.tools.region.as_str());
    let codecommit = aws.codecommit(tools, region).await.unwrap();
    codecommit
        .get_repository()
        .repository_name(&config.source.repository)
        .send()
        .await
        .expect("the repository is retained");
    assert!(
        text.contains("Repository (AWS::CodeCommit::Repository) `web`: kept: its DeletionPolicy is Retain"),
        "{text}"
    );
    let codebuild = aws.codebuild(tools, region).await.unwrap();
    let names = vec![config.build_role_name(), config.validate_project_name()];
    let projects = codebuild.batch_get_projects().set_names(Some(names)).send().await.unwrap();
    assert!(projects.projects().is_empty(), "projects left: {:?}", projects.projects());
    assert!(text.contains("ValidateProject (AWS::CodeBuild::Project) `web-validate`: deleted"), "{text}");
    let codepipeline = aws.codepipeline(tools, region).await.unwrap();
    let error = codepipeline.get_pipeline().name(&config.app).send().await.expect_err("the pipeline is deleted");
    assert!(error.as_service_error().is_some_and(|error| error.is_pipeline_not_found_exception()), "{error:?}");
    assert!(text.contains("Pipeline (AWS::CodePipeline::Pipeline) `web`: deleted"), "{text}");
    for workload in &config.workloads {
        let codedeploy = aws.codedeploy(&workload.account, &workload.region).await.unwrap();
        codedeploy.get_application().application_name(&config.app).send().await.expect("kept: moto cannot delete it");
    }
    assert!(
        text.contains("DeploymentGroup (AWS::CodeDeploy::DeploymentGroup) `web/web`: kept: emulator gap: moto's CodeDeploy serves no DeleteDeploymentGroup"),
        "{text}"
    );
}

/// The whole topology, then a no-op redeploy, `plan` exiting 0, a changed setting touching only
/// its stacks, `status`, and `destroy`.
#[tokio::test(flavor = "multi_thread")]
async fn the_default_topology_deploys_whole_and_converges() {
    let moto = Moto::start();
    let scratch = Scratch::new("deploy");
    let config = write_config(&scratch, moto.port, |text| text);

    let first = run(&scratch, &config, &["deploy", "--image", IMAGE, "--json"]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(stderr(&first).contains("no topology lock: the artifact bucket"), "{}", stderr(&first));
    let created = actions(&summary(&first));
    assert_eq!(created.len(), 25, "{created:?}");
    // Resource-level truth: what moto's CloudFormation left out of a "complete" stack is listed on
    // the stack's row, and named in a note.
    let rows = summary(&first)["stacks"].as_array().expect("stack rows").clone();
    assert!(rows.iter().all(|row| row["emulator_gaps"].is_array()), "{rows:?}");
    let gap_types: std::collections::BTreeSet<String> = rows
        .iter()
        .flat_map(|row| row["emulator_gaps"].as_array().unwrap().iter())
        .map(|gap| gap["type"].as_str().unwrap_or_default().to_string())
        .collect();
    for kind in [
        "AWS::CodeCommit::Repository",
        "AWS::CodeBuild::Project",
        "AWS::CodePipeline::Pipeline",
        "AWS::CodeDeploy::Application",
        "AWS::CodeDeploy::DeploymentGroup",
    ] {
        assert!(gap_types.contains(kind), "{kind} not declared; gaps: {gap_types:?}");
    }
    for kind in ["AWS::EC2::VPC", "AWS::ElasticLoadBalancingV2::LoadBalancer", "AWS::ECS::Service", "AWS::KMS::Key"] {
        assert!(!gap_types.contains(kind), "{kind} is created by the emulator; gaps: {gap_types:?}");
    }
    assert!(stderr(&first).contains("EMULATOR GAPS"), "{}", stderr(&first));
    assert!(
        stderr(&first).contains("the emulator's CloudFormation reported the stack complete without creating"),
        "{}",
        stderr(&first)
    );
    for (name, account, region, action) in &created {
        let expected = if name == "web-key-replica" { "emulator-gap" } else { "created" };
        assert_eq!(action, expected, "{name} in {account}/{region}");
    }
    for workload in [("222222222222", "ap-south-1"), ("333333333333", "eu-central-1"), ("444444444444", "us-east-1")] {
        for stack in ["web-network", "web-alb", "web-ecr", "web-service", "web-release"] {
            assert!(
                created.contains(&(stack.into(), workload.0.into(), workload.1.into(), "created".into())),
                "{stack} {workload:?}"
            );
        }
    }

    // What the emulator's CloudFormation skipped of the Code* resources stands in, made through
    // their own APIs from the templates' properties.
    assert_stood_in(&summary(&first), &STAND_INS.map(|(kind, _)| kind));
    let (topology, aws) = aws(&config, &moto).await;
    let made = assert_stand_ins_exist(&aws, &topology).await;

    // Values wired across stacks, accounts and regions.
    let key = outputs(&aws, "111111111111", "ap-south-1", "web-key").await;
    let key_id = &key["KeyId"];
    let network = outputs(&aws, "333333333333", "eu-central-1", "web-network").await;
    let alb = parameters(&aws, "333333333333", "eu-central-1", "web-alb").await;
    assert_eq!(alb["VpcId"], network["VpcId"]);
    let release = parameters(&aws, "333333333333", "eu-central-1", "web-release").await;
    assert_eq!(release["ArtifactKeyArn"], format!("arn:aws:kms:eu-central-1:111111111111:key/{key_id}"));
    assert_eq!(release["ArtifactBucketName"], "web-artifacts-111111111111-eu-central-1");
    assert_eq!(release["PipelineRoleArn"], "arn:aws:iam::111111111111:role/web-pipeline");
    let artifacts = parameters(&aws, "111111111111", "us-east-1", "web-artifacts").await;
    assert_eq!(artifacts["KeyArn"], format!("arn:aws:kms:us-east-1:111111111111:key/{key_id}"));
    let service = parameters(&aws, "444444444444", "us-east-1", "web-service").await;
    assert_eq!(service["ImageUri"], IMAGE);
    assert_eq!(service["DesiredCount"], "2");

    // A second deploy changes nothing, and `plan` agrees.
    let second = run(&scratch, &config, &["deploy", "--image", IMAGE, "--json"]);
    assert!(second.status.success(), "{}", stderr(&second));
    for (name, account, region, action) in actions(&summary(&second)) {
        let expected = if name == "web-key-replica" { "emulator-gap" } else { "unchanged" };
        assert_eq!(action, expected, "{name} in {account}/{region}");
    }
    // The stand-ins are found and left as they are.
    assert_stood_in(&summary(&second), &[]);
    assert_eq!(assert_stand_ins_exist(&aws, &topology).await, made, "a second deploy made nothing anew");
    let plan = run(&scratch, &config, &["plan"]);
    assert_eq!(plan.status.code(), Some(0), "{}", stderr(&plan));
    assert!(stderr(&plan).contains("0 of 25 stacks would change"), "{}", stderr(&plan));

    two_operators_take_turns(&scratch, &config, &aws).await;

    // One setting changed: the stacks that take it change, nothing else; plan says so first.
    let scaled = write_config(&scratch, moto.port, |text| format!("{text}\n[service]\ndesired_count = 3\n"));
    let plan = run(&scratch, &scaled, &["plan"]);
    assert_eq!(plan.status.code(), Some(1), "{}", stderr(&plan));
    assert!(stderr(&plan).contains("3 of 25 stacks would change"), "{}", stderr(&plan));
    let third = run(&scratch, &scaled, &["deploy", "--image", IMAGE, "--json"]);
    assert!(third.status.success(), "{}", stderr(&third));
    only_the_services_updated(&summary(&third));
    assert_eq!(parameters(&aws, "222222222222", "ap-south-1", "web-service").await["DesiredCount"], "3");

    let status = run(&scratch, &scaled, &["status", "--json"]);
    assert!(status.status.success(), "{}", stderr(&status));
    let states: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let deployed = states["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|row| row["status"] == "UPDATE_COMPLETE" || row["status"] == "CREATE_COMPLETE")
        .count();
    assert_eq!(deployed, 23, "{states}");

    // Teardown: nothing left but what the emulator cannot delete, each said. Every stack's
    // resources are read before its deletion and looked for after it (`destroy/leftovers.rs`):
    // moto's CloudFormation leaves the alb stack's target groups behind (no delete handler), and
    // destroy finds them by the ARNs the stack listed and removes them (declared), so that
    // destroy -> deploy -> destroy converges; the network stack's deletion fails on its route
    // tables and moto drops its record, keeping the VPC: declared, with what was not checked.
    let destroyed = run(&scratch, &scaled, &["destroy", "--force", "--json"]);
    assert!(destroyed.status.success(), "{}", stderr(&destroyed));
    for (name, account, region, action) in actions(&summary(&destroyed)) {
        let expected = match name.as_str() {
            "web-key-replica" | "web-network" | "web-alb" => "emulator-gap",
            _ => "deleted",
        };
        assert_eq!(action, expected, "{name} in {account}/{region}");
    }
    let rows = summary(&destroyed)["steps"].as_array().expect("step rows").clone();
    let row = |id: &str, account: &str| {
        rows.iter()
            .find(|row| row["id"].as_str().is_some_and(|found| found.starts_with(id)) && row["account"] == account)
            .unwrap_or_else(|| panic!("no row {id} in {account}: {rows:?}"))
            .clone()
    };
    let alb = row("web-alb@", "333333333333");
    assert_eq!(alb["status"], "DELETE_COMPLETE", "{alb}");
    let detail = alb["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("moto's CloudFormation deleted the stack but left target group web-blue (BlueTargetGroup)")
            && detail.contains("left target group web-blue (BlueTargetGroup), target group web-green (GreenTargetGroup); destroy deleted them through their APIs so that the next deploy can create them again"),
        "{alb}"
    );
    let network = row("web-network@", "333333333333");
    assert_eq!(network["status"], "LEFT_BY_EMULATOR", "{network}");
    let detail = network["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("dropped the stack's record on a failed deletion"), "{network}");
    assert!(
        detail.contains("possibly left in the emulator until `cargo xtask local down` (not checked: no API here looks for their types): Vpc (AWS::EC2::VPC)"),
        "{network}"
    );
    assert!(stderr(&destroyed).contains("deleted the stack but left target group web-blue"), "{}", stderr(&destroyed));
    for row in rows.iter().filter(|row| row["action"] == "deleted") {
        assert_eq!(row["status"], "DELETE_COMPLETE", "{row}");
    }
    let elb = aws.elbv2("333333333333", "eu-central-1").await.unwrap();
    let groups = elb.describe_target_groups().send().await.unwrap();
    assert!(groups.target_groups().is_empty(), "target groups left: {:?}", groups.target_groups());
    // Destroy removed the stand-ins it could, before their stacks, and said what it kept.
    assert_stand_ins_removed(&aws, &topology, &destroyed).await;
    let again = run(&scratch, &scaled, &["deploy", "--image", IMAGE, "--json"]);
    assert!(again.status.success(), "a deploy after a destroy must converge:\n{}", stderr(&again));
    // What destroy removed is made again; what it kept is found.
    assert_stood_in(&summary(&again), &["AWS::CodeBuild::Project", "AWS::CodePipeline::Pipeline"]);
    assert_stand_ins_exist(&aws, &topology).await;
    let destroyed = run(&scratch, &scaled, &["destroy", "--force", "--json"]);
    assert!(destroyed.status.success(), "{}", stderr(&destroyed));
    assert_stand_ins_removed(&aws, &topology, &destroyed).await;
    let after = run(&scratch, &scaled, &["status", "--json"]);
    let states: serde_json::Value = serde_json::from_slice(&after.stdout).unwrap();
    assert!(states["stacks"].as_array().unwrap().iter().all(|row| row["status"] == "NOT_DEPLOYED"), "{states}");
    let s3 = aws.s3("111111111111", "eu-central-1").await.unwrap();
    let buckets = s3.list_buckets().send().await.unwrap();
    assert!(buckets.buckets().is_empty(), "buckets left: {:?}", buckets.buckets());
    let ecr = aws.ecr("333333333333", "eu-central-1").await.unwrap();
    let repositories = ecr.describe_repositories().send().await.unwrap();
    assert!(repositories.repositories().is_empty(), "{:?}", repositories.repositories());
}

/// The change-set method, AWS's default, over the whole topology against the emulator: every
/// stack created through CreateChangeSet/ExecuteChangeSet with its outputs wired onwards, a second
/// deploy that sends nothing (the first "no changes" form: the stack's hash tag matches, so no
/// change set is even created), and a parameter-only change going out as an update. Each stack
/// says in its row what the emulator lacks and how the deploy worked around it
/// (`EMULATOR_CHANGE_SET`: moto records neither outputs nor parameters after ExecuteChangeSet, and
/// lists no change for a parameter-only update). CloudFormation's own "no changes" answers (an
/// API error, a FAILED change set) are covered in `stack.rs`'s tests.
#[tokio::test(flavor = "multi_thread")]
async fn the_change_set_method_deploys_the_topology_and_declares_the_emulators_gaps() {
    let moto = Moto::start();
    let scratch = Scratch::new("deploy-change-set");
    let config = write_config(&scratch, moto.port, |text| text);
    let deploy =
        |config: &Path| run(&scratch, config, &["deploy", "--image", IMAGE, "--method", "change-set", "--json"]);

    let first = deploy(&config);
    assert!(first.status.success(), "{}", stderr(&first));
    let created = actions(&summary(&first));
    assert_eq!(created.len(), 25, "{created:?}");
    for (name, account, region, action) in &created {
        let expected = if name == "web-key-replica" { "emulator-gap" } else { "created" };
        assert_eq!(action, expected, "{name} in {account}/{region}");
    }
    let steps = summary(&first)["steps"].as_array().expect("step rows").clone();
    let declared = steps
        .iter()
        .filter(|step| step["action"] == "created")
        .filter(|step| step["detail"].as_str().unwrap_or_default() == xtask::engine::stack::EMULATOR_CHANGE_SET)
        .count();
    assert_eq!(declared, 23, "each stack made through a change set declares the emulator's gap: {steps:?}");
    // The steps that are not stacks report what really happened: against the emulator, what it
    // only records (no replica key, no running task, no load balancer address) is a gap, never ok.
    let outcome = |prefix: &str| -> std::collections::BTreeSet<String> {
        steps
            .iter()
            .filter(|step| step["id"].as_str().unwrap_or_default().starts_with(prefix))
            .map(|step| step["action"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    for (prefix, expected) in [
        ("key-replica-check@", "emulator-gap"),
        ("service-ready@", "emulator-gap"),
        ("site-check@", "emulator-gap"),
        ("release-targets", "uploaded"),
    ] {
        assert_eq!(outcome(prefix), std::collections::BTreeSet::from([expected.to_string()]), "{prefix}: {steps:?}");
    }
    assert!(stderr(&first).contains("moto's ExecuteChangeSet does not record"), "{}", stderr(&first));

    // The outputs moto drops after ExecuteChangeSet are there, and wired across accounts.
    let (_, aws) = aws(&config, &moto).await;
    let key_id = outputs(&aws, "111111111111", "ap-south-1", "web-key").await["KeyId"].clone();
    let release = parameters(&aws, "333333333333", "eu-central-1", "web-release").await;
    assert_eq!(release["ArtifactKeyArn"], format!("arn:aws:kms:eu-central-1:111111111111:key/{key_id}"));
    let network = outputs(&aws, "444444444444", "us-east-1", "web-network").await;
    assert_eq!(parameters(&aws, "444444444444", "us-east-1", "web-alb").await["VpcId"], network["VpcId"]);
    let cloudformation = aws.cloudformation("222222222222", "ap-south-1").await.unwrap();
    let change_sets = |client: aws_sdk_cloudformation::Client| async move {
        client.list_change_sets().stack_name("web-service").send().await.unwrap().summaries().len()
    };
    let made = change_sets(cloudformation.clone()).await;
    assert!(made >= 1, "the service stack was made through a change set");

    let second = deploy(&config);
    assert!(second.status.success(), "{}", stderr(&second));
    for (name, account, region, action) in actions(&summary(&second)) {
        let expected = if name == "web-key-replica" { "emulator-gap" } else { "unchanged" };
        assert_eq!(action, expected, "{name} in {account}/{region}");
    }
    assert_eq!(change_sets(cloudformation).await, made, "an unchanged stack gets no change set");

    let scaled = write_config(&scratch, moto.port, |text| format!("{text}\n[service]\ndesired_count = 3\n"));
    let third = deploy(&scaled);
    assert!(third.status.success(), "{}", stderr(&third));
    only_the_services_updated(&summary(&third));
    // moto's change set for this parameter-only update lists no change (AWS lists the service as
    // Modify), so the deploy deletes it and sends UpdateStack, and says so on each row.
    let updated: Vec<serde_json::Value> = summary(&third)["steps"]
        .as_array()
        .expect("step rows")
        .iter()
        .filter(|step| step["action"] == "updated")
        .cloned()
        .collect();
    assert_eq!(updated.len(), 3, "{updated:?}");
    assert!(updated.iter().all(|step| step["detail"] == xtask::engine::stack::EMULATOR_CHANGE_SET), "{updated:?}");
    for (account, region) in [("222222222222", "ap-south-1"), ("444444444444", "us-east-1")] {
        assert_eq!(parameters(&aws, account, region, "web-service").await["DesiredCount"], "3");
    }
    let fourth = deploy(&scaled);
    assert!(fourth.status.success(), "{}", stderr(&fourth));
    assert!(
        actions(&summary(&fourth))
            .iter()
            .all(|(name, _, _, action)| action == "unchanged" || name == "web-key-replica"),
        "{}",
        stderr(&fourth)
    );
}

/// The topology lock, once the first deploy made its bucket: another operator's lock refuses a
/// deploy (at once, or after `--lock-wait`), `lock status` names the holder, only `lock break`
/// removes it, and a deploy takes the lock and gives it back.
async fn two_operators_take_turns(scratch: &Scratch, config: &Path, aws: &Aws) {
    let free = run(scratch, config, &["lock", "status", "--json"]);
    assert!(free.status.success(), "{}", stderr(&free));
    assert_eq!(summary(&free), serde_json::Value::Null, "{}", stderr(&free));

    // Another operator, in this process: the same code path, a different pid.
    let printer = xtask::output::Printer::new(xtask::output::Verbosity::Quiet);
    let loaded = Config::load(config).unwrap();
    let other = xtask::topology_lock::acquire(aws, &loaded, "release", std::time::Duration::ZERO, &printer)
        .await
        .unwrap()
        .expect("the artifact bucket exists, so the lock can be taken");
    let refused = run(scratch, config, &["deploy", "--image", IMAGE]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    let text = stderr(&refused);
    assert!(text.contains("the topology is locked by arn:aws:sts::111111111111:assumed-role/"), "{text}");
    assert!(text.contains(&format!("(release on {}, pid {})", other.holder.host, std::process::id())), "{text}");
    assert!(text.contains("cargo xtask lock break"), "{text}");
    assert!(!text.contains("Deploying"), "nothing may start under another's lock:\n{text}");
    let waited = run(scratch, config, &["deploy", "--image", IMAGE, "--lock-wait", "1"]);
    assert_eq!(waited.status.code(), Some(1), "{}", stderr(&waited));
    assert!(stderr(&waited).contains("Waiting for the topology lock, held by"), "{}", stderr(&waited));
    assert!(stderr(&waited).contains("(waited 1 s)"), "{}", stderr(&waited));
    let status = run(scratch, config, &["lock", "status", "--json"]);
    assert_eq!(summary(&status)["command"], "release", "{}", stderr(&status));
    assert_eq!(summary(&status)["pid"], std::process::id(), "{}", stderr(&status));

    let broke = run(scratch, config, &["lock", "break"]);
    assert!(broke.status.success(), "{}", stderr(&broke));
    assert!(stderr(&broke).contains("Broke the lock held by"), "{}", stderr(&broke));
    // The first holder's release leaves the lock alone: it is no longer its lock.
    other.release(&printer).await.unwrap();

    let locked = run(scratch, config, &["deploy", "--image", IMAGE]);
    assert!(locked.status.success(), "{}", stderr(&locked));
    assert!(stderr(&locked).contains("Locked the topology"), "{}", stderr(&locked));
    assert!(stderr(&locked).contains("Unlocked the topology"), "{}", stderr(&locked));
    let free = run(scratch, config, &["lock", "status", "--json"]);
    assert_eq!(summary(&free), serde_json::Value::Null, "{}", stderr(&free));
}

/// The service and alb stacks' parameters of every workload, in config order.
async fn service_and_alb(aws: &Aws, config: &Config) -> Vec<[std::collections::BTreeMap<String, String>; 2]> {
    let mut found = Vec::new();
    for workload in &config.workloads {
        let (account, region) = (&workload.account, &workload.region);
        found.push([
            parameters(aws, account, region, "web-service").await,
            parameters(aws, account, region, "web-alb").await,
        ]);
    }
    found
}

/// After the first deploy, a task size change is planned and deployed as a release, not a stack
/// update: `plan` and `deploy` say it goes out with the next release and the service stacks keep
/// the size they were created with, and `release --direct` registers task definitions of the new
/// size. A container port change is refused by `plan`, `deploy --dry-run` and `deploy` before
/// anything changes (exit 2), naming the field, both values and the fix, and `release` refuses to
/// package it.
///
/// What the emulator cannot prove: that AWS would have refused the stack update (moto applies
/// any update of a CODE_DEPLOY service), nor that CodeDeploy runs the new task definition (moto
/// records the deployment and never runs it).
#[tokio::test(flavor = "multi_thread")]
async fn a_task_size_change_goes_out_with_the_release_and_a_port_change_is_refused() {
    let moto = Moto::start();
    let scratch = Scratch::new("deploy-frozen");
    let config = write_config(&scratch, moto.port, |text| text);
    let first = run(&scratch, &config, &["deploy", "--image", IMAGE]);
    assert!(first.status.success(), "{}", stderr(&first));
    let (topology, aws) = aws(&config, &moto).await;
    let before = service_and_alb(&aws, &topology).await;
    for [service, alb] in &before {
        let sized = (service["Cpu"].as_str(), service["Memory"].as_str(), service["ContainerPort"].as_str());
        assert_eq!(sized, ("256", "512", "8080"));
        assert_eq!(alb["ContainerPort"], "8080");
    }

    // A bigger task (memory follows: the smallest 512 CPU units allow): a release, not a stack update.
    let bigger = write_config(&scratch, moto.port, |text| format!("{text}\n[service]\ncpu = 512\n"));
    let plan = run(&scratch, &bigger, &["plan", "--json"]);
    let text = stderr(&plan);
    assert_eq!(plan.status.code(), Some(0), "nothing for a deploy to change:\n{text}");
    assert!(text.contains("0 of 25 stacks would change"), "{text}");
    for expected in [
        "india (222222222222/ap-south-1): [service] cpu 256 -> 512 goes out with the next `cargo xtask release`",
        "europe (333333333333/eu-central-1): [service] memory 512 -> 1024 goes out with the next `cargo xtask release`",
        "web-service keeps 256",
    ] {
        assert!(text.contains(expected), "{expected:?} in:\n{text}");
    }
    let planned: serde_json::Value = serde_json::from_slice(&plan.stdout).expect("the plan as JSON");
    let release: Vec<(&str, &str, &str, &str)> = planned["release"]
        .as_array()
        .expect("a release list")
        .iter()
        .map(|change| {
            assert_eq!(change["route"], "release", "{change}");
            let field = |name: &str| change[name].as_str().unwrap_or_default();
            (field("step"), field("field"), field("deployed"), field("requested"))
        })
        .collect();
    assert_eq!(release.len(), 6, "cpu and memory of three workloads: {release:?}");
    assert!(release.contains(&("web-service@us", "[service] cpu", "256", "512")), "{release:?}");
    let deployed = run(&scratch, &bigger, &["deploy", "--image", IMAGE, "--json"]);
    assert!(deployed.status.success(), "{}", stderr(&deployed));
    assert!(stderr(&deployed).contains("[service] cpu 256 -> 512 goes out with the next"), "{}", stderr(&deployed));
    for (name, account, region, action) in actions(&summary(&deployed)) {
        let expected = if name == "web-key-replica" { "emulator-gap" } else { "unchanged" };
        assert_eq!(action, expected, "{name} in {account}/{region}");
    }
    assert_eq!(service_and_alb(&aws, &topology).await, before, "the stacks keep the size they were created with");

    // The release registers the new size in every workload (the deploy stood in each workload's
    // CodeDeploy application and group).
    let out = scratch.path.join("out");
    let out = out.to_str().unwrap();
    let image = format!("sha256:{}", "2".repeat(64));
    let released = run(&scratch, &bigger, &["release", "--direct", "--image-digest", &image, "--out", out, "--json"]);
    assert!(released.status.success(), "{}", stderr(&released));
    let result = summary(&released);
    let rows = result["deployments"].as_array().expect("a deployment per workload");
    assert_eq!(rows.len(), 3, "{result}");
    for (row, workload) in rows.iter().zip(&topology.workloads) {
        let arn = row["task_definition"].as_str().unwrap_or_else(|| panic!("no task definition: {row}"));
        let ecs = aws.ecs(&workload.account, &workload.region).await.unwrap();
        let described = ecs.describe_task_definition().task_definition(arn).send().await.unwrap();
        let definition = described.task_definition().unwrap();
        assert_eq!((definition.cpu(), definition.memory()), (Some("512"), Some("1024")), "{}", workload.name);
    }

    // A new container port: refused before anything changes, with the fix.
    let moved =
        write_config(&scratch, moto.port, |text| format!("{text}\n[service]\ncpu = 512\ncontainer_port = 9090\n"));
    let commands: [&[&str]; 3] = [&["plan"], &["deploy", "--image", IMAGE, "--dry-run"], &["deploy", "--image", IMAGE]];
    for command in commands {
        let output = run(&scratch, &moved, command);
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{command:?}:\n{text}");
        for expected in [
            "india (222222222222/ap-south-1): `[service] container_port` is 9090 in deploy.toml, but web-alb and \
             web-service were created with 8080, and AWS cannot change it in place",
            "help: set `container_port = 8080` under [service] again (nothing was changed)",
            "`cargo xtask destroy` (every stack of deploy.toml) and then `cargo xtask deploy`",
            "3 changes that AWS would refuse on deployed stacks; nothing was changed",
        ] {
            assert!(text.contains(expected), "{command:?}: {expected:?} in:\n{text}");
        }
        assert!(!text.contains("Deploying"), "{command:?} deployed something:\n{text}");
    }
    assert_eq!(service_and_alb(&aws, &topology).await, before, "no stack changed");
    let refused = run(&scratch, &moved, &["release", "--direct", "--image-digest", &image, "--out", out]);
    let text = stderr(&refused);
    assert_ne!(refused.status.code(), Some(0), "{text}");
    assert!(text.contains("`[service] container_port` is 9090 in deploy.toml, deployed 8080"), "{text}");
    for workload in &topology.workloads {
        assert_eq!(deployments(&aws, &topology, workload).await.len(), 1, "{}: no second deployment", workload.name);
    }
}

/// A stack that fails in one workload: every other stack completes, the failure's root cause is
/// printed, what depends on it is skipped, and the exit code is 1.
#[tokio::test(flavor = "multi_thread")]
async fn a_failure_in_one_region_stops_only_its_branch() {
    let moto = Moto::start();
    let scratch = Scratch::new("deploy-fail");
    let config = write_config(&scratch, moto.port, |text| text);
    // A repository of the same name made by hand in europe's account: its ecr stack cannot create it.
    let (_, aws) = aws(&config, &moto).await;
    let ecr = aws.ecr("333333333333", "eu-central-1").await.unwrap();
    ecr.create_repository().repository_name("web").send().await.unwrap();

    let output = run(&scratch, &config, &["deploy", "--image", IMAGE, "--json"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(text.contains("web-ecr@europe (333333333333/eu-central-1)"), "{text}");
    assert!(text.to_lowercase().contains("already exists"), "the root cause is printed:\n{text}");
    let result = summary(&output);
    let stacks = actions(&result);
    let action_of = |name: &str, account: &str| {
        stacks.iter().find(|(stack, at, _, _)| stack == name && at == account).map(|row| row.3.clone()).unwrap()
    };
    assert_eq!(action_of("web-ecr", "333333333333"), "failed");
    assert_eq!(action_of("web-service", "333333333333"), "skipped");
    assert_eq!(action_of("web-release", "333333333333"), "skipped");
    assert_eq!(action_of("web-pipeline", "111111111111"), "skipped");
    for account in ["222222222222", "444444444444"] {
        for stack in ["web-network", "web-alb", "web-ecr", "web-service", "web-release"] {
            assert_eq!(action_of(stack, account), "created", "{stack} in {account}");
        }
    }
}

/// A change made to the text of a config.
type Edit = Box<dyn Fn(String) -> String>;

/// Bad configs exit 2 naming the field, and the emulator they point at stays empty.
#[tokio::test(flavor = "multi_thread")]
async fn bad_configs_exit_2_and_create_nothing() {
    let moto = Moto::start();
    let scratch = Scratch::new("deploy-bad");
    let cases: Vec<(&str, Edit, &str)> = vec![
        ("malformed TOML", Box::new(|text: String| text.replace("app = \"web\"", "app = web\"")), "syntax"),
        (
            "integer account",
            Box::new(|text: String| text.replacen("account = \"111111111111\"", "account = 111111111111", 1)),
            "tools.account",
        ),
        (
            "short account",
            Box::new(|text: String| text.replacen("\"222222222222\"", "\"2222\"", 1)),
            "workloads[0].account",
        ),
        (
            "letters in account",
            Box::new(|text: String| text.replacen("\"333333333333\"", "\"33333333333x\"", 1)),
            "workloads[1].account",
        ),
        (
            "unknown region",
            Box::new(|text: String| text.replacen("region = \"eu-central-1\"", "region = \"eu-central-9\"", 1)),
            "workloads[1].region",
        ),
        (
            "zone, not region",
            Box::new(|text: String| text.replacen("region = \"us-east-1\"", "region = \"us-east-1a\"", 1)),
            "workloads[2].region",
        ),
        (
            "duplicate names",
            Box::new(|text: String| text.replacen("name = \"europe\"", "name = \"india\"", 1)),
            "workloads[1].name",
        ),
        (
            "duplicate account and region",
            Box::new(|text: String| {
                text.replacen(
                    "account = \"444444444444\"\nregion = \"us-east-1\"",
                    "account = \"333333333333\"\nregion = \"eu-central-1\"",
                    1,
                )
            }),
            "workloads[2]",
        ),
        ("missing tools", Box::new(|text: String| text.replacen("\n[tools]", "\n[toolz]", 1)), "tools"),
        ("missing app", Box::new(|text: String| text.replacen("app = \"web\"", "", 1)), "app"),
        ("unknown top-level key", Box::new(|text: String| format!("colour = \"blue\"\n{text}")), "colour"),
        (
            "unknown workload key",
            Box::new(|text: String| text.replacen("wave = 2", "wave = 2\nregoin = \"x\"", 1)),
            "regoin",
        ),
        (
            "empty workload list",
            Box::new(|text: String| {
                let head = text.split("[[workloads]]").next().unwrap_or_default().to_string();
                format!("{head}workloads = []\n")
            }),
            "workloads",
        ),
        ("wrong type for wave", Box::new(|text: String| text.replacen("wave = 2", "wave = \"two\"", 1)), "wave"),
        ("wave zero", Box::new(|text: String| text.replacen("wave = 2", "wave = 0", 1)), "wave"),
        ("uppercase app", Box::new(|text: String| text.replacen("app = \"web\"", "app = \"Web\"", 1)), "app"),
        (
            "app too long for names",
            Box::new(|text: String| text.replacen("app = \"web\"", "app = \"a-very-long-application-name-indeed\"", 1)),
            "app",
        ),
        (
            "privileged port",
            Box::new(|text: String| format!("{text}\n[service]\ncontainer_port = 80\n")),
            "service.container_port",
        ),
        (
            "bad fargate size",
            Box::new(|text: String| format!("{text}\n[service]\ncpu = 256\nmemory = 4096\n")),
            "service.memory",
        ),
        (
            "profile and role",
            Box::new(|text: String| text.replacen("wave = 1", "wave = 1\nprofile = \"india\"\nrole = \"Deployer\"", 1)),
            "workloads[0]",
        ),
        (
            "same branches",
            Box::new(|text: String| format!("{text}\n[gitflow]\ndevelop_branch = \"main\"\n")),
            "gitflow",
        ),
        (
            "bad merge strategy",
            Box::new(|text: String| format!("{text}\n[gitflow]\nmerge_strategy = \"rebase\"\n")),
            "gitflow.merge_strategy",
        ),
        (
            "connection without arn",
            Box::new(|text: String| format!("{text}\n[source]\nprovider = \"codeconnections\"\n")),
            "source",
        ),
    ];
    assert!(cases.len() >= 20);
    for (label, edit, field) in &cases {
        let config = write_config(&scratch, moto.port, edit);
        let output = run(&scratch, &config, &["deploy", "--image", IMAGE]);
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{label}: exit 2 expected:\n{text}");
        assert!(text.contains(field), "{label}: the message names `{field}`:\n{text}");
        assert!(text.contains("deploy.toml:"), "{label}: the message names the file and line:\n{text}");
    }
    // Nothing reached the emulator: no stack in any account and region of the topology.
    let good = write_config(&scratch, moto.port, |text| text);
    let (config, aws) = aws(&good, &moto).await;
    for (account, region) in std::iter::once((config.tools.account.clone(), config.tools.region.clone()))
        .chain(config.workloads.iter().map(|workload| (workload.account.clone(), workload.region.clone())))
    {
        let client = aws.cloudformation(&account, &region).await.unwrap();
        let listed = client.list_stacks().send().await.unwrap();
        assert!(listed.stack_summaries().is_empty(), "{account}/{region}: {:?}", listed.stack_summaries());
    }
}

/// The emulator goes away in the middle of a deploy: a clear error, not a hang; started again,
/// the same command converges.
#[tokio::test(flavor = "multi_thread")]
async fn the_emulator_stopping_mid_deploy_is_a_clear_error_and_a_rerun_converges() {
    let mut moto = Moto::start();
    let port = moto.port;
    let scratch = Scratch::new("deploy-outage");
    let config = write_config(&scratch, port, |text| text);
    let child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["deploy", "--image", IMAGE, "--json", "--config"])
        .arg(&config)
        .arg("--local")
        .env("GBG_LOCAL_DIR", scratch.path.join("local"))
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Let the first stacks go through, then pull the plug.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let client = {
        let (_, aws) = aws(&config, &moto).await;
        aws.cloudformation("111111111111", "ap-south-1").await.unwrap()
    };
    loop {
        if client.describe_stacks().stack_name("web-key").send().await.is_ok() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the deploy never created web-key");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    moto.kill();
    let output = child.wait_with_output().unwrap();
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("127.0.0.1") || text.to_lowercase().contains("connect"),
        "the error names the unreachable endpoint:\n{text}"
    );

    // The emulator keeps state in memory: a new one starts empty, and the deploy builds it all.
    drop(moto);
    let restarted = Moto::start_on(port);
    let again = run(&scratch, &config, &["deploy", "--image", IMAGE, "--json"]);
    assert!(again.status.success(), "{}", stderr(&again));
    let second = run(&scratch, &config, &["deploy", "--image", IMAGE, "--json"]);
    assert!(actions(&summary(&second)).iter().all(|row| row.3 == "unchanged" || row.3 == "emulator-gap"));
    drop(restarted);
}
