//! The deploy engine: a plan is a DAG of steps across accounts and regions (stacks, the image
//! build and pushes, artifact uploads, checks), where values that cross accounts or regions flow
//! from earlier steps' outputs into later steps' parameters. `deploy`, `plan`, `status` and
//! `destroy` all build the same plan from the config ([`topology::plan`]) and differ only in what
//! they do with it.
//!
//! The whole plan is built and checked before the first AWS call: every template exists and
//! parses, every parameter a template requires is supplied, no parameter is supplied that the
//! template does not declare, and every value refers to a step that runs earlier.

pub mod actions;
pub mod deployed;
pub mod executor;
pub mod gaps;
pub mod preview;
pub mod report;
pub mod session;
pub mod stack;
pub mod stand_ins;
pub mod topology;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::aws::error::one_line;
use crate::template::{self, Template};

/// Index of a step in [`Plan::steps`].
pub type StepId = usize;

/// The DAG: steps in an order where every dependency comes first.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub steps: Vec<Step>,
}

#[derive(Clone, Debug)]
pub struct Step {
    /// Unique and readable: `web-network 222222222222/ap-south-1`, `push india`.
    pub id: String,
    pub account: String,
    pub region: String,
    /// Steps that must succeed first.
    pub deps: Vec<StepId>,
    pub kind: StepKind,
}

#[derive(Clone, Debug)]
pub enum StepKind {
    Stack(StackStep),
    Action(Action),
}

/// A stack to deploy.
#[derive(Clone, Debug)]
pub struct StackStep {
    /// The stack's name, e.g. `web-network`.
    pub name: String,
    /// The template, relative to the project root.
    pub template: PathBuf,
    /// For the pipeline: replicate its region and workload prototypes (`template.rs`).
    pub expansion: Option<Expansion>,
    pub parameters: Vec<(String, Param)>,
    /// Why the local emulator cannot deploy this stack, if it cannot: locally the stack is then
    /// reported, not deployed, and the steps after it go on.
    pub emulator_gap: Option<&'static str>,
}

/// How many regions and which waves of workloads the pipeline template is expanded for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expansion {
    pub regions: usize,
    /// 1-based workload numbers per wave, in wave order.
    pub waves: Vec<Vec<usize>>,
}

/// A step that is not a stack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Checks that the multi-Region key has its replica in the step's region (DescribeKey by the
    /// derived ARN). Outputs `KeyArn`.
    CheckReplica { key_arn: Param },
    /// Waits until the service runs its desired count.
    WaitService { cluster: Param, service: Param },
    /// Fetches `/healthz` through the load balancer, where it is reachable from here.
    CheckSite { dns_name: Param },
    /// Builds the site's image once (`site_image.rs`). Outputs `Reference` (`<app>:<tag>`), `Tag`.
    BuildImage,
    /// Pushes the built image to a workload's registry (`publish.rs`); index into
    /// `config.workloads`. Outputs `ImageUri` (digest-pinned) and `Digest`.
    PushImage { workload: usize, reference: Param, tag: Param },
    /// Checks that every registry holds the same digest. Outputs `Digest`.
    SameDigest { digests: Vec<Param> },
    /// Packages the pushed image's release: every workload's artifact into its region's bucket,
    /// the manifest beside them, the histories (`release_files.rs`). `images` holds each
    /// workload's digest-pinned reference, in config order. Outputs `Release` (the manifest id).
    PackageRelease { images: Vec<Param>, digest: Param, version: Param },
    /// Publishes what releases need of the deployed stacks (the key's id, each workload's roles
    /// and log group) to the tools region's artifact bucket, where the pipeline's build may read
    /// it (`release_files/targets.rs`). `services` holds each workload's execution role, task role
    /// and log group, in config order. Outputs `Bucket`, `Key`.
    PublishTargets { key_id: Param, services: Vec<[Param; 3]> },
    /// Locally: runs the site's image as a container on the config's site port. Outputs `Url`.
    LocalSite { reference: Param, tag: Param },
    /// Builds the gitflow Lambda's zip (`lambda.rs`). Outputs `ZipPath`, `Sha256`, `ObjectKey`.
    BuildLambda,
    /// Uploads a local file to an artifact bucket under SSE-KMS, once (`artifacts.rs`). Outputs
    /// `Bucket`, `Key`.
    Upload { file: Param, bucket: Param, object_key: Param, kms_key_arn: Param },
}

