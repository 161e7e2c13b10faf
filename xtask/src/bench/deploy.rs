//! `cargo xtask bench deploy`: our deploy against the original's way, its runbook replayed with
//! the AWS CLI, one stack after another, on the same emulator with the same templates and the
//! same parameters. Both the full deploy and the no-op redeploy are timed, and the emulator's
//! request log counts the API calls of each.
//!
//! The runbook replay, per account: `aws sts assume-role` once (the runbook switches
//! credentials by hand); per stack: one `aws cloudformation create-stack` for the first pass and
//! one `aws cloudformation update-stack` for the redeploy, plus one
//! `aws cloudformation describe-stacks` for each stack whose outputs later stacks need (the
//! runbook's hand-copied ARNs); the gitflow Lambda's zip goes up with one `aws s3 cp` under
//! SSE-KMS (built once, like ours). The runbook itself runs `aws cloudformation deploy`; on the
//! emulator that command cannot be replayed: moto drops the outputs of stacks made by an executed
//! change set (later stacks need them), refuses an empty change set with an error the CLI does
//! not take for "no changes", and crashes updating a load balancer through a change set. The
//! create/update pair costs one CLI process per stack, as `deploy` does, and moto creates
//! synchronously, so the replay needs no `wait`: both choices flatter the runbook.
//!
//! Ours is `cargo xtask deploy --local --image <digest>` (the stacks; the image push is measured by
//! `bench publish`). An untimed warm-up deploy first loads the emulator's lazily imported
//! backends, so neither side pays for that.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use xshell::{Shell, cmd};

use super::{Emulator, STACKS_IMAGE as IMAGE};
use crate::Ctx;
use crate::config::Config;
use crate::engine::topology::{self, ImageSource, Inputs};
use crate::engine::{Action, Outputs, Param, StepKind};
use crate::local::moto;
use crate::output::{Printer, Verbosity};
use crate::venv::Venv;
use crate::{http, lambda, project, template};

/// Arguments of `cargo xtask bench deploy`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The topology to deploy.
    #[arg(long, default_value = "deploy.toml", value_name = "PATH")]
    pub config: PathBuf,
    /// Print the figures as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct Figures {
    stacks: usize,
    ours_seconds: f64,
    ours_noop_seconds: f64,
    ours_api_calls: usize,
    runbook_seconds: f64,
    runbook_noop_seconds: f64,
    runbook_api_calls: usize,
    runbook_commands: usize,
    ratio: f64,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let config = Config::load(&ctx.root.join(&args.config))?;
    let venv = Venv::ensure(&ctx.printer)?;
    let dir = project::target_dir().join("bench/deploy");
    std::fs::create_dir_all(&dir)?;
    let emulator = Emulator::start(&venv, &dir)?;
    let figures = measure(ctx, &args, &config, &venv, &dir, emulator.port, &emulator.log).await;
    drop(emulator);
    let figures = figures?;
    let printer = &ctx.printer;
    printer.text(format!(
        "runbook (aws cli, {} commands): full {:.1}s, no-op {:.1}s, {} API calls",
        figures.runbook_commands, figures.runbook_seconds, figures.runbook_noop_seconds, figures.runbook_api_calls
    ));
    printer.text(format!(
        "cargo xtask deploy --local:     full {:.1}s, no-op {:.1}s, {} API calls ({} stacks)",
        figures.ours_seconds, figures.ours_noop_seconds, figures.ours_api_calls, figures.stacks
    ));
    if args.json {
        printer.json(&figures)?;
    }
    println!(
        "bench deploy: ratio={:.2} noop_seconds={:.2} api_calls={} runbook_api_calls={}",
        figures.ratio, figures.ours_noop_seconds, figures.ours_api_calls, figures.runbook_api_calls
    );
    Ok(())
}

async fn measure(
    ctx: &Ctx,
    args: &Args,
    config: &Config,
    venv: &Venv,
    dir: &Path,
    port: u16,
    log: &Path,
) -> Result<Figures> {
    let config_path = write_config(&ctx.root.join(&args.config), dir, port)?;
    let ours = |label: &str| -> Result<f64> {
        let clock = Instant::now();
        let sh = Shell::new()?;
        let xtask = std::env::current_exe()?;
        let state = dir.join("local");
        cmd!(sh, "{xtask} --quiet deploy --local --config {config_path} --image {IMAGE}")
            .env("GBG_LOCAL_DIR", &state)
            .quiet()
            .run()
            .with_context(|| format!("our {label} deploy failed"))?;
        Ok(clock.elapsed().as_secs_f64())
    };
    ctx.printer.status("Warming", "the emulator with an untimed deploy");
    ours("warm-up")?;

    reset(port)?;
    ctx.printer.status("Replaying", "the runbook with the AWS CLI, one stack after another");
    let before = api_calls(log)?;
    let (runbook_seconds, commands) = replay(config, venv, dir, port, false)?;
    let runbook_api_calls = api_calls(log)? - before;
    let (runbook_noop_seconds, _) = replay(config, venv, dir, port, true)?;

    reset(port)?;
    ctx.printer.status("Deploying", "with cargo xtask deploy --local");
    let before = api_calls(log)?;
    let ours_seconds = ours("full")?;
    let ours_api_calls = api_calls(log)? - before;
    let ours_noop_seconds = ours("no-op")?;
    let (plan, _) = topology::plan(config, &Inputs { image: ImageSource::Given(IMAGE.into()), local: true });
    Ok(Figures {
        stacks: plan.stacks().count(),
        ours_seconds,
        ours_noop_seconds,
        ours_api_calls,
        runbook_seconds,
        runbook_noop_seconds,
        runbook_api_calls,
        runbook_commands: commands,
        ratio: ours_seconds / runbook_seconds,
    })
}

