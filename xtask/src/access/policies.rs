//! Every policy the deployed topology holds, read from the templates the stacks were deployed
//! from (`GetTemplate`) resolved with their parameters and resources (`template/resolve.rs`): each role's identity policies and trust
//! policy, each bucket policy, each key policy, each registry's repository policy. The emulator's
//! CloudFormation drops bucket policies and key replicas, and applies no policy at all, so the
//! rendered template, not the emulator, is where the policies are read; a stack the emulator could
//! not hold (a key replica) is rendered with the parameters the plan gives it (the key stack's).

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};

use super::policy::Policy;
use crate::aws::Aws;
use crate::config::Config;
use crate::engine::StepKind;
use crate::engine::deployed::Deployed;
use crate::engine::topology::{self, Inputs};
use crate::template::Template;

/// The policies of one topology.
#[derive(Debug, Default)]
pub struct Policies {
    /// Identity policies by role ARN.
    pub identity: BTreeMap<String, Vec<Policy>>,
    /// Trust policies by role ARN.
    pub trust: BTreeMap<String, Policy>,
    /// Bucket policies by bucket name.
    pub buckets: BTreeMap<String, Policy>,
    /// Key policies by (account, region) (a multi-Region key has one in each region).
    pub keys: BTreeMap<(String, String), Policy>,
    /// Repository policies by repository ARN.
    pub repositories: BTreeMap<String, Policy>,
    /// The default KMS key of each bucket encrypted with one, by bucket name: what S3 decrypts
    /// an object of that bucket with.
    pub bucket_keys: BTreeMap<String, String>,
    /// Every role's ARN by (account, region, logical id): the access map names the roles
    /// CloudFormation names (`CodeDeployRole`, `ExecutionRole`, ...) by these.
    pub roles: BTreeMap<(String, String, String), String>,
    /// Every stack's parameters as deployed, by (account, region, stack name).
    pub parameters: BTreeMap<(String, String, String), BTreeMap<String, String>>,
}

impl Policies {
    /// Reads the policies of every stack of `config`'s plan from the deployed stacks.
    pub async fn read(root: &std::path::Path, aws: &Aws, config: &Config) -> Result<Policies> {
        let (plan, _) = topology::plan(config, &Inputs::stacks_only());
        let mut policies = Policies::default();
        let mut key_stack: Option<Deployed> = None;
        let mut replicas = Vec::new();
        for step in &plan.steps {
            let StepKind::Stack(stack) = &step.kind else { continue };
            if stack.emulator_gap.is_some() && aws.is_local() {
                let template = Template::load(&root.join(&stack.template))?;
                replicas.push((step.account.clone(), step.region.clone(), stack.name.clone(), template.body));
                continue;
            }
            let deployed = Deployed::read_as_deployed(aws, &step.account, &step.region, &stack.name).await?;
            policies.add(&deployed).with_context(|| format!("reading the policies of stack {}", stack.name))?;
            if stack.template.file_name().is_some_and(|name| name == "key.yaml") {
                key_stack = Some(deployed);
            }
        }
        // A key replica the emulator could not hold: rendered with the key stack's parameters,
        // which the plan passes to the replicas too (`engine/topology.rs`, `key_policy`).
        for (account, region, name, body) in replicas {
            let key = key_stack.as_ref().context("the key stack comes before its replicas")?;
            let mut scope = key.scope.clone();
            scope.account = account;
            scope.region = region;
            scope.stack_name = name.clone();
            scope.physical_ids.clear();
            let deployed = Deployed { template: body, scope };
            policies.add(&deployed).with_context(|| format!("rendering the policies of stack {name}"))?;
        }
        Ok(policies)
    }

    /// Adds every policy of one deployed stack.
    pub fn add(&mut self, deployed: &Deployed) -> Result<()> {
        let resolver = deployed.resolver();
        let scope = &deployed.scope;
        self.parameters
            .insert((scope.account.clone(), scope.region.clone(), scope.stack_name.clone()), scope.parameters.clone());
        let resources = deployed.template["Resources"].as_object().context("the template has no Resources")?.clone();
        for (logical, resource) in &resources {
            let property = |name: &str| resolver.resource_property(logical, name);
            let origin = format!("{} {logical}", scope.stack_name);
            match resource["Type"].as_str().unwrap_or_default() {
                "AWS::IAM::Role" => {
                    let arn = resolver.value(&serde_json::json!({"Fn::GetAtt": [logical, "Arn"]}))?;
                    let arn = arn.as_str().context("a role ARN is a string")?.to_string();
                    if property("ManagedPolicyArns")?
                        .is_some_and(|arns| arns.as_array().is_some_and(|arns| !arns.is_empty()))
                    {
                        bail!("{origin}: the access proof does not read managed policies; write the statements inline");
                    }
                    let trust = property("AssumeRolePolicyDocument")?.context("a role has a trust policy")?;
                    self.trust.insert(arn.clone(), Policy::parse(&format!("the trust policy of {origin}"), &trust)?);
                    let mut identity = Vec::new();
                    for policy in property("Policies")?.and_then(|value| value.as_array().cloned()).unwrap_or_default()
                    {
                        let name = policy["PolicyName"].as_str().unwrap_or("inline");
                        identity.push(Policy::parse(&format!("{origin} policy {name}"), &policy["PolicyDocument"])?);
                    }
                    self.identity.insert(arn.clone(), identity);
                    self.roles.insert((scope.account.clone(), scope.region.clone(), logical.clone()), arn);
                }
                "AWS::S3::Bucket" => {
                    let name = property("BucketName")?.and_then(|value| value.as_str().map(str::to_string));
                    let key = property("BucketEncryption")?.and_then(|encryption| {
                        encryption
                            .pointer(
                                "/ServerSideEncryptionConfiguration/0/ServerSideEncryptionByDefault/KMSMasterKeyID",
                            )
                            .and_then(|key| key.as_str().map(str::to_string))
                    });
                    if let (Some(name), Some(key)) = (name, key) {
                        self.bucket_keys.insert(name, key);
                    }
                }
                "AWS::S3::BucketPolicy" => {
                    let bucket = property("Bucket")?.and_then(|value| value.as_str().map(str::to_string));
                    let document = property("PolicyDocument")?.context("a bucket policy has a document")?;
                    let bucket = bucket.context("a bucket policy names its bucket")?;
                    self.buckets.insert(
                        bucket.clone(),
                        Policy::parse(&format!("the bucket policy of {bucket} ({origin})"), &document)?,
                    );
                }
                kind @ ("AWS::KMS::Key" | "AWS::KMS::ReplicaKey") => {
                    let document = property("KeyPolicy")?.context("a key has a key policy")?;
                    let source = format!("the key policy of {origin} ({kind}) in {}", scope.region);
                    self.keys.insert((scope.account.clone(), scope.region.clone()), Policy::parse(&source, &document)?);
                }
                "AWS::ECR::Repository" => {
                    let Some(document) = property("RepositoryPolicyText")? else { continue };
                    let name = property("RepositoryName")?.and_then(|value| value.as_str().map(str::to_string));
                    let name = name.context("a repository is named")?;
                    let arn = format!("arn:aws:ecr:{}:{}:repository/{name}", scope.region, scope.account);
                    self.repositories
                        .insert(arn.clone(), Policy::parse(&format!("the repository policy of {arn}"), &document)?);
                }
                _ => {}
            }
        }
        Ok(())
    }
}
