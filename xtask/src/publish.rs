//! One image, every workload's registry: an authorization token per registry from ECR
//! (GetAuthorizationToken, decoded to user and password, never printed), the push through the
//! Docker engine (bollard), and the digest each registry reports afterwards, so that the caller can
//! check every region holds the same bytes.
//!
//! Locally the emulator serves the ECR API (the repository, the token, the image listing) but not
//! the registry protocol, so the bytes go to the region's `docker-registry` on 127.0.0.1
//! (`local/registry.rs`) and the manifest is then recorded in the emulator's ECR with PutImage,
//! which is what a push to ECR ends with. A layer the registry already has is not sent again: the
//! engine asks first.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use bollard::auth::DockerCredentials;
use serde::Serialize;

use crate::aws::{Aws, error_text};
use crate::config::{Config, Workload};
use crate::docker::Docker;
use crate::http;
use crate::local::registry;
use crate::output::Printer;

/// Where one workload's image goes.
#[derive(Clone)]
pub struct Destination {
    pub workload: String,
    pub account: String,
    pub region: String,
    /// `222222222222.dkr.ecr.ap-south-1.amazonaws.com`, or `127.0.0.1:<port>` locally.
    pub host: String,
    pub repository: String,
    local: bool,
    /// From the ECR token; deliberately not `Debug` or `Serialize`.
    username: String,
    password: String,
}

/// What a push did.
#[derive(Clone, Debug, Serialize)]
pub struct Pushed {
    pub workload: String,
    pub account: String,
    pub region: String,
    /// `<host>/<repository>@sha256:...`: what task definitions pin.
    pub image_uri: String,
    pub digest: String,
    /// Layers the registry did not have yet, and all layers.
    pub layers_pushed: usize,
    pub layers_total: usize,
    /// Bytes of the layers sent (as the engine reports them).
    pub bytes_pushed: u64,
}

/// The registry of `workload`, with credentials from ECR.
pub async fn destination(aws: &Aws, config: &Config, workload: &Workload, printer: &Printer) -> Result<Destination> {
    let ecr = aws.ecr(&workload.account, &workload.region).await?;
    let token = ecr
        .get_authorization_token()
        .send()
        .await
        .map_err(|error| anyhow!(error_text(&error)))
        .with_context(|| format!("getting an ECR token in {}/{}", workload.account, workload.region))?;
    let data = token.authorization_data().first().context("ECR returned no authorization data")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(data.authorization_token().unwrap_or_default())
        .context("the ECR token is not base64")?;
    let decoded = String::from_utf8(decoded).context("the ECR token is not text")?;
    let Some((username, password)) = decoded.split_once(':') else {
        bail!("the ECR token is not `user:password`");
    };
    let host = if aws.is_local() {
        registry::ensure(printer, &workload.region).await?.host()
    } else {
        let endpoint = data.proxy_endpoint().unwrap_or_default();
        endpoint.trim_start_matches("https://").trim_end_matches('/').to_string()
    };
    Ok(Destination {
        workload: workload.name.clone(),
        account: workload.account.clone(),
        region: workload.region.clone(),
        host,
        repository: config.app.clone(),
        local: aws.is_local(),
        username: username.to_string(),
        password: password.to_string(),
    })
}

/// Pushes the local image `source` (`<app>:<tag>`) as `<host>/<repository>:<tag>` and returns the
/// digest the registry holds.
pub async fn push(docker: &Docker, aws: &Aws, source: &str, tag: &str, destination: &Destination) -> Result<Pushed> {
    let target = format!("{}/{}", destination.host, destination.repository);
    let credentials = DockerCredentials {
        username: Some(destination.username.clone()),
        password: Some(destination.password.clone()),
        serveraddress: Some(destination.host.clone()),
        ..Default::default()
    };
    let report = docker.push(source, &target, tag, Some(credentials)).await?;
    let Some(digest) = report.digest else {
        bail!("pushing {target}:{tag}: the engine reported no digest");
    };
    let reported = registry_digest(aws, destination, tag).await?;
    if reported != digest {
        bail!("{target}:{tag} was pushed as {digest} but the registry reports {reported}");
    }
    Ok(Pushed {
        workload: destination.workload.clone(),
        account: destination.account.clone(),
        region: destination.region.clone(),
        image_uri: format!("{target}@{digest}"),
        digest,
        layers_pushed: report.layers_pushed,
        layers_total: report.layers_pushed + report.layers_existing,
        bytes_pushed: report.bytes_pushed,
    })
}

const MANIFEST_TYPES: &str =
    "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json";

/// The digest the registry itself reports for `tag`: from the registry protocol locally (and the
/// manifest recorded in the emulator's ECR), from ECR's DescribeImages on AWS.
pub async fn registry_digest(aws: &Aws, destination: &Destination, tag: &str) -> Result<String> {
    let ecr = aws.ecr(&destination.account, &destination.region).await?;
    if destination.local {
        let url = format!("http://{}/v2/{}/manifests/{tag}", destination.host, destination.repository);
        let fetch = url.clone();
        let answer = tokio::task::spawn_blocking(move || {
            http::request("GET", &fetch, &[("Accept", MANIFEST_TYPES)], &[], Duration::from_secs(10))
        })
        .await??;
        if answer.status != 200 {
            bail!("{url} answered HTTP {}", answer.status);
        }
        let digest =
            answer.header("docker-content-digest").context("the registry sent no Docker-Content-Digest")?.to_string();
        // Record the manifest in the emulator's ECR, as ECR does at the end of a push.
        let recorded = ecr
            .put_image()
            .repository_name(&destination.repository)
            .image_manifest(answer.text())
            .image_tag(tag)
            .send()
            .await;
        match recorded {
            Ok(_) => {}
            Err(error)
                if error.as_service_error().is_some_and(|service| service.is_image_already_exists_exception()) => {}
            Err(error) => {
                return Err(anyhow!(error_text(&error))).with_context(|| {
                    format!("recording {tag} in the emulator's ECR repository {}", destination.repository)
                });
            }
        }
        return Ok(digest);
    }
    let described = ecr
        .describe_images()
        .repository_name(&destination.repository)
        .image_ids(aws_sdk_ecr::types::ImageIdentifier::builder().image_tag(tag).build())
        .send()
        .await
        .map_err(|error| anyhow!(error_text(&error)))
        .with_context(|| {
            format!("describing {}:{tag} in {}/{}", destination.repository, destination.account, destination.region)
        })?;
    described
        .image_details()
        .first()
        .and_then(|image| image.image_digest())
        .map(str::to_string)
        .with_context(|| format!("ECR lists no {}:{tag}", destination.repository))
}

/// Checks that every push landed the same digest; the error lists them all.
pub fn same_digest(pushes: &[Pushed]) -> Result<String> {
    let Some(first) = pushes.first() else { bail!("nothing was pushed") };
    if pushes.iter().all(|push| push.digest == first.digest) {
        return Ok(first.digest.clone());
    }
    let listed: Vec<String> =
        pushes.iter().map(|push| format!("{} ({}): {}", push.workload, push.region, push.digest)).collect();
    bail!("the registries hold different digests for one image:\n  {}", listed.join("\n  "))
}
