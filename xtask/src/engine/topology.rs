//! The pattern's plan: which stack goes to which account and region, in which order, with which
//! parameters, for any number of workloads. This is the one place that knows how the templates
//! fit together (the contract in ARCHITECTURE.md).
//!
//! Names that cross accounts or regions are derived from the config (`config.rs`), so a stack
//! never waits on another account just to learn a name; values that must be read back (the key's
//! id, subnets, listeners) flow from a step's outputs into later steps' parameters.

use std::path::PathBuf;

use crate::config::changes::{self, Route};
use crate::config::{Config, SourceProvider, key_arn};
use crate::engine::{Action, Expansion, Param, Plan, StackStep, Step, StepId, StepKind};
use crate::template;

/// Where the service's first image comes from.
#[derive(Clone, Debug)]
pub enum ImageSource {
    /// Build the site's image once and push it to every workload's registry.
    Build,
    /// An image reference used as is in every workload (`<registry>/<repo>@sha256:...`).
    Given(String),
}

/// What the plan needs beyond the config.
#[derive(Clone, Debug)]
pub struct Inputs {
    pub image: ImageSource,
    /// Against the local stack: the plan ends by running the site as a local container.
    pub local: bool,
}

impl Inputs {
    /// For commands that read the plan's stacks but run no step (`plan`, `status`, `destroy`).
    pub fn stacks_only() -> Inputs {
        Inputs { image: ImageSource::Given(String::new()), local: false }
    }
}

/// Steps of the plan worth finding again by role.
#[derive(Clone, Debug, Default)]
pub struct Index {
    pub key: StepId,
    /// Per region of `config.regions()`: the step whose `KeyArn` output is that region's key ARN.
    pub key_arn_by_region: Vec<(String, StepId)>,
    pub artifacts: Vec<(String, StepId)>,
    pub pipeline: StepId,
    /// Per workload, in config order.
    pub workloads: Vec<WorkloadSteps>,
    /// Locally, with an image to build: the step that runs the site (its `Url` output).
    pub local_site: Option<StepId>,
}

#[derive(Clone, Debug, Default)]
pub struct WorkloadSteps {
    pub network: StepId,
    pub alb: StepId,
    pub ecr: StepId,
    pub service: StepId,
    pub release: StepId,
}

