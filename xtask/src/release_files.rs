//! Release artifacts: what `package`, `verify-release`, `release`, `rollback`, `ci` and
//! `bench publish` share, so those subcommands never import one another.
//!
//! For each workload, [`package`] renders `taskdef.json`, `appspec.yaml` and `imageDetail.json`
//! from the project's templates (`render.rs`), zips them deterministically (`archive.rs`), and
//! uploads the zip to that workload region's artifact bucket, SSE-KMS under that region's key,
//! under a content-addressed key (`artifacts.rs`: what is there already is not uploaded again).
//! It then writes the release manifest (`manifest.rs`) to every regional bucket and records the
//! release in each workload's history, and writes the folder the pipeline's build action exports:
//! `<workload>/taskdef.json`, `<workload>/appspec.yaml`, `<workload>/imageDetail.json` and
//! `release-manifest.json`. [`verify`] downloads every artifact of a manifest and checks it.
//!
//! The key in each region is the multi-Region key's replica: it keeps the primary's id, so its ARN
//! is derived from the key stack's `KeyId` (`config::key_arn`), as the plan derives it. What the
//! emulator cannot prove: its CloudFormation makes the key single-Region and skips the replicas,
//! and its S3 neither checks that an SSE-KMS key exists nor applies the bucket policy that refuses
//! uploads under another key; there an object is "under the region's key" in that S3 records the
//! derived ARN. The tests prove the multi-Region id handling through the KMS API instead.

pub mod manifest;
pub mod render;
pub mod targets;
pub mod taskdef;

use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use aws_sdk_s3::types::ChecksumMode;
use base64::Engine;
use futures_util::future::try_join_all;
use serde::Serialize;

use crate::Ctx;
use crate::archive::{self, Entry};
use crate::artifacts;
use crate::aws::error::one_line;
use crate::aws::{Aws, AwsError};
use crate::config::{Config, Workload};
use crate::output::Printer;
use crate::publish::{self, Pushed};
use crate::site_image::{self, BuiltImage};
use manifest::{Artifact, History, Manifest};
use render::{Rendered, ServiceFacts, Vars};
pub use targets::Targets;

/// The image a release deploys: one build, pushed to every workload's registry under one digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImageSet {
    /// The image's tag: the commit, plus a content hash for a dirty tree.
    pub version: String,
    /// `sha256:<64 hex digits>`.
    pub digest: String,
    /// Per workload name: `<registry>/<repository>@<digest>`.
    pub references: BTreeMap<String, String>,
}

impl ImageSet {
    /// The image `digest` in every workload's ECR repository (`<account>.dkr.ecr.<region>.amazonaws.com/<app>`,
    /// the URI the ecr stack outputs), for an image already pushed there.
    pub fn in_ecr(config: &Config, version: &str, digest: &str) -> Result<ImageSet> {
        check_digest(digest)?;
        let references = config
            .workloads
            .iter()
            .map(|workload| {
                let registry = format!("{}.dkr.ecr.{}.amazonaws.com", workload.account, workload.region);
                (workload.name.clone(), format!("{registry}/{}@{digest}", config.app))
            })
            .collect();
        Ok(ImageSet { version: version.to_string(), digest: digest.to_string(), references })
    }

    /// Every workload of `config` has a reference, pinned by this set's digest.
    pub fn check(&self, config: &Config) -> Result<()> {
        check_digest(&self.digest)?;
        for workload in &config.workloads {
            let Some(reference) = self.references.get(&workload.name) else {
                bail!("no image reference for workload {}: push the image to every workload first", workload.name);
            };
            if !taskdef::is_pinned_by_digest(reference) || !reference.ends_with(&format!("@{}", self.digest)) {
                bail!(
                    "the image for workload {} is `{reference}`, not pinned by digest {}",
                    workload.name,
                    self.digest
                );
            }
        }
        Ok(())
    }
}

/// The site's image, built once from this checkout and pushed to every workload's registry.
#[derive(Clone, Debug, Serialize)]
pub struct Published {
    pub built: BuiltImage,
    pub pushes: Vec<Pushed>,
    pub images: ImageSet,
}

