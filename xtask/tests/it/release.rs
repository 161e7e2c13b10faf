//! `cargo xtask release` and `rollback` through the real binary against a real `moto_server` of
//! the test's own (after `deploy --local` built the topology there), and the local rehearsal on
//! the real Docker engine.
//!
//! The emulator's CloudFormation does not create Code* resources; `deploy --local` creates each
//! workload's CodeDeploy application and deployment group, and the tools account's pipeline,
//! through the CodeDeploy and CodePipeline APIs from the templates (`engine/stand_ins.rs`). Its
//! CodeDeploy records a deployment and never runs it (status `Created`, no lifecycle events, no
//! traffic shift), and its CodePipeline records an execution as `Succeeded` at once without
//! running a stage: the tests assert what the emulator records (the registered task definition,
//! the inline AppSpec naming it, the image it pins, the order of the waves), not a rollout.

use aws_sdk_codedeploy::types::RevisionLocationType;
use xtask::aws::Aws;
use xtask::config::{Config, Workload};
use xtask::local::site::{self, Colour, SiteSpec};
use xtask::release_files::render;
use xtask::site_image::{self, Options};

use crate::package::{Topology, digest};
use crate::support::{self, Cleanup};

/// The deployments the emulator recorded for the app in a workload.
pub async fn deployments(aws: &Aws, config: &Config, workload: &Workload) -> Vec<String> {
    let codedeploy = aws.codedeploy(&workload.account, &workload.region).await.unwrap();
    let listed =
        codedeploy.list_deployments().application_name(&config.app).deployment_group_name(&config.app).send().await;
    listed.map(|reply| reply.deployments().to_vec()).unwrap_or_default()
}

/// What a recorded deployment deploys: (the task definition its AppSpec names, that task
/// definition's image, its creation time).
async fn deployed(aws: &Aws, workload: &Workload, id: &str) -> (String, String, aws_smithy_types::DateTime) {
    let codedeploy = aws.codedeploy(&workload.account, &workload.region).await.unwrap();
    let info = codedeploy.get_deployment().deployment_id(id).send().await.unwrap();
    let info = info.deployment_info().unwrap();
    let revision = info.revision().unwrap();
    assert_eq!(revision.revision_type(), Some(&RevisionLocationType::AppSpecContent), "the AppSpec goes inline");
    let content = revision.app_spec_content().unwrap().content().unwrap();
    let spec = render::parse_appspec(content).unwrap();
    assert!(spec.task_definition.starts_with("arn:aws:ecs:"), "the placeholder was filled: {content}");
    let ecs = aws.ecs(&workload.account, &workload.region).await.unwrap();
    let described = ecs.describe_task_definition().task_definition(&spec.task_definition).send().await.unwrap();
    let image = described.task_definition().unwrap().container_definitions()[0].image().unwrap().to_string();
    (spec.task_definition, image, *info.create_time().unwrap())
}

fn ecr_image(workload: &Workload, digest: &str) -> String {
    format!("{}.dkr.ecr.{}.amazonaws.com/web@{digest}", workload.account, workload.region)
}

