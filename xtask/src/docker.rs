//! The Docker Engine, through its API (bollard): the one place the xtask talks to Docker.
//!
//! It connects where the docker CLI would (`DOCKER_HOST`, else `/var/run/docker.sock`), negotiates
//! the API version down to the engine's (Docker 20.10 speaks 1.41), and pings before anything
//! else, so an engine that is not there is one clear error naming the socket or `DOCKER_HOST` and
//! the fix, not a stack of transport errors halfway through a build.
//!
//! What the subcommands need, and nothing more: build an image from an in-memory tar context (the
//! build log streamed through the [`Printer`], the daemon's own text on failure), inspect and
//! remove images, run, inspect, list (by label) and remove containers, wait until a container's
//! health check passes. Everything returns small owned facts ([`ImageFacts`],
//! [`ContainerFacts`]) so callers never handle bollard's optional-everything models.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, ContainerStateStatusEnum, HealthConfig, HealthStatusEnum, HostConfig, PortBinding,
    RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateContainerOptionsBuilder, InspectContainerOptions, ListContainersOptionsBuilder,
    LogsOptionsBuilder, PushImageOptions, RemoveContainerOptionsBuilder, RemoveImageOptionsBuilder, TagImageOptions,
};
use futures_util::StreamExt;

use crate::output::Printer;

/// Where the engine is when `DOCKER_HOST` is unset (the docker CLI's default too).
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// How long the first ping may take before the engine counts as unreachable.
const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// A connected, version-negotiated engine.
#[derive(Clone)]
pub struct Docker {
    client: bollard::Docker,
    endpoint: Endpoint,
}

/// Where the engine was looked for, and why there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `unix:///var/run/docker.sock`, `tcp://host:2375`, ...
    pub host: String,
    /// Whether `DOCKER_HOST` named it.
    pub from_env: bool,
}

impl Endpoint {
    /// `DOCKER_HOST` when set and not empty, else [`DEFAULT_HOST`].
    pub fn from_env() -> Endpoint {
        match std::env::var("DOCKER_HOST") {
            Ok(host) if !host.trim().is_empty() => Endpoint { host: host.trim().to_string(), from_env: true },
            _ => Endpoint { host: DEFAULT_HOST.to_string(), from_env: false },
        }
    }

    /// `DOCKER_HOST=tcp://...` or `unix:///var/run/docker.sock (DOCKER_HOST is unset)`.
    pub fn describe(&self) -> String {
        if self.from_env {
            format!("DOCKER_HOST={}", self.host)
        } else {
            format!("{} (DOCKER_HOST is unset)", self.host)
        }
    }

    /// What to do when the engine is not there.
    fn fix(&self) -> String {
        let start = "start the engine (`sudo systemctl start docker` or `sudo service docker start`; \
                     install it with `sudo apt-get install docker.io`), make sure your user may use it \
                     (`sudo usermod -aG docker $USER`, then log in again)";
        if self.from_env {
            format!("{start}, or fix DOCKER_HOST (unset it to use {DEFAULT_HOST})")
        } else {
            format!("{start}, or set DOCKER_HOST to a running engine (e.g. unix:///run/user/1000/docker.sock)")
        }
    }
}

/// The engine is not reachable at `endpoint`; callers may match on it (`cargo xtask test` does).
#[derive(Debug, thiserror::Error)]
#[error("cannot reach the Docker engine at {}: {cause}\n  fix: {}", endpoint.describe(), endpoint.fix())]
pub struct Unreachable {
    pub endpoint: Endpoint,
    pub cause: String,
}

/// A host port that something else holds; callers say which flag picks another.
#[derive(Debug, thiserror::Error)]
#[error("port {port} on {host_ip} is already in use by another process or container")]
pub struct PortInUse {
    pub host_ip: String,
    pub port: u16,
}

/// What a build needs: the context as a tar archive (see [`tar_context`]) and the tag. Labels go
/// in the Dockerfile (one LABEL instruction): the engine's `labels` option adds a build step per
/// label.
pub struct BuildRequest<'a> {
    pub context: Vec<u8>,
    /// `name:tag`.
    pub tag: &'a str,
    /// The Dockerfile's path inside the context.
    pub dockerfile: &'a str,
}