/// Builds the site's image (`site_image.rs`), pushes it to every workload's registry in parallel
/// (`publish.rs`: ECR on AWS, the region's local registry with `--local`), checks that every
/// registry reports one digest, and returns the references pinned to it.
pub async fn publish_image(ctx: &Ctx, aws: &Aws, config: &Config) -> Result<Published> {
    let options = site_image::Options { config: config.path.clone(), dockerfile: None };
    let built = site_image::build(ctx, &options).await?;
    let docker = crate::docker::Docker::connect().await?;
    let pushes = push_everywhere(ctx, aws, config, &docker, &built).await?;
    let digest = publish::same_digest(&pushes)?;
    let references = pushes.iter().map(|push| (push.workload.clone(), push.image_uri.clone())).collect();
    let images = ImageSet { version: built.tag.clone(), digest, references };
    ctx.printer.status("Pushed", format!("{} to {} registries as {}", built.reference, pushes.len(), images.digest));
    Ok(Published { built, pushes, images })
}

/// This checkout's image in every workload's registry: the one already there under the checkout's
/// tag, or else built and pushed now. The tag names the commit (and a dirty tree's content), and
/// the registries' tags are immutable, so an image found under it everywhere, with one digest, is
/// this checkout's build: a second pipeline run on one commit builds and pushes nothing. A tag
/// found in some registries only is an earlier run cut short; a new build would not reproduce its
/// bytes, so that is an error with the fix.
pub async fn checkout_image(ctx: &Ctx, aws: &Aws, config: &Config) -> Result<ImageSet> {
    let tag = crate::project::revision(&ctx.root)?.tag();
    let found = try_join_all(config.workloads.iter().map(|workload| {
        let tag = &tag;
        async move {
            let destination = publish::destination(aws, config, workload, &ctx.printer).await?;
            let digest = publish::find_digest(aws, &destination, tag).await?;
            let reference = format!("{}/{}", destination.host, destination.repository);
            Ok::<_, anyhow::Error>((workload, reference, digest))
        }
    }))
    .await?;
    if found.iter().all(|(_, _, digest)| digest.is_none()) {
        return Ok(publish_image(ctx, aws, config).await?.images);
    }
    let missing: Vec<&str> =
        found.iter().filter(|(_, _, digest)| digest.is_none()).map(|(workload, _, _)| workload.name.as_str()).collect();
    if !missing.is_empty() {
        let holders: Vec<String> = found
            .iter()
            .filter(|(_, _, digest)| digest.is_some())
            .map(|(workload, _, _)| {
                format!(
                    "aws ecr batch-delete-image --registry-id {} --region {} --repository-name {} --image-ids imageTag={tag}",
                    workload.account, workload.region, config.app
                )
            })
            .collect();
        bail!(
            "image tag {tag} is in some registries but not in those of {}: an earlier push was cut short, and a new \
             build cannot reproduce its bytes under the immutable tag. Delete the tag where it is, then run again:\n  {}",
            missing.join(", "),
            holders.join("\n  ")
        );
    }
    let pushes: Vec<Pushed> = found
        .iter()
        .map(|(workload, reference, digest)| {
            let digest = digest.clone().unwrap_or_default();
            Pushed {
                workload: workload.name.clone(),
                account: workload.account.clone(),
                region: workload.region.clone(),
                image_uri: format!("{reference}@{digest}"),
                digest,
                layers_pushed: 0,
                layers_total: 0,
                bytes_pushed: 0,
            }
        })
        .collect();
    let digest = publish::same_digest(&pushes)?;
    let references = pushes.iter().map(|push| (push.workload.clone(), push.image_uri.clone())).collect();
    ctx.printer.status(
        "Found",
        format!("{}:{tag} in all {} registries as {digest}: nothing to build or push", config.app, pushes.len()),
    );
    Ok(ImageSet { version: tag, digest, references })
}

/// Pushes `built` to every workload's registry at once.
pub async fn push_everywhere(
    ctx: &Ctx,
    aws: &Aws,
    config: &Config,
    docker: &crate::docker::Docker,
    built: &BuiltImage,
) -> Result<Vec<Pushed>> {
    try_join_all(config.workloads.iter().map(|workload| async move {
        let progress = ctx.printer.progress(
            "Pushing",
            format!("{} to {} ({}/{})", built.reference, workload.name, workload.account, workload.region),
        );
        let destination = publish::destination(aws, config, workload, &ctx.printer).await?;
        let pushed = publish::push(docker, aws, &built.reference, &built.tag, &destination).await?;
        progress.finish(
            "Pushed",
            format!(
                "{} ({} of {} layers sent, {} bytes)",
                pushed.image_uri, pushed.layers_pushed, pushed.layers_total, pushed.bytes_pushed
            ),
        );
        Ok::<_, anyhow::Error>(pushed)
    }))
    .await
}

