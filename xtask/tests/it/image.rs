//! `cargo xtask image` against the real Docker engine: the image builds, runs as a non-root user,
//! is small, and serves the rendered page and the health check through a published port. The bad
//! inputs: no engine (a `DOCKER_HOST` that leads nowhere) and a broken Dockerfile, each a clear
//! error and a non-zero exit.

use std::time::Duration;

use xtask::local::site::{self, Colour, SiteSpec};
use xtask::site_image::{self, Options};

use crate::support::{self, Cleanup};

/// The project's `index.html` with the placeholders filled in from `/version`, HTML-escaped the
/// way the app does it: what `/` must answer byte for byte.
fn rendered_index(version: &serde_json::Value) -> String {
    let template = std::fs::read_to_string(xtask::project::root().join("index.html")).unwrap();
    let escape = |text: &str| {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&#39;")
    };
    template
        .replace("{{version}}", &escape(version["version"].as_str().unwrap()))
        .replace("{{commit}}", &escape(version["commit"].as_str().unwrap()))
        .replace("{{build_time}}", &escape(version["build_time"].as_str().unwrap()))
}

#[tokio::test(flavor = "multi_thread")]
async fn image_builds_small_non_root_and_serves_the_page() {
    let docker = support::docker().await;
    let ctx = support::ctx();
    let app = support::unique("it-image");
    let mut cleanup = Cleanup::default();
    let options = Options { config: support::config_with_app(&app), dockerfile: None };

    let built = site_image::build(&ctx, &options).await.expect("building the image");
    cleanup.image(&built.reference);
    assert_eq!(built.reference, format!("{app}:{}", built.tag));
    assert_eq!(built.tag, xtask::project::revision(&ctx.root).unwrap().tag());
    assert!(built.size < 10_000_000, "the image is {} bytes; it must stay under 10 MB", built.size);

    let facts = docker.image(&built.reference).await.unwrap().expect("the built image exists");
    assert_eq!(facts.id, built.id);
    let uid = facts.user.split(':').next().unwrap_or_default();
    assert!(!uid.is_empty() && uid != "0" && uid != "root", "the image runs as `{}`", facts.user);
    assert!(facts.has_healthcheck, "the image declares no HEALTHCHECK");
    assert!(facts.exposed_ports.contains(&"8080/tcp".to_string()), "{:?}", facts.exposed_ports);
    assert_eq!(facts.labels.get("gbg.app"), Some(&app));

    let port = support::free_port();
    let spec = SiteSpec {
        app: app.clone(),
        image: built.reference.clone(),
        version: built.tag.clone(),
        colour: Colour::Blue,
        host_port: port,
        container_port: 8080,
    };
    cleanup.container(site::container_name(&app, Colour::Blue));
    let running = site::run(&docker, &spec, &ctx.printer).await.expect("running the image");
    assert_eq!(running.url, format!("http://127.0.0.1:{port}"));

    let health = site::get(port, "/healthz").await.unwrap();
    assert_eq!((health.status, health.body.as_slice()), (200, b"ok".as_slice()));
    let version = site::get(port, "/version").await.unwrap();
    let version: serde_json::Value = serde_json::from_slice(&version.body).unwrap();
    assert_eq!(version["commit"], built.tag.as_str(), "the image runs the commit it is tagged with");
    assert_eq!(version["build_time"], built.build_time.as_str());
    let page = site::get(port, "/").await.unwrap();
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(String::from_utf8(page.body).unwrap(), rendered_index(&version));
}

#[tokio::test(flavor = "multi_thread")]
async fn image_rebuild_of_an_unchanged_tree_keeps_the_tag_and_the_bytes() {
    let docker = support::docker().await;
    let ctx = support::ctx();
    let app = support::unique("it-rebuild");
    let mut cleanup = Cleanup::default();
    let options = Options { config: support::config_with_app(&app), dockerfile: None };
    let first = site_image::build(&ctx, &options).await.unwrap();
    cleanup.image(&first.reference);
    let second = site_image::build(&ctx, &options).await.unwrap();
    assert_eq!(first.tag, second.tag, "same tree, same tag");
    // Image ids also cover creation times (and concurrent builds by other tests may each fill the
    // build cache), so compare what the image holds: its layers, by content digest.
    let layers = |facts: Option<xtask::docker::ImageFacts>| facts.expect("the built image exists").layers;
    let first_layers = layers(docker.image(&first.id).await.unwrap());
    assert!(!first_layers.is_empty());
    assert_eq!(first_layers, layers(docker.image(&second.id).await.unwrap()), "same tree, same bytes");
}

