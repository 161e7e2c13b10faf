//! What a stack left behind. Before a stack is deleted, its resources are read
//! (DescribeStackResources: each one's type and physical id) with the DeletionPolicy its template
//! gives each; after the deletion, every resource of a type in [`KINDS`] is looked for through
//! its own service's API, and [`classify`] turns what is still there into the stack's verdict:
//!
//! - kept by its DeletionPolicy (`Retain`, `RetainExceptOnCreate`): expected to stay, said in a
//!   note with the command that removes it, never a failure;
//! - anything else, on AWS: the stack's row fails (never DELETE_COMPLETE), naming each resource
//!   and the command that removes it. CloudFormation deletes every resource of a stack or fails
//!   the deletion, "If a resource has no DeletionPolicy attribute, CloudFormation deletes the
//!   resource by default" (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-deletionpolicy.html),
//!   so this is what a resource deleted and re-created out of band, or a deletion that lied, looks
//!   like;
//! - anything else, against the emulator: an emulator gap on the row. moto 5's CloudFormation
//!   deletes a resource only when its model has a delete handler: it leaves an ELBv2 target group
//!   (no handler) and, when one resource's deletion fails (a VPC's route tables: no handler), it
//!   drops the stack's record anyway and keeps whatever it could not delete
//!   (`moto/cloudformation/parsing.py`, `ResourceMap.delete`; `models.py`, `delete_stack`). What
//!   the service's API can delete, destroy deletes ([`Kind::removed_locally`]) so that the next
//!   deploy can create it again, and says so; the rest stays until `cargo xtask local down`.
//!
//! A failed deletion whose stack is gone afterwards (the emulator's dropped record) is checked
//! the same way; its resources of types no API here can look for (the VPC and its parts) are
//! named as not checked. On AWS a failed deletion keeps its stack (DELETE_FAILED) and is an
//! ordinary failure; when its cause is a dependency (a VPC, subnet or security group still used
//! by network interfaces) the failure says how to find and remove them ([`dependency_fix`]).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};

use crate::aws::{Aws, AwsResultExt};
use crate::template::Template;

/// The resource types whose absence destroy checks after a stack's deletion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    LoadBalancer,
    TargetGroup,
    LogGroup,
    Repository,
    Bucket,
}

/// Each checked CloudFormation type and its kind.
pub const KINDS: [(&str, Kind); 5] = [
    ("AWS::ElasticLoadBalancingV2::LoadBalancer", Kind::LoadBalancer),
    ("AWS::ElasticLoadBalancingV2::TargetGroup", Kind::TargetGroup),
    ("AWS::Logs::LogGroup", Kind::LogGroup),
    ("AWS::ECR::Repository", Kind::Repository),
    ("AWS::S3::Bucket", Kind::Bucket),
];

impl Kind {
    pub fn of(resource_type: &str) -> Option<Kind> {
        KINDS.iter().find(|(name, _)| *name == resource_type).map(|(_, kind)| *kind)
    }

    fn noun(self) -> &'static str {
        match self {
            Kind::LoadBalancer => "load balancer",
            Kind::TargetGroup => "target group",
            Kind::LogGroup => "log group",
            Kind::Repository => "ECR repository",
            Kind::Bucket => "bucket",
        }
    }

    /// Whether destroy deletes it through its service's API when the emulator left it: the load
    /// balancer (which takes its listeners), then the target groups (a group a listener still
    /// forwards to cannot go), and log groups. Repositories and buckets hold data: they are
    /// emptied by `--force` before their stack goes, never deleted behind the stack's back.
    pub fn removed_locally(self) -> bool {
        matches!(self, Kind::LoadBalancer | Kind::TargetGroup | Kind::LogGroup)
    }

    /// The IAM actions looking for a resource of this kind needs on AWS: each is on the access
    /// map for the operator's destroy (`access/map.rs`; a test here holds them together). The
    /// deletions of [`remove`] run against the emulator only.
    pub fn looked_for_with(self) -> &'static [&'static str] {
        match self {
            Kind::LoadBalancer => &["elasticloadbalancing:DescribeLoadBalancers"],
            Kind::TargetGroup => &["elasticloadbalancing:DescribeTargetGroups"],
            Kind::LogGroup => &["logs:DescribeLogGroups"],
            Kind::Repository => &["ecr:DescribeRepositories", "ecr:ListImages"],
            // HeadBucket is authorized as s3:ListBucket (its API reference, cited below).
            Kind::Bucket => &["s3:ListBucket"],
        }
    }

    /// The command that removes a resource of this kind with physical id `id` in `region`.
    fn removal(self, id: &str, region: &str) -> String {
        match self {
            Kind::LoadBalancer => format!("aws elbv2 delete-load-balancer --load-balancer-arn {id} --region {region}"),
            Kind::TargetGroup => format!("aws elbv2 delete-target-group --target-group-arn {id} --region {region}"),
            Kind::LogGroup => format!("aws logs delete-log-group --log-group-name {id} --region {region}"),
            // "If the repository isn't empty, you must either delete the contents of the
            // repository or use the force option" (https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_DeleteRepository.html).
            Kind::Repository => {
                format!("aws ecr delete-repository --repository-name {id} --force --region {region}")
            }
            // A versioned bucket is empty only without versions and delete markers, which
            // `aws s3 rb --force` leaves: `cargo xtask destroy --force` deletes them.
            Kind::Bucket => format!(
                "delete every object version and delete marker in it (`cargo xtask destroy --force` does), then `aws s3api delete-bucket --bucket {id} --region {region}`"
            ),
        }
    }
}