/// `sha256:` and 64 lowercase hex digits.
pub fn check_digest(digest: &str) -> Result<()> {
    if let Err(problem) = digest.parse::<crate::cli::Digest>() {
        bail!("`{digest}` is not an image digest: {problem}");
    }
    Ok(())
}

/// One workload's documents and their zip.
#[derive(Clone, Debug)]
pub struct Bundle {
    pub workload: String,
    pub files: Rendered,
    pub zip: Vec<u8>,
    pub sha256: String,
}

/// The names inside an artifact zip.
pub const TASKDEF_FILE: &str = "taskdef.json";
pub const APPSPEC_FILE: &str = "appspec.yaml";
pub const IMAGE_DETAIL_FILE: &str = "imageDetail.json";
/// The manifest's name in the output folder.
pub const MANIFEST_FILE: &str = "release-manifest.json";

/// The project's two templates, read once.
#[derive(Clone, Debug)]
pub struct Templates {
    pub taskdef: String,
    pub appspec: String,
}

impl Templates {
    pub fn load(root: &Path) -> Result<Templates> {
        let read = |name: &str| {
            std::fs::read_to_string(root.join(name))
                .with_context(|| format!("reading the template {name} at the project root"))
        };
        Ok(Templates { taskdef: read(render::TASKDEF_TEMPLATE)?, appspec: read(render::APPSPEC_TEMPLATE)? })
    }
}

/// Renders and zips one workload's artifact. Pure: the same inputs give the same bytes.
pub fn bundle(
    templates: &Templates,
    config: &Config,
    workload: &Workload,
    service: &ServiceFacts,
    image: &str,
) -> Result<Bundle> {
    let vars = Vars::new(config, workload, service, image);
    let files = render::render(&templates.taskdef, &templates.appspec, &vars)
        .with_context(|| format!("rendering the artifact of workload {}", workload.name))?;
    let zip = archive::zip(&[
        Entry::file(TASKDEF_FILE, files.taskdef.as_bytes()),
        Entry::file(APPSPEC_FILE, files.appspec.as_bytes()),
        Entry::file(IMAGE_DETAIL_FILE, files.image_detail.as_bytes()),
    ])?;
    let sha256 = archive::sha256_hex(&zip);
    Ok(Bundle { workload: workload.name.clone(), files, zip, sha256 })
}

/// The files of an artifact zip, by name.
pub fn unzip(bytes: &[u8]) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).context("the artifact is not a zip archive")?;
    let mut files = BTreeMap::new();
    for index in 0..archive.len() {
        let mut file = archive.by_index(index).context("reading the artifact zip")?;
        let mut content = Vec::new();
        file.read_to_end(&mut content).context("reading the artifact zip")?;
        let name = file.name().context("reading an entry name of the artifact zip")?.to_string();
        files.insert(name, content);
    }
    Ok(files)
}

/// How to package.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Where to write the pipeline's folder (`<workload>/...` and the manifest); `None`: nowhere.
    pub out_dir: Option<PathBuf>,
    /// Render, zip and compare with the buckets, but upload and record nothing.
    pub dry_run: bool,
}

/// One object `package` wrote, found already there, or would write.
#[derive(Clone, Debug, Serialize)]
pub struct ObjectRow {
    /// `artifact`, `manifest` or `history`.
    pub kind: &'static str,
    pub region: String,
    pub bucket: String,
    pub key: String,
    pub bytes: u64,
    /// `uploaded`, `unchanged`, `would upload`.
    pub action: &'static str,
}

/// The outcome of [`package`].
#[derive(Clone, Debug, Serialize)]
pub struct Packaged {
    pub manifest: Manifest,
    pub objects: Vec<ObjectRow>,
    /// Bytes sent to S3 by this run (0 when everything was there).
    pub bytes_uploaded: u64,
    pub out_dir: Option<PathBuf>,
    pub dry_run: bool,
}

