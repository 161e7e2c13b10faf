//! `cargo xtask local run|stop|status` against the real Docker engine: the site comes up healthy
//! on the asked port, running it again changes nothing, stopping twice is fine, a taken port is a
//! clear error naming it, and blue and green run side by side with their labels.

use xtask::local::site::{self, Colour, SiteSpec};
use xtask::site_image::{self, Options};

use crate::support::{self, Cleanup};

#[tokio::test(flavor = "multi_thread")]
async fn run_is_idempotent_and_stop_removes_the_site() {
    let docker = support::docker().await;
    let app = support::unique("it-local");
    let config = support::config_with_app(&app);
    let config = config.to_str().unwrap();
    let mut cleanup = Cleanup::default();
    cleanup.container(site::container_name(&app, Colour::Blue));
    let port = support::free_port();
    let port_text = port.to_string();

    let run = support::run_xtask(&["local", "run", "--config", config, "--port", &port_text, "--json"], &[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let running: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    cleanup.image(running["image"].as_str().unwrap());
    let url = format!("http://127.0.0.1:{port}");
    assert_eq!(running["url"], url.as_str());
    assert_eq!(running["unchanged"], false);
    assert!(run.stderr.contains(&url), "the URL is printed: {}", run.stderr);
    let page = site::get(port, "/").await.unwrap();
    assert_eq!(page.status, 200);
    assert!(String::from_utf8_lossy(&page.body).contains("Congratulations"));

    let again = support::run_xtask(&["local", "run", "--config", config, "--port", &port_text, "--json"], &[]);
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    let again: serde_json::Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(again["unchanged"], true);
    assert_eq!(again["id"], running["id"], "a second run must not replace a healthy site");

    let status = support::run_xtask(&["local", "status", "--config", config, "--json"], &[]);
    assert_eq!(status.code, Some(0), "{}", status.stderr);
    let parts: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    // Only the site's rows: the emulator and registries of the checkout's own local stack may run too.
    let parts: Vec<&serde_json::Value> =
        parts.as_array().unwrap().iter().filter(|part| part["part"] == "site").collect();
    assert_eq!(parts.len(), 1, "{parts:?}");
    assert_eq!(parts[0]["part"], "site");
    assert_eq!(parts[0]["state"], "healthy");
    assert_eq!(parts[0]["url"], url.as_str());

    for _ in 0..2 {
        let stop = support::run_xtask(&["local", "stop", "--config", config], &[]);
        assert_eq!(stop.code, Some(0), "{}", stop.stderr);
    }
    assert!(docker.container(&site::container_name(&app, Colour::Blue)).await.unwrap().is_none());
    let status = support::run_xtask(&["local", "status", "--config", config, "--json"], &[]);
    let parts: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert!(parts.as_array().unwrap().iter().all(|part| part["part"] != "site"), "{parts}");
}

#[test]
fn a_taken_port_is_a_clear_error_naming_it() {
    let app = support::unique("it-port");
    let config = support::config_with_app(&app);
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port().to_string();
    let run = support::run_xtask(&["local", "run", "--config", config.to_str().unwrap(), "--port", &port], &[]);
    assert_ne!(run.code, Some(0));
    assert!(run.stderr.contains(&format!("127.0.0.1:{port}")), "{}", run.stderr);
    assert!(run.stderr.contains("--port"), "the fix is missing: {}", run.stderr);
    assert!(!run.stderr.contains("Compiling app"), "it must fail before building: {}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn blue_and_green_run_side_by_side_with_their_labels() {
    let docker = support::docker().await;
    let ctx = support::ctx();
    let app = support::unique("it-bluegreen");
    let mut cleanup = Cleanup::default();
    let built =
        site_image::build(&ctx, &Options { config: support::config_with_app(&app), dockerfile: None }).await.unwrap();
    cleanup.image(&built.reference);
    cleanup.container(site::container_name(&app, Colour::Blue));
    cleanup.container(site::container_name(&app, Colour::Green));
    let spec = |colour: Colour, host_port: u16| SiteSpec {
        app: app.clone(),
        image: built.reference.clone(),
        version: built.tag.clone(),
        colour,
        host_port,
        container_port: 8080,
    };
    let blue = site::run(&docker, &spec(Colour::Blue, support::free_port()), &ctx.printer).await.unwrap();
    let green = site::run(&docker, &spec(Colour::Green, support::free_port()), &ctx.printer).await.unwrap();
    assert_ne!(blue.port, green.port);

    let listed = site::list(&docker, &app).await.unwrap();
    assert_eq!(listed.len(), 2);
    for (container, colour, port) in [(&listed[0], "blue", blue.port), (&listed[1], "green", green.port)] {
        assert_eq!(container.labels["gbg.app"], app);
        assert_eq!(container.labels["gbg.role"], "site");
        assert_eq!(container.labels["gbg.colour"], colour);
        assert_eq!(container.labels["gbg.version"], built.tag);
        assert_eq!(container.labels["gbg.port"], port.to_string());
        assert_eq!(container.host_port, Some(port));
        assert_eq!(container.health.as_deref(), Some("healthy"));
    }

    // The same colour on the green port while green holds it: taken, and said so.
    let clash = site::run(&docker, &spec(Colour::Blue, green.port), &ctx.printer).await;
    let error = format!("{:#}", clash.expect_err("blue must not start on green's port"));
    assert!(error.contains(&format!("127.0.0.1:{}", green.port)), "{error}");

    // The refused move must leave the running blue alone.
    let blue_now = docker.container(&blue.name).await.unwrap().expect("blue survives a refused move");
    assert_eq!((blue_now.id, blue_now.host_port), (blue.id.clone(), Some(blue.port)));

    assert_eq!(site::stop(&docker, &app, Some(Colour::Green)).await.unwrap(), vec![green.name.clone()]);
    assert_eq!(site::stop(&docker, &app, None).await.unwrap(), vec![blue.name.clone()]);
    assert!(site::stop(&docker, &app, None).await.unwrap().is_empty());
}