/// A resource of a stack, as CloudFormation listed it before the stack's deletion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    pub logical_id: String,
    pub resource_type: String,
    /// The name or ARN CloudFormation gave it (DescribeStackResources' `PhysicalResourceId`).
    pub physical_id: String,
    /// Its DeletionPolicy keeps it when the stack goes: `Retain` or `RetainExceptOnCreate`
    /// (which "behaves like Retain for stack operations, except for the stack operation that
    /// initially created the resource"; same page as the module's).
    pub retained: bool,
}

impl Resource {
    /// `target group web-blue (BlueTargetGroup)`: the short name of an ARN, else the id.
    fn name(&self) -> String {
        let noun = match Kind::of(&self.resource_type) {
            Some(kind) => kind.noun(),
            None => self.resource_type.as_str(),
        };
        format!("{noun} {} ({})", short_name(&self.physical_id), self.logical_id)
    }
}

/// `arn:aws:elasticloadbalancing:...:targetgroup/web-blue/0123` → `web-blue`; anything else as it is.
fn short_name(physical_id: &str) -> &str {
    match physical_id.strip_prefix("arn:") {
        Some(_) => {
            let path = physical_id.split(':').nth(5).unwrap_or(physical_id);
            let parts: Vec<&str> = path.split('/').collect();
            match parts.as_slice() {
                ["loadbalancer", _, name, _] | [_, name, _] => name,
                _ => physical_id,
            }
        }
        None => physical_id,
    }
}

/// A resource still there after its stack's deletion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Left {
    pub resource: Resource,
    pub kind: Kind,
    /// What it still holds, when that changes the fix: `2 images`.
    pub holds: Option<String>,
}

/// How a stack's deletion ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Deletion {
    /// CloudFormation reports the stack gone.
    Complete,
    /// The deletion failed, yet the stack is gone: its record was dropped with `cause`.
    Dropped { cause: String },
}

/// What a stack's leftovers make of its row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing left, or only what its DeletionPolicy keeps (said in the note).
    Gone { note: Option<String> },
    /// Left behind on AWS: the row fails with what is left and how to remove it.
    Failed { detail: String },
    /// Left by the emulator: destroy deletes `remove` through their APIs; the note says what was
    /// left, what was deleted and what stays. `complete` when nothing stays.
    EmulatorGap { remove: Vec<Left>, note: String, complete: bool },
}

