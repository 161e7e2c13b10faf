//! The access map: every call each actor of the running system makes, with the role it runs as,
//! the resource (ARN, account, region) and the request context AWS sets. Two kinds of entries:
//! - [`Origin::Code`]: calls our own code makes (the xtask in CodeBuild, the pipeline's deploy
//!   actions driven by our artifacts); every call the pipeline rehearsal records must match one
//!   of them, or the proof fails naming the call;
//! - [`Origin::Service`]: calls an AWS service makes as one of our roles, which no code of ours
//!   issues and so nothing can record (CodeBuild's log writes and S3 cache, CodePipeline's source
//!   and artifact handling, CodeDeploy's traffic shifting, ECS's image pull, EventBridge's
//!   trigger, the service principals assuming our roles); each cites the AWS page that says the
//!   service makes it.
//!
//! The map is proven locally by `access::prove_map` and on AWS by `cargo xtask verify` through
//! IAM's own simulator.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde::Serialize;

use super::policies::Policies;
use crate::config::Config;

/// Who makes a call: our code, or an AWS service on our behalf.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Code,
    Service,
}

/// One call of the map.
#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    /// Who makes the call, in words: `CodeBuild (project web-build)`, `the xtask in CodeBuild`.
    pub actor: String,
    /// The principal: a role ARN, or `service:<name>` for a service principal (a role's trust,
    /// S3's log delivery).
    pub principal: String,
    /// The principal's account (empty for a service principal).
    pub principal_account: String,
    /// The IAM action: `s3:PutObject`.
    pub action: String,
    /// The resource's ARN; a `*` stands for any name the call may use there (an object key, a
    /// log stream), and is what a recorded call's resource is matched against.
    pub resource: String,
    /// The account that owns the resource (empty for `*`).
    pub owner: String,
    /// Condition keys AWS sets for this request, lowercase.
    pub context: BTreeMap<String, Vec<String>>,
    pub origin: Origin,
    /// AWS's page that documents this call (or the permission it needs).
    pub doc: &'static str,
}

/// The principal the map uses for the operator who runs `cargo xtask deploy` in the tools
/// account: whoever that is, its own IAM policies are not ours to prove; what the resources'
/// policies (keys, buckets) grant it is.
pub const OPERATOR: &str = "operator";

/// The sample name that stands for a `*` of an entry's resource when the entry is evaluated
/// (IAM evaluates one concrete ARN per request).
pub const SAMPLE: &str = "sample";

impl Entry {
    /// The entry's resource with every `*` replaced by [`SAMPLE`]: one concrete request.
    pub fn sample_resource(&self) -> String {
        if self.resource == "*" { "*".to_string() } else { self.resource.replace('*', SAMPLE) }
    }

    /// Whether the principal is a service principal (`service:<name>`).
    pub fn by_service_principal(&self) -> bool {
        self.principal.starts_with("service:")
    }
}

/// AWS's pages the entries cite.
mod doc {
    pub const CODEBUILD_ROLE: &str =
        "https://docs.aws.amazon.com/codebuild/latest/userguide/setting-up-service-role.html";
    pub const CODEBUILD_ENCRYPTION: &str =
        "https://docs.aws.amazon.com/codebuild/latest/userguide/security-encryption.html";
    pub const CODEBUILD_ACTION: &str =
        "https://docs.aws.amazon.com/codepipeline/latest/userguide/action-reference-CodeBuild.html";
    pub const CODECOMMIT_ACTION: &str =
        "https://docs.aws.amazon.com/codepipeline/latest/userguide/action-reference-CodeCommit.html";
    pub const CONNECTIONS_ACTION: &str =
        "https://docs.aws.amazon.com/codepipeline/latest/userguide/action-reference-CodestarConnectionSource.html";
    pub const PIPELINE_ROLE: &str = "https://docs.aws.amazon.com/codepipeline/latest/userguide/how-to-custom-role.html";
    pub const CROSS_REGION: &str =
        "https://docs.aws.amazon.com/codepipeline/latest/userguide/actions-create-cross-region.html";
    pub const CROSS_ACCOUNT: &str =
        "https://docs.aws.amazon.com/codepipeline/latest/userguide/pipelines-create-cross-account.html";
    pub const ECS_DEPLOY_ACTION: &str =
        "https://docs.aws.amazon.com/codepipeline/latest/userguide/action-reference-ECSbluegreen.html";
    pub const CODEDEPLOY_ROLE: &str =
        "https://docs.aws.amazon.com/codedeploy/latest/userguide/getting-started-create-service-role.html";
    pub const ECS_EXECUTION_ROLE: &str =
        "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_execution_IAM_role.html";
    pub const ECS_TASK_ROLE: &str = "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-iam-roles.html";
    pub const LAMBDA_ROLE: &str = "https://docs.aws.amazon.com/lambda/latest/dg/lambda-intro-execution-role.html";
    pub const LAMBDA_DLQ: &str =
        "https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html#invocation-dlq";
    pub const SQS_KMS: &str =
        "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-key-management.html";
    pub const EVENTBRIDGE_ROLE: &str =
        "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-identity-based.html";
    pub const FLOW_LOGS_ROLE: &str = "https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-iam-role.html";
    pub const S3_LOG_DELIVERY: &str =
        "https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-server-access-logging.html";
    pub const S3_KMS: &str = "https://docs.aws.amazon.com/kms/latest/developerguide/services-s3.html";
    pub const S3_CONDITIONAL_DELETE: &str =
        "https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-deletes.html";
    pub const S3_HEAD_BUCKET: &str = "https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadBucket.html";
    pub const ECR_PUSH: &str = "https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-push-iam.html";
    pub const ECR_AUTH: &str = "https://docs.aws.amazon.com/AmazonECR/latest/userguide/registry_auth.html";
    pub const CODECOMMIT_API: &str =
        "https://docs.aws.amazon.com/codecommit/latest/userguide/auth-and-access-control-permissions-reference.html";
    pub const CODEBUILD_API: &str =
        "https://docs.aws.amazon.com/codebuild/latest/userguide/auth-and-access-control-permissions-reference.html";
    pub const ASSUME_ROLE: &str = "https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html";
    pub const KMS_DESCRIBE: &str = "https://docs.aws.amazon.com/kms/latest/APIReference/API_DescribeKey.html";
    pub const LAMBDA_ENV_KMS: &str =
        "https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars-encryption.html";
    pub const CFN_STACK_RESOURCES: &str =
        "https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStackResources.html";
    pub const CFN_GET_TEMPLATE: &str =
        "https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_GetTemplate.html";
    pub const LOGS_DESCRIBE: &str =
        "https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_DescribeLogGroups.html";
    pub const ECR_DESCRIBE: &str =
        "https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_DescribeRepositories.html";
    pub const ECR_LIST_IMAGES: &str = "https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_ListImages.html";
    pub const ELB_DESCRIBE: &str =
        "https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_DescribeTargetGroups.html";
}