/// Packages `images` for every workload of `config`: see the module docs.
pub async fn package(
    root: &Path,
    aws: &Aws,
    config: &Config,
    images: &ImageSet,
    options: &Options,
    printer: &Printer,
) -> Result<Packaged> {
    images.check(config)?;
    let templates = Templates::load(root)?;
    let targets = targets::read(aws, config).await?;
    let mut bundles = Vec::new();
    let mut entries = Vec::new();
    for workload in &config.workloads {
        let service = &targets.services[&workload.name];
        let bundle = bundle(&templates, config, workload, service, &images.references[&workload.name])?;
        entries.push(Artifact {
            workload: workload.name.clone(),
            account: workload.account.clone(),
            region: workload.region.clone(),
            bucket: config.bucket_name(&workload.region),
            key: manifest::artifact_key(&workload.name, &bundle.sha256),
            sha256: bundle.sha256.clone(),
            bytes: bundle.zip.len() as u64,
            kms_key_id: targets.key_id.clone(),
            kms_key_arn: targets.key_arn(config, &workload.region),
            image: images.references[&workload.name].clone(),
            image_digest: images.digest.clone(),
        });
        bundles.push(bundle);
    }
    let manifest = Manifest::new(&config.app, &images.version, &images.digest, entries);
    if let Some(dir) = &options.out_dir {
        write_out_dir(dir, &bundles, &manifest)?;
    }
    let manifest_bytes = manifest.to_bytes();
    let manifest_key = manifest::manifest_key(&manifest.id);

    // Each region on its own, all in parallel, with one client each: its artifacts (and, meanwhile,
    // its workloads' histories), then its copy of the manifest, then the histories, which name
    // the manifest only once it is there.
    let regions = config.regions();
    let per_region = regions.iter().map(|region| {
        let (manifest, bundles, manifest_bytes, manifest_key, targets) =
            (&manifest, &bundles, &manifest_bytes, &manifest_key, &targets);
        async move {
            let s3 = aws.s3(&config.tools.account, region).await?;
            let bucket = config.bucket_name(region);
            let key_arn = targets.key_arn(config, region);
            let here: Vec<(&Artifact, &Bundle)> =
                manifest.artifacts.iter().zip(bundles).filter(|(artifact, _)| artifact.region == *region).collect();
            let uploads = try_join_all(
                here.iter().map(|(artifact, bundle)| upload_artifact(&s3, artifact, bundle, options.dry_run)),
            );
            let histories =
                try_join_all(here.iter().map(|(artifact, _)| manifest::load_history(&s3, &bucket, &artifact.workload)));
            let (mut rows, histories) = futures_util::future::try_join(uploads, histories).await?;
            let any_new = rows.iter().any(|row| row.action == "uploaded");
            let action =
                copy_manifest(&s3, &bucket, manifest_key, manifest_bytes, &key_arn, any_new, options.dry_run).await?;
            rows.push(ObjectRow {
                kind: "manifest",
                region: region.clone(),
                bucket: bucket.clone(),
                key: manifest_key.clone(),
                bytes: manifest_bytes.len() as u64,
                action,
            });
            for ((artifact, _), mut history) in here.iter().zip(histories) {
                let changed = history.record(&manifest.id, &manifest.version);
                let bytes = history.to_bytes();
                let key = manifest::history_key(&artifact.workload);
                let action = match (changed, options.dry_run) {
                    (false, _) => "unchanged",
                    (true, true) => "would upload",
                    (true, false) => {
                        manifest::put_object(&s3, &bucket, &key, bytes.clone(), &key_arn).await?;
                        "uploaded"
                    }
                };
                rows.push(ObjectRow {
                    kind: "history",
                    region: region.clone(),
                    bucket: bucket.clone(),
                    key,
                    bytes: bytes.len() as u64,
                    action,
                });
            }
            Ok::<_, anyhow::Error>(rows)
        }
    });
    let mut objects: Vec<ObjectRow> = try_join_all(per_region).await?.into_iter().flatten().collect();
    let kind_order = |kind: &str| ["artifact", "manifest", "history"].iter().position(|known| *known == kind);
    objects.sort_by_key(|object| kind_order(object.kind));

    for object in &objects {
        let verb = match object.action {
            "uploaded" => "Uploaded",
            "would upload" => "Would upload",
            _ => "Unchanged",
        };
        printer.detail(verb, format!("s3://{}/{} ({} bytes)", object.bucket, object.key, object.bytes));
    }
    let bytes_uploaded = objects.iter().filter(|object| object.action == "uploaded").map(|object| object.bytes).sum();
    let count = |action: &str| objects.iter().filter(|object| object.action == action).count();
    let summary = format!(
        "release {} ({}, {}): {} artifacts in {} regions; {} objects uploaded ({bytes_uploaded} bytes), {} already there{}",
        manifest.id,
        manifest.version,
        manifest.image_digest,
        manifest.artifacts.len(),
        config.regions().len(),
        count("uploaded"),
        count("unchanged"),
        if options.dry_run {
            format!(", {} would be uploaded (dry run: nothing was)", count("would upload"))
        } else {
            String::new()
        }
    );
    printer.status(if options.dry_run { "Planned" } else { "Packaged" }, summary);
    Ok(Packaged { manifest, objects, bytes_uploaded, out_dir: options.out_dir.clone(), dry_run: options.dry_run })
}

