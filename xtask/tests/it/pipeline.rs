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

use crate::package::Topology;
use crate::support::Cleanup;

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
        &[("Accept", "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json")],
        &[],
        Duration::from_secs(10),
    )
    .unwrap();
    (answer.status == 200).then(|| answer.header("docker-content-digest").unwrap().to_string())
}

/// After `deploy --local`: the whole pipeline rehearsed from this repository's HEAD with every
/// action under its own role and the image tagged with the source commit; a new commit on a
/// scratch branch pushes a new tag; the same commit again builds and uploads nothing new; and the
/// build folder, which has no `.git`, refuses to tag an image without CodeBuild's variable.
#[tokio::test(flavor = "multi_thread")]
async fn the_pipeline_runs_as_aws_runs_it_on_every_commit() {
    let topology = Topology::deploy("pipeline", Some(APP));
    let mut cleanup = Cleanup::default();
    let (config, aws) = topology.aws().await;
    let head = head();

    // 1. This repository's HEAD, through every stage.
    let (first, _) = rehearse(&topology, "HEAD");
    assert_eq!(first["revision"], head.as_str());
    let tag = &head[..12];
    assert_eq!(first["image"]["tag"], tag);
    cleanup.image(format!("{APP}:{tag}"));
    let stages: Vec<&str> = first["stages"].as_array().unwrap().iter().map(|stage| stage["name"].as_str().unwrap()).collect();
    assert_eq!(stages, ["Source", "Build", "Wave1", "Wave2"]);
    let all = actions(&first);
    let (_, _, status, identity) = &all[0];
    assert_eq!(status, "succeeded");
    assert!(identity.contains(&format!(":assumed-role/{APP}-pipeline/")), "the source runs as the pipeline role: {identity}");
    let (_, _, status, identity) = &all[1];
    assert_eq!(status, "succeeded");
    assert!(
        identity.starts_with(&format!("arn:aws:sts::{}:assumed-role/{APP}-build/", config.tools.account)),
        "the build runs as the build role: {identity}"
    );
    for workload in &config.workloads {
        let (_, _, status, identity) =
            all.iter().find(|(_, name, _, _)| *name == format!("Deploy-{}", workload.name)).expect("a deploy action per workload");
        assert_eq!(status, "recorded", "the emulator records the deployment, never runs it");
        assert!(
            identity.starts_with(&format!("arn:aws:sts::{}:assumed-role/{APP}-release-{}/", workload.account, workload.region)),
            "{}'s deploy runs as its release role: {identity}",
            workload.name
        );
        let codedeploy = aws.codedeploy(&workload.account, &workload.region).await.unwrap();
        let listed = codedeploy.list_deployments().application_name(APP).deployment_group_name(APP).send().await.unwrap();
        assert_eq!(listed.deployments().len(), 1, "one deployment in {}", workload.name);
    }
    let digest = first["image"]["digest"].as_str().unwrap().to_string();
    for region in config.regions().iter().filter(|region| config.workloads.iter().any(|workload| &workload.region == *region)) {
        assert_eq!(registry_digest(&topology, region, tag).as_deref(), Some(digest.as_str()), "{region} holds the image");
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
        assert!(registry_digest(&topology, &workload.region, second_tag).is_some(), "{} got the new tag", workload.name);
    }

    // 3. The same commit again: found in every registry, nothing built, pushed or uploaded.
    let (third, third_log) = rehearse(&topology, &scratch.branch);
    assert_eq!(third["image"], second["image"]);
    assert!(third_log.contains("nothing to build or push"), "{third_log}");
    assert!(third_log.contains("0 objects uploaded (0 bytes)"), "{third_log}");

    // 4. The build's folder has no .git: without CodeBuild's variable nothing is tagged.
    let export = xtask::project::target_dir().join("pipeline").join(APP).join("src");
    assert!(!export.join(".git").exists());
    let binary = export.join("target").join("debug").join("xtask");
    assert!(binary.is_file(), "the build compiled its own xtask in {}", export.display());
    let sh = Shell::new().unwrap();
    sh.change_dir(&export);
    let refused = cmd!(sh, "{binary} image").env_remove("CODEBUILD_RESOLVED_SOURCE_VERSION").quiet().ignore_status().output().unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is not a git checkout") && stderr.contains("CODEBUILD_RESOLVED_SOURCE_VERSION="), "{stderr}");
    assert!(!stderr.contains("Error {") && !stderr.contains("{ "), "no debug dump: {stderr}");
}