/// One file of a build context.
pub struct ContextFile {
    /// Path inside the context, e.g. `Dockerfile` or `app`.
    pub path: String,
    pub bytes: Vec<u8>,
    /// Unix permissions, e.g. `0o755` for a binary.
    pub mode: u32,
}

/// An image as the engine describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageFacts {
    /// `sha256:...`.
    pub id: String,
    pub tags: Vec<String>,
    /// Bytes of all layers, as `docker image ls` reports it.
    pub size: u64,
    /// The `USER` it runs as (`65532:65532`); empty means root.
    pub user: String,
    pub labels: BTreeMap<String, String>,
    /// Whether the image declares a HEALTHCHECK.
    pub has_healthcheck: bool,
    pub exposed_ports: Vec<String>,
    /// The layers' content digests (`sha256:...`): the same files give the same digests, whatever
    /// the image id (which also covers creation times).
    pub layers: Vec<String>,
}

/// What to run: see [`Docker::run`].
#[derive(Clone, Debug, Default)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    /// `NAME=value`.
    pub env: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// Publish a container port on the host: `(container_port, host_ip, host_port)`.
    pub publish: Option<(u16, String, u16)>,
    /// Run the image's health check this often instead of the image's interval (its test stays).
    pub health_interval: Option<Duration>,
    /// Hardening for a service container: read-only root filesystem, no capabilities, no new
    /// privileges, bounded memory and processes.
    pub hardened: bool,
}

/// A container as the engine describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerFacts {
    pub id: String,
    /// Without the leading `/`.
    pub name: String,
    /// The image reference it was created from (`web:abc123`).
    pub image: String,
    pub labels: BTreeMap<String, String>,
    /// `running`, `exited`, `created`, ...
    pub state: String,
    /// `healthy`, `unhealthy`, `starting`, or `None` without a health check.
    pub health: Option<String>,
    /// The first published host port, if any.
    pub host_port: Option<u16>,
}

/// What [`Docker::push`] did, as the engine reported it.
#[derive(Debug, Default)]
pub struct PushReport {
    pub layers_pushed: usize,
    pub layers_existing: usize,
    /// Bytes of the layers sent (the engine's progress totals).
    pub bytes_pushed: u64,
    /// The manifest digest the engine pushed, when it said.
    pub digest: Option<String>,
}

impl Docker {
    /// Connects to the engine at `DOCKER_HOST` (or the default socket), pings it and negotiates
    /// the API version. Fails with [`Unreachable`] when nothing answers.
    pub async fn connect() -> Result<Docker> {
        Docker::connect_to(Endpoint::from_env()).await
    }

    /// Like [`Docker::connect`], at `endpoint`.
    pub async fn connect_to(endpoint: Endpoint) -> Result<Docker> {
        let unreachable = |cause: String| Unreachable { endpoint: endpoint.clone(), cause };
        if let Some(path) = endpoint.host.strip_prefix("unix://")
            && !std::path::Path::new(path).exists()
        {
            return Err(unreachable(format!("{path} does not exist")).into());
        }
        let client =
            bollard::Docker::connect_with_host(&endpoint.host).map_err(|error| unreachable(error.to_string()))?;
        let negotiated = match tokio::time::timeout(PING_TIMEOUT, client.negotiate_version()).await {
            Ok(Ok(client)) => client,
            Ok(Err(error)) => return Err(unreachable(cause_text(&error)).into()),
            Err(_) => return Err(unreachable(format!("no answer within {}s", PING_TIMEOUT.as_secs())).into()),
        };
        negotiated.ping().await.map_err(|error| unreachable(cause_text(&error)))?;
        Ok(Docker { client: negotiated, endpoint })
    }

