//! Stand-ins: the Code* resources the emulator's CloudFormation skips (`gaps.rs`), created through
//! their own service's API from the template's own properties, so that the rest of the system
//! (the gitflow, the pipeline rehearsal, `release --via pipeline`) finds them locally.
//!
//! moto serves the CodeCommit, CodeBuild, CodePipeline and CodeDeploy APIs, but its CloudFormation
//! has no model for their resources. After a stack operation against the emulator, each gap of
//! one of [`KINDS`] is created through that API: its properties are resolved with the stack's
//! parameters and physical ids (`template/resolve.rs`, as CloudFormation would have resolved
//! them), mapped one by one onto the SDK's input, and sent as the operator. A property the mapping
//! does not know is an error naming it (the gap stays without a stand-in and the note says why):
//! nothing of the template is dropped silently. What moto's API itself ignores of what is sent is
//! said in the gap's note.
//!
//! Idempotent: a stand-in that exists is found and left as it is (`found`), never updated. A
//! changed template therefore does not reach an existing stand-in: only CodePipeline's API would
//! allow an update in moto (it has no UpdateProject, UpdateDeploymentGroup or
//! UpdateRepositoryDescription), and `destroy` followed by `deploy` makes them anew.
//!
//! `destroy` removes the stand-ins of a stack through the same APIs before the stack goes
//! ([`remove`]), except a resource whose template says `DeletionPolicy: Retain`, which is kept as
//! CloudFormation keeps it on AWS
//! (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-deletionpolicy.html),
//! and except what moto's API cannot delete (declared in [`KINDS`]).
//!
//! Against AWS none of this runs: CloudFormation creates every resource or fails the stack.

use std::collections::HashMap;

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value};

use crate::aws::{Aws, AwsResultExt};
use crate::engine::deployed::Deployed;
use crate::engine::gaps::EmulatorGap;
use crate::output::Progress;

/// What `stand_in` says of a gap created or found through its API.
pub const API: &str = "api";

/// A resource type that gets a stand-in, and what the emulator's API lacks to remove it.
pub struct Kind {
    pub kind: &'static str,
    /// The service, as its API is named in notes.
    pub service: &'static str,
    /// Why the emulator's API cannot delete it, if it cannot.
    pub undeletable: Option<&'static str>,
}

/// The resource types stood in for, in the order they are created (an application before its
/// deployment groups).
pub const KINDS: [Kind; 5] = [
    Kind { kind: "AWS::CodeCommit::Repository", service: "CodeCommit", undeletable: None },
    Kind { kind: "AWS::CodeBuild::Project", service: "CodeBuild", undeletable: None },
    Kind { kind: "AWS::CodePipeline::Pipeline", service: "CodePipeline", undeletable: None },
    Kind {
        kind: "AWS::CodeDeploy::Application",
        service: "CodeDeploy",
        undeletable: Some("moto's CodeDeploy serves no DeleteApplication"),
    },
    Kind {
        kind: "AWS::CodeDeploy::DeploymentGroup",
        service: "CodeDeploy",
        undeletable: Some("moto's CodeDeploy serves no DeleteDeploymentGroup"),
    },
];

fn kind_of(kind: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|known| known.kind == kind)
}

/// Whether any of `gaps` gets a stand-in.
pub fn any(gaps: &[EmulatorGap]) -> bool {
    gaps.iter().any(|gap| kind_of(&gap.kind).is_some())
}

/// Creates (or finds) a stand-in for every gap of `gaps` of one of [`KINDS`], in `deployed`'s
/// account and region, and marks each `stand_in: api` with a note; a gap that could not be stood
/// in keeps `stand_in: null`, its note saying why.
pub async fn stand_in(aws: &Aws, deployed: &Deployed, gaps: &mut [EmulatorGap], progress: Option<&Progress>) {
    for kind in &KINDS {
        for gap in gaps.iter_mut().filter(|gap| gap.kind == kind.kind) {
            if let Some(progress) = progress {
                progress.update(format!("creating {} ({}) through the {} API", gap.logical_id, gap.kind, kind.service));
            }
            match ensure(aws, deployed, &gap.logical_id, kind).await {
                Ok(done) => {
                    gap.stand_in = Some(API.to_string());
                    gap.note = Some(done);
                }
                Err(error) => {
                    gap.stand_in = None;
                    gap.note = Some(format!("no stand-in: {}", crate::aws::error::one_line(&error)));
                }
            }
        }
    }
}

/// The properties of `logical_id`, resolved for the deployed stack.
fn properties(deployed: &Deployed, logical_id: &str) -> Result<Value> {
    let resolver = deployed.resolver();
    let declared = deployed.template["Resources"][logical_id]["Properties"].as_object().cloned().unwrap_or_default();
    let mut resolved = Map::new();
    for name in declared.keys() {
        if let Some(value) = resolver.resource_property(logical_id, name)? {
            resolved.insert(name.clone(), value);
        }
    }
    Ok(Value::Object(resolved))
}

