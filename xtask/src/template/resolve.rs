//! A template's intrinsic functions evaluated for one deployed stack: its parameters as deployed,
//! its account and region, and its resources' physical ids. What the pipeline rehearsal reads of
//! the pipeline, build and release templates (the actions, the roles, the CodeDeploy group) is
//! read through this, so it sees the stack as CloudFormation made it, not a copy.
//!
//! It knows exactly the functions our templates use (`Ref`, `Fn::Sub`, `Fn::GetAtt`, `Fn::If`
//! with `Fn::Equals`/`Fn::Not`/`Fn::And`/`Fn::Or` conditions, `Fn::Join`, `Fn::Split`,
//! `Fn::Select`, `AWS::NoValue`) with the semantics of AWS's intrinsic function reference
//! (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/intrinsic-function-reference.html);
//! anything else is an error naming the function, never a guess.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value};

/// What a stack's intrinsics resolve against.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    pub account: String,
    pub region: String,
    pub stack_name: String,
    /// Parameter values as deployed (a `CommaDelimitedList` as its comma-joined string);
    /// parameters not given take the template's default.
    pub parameters: BTreeMap<String, String>,
    /// Physical ids by logical id, as `DescribeStackResources` lists them.
    pub physical_ids: BTreeMap<String, String>,
}

/// `template` with `scope`: resolves values of that template.
pub struct Resolver<'a> {
    template: &'a Value,
    scope: &'a Scope,
}