/// The config with the emulator port set to the bench's own emulator.
pub(super) fn write_config(source: &Path, dir: &Path, port: u16) -> Result<PathBuf> {
    let text = std::fs::read_to_string(source).with_context(|| format!("reading {}", source.display()))?;
    let mut document: toml_edit::DocumentMut = text.parse().with_context(|| format!("parsing {}", source.display()))?;
    document["local"]["emulator_port"] = toml_edit::value(i64::from(port));
    let path = dir.join("deploy.toml");
    std::fs::write(&path, document.to_string())?;
    Ok(path)
}

fn reset(port: u16) -> Result<()> {
    let answer =
        http::request("POST", &format!("{}/moto-api/reset", moto::url(port)), &[], &[], Duration::from_secs(10))?;
    if answer.status != 200 {
        bail!("resetting the bench's emulator answered HTTP {}", answer.status);
    }
    Ok(())
}

/// Requests the emulator logged, other than its own /moto-api/ (probes, resets).
fn api_calls(log: &Path) -> Result<usize> {
    let text = std::fs::read_to_string(log).with_context(|| format!("reading {}", log.display()))?;
    Ok(text.lines().filter(|line| line.contains(" HTTP/1.1\" ") && !line.contains("/moto-api/")).count())
}

/// Replays the runbook: credentials per account, then each stack in plan order, sequentially.
/// Returns the seconds taken and the number of CLI commands run.
fn replay(config: &Config, venv: &Venv, dir: &Path, port: u16, again: bool) -> Result<(f64, usize)> {
    let sh = Shell::new()?;
    replay_in(&sh, config, venv, dir, port, again)
}

