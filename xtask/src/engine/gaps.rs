//! Resource-level truth against the emulator: after a stack operation, the template's resources
//! that the emulator's CloudFormation did not create.
//!
//! moto's CloudFormation answers CREATE_COMPLETE for a stack and silently leaves out every
//! resource type it has no model for (CodeCommit, CodeBuild, CodePipeline, CodeDeploy, bucket
//! policies, ...; `../shared/reference/` lists them). A stack row that says `created` is then only
//! true of what DescribeStackResources lists: every other resource the template creates (its
//! `Condition`, if any, evaluated with the stack's parameters) is reported as an emulator gap, by
//! logical id and type, on the stack's row of the summary and in `--json`. On AWS, CloudFormation
//! creates every resource or fails the stack, so this check runs against the emulator only.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::Value;

use crate::aws::AwsResultExt;
use crate::template::Template;
use crate::template::resolve::{Resolver, Scope};

/// A resource of the template that the emulator does not hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EmulatorGap {
    pub logical_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// What stands in for it locally: `api` when the local run created it through the service's
    /// own API from the template's properties, `null` when nothing does.
    pub stand_in: Option<String>,
    /// What the stand-in did (created or found, what the emulator's API ignored), or why there
    /// is none (`stand_ins.rs`).
    pub note: Option<String>,
}

/// The resources of `template_body` (deployed as `stack` with `parameters`) that
/// `listed` (DescribeStackResources' logical ids) does not hold.
pub fn missing(template_body: &str, scope: &Scope, listed: &BTreeSet<String>) -> Result<Vec<EmulatorGap>> {
    let template = Template::parse(Path::new(&scope.stack_name), template_body)?;
    missing_in(&template.body, scope, listed)
}

/// [`missing`] of a parsed template.
pub fn missing_in(template: &Value, scope: &Scope, listed: &BTreeSet<String>) -> Result<Vec<EmulatorGap>> {
    let resolver = Resolver::new(template, scope);
    let mut gaps = Vec::new();
    let resources = template["Resources"].as_object().into_iter().flatten();
    for (logical_id, resource) in resources {
        let logical_id = logical_id.as_str();
        if listed.contains(logical_id) {
            continue;
        }
        if let Some(condition) = resource.get("Condition").and_then(|value| value.as_str())
            && !resolver.condition(condition).with_context(|| format!("resource {logical_id}"))?
        {
            continue;
        }
        let kind = resource.get("Type").and_then(|value| value.as_str()).unwrap_or("unknown");
        gaps.push(EmulatorGap {
            logical_id: logical_id.to_string(),
            kind: kind.to_string(),
            stand_in: None,
            note: None,
        });
    }
    Ok(gaps)
}

/// The emulator gaps of the deployed stack `name`: its resources as DescribeStackResources lists
/// them against the template it was deployed from.
pub async fn of_stack(
    client: &aws_sdk_cloudformation::Client,
    name: &str,
    template_body: &str,
    account: &str,
    region: &str,
    parameters: &BTreeMap<String, String>,
) -> Result<Vec<EmulatorGap>> {
    let reply = client
        .describe_stack_resources()
        .stack_name(name)
        .send()
        .await
        .aws(client)
        .with_context(|| format!("listing the resources of stack {name} to compare them with its template"))?;
    let listed: BTreeSet<String> = reply
        .stack_resources()
        .iter()
        .filter_map(|resource| resource.logical_resource_id())
        .map(str::to_string)
        .collect();
    let scope = Scope {
        account: account.to_string(),
        region: region.to_string(),
        stack_name: name.to_string(),
        parameters: parameters.clone(),
        physical_ids: BTreeMap::new(),
    };
    missing(template_body, &scope, &listed)
}

/// One line naming a stack's gaps, for the summary's notes.
pub fn describe(stack: &str, place: &str, gaps: &[EmulatorGap]) -> String {
    let named: Vec<String> = gaps
        .iter()
        .map(|gap| match &gap.stand_in {
            Some(stand_in) => format!("{} ({}, stand-in: {stand_in})", gap.logical_id, gap.kind),
            None => format!("{} ({})", gap.logical_id, gap.kind),
        })
        .collect();
    let notes: Vec<String> =
        gaps.iter().filter_map(|gap| Some(format!("{}: {}", gap.logical_id, gap.note.as_deref()?))).collect();
    let mut text = format!(
        "{stack} ({place}): the emulator's CloudFormation reported the stack complete without creating {}; on AWS each is created or the stack fails",
        named.join(", ")
    );
    if !notes.is_empty() {
        text.push_str(&format!(". Stand-ins: {}", notes.join("; ")));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = "
Parameters:
  Nat: {Type: String, Default: one}
Conditions:
  TwoNat: !Equals [!Ref Nat, two]
Resources:
  Repository:
    Type: AWS::CodeCommit::Repository
    Properties: {RepositoryName: web}
  Bucket:
    Type: AWS::S3::Bucket
  Policy:
    Type: AWS::S3::BucketPolicy
    Properties: {Bucket: !Ref Bucket, PolicyDocument: {}}
  SecondNat:
    Type: AWS::EC2::NatGateway
    Condition: TwoNat
";

    fn gaps(parameters: &[(&str, &str)], listed: &[&str]) -> Vec<(String, String)> {
        let scope = Scope {
            account: "111111111111".into(),
            region: "ap-south-1".into(),
            stack_name: "web-source".into(),
            parameters: parameters.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            physical_ids: BTreeMap::new(),
        };
        let listed = listed.iter().map(|id| id.to_string()).collect();
        missing(TEMPLATE, &scope, &listed).unwrap().into_iter().map(|gap| (gap.logical_id, gap.kind)).collect()
    }

    #[test]
    fn what_the_template_creates_and_the_stack_lacks_is_a_gap() {
        let pair = |id: &str, kind: &str| (id.to_string(), kind.to_string());
        assert_eq!(
            gaps(&[], &["Bucket"]),
            vec![pair("Policy", "AWS::S3::BucketPolicy"), pair("Repository", "AWS::CodeCommit::Repository")]
        );
        // A resource whose condition is false is not created on AWS either.
        assert_eq!(gaps(&[], &["Bucket", "Policy", "Repository"]), vec![]);
        assert_eq!(
            gaps(&[("Nat", "two")], &["Bucket", "Policy", "Repository"]),
            vec![pair("SecondNat", "AWS::EC2::NatGateway")]
        );
    }

    #[test]
    fn the_note_names_each_gap_and_its_stand_in() {
        let gap = |id: &str, kind: &str, stand_in: Option<&str>| EmulatorGap {
            logical_id: id.into(),
            kind: kind.into(),
            stand_in: stand_in.map(str::to_string),
            note: stand_in.map(|_| "`web` created through the CodeCommit API".to_string()),
        };
        let text = describe(
            "web-source",
            "111111111111/ap-south-1",
            &[
                gap("Repository", "AWS::CodeCommit::Repository", Some("api")),
                gap("Policy", "AWS::S3::BucketPolicy", None),
            ],
        );
        assert!(
            text.starts_with("web-source (111111111111/ap-south-1): the emulator's CloudFormation reported"),
            "{text}"
        );
        assert!(
            text.contains("Repository (AWS::CodeCommit::Repository, stand-in: api), Policy (AWS::S3::BucketPolicy)"),
            "{text}"
        );
        assert!(text.ends_with(". Stand-ins: Repository: `web` created through the CodeCommit API"), "{text}");
    }
}