impl<'a> Resolver<'a> {
    pub fn new(template: &'a Value, scope: &'a Scope) -> Resolver<'a> {
        Resolver { template, scope }
    }

    /// The resolved value; `AWS::NoValue` at the top is an error.
    pub fn value(&self, value: &Value) -> Result<Value> {
        self.resolve(value)?.context("the value is AWS::NoValue")
    }

    /// The resolved value of the resource's property at `path` (`["Properties", "Stages"]`).
    pub fn resource_property(&self, logical_id: &str, property: &str) -> Result<Option<Value>> {
        let resource = self.resource(logical_id)?;
        match resource.get("Properties").and_then(|properties| properties.get(property)) {
            Some(value) => self.resolve(value).with_context(|| format!("resolving {logical_id}.{property}")),
            None => Ok(None),
        }
    }

    /// The logical id of the one resource of `kind` (`AWS::CodePipeline::Pipeline`).
    pub fn only_resource_of(&self, kind: &str) -> Result<String> {
        let resources = self.template["Resources"].as_object().context("the template has no Resources")?;
        let found: Vec<&String> =
            resources.iter().filter(|(_, resource)| resource["Type"] == kind).map(|(id, _)| id).collect();
        match found.as_slice() {
            [one] => Ok((*one).clone()),
            [] => bail!("the template has no {kind}"),
            _ => bail!("the template has {} resources of type {kind}; expected one", found.len()),
        }
    }

    fn resource(&self, logical_id: &str) -> Result<&'a Value> {
        self.template["Resources"].get(logical_id).with_context(|| format!("the template has no resource {logical_id}"))
    }

    /// `None` is `AWS::NoValue`: the caller drops the key or list entry.
    fn resolve(&self, value: &Value) -> Result<Option<Value>> {
        match value {
            Value::Array(items) => {
                let mut resolved = Vec::new();
                for item in items {
                    resolved.extend(self.resolve(item)?);
                }
                Ok(Some(Value::Array(resolved)))
            }
            Value::Object(map) if map.len() == 1 => {
                let (name, argument) = map.iter().next().expect("one entry");
                if name == "Ref" || name.starts_with("Fn::") || name == "Condition" {
                    return self.function(name, argument).with_context(|| format!("evaluating {name} {argument}"));
                }
                self.object(map)
            }
            Value::Object(map) => self.object(map),
            scalar => Ok(Some(scalar.clone())),
        }
    }

    fn object(&self, map: &Map<String, Value>) -> Result<Option<Value>> {
        let mut resolved = Map::new();
        for (key, value) in map {
            if let Some(value) = self.resolve(value)? {
                resolved.insert(key.clone(), value);
            }
        }
        Ok(Some(Value::Object(resolved)))
    }

    fn function(&self, name: &str, argument: &Value) -> Result<Option<Value>> {
        match name {
            "Ref" => self.reference(argument.as_str().context("Ref takes a name")?),
            "Fn::Sub" => self.sub(argument).map(Some),
            "Fn::GetAtt" => {
                let (resource, attribute) = match argument {
                    Value::String(text) => text.split_once('.').context("Fn::GetAtt takes Resource.Attribute")?,
                    Value::Array(parts) if parts.len() == 2 => (
                        parts[0].as_str().context("Fn::GetAtt's resource is a name")?,
                        parts[1].as_str().context("Fn::GetAtt's attribute is a name")?,
                    ),
                    _ => bail!("Fn::GetAtt takes [Resource, Attribute]"),
                };
                self.attribute(resource, attribute).map(|value| Some(Value::String(value)))
            }
            "Fn::If" => {
                let parts =
                    argument.as_array().filter(|parts| parts.len() == 3).context("Fn::If takes three values")?;
                let condition = parts[0].as_str().context("Fn::If names a condition")?;
                let chosen = if self.condition(condition)? { &parts[1] } else { &parts[2] };
                self.resolve(chosen)
            }
            "Fn::Join" => {
                let parts =
                    argument.as_array().filter(|parts| parts.len() == 2).context("Fn::Join takes two values")?;
                let delimiter = parts[0].as_str().context("Fn::Join's delimiter is a string")?;
                let items = self.list(&parts[1])?;
                Ok(Some(Value::String(items.join(delimiter))))
            }
            "Fn::Split" => {
                let parts =
                    argument.as_array().filter(|parts| parts.len() == 2).context("Fn::Split takes two values")?;
                let delimiter = parts[0].as_str().context("Fn::Split's delimiter is a string")?;
                let text = self.string(&parts[1])?;
                Ok(Some(Value::Array(text.split(delimiter).map(|part| Value::String(part.to_string())).collect())))
            }
            "Fn::Select" => {
                let parts =
                    argument.as_array().filter(|parts| parts.len() == 2).context("Fn::Select takes two values")?;
                let index: usize = self.string(&parts[0])?.parse().context("Fn::Select's index is a number")?;
                let items = self.list(&parts[1])?;
                let item = items.get(index).with_context(|| format!("Fn::Select index {index} is out of range"))?;
                Ok(Some(Value::String(item.clone())))
            }
            "Condition" => {
                let condition = argument.as_str().context("Condition names a condition")?;
                Ok(Some(Value::Bool(self.condition(condition)?)))
            }
            other => bail!("{other} is not a function this evaluator knows; extend template/resolve.rs"),
        }
    }

    fn reference(&self, name: &str) -> Result<Option<Value>> {
        let scope = self.scope;
        let pseudo = match name {
            "AWS::NoValue" => return Ok(None),
            "AWS::AccountId" => scope.account.clone(),
            "AWS::Region" => scope.region.clone(),
            "AWS::Partition" => partition(&scope.region).to_string(),
            "AWS::URLSuffix" => url_suffix(&scope.region).to_string(),
            "AWS::StackName" => scope.stack_name.clone(),
            _ => {
                if let Some(definition) = self.template["Parameters"].get(name) {
                    let value = match scope.parameters.get(name) {
                        Some(value) => value.clone(),
                        None => match &definition["Default"] {
                            Value::String(text) => text.clone(),
                            Value::Number(number) => number.to_string(),
                            Value::Null => bail!("parameter {name} has no value and no default"),
                            other => other.to_string(),
                        },
                    };
                    if definition["Type"] == "CommaDelimitedList" {
                        // CloudFormation trims the spaces around each item.
                        let items =
                            if value.is_empty() { Vec::new() } else { value.split(',').map(str::trim).collect() };
                        return Ok(Some(Value::Array(
                            items.into_iter().map(|item| Value::String(item.into())).collect(),
                        )));
                    }
                    return Ok(Some(Value::String(value)));
                }
                return self.physical_id(name).map(|id| Some(Value::String(id)));
            }
        };
        Ok(Some(Value::String(pseudo)))
    }

    /// A resource's `Ref`: its physical id as the stack lists it, or else the name property its
    /// type is named by (a resource the emulator skipped has no physical id, but its name).
    fn physical_id(&self, logical_id: &str) -> Result<String> {
        if let Some(id) = self.scope.physical_ids.get(logical_id) {
            return Ok(id.clone());
        }
        let resource = self.resource(logical_id)?;
        let kind = resource["Type"].as_str().unwrap_or_default();
        let Some(property) = name_property(kind) else {
            bail!("resource {logical_id} ({kind}) has no physical id in the stack and no name property");
        };
        let name = self
            .resource_property(logical_id, property)?
            .with_context(|| format!("resource {logical_id} has no physical id in the stack and no {property}"))?;
        name.as_str().map(str::to_string).with_context(|| format!("{logical_id}.{property} is not a string"))
    }

    fn attribute(&self, logical_id: &str, attribute: &str) -> Result<String> {
        let kind = self.resource(logical_id)?["Type"].as_str().unwrap_or_default().to_string();
        let scope = self.scope;
        let partition = partition(&scope.region);
        match (kind.as_str(), attribute) {
            ("AWS::IAM::Role", "Arn") => {
                Ok(format!("arn:{partition}:iam::{}:role/{}", scope.account, self.physical_id(logical_id)?))
            }
            ("AWS::Logs::LogGroup", "Arn") => Ok(format!(
                "arn:{partition}:logs:{}:{}:log-group:{}:*",
                scope.region,
                scope.account,
                self.physical_id(logical_id)?
            )),
            ("AWS::S3::Bucket", "Arn") => Ok(format!("arn:{partition}:s3:::{}", self.physical_id(logical_id)?)),
            // A queue's physical id is its URL; its name is the last segment.
            ("AWS::SQS::Queue", "Arn") => {
                let id = self.physical_id(logical_id)?;
                let name = id.rsplit('/').next().unwrap_or(&id);
                Ok(format!("arn:{partition}:sqs:{}:{}:{name}", scope.region, scope.account))
            }
            ("AWS::Lambda::Function", "Arn") => Ok(format!(
                "arn:{partition}:lambda:{}:{}:function:{}",
                scope.region,
                scope.account,
                self.physical_id(logical_id)?
            )),
            ("AWS::Events::Rule", "Arn") => {
                let id = self.physical_id(logical_id)?;
                let name = id.rsplit('|').next().unwrap_or(&id);
                Ok(format!("arn:{partition}:events:{}:{}:rule/{name}", scope.region, scope.account))
            }
            ("AWS::KMS::Key", "Arn") => Ok(format!(
                "arn:{partition}:kms:{}:{}:key/{}",
                scope.region,
                scope.account,
                self.physical_id(logical_id)?
            )),
            ("AWS::ECR::Repository", "Arn") => Ok(format!(
                "arn:{partition}:ecr:{}:{}:repository/{}",
                scope.region,
                scope.account,
                self.physical_id(logical_id)?
            )),
            ("AWS::CodeCommit::Repository", "Arn") => Ok(format!(
                "arn:{partition}:codecommit:{}:{}:{}",
                scope.region,
                scope.account,
                self.physical_id(logical_id)?
            )),
            _ => bail!("Fn::GetAtt {logical_id}.{attribute} ({kind}) is not an attribute this evaluator knows"),
        }
    }

    /// Whether the template's condition `name` holds in this scope.
    pub fn condition(&self, name: &str) -> Result<bool> {
        let definition =
            self.template["Conditions"].get(name).with_context(|| format!("the template has no condition {name}"))?;
        self.truth(definition).with_context(|| format!("evaluating condition {name}"))
    }

    fn truth(&self, value: &Value) -> Result<bool> {
        let Some((name, argument)) = value.as_object().filter(|map| map.len() == 1).and_then(|map| map.iter().next())
        else {
            bail!("a condition is one function, not {value}");
        };
        let arguments = || argument.as_array().with_context(|| format!("{name} takes a list"));
        match name.as_str() {
            "Fn::Equals" => {
                let parts = arguments()?;
                if parts.len() != 2 {
                    bail!("Fn::Equals takes two values");
                }
                Ok(self.resolve(&parts[0])? == self.resolve(&parts[1])?)
            }
            "Fn::Not" => Ok(!self.truth(arguments()?.first().context("Fn::Not takes one condition")?)?),
            "Fn::And" => arguments()?.iter().try_fold(true, |all, part| Ok(all && self.truth(part)?)),
            "Fn::Or" => arguments()?.iter().try_fold(false, |any, part| Ok(any || self.truth(part)?)),
            "Condition" => self.condition(argument.as_str().context("Condition names a condition")?),
            other => bail!("{other} is not a condition function this evaluator knows"),
        }
    }

    fn string(&self, value: &Value) -> Result<String> {
        match self.value(value)? {
            Value::String(text) => Ok(text),
            Value::Number(number) => Ok(number.to_string()),
            Value::Bool(flag) => Ok(flag.to_string()),
            other => bail!("expected a string, found {other}"),
        }
    }

    fn list(&self, value: &Value) -> Result<Vec<String>> {
        match self.value(value)? {
            Value::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(text) => Ok(text),
                    other => bail!("expected a list of strings, found {other}"),
                })
                .collect(),
            other => bail!("expected a list, found {other}"),
        }
    }

    fn sub(&self, argument: &Value) -> Result<Value> {
        let (text, variables) = match argument {
            Value::String(text) => (text.as_str(), Map::new()),
            Value::Array(parts) if parts.len() == 2 => (
                parts[0].as_str().context("Fn::Sub's template is a string")?,
                parts[1].as_object().cloned().context("Fn::Sub's variables are a map")?,
            ),
            _ => bail!("Fn::Sub takes a string or [string, variables]"),
        };
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find('}').with_context(|| format!("an unclosed ${{ in `{text}`"))?;
            let name = &after[..end];
            rest = &after[end + 1..];
            // `${!Literal}` stands for `${Literal}` itself.
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
                continue;
            }
            let value = match variables.get(name) {
                Some(value) => self.string(value)?,
                None => match name.split_once('.') {
                    Some((resource, attribute)) if !name.starts_with("AWS::") => self.attribute(resource, attribute)?,
                    _ => match self.reference(name)? {
                        Some(Value::String(value)) => value,
                        Some(Value::Array(_)) => bail!("${{{name}}} is a list; Fn::Sub takes strings"),
                        other => bail!("${{{name}}} resolves to {other:?}"),
                    },
                },
            };
            out.push_str(&value);
        }
        out.push_str(rest);
        Ok(Value::String(out))
    }
}

