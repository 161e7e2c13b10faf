//! What a deploy would change, stack by stack, without changing anything: the engine behind
//! `cargo xtask plan` and `deploy --dry-run`.
//!
//! Parameters are resolved from the outputs of the stacks that exist now. A stack that does not
//! exist would be created with every resource of its template; one whose hash tag matches would
//! not change; any other is previewed through a change set that is deleted afterwards. The gitflow
//! Lambda is built locally (nothing remote changes) so that a change of its code shows.
//!
//! Before either, [`differences`] compares the deployed stacks' inputs with the requested ones
//! that cannot change in place (`config/changes.rs`): a frozen one stops `plan` and `deploy`
//! before any change, a release-route one is said to go out with the next release.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;

use crate::aws::error::one_line;
use crate::config::changes::{self, Difference};
use crate::engine::executor::{Env, request};
use crate::engine::stack::{Change, HASH_TAG, Stacks};
use crate::engine::{Action, Outputs, Plan, StepKind, actions};
use crate::template::Template;

/// The preview of one stack.
#[derive(Clone, Debug, Serialize)]
pub struct StackPreview {
    pub name: String,
    pub account: String,
    pub region: String,
    /// `create`, `update`, `none`, `emulator-gap`, or `unknown` (an input is not known yet).
    pub verdict: String,
    pub changes: Vec<Change>,
    pub note: Option<String>,
}

impl StackPreview {
    pub fn changes_anything(&self) -> bool {
        matches!(self.verdict.as_str(), "create" | "update" | "unknown")
    }
}

/// Previews every stack of `plan`, in plan order.
pub async fn preview(plan: &Plan, env: &Env) -> Result<Vec<StackPreview>> {
    let mut outputs = Outputs::new();
    let mut previews = Vec::new();
    for (id, step) in plan.steps.iter().enumerate() {
        let stack_step = match &step.kind {
            StepKind::Stack(stack_step) => stack_step,
            StepKind::Action(Action::CheckReplica { key_arn }) => {
                // The replica's ARN is derived; known as soon as the primary's id is.
                if let Ok(arn) = key_arn.resolve(plan, &outputs) {
                    outputs.insert(id, BTreeMap::from([("KeyArn".to_string(), arn)]));
                }
                continue;
            }
            StepKind::Action(Action::BuildLambda) => {
                // A local build, nothing remote: it tells whether the function's code would change.
                let progress = env.printer.progress("Building", "the gitflow Lambda to compare its code");
                let values = actions::run(&Action::BuildLambda, step, plan, env, &outputs, &progress).await?.outputs;
                progress.finish("Built", "the gitflow Lambda");
                outputs.insert(id, values);
                continue;
            }
            StepKind::Action(Action::Upload { bucket, object_key, .. }) => {
                // Where the upload would put it; nothing is uploaded.
                if let (Ok(bucket), Ok(key)) = (bucket.resolve(plan, &outputs), object_key.resolve(plan, &outputs)) {
                    outputs.insert(id, BTreeMap::from([("Bucket".to_string(), bucket), ("Key".to_string(), key)]));
                }
                continue;
            }
            StepKind::Action(_) => continue,
        };
        let mut row = StackPreview {
            name: stack_step.name.clone(),
            account: step.account.clone(),
            region: step.region.clone(),
            verdict: String::new(),
            changes: Vec::new(),
            note: None,
        };
        if env.aws.is_local()
            && let Some(gap) = stack_step.emulator_gap
        {
            row.verdict = "emulator-gap".into();
            row.note = Some(gap.to_string());
            previews.push(row);
            continue;
        }
        let progress = env.printer.progress("Previewing", format!("{} ({}/{})", step.id, step.account, step.region));
        let stacks = Stacks::new(env.aws.cloudformation(&step.account, &step.region).await?, env.timeout);
        let current = stacks.describe(&stack_step.name).await?;
        let Some(current) = current else {
            row.verdict = "create".into();
            let template = Template::load(&env.root.join(&stack_step.template))?;
            row.changes = template
                .resources()
                .map(|(logical_id, resource)| Change {
                    action: "Add".into(),
                    logical_id: logical_id.to_string(),
                    resource_type: resource.get("Type").and_then(|kind| kind.as_str()).unwrap_or_default().to_string(),
                    replacement: None,
                })
                .collect();
            progress.finish("Previewed", format!("{}: create", step.id));
            previews.push(row);
            continue;
        };
        outputs.insert(id, current.outputs.clone());
        let request = match request(plan, env, &outputs, id) {
            Ok(request) => request,
            Err(error) => {
                row.verdict = "unknown".into();
                row.note = Some(format!("{} yet", one_line(&error)));
                progress.finish("Previewed", format!("{}: inputs not known yet", step.id));
                previews.push(row);
                continue;
            }
        };
        if current.is_complete() && current.tags.get(HASH_TAG) == Some(&request.hash()) {
            row.verdict = "none".into();
            progress.finish("Previewed", format!("{}: no changes", step.id));
            previews.push(row);
            continue;
        }
        row.verdict = "update".into();
        match stacks.preview(&request, &progress).await? {
            Some(changes) => row.changes = changes,
            None => {
                row.note = Some("the template or parameters changed; the change set lists no resource change".into())
            }
        }
        progress.finish("Previewed", format!("{}: update", step.id));
        previews.push(row);
    }
    Ok(previews)
}