#[test]
fn no_engine_is_one_clear_error_naming_docker_host() {
    let dir = support::scratch_dir(&support::unique("it-noengine"));
    let missing = dir.join("missing.sock");
    // A socket file that nobody listens on any more: connection refused.
    let dead = dir.join("dead.sock");
    drop(std::os::unix::net::UnixListener::bind(&dead).unwrap());
    for socket in [missing, dead] {
        let host = format!("unix://{}", socket.display());
        for args in [&["image"][..], &["local", "run", "--port", "1"][..]] {
            let run = support::run_xtask(args, &[("DOCKER_HOST", &host)]);
            assert_ne!(run.code, Some(0), "`xtask {args:?}` succeeded without an engine");
            assert!(run.stderr.contains(&format!("DOCKER_HOST={host}")), "{args:?}: {}", run.stderr);
            assert!(run.stderr.contains("cannot reach the Docker engine"), "{}", run.stderr);
            assert!(run.stderr.contains("fix:"), "{}", run.stderr);
            assert_eq!(run.stderr.matches("error:").count(), 1, "one error, not a cascade: {}", run.stderr);
            assert!(!run.stderr.contains("Compiling app"), "it must fail before building: {}", run.stderr);
        }
    }
}

#[test]
fn a_broken_dockerfile_fails_with_the_daemons_text() {
    let app = support::unique("it-broken");
    let config = support::config_with_app(&app);
    let dockerfile = support::scratch_dir(&app).join("Dockerfile");
    std::fs::write(&dockerfile, "FORM scratch\nCOPY app /app\n").unwrap();
    let run = support::run_xtask(
        &["image", "--config", config.to_str().unwrap(), "--dockerfile", dockerfile.to_str().unwrap()],
        &[],
    );
    assert_ne!(run.code, Some(0));
    assert!(run.stderr.contains("unknown instruction: FORM"), "the daemon's own text is missing: {}", run.stderr);
    assert!(run.stderr.contains(&format!("could not build {app}:")), "{}", run.stderr);

    let missing_file = support::scratch_dir(&app).join("Dockerfile.copy");
    std::fs::write(&missing_file, "FROM scratch\nCOPY not-in-context /x\n").unwrap();
    let run = support::run_xtask(
        &["image", "--config", config.to_str().unwrap(), "--dockerfile", missing_file.to_str().unwrap()],
        &[],
    );
    assert_ne!(run.code, Some(0));
    assert!(run.stderr.contains("not-in-context"), "{}", run.stderr);
    assert!(run.stderr.contains("COPY not-in-context"), "the build log tail is missing: {}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_from_docker_stop_drains_and_exits_zero() {
    let docker = support::docker().await;
    let ctx = support::ctx();
    let app = support::unique("it-stop");
    let mut cleanup = Cleanup::default();
    let options = Options { config: support::config_with_app(&app), dockerfile: None };
    let built = site_image::build(&ctx, &options).await.unwrap();
    cleanup.image(&built.reference);
    let name = site::container_name(&app, Colour::Green);
    cleanup.container(&name);
    let spec = SiteSpec {
        app: app.clone(),
        image: built.reference.clone(),
        version: built.tag.clone(),
        colour: Colour::Green,
        host_port: support::free_port(),
        container_port: 8080,
    };
    site::run(&docker, &spec, &ctx.printer).await.unwrap();
    let stopping = std::time::Instant::now();
    docker.client().stop_container(&name, None).await.unwrap();
    // Quick: the app drains and exits instead of waiting for Docker's SIGKILL after 10 s.
    assert!(stopping.elapsed() < Duration::from_secs(5), "stopping took {:?}", stopping.elapsed());
    let stopped = docker.client().inspect_container(&name, None).await.unwrap();
    let state = stopped.state.unwrap();
    assert_eq!(state.exit_code, Some(0), "SIGTERM must end the app cleanly, not by SIGKILL (137)");
    let logs = docker.logs(&name, 5).await.unwrap();
    assert!(logs.contains("\"event\":\"draining\"") && logs.contains("\"event\":\"stopped\""), "{logs}");
}