/// Builds entries for one principal.
struct Actor<'a> {
    actor: String,
    principal: String,
    principal_account: String,
    origin: Origin,
    entries: &'a mut Vec<Entry>,
}

impl Actor<'_> {
    /// Adds one call: `action` on `resource` owned by `owner`, with `extra` context keys.
    fn call(&mut self, action: &str, resource: &str, owner: &str, extra: &[(&str, &str)], doc: &'static str) {
        let mut context = BTreeMap::new();
        if self.principal.starts_with("service:") {
            context.insert("aws:sourceaccount".to_string(), vec![owner.to_string()]);
        } else {
            context.insert("aws:principalarn".to_string(), vec![self.principal.clone()]);
            context.insert("aws:principalaccount".to_string(), vec![self.principal_account.clone()]);
        }
        // Every call to AWS goes over TLS.
        context.insert("aws:securetransport".to_string(), vec!["true".to_string()]);
        for (key, value) in extra {
            context.entry(key.to_lowercase()).or_default().push(value.to_string());
        }
        self.entries.push(Entry {
            actor: self.actor.clone(),
            principal: self.principal.clone(),
            principal_account: self.principal_account.clone(),
            action: action.to_string(),
            resource: resource.to_string(),
            owner: owner.to_string(),
            context,
            origin: self.origin,
            doc,
        });
    }

    fn calls(&mut self, actions: &[&str], resource: &str, owner: &str, extra: &[(&str, &str)], doc: &'static str) {
        for action in actions {
            self.call(action, resource, owner, extra, doc);
        }
    }

    /// An SSE-KMS upload under `key` (S3 asks KMS for a data key as the caller, and to decrypt it
    /// for a multipart upload).
    fn put_encrypted(&mut self, object: &str, key: &str, region: &str, doc: &'static str) {
        let owner = account_of(key);
        let bucket_owner = owner.clone();
        self.call(
            "s3:PutObject",
            object,
            &bucket_owner,
            &[("s3:x-amz-server-side-encryption", "aws:kms"), ("s3:x-amz-server-side-encryption-aws-kms-key-id", key)],
            doc,
        );
        let via = format!("s3.{region}.amazonaws.com");
        let caller = self.principal_account.clone();
        // A multipart upload needs kms:Decrypt too: S3 decrypts the data key for each part
        // (https://docs.aws.amazon.com/AmazonS3/latest/userguide/mpuoverview.html#mpuAndPermissions).
        for action in ["kms:GenerateDataKey", "kms:Decrypt"] {
            self.call(action, key, &owner, &[("kms:ViaService", &via), ("kms:CallerAccount", &caller)], doc::S3_KMS);
        }
    }

    /// A read of an SSE-KMS object (S3 asks KMS to decrypt its data key as the caller).
    fn get_encrypted(&mut self, object: &str, key: &str, region: &str, doc: &'static str) {
        let owner = account_of(key);
        self.call("s3:GetObject", object, &owner, &[], doc);
        let via = format!("s3.{region}.amazonaws.com");
        let caller = self.principal_account.clone();
        self.call("kms:Decrypt", key, &owner, &[("kms:ViaService", &via), ("kms:CallerAccount", &caller)], doc::S3_KMS);
    }
}

fn account_of(arn: &str) -> String {
    arn.split(':').nth(4).unwrap_or_default().to_string()
}

