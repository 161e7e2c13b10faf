//! What a change of `deploy.toml` (or of the image) does once the stacks exist: every stack input
//! that matters, with the way a change of it may reach AWS, written down once ([`INPUTS`]).
//!
//! The service runs under the `CODE_DEPLOY` deployment controller. For such a service ECS's
//! UpdateService takes only "the desired count, deployment configuration, health check grace
//! period, task placement constraints and strategies, enable ECS managed tags option, and
//! propagate tags"; "if the network configuration, platform version, task definition, or load
//! balancer need to be updated, create a new CodeDeploy deployment" ([`UPDATE_SERVICE`]), and
//! CloudFormation does not support updating the task definition, load balancers or network
//! configuration of a `CODE_DEPLOY` service ([`ECS_SERVICE`]). A stack update that tries is
//! refused by AWS and rolled back. So each input is on one of three routes ([`Route`]):
//! - **in place**: CloudFormation updates the resource without replacing it; `deploy` does it;
//! - **release**: the input shapes the task definition (cpu, memory, the image). The stack keeps
//!   the value it was created with (CloudFormation's UsePreviousValue: the plan marks these
//!   parameters [`Route::Release`] and the topology passes them as "keep previous"), and the
//!   next `cargo xtask release` renders `taskdef.json` from the config's current value, so the
//!   change goes out as a new task definition through CodeDeploy;
//! - **frozen**: no update path exists (the container port reaches the target groups, the tasks'
//!   security group and the service's load balancer; a bucket name replaces the bucket). `plan`
//!   and `deploy` refuse such a change before anything is changed, naming the field, the deployed
//!   and the requested value, and the fix; the release targets carry the frozen values, so
//!   `package` refuses a release the deployed stacks could not serve.
//!
//! Stack inputs not listed here are in place (CloudFormation's ordinary update), or are names
//! derived from `app` in stacks not listed: a new `app` names new stacks (`<app>-service`), so no
//! deployed stack ever sees a changed name. After the first release CodeDeploy has moved the
//! service to the other target group, so the service stack's `BlueTargetGroupArn` no longer
//! describes it: one more reason it must never change through CloudFormation.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::Config;
use crate::output::Printer;

/// ECS's UpdateService: what a `CODE_DEPLOY` service takes in place.
pub const UPDATE_SERVICE: &str = "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_UpdateService.html";
/// AWS::ECS::Service in CloudFormation: no TaskDefinition, LoadBalancers or NetworkConfiguration
/// update of a `CODE_DEPLOY` service; ServiceName, LaunchType, DeploymentController, Role:
/// "Update requires: Replacement".
pub const ECS_SERVICE: &str =
    "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-ecs-service.html";
/// AWS::ECS::TaskDefinition: Cpu, Memory, ContainerDefinitions: "Update requires: Replacement".
const TASK_DEFINITION: &str =
    "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-ecs-taskdefinition.html";
/// AWS::ElasticLoadBalancingV2::TargetGroup: Port, VpcId, Name: "Update requires: Replacement".
const TARGET_GROUP: &str = "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-elasticloadbalancingv2-targetgroup.html";
/// AWS::S3::Bucket: BucketName: "Update requires: Replacement".
const BUCKET: &str = "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-s3-bucket.html";
/// AWS::Logs::LogGroup: RetentionInDays: "Update requires: No interruption".
const LOG_GROUP: &str =
    "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-logs-loggroup.html";
/// AWS::CodeDeploy::DeploymentGroup: DeploymentConfigName, BlueGreenDeploymentConfiguration:
/// "Update requires: No interruption".
const DEPLOYMENT_GROUP: &str =
    "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-codedeploy-deploymentgroup.html";
/// AWS::EC2::SecurityGroup: VpcId: "Update requires: Replacement"; SecurityGroupIngress: "No interruption".
const SECURITY_GROUP: &str =
    "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-ec2-securitygroup.html";

/// How a change of one input reaches a stack that already exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Route {
    /// CloudFormation updates the resource in place: `deploy` does it.
    InPlace,
    /// The stack keeps its deployed value; the next `cargo xtask release` rolls the new value out
    /// in a new task definition through CodeDeploy.
    Release,
    /// No update path: AWS would refuse the update, or replace what must not be replaced. Refused
    /// before any change, with the fix.
    Frozen,
}

