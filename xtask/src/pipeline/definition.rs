//! The pipeline and build project as deployed: the template the plan deploys (the expanded
//! `target/cfn/pipeline.json`, `cfn/tools/build.yaml`) resolved with the parameters and
//! physical ids of the stack CloudFormation holds (`template/resolve.rs`). The emulator's
//! CloudFormation keeps the stacks and their parameters but creates no CodePipeline or CodeBuild
//! resource, so this, not `GetPipeline`, is what the rehearsal runs.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::aws::{Aws, AwsResultExt};
use crate::config::Config;
use crate::engine::deployed::Deployed;
use crate::template::{self, Template};

/// One artifact store: the bucket of a region and the key CodePipeline encrypts with there.
#[derive(Clone, Debug)]
pub struct Store {
    pub region: String,
    pub bucket: String,
    pub key_arn: String,
}

/// The pipeline as CodePipeline would run it.
#[derive(Clone, Debug)]
pub struct Pipeline {
    pub name: String,
    pub role_arn: String,
    pub stores: Vec<Store>,
    pub stages: Vec<Stage>,
}

impl Pipeline {
    /// The artifact store of `region`; CodePipeline needs one in every region an action runs in.
    pub fn store(&self, region: &str) -> Result<&Store> {
        self.stores
            .iter()
            .find(|store| store.region == region)
            .with_context(|| format!("the pipeline has no artifact store in {region}, where one of its actions runs"))
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Stage {
    pub name: String,
    pub actions: Vec<ActionDef>,
}

/// One action of a stage, as `AWS::CodePipeline::Pipeline` declares it.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ActionDef {
    pub name: String,
    pub action_type_id: ActionType,
    #[serde(default)]
    pub configuration: Map<String, Value>,
    #[serde(default)]
    pub input_artifacts: Vec<ArtifactName>,
    #[serde(default)]
    pub output_artifacts: Vec<ArtifactName>,
    pub namespace: Option<String>,
    pub region: Option<String>,
    pub role_arn: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ActionType {
    pub category: String,
    pub provider: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ArtifactName {
    pub name: String,
}

impl ActionDef {
    /// A configuration value as a string (`PollForSourceChanges: false` included).
    pub fn setting(&self, name: &str) -> Result<String> {
        match self.configuration.get(name) {
            Some(Value::String(text)) => Ok(text.clone()),
            Some(Value::Bool(flag)) => Ok(flag.to_string()),
            Some(Value::Number(number)) => Ok(number.to_string()),
            Some(other) => bail!("action {}: configuration {name} is {other}, not a string", self.name),
            None => bail!("action {} has no configuration {name}", self.name),
        }
    }
}

/// Reads the pipeline the config deploys: the expanded template (written afresh from
/// `cfn/tools/pipeline.yaml`, as the plan and the lint do) resolved with the deployed
/// `<app>-pipeline` stack. A deployed stack whose template differs from it is an error: the
/// rehearsal would run something else than what is deployed.
pub async fn pipeline(root: &Path, aws: &Aws, config: &Config) -> Result<Pipeline> {
    let prototype = Template::load(&root.join("cfn/tools/pipeline.yaml"))?;
    let path = template::write_expanded_pipeline(&prototype, config, &crate::project::target_dir().join("cfn"))?;
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let body: Value = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let (account, region) = (&config.tools.account, &config.tools.region);
    let stack = config.stack_name("pipeline");
    let cloudformation = aws.cloudformation(account, region).await?;
    let deployed_body =
        cloudformation.get_template().stack_name(&stack).send().await.aws(&cloudformation).with_context(|| {
            format!("reading the template of stack {stack}; run `cargo xtask deploy --local` first")
        })?;
    let deployed_body: Value = serde_json::from_str(deployed_body.template_body().unwrap_or_default())
        .with_context(|| format!("the template of stack {stack} is not the JSON the plan deploys"))?;
    if deployed_body != body {
        bail!(
            "stack {stack} was deployed from another pipeline than {} describes for {}; run `cargo xtask deploy --local`, then rehearse",
            path.display(),
            config.path.display()
        );
    }
    let deployed = Deployed::read(aws, account, region, &stack, body).await?;
    let resolver = deployed.resolver();
    let logical = resolver.only_resource_of("AWS::CodePipeline::Pipeline")?;
    let property = |name: &str| -> Result<Value> {
        resolver.resource_property(&logical, name)?.with_context(|| format!("the pipeline has no {name}"))
    };
    let name = property("Name")?.as_str().context("the pipeline's Name is not a string")?.to_string();
    let role_arn = property("RoleArn")?.as_str().context("the pipeline's RoleArn is not a string")?.to_string();
    let mut stores = Vec::new();
    for entry in property("ArtifactStores")?.as_array().context("ArtifactStores is not a list")? {
        let text = |pointer: &str| {
            entry
                .pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_string)
                .with_context(|| format!("an artifact store has no {pointer}"))
        };
        stores.push(Store {
            region: text("/Region")?,
            bucket: text("/ArtifactStore/Location")?,
            key_arn: text("/ArtifactStore/EncryptionKey/Id")?,
        });
    }
    let stages: Vec<Stage> =
        serde_json::from_value(property("Stages")?).context("the pipeline's Stages are not CodePipeline stages")?;
    Ok(Pipeline { name, role_arn, stores, stages })
}

/// The CodeBuild project the build action names, as the build stack deployed it.
#[derive(Clone, Debug)]
pub struct Project {
    pub name: String,
    pub service_role: String,
    pub encryption_key: String,
    pub buildspec: String,
    pub image: String,
    pub privileged: bool,
    /// The project's environment variables (`CI_STEP`), in order.
    pub variables: Vec<(String, String)>,
}

/// Reads project `name` from `cfn/tools/build.yaml` as the `<app>-build` stack deployed it.
pub async fn project(root: &Path, aws: &Aws, config: &Config, name: &str) -> Result<Project> {
    let template = Template::load(&root.join("cfn/tools/build.yaml"))?;
    let (account, region) = (&config.tools.account, &config.tools.region);
    let deployed = Deployed::read(aws, account, region, &config.stack_name("build"), template.body).await?;
    let resolver = deployed.resolver();
    let resources = deployed.template["Resources"].as_object().context("build.yaml has no Resources")?;
    for (logical, resource) in resources {
        if resource["Type"] != "AWS::CodeBuild::Project" {
            continue;
        }
        let text = |property: &str| -> Result<Option<String>> {
            Ok(resolver.resource_property(logical, property)?.and_then(|value| value.as_str().map(str::to_string)))
        };
        if text("Name")?.as_deref() != Some(name) {
            continue;
        }
        let environment = resolver.resource_property(logical, "Environment")?.unwrap_or_default();
        let source = resolver.resource_property(logical, "Source")?.unwrap_or_default();
        let mut variables = Vec::new();
        for variable in environment["EnvironmentVariables"].as_array().into_iter().flatten() {
            if variable["Type"].as_str().is_some_and(|kind| kind != "PLAINTEXT") {
                bail!(
                    "project {name}: variable {} is not PLAINTEXT; the rehearsal passes only those",
                    variable["Name"]
                );
            }
            let name = variable["Name"].as_str().context("a project variable has no Name")?;
            let value = match &variable["Value"] {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            variables.push((name.to_string(), value));
        }
        return Ok(Project {
            name: name.to_string(),
            service_role: text("ServiceRole")?.context("the project has no ServiceRole")?,
            encryption_key: text("EncryptionKey")?.context("the project has no EncryptionKey")?,
            buildspec: source["BuildSpec"].as_str().unwrap_or("buildspec.yml").to_string(),
            image: environment["Image"].as_str().unwrap_or_default().to_string(),
            privileged: environment["PrivilegedMode"].as_bool().unwrap_or(false),
            variables,
        });
    }
    bail!("cfn/tools/build.yaml deploys no CodeBuild project named {name}, which the pipeline's build action runs")
}

/// A CodeBuild action's `EnvironmentVariables` (a JSON list in the action's configuration), with
/// `#{Namespace.Variable}` references resolved from earlier actions' variables
/// (https://docs.aws.amazon.com/codepipeline/latest/userguide/action-reference-CodeBuild.html).
pub fn action_variables(
    action: &ActionDef,
    variables: &BTreeMap<String, BTreeMap<String, String>>,
) -> Result<Vec<(String, String)>> {
    let Some(raw) = action.configuration.get("EnvironmentVariables") else {
        return Ok(Vec::new());
    };
    let text = raw.as_str().with_context(|| format!("action {}: EnvironmentVariables is not a string", action.name))?;
    let list: Vec<Value> = serde_json::from_str(text)
        .with_context(|| format!("action {}: EnvironmentVariables is not a JSON list", action.name))?;
    let mut resolved = Vec::new();
    for entry in list {
        let name = entry["name"].as_str().context("an action variable has no name")?;
        if entry["type"].as_str().is_some_and(|kind| kind != "PLAINTEXT") {
            bail!("action {}: variable {name} is not PLAINTEXT; the rehearsal passes only those", action.name);
        }
        let value = entry["value"].as_str().context("an action variable has no value")?;
        resolved.push((name.to_string(), substitute(value, variables)?));
    }
    Ok(resolved)
}

/// `#{Namespace.Variable}` in `text`, from `variables`; an unknown one is an error, as
/// CodePipeline fails the action for it.
pub fn substitute(text: &str, variables: &BTreeMap<String, BTreeMap<String, String>>) -> Result<String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("#{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').with_context(|| format!("an unclosed #{{ in `{text}`"))?;
        let reference = &after[..end];
        let (namespace, name) =
            reference.split_once('.').with_context(|| format!("#{{{reference}}} is not #{{Namespace.Variable}}"))?;
        let value = variables
            .get(namespace)
            .and_then(|values| values.get(name))
            .with_context(|| format!("#{{{reference}}} names no variable an earlier action produced"))?;
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::resolve::{Resolver, Scope};

    #[test]
    fn pipeline_variables_are_substituted_or_refused() {
        let variables = BTreeMap::from([(
            "SourceVariables".to_string(),
            BTreeMap::from([("AuthorDate".to_string(), "2026-11-27T18:55:00Z".to_string())]),
        )]);
        assert_eq!(substitute("at #{SourceVariables.AuthorDate}.", &variables).unwrap(), "at 2026-11-27T18:55:00Z.");
        assert_eq!(substitute("plain", &variables).unwrap(), "plain");
        let error = substitute("#{SourceVariables.CommitId}", &variables).unwrap_err().to_string();
        assert!(error.contains("names no variable"), "{error}");
    }

    #[test]
    fn the_committed_pipeline_parses_as_stages() {
        let template = Template::load(&crate::project::root().join("cfn/tools/pipeline.yaml")).unwrap();
        let scope = Scope {
            account: "111111111111".into(),
            region: "ap-south-1".into(),
            stack_name: "web-pipeline".into(),
            parameters: BTreeMap::from(
                [
                    ("PipelineName", "web"),
                    ("PipelineRoleName", "web-pipeline"),
                    ("RepositoryName", "web"),
                    ("BuildProjectName", "web-build"),
                    ("Region1Name", "ap-south-1"),
                    ("Region1Bucket", "b"),
                    ("Region1KeyArn", "arn:aws:kms:ap-south-1:111111111111:key/mrk-1"),
                    ("Workload1Name", "india"),
                    ("Workload1Region", "ap-south-1"),
                    ("Workload1RoleArn", "arn:aws:iam::222222222222:role/web-release-ap-south-1"),
                    ("Workload1Application", "web"),
                    ("Workload1DeploymentGroup", "web"),
                ]
                .map(|(key, value)| (key.to_string(), value.to_string())),
            ),
            physical_ids: BTreeMap::new(),
        };
        let resolver = Resolver::new(&template.body, &scope);
        let stages: Vec<Stage> =
            serde_json::from_value(resolver.resource_property("Pipeline", "Stages").unwrap().unwrap()).unwrap();
        let names: Vec<&str> = stages.iter().map(|stage| stage.name.as_str()).collect();
        assert_eq!(names, ["Source", "Build", "Wave1"]);
        assert_eq!(stages[0].actions[0].action_type_id.provider, "CodeCommit");
        assert_eq!(stages[0].actions[0].setting("OutputArtifactFormat").unwrap(), "CODE_ZIP");
        let deploy = &stages[2].actions[0];
        assert_eq!(deploy.name, "Deploy-india");
        assert_eq!(deploy.setting("TaskDefinitionTemplatePath").unwrap(), "india/taskdef.json");
        let build_variables = action_variables(
            &stages[1].actions[0],
            &BTreeMap::from([(
                "SourceVariables".to_string(),
                BTreeMap::from([
                    ("AuthorDate".to_string(), "2026-11-27T18:55:00Z".to_string()),
                    ("CommitId".to_string(), "0123abc".to_string()),
                ]),
            )]),
        )
        .unwrap();
        assert_eq!(
            build_variables,
            [
                ("GBG_SOURCE_TIME".to_string(), "2026-11-27T18:55:00Z".to_string()),
                ("GBG_SOURCE_COMMIT".to_string(), "0123abc".to_string())
            ]
        );
    }
}