/// Creates `logical_id` of `kind` unless it exists; says which, and what the emulator ignored.
async fn ensure(aws: &Aws, deployed: &Deployed, logical_id: &str, kind: &Kind) -> Result<String> {
    let (account, region) = (deployed.scope.account.as_str(), deployed.scope.region.as_str());
    let place = format!("{account}/{region}");
    let properties = properties(deployed, logical_id)?;
    let service = kind.service;
    let created = |name: &str| format!("`{name}` created through the {service} API from the template's properties");
    let found = |name: &str| format!("`{name}` found (made by an earlier run), left as it is");
    match kind.kind {
        "AWS::CodeCommit::Repository" => {
            let input = repository(properties)?;
            let name = input.repository_name.clone().unwrap_or_default();
            let client = aws.codecommit(account, region).await?;
            match client.get_repository().repository_name(&name).send().await {
                Ok(_) => return Ok(found(&name)),
                Err(error)
                    if error.as_service_error().is_some_and(|error| error.is_repository_does_not_exist_exception()) => {
                }
                Err(error) => {
                    return Err(error)
                        .aws(&client)
                        .with_context(|| format!("looking for repository {name} in {place}"));
                }
            }
            client
                .create_repository()
                .set_repository_name(input.repository_name)
                .set_repository_description(input.repository_description)
                .set_tags(input.tags)
                .set_kms_key_id(input.kms_key_id)
                .send()
                .await
                .aws(&client)
                .with_context(|| format!("creating CodeCommit repository {name} in {place}"))?;
            Ok(created(&name))
        }
        "AWS::CodeBuild::Project" => {
            let mut input = project(properties)?;
            let name = input.name.clone().unwrap_or_default();
            let client = aws.codebuild(account, region).await?;
            let listed = client
                .batch_get_projects()
                .names(&name)
                .send()
                .await
                .aws(&client)
                .with_context(|| format!("looking for CodeBuild project {name} in {place}"))?;
            if listed.projects().iter().any(|project| project.name() == Some(name.as_str())) {
                return Ok(found(&name));
            }
            let mut ignored = Vec::new();
            if input.encryption_key.is_some() {
                ignored.push("moto's CodeBuild ignores EncryptionKey and reports alias/aws/s3".to_string());
            }
            // moto refuses a CODEPIPELINE source or artifacts without a location, which AWS ignores
            // for both: "CodePipeline ignores it"
            // (https://docs.aws.amazon.com/codebuild/latest/APIReference/API_ProjectSource.html,
            // https://docs.aws.amazon.com/codebuild/latest/APIReference/API_ProjectArtifacts.html).
            if let Some(source) = input.source.as_mut()
                && source.r#type == aws_sdk_codebuild::types::SourceType::Codepipeline
                && source.location.is_none()
            {
                source.location = Some(EMULATOR_LOCATION.into());
                ignored.push(format!(
                    "moto requires a location for a CODEPIPELINE source, so `{EMULATOR_LOCATION}` is sent (AWS ignores it)"
                ));
            }
            if let Some(artifacts) = input.artifacts.as_mut()
                && artifacts.r#type == aws_sdk_codebuild::types::ArtifactsType::Codepipeline
                && artifacts.location.is_none()
            {
                artifacts.location = Some(EMULATOR_LOCATION.into());
                ignored.push(format!(
                    "moto requires a location for CODEPIPELINE artifacts, so `{EMULATOR_LOCATION}` is sent (AWS ignores it)"
                ));
            }
            client
                .create_project()
                .set_name(input.name)
                .set_description(input.description)
                .set_source(input.source)
                .set_artifacts(input.artifacts)
                .set_cache(input.cache)
                .set_environment(input.environment)
                .set_service_role(input.service_role)
                .set_timeout_in_minutes(input.timeout_in_minutes)
                .set_queued_timeout_in_minutes(input.queued_timeout_in_minutes)
                .set_encryption_key(input.encryption_key)
                .set_logs_config(input.logs_config)
                .set_tags(input.tags)
                .send()
                .await
                .aws(&client)
                .with_context(|| format!("creating CodeBuild project {name} in {place}"))?;
            Ok(with_ignored(created(&name), &ignored))
        }
        "AWS::CodePipeline::Pipeline" => {
            let (declaration, ignored) = pipeline(properties)?;
            let name = declaration.name().to_string();
            let client = aws.codepipeline(account, region).await?;
            match client.get_pipeline().name(&name).send().await {
                Ok(_) => return Ok(found(&name)),
                Err(error) if error.as_service_error().is_some_and(|error| error.is_pipeline_not_found_exception()) => {
                }
                Err(error) => {
                    return Err(error).aws(&client).with_context(|| format!("looking for pipeline {name} in {place}"));
                }
            }
            client
                .create_pipeline()
                .pipeline(declaration)
                .send()
                .await
                .aws(&client)
                .with_context(|| format!("creating pipeline {name} in {place}"))?;
            Ok(with_ignored(created(&name), &ignored))
        }
        "AWS::CodeDeploy::Application" => {
            let input = application(properties)?;
            let name = input.application_name.clone().unwrap_or_default();
            let client = aws.codedeploy(account, region).await?;
            match client.get_application().application_name(&name).send().await {
                Ok(_) => return Ok(found(&name)),
                Err(error)
                    if error
                        .as_service_error()
                        .is_some_and(|error| error.is_application_does_not_exist_exception()) => {}
                Err(error) => {
                    return Err(error)
                        .aws(&client)
                        .with_context(|| format!("looking for CodeDeploy application {name} in {place}"));
                }
            }
            client
                .create_application()
                .set_application_name(input.application_name)
                .set_compute_platform(input.compute_platform)
                .set_tags(input.tags)
                .send()
                .await
                .aws(&client)
                .with_context(|| format!("creating CodeDeploy application {name} in {place}"))?;
            Ok(created(&name))
        }
        "AWS::CodeDeploy::DeploymentGroup" => {
            let input = deployment_group(properties)?;
            let application = input.application_name.clone().unwrap_or_default();
            let group = input.deployment_group_name.clone().unwrap_or_default();
            let name = format!("{application}/{group}");
            let client = aws.codedeploy(account, region).await?;
            match client
                .get_deployment_group()
                .application_name(&application)
                .deployment_group_name(&group)
                .send()
                .await
            {
                Ok(_) => return Ok(found(&name)),
                Err(error)
                    if error
                        .as_service_error()
                        .is_some_and(|error| error.is_deployment_group_does_not_exist_exception()) => {}
                Err(error) => {
                    return Err(error)
                        .aws(&client)
                        .with_context(|| format!("looking for CodeDeploy deployment group {name} in {place}"));
                }
            }
            client
                .create_deployment_group()
                .set_application_name(input.application_name)
                .set_deployment_group_name(input.deployment_group_name)
                .set_service_role_arn(input.service_role_arn)
                .set_deployment_config_name(input.deployment_config_name)
                .set_deployment_style(input.deployment_style)
                .set_blue_green_deployment_configuration(input.blue_green_deployment_configuration)
                .set_ecs_services(input.ecs_services)
                .set_load_balancer_info(input.load_balancer_info)
                .set_auto_rollback_configuration(input.auto_rollback_configuration)
                .set_alarm_configuration(input.alarm_configuration)
                .set_tags(input.tags)
                .send()
                .await
                .aws(&client)
                .with_context(|| format!("creating CodeDeploy deployment group {name} in {place}"))?;
            Ok(with_ignored(
                created(&name),
                &["moto's GetDeploymentGroup answers an empty alarmConfiguration (it keeps what was sent)".to_string()],
            ))
        }
        other => bail!("{other} has no stand-in"),
    }
}

/// What a CODEPIPELINE source or artifacts get as their location for moto, which requires one.
const EMULATOR_LOCATION: &str = "codepipeline";

fn with_ignored(text: String, ignored: &[String]) -> String {
    match ignored.is_empty() {
        true => text,
        false => format!("{text}; emulator gap: {}", ignored.join("; ")),
    }
}

/// What `remove` did with one stand-in, for the destroy row.
pub struct Removed {
    pub logical_id: String,
    pub kind: String,
    pub name: String,
    /// `deleted`, `kept: ...`, `absent`.
    pub outcome: String,
}

impl Removed {
    pub fn describe(&self) -> String {
        format!("{} ({}) `{}`: {}", self.logical_id, self.kind, self.name, self.outcome)
    }
}