/// Whether a real run would leave the object at `bucket/key` alone: the decision `put_once`
/// makes (same SHA-256 checksum, SSE-KMS under the same key), so a dry run does not call
/// "unchanged" what the real run uploads again.
async fn unchanged(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: &[u8], kms_key_arn: &str) -> Result<bool> {
    Ok(matches!(artifacts::existing(s3, bucket, key, body, kms_key_arn).await?, Some(artifacts::Verdict::Same)))
}

/// Uploads one artifact unless it is there (or, in a dry run, says whether it would).
async fn upload_artifact(
    s3: &aws_sdk_s3::Client,
    artifact: &Artifact,
    bundle: &Bundle,
    dry_run: bool,
) -> Result<ObjectRow> {
    let row = |action| ObjectRow {
        kind: "artifact",
        region: artifact.region.clone(),
        bucket: artifact.bucket.clone(),
        key: artifact.key.clone(),
        bytes: artifact.bytes,
        action,
    };
    if dry_run {
        let there = unchanged(s3, &artifact.bucket, &artifact.key, &bundle.zip, &artifact.kms_key_arn).await?;
        return Ok(row(if there { "unchanged" } else { "would upload" }));
    }
    let put = artifacts::put_once(s3, &artifact.bucket, &artifact.key, bundle.zip.clone(), &artifact.kms_key_arn)
        .await
        .with_context(|| format!("uploading the artifact of workload {}", artifact.workload))?;
    Ok(row(if put.uploaded { "uploaded" } else { "unchanged" }))
}

/// Puts the manifest in one bucket once. When this run uploaded an artifact of the region, the
/// manifest (whose id covers that artifact) cannot be there yet: it is written with a
/// create-only condition instead of being looked for first, which saves a request per region.
async fn copy_manifest(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    bytes: &[u8],
    kms_key_arn: &str,
    region_has_new_artifacts: bool,
    dry_run: bool,
) -> Result<&'static str> {
    if dry_run {
        return Ok(if unchanged(s3, bucket, key, bytes, kms_key_arn).await? { "unchanged" } else { "would upload" });
    }
    if region_has_new_artifacts {
        let created = manifest::put_new(s3, bucket, key, bytes.to_vec(), kms_key_arn).await?;
        return Ok(if created { "uploaded" } else { "unchanged" });
    }
    let put = artifacts::put_once(s3, bucket, key, bytes.to_vec(), kms_key_arn).await?;
    Ok(if put.uploaded { "uploaded" } else { "unchanged" })
}

/// Writes the folder the pipeline's build action exports. A folder that is not one of ours (no
/// manifest in it) and not empty is left alone: the caller chose a wrong path.
fn write_out_dir(dir: &Path, bundles: &[Bundle], manifest: &Manifest) -> Result<()> {
    if dir.exists() {
        let ours = dir.join(MANIFEST_FILE).is_file();
        let empty = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?.next().is_none();
        if !ours && !empty {
            bail!(
                "{} is not empty and holds no {MANIFEST_FILE}: not a release folder; choose another --out",
                dir.display()
            );
        }
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("clearing the previous release folder {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for bundle in bundles {
        let folder = dir.join(&bundle.workload);
        std::fs::create_dir_all(&folder).with_context(|| format!("creating {}", folder.display()))?;
        for (name, text) in [
            (TASKDEF_FILE, &bundle.files.taskdef),
            (APPSPEC_FILE, &bundle.files.appspec),
            (IMAGE_DETAIL_FILE, &bundle.files.image_detail),
        ] {
            std::fs::write(folder.join(name), text)
                .with_context(|| format!("writing {}", folder.join(name).display()))?;
        }
    }
    let path = dir.join(MANIFEST_FILE);
    std::fs::write(&path, manifest.to_bytes()).with_context(|| format!("writing {}", path.display()))
}

/// Reads a manifest from a file.
pub fn read_manifest_file(path: &Path) -> Result<Manifest> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("reading the release manifest {}; `cargo xtask package` writes it", path.display()))?;
    Manifest::parse(&bytes, &path.display().to_string())
}

