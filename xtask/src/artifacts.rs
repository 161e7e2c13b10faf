//! Uploads to the regional artifact buckets: content-addressed, encrypted with SSE-KMS under that
//! region's key (bucket keys on), with an S3 SHA-256 checksum that S3 verifies on arrival. An
//! object already under its key is not uploaded again only when HeadObject proves it is what this
//! upload would make: the same SHA-256 checksum and SSE-KMS under the expected key. Anything less
//! (no checksum, another key, no SSE-KMS) is uploaded again, and the result says why.

use anyhow::{Context, Result, bail};
use aws_sdk_s3::Client;
use aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, ServerSideEncryption};
use base64::Engine;
use serde::Serialize;

use crate::aws::AwsResultExt;

/// Where an artifact is, and whether this call moved its bytes.
#[derive(Clone, Debug, Serialize)]
pub struct Uploaded {
    pub bucket: String,
    pub key: String,
    pub sha256: String,
    pub bytes: u64,
    /// False when the object was already there with the same checksum and key.
    pub uploaded: bool,
    /// Why an object already under the key was uploaded again (`None` when there was none).
    pub replaced: Option<Replaced>,
}

/// Why an object already under its key did not prove to be the one this upload would make.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Replaced {
    /// HeadObject showed no SHA-256 checksum (written without one, or by another algorithm).
    NoChecksum,
    /// Not encrypted with SSE-KMS (`encryption` is what HeadObject showed, if anything).
    NotKms { encryption: Option<String> },
    /// Encrypted under another KMS key.
    OtherKey { stored: Option<String>, expected: String },
}

impl std::fmt::Display for Replaced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Replaced::NoChecksum => f.write_str("the object there had no SHA-256 checksum to compare"),
            Replaced::NotKms { encryption } => {
                write!(
                    f,
                    "the object there was encrypted with {} instead of aws:kms",
                    encryption.as_deref().unwrap_or("nothing")
                )
            }
            Replaced::OtherKey { stored, expected } => write!(
                f,
                "the object there was encrypted under {} instead of {expected}",
                stored.as_deref().unwrap_or("an unnamed key")
            ),
        }
    }
}

/// What HeadObject (with `ChecksumMode::Enabled`) shows of an object already under the key.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stored<'a> {
    pub checksum_sha256: Option<&'a str>,
    pub encryption: Option<&'a ServerSideEncryption>,
    pub kms_key_id: Option<&'a str>,
}

/// What to do about an object already under the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It is the object this upload would make.
    Same,
    /// Upload again, for this reason.
    Replace(Replaced),
    /// It holds other bytes (this SHA-256, base64) under a content-addressed key.
    OtherBytes(String),
}

/// Decides whether `stored` is what a PutObject of bytes with `checksum` (base64 SHA-256) under
/// `kms_key_arn` would make. S3 returns the checksum on HeadObject only with
/// `x-amz-checksum-mode: ENABLED` and only when the object was uploaded with one
/// (https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html), and names the key of an
/// SSE-KMS object in `x-amz-server-side-encryption-aws-kms-key-id`.
pub fn judge(stored: Stored<'_>, checksum: &str, kms_key_arn: &str) -> Verdict {
    match stored.checksum_sha256 {
        None => return Verdict::Replace(Replaced::NoChecksum),
        Some(other) if other != checksum => return Verdict::OtherBytes(other.to_string()),
        Some(_) => {}
    }
    if stored.encryption != Some(&ServerSideEncryption::AwsKms) {
        let encryption = stored.encryption.map(|encryption| encryption.as_str().to_string());
        return Verdict::Replace(Replaced::NotKms { encryption });
    }
    if !stored.kms_key_id.is_some_and(|stored| same_key(stored, kms_key_arn)) {
        let stored = stored.kms_key_id.map(str::to_string);
        return Verdict::Replace(Replaced::OtherKey { stored, expected: kms_key_arn.to_string() });
    }
    Verdict::Same
}

/// Two names of a KMS key are the same key: equal ARNs, or equal key ids when one of them is only
/// an id (`arn:aws:kms:<region>:<account>:key/<id>`). Aliases are not resolved: the plan always
/// passes a key ARN.
fn same_key(stored: &str, expected: &str) -> bool {
    let key_id = |name: &str| name.rsplit_once(":key/").map_or(name.to_string(), |(_, id)| id.to_string());
    if stored.starts_with("arn:") && expected.starts_with("arn:") {
        return stored == expected;
    }
    key_id(stored) == key_id(expected)
}

/// A PutObject of `body` at `bucket/key` as every upload to the artifact buckets must be (their
/// policy denies anything else): SSE-KMS under `kms_key_arn` with bucket keys, and a SHA-256
/// checksum that S3 verifies on arrival. The caller adds what is particular and sends it.
pub fn encrypted_put(s3: &Client, bucket: &str, key: &str, body: Vec<u8>, kms_key_arn: &str) -> PutObjectFluentBuilder {
    let checksum = base64_sha256(&body);
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body))
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id(kms_key_arn)
        .bucket_key_enabled(true)
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .checksum_sha256(checksum)
}

