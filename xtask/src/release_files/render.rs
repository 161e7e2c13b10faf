//! Rendering one workload's deploy documents from the templates at the project root:
//! `taskdef.json` (the task definition, its image pinned by digest), `appspec.yaml` (CodeDeploy's
//! AppSpec, keeping the `<TASK_DEFINITION>` placeholder that CodeDeployToECS fills in) and
//! `imageDetail.json` (the image URI, CodePipeline's image-artifact format).
//!
//! Templates name values as `${Name}` placeholders. The values come from the config and the
//! stacks' outputs, never from a hand edit: that is how the original's six hand-edited files with
//! account ids in their names become two templates. An unknown or unterminated placeholder is an
//! error naming the file and the name; so is any `${` left after rendering. `taskdef.json` stays
//! valid JSON as a template (numbers are written as placeholder strings and turned into numbers by
//! the typed model), and the rendered file is that model serialized, so its bytes depend only on
//! its values.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};

use crate::config::{Config, Workload};
use crate::release_files::taskdef::TaskDefinition;
use crate::template;

/// The template files, relative to the project root.
pub const TASKDEF_TEMPLATE: &str = "taskdef.json";
pub const APPSPEC_TEMPLATE: &str = "appspec.yaml";

/// The placeholder CodeDeployToECS replaces with the task definition it registered.
pub const TASK_DEFINITION_PLACEHOLDER: &str = "<TASK_DEFINITION>";

/// The names a template may use, with their values for one workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vars(BTreeMap<&'static str, String>);

/// What the service stack created for the task definition to name.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServiceFacts {
    pub execution_role_arn: String,
    pub task_role_arn: String,
    pub log_group: String,
}

/// The three documents of one workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    pub taskdef: String,
    pub appspec: String,
    pub image_detail: String,
}

/// What an AppSpec says, as far as a release needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppSpec {
    /// The `TaskDefinition` value: the placeholder in a rendered file, an ARN in a deployment.
    pub task_definition: String,
    pub container_name: String,
    pub container_port: i64,
}

impl Vars {
    /// The values for `workload`: names from the config, roles and log group from its service
    /// stack, and its image.
    pub fn new(config: &Config, workload: &Workload, service: &ServiceFacts, image: &str) -> Vars {
        Vars(BTreeMap::from([
            ("Account", workload.account.clone()),
            ("Region", workload.region.clone()),
            ("Family", config.app.clone()),
            ("ContainerName", config.app.clone()),
            ("ContainerPort", config.service.container_port.to_string()),
            ("Cpu", config.service.cpu.to_string()),
            ("Memory", config.service.memory.to_string()),
            ("Image", image.to_string()),
            ("ExecutionRoleArn", service.execution_role_arn.clone()),
            ("TaskRoleArn", service.task_role_arn.clone()),
            ("LogGroup", service.log_group.clone()),
        ]))
    }
}

/// Renders the three documents of one workload from the template texts.
pub fn render(taskdef_template: &str, appspec_template: &str, vars: &Vars) -> Result<Rendered> {
    let taskdef = render_taskdef(taskdef_template, vars)?;
    let appspec = substitute(appspec_template, vars, APPSPEC_TEMPLATE)?;
    let spec = parse_appspec(&appspec).with_context(|| format!("the rendered {APPSPEC_TEMPLATE}"))?;
    if spec.task_definition != TASK_DEFINITION_PLACEHOLDER {
        bail!(
            "{APPSPEC_TEMPLATE}: TaskDefinition must be the placeholder {TASK_DEFINITION_PLACEHOLDER} (CodeDeployToECS \
             puts the registered task definition there), not `{}`: a fixed revision would never deploy a new image",
            spec.task_definition
        );
    }
    let definition = TaskDefinition::parse(&taskdef, "the rendered taskdef.json")?;
    let container = definition.container_definitions.iter().find(|container| container.name == spec.container_name);
    let Some(container) = container else {
        bail!(
            "{APPSPEC_TEMPLATE} routes traffic to container `{}`, which {TASKDEF_TEMPLATE} does not define",
            spec.container_name
        );
    };
    if !container.port_mappings.iter().any(|mapping| i64::from(mapping.container_port) == spec.container_port) {
        bail!(
            "{APPSPEC_TEMPLATE} routes traffic to port {} of `{}`, which {TASKDEF_TEMPLATE} does not map",
            spec.container_port,
            spec.container_name
        );
    }
    let image = vars.0.get("Image").cloned().unwrap_or_default();
    let image_detail = format!("{}\n", serde_json::to_string_pretty(&serde_json::json!({ "ImageURI": image }))?);
    Ok(Rendered { taskdef, appspec, image_detail })
}

