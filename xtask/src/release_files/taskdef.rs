//! The task definition document (`taskdef.json`) as a typed model: the subset of ECS's
//! `RegisterTaskDefinition` input that the pattern uses, with unknown fields refused, so a typo in
//! the template is an error here rather than a field ECS silently ignores or a failed deployment
//! an hour later. The same model turns the rendered file into the SDK call that `release --direct`
//! and `rollback` make (CodeDeployToECS makes the same call from the same file in the pipeline).

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use aws_sdk_ecs::operation::register_task_definition::builders::RegisterTaskDefinitionFluentBuilder;
use aws_sdk_ecs::types::{
    Compatibility, ContainerDefinition as SdkContainer, CpuArchitecture, KernelCapabilities, KeyValuePair,
    LinuxParameters as SdkLinuxParameters, LogConfiguration as SdkLogConfiguration, LogDriver, NetworkMode, OsFamily,
    PortMapping as SdkPortMapping, RuntimePlatform as SdkRuntimePlatform, TransportProtocol,
};
use serde::{Deserialize, Deserializer, Serialize};

/// A task definition as `taskdef.json` spells it (ECS's JSON names).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskDefinition {
    pub family: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires_compatibilities: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_platform: Option<RuntimePlatform>,
    pub container_definitions: Vec<ContainerDefinition>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuntimePlatform {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operating_system_family: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_architecture: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerDefinition {
    pub name: String,
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub essential: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readonly_root_filesystem: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linux_parameters: Option<LinuxParameters>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port_mappings: Vec<PortMapping>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment: Vec<KeyValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_configuration: Option<LogConfiguration>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LinuxParameters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_process_enabled: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drop: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortMapping {
    /// A number in the rendered file; the template may write it as a placeholder string.
    #[serde(deserialize_with = "number_or_text")]
    pub container_port: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyValue {
    pub name: String,
    pub value: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogConfiguration {
    pub log_driver: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

impl TaskDefinition {
    /// Reads a task definition document; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<TaskDefinition> {
        let definition: TaskDefinition = serde_json::from_str(text)
            .with_context(|| format!("{origin} is not a task definition this xtask can register"))?;
        definition.check().with_context(|| format!("checking {origin}"))?;
        Ok(definition)
    }

    /// What ECS would refuse, or what would break a release, found before anything is sent: enum
    /// values, a Fargate task without `awsvpc` or without its size, an image not pinned by digest.
    pub fn check(&self) -> Result<()> {
        let mut problems = Vec::new();
        let known = |field: &str, value: &str, values: &[&str], problems: &mut Vec<String>| {
            if !values.contains(&value) {
                problems.push(format!("{field} is `{value}`, not one of {}", values.join(", ")));
            }
        };
        if self.family.is_empty() {
            problems.push("family is empty".to_string());
        }
        if let Some(mode) = &self.network_mode {
            known("networkMode", mode, NetworkMode::values(), &mut problems);
        }
        for compatibility in &self.requires_compatibilities {
            known("requiresCompatibilities", compatibility, Compatibility::values(), &mut problems);
        }
        if self.requires_compatibilities.iter().any(|compatibility| compatibility == "FARGATE") {
            if self.network_mode.as_deref() != Some("awsvpc") {
                problems.push("a FARGATE task needs networkMode `awsvpc`".to_string());
            }
            if self.cpu.is_none() || self.memory.is_none() {
                problems.push("a FARGATE task needs cpu and memory".to_string());
            }
        }
        if let Some(platform) = &self.runtime_platform {
            if let Some(family) = &platform.operating_system_family {
                known("runtimePlatform.operatingSystemFamily", family, OsFamily::values(), &mut problems);
            }
            if let Some(architecture) = &platform.cpu_architecture {
                known("runtimePlatform.cpuArchitecture", architecture, CpuArchitecture::values(), &mut problems);
            }
        }
        if self.container_definitions.is_empty() {
            problems.push("containerDefinitions is empty".to_string());
        }
        for (index, container) in self.container_definitions.iter().enumerate() {
            let at = format!("containerDefinitions[{index}]");
            if !is_pinned_by_digest(&container.image) {
                problems.push(format!(
                    "{at}.image `{}` is not pinned by digest (<registry>/<repository>@sha256:<64 hex digits>)",
                    container.image
                ));
            }
            for mapping in &container.port_mappings {
                if !(1..=65535).contains(&mapping.container_port) {
                    problems.push(format!("{at}.portMappings: containerPort {} is not a port", mapping.container_port));
                }
                if let Some(protocol) = &mapping.protocol {
                    known(&format!("{at}.portMappings.protocol"), protocol, TransportProtocol::values(), &mut problems);
                }
            }
            if let Some(logs) = &container.log_configuration {
                known(
                    &format!("{at}.logConfiguration.logDriver"),
                    &logs.log_driver,
                    LogDriver::values(),
                    &mut problems,
                );
            }
        }
        if !problems.is_empty() {
            bail!("{}", problems.join("; "));
        }
        Ok(())
    }

    /// The images of its containers.
    pub fn images(&self) -> Vec<&str> {
        self.container_definitions.iter().map(|container| container.image.as_str()).collect()
    }

    /// Fills ECS's `RegisterTaskDefinition` call with this document.
    pub fn to_request(
        &self,
        mut request: RegisterTaskDefinitionFluentBuilder,
    ) -> Result<RegisterTaskDefinitionFluentBuilder> {
        request = request
            .family(&self.family)
            .set_execution_role_arn(self.execution_role_arn.clone())
            .set_task_role_arn(self.task_role_arn.clone())
            .set_network_mode(self.network_mode.as_deref().map(NetworkMode::from))
            .set_cpu(self.cpu.clone())
            .set_memory(self.memory.clone());
        for compatibility in &self.requires_compatibilities {
            request = request.requires_compatibilities(Compatibility::from(compatibility.as_str()));
        }
        if let Some(platform) = &self.runtime_platform {
            request = request.runtime_platform(
                SdkRuntimePlatform::builder()
                    .set_operating_system_family(platform.operating_system_family.as_deref().map(OsFamily::from))
                    .set_cpu_architecture(platform.cpu_architecture.as_deref().map(CpuArchitecture::from))
                    .build(),
            );
        }
        for container in &self.container_definitions {
            request = request.container_definitions(container.to_sdk()?);
        }
        Ok(request)
    }
}

impl ContainerDefinition {
    fn to_sdk(&self) -> Result<SdkContainer> {
        let mut builder = SdkContainer::builder()
            .name(&self.name)
            .image(&self.image)
            .set_essential(self.essential)
            .set_user(self.user.clone())
            .set_readonly_root_filesystem(self.readonly_root_filesystem)
            .set_privileged(self.privileged);
        if let Some(linux) = &self.linux_parameters {
            let mut parameters = SdkLinuxParameters::builder().set_init_process_enabled(linux.init_process_enabled);
            if let Some(capabilities) = &linux.capabilities {
                parameters = parameters.capabilities(
                    KernelCapabilities::builder()
                        .set_add(Some(capabilities.add.clone()))
                        .set_drop(Some(capabilities.drop.clone()))
                        .build(),
                );
            }
            builder = builder.linux_parameters(parameters.build());
        }
        for mapping in &self.port_mappings {
            builder = builder.port_mappings(
                SdkPortMapping::builder()
                    .container_port(mapping.container_port)
                    .set_protocol(mapping.protocol.as_deref().map(TransportProtocol::from))
                    .build(),
            );
        }
        for variable in &self.environment {
            builder = builder.environment(KeyValuePair::builder().name(&variable.name).value(&variable.value).build());
        }
        if let Some(logs) = &self.log_configuration {
            let mut configuration =
                SdkLogConfiguration::builder().log_driver(LogDriver::from(logs.log_driver.as_str()));
            for (key, value) in &logs.options {
                configuration = configuration.options(key, value);
            }
            builder = builder.log_configuration(
                configuration.build().with_context(|| format!("the log configuration of container {}", self.name))?,
            );
        }
        Ok(builder.build())
    }
}

/// `<registry>/<repository>@sha256:<64 lowercase hex digits>`.
pub fn is_pinned_by_digest(image: &str) -> bool {
    let Some((name, digest)) = image.split_once('@') else {
        return false;
    };
    let Some(hex) = digest.strip_prefix("sha256:") else {
        return false;
    };
    !name.is_empty()
        && !name.contains(char::is_whitespace)
        && hex.len() == 64
        && hex.chars().all(|digit| matches!(digit, '0'..='9' | 'a'..='f'))
}

/// A port as a JSON number, or as text holding one (the template writes placeholders as strings).
fn number_or_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i32, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumberOrText {
        Number(i64),
        Text(String),
    }
    let value = match NumberOrText::deserialize(deserializer)? {
        NumberOrText::Number(number) => number,
        NumberOrText::Text(text) => {
            text.trim().parse::<i64>().map_err(|_| serde::de::Error::custom(format!("`{text}` is not a number")))?
        }
    };
    i32::try_from(value).map_err(|_| serde::de::Error::custom(format!("{value} is out of range")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn document(edit: impl Fn(&mut serde_json::Value)) -> String {
        let mut value = serde_json::json!({
            "family": "web",
            "networkMode": "awsvpc",
            "requiresCompatibilities": ["FARGATE"],
            "cpu": "256",
            "memory": "512",
            "containerDefinitions": [{
                "name": "web",
                "image": format!("222222222222.dkr.ecr.ap-south-1.amazonaws.com/web@{DIGEST}"),
                "portMappings": [{"containerPort": "8080", "protocol": "tcp"}],
                "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/web"}}
            }]
        });
        edit(&mut value);
        value.to_string()
    }

    #[test]
    fn checks_what_ecs_would_refuse() {
        let check = |edit: &dyn Fn(&mut serde_json::Value), expect: Option<&str>| {
            let result = TaskDefinition::parse(&document(edit), "taskdef.json");
            match (result, expect) {
                (Ok(_), None) => {}
                (Ok(_), Some(expect)) => panic!("expected an error containing `{expect}`"),
                (Err(error), None) => panic!("unexpected error: {error:#}"),
                (Err(error), Some(expect)) => {
                    let text = format!("{error:#}");
                    assert!(text.contains(expect), "`{expect}` not in: {text}");
                }
            }
        };
        check(&|_| {}, None);
        check(&|value| value["containerDefinitions"][0]["image"] = "web:latest".into(), Some("not pinned by digest"));
        check(&|value| value["containerDefinitions"][0]["image"] = "web@sha256:abc".into(), Some("not pinned"));
        check(&|value| value["networkMode"] = "bridge".into(), Some("needs networkMode `awsvpc`"));
        check(&|value| value["networkMode"] = "wormhole".into(), Some("networkMode is `wormhole`"));
        check(&|value| value["cpu"] = serde_json::Value::Null, Some("needs cpu and memory"));
        check(&|value| value["taskRoleArnn"] = "x".into(), Some("unknown field `taskRoleArnn`"));
        check(
            &|value| value["containerDefinitions"][0]["portMappings"][0]["containerPort"] = "http".into(),
            Some("not a number"),
        );
        check(
            &|value| value["containerDefinitions"][0]["portMappings"][0]["containerPort"] = 70000.into(),
            Some("not a port"),
        );
        check(
            &|value| value["containerDefinitions"][0]["logConfiguration"]["logDriver"] = "syslogg".into(),
            Some("logDriver"),
        );
        check(&|value| value["containerDefinitions"] = serde_json::json!([]), Some("containerDefinitions is empty"));
    }

    #[test]
    fn ports_written_as_text_become_numbers() {
        let definition = TaskDefinition::parse(&document(|_| {}), "taskdef.json").unwrap();
        assert_eq!(definition.container_definitions[0].port_mappings[0].container_port, 8080);
        let rendered = serde_json::to_value(&definition).unwrap();
        assert_eq!(rendered["containerDefinitions"][0]["portMappings"][0]["containerPort"], 8080);
    }

    #[test]
    fn digests_are_recognised() {
        for (image, pinned) in [
            (format!("r/web@{DIGEST}"), true),
            (format!("127.0.0.1:5000/web@{DIGEST}"), true),
            (format!("@{DIGEST}"), false),
            ("r/web:tag".to_string(), false),
            (format!("r/web@{}", DIGEST.to_uppercase()), false),
            (format!("r/web@{DIGEST}0"), false),
        ] {
            assert_eq!(is_pinned_by_digest(&image), pinned, "{image}");
        }
    }
}