impl Route {
    /// What a change does once the stacks exist, for `config check`.
    pub fn describe(self) -> &'static str {
        match self {
            Route::InPlace => "is deployed in place",
            Route::Release => "goes out with the next release (a new task definition through CodeDeploy)",
            Route::Frozen => "is refused by plan and deploy (frozen: it needs new stacks)",
        }
    }
}

/// Where an input's value comes from.
#[derive(Clone, Copy, Debug)]
pub enum Source {
    /// A field of deploy.toml: its section, its key, and its value in a config.
    Field { section: &'static str, key: &'static str, value: fn(&Config) -> String },
    /// The image: `deploy --image`, or the one the deploy builds and pushes.
    Image,
    /// A name derived from `app`, as the stack's own name is.
    AppName,
    /// An output of another stack of the same workload.
    Output { stack: &'static str, output: &'static str },
}

impl Source {
    /// As the user knows it: `[service] cpu`, `the image`, `app`, `the alb stack's BlueTargetGroupArn`.
    pub fn name(&self) -> String {
        match self {
            Source::Field { section, key, .. } => format!("[{section}] {key}"),
            Source::Image => "the image".into(),
            Source::AppName => "app".into(),
            Source::Output { stack, output } => format!("the {stack} stack's {output}"),
        }
    }
}

/// One parameter of one stack (`stack` as in [`Config::stack_name`]: `service`, `alb`).
#[derive(Debug)]
pub struct Input {
    pub stack: &'static str,
    pub parameter: &'static str,
    pub source: Source,
    pub route: Route,
    /// Why the route is what it is, after AWS's documentation.
    pub why: &'static str,
    /// AWS's page that says so.
    pub reference: &'static str,
    /// For a frozen input: the fix, with `{deployed}` and `{requested}` filled in.
    pub fix: &'static str,
}

const FIX_PORT: &str = "set `container_port = {deployed}` under [service] again (nothing was changed). Serving on \
     {requested} needs the workload's alb, service and release stacks created anew, and there is no command that \
     replaces one workload's stacks: `cargo xtask destroy` (every stack of deploy.toml) and then `cargo xtask deploy`";
const FIX_BUCKET: &str = "set `bucket_prefix` under [names] back to the prefix of {deployed}, or remove the line if \
     that is the default (nothing was changed). New buckets mean leaving every release's artifacts and history \
     behind: `cargo xtask destroy --force` (empties and removes every stack) and then `cargo xtask deploy`";
const FIX_OUTPUT: &str = "the value changed outside this xtask (deployed {deployed}, now {requested}): put the \
     stack that outputs it back, or `cargo xtask destroy` and `cargo xtask deploy` to start over";
const FIX_NAME: &str = "a name derived from `app` cannot change in a deployed stack: set `app` back, or \
     `cargo xtask destroy` and `cargo xtask deploy`";