/// Every input of a deployed stack whose requested value differs from the stack's and cannot go
/// in place (`config/changes.rs`): the frozen ones a deploy must refuse, the release-route ones the
/// next release rolls out. Reads every stack of the plan in plan order (a stack's inputs may be
/// outputs of an earlier one) and changes nothing: `plan` and `deploy` run it before anything else.
pub async fn differences(plan: &Plan, env: &Env) -> Result<Vec<Difference>> {
    let mut outputs = Outputs::new();
    let mut found = Vec::new();
    let prefix = format!("{}-", env.config.app);
    for (id, step, stack_step) in plan.stacks() {
        if env.aws.is_local() && stack_step.emulator_gap.is_some() {
            continue;
        }
        let stacks = Stacks::new(env.aws.cloudformation(&step.account, &step.region).await?, env.timeout);
        let Some(current) = stacks.describe(&stack_step.name).await? else { continue };
        outputs.insert(id, current.outputs.clone());
        // A leftover of a failed create is created again; only a stack that stands has inputs to keep.
        if !current.is_complete() {
            continue;
        }
        let stack = stack_step.name.strip_prefix(&prefix).unwrap_or(&stack_step.name);
        for (parameter, value) in &stack_step.parameters {
            // An input that comes from a step that has not run (the image a deploy builds) is not known yet.
            let Ok(requested) = value.resolve(plan, &outputs) else { continue };
            let deployed = current.parameters.get(parameter).map(String::as_str);
            let (Some(route), Some(input)) =
                (changes::decide(stack, parameter, deployed, &requested), changes::input(stack, parameter))
            else {
                continue;
            };
            found.push(Difference {
                step: step.id.clone(),
                account: step.account.clone(),
                region: step.region.clone(),
                stack: stack_step.name.clone(),
                parameter: parameter.clone(),
                field: input.source.name(),
                deployed: deployed.unwrap_or_default().to_string(),
                requested,
                route,
                input,
            });
        }
    }
    Ok(found)
}

/// The preview as text: one block per stack that would change, then a count line.
pub fn render(previews: &[StackPreview]) -> String {
    let mut text = String::new();
    for preview in previews {
        let place = format!("{} ({}/{})", preview.name, preview.account, preview.region);
        match preview.verdict.as_str() {
            "none" => continue,
            "emulator-gap" => {
                text.push_str(&format!("~ {place}: not deployed locally\n"));
                continue;
            }
            "unknown" => text.push_str(&format!("? {place}: would be deployed once its inputs exist\n")),
            "create" => text.push_str(&format!("+ {place}: create ({} resources)\n", preview.changes.len())),
            _ => text.push_str(&format!("~ {place}: update\n")),
        }
        for change in &preview.changes {
            let sign = match change.action.as_str() {
                "Add" => "+",
                "Remove" => "-",
                _ => "~",
            };
            let replacement = match change.replacement.as_deref() {
                Some("True") => " (REPLACE)",
                Some("Conditional") => " (may replace)",
                _ => "",
            };
            text.push_str(&format!("    {sign} {} {}{replacement}\n", change.logical_id, change.resource_type));
        }
        if let Some(note) = &preview.note {
            text.push_str(&format!("    note: {note}\n"));
        }
    }
    let changing = previews.iter().filter(|preview| preview.changes_anything()).count();
    text.push_str(&format!("{changing} of {} stacks would change\n", previews.len()));
    text
}