/// Removes the stand-ins of the deployed stack `deployed` (its template as deployed): every
/// resource of [`KINDS`] that the emulator's CloudFormation did not create, unless the template
/// retains it (`DeletionPolicy: Retain`) or moto's API cannot delete it; says what happened to
/// each.
pub async fn remove(aws: &Aws, deployed: &Deployed, progress: Option<&Progress>) -> Result<Vec<Removed>> {
    let listed = deployed.scope.physical_ids.keys().cloned().collect();
    let gaps = crate::engine::gaps::missing_in(&deployed.template, &deployed.scope, &listed)?;
    let (account, region) = (deployed.scope.account.as_str(), deployed.scope.region.as_str());
    let mut removed = Vec::new();
    // In reverse creation order: deployment groups before their application.
    for kind in KINDS.iter().rev() {
        for gap in gaps.iter().filter(|gap| gap.kind == kind.kind) {
            let resource = &deployed.template["Resources"][gap.logical_id.as_str()];
            let properties = properties(deployed, &gap.logical_id)?;
            let name = name_of(kind.kind, &properties)?;
            let mut row = Removed {
                logical_id: gap.logical_id.clone(),
                kind: gap.kind.clone(),
                name: name.clone(),
                outcome: String::new(),
            };
            // RetainExceptOnCreate behaves as Retain for every operation but the one that created
            // the resource (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-deletionpolicy.html).
            if let Some(policy @ ("Retain" | "RetainExceptOnCreate")) = resource["DeletionPolicy"].as_str() {
                row.outcome = format!("kept: its DeletionPolicy is {policy}, as CloudFormation keeps it on AWS");
                removed.push(row);
                continue;
            }
            if let Some(why) = kind.undeletable {
                row.outcome = format!("kept: emulator gap: {why}; the next deploy finds it and leaves it");
                removed.push(row);
                continue;
            }
            if let Some(progress) = progress {
                progress.update(format!("deleting the stand-in {} ({})", gap.logical_id, gap.kind));
            }
            let place = format!("{account}/{region}");
            row.outcome = match kind.kind {
                // DeleteRepository of a repository that does not exist succeeds with no id
                // (https://docs.aws.amazon.com/codecommit/latest/APIReference/API_DeleteRepository.html).
                "AWS::CodeCommit::Repository" => {
                    let client = aws.codecommit(account, region).await?;
                    let reply = client
                        .delete_repository()
                        .repository_name(&name)
                        .send()
                        .await
                        .aws(&client)
                        .with_context(|| format!("deleting CodeCommit repository {name} in {place}"))?;
                    if reply.repository_id().is_some() { "deleted" } else { "absent" }.to_string()
                }
                "AWS::CodeBuild::Project" => {
                    let client = aws.codebuild(account, region).await?;
                    let listed = client
                        .batch_get_projects()
                        .names(&name)
                        .send()
                        .await
                        .aws(&client)
                        .with_context(|| format!("looking for CodeBuild project {name} in {place}"))?;
                    if listed.projects().iter().any(|project| project.name() == Some(name.as_str())) {
                        client
                            .delete_project()
                            .name(&name)
                            .send()
                            .await
                            .aws(&client)
                            .with_context(|| format!("deleting CodeBuild project {name} in {place}"))?;
                        "deleted".to_string()
                    } else {
                        "absent".to_string()
                    }
                }
                "AWS::CodePipeline::Pipeline" => {
                    let client = aws.codepipeline(account, region).await?;
                    match client.get_pipeline().name(&name).send().await {
                        Ok(_) => {
                            client
                                .delete_pipeline()
                                .name(&name)
                                .send()
                                .await
                                .aws(&client)
                                .with_context(|| format!("deleting pipeline {name} in {place}"))?;
                            "deleted".to_string()
                        }
                        Err(error)
                            if error
                                .as_service_error()
                                .is_some_and(|error| error.is_pipeline_not_found_exception()) =>
                        {
                            "absent".to_string()
                        }
                        Err(error) => {
                            return Err(error)
                                .aws(&client)
                                .with_context(|| format!("looking for pipeline {name} in {place}"));
                        }
                    }
                }
                other => bail!("{other} has no removal"),
            };
            removed.push(row);
        }
    }
    Ok(removed)
}

/// The name a stand-in of `kind` goes by in its API.
fn name_of(kind: &str, properties: &Value) -> Result<String> {
    let field = match kind {
        "AWS::CodeCommit::Repository" => "RepositoryName",
        "AWS::CodeBuild::Project" | "AWS::CodePipeline::Pipeline" => "Name",
        "AWS::CodeDeploy::Application" => "ApplicationName",
        "AWS::CodeDeploy::DeploymentGroup" => {
            let application = properties["ApplicationName"].as_str().unwrap_or_default();
            let group = properties["DeploymentGroupName"].as_str().context("the deployment group has no name")?;
            return Ok(format!("{application}/{group}"));
        }
        other => bail!("{other} has no stand-in"),
    };
    properties[field].as_str().map(str::to_string).with_context(|| format!("the {kind} names itself with no {field}"))
}

/// A resolved property map, taken apart key by key: what is left when it is `done` is a property
/// the mapping does not know, an error naming it.
struct Props {
    what: String,
    map: Map<String, Value>,
}

impl Props {
    fn new(what: impl Into<String>, value: Value) -> Result<Props> {
        let what = what.into();
        match value {
            Value::Object(map) => Ok(Props { what, map }),
            other => bail!("{what} is not an object: {other}"),
        }
    }