impl Action {
    pub fn describe(&self) -> &'static str {
        match self {
            Action::CheckReplica { .. } => "check the key replica",
            Action::WaitService { .. } => "wait for the service",
            Action::CheckSite { .. } => "check the site through the load balancer",
            Action::BuildImage => "build the site's image",
            Action::PushImage { .. } => "push the image",
            Action::SameDigest { .. } => "check every registry holds the same image",
            Action::PackageRelease { .. } => "package the release artifacts",
            Action::PublishTargets { .. } => "publish the release targets",
            Action::LocalSite { .. } => "run the site locally",
            Action::BuildLambda => "build the gitflow Lambda",
            Action::Upload { .. } => "upload an artifact",
        }
    }

    /// Every step this action reads from.
    pub fn sources(&self) -> Vec<StepId> {
        match self {
            Action::CheckReplica { key_arn } => key_arn.sources(),
            Action::WaitService { cluster, service } => [cluster.sources(), service.sources()].concat(),
            Action::CheckSite { dns_name } => dns_name.sources(),
            Action::BuildLambda | Action::BuildImage => Vec::new(),
            Action::PushImage { reference, tag, .. } | Action::LocalSite { reference, tag } => {
                [reference.sources(), tag.sources()].concat()
            }
            Action::SameDigest { digests } => digests.iter().flat_map(Param::sources).collect(),
            Action::PackageRelease { images, digest, version } => {
                images.iter().chain([digest, version]).flat_map(Param::sources).collect()
            }
            Action::PublishTargets { key_id, services } => {
                services.iter().flatten().chain([key_id]).flat_map(Param::sources).collect()
            }
            Action::Upload { file, bucket, object_key, kms_key_arn } => {
                [file, bucket, object_key, kms_key_arn].iter().flat_map(|param| param.sources()).collect()
            }
        }
    }
}

/// A parameter value, resolved when its step runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Param {
    Value(String),
    /// An output of an earlier step.
    Output {
        step: StepId,
        key: String,
    },
    /// `pattern` with each `{}` replaced by the next argument.
    Format {
        pattern: String,
        args: Vec<Param>,
    },
    /// Values joined with commas (a `CommaDelimitedList`).
    List(Vec<Param>),
    /// The stack's current value when it exists (CloudFormation's UsePreviousValue); this value
    /// when the stack is created.
    KeepPrevious(Box<Param>),
}

impl Param {
    pub fn value(text: impl Into<String>) -> Param {
        Param::Value(text.into())
    }

    pub fn output(step: StepId, key: &str) -> Param {
        Param::Output { step, key: key.to_string() }
    }

    /// Every step this value reads from.
    pub fn sources(&self) -> Vec<StepId> {
        match self {
            Param::Value(_) => Vec::new(),
            Param::Output { step, .. } => vec![*step],
            Param::Format { args, .. } | Param::List(args) => args.iter().flat_map(Param::sources).collect(),
            Param::KeepPrevious(inner) => inner.sources(),
        }
    }

    /// The value, given the outputs of the steps that ran. `Err` names the missing output.
    pub fn resolve(&self, plan: &Plan, outputs: &Outputs) -> Result<String> {
        match self {
            Param::Value(text) => Ok(text.clone()),
            Param::Output { step, key } => match outputs.get(step).and_then(|values| values.get(key)) {
                Some(value) => Ok(value.clone()),
                None => bail!("{} has no output `{key}`", plan.steps[*step].id),
            },
            Param::Format { pattern, args } => {
                let mut text = String::new();
                let mut pieces = pattern.split("{}");
                text.push_str(pieces.next().unwrap_or_default());
                for (piece, arg) in pieces.zip(args) {
                    text.push_str(&arg.resolve(plan, outputs)?);
                    text.push_str(piece);
                }
                Ok(text)
            }
            Param::List(items) => {
                Ok(items.iter().map(|item| item.resolve(plan, outputs)).collect::<Result<Vec<_>>>()?.join(","))
            }
            Param::KeepPrevious(inner) => inner.resolve(plan, outputs),
        }
    }
}

/// Outputs of the steps that ran, by step.
pub type Outputs = BTreeMap<StepId, BTreeMap<String, String>>;

impl Plan {
    /// Adds a step after checking that its dependencies and the steps its parameters read from
    /// are already in the plan; returns its id.
    pub fn add(&mut self, step: Step) -> StepId {
        let id = self.steps.len();
        let sources = match &step.kind {
            StepKind::Stack(stack) => stack.parameters.iter().flat_map(|(_, param)| param.sources()).collect(),
            StepKind::Action(action) => action.sources(),
        };
        for source in sources {
            assert!(step.deps.contains(&source), "{}: a value reads step {source} without depending on it", step.id);
        }
        assert!(step.deps.iter().all(|dep| *dep < id), "{}: dependencies must come first", step.id);
        self.steps.push(step);
        id
    }

    /// The stack steps, in plan order.
    pub fn stacks(&self) -> impl Iterator<Item = (StepId, &Step, &StackStep)> {
        self.steps.iter().enumerate().filter_map(|(id, step)| match &step.kind {
            StepKind::Stack(stack) => Some((id, step, stack)),
            StepKind::Action(_) => None,
        })
    }

    /// Every step that depends on `id`, directly or not.
    pub fn dependents(&self, id: StepId) -> Vec<StepId> {
        let mut found = vec![false; self.steps.len()];
        found[id] = true;
        for (index, step) in self.steps.iter().enumerate().skip(id + 1) {
            if step.deps.iter().any(|dep| found[*dep]) {
                found[index] = true;
            }
        }
        found.iter().enumerate().skip(id + 1).filter(|(_, found)| **found).map(|(index, _)| index).collect()
    }
}