/// Fills the placeholders in a JSON template's strings, then normalises it through the typed
/// model: the output is ECS's JSON with numbers as numbers.
pub fn render_taskdef(template: &str, vars: &Vars) -> Result<String> {
    let mut value: serde_json::Value = serde_json::from_str(template)
        .with_context(|| format!("{TASKDEF_TEMPLATE} is not valid JSON; fix the template at the project root"))?;
    fill_strings(&mut value, vars)?;
    let definition: TaskDefinition = serde_json::from_value(value)
        .with_context(|| format!("{TASKDEF_TEMPLATE} does not describe a task definition this xtask can register"))?;
    definition.check().with_context(|| format!("checking the rendered {TASKDEF_TEMPLATE}"))?;
    Ok(format!("{}\n", serde_json::to_string_pretty(&definition)?))
}

fn fill_strings(value: &mut serde_json::Value, vars: &Vars) -> Result<()> {
    match value {
        serde_json::Value::String(text) => *text = substitute(text, vars, TASKDEF_TEMPLATE)?,
        serde_json::Value::Array(items) => {
            for item in items {
                fill_strings(item, vars)?;
            }
        }
        serde_json::Value::Object(fields) => {
            for (_, item) in fields.iter_mut() {
                fill_strings(item, vars)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Replaces every `${Name}` in `text`; `file` names the template in errors.
pub fn substitute(text: &str, vars: &Vars, file: &str) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut unknown = Vec::new();
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            bail!(
                "{file}: `${{` without a closing `}}` in `{}`",
                text.lines().find(|line| line.contains("${")).unwrap_or(text)
            );
        };
        let name = &after[..end];
        match vars.0.get(name) {
            Some(value) => out.push_str(value),
            None => unknown.push(name.to_string()),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    if !unknown.is_empty() {
        let known: Vec<&str> = vars.0.keys().copied().collect();
        bail!(
            "{file} uses unknown placeholder{} {}; the known ones are {}",
            if unknown.len() == 1 { "" } else { "s" },
            unknown.iter().map(|name| format!("${{{name}}}")).collect::<Vec<_>>().join(", "),
            known.iter().map(|name| format!("${{{name}}}")).collect::<Vec<_>>().join(", ")
        );
    }
    Ok(out)
}

/// Reads an ECS AppSpec: version 0.0, one `AWS::ECS::Service` target with its task definition,
/// container name and port.
pub fn parse_appspec(text: &str) -> Result<AppSpec> {
    let documents = template::parse_yaml(std::path::Path::new(APPSPEC_TEMPLATE), text)
        .map_err(|error| anyhow::anyhow!("not valid YAML: {error:#}"))?;
    let [document] = documents.as_slice() else {
        bail!("an AppSpec is exactly one YAML document, found {}", documents.len());
    };
    let version_ok = match &document["version"] {
        serde_json::Value::Number(number) => number.as_f64() == Some(0.0),
        serde_json::Value::String(text) => text == "0.0",
        _ => false,
    };
    if !version_ok {
        bail!("`version` must be 0.0");
    }
    let Some(resources) = document["Resources"].as_array() else {
        bail!("`Resources` must be a list with one entry");
    };
    let [resource] = resources.as_slice() else {
        bail!("`Resources` must hold exactly one target service, found {}", resources.len());
    };
    let Some(mapping) = resource.as_object() else {
        bail!("the entry of `Resources` must be a mapping `<name>: {{Type, Properties}}`");
    };
    let Some((_, target)) = mapping.iter().next().filter(|_| mapping.len() == 1) else {
        bail!("the entry of `Resources` must name one target");
    };
    if target["Type"] != "AWS::ECS::Service" {
        bail!("the target's `Type` must be AWS::ECS::Service");
    }
    let properties = &target["Properties"];
    let task_definition =
        properties["TaskDefinition"].as_str().context("`Properties.TaskDefinition` is missing or not text")?;
    let balancer = &properties["LoadBalancerInfo"];
    let container_name =
        balancer["ContainerName"].as_str().context("`LoadBalancerInfo.ContainerName` is missing or not text")?;
    let container_port =
        balancer["ContainerPort"].as_i64().context("`LoadBalancerInfo.ContainerPort` is missing or not a number")?;
    if text.contains("${") {
        bail!("a `${{` placeholder is left unfilled");
    }
    Ok(AppSpec {
        task_definition: task_definition.to_string(),
        container_name: container_name.to_string(),
        container_port,
    })
}

/// The AppSpec of a deployment: the rendered one with the registered task definition's ARN.
pub fn appspec_for(rendered_appspec: &str, task_definition_arn: &str) -> String {
    rendered_appspec.replace(TASK_DEFINITION_PLACEHOLDER, task_definition_arn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project;

    const IMAGE: &str = "222222222222.dkr.ecr.ap-south-1.amazonaws.com/web@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn vars() -> Vars {
        let config = Config::load(&project::root().join("deploy.toml")).unwrap();
        let service = ServiceFacts {
            execution_role_arn: "arn:aws:iam::222222222222:role/web-service-ExecutionRole-1".into(),
            task_role_arn: "arn:aws:iam::222222222222:role/web-service-TaskRole-1".into(),
            log_group: "/ecs/web".into(),
        };
        Vars::new(&config, &config.workloads[0], &service, IMAGE)
    }

    fn templates() -> (String, String) {
        let root = project::root();
        (
            std::fs::read_to_string(root.join(TASKDEF_TEMPLATE)).unwrap(),
            std::fs::read_to_string(root.join(APPSPEC_TEMPLATE)).unwrap(),
        )
    }

    #[test]
    fn the_project_templates_render_completely() {
        let (taskdef, appspec) = templates();
        let rendered = render(&taskdef, &appspec, &vars()).unwrap();
        assert!(!rendered.taskdef.contains("${") && !rendered.appspec.contains("${"));
        let value: serde_json::Value = serde_json::from_str(&rendered.taskdef).unwrap();
        assert_eq!(value["family"], "web");
        assert_eq!(value["executionRoleArn"], "arn:aws:iam::222222222222:role/web-service-ExecutionRole-1");
        let container = &value["containerDefinitions"][0];
        assert_eq!(container["image"], IMAGE);
        assert_eq!(container["portMappings"][0]["containerPort"], 8080);
        assert_eq!(container["environment"][0]["value"], "8080");
        assert_eq!(container["logConfiguration"]["options"]["awslogs-region"], "ap-south-1");
        assert_eq!(container["logConfiguration"]["options"]["awslogs-group"], "/ecs/web");
        let spec = parse_appspec(&rendered.appspec).unwrap();
        assert_eq!(
            spec,
            AppSpec {
                task_definition: TASK_DEFINITION_PLACEHOLDER.into(),
                container_name: "web".into(),
                container_port: 8080
            }
        );
        let detail: serde_json::Value = serde_json::from_str(&rendered.image_detail).unwrap();
        assert_eq!(detail, serde_json::json!({ "ImageURI": IMAGE }));
        // Rendering is a function of its inputs.
        assert_eq!(rendered, render(&taskdef, &appspec, &vars()).unwrap());
    }

    #[test]
    fn placeholders_are_checked() {
        let check = |text: &str, expect: Result<&str, &str>| match (substitute(text, &vars(), "t"), expect) {
            (Ok(out), Ok(expect)) => assert_eq!(out, expect),
            (Err(error), Err(expect)) => assert!(error.to_string().contains(expect), "{error}"),
            (result, expect) => panic!("{text}: got {result:?}, expected {expect:?}"),
        };
        check("plain", Ok("plain"));
        check("${Region}/${Family}", Ok("ap-south-1/web"));
        check("$Region {Region}", Ok("$Region {Region}"));
        check("${Regoin}", Err("unknown placeholder ${Regoin}"));
        check("${A} ${B}", Err("unknown placeholders ${A}, ${B}"));
        check("x ${Region", Err("without a closing"));
    }

    #[test]
    fn appspecs_that_would_break_a_release_are_refused() {
        let (taskdef, appspec) = templates();
        let check = |appspec: &str, expect: &str| {
            let error = format!("{:#}", render(&taskdef, appspec, &vars()).unwrap_err());
            assert!(error.contains(expect), "`{expect}` not in: {error}");
        };
        check(
            &appspec.replace("<TASK_DEFINITION>", "arn:aws:ecs:ap-south-1:1:task-definition/Poc:2"),
            "must be the placeholder",
        );
        check(&appspec.replace("ContainerName: ${ContainerName}", "ContainerName: other"), "does not define");
        check(&appspec.replace("ContainerPort: ${ContainerPort}", "ContainerPort: 9090"), "does not map");
        check(&appspec.replace("version: 0.0", "version: 1.0"), "`version` must be 0.0");
        check(&appspec.replace("AWS::ECS::Service", "AWS::Lambda::Function"), "AWS::ECS::Service");
        check("version: 0.0\nResources: [", "not valid YAML");
    }

    #[test]
    fn a_deployment_appspec_names_the_registered_task_definition() {
        let (taskdef, appspec) = templates();
        let rendered = render(&taskdef, &appspec, &vars()).unwrap();
        let arn = "arn:aws:ecs:ap-south-1:222222222222:task-definition/web:7";
        let spec = parse_appspec(&appspec_for(&rendered.appspec, arn)).unwrap();
        assert_eq!(spec.task_definition, arn);
    }
}