    fn take(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key)
    }

    fn string(&mut self, key: &str) -> Result<Option<String>> {
        self.take(key).map(|value| text(&value).with_context(|| format!("{}.{key}", self.what))).transpose()
    }

    fn required(&mut self, key: &str) -> Result<String> {
        self.string(key)?.with_context(|| format!("{} has no {key}", self.what))
    }

    fn int(&mut self, key: &str) -> Result<Option<i32>> {
        self.take(key)
            .map(|value| {
                text(&value)?.parse::<i32>().with_context(|| format!("{}.{key} is not a whole number", self.what))
            })
            .transpose()
    }

    fn bool(&mut self, key: &str) -> Result<Option<bool>> {
        self.take(key)
            .map(|value| match value {
                Value::Bool(flag) => Ok(flag),
                Value::String(text) if text == "true" || text == "false" => Ok(text == "true"),
                other => bail!("{}.{key} is not a boolean: {other}", self.what),
            })
            .transpose()
    }

    fn object(&mut self, key: &str) -> Result<Option<Props>> {
        let what = format!("{}.{key}", self.what);
        self.take(key).map(|value| Props::new(what, value)).transpose()
    }

    /// The items of list `key` (none when absent), each as properties.
    fn objects(&mut self, key: &str) -> Result<Vec<Props>> {
        let what = format!("{}.{key}", self.what);
        match self.take(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(index, item)| Props::new(format!("{what}[{index}]"), item))
                .collect(),
            Some(other) => bail!("{what} is not a list: {other}"),
        }
    }

    fn strings(&mut self, key: &str) -> Result<Option<Vec<String>>> {
        let what = format!("{}.{key}", self.what);
        match self.take(key) {
            None => Ok(None),
            Some(Value::Array(items)) => {
                items.iter().map(|item| text(item).with_context(|| what.clone())).collect::<Result<_>>().map(Some)
            }
            Some(other) => bail!("{what} is not a list: {other}"),
        }
    }

    /// Every property was mapped, or the error names those that were not.
    fn done(self) -> Result<()> {
        if self.map.is_empty() {
            return Ok(());
        }
        let left: Vec<&str> = self.map.keys().map(String::as_str).collect();
        bail!(
            "{} sets {}, which the stand-in does not map onto the API; extend xtask/src/engine/stand_ins.rs",
            self.what,
            left.join(", ")
        )
    }
}

/// A scalar as the text an API field takes.
fn text(value: &Value) -> Result<String> {
    match value {
        Value::String(text) => Ok(text.clone()),
        Value::Number(number) => Ok(number.to_string()),
        Value::Bool(flag) => Ok(flag.to_string()),
        other => bail!("expected a scalar, found {other}"),
    }
}

/// `AWS::CodeCommit::Repository`
/// (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-codecommit-repository.html)
/// as CreateRepository's input.
fn repository(properties: Value) -> Result<aws_sdk_codecommit::operation::create_repository::CreateRepositoryInput> {
    let mut props = Props::new("Repository", properties)?;
    let input = aws_sdk_codecommit::operation::create_repository::CreateRepositoryInput::builder()
        .repository_name(props.required("RepositoryName")?)
        .set_repository_description(props.string("RepositoryDescription")?)
        .set_kms_key_id(props.string("KmsKeyId")?)
        .set_tags(tags(&mut props)?.map(|tags| tags.into_iter().collect()))
        .build()?;
    props.done()?;
    Ok(input)
}

/// A resource's `Tags` (a list of `Key`/`Value`), if set.
fn tags(props: &mut Props) -> Result<Option<Vec<(String, String)>>> {
    if !props.map.contains_key("Tags") {
        return Ok(None);
    }
    props
        .objects("Tags")?
        .into_iter()
        .map(|mut tag| {
            let pair = (tag.required("Key")?, tag.required("Value")?);
            tag.done()?;
            Ok(pair)
        })
        .collect::<Result<_>>()
        .map(Some)
}

/// `AWS::CodeBuild::Project`
/// (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-codebuild-project.html)
/// as CreateProject's input.
fn project(properties: Value) -> Result<aws_sdk_codebuild::operation::create_project::CreateProjectInput> {
    use aws_sdk_codebuild::types::{
        ArtifactsType, CacheType, CloudWatchLogsConfig, ComputeType, EnvironmentType, EnvironmentVariable,
        EnvironmentVariableType, ImagePullCredentialsType, LogsConfig, LogsConfigStatusType, ProjectArtifacts,
        ProjectCache, ProjectEnvironment, ProjectSource, S3LogsConfig, SourceType, Tag,
    };
    let mut props = Props::new("Project", properties)?;
    let mut source = props.object("Source")?.context("Project has no Source")?;
    let source_input = ProjectSource::builder()
        .r#type(SourceType::from(source.required("Type")?.as_str()))
        .set_location(source.string("Location")?)
        .set_buildspec(source.string("BuildSpec")?)
        .set_git_clone_depth(source.int("GitCloneDepth")?)
        .build()?;
    source.done()?;
    let mut artifacts = props.object("Artifacts")?.context("Project has no Artifacts")?;
    let artifacts_input = ProjectArtifacts::builder()
        .r#type(ArtifactsType::from(artifacts.required("Type")?.as_str()))
        .set_location(artifacts.string("Location")?)
        .build()?;
    artifacts.done()?;
    let cache = match props.object("Cache")? {
        Some(mut cache) => {
            let input = ProjectCache::builder()
                .r#type(CacheType::from(cache.required("Type")?.as_str()))
                .set_location(cache.string("Location")?)
                .build()?;
            cache.done()?;
            Some(input)
        }
        None => None,
    };
    let mut environment = props.object("Environment")?.context("Project has no Environment")?;
    let variables = environment
        .objects("EnvironmentVariables")?
        .into_iter()
        .map(|mut variable| {
            let built = EnvironmentVariable::builder()
                .name(variable.required("Name")?)
                .value(variable.required("Value")?)
                .set_type(variable.string("Type")?.map(|kind| EnvironmentVariableType::from(kind.as_str())))
                .build()?;
            variable.done()?;
            Ok(built)
        })
        .collect::<Result<Vec<_>>>()?;
    let environment_input = ProjectEnvironment::builder()
        .r#type(EnvironmentType::from(environment.required("Type")?.as_str()))
        .compute_type(ComputeType::from(environment.required("ComputeType")?.as_str()))
        .image(environment.required("Image")?)
        .set_image_pull_credentials_type(
            environment.string("ImagePullCredentialsType")?.map(|kind| ImagePullCredentialsType::from(kind.as_str())),
        )
        .set_privileged_mode(environment.bool("PrivilegedMode")?)
        .set_environment_variables((!variables.is_empty()).then_some(variables))
        .build()?;
    environment.done()?;
    let logs = match props.object("LogsConfig")? {
        Some(mut logs) => {
            let mut built = LogsConfig::builder();
            if let Some(mut cloudwatch) = logs.object("CloudWatchLogs")? {
                built = built.cloud_watch_logs(
                    CloudWatchLogsConfig::builder()
                        .status(LogsConfigStatusType::from(cloudwatch.required("Status")?.as_str()))
                        .set_group_name(cloudwatch.string("GroupName")?)
                        .set_stream_name(cloudwatch.string("StreamName")?)
                        .build()?,
                );
                cloudwatch.done()?;
            }
            if let Some(mut s3) = logs.object("S3Logs")? {
                built = built.s3_logs(
                    S3LogsConfig::builder()
                        .status(LogsConfigStatusType::from(s3.required("Status")?.as_str()))
                        .set_location(s3.string("Location")?)
                        .build()?,
                );
                s3.done()?;
            }
            logs.done()?;
            Some(built.build())
        }
        None => None,
    };
    let tags = tags(&mut props)?
        .map(|tags| tags.into_iter().map(|(key, value)| Tag::builder().key(key).value(value).build()).collect());
    let input = aws_sdk_codebuild::operation::create_project::CreateProjectInput::builder()
        .name(props.required("Name")?)
        .set_description(props.string("Description")?)
        .service_role(props.required("ServiceRole")?)
        .set_encryption_key(props.string("EncryptionKey")?)
        .set_timeout_in_minutes(props.int("TimeoutInMinutes")?)
        .set_queued_timeout_in_minutes(props.int("QueuedTimeoutInMinutes")?)
        .source(source_input)
        .artifacts(artifacts_input)
        .set_cache(cache)
        .environment(environment_input)
        .set_logs_config(logs)
        .set_tags(tags)
        .build()?;
    props.done()?;
    Ok(input)
}