/// Where `package` writes the pipeline's folder unless told otherwise.
pub fn default_out_dir() -> PathBuf {
    crate::project::target_dir().join("release").join("artifact")
}

/// One artifact checked against its manifest.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub workload: String,
    pub region: String,
    pub bucket: String,
    pub key: String,
    pub expected_sha256: String,
    /// Of the downloaded bytes; `None` when the object could not be read.
    pub actual_sha256: Option<String>,
    /// `aws:kms` when encrypted with KMS.
    pub encryption: Option<String>,
    /// The KMS key S3 reports the object encrypted under.
    pub kms_key: Option<String>,
    /// Empty when everything matches.
    pub problems: Vec<String>,
}

impl Check {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Downloads every artifact of `manifest` and checks its bytes, S3's stored checksum, its
/// encryption (SSE-KMS under the key the manifest names), and that its documents deploy the
/// manifest's image. A workload of `config` without an artifact is a problem too.
pub async fn verify(aws: &Aws, config: &Config, manifest: &Manifest) -> Result<Vec<Check>> {
    let tools = &config.tools.account;
    let checks = manifest.artifacts.iter().map(|artifact| async move {
        let s3 = aws.s3(tools, &artifact.region).await?;
        Ok::<_, anyhow::Error>(check_artifact(&s3, artifact).await)
    });
    let mut checks = try_join_all(checks).await?;
    for workload in &config.workloads {
        if manifest.artifact(&workload.name).is_none() {
            checks.push(Check {
                workload: workload.name.clone(),
                region: workload.region.clone(),
                bucket: config.bucket_name(&workload.region),
                key: "-".into(),
                expected_sha256: "-".into(),
                actual_sha256: None,
                encryption: None,
                kms_key: None,
                problems: vec![format!("release {} has no artifact for this workload of the config", manifest.id)],
            });
        }
    }
    Ok(checks)
}

async fn check_artifact(s3: &aws_sdk_s3::Client, artifact: &Artifact) -> Check {
    let mut check = Check {
        workload: artifact.workload.clone(),
        region: artifact.region.clone(),
        bucket: artifact.bucket.clone(),
        key: artifact.key.clone(),
        expected_sha256: artifact.sha256.clone(),
        actual_sha256: None,
        encryption: None,
        kms_key: None,
        problems: Vec::new(),
    };
    let head =
        s3.head_object().bucket(&artifact.bucket).key(&artifact.key).checksum_mode(ChecksumMode::Enabled).send().await;
    let head = match head {
        Ok(head) => head,
        Err(error) => {
            check.problems.push(format!(
                "cannot read s3://{}/{}: {}",
                artifact.bucket,
                artifact.key,
                AwsError::from_call(error, &s3)
            ));
            return check;
        }
    };
    check.encryption = head.server_side_encryption().map(|sse| sse.as_str().to_string());
    check.kms_key = head.ssekms_key_id().map(str::to_string);
    if check.encryption.as_deref() != Some("aws:kms") {
        check
            .problems
            .push(format!("encrypted with {:?}, not SSE-KMS", check.encryption.as_deref().unwrap_or("nothing")));
    }
    // S3 reports the key as an ARN; a bare id names the same key.
    let key_matches =
        check.kms_key.as_deref().is_some_and(|key| key == artifact.kms_key_arn || key == artifact.kms_key_id);
    if !key_matches {
        check.problems.push(format!(
            "encrypted under {}, not the manifest's {}",
            check.kms_key.as_deref().unwrap_or("no KMS key"),
            artifact.kms_key_arn
        ));
    }
    if let Some(stored) = head.checksum_sha256() {
        let expected = hex::decode(&artifact.sha256).map(|raw| base64::engine::general_purpose::STANDARD.encode(raw));
        if expected.ok().as_deref() != Some(stored) {
            check.problems.push(format!("S3's stored SHA-256 checksum {stored} differs from the manifest's"));
        }
    }
    let bytes = match manifest::get_object(s3, &artifact.bucket, &artifact.key).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => {
            check.problems.push("the object vanished while being checked".into());
            return check;
        }
        Err(error) => {
            check.problems.push(one_line(&error));
            return check;
        }
    };
    let actual = archive::sha256_hex(&bytes);
    if actual != artifact.sha256 {
        check.problems.push(format!("its SHA-256 is {actual}, the manifest says {}", artifact.sha256));
    }
    if bytes.len() as u64 != artifact.bytes {
        check.problems.push(format!("it has {} bytes, the manifest says {}", bytes.len(), artifact.bytes));
    }
    check.actual_sha256 = Some(actual);
    if let Err(error) = check_documents(&bytes, artifact) {
        check.problems.push(one_line(&error));
    }
    check
}