/// The property a resource type is named by, for those our templates name explicitly.
fn name_property(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "AWS::IAM::Role" => "RoleName",
        "AWS::CodeDeploy::Application" => "ApplicationName",
        "AWS::CodeDeploy::DeploymentGroup" => "DeploymentGroupName",
        "AWS::Logs::LogGroup" => "LogGroupName",
        "AWS::CodeBuild::Project" => "Name",
        "AWS::CodePipeline::Pipeline" => "Name",
        "AWS::S3::Bucket" => "BucketName",
        "AWS::ECR::Repository" => "RepositoryName",
        "AWS::CloudWatch::Alarm" => "AlarmName",
        "AWS::Lambda::Function" => "FunctionName",
        "AWS::CodeCommit::Repository" => "RepositoryName",
        "AWS::SQS::Queue" => "QueueName",
        "AWS::Events::Rule" => "Name",
        _ => return None,
    })
}

/// The partition of `region` (https://docs.aws.amazon.com/whitepapers/latest/aws-fault-isolation-boundaries/partitions.html).
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

fn url_suffix(region: &str) -> &'static str {
    if region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope() -> Scope {
        Scope {
            account: "111111111111".into(),
            region: "ap-south-1".into(),
            stack_name: "web-pipeline".into(),
            parameters: BTreeMap::from([
                ("Name".into(), "web".into()),
                ("Provider".into(), "codecommit".into()),
                ("Arns".into(), "arn:a,arn:b".into()),
            ]),
            physical_ids: BTreeMap::from([("Made".into(), "web-made-ABC123".into())]),
        }
    }

    fn template() -> Value {
        json!({
            "Parameters": {
                "Name": {"Type": "String"},
                "Provider": {"Type": "String"},
                "Branch": {"Type": "String", "Default": "main"},
                "Arns": {"Type": "CommaDelimitedList"},
            },
            "Conditions": {
                "UsesCodeCommit": {"Fn::Equals": [{"Ref": "Provider"}, "codecommit"]},
                "UsesConnection": {"Fn::Not": [{"Condition": "UsesCodeCommit"}]},
            },
            "Resources": {
                "Role": {"Type": "AWS::IAM::Role", "Properties": {"RoleName": {"Fn::Sub": "${Name}-pipeline"}}},
                "Made": {"Type": "AWS::IAM::Role", "Properties": {}},
                "Key": {"Type": "AWS::KMS::Key", "Properties": {}},
            },
        })
    }

    #[track_caller]
    fn check(input: Value, expect: Value) {
        let (template, scope) = (template(), scope());
        assert_eq!(Resolver::new(&template, &scope).value(&input).unwrap(), expect);
    }

    #[track_caller]
    fn refuse(input: Value, expect: &str) {
        let (template, scope) = (template(), scope());
        let error = format!("{:#}", Resolver::new(&template, &scope).value(&input).unwrap_err());
        assert!(error.contains(expect), "{error}");
    }

    #[test]
    fn resolves_what_our_templates_use() {
        check(json!({"Ref": "Name"}), json!("web"));
        check(json!({"Ref": "Branch"}), json!("main"));
        check(json!({"Ref": "Arns"}), json!(["arn:a", "arn:b"]));
        check(json!({"Fn::Sub": "arn:${AWS::Partition}:s3:::${Name}/*"}), json!("arn:aws:s3:::web/*"));
        check(json!({"Fn::Sub": ["${X}-${!Literal}", {"X": {"Ref": "AWS::Region"}}]}), json!("ap-south-1-${Literal}"));
        check(json!({"Fn::GetAtt": ["Role", "Arn"]}), json!("arn:aws:iam::111111111111:role/web-pipeline"));
        check(json!({"Fn::Sub": "${Made.Arn}"}), json!("arn:aws:iam::111111111111:role/web-made-ABC123"));
        check(json!({"Fn::If": ["UsesCodeCommit", "a", "b"]}), json!("a"));
        check(json!({"Fn::If": ["UsesConnection", "a", "b"]}), json!("b"));
        check(json!([1, {"Fn::If": ["UsesConnection", "x", {"Ref": "AWS::NoValue"}]}, 2]), json!([1, 2]));
        check(json!({"A": {"Ref": "AWS::NoValue"}, "B": 1}), json!({"B": 1}));
        check(json!({"Fn::Join": [",", {"Ref": "Arns"}]}), json!("arn:a,arn:b"));
        check(json!({"Fn::Split": [",", "x,y"]}), json!(["x", "y"]));
        check(json!({"Fn::Select": ["1", {"Ref": "Arns"}]}), json!("arn:b"));
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        refuse(json!({"Fn::ImportValue": "x"}), "Fn::ImportValue is not a function this evaluator knows");
        refuse(json!({"Fn::GetAtt": ["Key", "KeyId"]}), "Key.KeyId (AWS::KMS::Key) is not an attribute");
        refuse(json!({"Ref": "Key"}), "resource Key (AWS::KMS::Key) has no physical id");
        refuse(json!({"Ref": "Nothing"}), "the template has no resource Nothing");
        refuse(json!({"Fn::Sub": "${Arns}"}), "${Arns} is a list");
    }
}
