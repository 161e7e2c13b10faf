//! The local blue/green rehearsal: on one machine's Docker engine, what CodeDeploy does to a
//! workload's service. The new version starts as the other colour beside the one serving the
//! published port, on a free port of its own (CodeDeploy's replacement task set behind the test
//! listener); it must pass its health check and answer `/version` with the new version. Only then
//! does the published port move to it and the old colour stop (the production listener's shift
//! and blue's termination). A new version that fails its checks is removed and the old one keeps
//! serving; if the new one cannot take the published port, the old one is started on it again.
//!
//! What this cannot show: Docker fixes a container's published ports when it is created, so
//! moving the port means recreating the new container on it; between the old one stopping and the
//! new one answering (about a second, its health check interval) the port does not answer. On AWS
//! the load balancer's listener switches between two running task sets, without such a gap.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::docker::{ContainerFacts, Docker};
use crate::local::site::{self, Colour, LABEL_COLOUR, LABEL_VERSION, SiteSpec};
use crate::output::Printer;

/// What to shift to.
#[derive(Clone, Debug)]
pub struct ShiftSpec {
    pub app: String,
    /// A local image reference the engine has.
    pub image: String,
    /// What `/version` must answer as `commit` (the image's tag).
    pub version: String,
    /// The app's port inside the container.
    pub container_port: u16,
    /// The published port (the config's `site_port`, where `deploy --local` runs the site).
    pub port: u16,
}

/// One side of a shift.
#[derive(Clone, Debug, Serialize)]
pub struct SiteVersion {
    pub colour: Colour,
    pub image: String,
    pub version: String,
}

/// The outcome: the published port now serves `to`; `from` was stopped.
#[derive(Clone, Debug, Serialize)]
pub struct Shift {
    pub port: u16,
    pub url: String,
    pub from: Option<SiteVersion>,
    pub to: SiteVersion,
    /// The port already served this version: nothing was changed.
    pub unchanged: bool,
}

/// Shifts the published port to `spec`'s version; see the module docs.
pub async fn shift(docker: &Docker, spec: &ShiftSpec, printer: &Printer) -> Result<Shift> {
    let port = spec.port;
    let containers = site::list(docker, &spec.app).await?;
    let running: Vec<&ContainerFacts> =
        containers.iter().filter(|container| container.state == "running" && container.host_port.is_some()).collect();
    let url = format!("http://{}:{port}", site::HOST_IP);
    let live = running.iter().find(|container| container.host_port == Some(port)).copied();
    let from = live.map(|container| SiteVersion {
        colour: colour_of(container),
        image: container.image.clone(),
        version: container.labels.get(LABEL_VERSION).cloned().unwrap_or_default(),
    });
    if let Some(from) = &from
        && from.image == spec.image
        && check_version(port, &spec.version).await.is_ok()
    {
        printer.status("Unchanged", format!("{url} already serves {} ({})", spec.version, from.colour));
        return Ok(Shift { port, url, from: None, to: from.clone(), unchanged: true });
    }
    let colour = match from.as_ref().map(|from| from.colour) {
        Some(Colour::Blue) => Colour::Green,
        Some(Colour::Green) | None => Colour::Blue,
    };
    let to = SiteVersion { colour, image: spec.image.clone(), version: spec.version.clone() };
    let site_spec = |colour: Colour, image: &str, version: &str, host_port: u16| SiteSpec {
        app: spec.app.clone(),
        image: image.to_string(),
        version: version.to_string(),
        colour,
        host_port,
        container_port: spec.container_port,
    };

    // 1. The new colour beside the old one, on a port of its own, checked.
    let side_port = site::free_port()?;
    printer.status("Starting", format!("{} as {colour} on port {side_port}, beside {}", spec.version, describe(&from)));
    let checked = async {
        site::run(docker, &site_spec(colour, &spec.image, &spec.version, side_port), printer).await?;
        check_version(side_port, &spec.version).await
    }
    .await;
    if let Err(error) = checked {
        let _ = site::stop(docker, &spec.app, Some(colour)).await;
        return Err(error.context(format!(
            "the new version failed its checks beside the old one; {url} still serves {} (nothing shifted)",
            describe(&from)
        )));
    }
    printer.status("Checked", format!("{colour} answers /healthz and /version {} on port {side_port}", spec.version));

    // 2. The published port moves: the old colour stops, the new one takes the port.
    if let Some(live) = live {
        docker.remove_container(&live.id).await.with_context(|| format!("stopping {}", live.name))?;
    }
    wait_port_free(port).await?;
    let moved = async {
        site::run(docker, &site_spec(colour, &spec.image, &spec.version, port), printer).await?;
        check_version(port, &spec.version).await
    }
    .await;
    if let Err(error) = moved {
        let _ = site::stop(docker, &spec.app, Some(colour)).await;
        if let Some(from) = &from {
            wait_port_free(port).await?;
            site::run(docker, &site_spec(from.colour, &from.image, &from.version, port), printer)
                .await
                .context("putting the old version back on the published port after the shift failed")?;
        }
        return Err(
            error.context(format!("moving {url} to the new version failed; it serves {} again", describe(&from)))
        );
    }
    // Anything else of the app left running (a stale colour from an interrupted rehearsal) stops too.
    for container in site::list(docker, &spec.app).await? {
        if colour_of(&container) != colour {
            docker.remove_container(&container.id).await?;
        }
    }
    printer.status("Shifted", format!("{url} from {} to {} ({colour})", describe(&from), spec.version));
    Ok(Shift { port, url, from, to, unchanged: false })
}

fn describe(from: &Option<SiteVersion>) -> String {
    match from {
        Some(from) => format!("{} ({})", from.version, from.colour),
        None => "nothing".to_string(),
    }
}

fn colour_of(container: &ContainerFacts) -> Colour {
    match container.labels.get(LABEL_COLOUR).map(String::as_str) {
        Some("green") => Colour::Green,
        _ => Colour::Blue,
    }
}

/// `/version` on `port` answers `version` as its commit.
pub async fn check_version(port: u16, version: &str) -> Result<()> {
    let reply = site::get(port, "/version").await?;
    if reply.status != 200 {
        bail!("GET /version on port {port} answered {}", reply.status);
    }
    let body: serde_json::Value =
        serde_json::from_slice(&reply.body).with_context(|| format!("GET /version on port {port} is not JSON"))?;
    if body["commit"] != version {
        bail!("port {port} serves version {} instead of {version}", body["commit"]);
    }
    Ok(())
}

/// Docker releases a published port a moment after its container stops.
async fn wait_port_free(port: u16) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match site::ensure_port_free(port) {
            Ok(()) => return Ok(()),
            Err(error) if Instant::now() > deadline => return Err(error),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