/// `release --direct`: a failed first wave stops the rollout before the second; with every
/// deployment group in place, a deployment per workload, wave 1 first, each registering the
/// artifact's task definition and naming it in the inline AppSpec; then `rollback` redeploys the
/// previous release's task definition, once. `release --via pipeline` starts the tools pipeline.
#[tokio::test(flavor = "multi_thread")]
async fn release_direct_goes_wave_by_wave_stops_at_a_failed_wave_and_rolls_back() {
    let topology = Topology::new("release", None, "");
    let (config, aws) = topology.aws().await;
    let (india, europe, us) = (&config.workloads[0], &config.workloads[1], &config.workloads[2]);
    assert_eq!((india.wave, europe.wave, us.wave), (1, 2, 2));
    // india's release role made by hand: its release stack fails, so india gets no CodeDeploy
    // application (moto's CodeDeploy deletes none, so a missing one is made this way), and the
    // pipeline stack, which names every release role, is skipped.
    let iam = aws.iam(&india.account, &india.region).await.unwrap();
    let squatter = format!("{}-release-{}", config.app, india.region);
    iam.create_role()
        .role_name(&squatter)
        .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[]}"#)
        .send()
        .await
        .unwrap();
    let partial = topology.xtask(&["deploy", "--image", crate::package::IMAGE]);
    assert_eq!(partial.code, Some(1), "{}", partial.stderr);
    assert!(partial.stderr.contains("web-release@india"), "{}", partial.stderr);
    let out = topology.out("out");
    let out = out.to_str().unwrap();

    // Wave 1 (india) has no deployment group: it fails, and wave 2 is never started.
    let failed = topology.xtask(&["release", "--direct", "--image-digest", &digest('1'), "--out", out, "--json"]);
    assert_eq!(failed.code, Some(1), "{}", failed.stderr);
    let result: serde_json::Value = serde_json::from_str(&failed.stdout).unwrap();
    let statuses: Vec<(&str, &str)> = result["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| (row["workload"].as_str().unwrap(), row["status"].as_str().unwrap()))
        .collect();
    assert_eq!(statuses, [("india", "ERROR"), ("europe", "NOT STARTED"), ("us", "NOT STARTED")]);
    let outcomes: Vec<&str> =
        result["deployments"].as_array().unwrap().iter().map(|row| row["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["failed", "not-started", "not-started"]);
    assert!(failed.stderr.contains("india (ap-south-1)"), "{}", failed.stderr);
    for workload in [europe, us] {
        assert!(
            deployments(&aws, &config, workload).await.is_empty(),
            "{} was deployed after wave 1 failed",
            workload.name
        );
    }

    // No pipeline stack, no pipeline: a clear error.
    let missing = topology.xtask(&["release", "--via", "pipeline"]);
    assert_ne!(missing.code, Some(0));
    assert!(missing.stderr.contains("is the pipeline stack deployed"), "{}", missing.stderr);

    // With india's release stack deployed (and so its group): one deployment per workload, in
    // wave order.
    iam.delete_role().role_name(&squatter).send().await.unwrap();
    // moto leaves the failed stack CREATE_IN_PROGRESS (where AWS rolls it back), which a deploy
    // waits on and gives up: deleted here, as an operator would after reading its events.
    let cloudformation = aws.cloudformation(&india.account, &india.region).await.unwrap();
    cloudformation.delete_stack().stack_name(config.stack_name("release")).send().await.unwrap();
    let whole = topology.xtask(&["deploy", "--image", crate::package::IMAGE]);
    assert_eq!(whole.code, Some(0), "{}", whole.stderr);
    let first = topology.xtask_json(&["release", "--direct", "--image-digest", &digest('1'), "--out", out, "--json"]);
    let rows = first["deployments"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    let mut created = Vec::new();
    for (row, workload) in rows.iter().zip([india, europe, us]) {
        assert_eq!(row["workload"], workload.name.as_str());
        assert_eq!(row["ok"], true, "{row}");
        assert_eq!(row["status"], "Created", "the emulator records, never runs: {row}");
        assert_eq!(row["outcome"], "emulator-gap", "a recorded deployment proves nothing: {row}");
        let id = row["deployment_id"].as_str().unwrap();
        assert_eq!(deployments(&aws, &config, workload).await, [id]);
        let (task_definition, image, time) = deployed(&aws, workload, id).await;
        assert_eq!(row["task_definition"], task_definition.as_str());
        assert_eq!(image, ecr_image(workload, &digest('1')));
        created.push(time);
    }
    assert!(created[0] < created[1] && created[0] < created[2], "wave 1 is deployed before wave 2: {created:?}");
    let first_release = first["package"]["manifest"]["id"].as_str().unwrap().to_string();

    // A second release, then india back to the first.
    let second = topology.xtask_json(&["release", "--direct", "--image-digest", &digest('2'), "--out", out, "--json"]);
    let second_release = second["package"]["manifest"]["id"].as_str().unwrap().to_string();
    assert_ne!(first_release, second_release);
    // Not followed (--no-wait), a rollback deploys but leaves the history: it may still fail.
    let unfollowed = topology.xtask(&["rollback", "india", "--via", "direct", "--no-wait"]);
    assert_eq!(unfollowed.code, Some(0), "{}", unfollowed.stderr);
    assert!(unfollowed.stderr.contains("still names release"), "{}", unfollowed.stderr);
    let rolled = topology.xtask_json(&["rollback", "india", "--via", "direct", "--json"]);
    assert_eq!(
        (rolled["from"].as_str().unwrap(), rolled["to"].as_str().unwrap()),
        (second_release.as_str(), first_release.as_str())
    );
    let id = rolled["deployment"]["deployment_id"].as_str().unwrap();
    let (_, image, _) = deployed(&aws, india, id).await;
    assert_eq!(image, ecr_image(india, &digest('1')), "the rollback deploys the previous release's image");
    assert_eq!(deployments(&aws, &config, india).await.len(), 4, "two releases and two rollbacks");
    assert_eq!(deployments(&aws, &config, europe).await.len(), 2, "a rollback touches its workload only");
    let again = topology.xtask(&["rollback", "india", "--via", "direct"]);
    assert_ne!(again.code, Some(0));
    assert!(again.stderr.contains("nothing earlier"), "{}", again.stderr);

    // The pipeline the deploy stood in from the pipeline template: started.
    let pipeline = aws.codepipeline(&config.tools.account, &config.tools.region).await.unwrap();
    let started = topology.xtask_json(&["release", "--via", "pipeline", "--json"]);
    assert_eq!(started["via"], "pipeline");
    let execution = started["pipeline"]["execution_id"].as_str().unwrap();
    let executions = pipeline.list_pipeline_executions().pipeline_name(&config.app).send().await.unwrap();
    let ids: Vec<&str> = executions
        .pipeline_execution_summaries()
        .iter()
        .filter_map(|summary| summary.pipeline_execution_id())
        .collect();
    assert_eq!(ids, [execution]);
    assert_eq!(started["pipeline"]["status"], "Succeeded");
}

/// The local flow of the README: `deploy --local` builds the image once, pushes it to the three
/// regions' local registries, packages the first release into the three buckets and serves the
/// site on the config's site port; `release --local` then starts the new version beside the one
/// serving that port, checks it, and moves the port to it, stopping the old colour.
///
/// The "old" version is the same build under another tag, started by the test in place of the
/// deploy's (a second build of another commit would cost a minute of compiling): what proves the
/// shift is which container holds the port, with its colour, image and version label; `/version`
/// proves the port answers the release's version.
#[tokio::test(flavor = "multi_thread")]
async fn deploy_local_then_release_local_moves_the_published_port_to_the_new_version() {
    let docker = support::docker().await;
    let app = support::unique("it-rel");
    let port = support::free_port();
    let topology = Topology::new("rehearsal", Some(&app), &format!("site_port = {port}"));
    let ctx = support::ctx();
    let mut cleanup = Cleanup::default();
    cleanup.container(site::container_name(&app, Colour::Blue));
    cleanup.container(site::container_name(&app, Colour::Green));
    let tag = xtask::project::revision(&xtask::project::root()).unwrap().tag();
    cleanup.image(format!("{app}:{tag}"));

    // deploy --local: the image built once, pushed everywhere, the first release packaged, the site up.
    let deployed = topology.xtask_json(&["deploy", "--json"]);
    let steps = deployed["steps"].as_array().unwrap();
    let step =
        |id: &str| steps.iter().find(|step| step["id"] == id).unwrap_or_else(|| panic!("no step {id}: {steps:?}"));
    assert!(step("release-package")["status"].as_str().unwrap().starts_with("RELEASE "), "{steps:?}");
    assert_eq!(step("local-site")["status"], format!("SERVING {tag}"));
    let (config, aws) = topology.aws().await;
    for workload in &config.workloads {
        let s3 = aws.s3(&config.tools.account, &workload.region).await.unwrap();
        let key = format!("releases/{}/history.json", workload.name);
        let object = s3.get_object().bucket(config.bucket_name(&workload.region)).key(&key).send().await.unwrap();
        let text = object.body.collect().await.unwrap().into_bytes();
        let recorded: serde_json::Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(recorded["releases"].as_array().unwrap().len(), 1, "deploy packaged the first release: {recorded}");
    }

    // An older version serves the port (in place of the deploy's), as after an earlier release.
    site::stop(&docker, &app, None).await.unwrap();
    let built = site_image::build(&ctx, &Options { config: topology.config.clone(), dockerfile: None }).await.unwrap();
    assert_eq!(built.tag, tag);
    let old = format!("{app}:old");
    let options = bollard::query_parameters::TagImageOptionsBuilder::default().repo(&app).tag("old").build();
    docker.client().tag_image(&built.reference, Some(options)).await.unwrap();
    cleanup.image(&old);
    let blue = SiteSpec {
        app: app.clone(),
        image: old.clone(),
        version: "old".into(),
        colour: Colour::Blue,
        host_port: port,
        container_port: 8080,
    };
    site::run(&docker, &blue, &ctx.printer).await.unwrap();

    // release --local: pushed again (nothing moves), packaged (the deploy's release: nothing
    // moves), verified, shifted.
    let out = topology.out("out");
    let released = topology.xtask_json(&["release", "--out", out.to_str().unwrap(), "--json"]);
    assert_eq!(released["via"], "site");
    let shift = &released["site"];
    assert_eq!(shift["port"], port);
    assert_eq!(shift["from"]["colour"], "blue");
    assert_eq!(shift["from"]["image"], old.as_str());
    assert_eq!(shift["to"]["colour"], "green");
    assert_eq!(shift["to"]["version"], tag.as_str());
    let manifest = &released["package"]["manifest"];
    assert_eq!(manifest["id"], step("release-package")["status"].as_str().unwrap().split(' ').nth(1).unwrap());
    assert_eq!(released["package"]["bytes_uploaded"], 0, "deploy packaged this very release");
    let digest = manifest["image_digest"].as_str().unwrap();
    let artifacts = manifest["artifacts"].as_array().unwrap();
    assert_eq!(artifacts.len(), 3, "an artifact in every bucket");
    let mut hosts = std::collections::BTreeSet::new();
    for artifact in artifacts {
        // Each region's registry holds the manifest the taskdef pins, under the one digest.
        let image = artifact["image"].as_str().unwrap();
        let (host, pinned) = image.strip_prefix("127.0.0.1:").unwrap().split_once('/').unwrap();
        assert_eq!(pinned, format!("{app}@{digest}"));
        let url = format!("http://127.0.0.1:{host}/v2/{app}/manifests/{digest}");
        let accept = [("Accept", "application/vnd.docker.distribution.manifest.v2+json")];
        let answer = xtask::http::request("GET", &url, &accept, &[], std::time::Duration::from_secs(10)).unwrap();
        assert_eq!(answer.status, 200, "{url}");
        assert_eq!(answer.header("docker-content-digest"), Some(digest), "{url}");
        hosts.insert(host.to_string());
        cleanup.image(format!("127.0.0.1:{host}/{app}:{tag}"));
    }
    assert_eq!(hosts.len(), 3, "three regions, three registries: {hosts:?}");
    let pushes = released["pushes"].as_array().unwrap();
    assert_eq!(pushes.len(), 3);
    for push in pushes {
        assert_eq!(push["bytes_pushed"], 0, "the deploy pushed this image already: {push}");
    }
    let verified =
        topology.xtask(&["verify-release", "--manifest", out.join("release-manifest.json").to_str().unwrap()]);
    assert_eq!(verified.code, Some(0), "{}", verified.stderr);

    let version = site::get(port, "/version").await.unwrap();
    let version: serde_json::Value = serde_json::from_slice(&version.body).unwrap();
    assert_eq!(version["commit"], tag.as_str());
    let containers = site::list(&docker, &app).await.unwrap();
    assert_eq!(containers.len(), 1, "blue is stopped: {containers:?}");
    assert_eq!(containers[0].labels["gbg.colour"], "green");
    assert_eq!(containers[0].host_port, Some(port));
    assert_eq!(containers[0].image, built.reference);
    assert_eq!(containers[0].labels["gbg.version"], tag);

    // The same release again changes nothing.
    let again = topology.xtask_json(&["release", "--out", out.to_str().unwrap(), "--json"]);
    assert_eq!(again["site"]["unchanged"], true);
    assert_eq!(again["package"]["bytes_uploaded"], 0);
    assert_eq!(site::list(&docker, &app).await.unwrap()[0].id, containers[0].id);
}