/// Every stack input whose route matters; the topology, `plan`, `deploy`, `config check` and the
/// release targets all read it from here.
pub static INPUTS: &[Input] = &[
    // The service stack: every parameter, since CODE_DEPLOY constrains this stack most.
    Input {
        stack: "service",
        parameter: "ContainerPort",
        source: Source::Field {
            section: "service",
            key: "container_port",
            value: |config| config.service.container_port.to_string(),
        },
        route: Route::Frozen,
        why: "it is in the task definition, the service's load balancer and the tasks' security group; a \
              CODE_DEPLOY service takes a new task definition or load balancer only through a CodeDeploy \
              deployment, and a deployment changes neither the security group nor the target groups' port",
        reference: ECS_SERVICE,
        fix: FIX_PORT,
    },
    Input {
        stack: "service",
        parameter: "Cpu",
        source: Source::Field { section: "service", key: "cpu", value: |config| config.service.cpu.to_string() },
        route: Route::Release,
        why: "a task definition's Cpu cannot change in place (a new task definition replaces it), and \
              CloudFormation cannot give a CODE_DEPLOY service a new task definition: a release registers one",
        reference: TASK_DEFINITION,
        fix: "",
    },
    Input {
        stack: "service",
        parameter: "Memory",
        source: Source::Field { section: "service", key: "memory", value: |config| config.service.memory.to_string() },
        route: Route::Release,
        why: "a task definition's Memory cannot change in place (a new task definition replaces it), and \
              CloudFormation cannot give a CODE_DEPLOY service a new task definition: a release registers one",
        reference: TASK_DEFINITION,
        fix: "",
    },
    Input {
        stack: "service",
        parameter: "ImageUri",
        source: Source::Image,
        route: Route::Release,
        why: "the image is in the task definition: every release pins its own by digest",
        reference: UPDATE_SERVICE,
        fix: "",
    },
    Input {
        stack: "service",
        parameter: "DesiredCount",
        source: Source::Field {
            section: "service",
            key: "desired_count",
            value: |config| config.service.desired_count.to_string(),
        },
        route: Route::InPlace,
        why: "UpdateService takes the desired count of a CODE_DEPLOY service",
        reference: UPDATE_SERVICE,
        fix: "",
    },
    Input {
        stack: "service",
        parameter: "LogRetentionDays",
        source: Source::Field {
            section: "service",
            key: "log_retention_days",
            value: |config| config.service.log_retention_days.to_string(),
        },
        route: Route::InPlace,
        why: "a log group's retention changes without interruption",
        reference: LOG_GROUP,
        fix: "",
    },
    Input {
        stack: "service",
        parameter: "ClusterName",
        source: Source::AppName,
        route: Route::Frozen,
        why: "a new cluster name replaces the cluster, and the service with it",
        reference: ECS_SERVICE,
        fix: FIX_NAME,
    },
    Input {
        stack: "service",
        parameter: "ServiceName",
        source: Source::AppName,
        route: Route::Frozen,
        why: "a service's name cannot change in place (Update requires: Replacement)",
        reference: ECS_SERVICE,
        fix: FIX_NAME,
    },
    Input {
        stack: "service",
        parameter: "ContainerName",
        source: Source::AppName,
        route: Route::Frozen,
        why: "it is in the task definition and the service's load balancer, which a CODE_DEPLOY service takes \
              only through a CodeDeploy deployment",
        reference: ECS_SERVICE,
        fix: FIX_NAME,
    },
    Input {
        stack: "service",
        parameter: "VpcId",
        source: Source::Output { stack: "network", output: "VpcId" },
        route: Route::Frozen,
        why: "a new VPC replaces the tasks' security group, so the service's network configuration would change, \
              which a CODE_DEPLOY service takes only through a CodeDeploy deployment",
        reference: SECURITY_GROUP,
        fix: FIX_OUTPUT,
    },
    Input {
        stack: "service",
        parameter: "PrivateSubnet1",
        source: Source::Output { stack: "network", output: "PrivateSubnet1" },
        route: Route::Frozen,
        why: "the subnets are the service's network configuration, which a CODE_DEPLOY service takes only \
              through a CodeDeploy deployment",
        reference: ECS_SERVICE,
        fix: FIX_OUTPUT,
    },
    Input {
        stack: "service",
        parameter: "PrivateSubnet2",
        source: Source::Output { stack: "network", output: "PrivateSubnet2" },
        route: Route::Frozen,
        why: "the subnets are the service's network configuration, which a CODE_DEPLOY service takes only \
              through a CodeDeploy deployment",
        reference: ECS_SERVICE,
        fix: FIX_OUTPUT,
    },
    Input {
        stack: "service",
        parameter: "BlueTargetGroupArn",
        source: Source::Output { stack: "alb", output: "BlueTargetGroupArn" },
        route: Route::Frozen,
        why: "it is the service's load balancer, which a CODE_DEPLOY service takes only through a CodeDeploy \
              deployment; after the first release CodeDeploy has moved the service to the other target group anyway",
        reference: ECS_SERVICE,
        fix: FIX_OUTPUT,
    },
    Input {
        stack: "service",
        parameter: "LoadBalancerSecurityGroup",
        source: Source::Output { stack: "alb", output: "LoadBalancerSecurityGroup" },
        route: Route::InPlace,
        why: "only an ingress rule of the tasks' security group names it, and ingress rules change without interruption",
        reference: SECURITY_GROUP,
        fix: "",
    },
    Input {
        stack: "service",
        parameter: "RepositoryArn",
        source: Source::Output { stack: "ecr", output: "RepositoryArn" },
        route: Route::InPlace,
        why: "only the execution role's policy names it, and a role's inline policy changes without interruption",
        reference: ECS_SERVICE,
        fix: "",
    },
    // The load balancer: the target groups take the container port. A new Port replaces a target
    // group, and of a named resource CloudFormation says "If you specify a name, you cannot
    // perform updates that require replacement of this resource"
    // (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-name.html).
    Input {
        stack: "alb",
        parameter: "ContainerPort",
        source: Source::Field {
            section: "service",
            key: "container_port",
            value: |config| config.service.container_port.to_string(),
        },
        route: Route::Frozen,
        why: "it is the target groups' port: a new port replaces a target group, and CloudFormation cannot replace \
              a resource with a fixed name (`<app>-blue`, `<app>-green`)",
        reference: TARGET_GROUP,
        fix: FIX_PORT,
    },
    // The release wiring: both settings change the deployment group in place.
    Input {
        stack: "release",
        parameter: "DeploymentConfigName",
        source: Source::Field {
            section: "release",
            key: "deployment_config",
            value: |config| config.release.deployment_config.clone(),
        },
        route: Route::InPlace,
        why: "a deployment group's deployment config changes without interruption",
        reference: DEPLOYMENT_GROUP,
        fix: "",
    },
    Input {
        stack: "release",
        parameter: "TerminationWaitMinutes",
        source: Source::Field {
            section: "release",
            key: "termination_wait_minutes",
            value: |config| config.release.termination_wait_minutes.to_string(),
        },
        route: Route::InPlace,
        why: "a deployment group's blue/green settings change without interruption",
        reference: DEPLOYMENT_GROUP,
        fix: "",
    },
    // The artifact buckets hold every release's artifacts, the manifests, each workload's history
    // (what `rollback` reads) and the release targets: a new name would replace a bucket, and
    // CloudFormation cannot delete the old one while it holds objects.
    Input {
        stack: "artifacts",
        parameter: "BucketName",
        source: Source::Field {
            section: "names",
            key: "bucket_prefix",
            value: |config| config.names.bucket_prefix.clone(),
        },
        route: Route::Frozen,
        why: "a new name replaces the bucket, which holds every release's artifacts and history, and a bucket that \
              holds objects cannot be deleted",
        reference: BUCKET,
        fix: FIX_BUCKET,
    },
    Input {
        stack: "artifacts",
        parameter: "LogBucketName",
        source: Source::Field {
            section: "names",
            key: "bucket_prefix",
            value: |config| config.names.bucket_prefix.clone(),
        },
        route: Route::Frozen,
        why: "a new name replaces the access-log bucket, and a bucket that holds objects cannot be deleted",
        reference: BUCKET,
        fix: FIX_BUCKET,
    },
];