/// `AWS::CodePipeline::Pipeline`
/// (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-codepipeline-pipeline.html)
/// as CreatePipeline's declaration, and what of the template has no API field.
fn pipeline(properties: Value) -> Result<(aws_sdk_codepipeline::types::PipelineDeclaration, Vec<String>)> {
    use aws_sdk_codepipeline::types::{
        ActionCategory, ActionDeclaration, ActionOwner, ActionTypeId, ArtifactStore, ArtifactStoreType, EncryptionKey,
        EncryptionKeyType, InputArtifact, OutputArtifact, PipelineDeclaration, PipelineType, StageDeclaration,
    };
    let mut props = Props::new("Pipeline", properties)?;
    let mut notes = Vec::new();
    // RestartExecutionOnUpdate is CloudFormation's own: it restarts the pipeline after a stack
    // update, and CreatePipeline has no such field (same page).
    if props.bool("RestartExecutionOnUpdate")? == Some(true) {
        notes.push("RestartExecutionOnUpdate is CloudFormation's own and is not applied by a stand-in".to_string());
    }
    let store = |mut store: Props| -> Result<ArtifactStore> {
        let mut key = store.object("EncryptionKey")?;
        let built = ArtifactStore::builder()
            .r#type(ArtifactStoreType::from(store.required("Type")?.as_str()))
            .location(store.required("Location")?)
            .set_encryption_key(match key.as_mut() {
                Some(key) => Some(
                    EncryptionKey::builder()
                        .id(key.required("Id")?)
                        .r#type(EncryptionKeyType::from(key.required("Type")?.as_str()))
                        .build()?,
                ),
                None => None,
            })
            .build()?;
        if let Some(key) = key {
            key.done()?;
        }
        store.done()?;
        Ok(built)
    };
    let mut declaration = PipelineDeclaration::builder()
        .name(props.required("Name")?)
        .role_arn(props.required("RoleArn")?)
        .set_pipeline_type(props.string("PipelineType")?.map(|kind| PipelineType::from(kind.as_str())));
    if let Some(single) = props.object("ArtifactStore")? {
        declaration = declaration.artifact_store(store(single)?);
    }
    let mut stores = HashMap::new();
    for mut entry in props.objects("ArtifactStores")? {
        let region = entry.required("Region")?;
        let single = entry.object("ArtifactStore")?.context("an ArtifactStores entry has no ArtifactStore")?;
        if stores.insert(region.clone(), store(single)?).is_some() {
            anyhow::bail!("ArtifactStores names region {region} twice; a pipeline has one artifact store per region");
        }
        entry.done()?;
    }
    if !stores.is_empty() {
        declaration = declaration.set_artifact_stores(Some(stores));
    }
    for mut stage in props.objects("Stages")? {
        let mut built = StageDeclaration::builder().name(stage.required("Name")?);
        for mut action in stage.objects("Actions")? {
            let mut type_id = action.object("ActionTypeId")?.context("an action has no ActionTypeId")?;
            let type_built = ActionTypeId::builder()
                .category(ActionCategory::from(type_id.required("Category")?.as_str()))
                .owner(ActionOwner::from(type_id.required("Owner")?.as_str()))
                .provider(type_id.required("Provider")?)
                .version(type_id.required("Version")?)
                .build()?;
            type_id.done()?;
            // An action's configuration is a map of strings in the API (booleans as `true`/`false`).
            let configuration = match action.take("Configuration") {
                Some(Value::Object(map)) => Some(
                    map.iter()
                        .map(|(key, value)| {
                            Ok((key.clone(), text(value).with_context(|| format!("Configuration.{key}"))?))
                        })
                        .collect::<Result<HashMap<_, _>>>()?,
                ),
                Some(other) => bail!("an action's Configuration is not a map: {other}"),
                None => None,
            };
            let named = |items: Vec<Props>| -> Result<Vec<String>> {
                items
                    .into_iter()
                    .map(|mut item| {
                        let name = item.required("Name")?;
                        item.done()?;
                        Ok(name)
                    })
                    .collect()
            };
            let inputs = named(action.objects("InputArtifacts")?)?;
            let outputs = named(action.objects("OutputArtifacts")?)?;
            let declared = ActionDeclaration::builder()
                .name(action.required("Name")?)
                .action_type_id(type_built)
                .set_run_order(action.int("RunOrder")?)
                .set_configuration(configuration)
                .set_input_artifacts(
                    (!inputs.is_empty())
                        .then(|| {
                            inputs
                                .into_iter()
                                .map(|name| InputArtifact::builder().name(name).build())
                                .collect::<Result<_, _>>()
                        })
                        .transpose()?,
                )
                .set_output_artifacts(
                    (!outputs.is_empty())
                        .then(|| {
                            outputs
                                .into_iter()
                                .map(|name| OutputArtifact::builder().name(name).build())
                                .collect::<Result<_, _>>()
                        })
                        .transpose()?,
                )
                .set_role_arn(action.string("RoleArn")?)
                .set_region(action.string("Region")?)
                .set_namespace(action.string("Namespace")?)
                .build()?;
            action.done()?;
            built = built.actions(declared);
        }
        declaration = declaration.stages(built.build()?);
        stage.done()?;
    }
    let declaration = declaration.build()?;
    props.done()?;
    Ok((declaration, notes))
}

/// `AWS::CodeDeploy::Application`
/// (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-codedeploy-application.html)
/// as CreateApplication's input.
fn application(properties: Value) -> Result<aws_sdk_codedeploy::operation::create_application::CreateApplicationInput> {
    use aws_sdk_codedeploy::types::{ComputePlatform, Tag};
    let mut props = Props::new("Application", properties)?;
    let tags = tags(&mut props)?
        .map(|tags| tags.into_iter().map(|(key, value)| Tag::builder().key(key).value(value).build()).collect());
    let input = aws_sdk_codedeploy::operation::create_application::CreateApplicationInput::builder()
        .application_name(props.required("ApplicationName")?)
        .set_compute_platform(props.string("ComputePlatform")?.map(|platform| ComputePlatform::from(platform.as_str())))
        .set_tags(tags)
        .build()?;
    props.done()?;
    Ok(input)
}