/// Every entry of the map for `config`'s topology, with the names and ARNs `policies` read from
/// the deployed stacks (the roles CloudFormation names, the keys, the listeners).
pub fn entries(config: &Config, policies: &Policies) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    let tools = config.tools.account.as_str();
    let tools_region = config.tools.region.as_str();
    let app = config.app.as_str();
    let key = |region: &str| -> Result<String> {
        let bucket = config.bucket_name(region);
        policies.bucket_keys.get(&bucket).cloned().with_context(|| {
            format!(
                "the artifact bucket {bucket} has no KMS key in the deployed stacks: run `cargo xtask deploy` first"
            )
        })
    };
    let role = |account: &str, region: &str, logical: &str, stack: &str| -> Result<String> {
        policies.roles.get(&(account.to_string(), region.to_string(), logical.to_string())).cloned().with_context(
            || {
                format!(
                    "no role {logical} in stack {} ({account}/{region}): run `cargo xtask deploy` first",
                    config.stack_name(stack)
                )
            },
        )
    };
    let bucket_object = |region: &str, path: &str| format!("arn:aws:s3:::{}/{path}", config.bucket_name(region));
    let bucket_arn = |region: &str| format!("arn:aws:s3:::{}", config.bucket_name(region));
    let regions = config.regions();
    let tools_key = key(tools_region)?;
    let repository = format!("arn:aws:codecommit:{tools_region}:{tools}:{}", config.source.repository);
    let build_project = config.build_role_name();
    let validate_project = config.validate_project_name();
    // CodePipeline keeps an artifact at `<pipeline name, 20 characters>/<artifact name, 10>/<id>`.
    let pipeline_prefix: String = app.chars().take(20).collect();
    let source_artifacts = format!("{pipeline_prefix}/SourceArti/*");
    let build_artifacts = format!("{pipeline_prefix}/BuildArtif/*");
    let log_streams = |region: &str, account: &str, group: &str| {
        format!("arn:aws:logs:{region}:{account}:log-group:{group}:log-stream:*")
    };
    let build_role = config.tools_role_arn(&config.build_role_name());
    let pipeline_role = config.tools_role_arn(&config.pipeline_role_name());
    let gitflow_role = config.tools_role_arn(&config.gitflow_role_name());
    let approver_role = config.tools_role_arn(&format!("{}-approver", config.gitflow_role_name()));
    let trigger_role = config.tools_role_arn(&format!("{}-trigger", config.gitflow_role_name()));

    // Who may assume each role: the service, in this account.
    let mut trust = |service: &str, role_arn: &str, doc: &'static str| {
        let owner = account_of_role(role_arn);
        let mut actor = Actor {
            actor: format!("{service} assuming {}", role_name(role_arn)),
            principal: format!("service:{service}"),
            principal_account: String::new(),
            origin: Origin::Service,
            entries: &mut entries,
        };
        actor.call("sts:AssumeRole", role_arn, &owner, &[], doc);
    };
    trust("codebuild.amazonaws.com", &build_role, doc::CODEBUILD_ROLE);
    trust("codepipeline.amazonaws.com", &pipeline_role, doc::PIPELINE_ROLE);
    trust("lambda.amazonaws.com", &gitflow_role, doc::LAMBDA_ROLE);
    trust("events.amazonaws.com", &trigger_role, doc::EVENTBRIDGE_ROLE);
    for workload in &config.workloads {
        let (account, region) = (workload.account.as_str(), workload.region.as_str());
        trust("codedeploy.amazonaws.com", &role(account, region, "CodeDeployRole", "release")?, doc::CODEDEPLOY_ROLE);
        trust("ecs-tasks.amazonaws.com", &role(account, region, "ExecutionRole", "service")?, doc::ECS_EXECUTION_ROLE);
        trust("ecs-tasks.amazonaws.com", &role(account, region, "TaskRole", "service")?, doc::ECS_TASK_ROLE);
        trust("vpc-flow-logs.amazonaws.com", &role(account, region, "FlowLogRole", "network")?, doc::FLOW_LOGS_ROLE);
    }

    // The operator's deploy (`cargo xtask deploy`, our code): the release targets, the first
    // release and the gitflow Lambda's code, uploaded under the key; the replicas described.
    {
        let mut operator = Actor {
            actor: format!("the operator's `cargo xtask deploy` in {tools}"),
            principal: OPERATOR.into(),
            principal_account: tools.to_string(),
            origin: Origin::Code,
            entries: &mut entries,
        };
        for region in &regions {
            let region_key = key(region)?;
            operator.put_encrypted(&bucket_object(region, "releases/*"), &region_key, region, doc::S3_KMS);
            operator.get_encrypted(&bucket_object(region, "releases/*"), &region_key, region, doc::S3_KMS);
            operator.call("kms:DescribeKey", &region_key, tools, &[("kms:CallerAccount", tools)], doc::KMS_DESCRIBE);
        }
        operator.put_encrypted(&bucket_object(tools_region, "gitflow/*"), &tools_key, tools_region, doc::S3_KMS);
        // The topology lock (`topology_lock.rs`) of deploy, release and destroy: the bucket looked
        // up (HeadBucket needs s3:ListBucket), the lock put, read and deleted on its ETag (a
        // conditional delete with an ETag needs s3:GetObject too, says AWS's page).
        let lock = bucket_object(tools_region, crate::topology_lock::LOCK_KEY);
        operator.put_encrypted(&lock, &tools_key, tools_region, doc::S3_KMS);
        operator.get_encrypted(&lock, &tools_key, tools_region, doc::S3_KMS);
        operator.call("s3:DeleteObject", &lock, tools, &[], doc::S3_CONDITIONAL_DELETE);
        let tools_bucket = format!("arn:aws:s3:::{}", config.bucket_name(tools_region));
        operator.call("s3:ListBucket", &tools_bucket, tools, &[], doc::S3_HEAD_BUCKET);
        operator.get_encrypted(&bucket_object(tools_region, "gitflow/*"), &tools_key, tools_region, doc::S3_KMS);
        // CloudFormation creating the gitflow function with `KmsKeyArn`, as the operator: Lambda
        // makes a grant on the key and encrypts the environment with it.
        let via_lambda = format!("lambda.{tools_region}.amazonaws.com");
        for action in ["kms:CreateGrant", "kms:Encrypt"] {
            operator.call(
                action,
                &tools_key,
                tools,
                &[("kms:ViaService", &via_lambda), ("kms:CallerAccount", tools)],
                doc::LAMBDA_ENV_KMS,
            );
        }
    }

    // The operator in each workload account (the deploy's push of the first image): its own
    // account's registry, whose repository policy names only the build role, so the operator's
    // own IAM decides.
    for workload in &config.workloads {
        let mut operator = Actor {
            actor: format!("the operator's `cargo xtask deploy` in {}", workload.account),
            principal: OPERATOR.into(),
            principal_account: workload.account.clone(),
            origin: Origin::Code,
            entries: &mut entries,
        };
        operator.call("ecr:GetAuthorizationToken", "*", "", &[], doc::ECR_AUTH);
        let registry = format!("arn:aws:ecr:{}:{}:repository/{app}", workload.region, workload.account);
        operator.calls(
            &[
                "ecr:BatchCheckLayerAvailability",
                "ecr:BatchGetImage",
                "ecr:CompleteLayerUpload",
                "ecr:DescribeImages",
                "ecr:InitiateLayerUpload",
                "ecr:PutImage",
                "ecr:UploadLayerPart",
            ],
            &registry,
            &workload.account,
            &[],
            doc::ECR_PUSH,
        );
    }

    // The operator's destroy (`cargo xtask destroy`, our code) looking for what each stack left
    // (`destroy/leftovers.rs`): the stack's resources read before its deletion, then each looked
    // for through its own service. Load balancers and target groups are described with no
    // resource-level permission ("*"); the buckets are looked up with HeadBucket (s3:ListBucket)
    // and their bucket policies are proven here.
    let mut places: Vec<(String, String)> = regions.iter().map(|region| (tools.to_string(), region.clone())).collect();
    places.extend(config.workloads.iter().map(|workload| (workload.account.clone(), workload.region.clone())));
    places.sort();
    places.dedup();
    for (account, region) in &places {
        let mut operator = Actor {
            actor: format!("the operator's `cargo xtask destroy` in {account}"),
            principal: OPERATOR.into(),
            principal_account: account.clone(),
            origin: Origin::Code,
            entries: &mut entries,
        };
        let stacks = format!("arn:aws:cloudformation:{region}:{account}:stack/{app}-*/*");
        operator.call("cloudformation:DescribeStackResources", &stacks, account, &[], doc::CFN_STACK_RESOURCES);
        operator.call("cloudformation:GetTemplate", &stacks, account, &[], doc::CFN_GET_TEMPLATE);
        let groups = format!("arn:aws:logs:{region}:{account}:log-group:*");
        operator.call("logs:DescribeLogGroups", &groups, account, &[], doc::LOGS_DESCRIBE);
        if account == tools {
            for bucket in [config.bucket_name(region), config.log_bucket_name(region)] {
                operator.call("s3:ListBucket", &format!("arn:aws:s3:::{bucket}"), tools, &[], doc::S3_HEAD_BUCKET);
            }
        }
        if config.workloads.iter().any(|workload| &workload.account == account && &workload.region == region) {
            let registry = format!("arn:aws:ecr:{region}:{account}:repository/{app}");
            operator.call("ecr:DescribeRepositories", &registry, account, &[], doc::ECR_DESCRIBE);
            operator.call("ecr:ListImages", &registry, account, &[], doc::ECR_LIST_IMAGES);
            operator.calls(
                &["elasticloadbalancing:DescribeLoadBalancers", "elasticloadbalancing:DescribeTargetGroups"],
                "*",
                "",
                &[],
                doc::ELB_DESCRIBE,
            );
        }
    }

    // The build role: CodeBuild's own calls (logs, artifacts, cache, the validation clone), then
    // the xtask's in the buildspec (`cargo xtask ci build`), then the Docker engine's push.
    {
        let mut codebuild = Actor {
            actor: "CodeBuild".into(),
            principal: build_role.clone(),
            principal_account: tools.to_string(),
            origin: Origin::Service,
            entries: &mut entries,
        };
        for project in [&build_project, &validate_project] {
            let streams = log_streams(tools_region, tools, &format!("/aws/codebuild/{project}"));
            codebuild.calls(&["logs:CreateLogStream", "logs:PutLogEvents"], &streams, tools, &[], doc::CODEBUILD_ROLE);
            // The S3 cache, encrypted like the artifacts with the project's key.
            let cache = bucket_object(tools_region, &format!("codebuild-cache/{project}/*"));
            codebuild.get_encrypted(&cache, &tools_key, tools_region, doc::CODEBUILD_ENCRYPTION);
            codebuild.put_encrypted(&cache, &tools_key, tools_region, doc::CODEBUILD_ENCRYPTION);
        }
        codebuild.get_encrypted(
            &bucket_object(tools_region, &source_artifacts),
            &tools_key,
            tools_region,
            doc::CODEBUILD_ACTION,
        );
        codebuild.put_encrypted(
            &bucket_object(tools_region, &build_artifacts),
            &tools_key,
            tools_region,
            doc::CODEBUILD_ACTION,
        );
        codebuild.call("codecommit:GitPull", &repository, tools, &[], doc::CODEBUILD_ROLE);
        codebuild.calls(
            &["s3:GetBucketAcl", "s3:GetBucketLocation"],
            &bucket_arn(tools_region),
            tools,
            &[],
            doc::CODEBUILD_ROLE,
        );
    }
    {
        let mut xtask = Actor {
            actor: "`cargo xtask ci build` in CodeBuild".into(),
            principal: build_role.clone(),
            principal_account: tools.to_string(),
            origin: Origin::Code,
            entries: &mut entries,
        };
        for region in &regions {
            let region_key = key(region)?;
            xtask.get_encrypted(&bucket_object(region, "releases/*"), &region_key, region, doc::S3_KMS);
            xtask.put_encrypted(&bucket_object(region, "releases/*"), &region_key, region, doc::S3_KMS);
        }
        xtask.call("ecr:GetAuthorizationToken", "*", "", &[], doc::ECR_AUTH);
        for workload in &config.workloads {
            let registry = format!("arn:aws:ecr:{}:{}:repository/{app}", workload.region, workload.account);
            xtask.calls(&["ecr:DescribeImages", "ecr:BatchGetImage"], &registry, &workload.account, &[], doc::ECR_PUSH);
        }
    }
    {
        let mut docker = Actor {
            actor: "the Docker engine's push in CodeBuild".into(),
            principal: build_role.clone(),
            principal_account: tools.to_string(),
            origin: Origin::Code,
            entries: &mut entries,
        };
        for workload in &config.workloads {
            let registry = format!("arn:aws:ecr:{}:{}:repository/{app}", workload.region, workload.account);
            docker.calls(
                &[
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:InitiateLayerUpload",
                    "ecr:UploadLayerPart",
                    "ecr:CompleteLayerUpload",
                    "ecr:PutImage",
                ],
                &registry,
                &workload.account,
                &[],
                doc::ECR_PUSH,
            );
        }
    }

    // The pipeline role: CodePipeline's source action, its build action, its artifact copies to
    // every deploy region's store, and the deploy actions' roles it assumes.
    {
        let mut codepipeline = Actor {
            actor: "CodePipeline".into(),
            principal: pipeline_role.clone(),
            principal_account: tools.to_string(),
            origin: Origin::Service,
            entries: &mut entries,
        };
        match config.source.provider {
            crate::config::SourceProvider::CodeCommit => codepipeline.calls(
                &[
                    "codecommit:GetBranch",
                    "codecommit:GetCommit",
                    "codecommit:UploadArchive",
                    "codecommit:GetUploadArchiveStatus",
                    "codecommit:GetRepository",
                    "codecommit:CancelUploadArchive",
                ],
                &repository,
                tools,
                &[],
                doc::CODECOMMIT_ACTION,
            ),
            crate::config::SourceProvider::CodeConnections => {
                let connection = config.source.connection_arn.clone().unwrap_or_default();
                let repository_id = config.source.full_repository_id.clone().unwrap_or_default();
                codepipeline.call(
                    "codeconnections:UseConnection",
                    &connection,
                    tools,
                    &[("codeconnections:FullRepositoryId", &repository_id)],
                    doc::CONNECTIONS_ACTION,
                );
            }
        }
        codepipeline.put_encrypted(
            &bucket_object(tools_region, &source_artifacts),
            &tools_key,
            tools_region,
            doc::PIPELINE_ROLE,
        );
        let project = format!("arn:aws:codebuild:{tools_region}:{tools}:project/{build_project}");
        codepipeline.calls(
            &["codebuild:StartBuild", "codebuild:BatchGetBuilds"],
            &project,
            tools,
            &[],
            doc::CODEBUILD_ACTION,
        );
        codepipeline.get_encrypted(
            &bucket_object(tools_region, &build_artifacts),
            &tools_key,
            tools_region,
            doc::CROSS_REGION,
        );
        for region in &regions {
            codepipeline.calls(
                &["s3:GetBucketAcl", "s3:GetBucketLocation", "s3:GetBucketVersioning"],
                &bucket_arn(region),
                tools,
                &[],
                doc::PIPELINE_ROLE,
            );
            if region != tools_region {
                codepipeline.put_encrypted(
                    &bucket_object(region, &build_artifacts),
                    &key(region)?,
                    region,
                    doc::CROSS_REGION,
                );
            }
        }
        for workload in &config.workloads {
            codepipeline.call(
                "sts:AssumeRole",
                &config.release_role_arn(workload),
                &workload.account,
                &[],
                doc::CROSS_ACCOUNT,
            );
        }
    }

    // Each workload: the deploy action's role, CodeDeploy's, the tasks', the flow logs'.
    for workload in &config.workloads {
        let (account, region) = (workload.account.as_str(), workload.region.as_str());
        let parameters = policies
            .parameters
            .get(&(account.to_string(), region.to_string(), config.stack_name("release")))
            .with_context(|| {
                format!(
                    "no stack {} in {account}/{region}: run `cargo xtask deploy` first",
                    config.stack_name("release")
                )
            })?;
        let parameter = |name: &str| -> Result<String> {
            parameters
                .get(name)
                .cloned()
                .with_context(|| format!("stack {} has no parameter {name}", config.stack_name("release")))
        };
        let execution_role = role(account, region, "ExecutionRole", "service")?;
        let task_role = role(account, region, "TaskRole", "service")?;
        let region_key = key(region)?;
        let application = format!("arn:aws:codedeploy:{region}:{account}:application:{app}");
        let group = format!("arn:aws:codedeploy:{region}:{account}:deploymentgroup:{app}/{app}");
        let deployment_config =
            format!("arn:aws:codedeploy:{region}:{account}:deploymentconfig:{}", config.release.deployment_config);
        {
            let mut release = Actor {
                actor: format!("CodePipeline's deploy action for {}", workload.name),
                principal: config.release_role_arn(workload),
                principal_account: account.to_string(),
                origin: Origin::Service,
                entries: &mut entries,
            };
            release.get_encrypted(
                &bucket_object(region, &build_artifacts),
                &region_key,
                region,
                doc::ECS_DEPLOY_ACTION,
            );
            // Authorized on the task definition family (Service Authorization Reference, ECS).
            let family = format!("arn:aws:ecs:{region}:{account}:task-definition/{app}:*");
            release.call("ecs:RegisterTaskDefinition", &family, account, &[], doc::ECS_DEPLOY_ACTION);
            for passed in [&execution_role, &task_role] {
                release.call(
                    "iam:PassRole",
                    passed,
                    account,
                    &[("iam:PassedToService", "ecs-tasks.amazonaws.com")],
                    doc::ECS_DEPLOY_ACTION,
                );
            }
            release.calls(
                &[
                    "codedeploy:GetApplication",
                    "codedeploy:RegisterApplicationRevision",
                    "codedeploy:GetApplicationRevision",
                ],
                &application,
                account,
                &[],
                doc::ECS_DEPLOY_ACTION,
            );
            release.calls(
                &["codedeploy:CreateDeployment", "codedeploy:GetDeployment"],
                &group,
                account,
                &[],
                doc::ECS_DEPLOY_ACTION,
            );
            release.call("codedeploy:GetDeploymentConfig", &deployment_config, account, &[], doc::ECS_DEPLOY_ACTION);
        }
        {
            let mut codedeploy = Actor {
                actor: format!("CodeDeploy for {}", workload.name),
                principal: role(account, region, "CodeDeployRole", "release")?,
                principal_account: account.to_string(),
                origin: Origin::Service,
                entries: &mut entries,
            };
            let service = format!("arn:aws:ecs:{region}:{account}:service/{app}/{app}");
            let task_sets = format!("arn:aws:ecs:{region}:{account}:task-set/{app}/{app}/*");
            codedeploy.calls(
                &["ecs:DescribeServices", "ecs:UpdateServicePrimaryTaskSet"],
                &service,
                account,
                &[],
                doc::CODEDEPLOY_ROLE,
            );
            // Task sets are authorized on the task set (Service Authorization Reference, ECS).
            codedeploy.calls(
                &["ecs:CreateTaskSet", "ecs:DeleteTaskSet"],
                &task_sets,
                account,
                &[],
                doc::CODEDEPLOY_ROLE,
            );
            codedeploy.calls(
                &[
                    "elasticloadbalancing:DescribeListeners",
                    "elasticloadbalancing:DescribeRules",
                    "elasticloadbalancing:DescribeTargetGroups",
                ],
                "*",
                "",
                &[],
                doc::CODEDEPLOY_ROLE,
            );
            for listener in ["ProdListenerArn", "TestListenerArn"] {
                codedeploy.call(
                    "elasticloadbalancing:ModifyListener",
                    &parameter(listener)?,
                    account,
                    &[],
                    doc::CODEDEPLOY_ROLE,
                );
            }
            let alarm = format!("arn:aws:cloudwatch:{region}:{account}:alarm:{app}-{app}-5xx");
            codedeploy.call("cloudwatch:DescribeAlarms", &alarm, account, &[], doc::CODEDEPLOY_ROLE);
            for passed in [&execution_role, &task_role] {
                codedeploy.call(
                    "iam:PassRole",
                    passed,
                    account,
                    &[("iam:PassedToService", "ecs-tasks.amazonaws.com")],
                    doc::CODEDEPLOY_ROLE,
                );
            }
        }
        {
            let mut ecs = Actor {
                actor: format!("ECS starting a task of {}", workload.name),
                principal: execution_role.clone(),
                principal_account: account.to_string(),
                origin: Origin::Service,
                entries: &mut entries,
            };
            ecs.call("ecr:GetAuthorizationToken", "*", "", &[], doc::ECS_EXECUTION_ROLE);
            let registry = format!("arn:aws:ecr:{region}:{account}:repository/{app}");
            ecs.calls(
                &["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
                &registry,
                account,
                &[],
                doc::ECS_EXECUTION_ROLE,
            );
            ecs.calls(
                &["logs:CreateLogStream", "logs:PutLogEvents"],
                &log_streams(region, account, &format!("/ecs/{app}")),
                account,
                &[],
                doc::ECS_EXECUTION_ROLE,
            );
        }
        {
            let mut flow_logs = Actor {
                actor: format!("VPC flow logs of {}", workload.name),
                principal: role(account, region, "FlowLogRole", "network")?,
                principal_account: account.to_string(),
                origin: Origin::Service,
                entries: &mut entries,
            };
            let group = format!("/vpc/{}/flow-logs", config.stack_name("network"));
            flow_logs.calls(
                &["logs:CreateLogStream", "logs:PutLogEvents"],
                &log_streams(region, account, &group),
                account,
                &[],
                doc::FLOW_LOGS_ROLE,
            );
            let group_arn = format!("arn:aws:logs:{region}:{account}:log-group:{group}:*");
            flow_logs.call("logs:DescribeLogStreams", &group_arn, account, &[], doc::FLOW_LOGS_ROLE);
            flow_logs.call(
                "logs:DescribeLogGroups",
                &format!("arn:aws:logs:{region}:{account}:log-group:*"),
                account,
                &[],
                doc::FLOW_LOGS_ROLE,
            );
        }
    }

    // The gitflow: the Lambda (our code, `gitflow/src/effects.rs`), Lambda's own log writes and
    // dead letters, the approver it assumes, EventBridge starting the pipeline.
    {
        let mut lambda = Actor {
            actor: "the gitflow Lambda".into(),
            principal: gitflow_role.clone(),
            principal_account: tools.to_string(),
            origin: Origin::Code,
            entries: &mut entries,
        };
        lambda.calls(
            &[
                "codecommit:GetBranch",
                "codecommit:GetCommit",
                "codecommit:ListPullRequests",
                "codecommit:GetPullRequest",
                "codecommit:CreatePullRequest",
                "codecommit:CreatePullRequestApprovalRule",
                "codecommit:PostCommentForPullRequest",
                "codecommit:MergePullRequestByFastForward",
                "codecommit:MergePullRequestBySquash",
            ],
            &repository,
            tools,
            &[],
            doc::CODECOMMIT_API,
        );
        let validate = format!("arn:aws:codebuild:{tools_region}:{tools}:project/{validate_project}");
        lambda.call("codebuild:StartBuild", &validate, tools, &[], doc::CODEBUILD_API);
        lambda.call("sts:AssumeRole", &approver_role, tools, &[], doc::ASSUME_ROLE);
    }
    {
        let mut lambda_service = Actor {
            actor: "Lambda running the gitflow".into(),
            principal: gitflow_role.clone(),
            principal_account: tools.to_string(),
            origin: Origin::Service,
            entries: &mut entries,
        };
        let function = config.gitflow_role_name();
        lambda_service.calls(
            &["logs:CreateLogStream", "logs:PutLogEvents"],
            &log_streams(tools_region, tools, &format!("/aws/lambda/{function}")),
            tools,
            &[],
            doc::LAMBDA_ROLE,
        );
        let queue = format!("arn:aws:sqs:{tools_region}:{tools}:{function}-failed-events");
        lambda_service.call("sqs:SendMessage", &queue, tools, &[], doc::LAMBDA_DLQ);
        let via_sqs = format!("sqs.{tools_region}.amazonaws.com");
        for action in ["kms:GenerateDataKey", "kms:Decrypt"] {
            lambda_service.call(
                action,
                &tools_key,
                tools,
                &[("kms:ViaService", &via_sqs), ("kms:CallerAccount", tools)],
                doc::SQS_KMS,
            );
        }
    }
    {
        let mut approver = Actor {
            actor: "the gitflow Lambda as the approver".into(),
            principal: approver_role.clone(),
            principal_account: tools.to_string(),
            origin: Origin::Code,
            entries: &mut entries,
        };
        approver.call("codecommit:UpdatePullRequestApprovalState", &repository, tools, &[], doc::CODECOMMIT_API);
    }
    {
        let mut events = Actor {
            actor: "EventBridge's pipeline trigger".into(),
            principal: trigger_role.clone(),
            principal_account: tools.to_string(),
            origin: Origin::Service,
            entries: &mut entries,
        };
        let pipeline = format!("arn:aws:codepipeline:{tools_region}:{tools}:{app}");
        events.call("codepipeline:StartPipelineExecution", &pipeline, tools, &[], doc::EVENTBRIDGE_ROLE);
    }

    // S3 delivering each artifact bucket's access logs to its log bucket.
    for region in &regions {
        let mut delivery = Actor {
            actor: format!("S3 access logs of {}", config.bucket_name(region)),
            principal: "service:logging.s3.amazonaws.com".into(),
            principal_account: String::new(),
            origin: Origin::Service,
            entries: &mut entries,
        };
        let object = format!("arn:aws:s3:::{}/s3/{}/*", config.log_bucket_name(region), config.bucket_name(region));
        delivery.call("s3:PutObject", &object, tools, &[("aws:SourceArn", &bucket_arn(region))], doc::S3_LOG_DELIVERY);
    }
    Ok(entries)
}