/// The entry for `parameter` of `stack`, if the table has one.
pub fn input(stack: &str, parameter: &str) -> Option<&'static Input> {
    INPUTS.iter().find(|input| input.stack == stack && input.parameter == parameter)
}

/// The route of `parameter` of `stack`: in place unless the table says otherwise.
pub fn route(stack: &str, parameter: &str) -> Route {
    input(stack, parameter).map_or(Route::InPlace, |input| input.route)
}

/// How a change of `parameter` of `stack` from `deployed` to `requested` must go, when it cannot
/// go in place; `None` when nothing needs routing: the same value, a value not known (an empty
/// request: `plan` does not know the image), a parameter the stack did not have, or an in-place input.
pub fn decide(stack: &str, parameter: &str, deployed: Option<&str>, requested: &str) -> Option<Route> {
    let deployed = deployed?;
    if requested.is_empty() || deployed.trim() == requested.trim() {
        return None;
    }
    match route(stack, parameter) {
        Route::InPlace => None,
        route => Some(route),
    }
}

/// Every config field the table names, once, with its strictest route (a field may feed several
/// stacks), in table order.
pub fn fields() -> Vec<(&'static Input, Route)> {
    let mut found: Vec<(&'static Input, Route)> = Vec::new();
    for input in INPUTS {
        let Source::Field { section, key, .. } = input.source else { continue };
        let same = |(other, _): &&mut (&'static Input, Route)| matches!(other.source, Source::Field { section: s, key: k, .. } if s == section && k == key);
        match found.iter_mut().find(same) {
            Some(entry) => entry.1 = entry.1.max(input.route),
            None => found.push((input, input.route)),
        }
    }
    found
}

/// The frozen fields of `config` with their values (`[service] container_port` -> `8080`): what
/// the deploy records beside the release targets, so that a release can tell a changed one.
pub fn frozen_values(config: &Config) -> BTreeMap<String, String> {
    fields()
        .into_iter()
        .filter(|(_, route)| *route == Route::Frozen)
        .filter_map(|(input, _)| match input.source {
            Source::Field { value, .. } => Some((input.source.name(), value(config))),
            _ => None,
        })
        .collect()
}

/// A deployed stack's input whose requested value differs, on a route other than in place.
#[derive(Clone, Debug, Serialize)]
pub struct Difference {
    /// The plan's step (`web-service@india`), its account and region.
    pub step: String,
    pub account: String,
    pub region: String,
    /// The stack's name and the parameter.
    pub stack: String,
    pub parameter: String,
    /// What the user changed: `[service] cpu`, `the image`, ...
    pub field: String,
    pub deployed: String,
    pub requested: String,
    pub route: Route,
    #[serde(skip)]
    pub input: &'static Input,
}

impl Difference {
    /// The workload or region the step is for (`india` of `web-service@india`).
    fn at(&self) -> &str {
        self.step.rsplit_once('@').map_or(self.step.as_str(), |(_, at)| at)
    }

    /// For a release-route change: what happens to it.
    pub fn describe_release(&self) -> String {
        format!(
            "{} ({}/{}): {} {} -> {} goes out with the next `cargo xtask release` (a new task definition through \
             CodeDeploy); {} keeps {}, since CloudFormation cannot change the task definition of a CODE_DEPLOY service",
            self.at(),
            self.account,
            self.region,
            self.field,
            self.deployed,
            self.requested,
            self.stack,
            self.deployed,
        )
    }
}

/// Frozen changes, one per field and place (a field may feed several stacks there).
fn refusals(differences: &[Difference]) -> Vec<(Vec<&str>, &Difference)> {
    let mut grouped: Vec<(Vec<&str>, &Difference)> = Vec::new();
    for difference in differences.iter().filter(|difference| difference.route == Route::Frozen) {
        let same = |(_, first): &&mut (Vec<&str>, &Difference)| {
            first.field == difference.field
                && first.account == difference.account
                && first.region == difference.region
                && first.at() == difference.at()
        };
        match grouped.iter_mut().find(same) {
            Some((stacks, _)) if !stacks.contains(&difference.stack.as_str()) => stacks.push(&difference.stack),
            Some(_) => {}
            None => grouped.push((vec![&difference.stack], difference)),
        }
    }
    grouped
}

/// The error lines of the frozen changes: what was asked, what is deployed, why AWS cannot, and
/// the fix. Empty when there is none.
pub fn refusal_messages(differences: &[Difference]) -> Vec<String> {
    refusals(differences)
        .into_iter()
        .map(|(stacks, difference)| {
            let asked = match difference.input.source {
                Source::Field { .. } => format!("`{}` is {} in deploy.toml", difference.field, difference.requested),
                _ => format!("{} is now {}", difference.field, difference.requested),
            };
            let fix = difference
                .input
                .fix
                .replace("{deployed}", &difference.deployed)
                .replace("{requested}", &difference.requested);
            format!(
                "{} ({}/{}): {asked}, but {} {} created with {}, and AWS cannot change it in place: {} (see {})\n  help: {fix}",
                difference.at(),
                difference.account,
                difference.region,
                stacks.join(" and "),
                if stacks.len() == 1 { "was" } else { "were" },
                difference.deployed,
                difference.input.why,
                difference.input.reference,
            )
        })
        .collect()
}

/// Prints the frozen changes as errors with a count line. Returns whether anything was refused:
/// the caller then stops before changing anything.
pub fn refuse(printer: &Printer, differences: &[Difference]) -> bool {
    let refused = refusal_messages(differences);
    if refused.is_empty() {
        return false;
    }
    for message in &refused {
        printer.error(message);
    }
    let count = refused.len();
    let plural = if count == 1 { "" } else { "s" };
    printer.error(format!(
        "{count} change{plural} that AWS would refuse on deployed stacks; nothing was changed: fix and run again"
    ));
    true
}

/// The release-route changes, each as a note.
pub fn note_releases(printer: &Printer, differences: &[Difference]) {
    for difference in differences.iter().filter(|difference| difference.route == Route::Release) {
        printer.note(difference.describe_release());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Which way a change goes, from the table.
    #[test]
    fn each_change_takes_its_route() {
        let check = |stack: &str, parameter: &str, deployed: Option<&str>, requested: &str, expect: Option<Route>| {
            assert_eq!(decide(stack, parameter, deployed, requested), expect, "{stack}.{parameter}");
        };
        check("service", "Cpu", Some("256"), "512", Some(Route::Release));
        check("service", "Memory", Some("512"), "1024", Some(Route::Release));
        check("service", "ImageUri", Some("web@sha256:1"), "web@sha256:2", Some(Route::Release));
        check("service", "ContainerPort", Some("8080"), "9090", Some(Route::Frozen));
        check("alb", "ContainerPort", Some("8080"), "9090", Some(Route::Frozen));
        check("artifacts", "BucketName", Some("web-artifacts-1-r"), "shop-1-r", Some(Route::Frozen));
        check("service", "BlueTargetGroupArn", Some("arn:a"), "arn:b", Some(Route::Frozen));
        // Nothing to route: in place, unchanged, unknown, or new to the stack.
        check("service", "DesiredCount", Some("2"), "3", None);
        check("release", "DeploymentConfigName", Some("A"), "B", None);
        check("network", "VpcCidr", Some("10.0.0.0/16"), "10.1.0.0/16", None);
        check("service", "Cpu", Some("256"), "256", None);
        check("service", "ImageUri", Some("web@sha256:1"), "", None);
        check("service", "Cpu", None, "512", None);
    }

    #[test]
    fn every_frozen_input_has_a_fix_and_every_entry_a_reference() {
        for input in INPUTS {
            assert!(input.reference.starts_with("https://docs.aws.amazon.com/"), "{}.{}", input.stack, input.parameter);
            assert!(!input.why.is_empty(), "{}.{}", input.stack, input.parameter);
            assert_eq!(input.route == Route::Frozen, !input.fix.is_empty(), "{}.{}", input.stack, input.parameter);
            let twice = INPUTS.iter().filter(|other| (other.stack, other.parameter) == (input.stack, input.parameter));
            assert_eq!(twice.count(), 1, "{}.{} is listed once", input.stack, input.parameter);
        }
    }

    #[test]
    fn fields_take_their_strictest_route() {
        let routes: Vec<(String, Route)> =
            fields().into_iter().map(|(input, route)| (input.source.name(), route)).collect();
        assert_eq!(
            routes,
            [
                ("[service] container_port".to_string(), Route::Frozen),
                ("[service] cpu".into(), Route::Release),
                ("[service] memory".into(), Route::Release),
                ("[service] desired_count".into(), Route::InPlace),
                ("[service] log_retention_days".into(), Route::InPlace),
                ("[release] deployment_config".into(), Route::InPlace),
                ("[release] termination_wait_minutes".into(), Route::InPlace),
                ("[names] bucket_prefix".into(), Route::Frozen),
            ]
        );
    }

    fn difference(step: &str, parameter: &str, deployed: &str, requested: &str) -> Difference {
        let stack = step.split('@').next().unwrap_or_default().trim_start_matches("web-");
        let input = input(stack, parameter).expect("a listed input");
        Difference {
            step: step.into(),
            account: "222222222222".into(),
            region: "ap-south-1".into(),
            stack: format!("web-{stack}"),
            parameter: parameter.into(),
            field: input.source.name(),
            deployed: deployed.into(),
            requested: requested.into(),
            route: input.route,
            input,
        }
    }

    /// One refusal per field and workload, naming both stacks, the values and the fix; release
    /// changes are not refusals.
    #[test]
    fn a_refusal_names_the_field_the_values_and_the_fix() {
        let differences = [
            difference("web-alb@india", "ContainerPort", "8080", "9090"),
            difference("web-service@india", "ContainerPort", "8080", "9090"),
            difference("web-service@india", "Cpu", "256", "512"),
        ];
        let messages = refusal_messages(&differences);
        assert_eq!(messages.len(), 1, "{messages:#?}");
        let message = &messages[0];
        for expected in [
            "india (222222222222/ap-south-1): `[service] container_port` is 9090 in deploy.toml",
            "but web-alb and web-service were created with 8080",
            "help: set `container_port = 8080` under [service] again",
            "`cargo xtask destroy`",
            "target groups' port",
        ] {
            assert!(message.contains(expected), "{expected:?} in {message}");
        }
        let release = differences[2].describe_release();
        assert!(
            release.contains(
                "india (222222222222/ap-south-1): [service] cpu 256 -> 512 goes out with the next `cargo xtask release`"
            ),
            "{release}"
        );
        assert!(release.contains("web-service keeps 256"), "{release}");
        assert!(refusal_messages(&differences[2..]).is_empty());
    }

    #[test]
    fn frozen_values_are_the_frozen_fields_of_the_config() {
        let config = Config::load(&crate::project::root().join("deploy.toml")).expect("the repo's deploy.toml");
        let values = frozen_values(&config);
        assert_eq!(
            values,
            BTreeMap::from([
                ("[names] bucket_prefix".to_string(), "web-artifacts".to_string()),
                ("[service] container_port".to_string(), "8080".to_string()),
            ])
        );
    }
}