/// The artifact's documents deploy the manifest's image and keep the AppSpec placeholder.
/// An artifact's documents, checked against its manifest entry.
#[derive(Debug)]
pub struct Documents {
    pub task_definition: taskdef::TaskDefinition,
    /// `appspec.yaml`, with the `<TASK_DEFINITION>` placeholder.
    pub appspec: String,
}

/// Unzips an artifact and checks its documents against `artifact`: the taskdef deploys the
/// manifest's image, imageDetail.json names it, the appspec keeps the placeholder.
fn check_documents(bytes: &[u8], artifact: &Artifact) -> Result<Documents> {
    let files = unzip(bytes)?;
    let file = |name: &str| {
        files
            .get(name)
            .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
            .with_context(|| format!("the zip has no {name}"))
    };
    let definition = taskdef::TaskDefinition::parse(&file(TASKDEF_FILE)?, TASKDEF_FILE)?;
    if definition.images() != [artifact.image.as_str()] {
        bail!("its taskdef deploys {:?}, the manifest says {}", definition.images(), artifact.image);
    }
    let detail: serde_json::Value =
        serde_json::from_str(&file(IMAGE_DETAIL_FILE)?).context("reading imageDetail.json")?;
    if detail["ImageURI"] != artifact.image.as_str() {
        bail!("its imageDetail.json names {}, the manifest says {}", detail["ImageURI"], artifact.image);
    }
    let appspec = file(APPSPEC_FILE)?;
    let spec = render::parse_appspec(&appspec).context("reading appspec.yaml")?;
    if spec.task_definition != render::TASK_DEFINITION_PLACEHOLDER {
        bail!("its appspec.yaml names task definition {} instead of the placeholder", spec.task_definition);
    }
    Ok(Documents { task_definition: definition, appspec })
}

/// The S3 client and bucket of `workload`'s region, in the tools account.
pub async fn regional_bucket(aws: &Aws, config: &Config, workload: &Workload) -> Result<(aws_sdk_s3::Client, String)> {
    Ok((aws.s3(&config.tools.account, &workload.region).await?, config.bucket_name(&workload.region)))
}

/// The workload's history and its current and previous releases' manifests.
pub async fn releases_of(
    aws: &Aws,
    config: &Config,
    workload: &Workload,
) -> Result<(History, Option<Manifest>, Option<Manifest>)> {
    let (s3, bucket) = regional_bucket(aws, config, workload).await?;
    let history = manifest::load_history(&s3, &bucket, &workload.name).await?;
    let current = match history.current() {
        Some(entry) => Some(manifest::load_manifest(&s3, &bucket, &entry.id).await?),
        None => None,
    };
    let previous = match history.previous() {
        Some(entry) => Some(manifest::load_manifest(&s3, &bucket, &entry.id).await?),
        None => None,
    };
    Ok((history, current, previous))
}

