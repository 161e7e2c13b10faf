//! Runs a plan: every step whose dependencies succeeded, up to `--concurrency` at once, each with
//! its live progress line. A failed step marks everything that depends on it as skipped;
//! independent branches (other regions, other accounts) keep going. The result holds one row per
//! step, with the root cause of each failure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;
use tokio::task::JoinSet;

use crate::aws::Aws;
use crate::aws::error::one_line;
use crate::config::Config;
use crate::engine::deployed::Deployed;
use crate::engine::gaps::{self, EmulatorGap};
use crate::engine::stack::{self, Action, Method, ParamValue, StackFailed, StackRequest, Stacks};
use crate::engine::stand_ins;
use crate::engine::{Outputs, Param, Plan, StepId, StepKind, actions};
use crate::output::Printer;
use crate::template::Template;

/// What the steps need to run.
pub struct Env {
    pub config: Config,
    pub aws: Aws,
    pub printer: Printer,
    pub method: Method,
    /// How long one stack operation may take.
    pub timeout: Duration,
    pub root: PathBuf,
    /// Template bodies by stack step, prepared (read, expanded, checked) before anything ran.
    pub bodies: BTreeMap<StepId, String>,
}

/// One step's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct StepResult {
    #[serde(skip)]
    pub step: StepId,
    pub id: String,
    pub action: Action,
    /// The stack status, or a short word for other steps.
    pub status: String,
    /// For a failure: the root cause. Otherwise a note worth reading, if any.
    pub detail: Option<String>,
    pub seconds: f64,
    /// What the step produced (stack outputs, image digests, the local site's URL).
    #[serde(skip)]
    pub outputs: BTreeMap<String, String>,
    /// A stack's resources the emulator did not create (always empty on AWS).
    #[serde(skip)]
    pub emulator_gaps: Vec<EmulatorGap>,
}

impl StepResult {
    /// The result of `step` of `plan`, without outputs.
    pub fn new(
        plan: &Plan,
        step: StepId,
        action: Action,
        status: impl Into<String>,
        detail: Option<String>,
        seconds: f64,
    ) -> StepResult {
        let (id, status, outputs) = (plan.steps[step].id.clone(), status.into(), BTreeMap::new());
        StepResult { step, id, action, status, detail, seconds, outputs, emulator_gaps: Vec::new() }
    }

    /// The status and the cause of a failed step: a stack's own status and root-cause event, or
    /// `status` and the whole error chain.
    pub fn failure(error: &anyhow::Error, status: &str) -> (String, String) {
        match error.downcast_ref::<StackFailed>() {
            Some(failed) => (failed.status.clone(), failed.root_cause.clone()),
            None => (status.to_string(), one_line(error)),
        }
    }
}