/// Reads every template of the plan, expands the pipeline, and checks each stack's parameters
/// against its template: every required parameter supplied, nothing supplied that the template
/// does not declare. Returns the template bodies by step. Every problem is reported at once;
/// nothing here talks to AWS.
pub fn prepare(plan: &Plan, root: &Path) -> Result<BTreeMap<StepId, String>> {
    let mut bodies = BTreeMap::new();
    let mut problems = Vec::new();
    let mut cache: BTreeMap<PathBuf, Template> = BTreeMap::new();
    for (id, step, stack) in plan.stacks() {
        let path = root.join(&stack.template);
        let template = match cache.get(&path) {
            Some(template) => template.clone(),
            None => match Template::load(&path) {
                Ok(template) => {
                    cache.insert(path.clone(), template.clone());
                    template
                }
                Err(error) => {
                    problems.push(format!("{}: {}", step.id, one_line(&error)));
                    continue;
                }
            },
        };
        let (body, declared) = match &stack.expansion {
            None => {
                let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
                (text, template.parameters())
            }
            Some(expansion) => match template::expand_pipeline(&template.body, expansion.regions, &expansion.waves) {
                Ok(expanded) => {
                    let mut expanded_template = template.clone();
                    expanded_template.body = expanded.clone();
                    let declared = expanded_template.parameters();
                    (serde_json::to_string(&expanded)?, declared)
                }
                Err(error) => {
                    problems.push(format!("{}: expanding {}: {}", step.id, stack.template.display(), one_line(&error)));
                    continue;
                }
            },
        };
        if body.len() > TEMPLATE_BODY_LIMIT {
            problems.push(format!(
                "{}: {} is {} bytes, over CloudFormation's {TEMPLATE_BODY_LIMIT}-byte limit for a template body; split the stack",
                step.id,
                stack.template.display(),
                body.len()
            ));
        }
        let supplied: BTreeSet<&str> = stack.parameters.iter().map(|(name, _)| name.as_str()).collect();
        for parameter in &declared {
            if parameter.required() && !supplied.contains(parameter.name.as_str()) {
                problems.push(format!(
                    "{}: {} requires parameter {} but the plan supplies none",
                    step.id,
                    stack.template.display(),
                    parameter.name
                ));
            }
        }
        for name in supplied {
            if !declared.iter().any(|parameter| parameter.name == name) {
                problems.push(format!(
                    "{}: the plan supplies {name}, which {} does not declare",
                    step.id,
                    stack.template.display()
                ));
            }
        }
        bodies.insert(id, body);
    }
    if !problems.is_empty() {
        bail!(
            "the plan does not fit its templates (a bug in the xtask or a template, not in your config):\n  {}",
            problems.join("\n  ")
        );
    }
    Ok(bodies)
}

/// CloudFormation's limit for `TemplateBody`.
const TEMPLATE_BODY_LIMIT: usize = 51_200;

/// One row of a command's machine-readable summary.
#[derive(Clone, Debug, Serialize)]
pub struct StackRow {
    pub name: String,
    pub account: String,
    pub region: String,
    pub status: String,
    pub action: String,
    /// The template's resources the emulator did not create (`engine/gaps.rs`); empty on AWS.
    pub emulator_gaps: Vec<gaps::EmulatorGap>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(id: &str, deps: Vec<StepId>) -> Step {
        Step {
            id: id.into(),
            account: "1".into(),
            region: "r".into(),
            deps,
            kind: StepKind::Action(Action::CheckSite { dns_name: Param::value("x") }),
        }
    }

    #[test]
    fn params_resolve_from_outputs() {
        let mut plan = Plan::default();
        let key = plan.add(step("key", vec![]));
        let mut outputs = Outputs::new();
        outputs.insert(key, BTreeMap::from([("KeyId".to_string(), "mrk-1".to_string())]));
        for (param, expect) in [
            (Param::value("x"), "x"),
            (Param::output(key, "KeyId"), "mrk-1"),
            (Param::Format { pattern: "arn:{}:end".into(), args: vec![Param::output(key, "KeyId")] }, "arn:mrk-1:end"),
            (Param::List(vec![Param::value("a"), Param::output(key, "KeyId")]), "a,mrk-1"),
            (Param::KeepPrevious(Box::new(Param::value("img"))), "img"),
        ] {
            assert_eq!(param.resolve(&plan, &outputs).unwrap(), expect);
        }
        let missing = Param::output(key, "Nope").resolve(&plan, &outputs).unwrap_err();
        assert_eq!(missing.to_string(), "key has no output `Nope`");
    }

    #[test]
    fn dependents_are_transitive() {
        let mut plan = Plan::default();
        let a = plan.add(step("a", vec![]));
        let b = plan.add(step("b", vec![a]));
        let _c = plan.add(step("c", vec![]));
        let d = plan.add(step("d", vec![b]));
        assert_eq!(plan.dependents(a), vec![b, d]);
        assert_eq!(plan.dependents(d), Vec::<StepId>::new());
    }
}