/// The verdict on stack `stack` (in `place`, `account/region`) whose `resources` were listed
/// before its deletion, of which `left` are still there after it, ended as `deletion`, on AWS or
/// against the emulator (`local`).
pub fn classify(
    stack: &str,
    place: &str,
    resources: &[Resource],
    left: &[Left],
    deletion: &Deletion,
    local: bool,
) -> Verdict {
    let region = place.rsplit('/').next().unwrap_or(place);
    let (kept, leftovers): (Vec<&Left>, Vec<&Left>) = left.iter().partition(|item| item.resource.retained);
    let kept_note = (!kept.is_empty()).then(|| {
        let named: Vec<String> = kept
            .iter()
            .map(|item| {
                format!(
                    "{} (`{}` removes it)",
                    item.resource.name(),
                    item.kind.removal(&item.resource.physical_id, region)
                )
            })
            .collect();
        format!("{stack} ({place}): kept by its DeletionPolicy, as the template asks: {}", named.join(", "))
    });
    // Resources of a dropped stack that no API here looks for: whether they went is not known.
    let unchecked: Vec<String> = match deletion {
        Deletion::Complete => Vec::new(),
        Deletion::Dropped { .. } => resources
            .iter()
            .filter(|resource| !resource.retained && Kind::of(&resource.resource_type).is_none())
            .map(|resource| format!("{} ({})", resource.logical_id, resource.resource_type))
            .collect(),
    };
    if leftovers.is_empty() && matches!(deletion, Deletion::Complete) {
        return Verdict::Gone { note: kept_note };
    }
    let named = |item: &&Left| match &item.holds {
        Some(holds) => format!("{} with {holds}", item.resource.name()),
        None => item.resource.name(),
    };
    let names: Vec<String> = leftovers.iter().map(named).collect();
    let kept_tail = kept_note.map(|note| format!("; {note}")).unwrap_or_default();
    if !local {
        let commands: Vec<String> =
            leftovers.iter().map(|item| item.kind.removal(&item.resource.physical_id, region)).collect();
        let detail = match deletion {
            Deletion::Complete => format!(
                "stack {stack} is deleted, yet {} still exist in {place}: a deploy would fail on their names, and they cost until removed. Remove them: {}; then run destroy again{kept_tail}",
                names.join(", "),
                commands.join("; ")
            ),
            Deletion::Dropped { cause } => {
                let found = match names.is_empty() {
                    true => String::new(),
                    false => format!(" Still there: {}; remove them: {}.", names.join(", "), commands.join("; ")),
                };
                let unknown = match unchecked.is_empty() {
                    true => String::new(),
                    false => format!(
                        " Not checked (no API here looks for their types): {}; look for them in the console (the stack's name is in their tags) and delete what is left.",
                        unchecked.join(", ")
                    ),
                };
                format!(
                    "the deletion of stack {stack} failed ({cause}) and the stack is gone, so CloudFormation no longer tracks what it left in {place}.{found}{unknown}{kept_tail}"
                )
            }
        };
        return Verdict::Failed { detail };
    }
    let (remove, stays): (Vec<&Left>, Vec<&Left>) = leftovers.iter().partition(|item| item.kind.removed_locally());
    let mut parts = Vec::new();
    match deletion {
        Deletion::Complete => parts.push(format!(
            "{stack} ({place}): moto's CloudFormation deleted the stack but left {}",
            names.join(", ")
        )),
        Deletion::Dropped { cause } => parts.push(format!(
            "{stack} ({place}): moto's CloudFormation dropped the stack's record on a failed deletion ({cause}) and kept what it could not delete{}",
            match names.is_empty() {
                true => String::new(),
                false => format!(": {}", names.join(", ")),
            }
        )),
    }
    if remove.len() == leftovers.len() && !remove.is_empty() {
        parts.push("destroy deleted them through their APIs so that the next deploy can create them again".into());
    } else if !remove.is_empty() {
        let removed: Vec<String> = remove.iter().map(|item| item.resource.name()).collect();
        parts.push(format!(
            "destroy deleted {} through their APIs so that the next deploy can create them again",
            removed.join(", ")
        ));
    }
    let staying: Vec<String> = stays.iter().map(named).collect();
    if !staying.is_empty() {
        parts.push(format!("left in the emulator until `cargo xtask local down`: {}", staying.join(", ")));
    }
    if !unchecked.is_empty() {
        parts.push(format!(
            "possibly left in the emulator until `cargo xtask local down` (not checked: no API here looks for their types): {}",
            unchecked.join(", ")
        ));
    }
    let complete = staying.is_empty() && matches!(deletion, Deletion::Complete);
    Verdict::EmulatorGap {
        remove: remove.into_iter().cloned().collect(),
        note: format!("{}{kept_tail}", parts.join("; ")),
        complete,
    }
}

/// The fix for a failed deletion whose `cause` is a dependency (EC2's `DependencyViolation`, "has
/// dependencies and cannot be deleted", as CloudFormation relays it in the resource's status
/// reason: a text, hence matched here and tested), in a stack whose `resources` hold a VPC.
///
/// A Fargate task's network interface is deleted by ECS when the task stops, and a load
/// balancer's when it is deleted, each some time after its stack reported the service or the load
/// balancer gone; until then the subnets, security groups and VPC cannot be deleted
/// (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-networking-awsvpc.html,
/// https://docs.aws.amazon.com/vpc/latest/userguide/delete-vpc.html). An interface in use cannot
/// be deleted by hand either, only once detached
/// (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/delete_eni.html).
///
/// Read from the failure's root cause, not by listing the VPC's interfaces: that needs
/// `aws-sdk-ec2`, which added 8 min 8 s (5 min 3 s of CPU) to a `cargo build -p xtask` on this
/// project's 2-core build machine, against 14 s for the xtask alone.
pub fn dependency_fix(cause: &str, resources: &[Resource], region: &str) -> Option<String> {
    let dependency = cause.contains("DependencyViolation") || cause.contains("has dependencies");
    let vpc = resources.iter().find(|resource| resource.resource_type == "AWS::EC2::VPC")?;
    if !dependency {
        return None;
    }
    let vpc = &vpc.physical_id;
    Some(format!(
        "network interfaces still use VPC {vpc}: those of Fargate tasks and load balancers are released some minutes after their service or load balancer is deleted. List them with `aws ec2 describe-network-interfaces --region {region} --filters Name=vpc-id,Values={vpc} --query 'NetworkInterfaces[].[NetworkInterfaceId,Status,Description]'`; wait until none is `in-use` (delete an `available` one with `aws ec2 delete-network-interface --network-interface-id <id> --region {region}`), then run destroy again"
    ))
}

