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

use anyhow::{Context, Result, bail};
use base64::Engine;
use bollard::auth::DockerCredentials;
use serde::Serialize;

use crate::aws::{Aws, AwsResultExt};
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

/// The registry of `workload`, with credentials from ECR: the operator's token from the workload's
/// own account, or the build's from the tools account (`Aws::registry_access`).
pub async fn destination(aws: &Aws, config: &Config, workload: &Workload, printer: &Printer) -> Result<Destination> {
    let (client_account, registry_id) = aws.registry_access(&workload.account);
    let ecr = aws.ecr(client_account, &workload.region).await?;
    let token = ecr
        .get_authorization_token()
        .send()
        .await
        .aws(&ecr)
        .with_context(|| format!("getting an ECR token in {client_account}/{}", workload.region))?;
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
        // The token's endpoint names the caller's own registry; another account's registry has
        // the same host but for its account id.
        let endpoint = data.proxy_endpoint().unwrap_or_default();
        let own = endpoint.trim_start_matches("https://").trim_end_matches('/');
        match registry_id {
            Some(registry) => registry_host(own, client_account, registry)?,
            None => own.to_string(),
        }
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

/// `<registry>.dkr.ecr.<region>.<suffix>` from the caller's own registry host `<own>.dkr.ecr...`.
fn registry_host(own_host: &str, own_account: &str, registry: &str) -> Result<String> {
    match own_host.strip_prefix(own_account) {
        Some(rest) if rest.starts_with(".dkr.ecr.") => Ok(format!("{registry}{rest}")),
        _ => bail!("ECR's proxy endpoint `{own_host}` is not the registry of account {own_account}"),
    }
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
    match find_digest(aws, destination, tag).await? {
        Some(digest) => Ok(digest),
        None => {
            bail!("{}/{}:{tag} was pushed, but the registry does not list it", destination.host, destination.repository)
        }
    }
}

/// The digest `destination` holds under `tag`, or `None` when it has no such tag. Locally the
/// manifest is also recorded in the emulator's ECR, as ECR does at the end of a push, where the
/// principal may: the emulator keeps each account's ECR apart and ignores `registryId`, so the
/// build's cross-account record cannot be made there (the registry protocol still proves the push).
pub async fn find_digest(aws: &Aws, destination: &Destination, tag: &str) -> Result<Option<String>> {
    let (client_account, registry_id) = aws.registry_access(&destination.account);
    let ecr = aws.ecr(client_account, &destination.region).await?;
    if destination.local {
        let url = format!("http://{}/v2/{}/manifests/{tag}", destination.host, destination.repository);
        let fetch = url.clone();
        let answer = tokio::task::spawn_blocking(move || {
            http::request("GET", &fetch, &[("Accept", MANIFEST_TYPES)], &[], Duration::from_secs(10))
        })
        .await??;
        if answer.status == 404 {
            return Ok(None);
        }
        if answer.status != 200 {
            bail!("{url} answered HTTP {}", answer.status);
        }
        let digest =
            answer.header("docker-content-digest").context("the registry sent no Docker-Content-Digest")?.to_string();
        if registry_id.is_some() {
            return Ok(Some(digest));
        }
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
                return Err(error).aws(&ecr).with_context(|| {
                    format!("recording {tag} in the emulator's ECR repository {}", destination.repository)
                });
            }
        }
        return Ok(Some(digest));
    }
    let described = ecr
        .describe_images()
        .set_registry_id(registry_id.map(str::to_string))
        .repository_name(&destination.repository)
        .image_ids(aws_sdk_ecr::types::ImageIdentifier::builder().image_tag(tag).build())
        .send()
        .await;
    let described = match described {
        Ok(described) => described,
        Err(error) if error.as_service_error().is_some_and(|service| service.is_image_not_found_exception()) => {
            return Ok(None);
        }
        Err(error) => {
            return Err(error).aws(&ecr).with_context(|| {
                format!("describing {}:{tag} in {}/{}", destination.repository, destination.account, destination.region)
            });
        }
    };
    Ok(described.image_details().first().and_then(|image| image.image_digest()).map(str::to_string))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_accounts_registry_has_the_same_host_but_for_the_account() {
        let check = |own: &str, expect: &str| {
            assert_eq!(
                registry_host(own, "111111111111", "222222222222").map_err(|error| error.to_string()),
                expect.strip_prefix("error: ").map_or_else(|| Ok(expect.to_string()), |error| Err(error.to_string()))
            )
        };
        check("111111111111.dkr.ecr.eu-west-1.amazonaws.com", "222222222222.dkr.ecr.eu-west-1.amazonaws.com");
        check("111111111111.dkr.ecr.cn-north-1.amazonaws.com.cn", "222222222222.dkr.ecr.cn-north-1.amazonaws.com.cn");
        check(
            "333333333333.dkr.ecr.eu-west-1.amazonaws.com",
            "error: ECR's proxy endpoint `333333333333.dkr.ecr.eu-west-1.amazonaws.com` is not the registry of account 111111111111",
        );
    }
}
