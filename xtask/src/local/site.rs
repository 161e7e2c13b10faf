//! The site container of the local stack: the app's image running in the local Docker engine,
//! published on 127.0.0.1, hardened like a Fargate task (read-only root filesystem, no
//! capabilities, non-root), healthy before anyone is told its URL.
//!
//! Containers are named `gbg-<app>-site-<colour>` and labelled with the app, the role (`site`),
//! the colour (blue or green), the version (the image tag) and the published port, so a blue/green
//! rehearsal can start green beside blue on another port, check it, and then swap which one holds
//! the public port. [`run`] is idempotent: the same image on the same port, already healthy, is
//! left alone; anything else under that name is replaced.

use std::net::{Ipv4Addr, TcpListener};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::docker::{ContainerFacts, ContainerSpec, Docker, PortInUse};
use crate::http;
use crate::local::daemon::PartStatus;
use crate::output::Printer;
use crate::site_image::LABEL_APP;

/// Labels of a site container.
pub const LABEL_ROLE: &str = "gbg.role";
pub const LABEL_COLOUR: &str = "gbg.colour";
pub const LABEL_VERSION: &str = "gbg.version";
pub const LABEL_PORT: &str = "gbg.port";
/// The value of [`LABEL_ROLE`] on site containers.
pub const ROLE: &str = "site";

/// Where the site is published on the host.
pub const HOST_IP: &str = "127.0.0.1";
/// How long a new container may take to pass its health check.
const HEALTHY_WITHIN: Duration = Duration::from_secs(60);
/// Locally the image's health check runs every second, so `run` returns as soon as the site is up.
const HEALTH_INTERVAL: Duration = Duration::from_secs(1);

/// Blue or green: which of two side-by-side versions a container is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Colour {
    Blue,
    Green,
}

impl Colour {
    pub fn as_str(self) -> &'static str {
        match self {
            Colour::Blue => "blue",
            Colour::Green => "green",
        }
    }
}

impl std::fmt::Display for Colour {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// What to run.
#[derive(Clone, Debug)]
pub struct SiteSpec {
    /// The config's `app`: names and labels the container.
    pub app: String,
    /// The image reference, `<app>:<tag>`.
    pub image: String,
    /// The version shown in labels and status (the image tag).
    pub version: String,
    pub colour: Colour,
    /// The port on 127.0.0.1.
    pub host_port: u16,
    /// The port the app listens on inside the container (`PORT`; the config's container port).
    pub container_port: u16,
}

/// A running, healthy site.
#[derive(Clone, Debug, Serialize)]
pub struct RunningSite {
    pub name: String,
    pub id: String,
    pub image: String,
    pub version: String,
    pub colour: Colour,
    pub port: u16,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// Whether it was already running as asked (nothing was changed).
    pub unchanged: bool,
}

/// `gbg-<app>-site-<colour>`.
pub fn container_name(app: &str, colour: Colour) -> String {
    format!("gbg-{app}-site-{colour}")
}

/// Runs `spec` and waits until it is healthy and answers through the published port.
pub async fn run(docker: &Docker, spec: &SiteSpec, printer: &Printer) -> Result<RunningSite> {
    let name = container_name(&spec.app, spec.colour);
    let url = format!("http://{HOST_IP}:{}", spec.host_port);
    let existing = docker.container(&name).await?;
    if let Some(existing) = &existing {
        let same = existing.image == spec.image
            && existing.host_port == Some(spec.host_port)
            && existing.state == "running"
            && existing.health.as_deref() == Some("healthy");
        if same {
            return Ok(RunningSite {
                name,
                id: existing.id.clone(),
                image: spec.image.clone(),
                version: spec.version.clone(),
                colour: spec.colour,
                port: spec.host_port,
                url,
                unchanged: true,
            });
        }
    }
    // Check the port before touching the running container: a taken port must not cost the user
    // the site they have. Only when the old container itself holds the port, check after removing it.
    let old_holds_port = existing
        .as_ref()
        .is_some_and(|existing| existing.state == "running" && existing.host_port == Some(spec.host_port));
    if !old_holds_port {
        ensure_port_free(spec.host_port)?;
    }
    if let Some(existing) = &existing {
        printer.status("Replacing", format!("{name} ({}, {})", existing.image, existing.state));
        docker.remove_container(&name).await?;
    }
    if old_holds_port {
        ensure_port_free(spec.host_port)?;
    }
    let progress = printer.progress("Starting", format!("{name} from {} on {url}", spec.image));
    let labels = [
        (LABEL_APP, spec.app.as_str()),
        (LABEL_ROLE, ROLE),
        (LABEL_COLOUR, spec.colour.as_str()),
        (LABEL_VERSION, spec.version.as_str()),
        (LABEL_PORT, &spec.host_port.to_string()),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_string(), value.to_string()))
    .collect();
    let container = ContainerSpec {
        name: name.clone(),
        image: spec.image.clone(),
        env: vec![format!("PORT={}", spec.container_port)],
        labels,
        publish: Some((spec.container_port, HOST_IP.to_string(), spec.host_port)),
        health_interval: Some(HEALTH_INTERVAL),
        hardened: true,
    };
    let id = docker.run(&container).await.map_err(|error| explain_port(error, spec.host_port))?;
    progress.update("waiting for its health check");
    if let Err(error) = docker.wait_healthy(&name, HEALTHY_WITHIN).await {
        // Do not leave a broken site holding the port; its logs are in the error.
        let _ = docker.remove_container(&name).await;
        drop(progress);
        return Err(error.context(format!("running {} as {name}", spec.image)));
    }
    let reply = get(spec.host_port, "/healthz").await.with_context(|| format!("checking {url}/healthz"))?;
    if reply.status != 200 {
        bail!("{name} is healthy inside but {url}/healthz answered {}; check `docker logs {name}`", reply.status);
    }
    progress.finish("Healthy", format!("{name} ({})", spec.image));
    Ok(RunningSite {
        name,
        id,
        image: spec.image.clone(),
        version: spec.version.clone(),
        colour: spec.colour,
        port: spec.host_port,
        url,
        unchanged: false,
    })
}