fn replay_in<'a>(
    sh: &'a Shell,
    config: &Config,
    venv: &Venv,
    dir: &Path,
    port: u16,
    again: bool,
) -> Result<(f64, usize)> {
    let clock = Instant::now();
    let aws = venv.bin("aws");
    let endpoint = moto::url(port);
    let (plan, _) = topology::plan(config, &Inputs { image: ImageSource::Given(IMAGE.into()), local: true });
    let mut commands = 0;
    let mut credentials: BTreeMap<String, (String, String, String)> = BTreeMap::new();
    let accounts =
        std::iter::once(config.tools.account.clone()).chain(config.workloads.iter().map(|w| w.account.clone()));
    for account in accounts {
        if credentials.contains_key(&account) {
            continue;
        }
        let role = format!("arn:aws:iam::{account}:role/{}", crate::config::DEFAULT_ROLE);
        let reply = cmd!(sh, "{aws} sts assume-role --role-arn {role} --role-session-name runbook --output json")
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_ACCESS_KEY_ID", "AKIARUNBOOKBASE00000")
            .env("AWS_SECRET_ACCESS_KEY", "runbook")
            .env("AWS_DEFAULT_REGION", &config.tools.region)
            .quiet()
            .read()?;
        commands += 1;
        let reply: serde_json::Value = serde_json::from_str(&reply)?;
        let field = |name: &str| reply["Credentials"][name].as_str().unwrap_or_default().to_string();
        credentials.insert(account, (field("AccessKeyId"), field("SecretAccessKey"), field("SessionToken")));
    }
    // Which stacks' outputs later stacks read: the runbook user looks those up.
    let mut read_later = std::collections::BTreeSet::new();
    for step in &plan.steps {
        let sources = match &step.kind {
            StepKind::Stack(stack) => {
                stack.parameters.iter().flat_map(|(_, param)| param.sources()).collect::<Vec<_>>()
            }
            StepKind::Action(action) => action.sources(),
        };
        read_later.extend(sources);
    }
    let mut outputs = Outputs::new();
    for (id, step) in plan.steps.iter().enumerate() {
        let stack = match &step.kind {
            StepKind::Stack(stack) if stack.emulator_gap.is_none() => stack,
            StepKind::Action(Action::CheckReplica { key_arn }) => {
                // The runbook user builds the replica ARNs by hand from the primary's id.
                outputs.insert(id, BTreeMap::from([("KeyArn".into(), key_arn.resolve(&plan, &outputs)?)]));
                continue;
            }
            StepKind::Action(Action::BuildLambda) => {
                // The same build as ours (cached by cargo after the warm-up, on both sides).
                let ctx = Ctx { root: project::root(), printer: Printer::plain(Verbosity::Quiet) };
                let package = lambda::build(&ctx)?;
                outputs.insert(
                    id,
                    BTreeMap::from([
                        ("ZipPath".into(), package.zip_path.display().to_string()),
                        ("ObjectKey".into(), package.s3_key),
                    ]),
                );
                continue;
            }
            StepKind::Action(Action::Upload { file, bucket, object_key, kms_key_arn }) => {
                // The runbook user copies the Lambda's zip up by hand, every time.
                let (file, bucket, object_key, kms_key_arn) = (
                    file.resolve(&plan, &outputs)?,
                    bucket.resolve(&plan, &outputs)?,
                    object_key.resolve(&plan, &outputs)?,
                    kms_key_arn.resolve(&plan, &outputs)?,
                );
                let (key, secret, token) = &credentials[&step.account];
                let target = format!("s3://{bucket}/{object_key}");
                cmd!(sh, "{aws} s3 cp {file} {target} --sse aws:kms --sse-kms-key-id {kms_key_arn} --only-show-errors")
                    .env("AWS_ENDPOINT_URL", &endpoint)
                    .env("AWS_ACCESS_KEY_ID", key)
                    .env("AWS_SECRET_ACCESS_KEY", secret)
                    .env("AWS_SESSION_TOKEN", token)
                    .env("AWS_DEFAULT_REGION", &step.region)
                    .quiet()
                    .run()
                    .with_context(|| format!("runbook: uploading the gitflow Lambda to {target}"))?;
                commands += 1;
                outputs.insert(id, BTreeMap::from([("Bucket".into(), bucket), ("Key".into(), object_key)]));
                continue;
            }
            // Stacks the emulator cannot create are skipped on both sides.
            StepKind::Stack(_) => continue,
            // Measured elsewhere (`bench publish`) or local-only: the image, its push and the
            // release, the service and site checks. Listed one by one, not with `_`, so that a
            // new kind of step must be given its runbook equivalent here (the gitflow Lambda's
            // build and upload once broke this bench by falling through).
            StepKind::Action(
                Action::WaitService { .. }
                | Action::CheckSite { .. }
                | Action::BuildImage
                | Action::PushImage { .. }
                | Action::SameDigest { .. }
                | Action::PackageRelease { .. }
                | Action::PublishTargets { .. }
                | Action::LocalSite { .. },
            ) => continue,
        };
        let (key, secret, token) = &credentials[&step.account];
        let template = match &stack.expansion {
            None => project::root().join(&stack.template),
            Some(expansion) => {
                let prototype = template::Template::load(&project::root().join(&stack.template))?;
                let expanded = template::expand_pipeline(&prototype.body, expansion.regions, &expansion.waves)?;
                let path = dir.join("pipeline.json");
                std::fs::write(&path, serde_json::to_string(&expanded)?)?;
                path
            }
        };
        let values: Vec<(String, String)> = stack
            .parameters
            .iter()
            .map(|(name, param)| {
                let param = match param {
                    Param::KeepPrevious(inner) => inner.as_ref(),
                    other => other,
                };
                Ok((name.clone(), param.resolve(&plan, &outputs)?))
            })
            .collect::<Result<_>>()?;
        let name = &stack.name;
        let region = &step.region;
        let body = format!("file://{}", template.display());
        let with_env = |command: xshell::Cmd<'a>| -> xshell::Cmd<'a> {
            command
                .env("AWS_ENDPOINT_URL", &endpoint)
                .env("AWS_ACCESS_KEY_ID", key)
                .env("AWS_SECRET_ACCESS_KEY", secret)
                .env("AWS_SESSION_TOKEN", token)
                .env("AWS_DEFAULT_REGION", region)
                .quiet()
        };
        let mut parameters: Vec<String> = values
            .iter()
            .map(|(name, value)| format!("ParameterKey={name},ParameterValue={}", value.replace(',', "\\,")))
            .collect();
        if !parameters.is_empty() {
            parameters.insert(0, "--parameters".into());
        }
        let verb = if again { "update-stack" } else { "create-stack" };
        let sent = with_env(cmd!(sh, "{aws} cloudformation {verb} --stack-name {name} --template-body {body} --capabilities CAPABILITY_IAM CAPABILITY_NAMED_IAM {parameters...}"))
            .ignore_status()
            .output()?;
        // The redeploy is a no-op: CloudFormation answers "No updates are to be performed." (an
        // error for the CLI, exit 255), which is the expected answer here.
        let stderr = String::from_utf8_lossy(&sent.stderr);
        let no_op = again && stderr.contains("No updates are to be performed");
        if !sent.status.success() && !no_op {
            bail!("runbook: {verb} {name} in {region}: {stderr}");
        }
        commands += 1;
        if read_later.contains(&id) {
            let text = with_env(cmd!(
                sh,
                "{aws} cloudformation describe-stacks --stack-name {name} --query Stacks[0].Outputs --output json"
            ))
            .read()?;
            commands += 1;
            let listed: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
            let values = listed
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|item| {
                            Some((item["OutputKey"].as_str()?.to_string(), item["OutputValue"].as_str()?.to_string()))
                        })
                        .collect()
                })
                .unwrap_or_default();
            outputs.insert(id, values);
        }
    }
    Ok((clock.elapsed().as_secs_f64(), commands))
}