/// `arn:aws:iam::<account>:role/<name>` → `<account>`.
fn account_of_role(arn: &str) -> String {
    arn.trim_start_matches("arn:aws:iam::").split(':').next().unwrap_or_default().to_string()
}

/// `arn:aws:iam::<account>:role/<name>` → `<name>`.
fn role_name(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn config() -> Config {
        let text = "app = \"web\"\n[tools]\naccount = \"111111111111\"\nregion = \"ap-south-1\"\n\
                    [[workloads]]\nname = \"india\"\naccount = \"222222222222\"\nregion = \"ap-south-1\"\n\
                    [[workloads]]\nname = \"europe\"\naccount = \"333333333333\"\nregion = \"eu-central-1\"\n";
        Config::parse(std::path::Path::new("deploy.toml"), text).unwrap()
    }

    /// What the deployed stacks give the map: the keys, the roles CloudFormation names, the
    /// release stacks' listener parameters.
    pub(crate) fn policies(config: &Config) -> Policies {
        let mut policies = Policies::default();
        for region in config.regions() {
            policies
                .bucket_keys
                .insert(config.bucket_name(&region), format!("arn:aws:kms:{region}:111111111111:key/mrk-1"));
        }
        for workload in &config.workloads {
            let (account, region) = (workload.account.clone(), workload.region.clone());
            for logical in ["CodeDeployRole", "ExecutionRole", "TaskRole", "FlowLogRole"] {
                policies.roles.insert(
                    (account.clone(), region.clone(), logical.into()),
                    format!("arn:aws:iam::{account}:role/web-{logical}-X"),
                );
            }
            let listener =
                |name: &str| format!("arn:aws:elasticloadbalancing:{region}:{account}:listener/app/web/1/{name}");
            policies.parameters.insert(
                (account.clone(), region.clone(), "web-release".into()),
                BTreeMap::from([
                    ("ProdListenerArn".to_string(), listener("prod")),
                    ("TestListenerArn".to_string(), listener("test")),
                ]),
            );
        }
        policies
    }

    #[test]
    fn every_actor_of_the_running_system_is_on_the_map() {
        let config = config();
        let map = entries(&config, &policies(&config)).unwrap();
        let has = |actor: &str, principal: &str, action: &str| {
            map.iter()
                .any(|entry| entry.actor == actor && entry.principal.ends_with(principal) && entry.action == action)
        };
        assert!(has("CodeBuild", "role/web-build", "logs:PutLogEvents"));
        assert!(has("CodeBuild", "role/web-build", "s3:PutObject"), "the S3 cache and the build artifact");
        assert!(has("`cargo xtask ci build` in CodeBuild", "role/web-build", "kms:GenerateDataKey"));
        assert!(has("the Docker engine's push in CodeBuild", "role/web-build", "ecr:PutImage"));
        assert!(has("CodePipeline", "role/web-pipeline", "codebuild:StartBuild"));
        assert!(has("CodePipeline", "role/web-pipeline", "sts:AssumeRole"));
        assert!(has(
            "CodePipeline's deploy action for europe",
            "role/web-release-eu-central-1",
            "codedeploy:CreateDeployment"
        ));
        assert!(has("CodeDeploy for india", "role/web-CodeDeployRole-X", "elasticloadbalancing:ModifyListener"));
        assert!(has("ECS starting a task of europe", "role/web-ExecutionRole-X", "ecr:BatchGetImage"));
        assert!(has("the gitflow Lambda", "role/web-gitflow", "codecommit:CreatePullRequest"));
        assert!(has(
            "the gitflow Lambda as the approver",
            "role/web-gitflow-approver",
            "codecommit:UpdatePullRequestApprovalState"
        ));
        assert!(has(
            "EventBridge's pipeline trigger",
            "role/web-gitflow-trigger",
            "codepipeline:StartPipelineExecution"
        ));
        assert!(has("the operator's `cargo xtask deploy` in 111111111111", OPERATOR, "kms:GenerateDataKey"));
        for service in ["codebuild", "codepipeline", "codedeploy", "ecs-tasks", "lambda", "events", "vpc-flow-logs"] {
            assert!(
                map.iter().any(|entry| entry.principal == format!("service:{service}.amazonaws.com")
                    && entry.action == "sts:AssumeRole"),
                "{service} assumes its role"
            );
        }
        // Every entry is one request IAM could evaluate, and cites AWS.
        for entry in &map {
            assert!(entry.doc.starts_with("https://docs.aws.amazon.com/"), "{entry:?}");
            assert!(entry.resource == "*" || entry.resource.starts_with("arn:aws:"), "{entry:?}");
            let parts: Vec<&str> = entry.resource.split(':').collect();
            if entry.resource != "*"
                && !entry.resource.starts_with("arn:aws:s3:")
                && !entry.resource.starts_with("arn:aws:iam:")
            {
                assert!(!parts[3].is_empty() && parts[4].len() == 12, "region and account in {entry:?}");
            }
            assert!(!entry.sample_resource().contains('*') || entry.resource == "*", "{entry:?}");
        }
    }

    #[test]
    fn the_map_needs_the_deployed_stacks() {
        let config = config();
        let mut policies = policies(&config);
        policies.roles.retain(|(_, _, logical), _| logical != "CodeDeployRole");
        let error = entries(&config, &policies).unwrap_err().to_string();
        assert!(
            error.contains("no role CodeDeployRole in stack web-release") && error.contains("cargo xtask deploy"),
            "{error}"
        );
    }
}
