//! The AWS calls the xtask really makes, recorded for the access proof: with `GBG_CALL_LOG` set
//! to a file, every request of every client built through [`Aws`](super::Aws) (and the pipeline
//! rehearsal's role sessions) appends one JSON line to it, just before it is sent: who asked
//! (the access key the request is signed with, and the identity the xtask meant to use), which
//! service, operation, account and region, and the request itself, enough to name the resource
//! (the S3 path, the JSON or query body). A child process inherits the variable, so the build the
//! rehearsal runs records into the same file.
//!
//! Bodies are kept only for the APIs whose body names the resource (JSON and query protocols,
//! small ones); object contents (S3) are never written, nor any header but the signing key's id
//! and the server-side-encryption headers.

use std::io::Write;
use std::path::{Path, PathBuf};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use serde::{Deserialize, Serialize};

/// The variable naming the file calls are appended to.
pub const CALL_LOG_VAR: &str = "GBG_CALL_LOG";

/// The largest request body kept.
const BODY_LIMIT: usize = 16 * 1024;

/// One recorded call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    /// Whom the xtask meant to act as: a role ARN, or `default-chain`/`profile:<name>`.
    pub principal: String,
    /// The access key id the request is signed with (an id, not a secret), which the rehearsal
    /// maps to the role session that owns it.
    pub access_key: String,
    pub account: String,
    pub region: String,
    /// The SDK's service name (`S3`, `ECR`, `ECS`, `CodeDeploy`, ...).
    pub service: String,
    pub operation: String,
    pub method: String,
    /// The request path and query (S3: `/<bucket>/<key>`).
    pub path: String,
    /// JSON (`application/x-amz-json`, REST-JSON) or query (`Action=...&...`) bodies, small ones.
    pub body: Option<String>,
    /// The server-side-encryption headers of an S3 write, which its bucket policy conditions on.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub headers: std::collections::BTreeMap<String, String>,
}

/// An interceptor that appends every request of one client to the call log.
#[derive(Clone, Debug)]
pub struct Recorder {
    file: PathBuf,
    principal: String,
    account: String,
    region: String,
}

impl Recorder {
    /// A recorder for a client acting as `principal` in `account`/`region`, when `GBG_CALL_LOG`
    /// names a file.
    pub fn from_env(principal: &str, account: &str, region: &str) -> Option<Recorder> {
        let file = std::env::var_os(CALL_LOG_VAR).filter(|value| !value.is_empty())?;
        Some(Recorder::new(Path::new(&file), principal, account, region))
    }

    /// A recorder into `file`.
    pub fn new(file: &Path, principal: &str, account: &str, region: &str) -> Recorder {
        Recorder {
            file: file.to_path_buf(),
            principal: principal.to_string(),
            account: account.to_string(),
            region: region.to_string(),
        }
    }

    fn append(&self, call: &Call) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(call).map_err(std::io::Error::other)?;
        line.push(b'\n');
        // One write of a whole line with O_APPEND: lines of several processes do not interleave.
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&self.file)?;
        file.write_all(&line)
    }
}

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "gbg-call-recorder"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = match cfg.load::<Metadata>() {
            Some(metadata) => (metadata.service().to_string(), metadata.name().to_string()),
            None => (String::new(), String::new()),
        };
        let request = context.request();
        let authorization = request.headers().get("authorization").unwrap_or_default();
        let content_type = request.headers().get("content-type").unwrap_or_default();
        // S3's bodies are objects: never recorded, whatever their type; its path names the object.
        let textual =
            service != "S3" && (content_type.contains("json") || content_type.contains("x-www-form-urlencoded"));
        let body = request
            .body()
            .bytes()
            .filter(|bytes| textual && !bytes.is_empty() && bytes.len() <= BODY_LIMIT)
            .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
            // Of a KMS request only the key it names: its other fields may be plaintext or data keys.
            .map(|body| match service.as_str() {
                "KMS" => serde_json::from_str::<serde_json::Value>(&body)
                    .map(|value| serde_json::json!({ "KeyId": value["KeyId"] }).to_string())
                    .unwrap_or_default(),
                _ => body,
            });
        let uri = request.uri();
        let path = match uri.find("://").and_then(|scheme| uri[scheme + 3..].find('/').map(|slash| scheme + 3 + slash))
        {
            Some(start) => uri[start..].to_string(),
            None => uri.to_string(),
        };
        let headers = request
            .headers()
            .iter()
            .filter(|(name, _)| name.to_ascii_lowercase().starts_with("x-amz-server-side-encryption"))
            .map(|(name, value)| (name.to_ascii_lowercase(), value.to_string()))
            .collect();
        let call = Call {
            principal: self.principal.clone(),
            access_key: signing_key(authorization).unwrap_or_default().to_string(),
            account: self.account.clone(),
            region: self.region.clone(),
            service,
            operation,
            method: request.method().to_string(),
            path,
            body,
            headers,
        };
        // The record is evidence, not part of the call: a log that cannot be written must not fail it.
        let _ = self.append(&call);
        Ok(())
    }
}

/// The access key id of a SigV4 `Authorization` header
/// (`AWS4-HMAC-SHA256 Credential=<key id>/<date>/<region>/<service>/aws4_request, ...`).
pub fn signing_key(authorization: &str) -> Option<&str> {
    let credential = authorization.split("Credential=").nth(1)?;
    credential.split('/').next().filter(|key| !key.is_empty())
}

/// Reads a call log; a missing file is no calls.
pub fn read(path: &Path) -> anyhow::Result<Vec<Call>> {
    use anyhow::Context;
    let Ok(text) = std::fs::read_to_string(path) else { return Ok(Vec::new()) };
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .enumerate()
        .map(|(number, line)| {
            serde_json::from_str(line)
                .with_context(|| format!("{}:{}: not a recorded call", path.display(), number + 1))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signing_key_is_read_from_a_sigv4_header() {
        let header = "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE123/20261203/ap-south-1/s3/aws4_request, SignedHeaders=host, Signature=abc";
        assert_eq!(signing_key(header), Some("ASIAEXAMPLE123"));
        assert_eq!(signing_key("Basic abc"), None);
    }
}
