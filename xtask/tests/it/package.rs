//! `cargo xtask package` and `verify-release` through the real binary against a real
//! `moto_server` of the test's own, after `cargo xtask deploy --local` built the topology there
//! (tools 111111111111 in ap-south-1; workloads in ap-south-1, eu-central-1 and us-east-1), and
//! the multi-Region key handling through the emulator's KMS API.
//!
//! What the emulator cannot prove, and so these tests do not claim: its CloudFormation makes the
//! stacks' key single-Region and creates no replica, so the key "the stacks created for" a
//! non-tools region is the ARN derived from the primary's id (what AWS gives a replica); its S3
//! does not check that an SSE-KMS key exists, so "encrypted under" means S3 recorded that ARN for
//! the object; it applies no bucket policy (the one refusing uploads under another key); and it
//! cannot decrypt anything encrypted under a multi-Region key. The KMS test shows, through
//! CreateKey and ReplicateKey, that a replica keeps the primary's `mrk-` id and that the ARNs we
//! derive are the replicas' own.

use std::collections::BTreeMap;
use std::path::PathBuf;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumMode, ServerSideEncryption};
use xtask::aws::{Aws, Endpoint};
use xtask::config::{Config, key_arn};
use xtask::release_files::render::{self, TASK_DEFINITION_PLACEHOLDER};
use xtask::release_files::taskdef::TaskDefinition;

use crate::support::{Moto, Run, Scratch, run_xtask};

/// The image the stacks are first deployed with (no push needed for stacks on the emulator).
pub const IMAGE: &str = "222222222222.dkr.ecr.ap-south-1.amazonaws.com/web@sha256:1111111111111111111111111111111111111111111111111111111111111111";

/// A digest made of one repeated hex digit.
pub fn digest(digit: char) -> String {
    format!("sha256:{}", digit.to_string().repeat(64))
}

/// The repo's topology deployed on an emulator of the test's own.
pub struct Topology {
    pub moto: Moto,
    pub scratch: Scratch,
    pub config: PathBuf,
}

impl Topology {
    /// Starts an emulator and deploys the repo's deploy.toml there with a given first image (no
    /// build, no push), with `app` as the app name when given (its buckets, containers and images
    /// are then the test's own).
    pub fn deploy(name: &str, app: Option<&str>) -> Topology {
        let topology = Topology::new(name, app, "");
        let deployed = topology.xtask(&["deploy", "--image", IMAGE]);
        assert_eq!(deployed.code, Some(0), "deploy --local failed:\n{}", deployed.stderr);
        topology
    }

    /// An emulator and the config, nothing deployed; `local` is appended to the `[local]` table.
    pub fn new(name: &str, app: Option<&str>, local: &str) -> Topology {
        let moto = Moto::start();
        let scratch = Scratch::new(name);
        let mut text =
            std::fs::read_to_string(xtask::project::root().join("deploy.toml")).expect("the repo's deploy.toml");
        if let Some(app) = app {
            text = text.replacen("app = \"web\"", &format!("app = \"{app}\""), 1);
        }
        text.push_str(&format!("\n[local]\nemulator_port = {}\n{local}\n", moto.port));
        let config = scratch.path.join("deploy.toml");
        std::fs::write(&config, text).expect("writing the test config");
        Topology { moto, scratch, config }
    }

    /// Runs `xtask <args> --config <config> --local` with the local state in the scratch folder.
    pub fn xtask(&self, args: &[&str]) -> Run {
        let config = self.config.to_str().unwrap();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--config", config, "--local"]);
        let state = self.scratch.path.join("local");
        run_xtask(&all, &[("GBG_LOCAL_DIR", state.to_str().unwrap()), ("NO_COLOR", "1")])
    }

    /// Like [`Topology::xtask`], expecting success and JSON on stdout.
    pub fn xtask_json(&self, args: &[&str]) -> serde_json::Value {
        let run = self.xtask(args);
        assert_eq!(run.code, Some(0), "xtask {args:?} failed:\n{}", run.stderr);
        serde_json::from_str(&run.stdout)
            .unwrap_or_else(|error| panic!("no JSON from {args:?} ({error}):\n{}", run.stderr))
    }

