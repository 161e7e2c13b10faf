//! `cargo xtask push --local`: one build, three regions' registries (Debian `docker-registry`
//! processes the local stack starts), the real Docker engine pushing, and the emulator serving the
//! ECR API (repositories, tokens, image listing). The manifests are fetched back over HTTP from
//! each registry; a second push must send no layer.
//!
//! What this cannot prove: ECR's own registry endpoint and its IAM checks (the emulator has no
//! registry protocol), and tag immutability at the registry (docker-registry has none; ECR's
//! IMMUTABLE setting is in the template and checked by the lint).

use std::time::Duration;

use xtask::aws::{Aws, Endpoint};
use xtask::config::Config;
use xtask::http;

use crate::support::{Cleanup, Moto, Scratch, config_with_app, run_xtask, unique};

#[tokio::test(flavor = "multi_thread")]
async fn one_image_reaches_three_registries_with_one_digest_and_repushes_nothing() {
    let moto = Moto::start();
    let scratch = Scratch::new("push");
    let app = unique("p");
    let config_path = config_with_app(&app);
    let text = std::fs::read_to_string(&config_path).unwrap();
    std::fs::write(&config_path, format!("{text}\n[local]\nemulator_port = {}\n", moto.port)).unwrap();
    let config = Config::load(&config_path).unwrap();
    let mut cleanup = Cleanup::default();
    cleanup.image(format!("{app}:{}", xtask::project::revision(&xtask::project::root()).unwrap().tag()));

    // The registries' repositories, as the ecr stacks would make them.
    let aws = Aws::new(&config, Endpoint::Local(moto.url.clone())).await;
    for workload in &config.workloads {
        let ecr = aws.ecr(&workload.account, &workload.region).await.unwrap();
        ecr.create_repository().repository_name(&app).send().await.unwrap();
    }
    let state = scratch.path.join("local");
    let state_text = state.display().to_string();
    let env = [("GBG_LOCAL_DIR", state_text.as_str()), ("NO_COLOR", "1")];
    let config_text = config_path.display().to_string();
    let args = ["push", "--local", "--json", "--config", config_text.as_str()];

    let first = run_xtask(&args, &env);
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    let pushed: serde_json::Value = serde_json::from_str(&first.stdout).unwrap();
    let digest = pushed["digest"].as_str().unwrap().to_string();
    assert!(digest.starts_with("sha256:"), "{pushed}");
    let pushes = pushed["pushes"].as_array().unwrap();
    assert_eq!(pushes.len(), 3);

    // Every registry, asked over HTTP, holds the same manifest digest.
    let registries: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("registries.json")).unwrap()).unwrap();
    let tag = xtask::project::revision(&xtask::project::root()).unwrap().tag();
    for region in ["ap-south-1", "eu-central-1", "us-east-1"] {
        let port = registries[region]["port"].as_u64().unwrap();
        cleanup.image(format!("127.0.0.1:{port}/{app}:{tag}"));
        let url = format!("http://127.0.0.1:{port}/v2/{app}/manifests/{tag}");
        let answer = http::request(
            "GET",
            &url,
            &[("Accept", "application/vnd.docker.distribution.manifest.v2+json")],
            &[],
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(answer.status, 200, "{url}");
        assert_eq!(answer.header("docker-content-digest"), Some(digest.as_str()), "{region}");
        let push = pushes.iter().find(|push| push["region"] == region).unwrap();
        assert_eq!(push["image_uri"], format!("127.0.0.1:{port}/{app}@{digest}"));
    }
    // The emulator's ECR lists the image too.
    let ecr = aws.ecr("333333333333", "eu-central-1").await.unwrap();
    let listed = ecr.list_images().repository_name(&app).send().await.unwrap();
    assert!(listed.image_ids().iter().any(|id| id.image_tag() == Some(tag.as_str())), "{listed:?}");

    let second = run_xtask(&args, &env);
    assert_eq!(second.code, Some(0), "{}", second.stderr);
    let again: serde_json::Value = serde_json::from_str(&second.stdout).unwrap();
    // The image is built again; the engine's build cache usually gives the same image, but another
    // test removing images can evict it, and then only the config blob (its creation time) differs.
    // What must hold is that no layer moves.
    for push in again["pushes"].as_array().unwrap() {
        assert_eq!(push["layers_pushed"], 0, "a second push sends no layer: {push}");
        assert_eq!(push["bytes_pushed"], 0, "{push}");
    }

    let down = run_xtask(&["local", "down", "--config", config_text.as_str()], &env);
    assert_eq!(down.code, Some(0), "{}", down.stderr);
}