    /// The bollard client, for operations this module does not wrap.
    pub fn client(&self) -> &bollard::Docker {
        &self.client
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Builds `request` with the classic builder, streaming the build log into a live line (and
    /// detail lines with `--verbose`). Returns the image id. A failed build is an error carrying
    /// the daemon's own message and the last lines of the log.
    pub async fn build_image(&self, request: BuildRequest<'_>, printer: &Printer) -> Result<String> {
        let options = BuildImageOptionsBuilder::default()
            .dockerfile(request.dockerfile)
            .t(request.tag)
            .rm(true)
            .forcerm(true)
            .build();
        let progress = printer.progress("Building", format!("image {}", request.tag));
        let body = bollard::body_full(request.context.into());
        let mut stream = self.client.build_image(options, None, Some(body));
        let mut image_id = None;
        let mut tail: VecDeque<String> = VecDeque::new();
        while let Some(item) = stream.next().await {
            let info = match item {
                Ok(info) => info,
                Err(error) => {
                    let log = tail.iter().map(|line| format!("\n    {line}")).collect::<String>();
                    let message = match error {
                        BollardError::DockerStreamError { error } => error,
                        BollardError::DockerResponseServerError { message, .. } => message,
                        other => cause_text(&other),
                    };
                    // The error below says it all; the live line just goes away.
                    drop(progress);
                    let log = if log.is_empty() { String::new() } else { format!("\n  build log (last lines):{log}") };
                    bail!(
                        "the Docker daemon could not build {}: {}{log}\n  fix: correct the Dockerfile or the build context, then run `cargo xtask image` again",
                        request.tag,
                        message.trim()
                    );
                }
            };
            if let Some(text) = info.stream.as_deref() {
                for line in text.lines().map(str::trim_end).filter(|line| !line.trim().is_empty()) {
                    progress.update(line.trim());
                    if tail.len() == 8 {
                        tail.pop_front();
                    }
                    tail.push_back(line.to_string());
                }
            }
            if let Some(id) = info.aux.and_then(|aux| aux.id) {
                image_id = Some(id);
            }
        }
        let image_id =
            match image_id {
                Some(id) => id,
                // Older engines do not send the id in `aux`: ask for the tag instead.
                None => self.image(request.tag).await?.map(|image| image.id).ok_or_else(|| {
                    anyhow!("the Docker daemon finished building {} but has no such image", request.tag)
                })?,
            };
        progress.finish("Built", format!("image {} ({})", request.tag, short_id(&image_id)));
        Ok(image_id)
    }

    /// The image `reference` (`name:tag` or id), or `None` when the engine has no such image.
    pub async fn image(&self, reference: &str) -> Result<Option<ImageFacts>> {
        let inspect = match self.client.inspect_image(reference).await {
            Ok(inspect) => inspect,
            Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => return Ok(None),
            Err(error) => return Err(error).with_context(|| format!("inspecting image {reference}")),
        };
        let config = inspect.config.unwrap_or_default();
        Ok(Some(ImageFacts {
            id: inspect.id.unwrap_or_default(),
            tags: inspect.repo_tags.unwrap_or_default(),
            size: inspect.size.unwrap_or_default().max(0) as u64,
            user: config.user.unwrap_or_default(),
            labels: config.labels.unwrap_or_default().into_iter().collect(),
            has_healthcheck: config.healthcheck.and_then(|health| health.test).is_some_and(|test| !test.is_empty()),
            exposed_ports: config.exposed_ports.unwrap_or_default(),
            layers: inspect.root_fs.and_then(|root_fs| root_fs.layers).unwrap_or_default(),
        }))
    }

    /// Tags the local image `source` as `<target>:<tag>` and pushes it, with `credentials` for the
    /// registry (none for an open one). The engine asks the registry for each layer first and
    /// sends only what it lacks; the report counts both and names the digest the engine pushed.
    pub async fn push(
        &self,
        source: &str,
        target: &str,
        tag: &str,
        credentials: Option<bollard::auth::DockerCredentials>,
    ) -> Result<PushReport> {
        self.client
            .tag_image(source, Some(TagImageOptions { repo: Some(target.to_string()), tag: Some(tag.to_string()) }))
            .await
            .with_context(|| format!("tagging {source} as {target}:{tag}"))?;
        let options = PushImageOptions { tag: Some(tag.to_string()), platform: None };
        let mut stream = self.client.push_image(target, Some(options), credentials);
        let mut report = PushReport::default();
        let mut last_total = 0u64;
        while let Some(event) = stream.next().await {
            let event = event.with_context(|| format!("pushing {target}:{tag}"))?;
            if let Some(error) = event.error_detail {
                bail!("pushing {target}:{tag}: {}", error.message.unwrap_or_default());
            }
            let status = event.status.unwrap_or_default();
            if status == "Pushing"
                && let Some(total) = event.progress_detail.and_then(|detail| detail.total)
            {
                last_total = u64::try_from(total).unwrap_or(0);
            }
            match status.as_str() {
                "Pushed" => {
                    report.layers_pushed += 1;
                    report.bytes_pushed += last_total;
                }
                "Layer already exists" => report.layers_existing += 1,
                _ => {}
            }
            if let Some((_, rest)) = status.split_once(" digest: ") {
                report.digest = rest.split_whitespace().next().map(str::to_string);
            }
        }
        Ok(report)
    }

    /// Removes the tag (or image) `reference`; `false` when there was none.
    pub async fn remove_image(&self, reference: &str) -> Result<bool> {
        let options = RemoveImageOptionsBuilder::default().force(false).noprune(false).build();
        match self.client.remove_image(reference, Some(options), None).await {
            Ok(_) => Ok(true),
            Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => Ok(false),
            Err(error) => Err(error).with_context(|| format!("removing image {reference}")),
        }
    }

    /// Creates and starts a container. A host port that is taken gives [`PortInUse`]; the
    /// half-created container is removed again.
    pub async fn run(&self, spec: &ContainerSpec) -> Result<String> {
        let options = CreateContainerOptionsBuilder::default().name(&spec.name).build();
        let created = self
            .client
            .create_container(Some(options), container_body(spec))
            .await
            .with_context(|| format!("creating container {} from {}", spec.name, spec.image))?;
        if let Err(error) = self.client.start_container(&created.id, None).await {
            // Leave nothing half-made behind: a created-but-not-started container holds its name.
            let _ = self.remove_container(&created.id).await;
            if let (Some((_, host_ip, host_port)), BollardError::DockerResponseServerError { message, .. }) =
                (&spec.publish, &error)
                && (message.contains("address already in use") || message.contains("port is already allocated"))
            {
                return Err(PortInUse { host_ip: host_ip.clone(), port: *host_port }.into());
            }
            return Err(error).with_context(|| format!("starting container {}", spec.name));
        }
        Ok(created.id)
    }

    /// The container `name` (or id), or `None`.
    pub async fn container(&self, name: &str) -> Result<Option<ContainerFacts>> {
        let inspect = match self.client.inspect_container(name, None::<InspectContainerOptions>).await {
            Ok(inspect) => inspect,
            Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => return Ok(None),
            Err(error) => return Err(error).with_context(|| format!("inspecting container {name}")),
        };
        let state = inspect.state.unwrap_or_default();
        let config = inspect.config.unwrap_or_default();
        let host_port = inspect
            .host_config
            .and_then(|host| host.port_bindings)
            .into_iter()
            .flat_map(|bindings| bindings.into_values())
            .flatten()
            .flatten()
            .find_map(|binding| binding.host_port.and_then(|port| port.parse().ok()));
        Ok(Some(ContainerFacts {
            id: inspect.id.unwrap_or_default(),
            name: inspect.name.unwrap_or_default().trim_start_matches('/').to_string(),
            image: config.image.unwrap_or_default(),
            labels: config.labels.unwrap_or_default().into_iter().collect(),
            state: state.status.map(|status| status.to_string()).unwrap_or_default(),
            health: state
                .health
                .and_then(|health| health.status)
                .filter(|status| !matches!(status, HealthStatusEnum::EMPTY | HealthStatusEnum::NONE))
                .map(|status| status.to_string()),
            host_port,
        }))
    }

    /// Every container (running or not) carrying all of `labels`.
    pub async fn containers(&self, labels: &[(&str, &str)]) -> Result<Vec<ContainerFacts>> {
        let filter: Vec<String> = labels.iter().map(|(key, value)| format!("{key}={value}")).collect();
        let filters = HashMap::from([("label", filter)]);
        let options = ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
        let summaries = self.client.list_containers(Some(options)).await.context("listing containers")?;
        let mut containers = Vec::with_capacity(summaries.len());
        for summary in summaries {
            let Some(id) = summary.id else { continue };
            // Inspect for the health and the bindings the summary leaves out; it may vanish meanwhile.
            if let Some(facts) = self.container(&id).await? {
                containers.push(facts);
            }
        }
        containers.sort_by(|left, right| left.name.cmp(&right.name));
        Ok(containers)
    }

    /// Stops (SIGTERM, then SIGKILL after 10 s) and removes the container; `false` when there was
    /// none.
    pub async fn remove_container(&self, name: &str) -> Result<bool> {
        // Stop first so the app drains like it would under ECS; removing with force would SIGKILL.
        match self.client.stop_container(name, None).await {
            Ok(()) => {}
            Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => return Ok(false),
            // 304: already stopped.
            Err(BollardError::DockerResponseServerError { status_code: 304, .. }) => {}
            Err(error) => return Err(error).with_context(|| format!("stopping container {name}")),
        }
        let options = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
        match self.client.remove_container(name, Some(options)).await {
            Ok(()) => Ok(true),
            Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => Ok(false),
            // 409: a removal already in progress (another caller); it will be gone.
            Err(BollardError::DockerResponseServerError { status_code: 409, .. }) => Ok(true),
            Err(error) => Err(error).with_context(|| format!("removing container {name}")),
        }
    }

    /// Waits until the container's health check passes. Fails when it reports unhealthy, when the
    /// container stops, or after `limit`, with the container's last log lines.
    pub async fn wait_healthy(&self, name: &str, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            let inspect = self
                .client
                .inspect_container(name, None::<InspectContainerOptions>)
                .await
                .with_context(|| format!("inspecting container {name}"))?;
            let state = inspect.state.unwrap_or_default();
            let health = state.health.unwrap_or_default();
            match (state.status, health.status) {
                (Some(ContainerStateStatusEnum::RUNNING), Some(HealthStatusEnum::HEALTHY)) => return Ok(()),
                (Some(ContainerStateStatusEnum::RUNNING), Some(HealthStatusEnum::UNHEALTHY)) => {
                    let probe = health
                        .log
                        .unwrap_or_default()
                        .last()
                        .and_then(|result| result.output.clone())
                        .unwrap_or_default();
                    bail!("container {name} is unhealthy: {}{}", probe.trim(), self.log_excerpt(name).await);
                }
                (Some(ContainerStateStatusEnum::RUNNING), None | Some(HealthStatusEnum::NONE)) => {
                    bail!("container {name} has no health check; its image must declare a HEALTHCHECK")
                }
                (Some(ContainerStateStatusEnum::RUNNING), _) | (Some(ContainerStateStatusEnum::CREATED), _) => {}
                (status, _) => bail!(
                    "container {name} stopped ({}, exit code {}){}",
                    status.map(|status| status.to_string()).unwrap_or_else(|| "unknown state".into()),
                    state.exit_code.unwrap_or_default(),
                    self.log_excerpt(name).await
                ),
            }
            if Instant::now() >= deadline {
                bail!(
                    "container {name} did not become healthy within {}s{}",
                    limit.as_secs(),
                    self.log_excerpt(name).await
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The container's last `lines` lines of output (stdout and stderr).
    pub async fn logs(&self, name: &str, lines: usize) -> Result<String> {
        let options = LogsOptionsBuilder::default().stdout(true).stderr(true).tail(&lines.to_string()).build();
        let mut stream = self.client.logs(name, Some(options));
        let mut text = String::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.with_context(|| format!("reading the logs of container {name}"))?;
            text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
        Ok(text)
    }

    async fn log_excerpt(&self, name: &str) -> String {
        match self.logs(name, 10).await {
            Ok(text) if !text.trim().is_empty() => {
                let lines: String = text.lines().map(|line| format!("\n    {line}")).collect();
                format!("\n  its last log lines:{lines}")
            }
            _ => String::new(),
        }
    }
}

/// A tar archive of `files`, byte-for-byte the same for the same files (fixed owner and time), so
/// the engine's build cache recognises an unchanged context.
pub fn tar_context(files: &[ContextFile]) -> Result<Vec<u8>> {
    let mut archive = tar::Builder::new(Vec::new());
    for file in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(file.bytes.len() as u64);
        header.set_mode(file.mode);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        archive
            .append_data(&mut header, &file.path, file.bytes.as_slice())
            .with_context(|| format!("adding {} to the build context", file.path))?;
    }
    archive.into_inner().context("finishing the build context")
}

/// `sha256:0123456789ab...` -> `0123456789ab`.
pub fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

fn container_body(spec: &ContainerSpec) -> ContainerCreateBody {
    let mut host_config = HostConfig {
        restart_policy: Some(RestartPolicy { name: Some(RestartPolicyNameEnum::NO), maximum_retry_count: None }),
        ..Default::default()
    };
    let mut exposed_ports = None;
    if let Some((container_port, host_ip, host_port)) = &spec.publish {
        let key = format!("{container_port}/tcp");
        exposed_ports = Some(vec![key.clone()]);
        let binding = PortBinding { host_ip: Some(host_ip.clone()), host_port: Some(host_port.to_string()) };
        host_config.port_bindings = Some(HashMap::from([(key, Some(vec![binding]))]));
    }
    if spec.hardened {
        host_config.readonly_rootfs = Some(true);
        host_config.cap_drop = Some(vec!["ALL".into()]);
        host_config.security_opt = Some(vec!["no-new-privileges".into()]);
        host_config.memory = Some(256 * 1024 * 1024);
        host_config.pids_limit = Some(256);
    }
    let healthcheck = spec.health_interval.map(|interval| HealthConfig {
        // No test: the engine keeps the image's HEALTHCHECK command and overrides only the timing.
        test: None,
        interval: Some(interval.as_nanos() as i64),
        timeout: Some(Duration::from_secs(3).as_nanos() as i64),
        retries: Some(3),
        start_period: None,
        start_interval: None,
    });
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        env: Some(spec.env.clone()),
        labels: Some(spec.labels.clone().into_iter().collect()),
        exposed_ports,
        healthcheck,
        host_config: Some(host_config),
        ..Default::default()
    }
}

/// The most useful text of a bollard error: the daemon's message, else the transport's cause.
fn cause_text(error: &BollardError) -> String {
    match error {
        BollardError::DockerResponseServerError { status_code, message } => format!("HTTP {status_code}: {message}"),
        other => {
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(cause) = source {
                let cause_text = cause.to_string();
                if !text.contains(&cause_text) {
                    text.push_str(&format!(": {cause_text}"));
                }
                source = cause.source();
            }
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_the_endpoint_and_the_fix() {
        let default = Endpoint { host: DEFAULT_HOST.into(), from_env: false };
        let error = Unreachable { endpoint: default, cause: "connection refused".into() }.to_string();
        assert!(error.contains("unix:///var/run/docker.sock (DOCKER_HOST is unset)"), "{error}");
        assert!(error.contains("systemctl start docker") && error.contains("set DOCKER_HOST"), "{error}");
        let custom = Endpoint { host: "unix:///tmp/none.sock".into(), from_env: true };
        let error = Unreachable { endpoint: custom, cause: "gone".into() }.to_string();
        assert!(error.contains("DOCKER_HOST=unix:///tmp/none.sock") && error.contains("unset it"), "{error}");
    }

    #[test]
    fn tar_context_is_deterministic_and_complete() {
        let files = || {
            vec![
                ContextFile { path: "Dockerfile".into(), bytes: b"FROM scratch\n".to_vec(), mode: 0o644 },
                ContextFile { path: "app".into(), bytes: vec![0x7f, b'E', b'L', b'F'], mode: 0o755 },
            ]
        };
        let first = tar_context(&files()).unwrap();
        assert_eq!(first, tar_context(&files()).unwrap());
        let mut archive = tar::Archive::new(first.as_slice());
        let entries: Vec<(String, u32, u64)> = archive
            .entries()
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                let header = entry.header();
                (entry.path().unwrap().display().to_string(), header.mode().unwrap(), header.size().unwrap())
            })
            .collect();
        assert_eq!(entries, vec![("Dockerfile".into(), 0o644, 13), ("app".into(), 0o755, 4)]);
    }

    #[test]
    fn shortens_ids() {
        assert_eq!(short_id("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(short_id("abc"), "abc");
    }
}