/// The resources of stack `name` as CloudFormation lists them now, each with the DeletionPolicy
/// the template it was deployed from gives it (GetTemplate, processed: what CloudFormation goes
/// by, whatever the checkout's file says now; https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_GetTemplate.html).
/// DescribeStackResources returns at most 100 resources, more than any of our stacks holds
/// (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStackResources.html).
pub async fn resources(aws: &Aws, account: &str, region: &str, name: &str) -> Result<Vec<Resource>> {
    let client = aws.cloudformation(account, region).await?;
    let deployed = client
        .get_template()
        .stack_name(name)
        .template_stage(aws_sdk_cloudformation::types::TemplateStage::Processed)
        .send()
        .await
        .aws(&client)
        .with_context(|| format!("reading the template stack {name} was deployed from"))?;
    let body = deployed.template_body().unwrap_or_default();
    let policies = deletion_policies(
        &Template::parse(Path::new(name), body).with_context(|| format!("reading the deployed template of {name}"))?,
    );
    let reply = client
        .describe_stack_resources()
        .stack_name(name)
        .send()
        .await
        .aws(&client)
        .with_context(|| format!("listing the resources of stack {name} before deleting it"))?;
    Ok(reply
        .stack_resources()
        .iter()
        .filter_map(|resource| {
            let logical_id = resource.logical_resource_id()?.to_string();
            let retained = policies
                .get(&logical_id)
                .is_some_and(|policy| matches!(policy.as_str(), "Retain" | "RetainExceptOnCreate"));
            Some(Resource {
                resource_type: resource.resource_type()?.to_string(),
                physical_id: resource.physical_resource_id()?.to_string(),
                logical_id,
                retained,
            })
        })
        .collect())
}

/// Each resource's DeletionPolicy, where the template gives one as a plain string.
fn deletion_policies(template: &Template) -> BTreeMap<String, String> {
    template
        .resources()
        .filter_map(|(logical_id, resource)| {
            Some((logical_id.to_string(), resource.get("DeletionPolicy")?.as_str()?.to_string()))
        })
        .collect()
}

/// Which of `resources` (of the checked kinds) still exist, each asked of its own service.
pub async fn still_there(aws: &Aws, account: &str, region: &str, resources: &[Resource]) -> Result<Vec<Left>> {
    let mut left = Vec::new();
    for resource in resources {
        let Some(kind) = Kind::of(&resource.resource_type) else { continue };
        let id = resource.physical_id.as_str();
        let found = async {
            anyhow::Ok(match kind {
                Kind::LoadBalancer => {
                    load_balancer_exists(&aws.elbv2(account, region).await?, id).await?.then_some(None)
                }
                Kind::TargetGroup => target_group_exists(&aws.elbv2(account, region).await?, id).await?.then_some(None),
                Kind::LogGroup => log_group_exists(&aws.logs(account, region).await?, id).await?.then_some(None),
                Kind::Repository => repository_holds(&aws.ecr(account, region).await?, id).await?,
                Kind::Bucket => bucket_exists(&aws.s3(account, region).await?, id).await?.then_some(None),
            })
        }
        .await
        .with_context(|| {
            format!(
                "checking that {} is gone in {account}/{region} (the operator needs {})",
                resource.name(),
                kind.looked_for_with().join(" and ")
            )
        })?;
        if let Some(holds) = found {
            left.push(Left { resource: resource.clone(), kind, holds });
        }
    }
    Ok(left)
}