/// `AWS::CodeDeploy::DeploymentGroup`
/// (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-codedeploy-deploymentgroup.html)
/// as CreateDeploymentGroup's input.
fn deployment_group(
    properties: Value,
) -> Result<aws_sdk_codedeploy::operation::create_deployment_group::CreateDeploymentGroupInput> {
    use aws_sdk_codedeploy::types::{
        Alarm, AlarmConfiguration, AutoRollbackConfiguration, AutoRollbackEvent, BlueGreenDeploymentConfiguration,
        BlueInstanceTerminationOption, DeploymentOption, DeploymentReadyAction, DeploymentReadyOption, DeploymentStyle,
        DeploymentType, EcsService, InstanceAction, LoadBalancerInfo, Tag, TargetGroupInfo, TargetGroupPairInfo,
        TrafficRoute,
    };
    let mut props = Props::new("DeploymentGroup", properties)?;
    let style = match props.object("DeploymentStyle")? {
        Some(mut style) => {
            let built = DeploymentStyle::builder()
                .set_deployment_type(style.string("DeploymentType")?.map(|kind| DeploymentType::from(kind.as_str())))
                .set_deployment_option(
                    style.string("DeploymentOption")?.map(|option| DeploymentOption::from(option.as_str())),
                )
                .build();
            style.done()?;
            Some(built)
        }
        None => None,
    };
    let blue_green = match props.object("BlueGreenDeploymentConfiguration")? {
        Some(mut config) => {
            let mut built = BlueGreenDeploymentConfiguration::builder();
            if let Some(mut ready) = config.object("DeploymentReadyOption")? {
                built = built.deployment_ready_option(
                    DeploymentReadyOption::builder()
                        .set_action_on_timeout(
                            ready.string("ActionOnTimeout")?.map(|action| DeploymentReadyAction::from(action.as_str())),
                        )
                        .set_wait_time_in_minutes(ready.int("WaitTimeInMinutes")?)
                        .build(),
                );
                ready.done()?;
            }
            if let Some(mut terminate) = config.object("TerminateBlueInstancesOnDeploymentSuccess")? {
                built = built.terminate_blue_instances_on_deployment_success(
                    BlueInstanceTerminationOption::builder()
                        .set_action(terminate.string("Action")?.map(|action| InstanceAction::from(action.as_str())))
                        .set_termination_wait_time_in_minutes(terminate.int("TerminationWaitTimeInMinutes")?)
                        .build(),
                );
                terminate.done()?;
            }
            config.done()?;
            Some(built.build())
        }
        None => None,
    };
    let services = props
        .objects("ECSServices")?
        .into_iter()
        .map(|mut service| {
            let built = EcsService::builder()
                .cluster_name(service.required("ClusterName")?)
                .service_name(service.required("ServiceName")?)
                .build();
            service.done()?;
            Ok(built)
        })
        .collect::<Result<Vec<_>>>()?;
    let load_balancer = match props.object("LoadBalancerInfo")? {
        Some(mut info) => {
            let route = |route: Option<Props>| -> Result<Option<TrafficRoute>> {
                let Some(mut route) = route else { return Ok(None) };
                let built = TrafficRoute::builder().set_listener_arns(route.strings("ListenerArns")?).build();
                route.done()?;
                Ok(Some(built))
            };
            let pairs = info
                .objects("TargetGroupPairInfoList")?
                .into_iter()
                .map(|mut pair| {
                    let groups = pair
                        .objects("TargetGroups")?
                        .into_iter()
                        .map(|mut group| {
                            let built = TargetGroupInfo::builder().name(group.required("Name")?).build();
                            group.done()?;
                            Ok(built)
                        })
                        .collect::<Result<Vec<_>>>()?;
                    let built = TargetGroupPairInfo::builder()
                        .set_target_groups(Some(groups))
                        .set_prod_traffic_route(route(pair.object("ProdTrafficRoute")?)?)
                        .set_test_traffic_route(route(pair.object("TestTrafficRoute")?)?)
                        .build();
                    pair.done()?;
                    Ok(built)
                })
                .collect::<Result<Vec<_>>>()?;
            info.done()?;
            Some(LoadBalancerInfo::builder().set_target_group_pair_info_list(Some(pairs)).build())
        }
        None => None,
    };
    let rollback = match props.object("AutoRollbackConfiguration")? {
        Some(mut config) => {
            let events = config
                .strings("Events")?
                .map(|events| events.iter().map(|event| AutoRollbackEvent::from(event.as_str())).collect());
            let built =
                AutoRollbackConfiguration::builder().set_enabled(config.bool("Enabled")?).set_events(events).build();
            config.done()?;
            Some(built)
        }
        None => None,
    };
    let alarms = match props.object("AlarmConfiguration")? {
        Some(mut config) => {
            let alarms = config
                .objects("Alarms")?
                .into_iter()
                .map(|mut alarm| {
                    let built = Alarm::builder().set_name(alarm.string("Name")?).build();
                    alarm.done()?;
                    Ok(built)
                })
                .collect::<Result<Vec<_>>>()?;
            let built = AlarmConfiguration::builder()
                .set_enabled(config.bool("Enabled")?)
                .set_ignore_poll_alarm_failure(config.bool("IgnorePollAlarmFailure")?)
                .set_alarms(Some(alarms))
                .build();
            config.done()?;
            Some(built)
        }
        None => None,
    };
    let tags = tags(&mut props)?
        .map(|tags| tags.into_iter().map(|(key, value)| Tag::builder().key(key).value(value).build()).collect());
    let input = aws_sdk_codedeploy::operation::create_deployment_group::CreateDeploymentGroupInput::builder()
        .application_name(props.required("ApplicationName")?)
        .deployment_group_name(props.required("DeploymentGroupName")?)
        .service_role_arn(props.required("ServiceRoleArn")?)
        .set_deployment_config_name(props.string("DeploymentConfigName")?)
        .set_deployment_style(style)
        .set_blue_green_deployment_configuration(blue_green)
        .set_ecs_services((!services.is_empty()).then_some(services))
        .set_load_balancer_info(load_balancer)
        .set_auto_rollback_configuration(rollback)
        .set_alarm_configuration(alarms)
        .set_tags(tags)
        .build()?;
    props.done()?;
    Ok(input)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::template::Template;
    use crate::template::resolve::Scope;

    /// The repo's template `path` deployed as `stack` with `parameters`, its roles and log groups
    /// made by the emulator (physical ids), its Code* resources not.
    fn deployed(path: &str, stack: &str, parameters: &[(&str, &str)]) -> Deployed {
        let template = Template::load(&crate::project::root().join(path)).unwrap().body;
        let physical_ids = BTreeMap::from([
            ("BuildRole".to_string(), "web-build".to_string()),
            ("BuildLogGroup".to_string(), "/aws/codebuild/web-build".to_string()),
            ("ValidateLogGroup".to_string(), "/aws/codebuild/web-validate".to_string()),
            ("PipelineRole".to_string(), "web-pipeline".to_string()),
            ("CodeDeployRole".to_string(), "web-release-CodeDeployRole-ABC".to_string()),
        ]);
        let scope = Scope {
            account: "111111111111".into(),
            region: "ap-south-1".into(),
            stack_name: stack.into(),
            parameters: parameters.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect(),
            physical_ids,
        };
        Deployed { template, scope }
    }

    #[test]
    fn the_source_repository_maps_onto_create_repository() {
        let source = deployed("cfn/tools/source.yaml", "web-source", &[("RepositoryName", "web")]);
        let input = repository(properties(&source, "Repository").unwrap()).unwrap();
        assert_eq!(input.repository_name.as_deref(), Some("web"));
        assert_eq!(
            input.repository_description.as_deref(),
            Some("Source of web-source; a merge to main starts the release pipeline.")
        );
        assert_eq!((input.kms_key_id, input.tags), (None, None));
    }

    #[test]
    fn both_build_projects_map_onto_create_project() {
        use aws_sdk_codebuild::types::{ArtifactsType, ComputeType, LogsConfigStatusType, SourceType};
        let build = deployed(
            "cfn/tools/build.yaml",
            "web-build",
            &[
                ("ProjectName", "web-build"),
                ("ValidateProjectName", "web-validate"),
                ("BuildRoleName", "web-build"),
                ("KeyArn", "arn:aws:kms:ap-south-1:111111111111:key/mrk-1"),
                ("KeyArns", "arn:aws:kms:ap-south-1:111111111111:key/mrk-1"),
                ("ArtifactBucket", "web-artifacts-111111111111-ap-south-1"),
                ("ArtifactBucketArns", "arn:aws:s3:::web-artifacts-111111111111-ap-south-1"),
                ("RepositoryName", "web"),
                ("EcrRepositoryArns", "arn:aws:ecr:ap-south-1:222222222222:repository/web"),
            ],
        );
        let release = project(properties(&build, "Project").unwrap()).unwrap();
        assert_eq!(release.name.as_deref(), Some("web-build"));
        assert_eq!(release.service_role.as_deref(), Some("arn:aws:iam::111111111111:role/web-build"));
        assert_eq!(release.encryption_key.as_deref(), Some("arn:aws:kms:ap-south-1:111111111111:key/mrk-1"));
        assert_eq!((release.timeout_in_minutes, release.queued_timeout_in_minutes), (Some(60), Some(60)));
        let source = release.source.as_ref().unwrap();
        assert_eq!((&source.r#type, source.buildspec.as_deref()), (&SourceType::Codepipeline, Some("buildspec.yaml")));
        assert_eq!(source.location, None, "the template sets none; only the emulator's call gets one");
        assert_eq!(release.artifacts.as_ref().unwrap().r#type, ArtifactsType::Codepipeline);
        assert_eq!(
            release.cache.as_ref().unwrap().location.as_deref(),
            Some("web-artifacts-111111111111-ap-south-1/codebuild-cache/web-build")
        );
        let environment = release.environment.as_ref().unwrap();
        assert_eq!(environment.compute_type, ComputeType::BuildGeneral1Medium);
        assert_eq!(environment.image, "aws/codebuild/standard:7.0");
        assert_eq!(environment.privileged_mode, Some(true));
        let variables = environment.environment_variables();
        assert_eq!((variables.len(), variables[0].name.as_str(), variables[0].value.as_str()), (1, "CI_STEP", "build"));
        let logs = release.logs_config.as_ref().unwrap();
        let cloudwatch = logs.cloud_watch_logs.as_ref().unwrap();
        assert_eq!(
            (&cloudwatch.status, cloudwatch.group_name.as_deref()),
            (&LogsConfigStatusType::Enabled, Some("/aws/codebuild/web-build"))
        );
        assert_eq!(logs.s3_logs.as_ref().unwrap().status, LogsConfigStatusType::Disabled);

        let validate = project(properties(&build, "ValidateProject").unwrap()).unwrap();
        let source = validate.source.as_ref().unwrap();
        assert_eq!(source.r#type, SourceType::Codecommit);
        assert_eq!(source.location.as_deref(), Some("https://git-codecommit.ap-south-1.amazonaws.com/v1/repos/web"));
        assert_eq!(source.git_clone_depth, Some(0));
        assert_eq!(validate.artifacts.as_ref().unwrap().r#type, ArtifactsType::NoArtifacts);
        assert_eq!(validate.environment.as_ref().unwrap().environment_variables()[0].value, "check");
    }

    #[test]
    fn the_pipeline_maps_onto_create_pipeline() {
        use aws_sdk_codepipeline::types::{EncryptionKeyType, PipelineType};
        let stack = deployed(
            "cfn/tools/pipeline.yaml",
            "web-pipeline",
            &[
                ("PipelineName", "web"),
                ("PipelineRoleName", "web-pipeline"),
                ("RepositoryName", "web"),
                ("BuildProjectName", "web-build"),
                ("Region1Name", "ap-south-1"),
                ("Region1Bucket", "web-artifacts-111111111111-ap-south-1"),
                ("Region1KeyArn", "arn:aws:kms:ap-south-1:111111111111:key/mrk-1"),
                ("Workload1Name", "india"),
                ("Workload1Region", "ap-south-1"),
                ("Workload1RoleArn", "arn:aws:iam::222222222222:role/web-release-ap-south-1"),
                ("Workload1Application", "web"),
                ("Workload1DeploymentGroup", "web"),
            ],
        );
        let (declaration, notes) = pipeline(properties(&stack, "Pipeline").unwrap()).unwrap();
        assert!(notes.is_empty(), "RestartExecutionOnUpdate is false: {notes:?}");
        assert_eq!(declaration.name(), "web");
        assert_eq!(declaration.role_arn(), "arn:aws:iam::111111111111:role/web-pipeline");
        assert_eq!(declaration.pipeline_type(), Some(&PipelineType::V2));
        assert_eq!(declaration.triggers(), &[], "Triggers is AWS::NoValue with CodeCommit");
        let store = &declaration.artifact_stores().unwrap()["ap-south-1"];
        assert_eq!(store.location(), "web-artifacts-111111111111-ap-south-1");
        let key = store.encryption_key().unwrap();
        assert_eq!(
            (key.id(), key.r#type()),
            ("arn:aws:kms:ap-south-1:111111111111:key/mrk-1", &EncryptionKeyType::Kms)
        );
        let stages: Vec<&str> = declaration.stages().iter().map(|stage| stage.name()).collect();
        assert_eq!(stages, ["Source", "Build", "Wave1"]);
        let source = &declaration.stages()[0].actions()[0];
        assert_eq!(source.action_type_id().unwrap().provider(), "CodeCommit");
        let configuration = source.configuration().unwrap();
        assert_eq!(configuration["PollForSourceChanges"], "false", "the API takes a map of strings");
        assert_eq!(configuration["BranchName"], "main");
        assert_eq!(source.namespace(), Some("SourceVariables"));
        assert_eq!(source.output_artifacts()[0].name(), "SourceArtifact");
        let build = &declaration.stages()[1].actions()[0];
        assert_eq!(build.configuration().unwrap()["ProjectName"], "web-build");
        assert!(build.configuration().unwrap()["EnvironmentVariables"].contains("#{SourceVariables.AuthorDate}"));
        let deploy = &declaration.stages()[2].actions()[0];
        assert_eq!(deploy.name(), "Deploy-india");
        assert_eq!(deploy.region(), Some("ap-south-1"));
        assert_eq!(deploy.role_arn(), Some("arn:aws:iam::222222222222:role/web-release-ap-south-1"));
        assert_eq!(deploy.configuration().unwrap()["TaskDefinitionTemplatePath"], "india/taskdef.json");
        assert_eq!(deploy.input_artifacts()[0].name(), "BuildArtifact");
        assert_eq!(deploy.run_order(), Some(1));
    }

    #[test]
    fn the_release_application_and_group_map_onto_codedeploy() {
        use aws_sdk_codedeploy::types::{
            AutoRollbackEvent, ComputePlatform, DeploymentReadyAction, DeploymentType, InstanceAction,
        };
        let listener =
            |name: &str| format!("arn:aws:elasticloadbalancing:ap-south-1:111111111111:listener/app/web/1/{name}");
        let (prod, test) = (listener("prod"), listener("test"));
        let release = deployed(
            "cfn/workload/release.yaml",
            "web-release",
            &[
                ("ApplicationName", "web"),
                ("DeploymentGroupName", "web"),
                ("ClusterName", "web"),
                ("ServiceName", "web"),
                ("ProdListenerArn", &prod),
                ("TestListenerArn", &test),
                ("BlueTargetGroupName", "web-blue"),
                ("GreenTargetGroupName", "web-green"),
                ("LoadBalancerFullName", "app/web/1"),
                ("TerminationWaitMinutes", "7"),
            ],
        );
        let application = application(properties(&release, "Application").unwrap()).unwrap();
        assert_eq!(application.application_name.as_deref(), Some("web"));
        assert_eq!(application.compute_platform, Some(ComputePlatform::Ecs));

        let group = deployment_group(properties(&release, "DeploymentGroup").unwrap()).unwrap();
        assert_eq!(group.application_name.as_deref(), Some("web"), "Ref Application is its name");
        assert_eq!(group.deployment_group_name.as_deref(), Some("web"));
        assert_eq!(
            group.service_role_arn.as_deref(),
            Some("arn:aws:iam::111111111111:role/web-release-CodeDeployRole-ABC")
        );
        assert_eq!(group.deployment_config_name.as_deref(), Some("CodeDeployDefault.ECSCanary10Percent5Minutes"));
        assert_eq!(group.deployment_style.as_ref().unwrap().deployment_type(), Some(&DeploymentType::BlueGreen));
        let blue_green = group.blue_green_deployment_configuration.as_ref().unwrap();
        let ready = blue_green.deployment_ready_option().unwrap();
        assert_eq!(
            (ready.action_on_timeout(), ready.wait_time_in_minutes()),
            (Some(&DeploymentReadyAction::ContinueDeployment), 0)
        );
        let terminate = blue_green.terminate_blue_instances_on_deployment_success().unwrap();
        assert_eq!(
            (terminate.action(), terminate.termination_wait_time_in_minutes()),
            (Some(&InstanceAction::Terminate), 7)
        );
        let services = group.ecs_services.as_ref().unwrap();
        assert_eq!((services[0].cluster_name(), services[0].service_name()), (Some("web"), Some("web")));
        let pair = &group.load_balancer_info.as_ref().unwrap().target_group_pair_info_list()[0];
        let groups: Vec<Option<&str>> = pair.target_groups().iter().map(|group| group.name()).collect();
        assert_eq!(groups, [Some("web-blue"), Some("web-green")]);
        assert_eq!(pair.prod_traffic_route().unwrap().listener_arns(), [prod]);
        assert_eq!(pair.test_traffic_route().unwrap().listener_arns(), [test]);
        let rollback = group.auto_rollback_configuration.as_ref().unwrap();
        assert!(rollback.enabled());
        assert_eq!(rollback.events().len(), 3);
        assert!(rollback.events().contains(&AutoRollbackEvent::DeploymentStopOnAlarm));
        let alarms = group.alarm_configuration.as_ref().unwrap();
        assert!(alarms.enabled() && !alarms.ignore_poll_alarm_failure());
        assert_eq!(alarms.alarms()[0].name(), Some("web-web-5xx"), "Ref of the alarm the emulator skipped is its name");
    }

    #[test]
    fn a_property_the_mapping_does_not_know_is_named_not_dropped() {
        let properties = serde_json::json!({
            "RepositoryName": "web",
            "Code": {"S3": {"Bucket": "b", "Key": "k"}},
            "Triggers": [],
        });
        let error = repository(properties).unwrap_err().to_string();
        assert!(error.contains("Repository sets Code, Triggers, which the stand-in does not map"), "{error}");
        let nested = serde_json::json!({
            "Name": "p", "ServiceRole": "arn:aws:iam::1:role/r",
            "Source": {"Type": "CODEPIPELINE", "InsecureSsl": true},
            "Artifacts": {"Type": "CODEPIPELINE"},
            "Environment": {"Type": "LINUX_CONTAINER", "ComputeType": "BUILD_GENERAL1_SMALL", "Image": "i"},
        });
        let error = project(nested).unwrap_err().to_string();
        assert!(error.contains("Project.Source sets InsecureSsl"), "{error}");
    }
}