/// Puts `body` at `bucket/key` under `kms_key_arn`, unless HeadObject proves the object there is
/// the same (see [`judge`]). An object with a different checksum under a content-addressed key is
/// an error: something else wrote there.
pub async fn put_once(s3: &Client, bucket: &str, key: &str, body: Vec<u8>, kms_key_arn: &str) -> Result<Uploaded> {
    let sha256 = crate::archive::sha256_hex(&body);
    let bytes = body.len() as u64;
    let replaced = match existing(s3, bucket, key, &body, kms_key_arn).await? {
        None => None,
        Some(Verdict::Same) => {
            return Ok(Uploaded {
                bucket: bucket.into(),
                key: key.into(),
                sha256,
                bytes,
                uploaded: false,
                replaced: None,
            });
        }
        Some(Verdict::Replace(why)) => Some(why),
        Some(Verdict::OtherBytes(stored)) => {
            let checksum = base64_sha256(&body);
            bail!(
                "s3://{bucket}/{key} already holds other bytes (sha256 {stored}, expected {checksum}); delete it or find what wrote it"
            );
        }
    };
    encrypted_put(s3, bucket, key, body, kms_key_arn)
        .send()
        .await
        .aws(s3)
        .with_context(|| format!("uploading s3://{bucket}/{key} encrypted under {kms_key_arn}"))?;
    Ok(Uploaded { bucket: bucket.into(), key: key.into(), sha256, bytes, uploaded: true, replaced })
}

/// What to do about the object at `bucket/key` before putting `body` there under `kms_key_arn`:
/// `None` when there is none. A dry run asks this too, so it says what the real run will do.
///
/// moto_server 5.2 (the local emulator) returns the checksum, the encryption and the key ARN on
/// HeadObject, so locally an unchanged object is skipped as on AWS.
pub async fn existing(s3: &Client, bucket: &str, key: &str, body: &[u8], kms_key_arn: &str) -> Result<Option<Verdict>> {
    let head = s3.head_object().bucket(bucket).key(key).checksum_mode(ChecksumMode::Enabled).send().await;
    match head {
        Ok(head) => {
            let stored = Stored {
                checksum_sha256: head.checksum_sha256(),
                encryption: head.server_side_encryption(),
                kms_key_id: head.ssekms_key_id(),
            };
            Ok(Some(judge(stored, &base64_sha256(body), kms_key_arn)))
        }
        Err(error) if error.as_service_error().is_some_and(|service| service.is_not_found()) => Ok(None),
        Err(error) => Err(error).aws(s3).with_context(|| format!("looking for s3://{bucket}/{key}")),
    }
}

/// The SHA-256 of `body` as S3 shows checksums: base64.
fn base64_sha256(body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(<sha2::Sha256 as sha2::Digest>::digest(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:kms:eu-central-1:111111111111:key/mrk-0123456789abcdef0123456789abcdef";
    const ID: &str = "mrk-0123456789abcdef0123456789abcdef";
    const OTHER_ARN: &str = "arn:aws:kms:eu-central-1:111111111111:key/mrk-ffffffffffffffffffffffffffffffff";
    const SUM: &str = "WJG1tSLV3whtD/CxEPvZ0hu0/HFjrzTQgoai6Eb2vgM=";

    fn check(checksum: Option<&str>, encryption: Option<ServerSideEncryption>, key: Option<&str>, expect: Verdict) {
        let stored = Stored { checksum_sha256: checksum, encryption: encryption.as_ref(), kms_key_id: key };
        assert_eq!(judge(stored, SUM, ARN), expect, "{checksum:?} {encryption:?} {key:?}");
    }

    #[test]
    fn skips_only_an_object_proven_the_same() {
        let kms = Some(ServerSideEncryption::AwsKms);
        // Same checksum, same key (as its ARN or as its id): nothing to do.
        check(Some(SUM), kms.clone(), Some(ARN), Verdict::Same);
        check(Some(SUM), kms.clone(), Some(ID), Verdict::Same);
        // No checksum: the bytes are not proven.
        check(None, kms.clone(), Some(ARN), Verdict::Replace(Replaced::NoChecksum));
        // Another key, or none named.
        let other = |stored: Option<&str>| {
            Verdict::Replace(Replaced::OtherKey { stored: stored.map(str::to_string), expected: ARN.into() })
        };
        check(Some(SUM), kms.clone(), Some(OTHER_ARN), other(Some(OTHER_ARN)));
        check(
            Some(SUM),
            kms.clone(),
            Some("mrk-ffffffffffffffffffffffffffffffff"),
            other(Some("mrk-ffffffffffffffffffffffffffffffff")),
        );
        check(Some(SUM), kms, None, other(None));
        // The same id in another region's ARN is another key (a multi-Region replica).
        let replica = "arn:aws:kms:us-east-1:111111111111:key/mrk-0123456789abcdef0123456789abcdef";
        check(Some(SUM), Some(ServerSideEncryption::AwsKms), Some(replica), other(Some(replica)));
        // Not SSE-KMS.
        check(Some(SUM), None, None, Verdict::Replace(Replaced::NotKms { encryption: None }));
        check(
            Some(SUM),
            Some(ServerSideEncryption::Aes256),
            None,
            Verdict::Replace(Replaced::NotKms { encryption: Some("AES256".into()) }),
        );
        // Other bytes under a content-addressed key: an error for the caller.
        check(Some("AAAA"), Some(ServerSideEncryption::AwsKms), Some(ARN), Verdict::OtherBytes("AAAA".into()));
    }

    #[test]
    fn base64_sha256_is_what_s3_shows() {
        // `aws s3api head-object --checksum-mode ENABLED` of an object holding "hello\n".
        assert_eq!(base64_sha256(b"hello\n"), SUM);
    }
}