/// Builds the whole plan for `config`.
pub fn plan(config: &Config, inputs: &Inputs) -> (Plan, Index) {
    let mut plan = Plan::default();
    let mut index = Index::default();
    let tools = &config.tools;
    let regions = config.regions();

    // The tools account's key, its replicas and a bucket in every region.
    let usage_roles = Param::List(
        [config.build_role_name(), config.pipeline_role_name(), config.gitflow_role_name()]
            .iter()
            .map(|name| Param::value(config.tools_role_arn(name)))
            .collect(),
    );
    let workload_roots = {
        let mut accounts: Vec<&str> = config.workloads.iter().map(|workload| workload.account.as_str()).collect();
        accounts.dedup();
        accounts.sort();
        accounts.dedup();
        Param::List(accounts.iter().map(|account| Param::value(format!("arn:aws:iam::{account}:root"))).collect())
    };
    let workload_roles =
        Param::List(config.workloads.iter().map(|workload| Param::value(config.release_role_arn(workload))).collect());
    let key_policy = |mut parameters: Vec<(String, Param)>| {
        parameters.push(("KeyAlias".into(), Param::value(config.key_alias())));
        parameters.push(("UsageRoleArns".into(), usage_roles.clone()));
        parameters.push(("WorkloadRootArns".into(), workload_roots.clone()));
        parameters.push(("WorkloadRoleArns".into(), workload_roles.clone()));
        // The shortest window KMS allows: `destroy` should not leave keys around for a month.
        parameters.push(("PendingWindowInDays".into(), Param::value("7")));
        parameters
    };
    index.key = plan.add(stack_step(
        config,
        &tools.region,
        "key",
        "cfn/tools/key.yaml",
        &tools.account,
        &tools.region,
        vec![],
        key_policy(vec![]),
    ));
    for region in &regions {
        if *region == tools.region {
            index.key_arn_by_region.push((region.clone(), index.key));
            continue;
        }
        let mut replica_step = stack_step(
            config,
            region,
            "key-replica",
            "cfn/tools/key-replica.yaml",
            &tools.account,
            region,
            vec![index.key],
            key_policy(vec![("PrimaryKeyArn".into(), Param::output(index.key, "KeyArn"))]),
        );
        if let StepKind::Stack(stack) = &mut replica_step.kind {
            stack.emulator_gap = Some(
                "moto's CloudFormation skips AWS::KMS::ReplicaKey and makes the primary key single-Region, so no \
                 replica can exist there; the key handling is proven through the KMS API in the tests",
            );
        }
        let replica = plan.add(replica_step);
        let derived = Param::Format {
            pattern: key_arn(&tools.account, region, "{}"),
            args: vec![Param::output(index.key, "KeyId")],
        };
        let check = plan.add(Step {
            id: format!("key-replica-check@{region}"),
            account: tools.account.clone(),
            region: region.clone(),
            deps: vec![index.key, replica],
            kind: StepKind::Action(Action::CheckReplica { key_arn: derived }),
        });
        index.key_arn_by_region.push((region.clone(), check));
    }
    let key_arn_in = |region: &str| -> (StepId, Param) {
        let step = index.key_arn_by_region.iter().find(|(name, _)| name == region).expect("every region has a key").1;
        (step, Param::output(step, "KeyArn"))
    };
    let writer_roles = Param::List(
        [config.build_role_name(), config.pipeline_role_name()]
            .iter()
            .map(|name| Param::value(config.tools_role_arn(name)))
            .collect(),
    );
    for region in &regions {
        let (key_step, key) = key_arn_in(region);
        let artifacts = plan.add(stack_step(
            config,
            region,
            "artifacts",
            "cfn/tools/artifacts.yaml",
            &tools.account,
            region,
            vec![key_step],
            vec![
                ("BucketName".into(), Param::value(config.bucket_name(region))),
                ("LogBucketName".into(), Param::value(config.log_bucket_name(region))),
                ("KeyArn".into(), key),
                ("WorkloadRootArns".into(), workload_roots.clone()),
                ("WorkloadRoleArns".into(), workload_roles.clone()),
                ("WriterRoleArns".into(), writer_roles.clone()),
            ],
        ));
        index.artifacts.push((region.clone(), artifacts));
    }

    // The site's image, built once here; each workload's push follows its registry's stack.
    let build_image = matches!(inputs.image, ImageSource::Build).then(|| {
        plan.add(Step {
            id: "image-build".into(),
            account: tools.account.clone(),
            region: tools.region.clone(),
            deps: vec![],
            kind: StepKind::Action(Action::BuildImage),
        })
    });
    let mut pushes = Vec::new();
    let mut service_ready = Vec::new();

    // Each workload: network, load balancer, registry, service, release wiring.
    for (number, workload) in config.workloads.iter().enumerate() {
        let (account, region) = (&workload.account, &workload.region);
        let network = plan.add(stack_step(
            config,
            &workload.name,
            "network",
            "cfn/workload/network.yaml",
            account,
            region,
            vec![],
            vec![],
        ));
        let alb = plan.add(stack_step(
            config,
            &workload.name,
            "alb",
            "cfn/workload/alb.yaml",
            account,
            region,
            vec![network],
            vec![
                ("VpcId".into(), Param::output(network, "VpcId")),
                ("VpcCidr".into(), Param::output(network, "VpcCidr")),
                ("PublicSubnet1".into(), Param::output(network, "PublicSubnet1")),
                ("PublicSubnet2".into(), Param::output(network, "PublicSubnet2")),
                ("ContainerPort".into(), Param::value(config.service.container_port.to_string())),
                ("LoadBalancerName".into(), Param::value(&config.app)),
                ("BlueTargetGroupName".into(), Param::value(format!("{}-blue", config.app))),
                ("GreenTargetGroupName".into(), Param::value(format!("{}-green", config.app))),
                ("HealthCheckPath".into(), Param::value("/healthz")),
            ],
        ));
        let ecr = plan.add(stack_step(
            config,
            &workload.name,
            "ecr",
            "cfn/workload/ecr.yaml",
            account,
            region,
            vec![],
            vec![
                ("RepositoryName".into(), Param::value(&config.app)),
                ("ToolsAccountId".into(), Param::value(&tools.account)),
                ("BuildRoleArn".into(), Param::value(config.tools_role_arn(&config.build_role_name()))),
            ],
        ));
        let (image, image_steps) = match (&inputs.image, build_image) {
            (ImageSource::Given(reference), _) => (Param::value(reference), vec![]),
            (ImageSource::Build, build) => {
                let build = build.expect("a plan that builds the image has its build step");
                let push = plan.add(Step {
                    id: format!("image-push@{}", workload.name),
                    account: account.clone(),
                    region: region.clone(),
                    deps: vec![build, ecr],
                    kind: StepKind::Action(Action::PushImage {
                        workload: number,
                        reference: Param::output(build, "Reference"),
                        tag: Param::output(build, "Tag"),
                    }),
                });
                pushes.push(push);
                (Param::output(push, "ImageUri"), vec![push])
            }
        };
        let service = plan.add(stack_step(
            config,
            &workload.name,
            "service",
            "cfn/workload/service.yaml",
            account,
            region,
            [vec![network, alb, ecr], image_steps].concat(),
            vec![
                ("ClusterName".into(), Param::value(&config.app)),
                ("ServiceName".into(), Param::value(&config.app)),
                ("ContainerName".into(), Param::value(&config.app)),
                ("ContainerPort".into(), Param::value(config.service.container_port.to_string())),
                // The image, the cpu and the memory shape the task definition, which CloudFormation
                // cannot change for a CODE_DEPLOY service: their route is the release
                // (`config/changes.rs`), so `stack_step` makes later deploys keep the first values.
                ("ImageUri".into(), image),
                ("DesiredCount".into(), Param::value(config.service.desired_count.to_string())),
                ("Cpu".into(), Param::value(config.service.cpu.to_string())),
                ("Memory".into(), Param::value(config.service.memory.to_string())),
                ("LogRetentionDays".into(), Param::value(config.service.log_retention_days.to_string())),
                ("VpcId".into(), Param::output(network, "VpcId")),
                ("PrivateSubnet1".into(), Param::output(network, "PrivateSubnet1")),
                ("PrivateSubnet2".into(), Param::output(network, "PrivateSubnet2")),
                ("LoadBalancerSecurityGroup".into(), Param::output(alb, "LoadBalancerSecurityGroup")),
                ("BlueTargetGroupArn".into(), Param::output(alb, "BlueTargetGroupArn")),
                ("RepositoryArn".into(), Param::output(ecr, "RepositoryArn")),
            ],
        ));
        let (_, workload_key) = key_arn_in(region);
        let release = plan.add(stack_step(
            config,
            &workload.name,
            "release",
            "cfn/workload/release.yaml",
            account,
            region,
            [vec![service, alb], workload_key.sources()].concat(),
            vec![
                ("ApplicationName".into(), Param::value(&config.app)),
                ("DeploymentGroupName".into(), Param::value(&config.app)),
                ("ClusterName".into(), Param::output(service, "ClusterName")),
                ("ServiceName".into(), Param::output(service, "ServiceName")),
                ("ProdListenerArn".into(), Param::output(alb, "ProdListenerArn")),
                ("TestListenerArn".into(), Param::output(alb, "TestListenerArn")),
                ("BlueTargetGroupName".into(), Param::value(format!("{}-blue", config.app))),
                ("GreenTargetGroupName".into(), Param::value(format!("{}-green", config.app))),
                ("LoadBalancerFullName".into(), Param::output(alb, "LoadBalancerFullName")),
                ("DeploymentConfigName".into(), Param::value(&config.release.deployment_config)),
                ("TerminationWaitMinutes".into(), Param::value(config.release.termination_wait_minutes.to_string())),
                ("ReleaseRoleName".into(), Param::value(config.release_role_name(workload))),
                ("ToolsAccountId".into(), Param::value(&tools.account)),
                ("PipelineRoleArn".into(), Param::value(config.tools_role_arn(&config.pipeline_role_name()))),
                ("ArtifactBucketName".into(), Param::value(config.bucket_name(region))),
                ("ArtifactKeyArn".into(), workload_key),
                ("ExecutionRoleArn".into(), Param::output(service, "ExecutionRoleArn")),
                ("TaskRoleArn".into(), Param::output(service, "TaskRoleArn")),
            ],
        ));
        let wait = plan.add(Step {
            id: format!("service-ready@{}", workload.name),
            account: account.clone(),
            region: region.clone(),
            deps: vec![service],
            kind: StepKind::Action(Action::WaitService {
                cluster: Param::output(service, "ClusterName"),
                service: Param::output(service, "ServiceName"),
            }),
        });
        service_ready.push(wait);
        plan.add(Step {
            id: format!("site-check@{}", workload.name),
            account: account.clone(),
            region: region.clone(),
            deps: vec![wait, alb],
            kind: StepKind::Action(Action::CheckSite { dns_name: Param::output(alb, "LoadBalancerDns") }),
        });
        index.workloads.push(WorkloadSteps { network, alb, ecr, service, release });
    }

    // What a release needs of the stacks, where the pipeline's build may read it.
    let tools_artifacts =
        index.artifacts.iter().find(|(region, _)| *region == tools.region).expect("the tools region has a bucket").1;
    let mut targets_deps = vec![index.key, tools_artifacts];
    targets_deps.extend(index.workloads.iter().map(|steps| steps.service));
    let targets = plan.add(Step {
        id: "release-targets".into(),
        account: tools.account.clone(),
        region: tools.region.clone(),
        deps: targets_deps,
        kind: StepKind::Action(Action::PublishTargets {
            key_id: Param::output(index.key, "KeyId"),
            services: index
                .workloads
                .iter()
                .map(|steps| {
                    ["ExecutionRoleArn", "TaskRoleArn", "LogGroupName"].map(|name| Param::output(steps.service, name))
                })
                .collect(),
        }),
    });

    if let Some(build) = build_image {
        let same = plan.add(Step {
            id: "image-digests".into(),
            account: tools.account.clone(),
            region: tools.region.clone(),
            deps: pushes.clone(),
            kind: StepKind::Action(Action::SameDigest {
                digests: pushes.iter().map(|push| Param::output(*push, "Digest")).collect(),
            }),
        });
        // The first release's artifacts, packaged once every registry holds the image and every
        // service stack has its roles (`release_files.rs`).
        let mut package_deps = [vec![build, same, index.key, targets], pushes.clone()].concat();
        package_deps.extend(index.workloads.iter().map(|steps| steps.service));
        package_deps.extend(index.artifacts.iter().map(|(_, step)| *step));
        package_deps.sort();
        plan.add(Step {
            id: "release-package".into(),
            account: tools.account.clone(),
            region: tools.region.clone(),
            deps: package_deps,
            kind: StepKind::Action(Action::PackageRelease {
                images: pushes.iter().map(|push| Param::output(*push, "ImageUri")).collect(),
                digest: Param::output(same, "Digest"),
                version: Param::output(build, "Tag"),
            }),
        });
        if inputs.local {
            index.local_site = Some(plan.add(Step {
                id: "local-site".into(),
                account: tools.account.clone(),
                region: tools.region.clone(),
                deps: [vec![build, same], service_ready.clone()].concat(),
                kind: StepKind::Action(Action::LocalSite {
                    reference: Param::output(build, "Reference"),
                    tag: Param::output(build, "Tag"),
                }),
            }));
        }
    }

    // The tools account's source, build and pipeline.
    let provider = match config.source.provider {
        SourceProvider::CodeCommit => "codecommit",
        SourceProvider::CodeConnections => "codeconnections",
    };
    let connection_arn = Param::value(config.source.connection_arn.clone().unwrap_or_default());
    let repository_id = Param::value(config.source.full_repository_id.clone().unwrap_or_default());
    let source = plan.add(stack_step(
        config,
        &tools.region,
        "source",
        "cfn/tools/source.yaml",
        &tools.account,
        &tools.region,
        vec![],
        vec![
            ("RepositoryName".into(), Param::value(&config.source.repository)),
            ("Provider".into(), Param::value(provider)),
            ("ConnectionArn".into(), connection_arn.clone()),
            ("FullRepositoryId".into(), repository_id.clone()),
        ],
    ));
    let key_arns: Vec<Param> = regions.iter().map(|region| key_arn_in(region).1).collect();
    let key_steps: Vec<StepId> = index.key_arn_by_region.iter().map(|(_, step)| *step).collect();
    let bucket_arns = Param::List(
        regions.iter().map(|region| Param::value(format!("arn:aws:s3:::{}", config.bucket_name(region)))).collect(),
    );
    let ecr_arns = Param::List(
        config
            .workloads
            .iter()
            .map(|workload| {
                Param::value(format!("arn:aws:ecr:{}:{}:repository/{}", workload.region, workload.account, config.app))
            })
            .collect(),
    );
    let build = plan.add(stack_step(
        config,
        &tools.region,
        "build",
        "cfn/tools/build.yaml",
        &tools.account,
        &tools.region,
        [key_steps.clone(), vec![source]].concat(),
        vec![
            ("ProjectName".into(), Param::value(config.build_role_name())),
            ("ValidateProjectName".into(), Param::value(config.validate_project_name())),
            ("BuildRoleName".into(), Param::value(config.build_role_name())),
            ("KeyArn".into(), Param::output(index.key, "KeyArn")),
            ("KeyArns".into(), Param::List(key_arns.clone())),
            ("ArtifactBucket".into(), Param::value(config.bucket_name(&tools.region))),
            ("ArtifactBucketArns".into(), bucket_arns),
            ("RepositoryName".into(), Param::value(&config.source.repository)),
            ("EcrRepositoryArns".into(), ecr_arns),
        ],
    ));
    let mut pipeline_parameters = vec![
        ("PipelineName".to_string(), Param::value(&config.app)),
        ("PipelineRoleName".into(), Param::value(config.pipeline_role_name())),
        ("RepositoryName".into(), Param::value(&config.source.repository)),
        ("BranchName".into(), Param::value(&config.gitflow.main_branch)),
        ("BuildProjectName".into(), Param::value(config.build_role_name())),
        ("Provider".into(), Param::value(provider)),
        ("ConnectionArn".into(), connection_arn),
        ("FullRepositoryId".into(), repository_id),
    ];
    for (number, region) in regions.iter().enumerate() {
        let number = number + 1;
        pipeline_parameters.push((format!("Region{number}Name"), Param::value(region)));
        pipeline_parameters.push((format!("Region{number}Bucket"), Param::value(config.bucket_name(region))));
        pipeline_parameters.push((format!("Region{number}KeyArn"), key_arn_in(region).1));
    }
    for (number, workload) in config.workloads.iter().enumerate() {
        let number = number + 1;
        pipeline_parameters.push((format!("Workload{number}Name"), Param::value(&workload.name)));
        pipeline_parameters.push((format!("Workload{number}Region"), Param::value(&workload.region)));
        pipeline_parameters.push((format!("Workload{number}RoleArn"), Param::value(config.release_role_arn(workload))));
        pipeline_parameters.push((format!("Workload{number}Application"), Param::value(&config.app)));
        pipeline_parameters.push((format!("Workload{number}DeploymentGroup"), Param::value(&config.app)));
    }
    let (expansion_regions, waves) = template::pipeline_shape(config);
    let expansion = Expansion { regions: expansion_regions, waves };
    let mut pipeline_deps = [key_steps, vec![source, build]].concat();
    pipeline_deps.extend(index.artifacts.iter().map(|(_, step)| *step));
    pipeline_deps.extend(index.workloads.iter().map(|steps| steps.release));
    let mut pipeline_step = stack_step(
        config,
        &tools.region,
        "pipeline",
        "cfn/tools/pipeline.yaml",
        &tools.account,
        &tools.region,
        pipeline_deps,
        pipeline_parameters,
    );
    if let StepKind::Stack(stack) = &mut pipeline_step.kind {
        stack.expansion = Some(expansion);
    }
    index.pipeline = plan.add(pipeline_step);

    // The gitflow Lambda: built here, uploaded to the tools region's bucket, deployed with the
    // rules that open pull requests and start the pipeline on a merge to main.
    let tools_artifacts =
        index.artifacts.iter().find(|(region, _)| *region == tools.region).expect("the tools region has a bucket").1;
    let build_lambda = plan.add(Step {
        id: "gitflow-lambda-build".into(),
        account: tools.account.clone(),
        region: tools.region.clone(),
        deps: vec![],
        kind: StepKind::Action(Action::BuildLambda),
    });
    let upload_lambda = plan.add(Step {
        id: "gitflow-lambda-upload".into(),
        account: tools.account.clone(),
        region: tools.region.clone(),
        deps: vec![build_lambda, tools_artifacts, index.key],
        kind: StepKind::Action(Action::Upload {
            file: Param::output(build_lambda, "ZipPath"),
            bucket: Param::value(config.bucket_name(&tools.region)),
            object_key: Param::output(build_lambda, "ObjectKey"),
            kms_key_arn: Param::output(index.key, "KeyArn"),
        }),
    });
    plan.add(stack_step(
        config,
        &tools.region,
        "gitflow",
        "cfn/tools/gitflow.yaml",
        &tools.account,
        &tools.region,
        vec![upload_lambda, index.key, source, build, index.pipeline],
        vec![
            ("FunctionName".into(), Param::value(config.gitflow_role_name())),
            ("RoleName".into(), Param::value(config.gitflow_role_name())),
            ("CodeBucket".into(), Param::output(upload_lambda, "Bucket")),
            ("CodeKey".into(), Param::output(upload_lambda, "Key")),
            ("KeyArn".into(), Param::output(index.key, "KeyArn")),
            ("RepositoryName".into(), Param::value(&config.source.repository)),
            ("DevelopBranch".into(), Param::value(&config.gitflow.develop_branch)),
            ("MainBranch".into(), Param::value(&config.gitflow.main_branch)),
            ("PipelineName".into(), Param::value(&config.app)),
            ("ValidateProjectName".into(), Param::value(config.validate_project_name())),
            ("AutoMerge".into(), Param::value(config.gitflow.auto_merge.to_string())),
            ("MergeStrategy".into(), Param::value(config.gitflow.merge_strategy.as_str())),
        ],
    ));
    (plan, index)
}