/// Downloads an artifact, checks it against the manifest (SHA-256, then its documents) and returns
/// its documents.
pub async fn fetch_artifact(aws: &Aws, config: &Config, artifact: &Artifact) -> Result<Documents> {
    let s3 = aws.s3(&config.tools.account, &artifact.region).await?;
    let Some(bytes) = manifest::get_object(&s3, &artifact.bucket, &artifact.key).await? else {
        bail!(
            "the artifact of workload {} is missing at s3://{}/{}; run `cargo xtask package` again",
            artifact.workload,
            artifact.bucket,
            artifact.key
        );
    };
    let actual = archive::sha256_hex(&bytes);
    if actual != artifact.sha256 {
        bail!(
            "s3://{}/{} has SHA-256 {actual}, but the manifest says {}: refusing to deploy it; run `cargo xtask verify-release`",
            artifact.bucket,
            artifact.key,
            artifact.sha256
        );
    }
    check_documents(&bytes, artifact).with_context(|| format!("the artifact of workload {}", artifact.workload))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn config() -> Config {
        Config::load(&project::root().join("deploy.toml")).unwrap()
    }

    fn service() -> ServiceFacts {
        ServiceFacts {
            execution_role_arn: "arn:aws:iam::222222222222:role/exec".into(),
            task_role_arn: "arn:aws:iam::222222222222:role/task".into(),
            log_group: "/ecs/web".into(),
        }
    }

    #[test]
    fn images_in_ecr_are_pinned_per_workload() {
        let config = config();
        let images = ImageSet::in_ecr(&config, "abc", DIGEST).unwrap();
        assert_eq!(
            images.references["europe"],
            format!("333333333333.dkr.ecr.eu-central-1.amazonaws.com/web@{DIGEST}")
        );
        images.check(&config).unwrap();
        for bad in ["sha256:abc", "md5:00", &DIGEST.to_uppercase(), ""] {
            assert!(ImageSet::in_ecr(&config, "abc", bad).is_err(), "{bad}");
        }
        let mut missing = images.clone();
        missing.references.remove("us");
        assert!(missing.check(&config).unwrap_err().to_string().contains("workload us"));
    }

    #[test]
    fn identical_inputs_give_identical_zips() {
        let (config, templates) = (config(), Templates::load(&project::root()).unwrap());
        let image = format!("r/web@{DIGEST}");
        let first = bundle(&templates, &config, &config.workloads[0], &service(), &image).unwrap();
        let second = bundle(&templates, &config, &config.workloads[0], &service(), &image).unwrap();
        assert_eq!(first.zip, second.zip);
        assert_eq!(first.sha256, archive::sha256_hex(&second.zip));
        let other = bundle(&templates, &config, &config.workloads[1], &service(), &image).unwrap();
        assert_ne!(first.sha256, other.sha256, "another region is another taskdef");
        let files = unzip(&first.zip).unwrap();
        assert_eq!(files.keys().collect::<Vec<_>>(), [APPSPEC_FILE, IMAGE_DETAIL_FILE, TASKDEF_FILE]);
        assert_eq!(files[TASKDEF_FILE], first.files.taskdef.as_bytes());
    }

    #[test]
    fn documents_are_checked_against_the_manifest() {
        let (config, templates) = (config(), Templates::load(&project::root()).unwrap());
        let image = format!("r/web@{DIGEST}");
        let bundle = bundle(&templates, &config, &config.workloads[0], &service(), &image).unwrap();
        let artifact = Artifact {
            workload: "india".into(),
            account: "222222222222".into(),
            region: "ap-south-1".into(),
            bucket: "b".into(),
            key: "k".into(),
            sha256: bundle.sha256.clone(),
            bytes: bundle.zip.len() as u64,
            kms_key_id: "mrk-1".into(),
            kms_key_arn: "arn".into(),
            image: image.clone(),
            image_digest: DIGEST.into(),
        };
        check_documents(&bundle.zip, &artifact).unwrap();
        let other = Artifact { image: format!("r/other@{DIGEST}"), ..artifact };
        assert!(check_documents(&bundle.zip, &other).unwrap_err().to_string().contains("deploys"));
    }

    #[test]
    fn the_out_dir_refuses_a_foreign_folder() {
        let dir = std::env::temp_dir().join(format!("gbg-out-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("precious.txt"), b"x").unwrap();
        let manifest = Manifest::new("web", "v", DIGEST, vec![]);
        let error = write_out_dir(&dir, &[], &manifest).unwrap_err();
        assert!(error.to_string().contains("not a release folder"), "{error}");
        assert!(dir.join("precious.txt").exists());
        std::fs::remove_dir_all(&dir).unwrap();
        write_out_dir(&dir, &[], &manifest).unwrap();
        write_out_dir(&dir, &[], &manifest).unwrap();
        assert!(dir.join(MANIFEST_FILE).is_file());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