/// Makes sure the site serves on `spec.host_port`: when a site container of this app (either
/// colour) already serves there, it is kept, whatever version it runs (moving the port to a new
/// version is `release --local`'s blue/green shift); otherwise `spec` is started. The note says
/// when the running version differs from `spec`'s.
pub async fn ensure_serving(
    docker: &Docker,
    spec: &SiteSpec,
    printer: &Printer,
) -> Result<(RunningSite, Option<String>)> {
    for container in list(docker, &spec.app).await? {
        if container.state != "running" || container.host_port != Some(spec.host_port) {
            continue;
        }
        let colour = match container.labels.get(LABEL_COLOUR).map(String::as_str) {
            Some("green") => Colour::Green,
            _ => Colour::Blue,
        };
        let version = container.labels.get(LABEL_VERSION).cloned().unwrap_or_default();
        let note = (container.image != spec.image).then(|| {
            format!(
                "the site on {HOST_IP}:{} keeps running {version} ({colour}); `cargo xtask release --local` shifts it to {}",
                spec.host_port, spec.version
            )
        });
        let running = RunningSite {
            name: container.name.clone(),
            id: container.id.clone(),
            image: container.image.clone(),
            version,
            colour,
            port: spec.host_port,
            url: format!("http://{HOST_IP}:{}", spec.host_port),
            unchanged: true,
        };
        return Ok((running, note));
    }
    Ok((run(docker, spec, printer).await?, None))
}

/// Stops and removes the app's site containers (one colour, or both); returns the names removed.
pub async fn stop(docker: &Docker, app: &str, colour: Option<Colour>) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for container in list(docker, app).await? {
        let matches =
            colour.is_none_or(|colour| container.labels.get(LABEL_COLOUR).map(String::as_str) == Some(colour.as_str()));
        if matches && docker.remove_container(&container.id).await? {
            removed.push(container.name);
        }
    }
    Ok(removed)
}

/// The app's site containers, running or not.
pub async fn list(docker: &Docker, app: &str) -> Result<Vec<ContainerFacts>> {
    docker.containers(&[(LABEL_APP, app), (LABEL_ROLE, ROLE)]).await
}

/// The site's rows of `local status`.
pub async fn status(docker: &Docker, app: &str) -> Result<Vec<PartStatus>> {
    let containers = list(docker, app).await?;
    Ok(containers
        .into_iter()
        .map(|container| {
            let state = match &container.health {
                Some(health) if container.state == "running" => health.clone(),
                _ => container.state.clone(),
            };
            let colour = container.labels.get(LABEL_COLOUR).cloned().unwrap_or_default();
            PartStatus {
                part: "site".into(),
                name: container.name,
                state,
                url: container.host_port.map(|port| format!("http://{HOST_IP}:{port}")),
                detail: format!("{} ({colour})", container.image),
            }
        })
        .collect())
}

/// Fails with [`PortInUse`] when something on this host already listens on 127.0.0.1:`port`.
/// A port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port")?.local_addr()?.port())
}

pub fn ensure_port_free(port: u16) -> Result<()> {
    match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
        Ok(_listener) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => {
            Err(explain_port(PortInUse { host_ip: HOST_IP.into(), port }.into(), port))
        }
        Err(error) => Err(error).with_context(|| format!("checking that port {port} on {HOST_IP} is free")),
    }
}

/// Adds the fix to a [`PortInUse`] error; other errors pass unchanged.
fn explain_port(error: anyhow::Error, port: u16) -> anyhow::Error {
    if error.downcast_ref::<PortInUse>().is_some() {
        error.context(format!(
            "cannot publish the site on {HOST_IP}:{port}: the port is taken; stop what holds it, or choose another: `site_port` under [local] in the config (or `--port` on `local run` and `release --local`)"
        ))
    } else {
        error
    }
}

/// `GET path` on 127.0.0.1:`port` (our own servers) within 5 s: [`http::get`], off the async
/// runtime's threads.
pub async fn get(port: u16, path: &str) -> Result<http::Response> {
    let url = format!("http://127.0.0.1:{port}{path}");
    tokio::task::spawn_blocking(move || http::get(&url, Duration::from_secs(5))).await?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_containers_by_app_and_colour() {
        assert_eq!(container_name("web", Colour::Blue), "gbg-web-site-blue");
        assert_eq!(container_name("shop", Colour::Green), "gbg-shop-site-green");
    }

    #[test]
    fn a_held_port_is_reported_with_the_flag_to_change_it() {
        let holder = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = holder.local_addr().unwrap().port();
        let error = format!("{:#}", ensure_port_free(port).unwrap_err());
        assert!(error.contains(&format!("127.0.0.1:{port}")) && error.contains("--port"), "{error}");
        drop(holder);
        ensure_port_free(port).unwrap();
    }
}