/// Deletes what the emulator left, through each service's API: load balancers first (their
/// listeners go with them), then target groups, then log groups.
pub async fn remove(aws: &Aws, account: &str, region: &str, left: &[Left]) -> Result<()> {
    let mut ordered: Vec<&Left> = left.iter().filter(|item| item.kind.removed_locally()).collect();
    ordered.sort_by_key(|item| item.kind);
    for item in ordered {
        let id = item.resource.physical_id.as_str();
        let what = || format!("deleting {}, left by the emulator, in {account}/{region}", item.resource.name());
        match item.kind {
            Kind::LoadBalancer => {
                let elb = aws.elbv2(account, region).await?;
                elb.delete_load_balancer().load_balancer_arn(id).send().await.aws(&elb).with_context(what)?;
            }
            Kind::TargetGroup => {
                let elb = aws.elbv2(account, region).await?;
                elb.delete_target_group().target_group_arn(id).send().await.aws(&elb).with_context(what)?;
            }
            Kind::LogGroup => {
                let logs = aws.logs(account, region).await?;
                logs.delete_log_group().log_group_name(id).send().await.aws(&logs).with_context(what)?;
            }
            Kind::Repository | Kind::Bucket => unreachable!("only what removed_locally names is removed"),
        }
    }
    Ok(())
}

/// DescribeLoadBalancers by ARN; `LoadBalancerNotFound` is gone
/// (https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_DescribeLoadBalancers.html).
async fn load_balancer_exists(elb: &aws_sdk_elasticloadbalancingv2::Client, arn: &str) -> Result<bool> {
    match elb.describe_load_balancers().load_balancer_arns(arn).send().await {
        Ok(reply) => Ok(!reply.load_balancers().is_empty()),
        Err(error)
            if error.as_service_error().is_some_and(|service| service.is_load_balancer_not_found_exception()) =>
        {
            Ok(false)
        }
        Err(error) => Err(error).aws(elb).with_context(|| format!("looking for load balancer {arn}")),
    }
}

/// DescribeTargetGroups by ARN; `TargetGroupNotFound` is gone
/// (https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_DescribeTargetGroups.html).
async fn target_group_exists(elb: &aws_sdk_elasticloadbalancingv2::Client, arn: &str) -> Result<bool> {
    match elb.describe_target_groups().target_group_arns(arn).send().await {
        Ok(reply) => Ok(!reply.target_groups().is_empty()),
        Err(error) if error.as_service_error().is_some_and(|service| service.is_target_group_not_found_exception()) => {
            Ok(false)
        }
        Err(error) => Err(error).aws(elb).with_context(|| format!("looking for target group {arn}")),
    }
}