/// A stack step; its id is `<stack name>@<at>` where `at` is the workload or the region.
#[allow(clippy::too_many_arguments)]
fn stack_step(
    config: &Config,
    at: &str,
    stack: &str,
    template: &str,
    account: &str,
    region: &str,
    deps: Vec<StepId>,
    parameters: Vec<(String, Param)>,
) -> Step {
    let name = config.stack_name(stack);
    let mut deps = deps;
    deps.sort();
    deps.dedup();
    // An input whose change goes out with a release keeps the deployed stack's value
    // (UsePreviousValue); its value here is used only when the stack is created.
    let parameters = parameters
        .into_iter()
        .map(|(parameter, value)| {
            let keep = changes::route(stack, &parameter) == Route::Release && !matches!(value, Param::KeepPrevious(_));
            (parameter, if keep { Param::KeepPrevious(Box::new(value)) } else { value })
        })
        .collect();
    Step {
        id: format!("{name}@{at}"),
        account: account.to_string(),
        region: region.to_string(),
        deps,
        kind: StepKind::Stack(StackStep {
            name,
            template: PathBuf::from(template),
            expansion: None,
            parameters,
            emulator_gap: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project;

    fn original() -> Config {
        Config::load(&project::root().join("deploy.toml")).expect("the repo's deploy.toml loads")
    }

    #[test]
    fn the_plan_fits_every_template() {
        let config = original();
        let (plan, _) = plan(&config, &Inputs { image: ImageSource::Given("img@sha256:00".into()), local: false });
        crate::engine::prepare(&plan, &project::root()).unwrap();
    }

    #[test]
    fn every_template_is_deployed_by_the_plan() {
        let config = original();
        let (plan, _) = plan(&config, &Inputs { image: ImageSource::Given("img@sha256:00".into()), local: false });
        let deployed: std::collections::BTreeSet<String> =
            plan.stacks().map(|(_, _, stack)| stack.template.display().to_string()).collect();
        for folder in ["cfn/tools", "cfn/workload"] {
            for entry in std::fs::read_dir(project::root().join(folder)).unwrap() {
                let name = format!("{folder}/{}", entry.unwrap().file_name().to_string_lossy());
                assert!(deployed.contains(&name), "{name} is not deployed by the plan");
            }
        }
    }

    #[test]
    fn stacks_land_in_their_accounts_and_regions() {
        let config = original();
        let (plan, index) = plan(&config, &Inputs { image: ImageSource::Given("img@sha256:00".into()), local: false });
        let placed: Vec<(String, String, String)> = plan
            .stacks()
            .map(|(_, step, stack)| (stack.name.clone(), step.account.clone(), step.region.clone()))
            .collect();
        for expect in [
            ("web-key", "111111111111", "ap-south-1"),
            ("web-key-replica", "111111111111", "eu-central-1"),
            ("web-key-replica", "111111111111", "us-east-1"),
            ("web-artifacts", "111111111111", "ap-south-1"),
            ("web-artifacts", "111111111111", "eu-central-1"),
            ("web-artifacts", "111111111111", "us-east-1"),
            ("web-network", "222222222222", "ap-south-1"),
            ("web-service", "333333333333", "eu-central-1"),
            ("web-release", "444444444444", "us-east-1"),
            ("web-pipeline", "111111111111", "ap-south-1"),
        ] {
            assert!(
                placed
                    .iter()
                    .any(|(name, account, region)| (name.as_str(), account.as_str(), region.as_str()) == expect),
                "{expect:?} missing from {placed:?}"
            );
        }
        assert!(!placed.iter().any(|(name, _, region)| name == "web-key-replica" && region == "ap-south-1"));
        // The release stack in eu-central-1 decrypts with eu-central-1's key, derived from the primary's id.
        let StepKind::Stack(release) = &plan.steps[index.workloads[1].release].kind else { panic!() };
        let key = &release.parameters.iter().find(|(name, _)| name == "ArtifactKeyArn").unwrap().1;
        let check = index.key_arn_by_region.iter().find(|(region, _)| region == "eu-central-1").unwrap().1;
        assert_eq!(key, &Param::output(check, "KeyArn"));
    }

    /// Every parameter of the service stack has its route written down (CODE_DEPLOY constrains that
    /// stack most); release-route inputs keep the deployed value, every other is sent as it is;
    /// and each config field in the table is the value the plan sends.
    #[test]
    fn every_service_input_has_its_route_and_the_plan_follows_it() {
        use crate::config::changes::{INPUTS, Source};
        let config = original();
        let (plan, _) = plan(&config, &Inputs { image: ImageSource::Given("img@sha256:00".into()), local: false });
        let short = |name: &str| name.strip_prefix("web-").unwrap_or(name).to_string();
        for (_, step, stack) in plan.stacks() {
            let stack_short = short(&stack.name);
            for (parameter, value) in &stack.parameters {
                let listed = changes::input(&stack_short, parameter);
                if stack_short == "service" {
                    assert!(listed.is_some(), "{}: {parameter} has no route in config/changes.rs", step.id);
                }
                let kept = matches!(value, Param::KeepPrevious(_));
                assert_eq!(kept, changes::route(&stack_short, parameter) == Route::Release, "{}: {parameter}", step.id);
                let Some(Source::Field { value: field_value, .. }) = listed.map(|input| input.source) else { continue };
                let sent = value.resolve(&plan, &Default::default()).expect("a config value resolves alone");
                assert!(sent.contains(&field_value(&config)), "{}: {parameter} is {sent}", step.id);
            }
        }
        // Every entry names a parameter its stack's template declares.
        for input in INPUTS {
            let template = template::Template::load(&project::root().join(format!(
                "cfn/{}/{}.yaml",
                if input.stack == "artifacts" { "tools" } else { "workload" },
                input.stack
            )))
            .unwrap();
            assert!(
                template.parameters().iter().any(|parameter| parameter.name == input.parameter),
                "{}.{} is not a parameter of its template",
                input.stack,
                input.parameter
            );
        }
    }
}
