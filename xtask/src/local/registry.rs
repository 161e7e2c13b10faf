//! The local stand-ins for ECR's registries: one Debian `docker-registry` per workload region on
//! 127.0.0.1, started on first use and left running like the emulator (`local down` stops them).
//! The emulator still serves the ECR API (repositories, tokens, image listing); it has no registry
//! protocol, so the images themselves go here.
//!
//! Each region keeps its port across runs (`target/local/registries.json`) and its storage under
//! `target/local/registry/<region>`, so a second push finds its layers already there. The Docker
//! engine treats registries on 127.0.0.0/8 as insecure-allowed, so plain HTTP works without any
//! daemon configuration.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::http;
use crate::local::{daemon, site};
use crate::output::Printer;

/// A running local registry.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Registry {
    pub region: String,
    pub port: u16,
}

impl Registry {
    /// `127.0.0.1:<port>`: the host part of image references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.host())
    }
}

/// Serialises starts within this process: two workloads in one region share a registry.
static STARTING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn state_file() -> PathBuf {
    daemon::state_dir().join("registries.json")
}

fn pid_file(region: &str) -> PathBuf {
    daemon::state_dir().join(format!("registry-{region}.pid"))
}

fn log_file(region: &str) -> PathBuf {
    daemon::state_dir().join(format!("registry-{region}.log"))
}

/// The registries this checkout has started, by region (running or not).
pub fn known() -> BTreeMap<String, Registry> {
    std::fs::read_to_string(state_file()).ok().and_then(|text| serde_json::from_str(&text).ok()).unwrap_or_default()
}

/// Whether a registry answers `GET /v2/` on `port`.
pub fn probe(port: u16) -> bool {
    http::get(&format!("http://127.0.0.1:{port}/v2/"), Duration::from_secs(2)).is_ok_and(|answer| answer.status == 200)
}

/// The registry of `region`, started when it is not running.
pub async fn ensure(printer: &Printer, region: &str) -> Result<Registry> {
    let _guard = STARTING.lock().await;
    let mut registries = known();
    if let Some(registry) = registries.get(region)
        && probe(registry.port)
    {
        return Ok(registry.clone());
    }
    let program = find_program()?;
    let port = match registries.get(region) {
        Some(registry) if site::ensure_port_free(registry.port).is_ok() => registry.port,
        _ => site::free_port()?,
    };
    let storage = daemon::state_dir().join("registry").join(region);
    std::fs::create_dir_all(&storage).with_context(|| format!("creating {}", storage.display()))?;
    let config = daemon::state_dir().join(format!("registry-{region}.yml"));
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            storage.display()
        ),
    )?;
    let progress = printer.progress("Starting", format!("registry for {region} on 127.0.0.1:{port}"));
    let mut child = daemon::spawn(
        &program,
        &["serve".to_string(), config.display().to_string()],
        &log_file(region),
        &pid_file(region),
    )?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !probe(port) {
        if let Some(status) = child.try_wait()? {
            bail!("the registry for {region} exited at start ({status}); its log is {}", log_file(region).display());
        }
        if Instant::now() > deadline {
            bail!(
                "the registry for {region} did not answer on port {port} within 20 s; its log is {}",
                log_file(region).display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    progress.finish("Started", format!("registry for {region} at http://127.0.0.1:{port}"));
    let registry = Registry { region: region.to_string(), port };
    registries.insert(region.to_string(), registry.clone());
    std::fs::write(state_file(), serde_json::to_string_pretty(&registries)?)?;
    Ok(registry)
}

/// Stops every registry this checkout started; returns the regions stopped.
pub fn stop_all() -> Result<Vec<String>> {
    let mut stopped = Vec::new();
    for region in known().keys() {
        if daemon::stop(&pid_file(region))? {
            stopped.push(region.clone());
        }
    }
    Ok(stopped)
}

/// `docker-registry` on PATH, or the Debian package to install.
/// The `docker-registry` binary on PATH, or an error with the install command.
pub fn find_program() -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("docker-registry"))
        .find(|candidate| candidate.is_file())
        .context("`docker-registry` is not on PATH: the local registries need it (`apt-get install docker-registry`)")
}