/// DescribeLogGroups with the name as prefix, every page, for the exact name: the API filters by
/// prefix only (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_DescribeLogGroups.html).
async fn log_group_exists(logs: &aws_sdk_cloudwatchlogs::Client, name: &str) -> Result<bool> {
    let mut pages = logs.describe_log_groups().log_group_name_prefix(name).into_paginator().send();
    while let Some(page) = pages.next().await {
        let reply = page.aws(logs).with_context(|| format!("looking for log group {name}"))?;
        if reply.log_groups().iter().any(|group| group.log_group_name() == Some(name)) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `None` when the repository is gone (`RepositoryNotFoundException`), else what it holds
/// (`Some(None)` when empty): DescribeRepositories, then ListImages
/// (https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_DescribeRepositories.html).
async fn repository_holds(ecr: &aws_sdk_ecr::Client, name: &str) -> Result<Option<Option<String>>> {
    match ecr.describe_repositories().repository_names(name).send().await {
        Ok(_) => {}
        Err(error) if error.as_service_error().is_some_and(|service| service.is_repository_not_found_exception()) => {
            return Ok(None);
        }
        Err(error) => return Err(error).aws(ecr).with_context(|| format!("looking for ECR repository {name}")),
    }
    let mut images = 0;
    let mut pages = ecr.list_images().repository_name(name).into_paginator().send();
    while let Some(page) = pages.next().await {
        let listed = page.aws(ecr).with_context(|| format!("listing the images left in ECR repository {name}"))?;
        images += listed.image_ids().len();
    }
    Ok(Some((images > 0).then(|| format!("{images} images"))))
}

/// HeadBucket; 404 Not Found is gone (https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadBucket.html).
async fn bucket_exists(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<bool> {
    match s3.head_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(true),
        Err(error) if error.as_service_error().is_some_and(|service| service.is_not_found()) => Ok(false),
        Err(error) => Err(error).aws(s3).with_context(|| format!("looking for bucket {bucket}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::replay::{config, replay};

    fn resource(logical_id: &str, resource_type: &str, physical_id: &str, retained: bool) -> Resource {
        Resource {
            logical_id: logical_id.into(),
            resource_type: resource_type.into(),
            physical_id: physical_id.into(),
            retained,
        }
    }

    const TARGET_GROUP: &str =
        "arn:aws:elasticloadbalancing:eu-central-1:333333333333:targetgroup/web-blue/0123456789abcdef";

    fn left(resource: &Resource, holds: Option<&str>) -> Left {
        Left {
            resource: resource.clone(),
            kind: Kind::of(&resource.resource_type).unwrap(),
            holds: holds.map(str::to_string),
        }
    }

    #[test]
    fn each_checked_type_has_its_kind_and_others_none() {
        for (resource_type, expect) in [
            ("AWS::Logs::LogGroup", Some(Kind::LogGroup)),
            ("AWS::ECR::Repository", Some(Kind::Repository)),
            ("AWS::S3::Bucket", Some(Kind::Bucket)),
            ("AWS::ElasticLoadBalancingV2::TargetGroup", Some(Kind::TargetGroup)),
            ("AWS::ElasticLoadBalancingV2::LoadBalancer", Some(Kind::LoadBalancer)),
            ("AWS::EC2::VPC", None),
            ("AWS::S3::BucketPolicy", None),
        ] {
            assert_eq!(Kind::of(resource_type), expect, "{resource_type}");
        }
        assert_eq!(short_name(TARGET_GROUP), "web-blue");
        assert_eq!(
            short_name("arn:aws:elasticloadbalancing:eu-central-1:333333333333:loadbalancer/app/web/50dc6c495c0c9188"),
            "web"
        );
        assert_eq!(short_name("/ecs/web"), "/ecs/web");
    }

    #[test]
    fn nothing_left_is_gone_and_a_retained_resource_is_kept_not_a_leftover() {
        let group = resource("FlowLogGroup", "AWS::Logs::LogGroup", "/vpc/web-network/flow-logs", true);
        for local in [false, true] {
            assert_eq!(
                classify("web-network", "222222222222/ap-south-1", &[], &[], &Deletion::Complete, local),
                Verdict::Gone { note: None }
            );
            let verdict = classify(
                "web-network",
                "222222222222/ap-south-1",
                std::slice::from_ref(&group),
                &[left(&group, None)],
                &Deletion::Complete,
                local,
            );
            let Verdict::Gone { note: Some(note) } = verdict else { panic!("{verdict:?}") };
            assert!(note.contains("kept by its DeletionPolicy"), "{note}");
            assert!(
                note.contains("log group /vpc/web-network/flow-logs (FlowLogGroup) (`aws logs delete-log-group --log-group-name /vpc/web-network/flow-logs --region ap-south-1` removes it)"),
                "{note}"
            );
        }
    }

    #[test]
    fn a_leftover_on_aws_fails_the_row_with_the_command_that_removes_it() {
        let group = resource("LogGroup", "AWS::Logs::LogGroup", "/ecs/web", false);
        let repository = resource("Repository", "AWS::ECR::Repository", "web", false);
        let bucket = resource("ArtifactBucket", "AWS::S3::Bucket", "web-artifacts", false);
        let target_group = resource("BlueTargetGroup", "AWS::ElasticLoadBalancingV2::TargetGroup", TARGET_GROUP, false);
        let all = [group.clone(), repository.clone(), bucket.clone(), target_group.clone()];
        let still =
            [left(&group, None), left(&repository, Some("2 images")), left(&bucket, None), left(&target_group, None)];
        let verdict = classify("web-x", "333333333333/eu-central-1", &all, &still, &Deletion::Complete, false);
        let Verdict::Failed { detail } = verdict else { panic!("{verdict:?}") };
        for expect in [
            "stack web-x is deleted, yet log group /ecs/web (LogGroup), ECR repository web (Repository) with 2 images, bucket web-artifacts (ArtifactBucket), target group web-blue (BlueTargetGroup) still exist in 333333333333/eu-central-1",
            "aws logs delete-log-group --log-group-name /ecs/web --region eu-central-1",
            "aws ecr delete-repository --repository-name web --force --region eu-central-1",
            "aws s3api delete-bucket --bucket web-artifacts --region eu-central-1",
            &format!("aws elbv2 delete-target-group --target-group-arn {TARGET_GROUP} --region eu-central-1"),
        ] {
            assert!(detail.contains(expect), "{expect}\nin: {detail}");
        }
    }

    #[test]
    fn a_leftover_of_the_emulator_is_a_gap_and_what_its_api_deletes_is_deleted() {
        let target_group = resource("BlueTargetGroup", "AWS::ElasticLoadBalancingV2::TargetGroup", TARGET_GROUP, false);
        let repository = resource("Repository", "AWS::ECR::Repository", "web", false);
        let still = [left(&target_group, None), left(&repository, Some("1 images"))];
        let verdict = classify(
            "web-alb",
            "333333333333/eu-central-1",
            &[target_group.clone(), repository.clone()],
            &still,
            &Deletion::Complete,
            true,
        );
        let Verdict::EmulatorGap { remove, note, complete } = verdict else { panic!("{verdict:?}") };
        assert_eq!(remove, vec![left(&target_group, None)]);
        assert!(!complete, "the repository stays");
        assert!(
            note.starts_with("web-alb (333333333333/eu-central-1): moto's CloudFormation deleted the stack but left target group web-blue (BlueTargetGroup)"),
            "{note}"
        );
        assert!(
            note.contains("; destroy deleted target group web-blue (BlueTargetGroup) through their APIs so that the next deploy can create them again"),
            "{note}"
        );
        assert!(
            note.contains(
                "left in the emulator until `cargo xtask local down`: ECR repository web (Repository) with 1 images"
            ),
            "{note}"
        );
        // Only removable leftovers: the row is complete once they are deleted.
        let verdict = classify(
            "web-alb",
            "333333333333/eu-central-1",
            std::slice::from_ref(&target_group),
            &still[..1],
            &Deletion::Complete,
            true,
        );
        let Verdict::EmulatorGap { note, complete: true, .. } = verdict else { panic!("{verdict:?}") };
        assert!(note.ends_with("left target group web-blue (BlueTargetGroup); destroy deleted them through their APIs so that the next deploy can create them again"), "{note}");
    }

    #[test]
    fn a_dropped_record_names_what_was_not_checked() {
        let vpc = resource("Vpc", "AWS::EC2::VPC", "vpc-1", false);
        let group = resource("FlowLogGroup", "AWS::Logs::LogGroup", "/vpc/flow", false);
        let resources = [vpc, group];
        let dropped = Deletion::Dropped { cause: "DependencyViolation: route table".into() };
        let verdict = classify("web-network", "222222222222/ap-south-1", &resources, &[], &dropped, true);
        let Verdict::EmulatorGap { remove, note, complete } = verdict else { panic!("{verdict:?}") };
        assert!(remove.is_empty() && !complete);
        assert!(
            note.contains("dropped the stack's record on a failed deletion (DependencyViolation: route table) and kept what it could not delete"),
            "{note}"
        );
        assert!(
            note.contains("possibly left in the emulator until `cargo xtask local down` (not checked: no API here looks for their types): Vpc (AWS::EC2::VPC)"),
            "{note}"
        );
        assert!(!note.contains("FlowLogGroup"), "the log group was checked and is gone: {note}");
        let verdict = classify("web-network", "222222222222/ap-south-1", &resources, &[], &dropped, false);
        let Verdict::Failed { detail } = verdict else { panic!("{verdict:?}") };
        assert!(detail.contains("failed (DependencyViolation: route table) and the stack is gone"), "{detail}");
        assert!(detail.contains("Not checked (no API here looks for their types): Vpc (AWS::EC2::VPC)"), "{detail}");
    }

    #[test]
    fn a_dependency_in_a_vpc_stack_names_the_network_interfaces_fix() {
        let vpc = [resource("Vpc", "AWS::EC2::VPC", "vpc-0bb2", false)];
        let reason = "Vpc (AWS::EC2::VPC) DELETE_FAILED: The vpc 'vpc-0bb2' has dependencies and cannot be deleted. (Service: Ec2, Status Code: 400)";
        let fix = dependency_fix(reason, &vpc, "eu-central-1").expect("a fix");
        assert!(fix.contains("Name=vpc-id,Values=vpc-0bb2") && fix.contains("--region eu-central-1"), "{fix}");
        assert!(fix.contains("aws ec2 delete-network-interface"), "{fix}");
        assert!(dependency_fix("PublicSubnetA DELETE_FAILED: DependencyViolation", &vpc, "r").is_some());
        assert_eq!(dependency_fix("Vpc DELETE_FAILED: Access Denied", &vpc, "r"), None);
        assert_eq!(dependency_fix("DependencyViolation", &[], "r"), None, "no VPC in the stack");
    }

    #[test]
    fn every_call_of_the_check_is_on_the_access_map_for_the_operators_destroy() {
        use crate::access::map::tests::{config, policies};
        let config = config();
        let map = crate::access::map::entries(&config, &policies(&config)).unwrap();
        let destroy = |action: &str, account: &str| {
            map.iter().any(|entry| {
                entry.actor == format!("the operator's `cargo xtask destroy` in {account}")
                    && entry.principal == crate::access::map::OPERATOR
                    && entry.action == action
            })
        };
        for account in ["111111111111", "222222222222", "333333333333"] {
            assert!(destroy("cloudformation:DescribeStackResources", account), "{account}");
            assert!(destroy("logs:DescribeLogGroups", account), "{account}");
        }
        for (_, kind) in KINDS {
            let account = if kind == Kind::Bucket { "111111111111" } else { "333333333333" };
            for action in kind.looked_for_with() {
                assert!(destroy(action, account), "{action} of {kind:?} in {account} is not on the map");
            }
        }
    }

    #[test]
    fn deletion_policies_are_read_from_the_template() {
        let template = Template::parse(
            Path::new("t.yaml"),
            "Resources:\n  A: {Type: AWS::Logs::LogGroup, DeletionPolicy: Retain}\n  B: {Type: AWS::S3::Bucket, DeletionPolicy: Delete}\n  C: {Type: AWS::S3::Bucket}\n",
        )
        .unwrap();
        let policies = deletion_policies(&template);
        assert_eq!(policies.get("A").map(String::as_str), Some("Retain"));
        assert_eq!(policies.get("B").map(String::as_str), Some("Delete"));
        assert_eq!(policies.get("C"), None);
    }

    /// DescribeLogGroups' answer as AWS's API reference shows it, for `names`.
    fn log_groups(names: &[&str], next: Option<&str>) -> String {
        let groups: Vec<serde_json::Value> = names
            .iter()
            .map(|name| serde_json::json!({"logGroupName": name, "arn": format!("arn:aws:logs:eu-west-1:1:log-group:{name}:*"), "storedBytes": 0}))
            .collect();
        let mut body = serde_json::json!({ "logGroups": groups });
        if let Some(next) = next {
            body["nextToken"] = next.into();
        }
        body.to_string()
    }

    #[tokio::test]
    async fn a_log_group_is_there_only_by_its_exact_name_on_any_page() {
        let first = log_groups(&["/ecs/web-old"], Some("t1"));
        let second = log_groups(&["/ecs/web"], None);
        let http = replay(&[(200, "application/x-amz-json-1.1", &first), (200, "application/x-amz-json-1.1", &second)]);
        let logs = aws_sdk_cloudwatchlogs::Client::new(&config(&http));
        assert!(log_group_exists(&logs, "/ecs/web").await.unwrap());
        assert!(http.bodies()[0].contains(r#""logGroupNamePrefix":"/ecs/web""#), "{:?}", http.bodies());
        assert!(http.bodies()[1].contains(r#""nextToken":"t1""#), "{:?}", http.bodies());
        let only_longer = log_groups(&["/ecs/web-old"], None);
        let http = replay(&[(200, "application/x-amz-json-1.1", &only_longer)]);
        let logs = aws_sdk_cloudwatchlogs::Client::new(&config(&http));
        assert!(!log_group_exists(&logs, "/ecs/web").await.unwrap());
    }

    #[tokio::test]
    async fn a_repository_is_gone_on_not_found_and_else_counts_its_images() {
        let not_found = r#"{"__type":"RepositoryNotFoundException","message":"The repository with name 'web' does not exist in the registry with id '1'"}"#;
        let http = replay(&[(400, "application/x-amz-json-1.1", not_found)]);
        let ecr = aws_sdk_ecr::Client::new(&config(&http));
        assert_eq!(repository_holds(&ecr, "web").await.unwrap(), None);
        let described =
            r#"{"repositories":[{"repositoryName":"web","repositoryArn":"arn:aws:ecr:eu-west-1:1:repository/web"}]}"#;
        let images = r#"{"imageIds":[{"imageDigest":"sha256:aa","imageTag":"r1"},{"imageDigest":"sha256:bb"}]}"#;
        let http =
            replay(&[(200, "application/x-amz-json-1.1", described), (200, "application/x-amz-json-1.1", images)]);
        let ecr = aws_sdk_ecr::Client::new(&config(&http));
        assert_eq!(repository_holds(&ecr, "web").await.unwrap(), Some(Some("2 images".to_string())));
    }

    #[tokio::test]
    async fn a_bucket_is_gone_on_404_and_there_on_200() {
        let http = replay(&[(404, "application/xml", ""), (200, "application/xml", "")]);
        let s3 = aws_sdk_s3::Client::new(&config(&http));
        assert!(!bucket_exists(&s3, "web-artifacts").await.unwrap());
        assert!(bucket_exists(&s3, "web-artifacts").await.unwrap());
    }

    #[tokio::test]
    async fn a_target_group_is_gone_on_not_found() {
        let not_found = r#"<ErrorResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"><Error><Type>Sender</Type><Code>TargetGroupNotFound</Code><Message>One or more target groups not found</Message></Error><RequestId>1</RequestId></ErrorResponse>"#;
        let http = replay(&[(400, "text/xml", not_found)]);
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config(&http));
        assert!(!target_group_exists(&elb, TARGET_GROUP).await.unwrap());
        assert!(http.bodies()[0].contains("Action=DescribeTargetGroups"), "{:?}", http.bodies());
    }
}