    pub async fn aws(&self) -> (Config, Aws) {
        let config = Config::load(&self.config).expect("the test config loads");
        let aws = Aws::new(&config, Endpoint::Local(self.moto.url.clone())).await;
        (config, aws)
    }

    pub fn out(&self, name: &str) -> PathBuf {
        self.scratch.path.join(name)
    }
}

/// Stops the local registries the runs started in the test's own local state, also when the test
/// fails. (Not `local down`: that also removes every site container of the config's app, and the
/// tests that use the repo's app name `web` must not touch a developer's `web` site.)
impl Drop for Topology {
    fn drop(&mut self) {
        let Ok(entries) = std::fs::read_dir(self.scratch.path.join("local")) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("registry-") && name.ends_with(".pid") {
                let _ = xtask::local::daemon::stop(&entry.path());
            }
        }
    }
}

/// The key stack's `KeyId`, read independently of the code under test.
async fn key_id(aws: &Aws, config: &Config) -> String {
    let client = aws.cloudformation(&config.tools.account, &config.tools.region).await.unwrap();
    let reply = client.describe_stacks().stack_name(config.stack_name("key")).send().await.unwrap();
    let outputs = reply.stacks()[0].outputs();
    outputs.iter().find(|output| output.output_key() == Some("KeyId")).unwrap().output_value().unwrap().to_string()
}