/// Runs `plan` and returns one result per step, in plan order.
pub async fn execute(plan: Arc<Plan>, env: Arc<Env>, concurrency: usize) -> Vec<StepResult> {
    let count = plan.steps.len();
    let outputs: Arc<Mutex<Outputs>> = Arc::default();
    let mut results: Vec<Option<StepResult>> = vec![None; count];
    let mut started = vec![false; count];
    let mut running = JoinSet::new();
    loop {
        // Mark steps whose dependency failed or was skipped; start the ready ones.
        for id in 0..count {
            if started[id] {
                continue;
            }
            let deps = &plan.steps[id].deps;
            if let Some(blocker) =
                deps.iter().find(|dep| results[**dep].as_ref().is_some_and(|result| !succeeded(result.action)))
            {
                started[id] = true;
                let detail = format!("skipped: {} did not succeed", plan.steps[*blocker].id);
                results[id] = Some(StepResult::new(&plan, id, Action::Skipped, "NOT_STARTED", Some(detail), 0.0));
                continue;
            }
            let ready = deps.iter().all(|dep| results[*dep].as_ref().is_some_and(|result| succeeded(result.action)));
            if ready && running.len() < concurrency.max(1) {
                started[id] = true;
                let (plan, env, outputs) = (plan.clone(), env.clone(), outputs.clone());
                running.spawn(async move { run_step(&plan, &env, &outputs, id).await });
            }
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        let result = match joined {
            Ok(result) => result,
            Err(error) => panic!("a deploy step panicked: {error}"),
        };
        let id = result.step;
        results[id] = Some(result);
    }
    results.into_iter().map(|result| result.expect("every step ends with a result")).collect()
}

fn succeeded(action: Action) -> bool {
    action.succeeded()
}

async fn run_step(plan: &Plan, env: &Env, outputs: &Mutex<Outputs>, id: StepId) -> StepResult {
    let step = &plan.steps[id];
    let clock = Instant::now();
    let place = format!("{} ({}/{})", step.id, step.account, step.region);
    let (verb, outcome) = match &step.kind {
        StepKind::Stack(stack) if env.aws.is_local() && stack.emulator_gap.is_some() => {
            let note = format!("{} not deployed locally: {}", step.id, stack.emulator_gap.unwrap_or_default());
            let progress = env.printer.progress("Skipping", &place);
            let done = Done {
                action: Action::EmulatorGap,
                status: "NOT_DEPLOYED".into(),
                outputs: BTreeMap::new(),
                note: Some(note),
                emulator_gaps: Vec::new(),
            };
            (progress, Ok(done))
        }
        StepKind::Stack(_) => {
            let progress = env.printer.progress("Deploying", &place);
            let outcome = deploy_stack(plan, env, outputs, id, &progress).await;
            (progress, outcome)
        }
        StepKind::Action(action) => {
            let progress = env.printer.progress("Running", format!("{place}: {}", action.describe()));
            let snapshot = outputs.lock().expect("outputs").clone();
            let outcome = actions::run(action, step, plan, env, &snapshot, &progress).await.map(|done| Done {
                action: done.outcome,
                status: done.status,
                outputs: done.outputs,
                note: done.note,
                emulator_gaps: Vec::new(),
            });
            (progress, outcome)
        }
    };
    let seconds = clock.elapsed().as_secs_f64();
    match outcome {
        Ok(Done { action, status, outputs: values, note, emulator_gaps }) => {
            outputs.lock().expect("outputs").insert(id, values.clone());
            let word = match (&step.kind, action) {
                (StepKind::Stack(_), Action::EmulatorGap) => "Skipped",
                (StepKind::Action(_), Action::EmulatorGap) => "Gap",
                (_, Action::Created) => "Created",
                (_, Action::Updated) => "Updated",
                (_, Action::Built) => "Built",
                (_, Action::Pushed) => "Pushed",
                (_, Action::Uploaded) => "Uploaded",
                (_, Action::Checked) => "Checked",
                (_, Action::Serving) => "Serving",
                _ => "Unchanged",
            };
            verb.finish(word, format!("{place} in {seconds:.1}s"));
            if let Some(note) = &note {
                env.printer.note(note);
            }
            StepResult {
                step: id,
                id: step.id.clone(),
                action,
                status,
                detail: note,
                seconds,
                outputs: values,
                emulator_gaps,
            }
        }
        Err(error) => {
            let (status, cause) = StepResult::failure(&error, "FAILED");
            verb.fail(format!("{place}: {cause}"));
            StepResult::new(plan, id, Action::Failed, status, Some(cause), seconds)
        }
    }
}

/// What a step that ran did.
#[derive(Debug)]
struct Done {
    action: Action,
    status: String,
    outputs: BTreeMap<String, String>,
    note: Option<String>,
    emulator_gaps: Vec<EmulatorGap>,
}

type StepOutcome = Result<Done>;

async fn deploy_stack(
    plan: &Plan,
    env: &Env,
    outputs: &Mutex<Outputs>,
    id: StepId,
    progress: &crate::output::Progress,
) -> StepOutcome {
    let step = &plan.steps[id];
    let StepKind::Stack(stack_step) = &step.kind else { unreachable!("deploy_stack runs stack steps") };
    let request = {
        let snapshot = outputs.lock().expect("outputs").clone();
        request(plan, env, &snapshot, id)?
    };
    let client = env.aws.cloudformation(&step.account, &step.region).await?;
    let stacks = Stacks::new(client.clone(), env.timeout).against_emulator(env.aws.is_local());
    let deployed = stacks
        .deploy(&request, env.method, progress)
        .await
        .with_context(|| format!("deploying {} to {}/{}", stack_step.name, step.account, step.region))?;
    // Only the emulator's CloudFormation reports a stack complete without some of its resources
    // (gaps.rs); on AWS a stack is complete with every resource or it failed.
    let emulator_gaps = match env.aws.is_local() {
        true => {
            progress.update("comparing the stack's resources with its template");
            let parameters = &deployed.parameters;
            let mut found = gaps::of_stack(
                &client,
                &stack_step.name,
                &request.template_body,
                &step.account,
                &step.region,
                parameters,
            )
            .await?;
            // The Code* resources the emulator serves an API for are created through it
            // (stand_ins.rs), so that the rest of the system finds them locally.
            if stand_ins::any(&found) {
                progress.update("creating what the emulator's CloudFormation skipped through its own API");
                let template = Template::parse(Path::new(&stack_step.name), &request.template_body)?;
                let as_deployed =
                    Deployed::read(&env.aws, &step.account, &step.region, &stack_step.name, template.body).await?;
                stand_ins::stand_in(&env.aws, &as_deployed, &mut found, Some(progress)).await;
            }
            found
        }
        false => Vec::new(),
    };
    Ok(Done {
        action: deployed.action,
        status: deployed.status,
        outputs: deployed.outputs,
        note: deployed.note,
        emulator_gaps,
    })
}

/// The fully resolved request of stack step `id`, given the outputs so far.
pub fn request(plan: &Plan, env: &Env, outputs: &Outputs, id: StepId) -> Result<StackRequest> {
    let step = &plan.steps[id];
    let StepKind::Stack(stack_step) = &step.kind else { anyhow::bail!("step {} is not a stack", step.id) };
    let parameters = stack_step
        .parameters
        .iter()
        .map(|(name, param)| {
            let value =
                param.resolve(plan, outputs).with_context(|| format!("parameter {name} of {}", stack_step.name))?;
            Ok((
                name.clone(),
                match param {
                    Param::KeepPrevious(_) => ParamValue::KeepPrevious(value),
                    _ => ParamValue::Value(value),
                },
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(StackRequest {
        name: stack_step.name.clone(),
        template_body: env.bodies.get(&id).cloned().with_context(|| format!("no template prepared for {}", step.id))?,
        parameters,
        tags: stack_tags(&env.config),
    })
}

/// Tags on every stack (CloudFormation copies them to the resources that take tags).
pub fn stack_tags(config: &Config) -> Vec<(String, String)> {
    vec![("gbg:app".to_string(), config.app.clone()), ("gbg:managed-by".to_string(), "cargo-xtask".to_string())]
}

pub use stack::HASH_TAG;
