//! Uploads to the regional artifact buckets: content-addressed, encrypted with SSE-KMS under that
//! region's key (bucket keys on), with an S3 SHA-256 checksum that S3 verifies on arrival. An
//! object already under its key is not uploaded again: the key names the content, so equal keys
//! mean equal bytes, which the stored checksum confirms.

use anyhow::{Context, Result, anyhow, bail};
use aws_sdk_s3::Client;
use aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, ServerSideEncryption};
use base64::Engine;
use serde::Serialize;

use crate::aws::error_text;

/// Where an artifact is, and whether this call moved its bytes.
#[derive(Clone, Debug, Serialize)]
pub struct Uploaded {
    pub bucket: String,
    pub key: String,
    pub sha256: String,
    pub bytes: u64,
    /// False when the object was already there with the same checksum.
    pub uploaded: bool,
}

/// A PutObject of `body` at `bucket/key` as every upload to the artifact buckets must be (their
/// policy denies anything else): SSE-KMS under `kms_key_arn` with bucket keys, and a SHA-256
/// checksum that S3 verifies on arrival. The caller adds what is particular and sends it.
pub fn encrypted_put(s3: &Client, bucket: &str, key: &str, body: Vec<u8>, kms_key_arn: &str) -> PutObjectFluentBuilder {
    let digest = <sha2::Sha256 as sha2::Digest>::digest(&body);
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body))
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id(kms_key_arn)
        .bucket_key_enabled(true)
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .checksum_sha256(base64::engine::general_purpose::STANDARD.encode(digest))
}

/// Puts `body` at `bucket/key` under `kms_key_arn`, unless an object with the same SHA-256 is
/// there already. An object with a different checksum under a content-addressed key is an error:
/// something else wrote there.
pub async fn put_once(s3: &Client, bucket: &str, key: &str, body: Vec<u8>, kms_key_arn: &str) -> Result<Uploaded> {
    let sha256 = crate::archive::sha256_hex(&body);
    let checksum = base64::engine::general_purpose::STANDARD.encode(hex::decode(&sha256)?);
    let bytes = body.len() as u64;
    let existing = s3.head_object().bucket(bucket).key(key).checksum_mode(ChecksumMode::Enabled).send().await;
    match existing {
        Ok(head) => {
            if head.checksum_sha256().is_some_and(|stored| stored != checksum) {
                bail!(
                    "s3://{bucket}/{key} already holds other bytes (sha256 {:?}, expected {checksum}); delete it or find what wrote it",
                    head.checksum_sha256()
                );
            }
            return Ok(Uploaded { bucket: bucket.into(), key: key.into(), sha256, bytes, uploaded: false });
        }
        Err(error) if error.as_service_error().is_some_and(|service| service.is_not_found()) => {}
        Err(error) => {
            return Err(anyhow!(error_text(&error))).with_context(|| format!("looking for s3://{bucket}/{key}"));
        }
    }
    encrypted_put(s3, bucket, key, body, kms_key_arn)
        .send()
        .await
        .map_err(|error| anyhow!(error_text(&error)))
        .with_context(|| format!("uploading s3://{bucket}/{key} encrypted under {kms_key_arn}"))?;
    Ok(Uploaded { bucket: bucket.into(), key: key.into(), sha256, bytes, uploaded: true })
}