/// Every artifact lands in its own region's bucket under that region's key with the manifest's
/// SHA-256; a second package uploads nothing; a dry run uploads nothing; verify-release passes,
/// then fails on a tampered object and names it.
#[tokio::test(flavor = "multi_thread")]
async fn package_encrypts_each_region_under_its_key_once_and_verify_catches_tampering() {
    let topology = Topology::deploy("package", None);
    let (config, aws) = topology.aws().await;
    let out = topology.out("out");
    let out_arg = out.to_str().unwrap();
    let first = topology.xtask_json(&["package", "--image-digest", &digest('a'), "--out", out_arg, "--json"]);
    let manifest = &first["manifest"];
    let artifacts = manifest["artifacts"].as_array().unwrap();
    assert_eq!(artifacts.len(), 3);
    assert!(first["bytes_uploaded"].as_u64().unwrap() > 0);
    // Three artifacts, a manifest copy per region, a history per workload: all new.
    let objects = first["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 9, "{objects:?}");
    assert!(objects.iter().all(|object| object["action"] == "uploaded"), "{objects:?}");

    let key_id = key_id(&aws, &config).await;
    let mut regions = Vec::new();
    for (artifact, workload) in artifacts.iter().zip(&config.workloads) {
        let region = workload.region.as_str();
        regions.push(region.to_string());
        assert_eq!(artifact["workload"], workload.name.as_str());
        assert_eq!(artifact["bucket"], config.bucket_name(region));
        let expected_key = key_arn(&config.tools.account, region, &key_id);
        assert_eq!(artifact["kms_key_arn"], expected_key.as_str());
        let s3 = aws.s3(&config.tools.account, region).await.unwrap();
        let (bucket, key) = (artifact["bucket"].as_str().unwrap(), artifact["key"].as_str().unwrap());
        let head = s3.head_object().bucket(bucket).key(key).checksum_mode(ChecksumMode::Enabled).send().await.unwrap();
        assert_eq!(head.server_side_encryption(), Some(&ServerSideEncryption::AwsKms), "{region}");
        assert_eq!(head.ssekms_key_id(), Some(expected_key.as_str()), "{region}");
        let body =
            s3.get_object().bucket(bucket).key(key).send().await.unwrap().body.collect().await.unwrap().into_bytes();
        let sha = xtask::archive::sha256_hex(&body);
        assert_eq!(artifact["sha256"], sha.as_str(), "{region}");
        assert_eq!(key, format!("releases/{}/{sha}.zip", workload.name), "content-addressed");
        // The zip holds exactly the folder the pipeline reads, byte for byte.
        let files = xtask::release_files::unzip(&body).unwrap();
        for name in ["taskdef.json", "appspec.yaml", "imageDetail.json"] {
            let written = std::fs::read(out.join(&workload.name).join(name)).unwrap();
            assert_eq!(files[name], written, "{}/{name}", workload.name);
        }
        let manifest_copy = s3
            .get_object()
            .bucket(bucket)
            .key(format!("releases/manifests/{}.json", manifest["id"].as_str().unwrap()))
            .send()
            .await;
        assert!(manifest_copy.is_ok(), "the manifest sits beside the artifacts in {region}");
    }
    assert_eq!(regions, ["ap-south-1", "eu-central-1", "us-east-1"]);

    // The same inputs again: the same release, and not one byte moves.
    let second = topology.xtask_json(&["package", "--image-digest", &digest('a'), "--out", out_arg, "--json"]);
    assert_eq!(second["manifest"], first["manifest"], "identical inputs give identical zips and manifest");
    assert_eq!(second["bytes_uploaded"], 0);
    assert!(second["objects"].as_array().unwrap().iter().all(|object| object["action"] == "unchanged"), "{second}");

    // A dry run of a new image says what it would upload and uploads none of it.
    let planned = topology.xtask_json(&[
        "package",
        "--image-digest",
        &digest('b'),
        "--out",
        topology.out("dry").to_str().unwrap(),
        "--dry-run",
        "--json",
    ]);
    let would: Vec<&serde_json::Value> =
        planned["objects"].as_array().unwrap().iter().filter(|object| object["action"] == "would upload").collect();
    assert_eq!(would.len(), 9, "{planned}");
    for object in would {
        let s3 = aws.s3(&config.tools.account, object["region"].as_str().unwrap()).await.unwrap();
        let key = object["key"].as_str().unwrap();
        if object["kind"] == "history" {
            continue; // the history exists; the dry run only would have changed it
        }
        let found = s3.head_object().bucket(object["bucket"].as_str().unwrap()).key(key).send().await;
        assert!(found.is_err(), "a dry run uploaded {key}");
    }
    assert!(!topology.out("dry").exists(), "a dry run wrote the artifact folder");
    // A dry run needs the image (it pushes nothing), and a version alone names no image.
    let unpushed = topology.xtask(&["package", "--dry-run"]);
    assert_eq!(unpushed.code, Some(2), "{}", unpushed.stderr);
    assert!(unpushed.stderr.contains("pass --image-digest"), "{}", unpushed.stderr);
    let version_only = topology.xtask(&["package", "--image-version", "v1"]);
    assert_eq!(version_only.code, Some(2), "{}", version_only.stderr);
    assert!(version_only.stderr.contains("--image-digest"), "{}", version_only.stderr);

    // verify-release agrees, then catches an object replaced behind its back.
    let manifest_path = out.join("release-manifest.json");
    let verified = topology.xtask(&["verify-release", "--manifest", manifest_path.to_str().unwrap()]);
    assert_eq!(verified.code, Some(0), "{}", verified.stderr);
    assert!(verified.stderr.contains("3 artifacts match"), "{}", verified.stderr);
    let by_id = topology.xtask(&["verify-release", "--release", manifest["id"].as_str().unwrap()]);
    assert_eq!(by_id.code, Some(0), "{}", by_id.stderr);
    let europe = &artifacts[1];
    let s3 = aws.s3(&config.tools.account, "eu-central-1").await.unwrap();
    s3.put_object()
        .bucket(europe["bucket"].as_str().unwrap())
        .key(europe["key"].as_str().unwrap())
        .body(ByteStream::from_static(b"not the artifact"))
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id(europe["kms_key_arn"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let tampered = topology.xtask(&["verify-release", "--manifest", manifest_path.to_str().unwrap(), "--json"]);
    assert_eq!(tampered.code, Some(1), "{}", tampered.stderr);
    assert!(
        tampered.stderr.contains("europe (eu-central-1)") && tampered.stderr.contains("SHA-256"),
        "{}",
        tampered.stderr
    );
    let checks: serde_json::Value = serde_json::from_str(&tampered.stdout).unwrap();
    let failed: Vec<&str> = checks["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|check| !check["problems"].as_array().unwrap().is_empty())
        .map(|check| check["workload"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["europe"]);

    // `ci build` (what CodeBuild runs, here without the lint and test steps) writes the folder the
    // pipeline's deploy actions read: <workload>/taskdef.json and <workload>/appspec.yaml.
    // It runs as the build role, with the credentials CodeBuild would hand it (assumed here).
    let ci_out = topology.out("ci");
    let sts = aws.sts(&config.tools.account, &config.tools.region).await.unwrap();
    let build_role = config.tools_role_arn(&config.build_role_name());
    let assumed = sts.assume_role().role_arn(&build_role).role_session_name("ci-build").send().await.unwrap();
    let credentials = assumed.credentials().unwrap();
    let state = topology.scratch.path.join("local");
    let ci = run_xtask(
        &[
            "ci",
            "build",
            "--skip-check",
            "--image-digest",
            &digest('d'),
            "--out",
            ci_out.to_str().unwrap(),
            "--config",
            topology.config.to_str().unwrap(),
            "--local",
        ],
        &[
            ("GBG_LOCAL_DIR", state.to_str().unwrap()),
            ("NO_COLOR", "1"),
            ("AWS_ACCESS_KEY_ID", credentials.access_key_id()),
            ("AWS_SECRET_ACCESS_KEY", credentials.secret_access_key()),
            ("AWS_SESSION_TOKEN", credentials.session_token()),
        ],
    );
    assert_eq!(ci.code, Some(0), "{}", ci.stderr);
    assert!(
        ci.stderr.contains(&format!("assumed-role/{}/", config.build_role_name())),
        "ci build runs as the build role: {}",
        ci.stderr
    );
    for workload in &config.workloads {
        for name in ["taskdef.json", "appspec.yaml", "imageDetail.json"] {
            assert!(ci_out.join(&workload.name).join(name).is_file(), "{}/{name}", workload.name);
        }
    }
    assert!(ci.stderr.contains("3 artifacts match"), "ci build verifies what it packaged:\n{}", ci.stderr);
}

/// The rendered taskdef is a task definition the emulator's ECS registers as written, and the
/// rendered appspec is a CodeDeploy ECS AppSpec whose only placeholder is `<TASK_DEFINITION>`.
#[tokio::test(flavor = "multi_thread")]
async fn rendered_documents_register_with_ecs_and_parse_as_an_appspec() {
    let topology = Topology::deploy("render", None);
    let (config, aws) = topology.aws().await;
    let out = topology.out("out");
    topology.xtask_json(&["package", "--image-digest", &digest('c'), "--out", out.to_str().unwrap(), "--json"]);
    for workload in &config.workloads {
        let folder = out.join(&workload.name);
        let taskdef = std::fs::read_to_string(folder.join("taskdef.json")).unwrap();
        let appspec = std::fs::read_to_string(folder.join("appspec.yaml")).unwrap();
        for text in [&taskdef, &appspec] {
            assert!(!text.contains("${"), "an unfilled placeholder in {}:\n{text}", workload.name);
        }
        let placeholders: Vec<&str> = appspec
            .match_indices('<')
            .map(|(at, _)| &appspec[at..appspec[at..].find('>').map(|end| at + end + 1).unwrap_or(at + 1)])
            .collect();
        assert_eq!(placeholders, [TASK_DEFINITION_PLACEHOLDER], "{appspec}");
        let spec = render::parse_appspec(&appspec).unwrap();
        assert_eq!((spec.container_name.as_str(), spec.container_port), ("web", 8080));

        let definition = TaskDefinition::parse(&taskdef, "taskdef.json").unwrap();
        let ecs = aws.ecs(&workload.account, &workload.region).await.unwrap();
        let registered = definition.to_request(ecs.register_task_definition()).unwrap().send().await.unwrap();
        let arn = registered.task_definition().unwrap().task_definition_arn().unwrap().to_string();
        assert!(
            arn.starts_with(&format!("arn:aws:ecs:{}:{}:task-definition/web:", workload.region, workload.account)),
            "{arn}"
        );
        let described = ecs.describe_task_definition().task_definition(&arn).send().await.unwrap();
        let described = described.task_definition().unwrap();
        let container = &described.container_definitions()[0];
        let expected_image =
            format!("{}.dkr.ecr.{}.amazonaws.com/web@{}", workload.account, workload.region, digest('c'));
        assert_eq!(container.image(), Some(expected_image.as_str()));
        assert_eq!(container.port_mappings()[0].container_port(), Some(8080));
        assert_eq!(container.user(), Some("65532:65532"));
        assert_eq!(container.readonly_root_filesystem(), Some(true));
        let logs: BTreeMap<String, String> =
            container.log_configuration().unwrap().options().unwrap().clone().into_iter().collect();
        assert_eq!(logs["awslogs-region"], workload.region);
        assert_eq!(logs["awslogs-group"], "/ecs/web");
        let service = aws.cloudformation(&workload.account, &workload.region).await.unwrap();
        let stack = service.describe_stacks().stack_name("web-service").send().await.unwrap();
        let execution_role = stack.stacks()[0]
            .outputs()
            .iter()
            .find(|output| output.output_key() == Some("ExecutionRoleArn"))
            .unwrap()
            .output_value()
            .unwrap()
            .to_string();
        assert_eq!(
            described.execution_role_arn(),
            Some(execution_role.as_str()),
            "the role comes from the service stack"
        );
    }
}

/// A multi-Region key replicated through the KMS API keeps its `mrk-` id in every region, and the
/// ARN we derive for a region (`config::key_arn`, what the plan and `package` use) is the
/// replica's own ARN there. The emulator cannot decrypt under such a key (see the module docs),
/// so this proves the naming, not encryption.
#[tokio::test(flavor = "multi_thread")]
async fn a_replicated_key_keeps_its_id_and_our_derived_arns_are_the_replicas() {
    let moto = Moto::start();
    let config = Config::load(&xtask::project::root().join("deploy.toml")).unwrap();
    let aws = Aws::new(&config, Endpoint::Local(moto.url.clone())).await;
    let (account, primary_region) = (&config.tools.account, &config.tools.region);
    let kms = aws.kms(account, primary_region).await.unwrap();
    let created = kms.create_key().multi_region(true).description("gbg test key").send().await.unwrap();
    let primary = created.key_metadata().unwrap();
    let key_id = primary.key_id().to_string();
    assert!(key_id.starts_with("mrk-"), "{key_id}");
    assert_eq!(primary.arn(), Some(key_arn(account, primary_region, &key_id).as_str()));
    for region in config.regions().iter().filter(|region| *region != primary_region) {
        let replica = kms.replicate_key().key_id(&key_id).replica_region(region).send().await.unwrap();
        let metadata = replica.replica_key_metadata().unwrap();
        assert_eq!(metadata.key_id(), key_id, "a replica keeps the primary's id in {region}");
        let derived = key_arn(account, region, &key_id);
        assert_eq!(metadata.arn(), Some(derived.as_str()));
        // Found in its own region by the derived ARN, as the plan's replica check looks for it.
        let regional = aws.kms(account, region).await.unwrap();
        let described = regional.describe_key().key_id(&derived).send().await.unwrap();
        assert_eq!(described.key_metadata().unwrap().arn(), Some(derived.as_str()));
        assert_eq!(described.key_metadata().unwrap().multi_region(), Some(true));
    }
}
