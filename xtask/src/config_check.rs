//! `cargo xtask config check`: validates `deploy.toml` and shows the topology it resolves to.
//!
//! The same loader every command runs first ([`Config::load`]): every problem at once, each with
//! its line and the fix, and exit code 2. When the file is valid, it prints what a deploy would
//! touch: each account with its region, wave and credentials, then each region with the derived
//! artifact and log bucket names, then the fields whose change matters once the stacks exist and
//! what such a change does (in place, with the next release, or refused: `config/changes.rs`).
//! `--json` prints the resolved config on stdout. It reads only the file: no AWS call, no
//! emulator; `cargo xtask plan` compares the fields with the deployed stacks.

use std::path::PathBuf;

use anyhow::Result;
use serde_json::json;

use crate::Ctx;
use crate::config::changes::{self, Source};
use crate::config::{Access, Config, Target, region_name};
use crate::output::table;

/// Arguments of `cargo xtask config`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Validate the config file (every problem at once; exit 2 if any) and print its topology.
    Check(CheckArgs),
}

#[derive(clap::Args)]
struct CheckArgs {
    /// The topology file.
    #[arg(long, default_value = "deploy.toml", value_name = "PATH")]
    config: PathBuf,
    /// Print the resolved config as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    match args.command {
        Command::Check(args) => check(ctx, args),
    }
}

fn check(ctx: &Ctx, args: CheckArgs) -> Result<()> {
    let config = Target { config: args.config, local: false }.load(&ctx.root)?;
    let regions = config.regions();
    let waves = config.waves();
    ctx.printer.status(
        "Checked",
        format!(
            "{}: app {}, {} workload{} in {} region{}, {} wave{}",
            config.path.display(),
            config.app,
            config.workloads.len(),
            plural(config.workloads.len()),
            regions.len(),
            plural(regions.len()),
            waves.len(),
            plural(waves.len()),
        ),
    );
    if args.json {
        return ctx.printer.json(&resolved(&config)?);
    }
    ctx.printer.text(table(&accounts(&config)));
    ctx.printer.text(table(&buckets(&config)));
    ctx.printer.text(table(&once_deployed(&config)));
    ctx.printer.note(
        "`cargo xtask plan` compares these with the deployed stacks: a frozen field's change is refused with its \
         fix, a release field's goes out with the next `cargo xtask release`",
    );
    Ok(())
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

/// One row per account: the tools account first, then the workloads in config order.
fn accounts(config: &Config) -> Vec<Vec<String>> {
    let mut rows = vec![
        ["ROLE", "NAME", "ACCOUNT", "REGION", "WAVE", "CREDENTIALS"].map(String::from).to_vec(),
        vec![
            "tools".into(),
            "-".into(),
            config.tools.account.clone(),
            config.tools.region.clone(),
            "-".into(),
            credentials(&config.tools.access),
        ],
    ];
    for workload in &config.workloads {
        rows.push(vec![
            "workload".into(),
            workload.name.clone(),
            workload.account.clone(),
            workload.region.clone(),
            workload.wave.to_string(),
            credentials(&workload.access),
        ]);
    }
    rows
}

/// One row per region of the tools account, with its derived bucket names.
fn buckets(config: &Config) -> Vec<Vec<String>> {
    let mut rows = vec![["REGION", "NAME", "ARTIFACT BUCKET", "ACCESS-LOG BUCKET"].map(String::from).to_vec()];
    for region in config.regions() {
        rows.push(vec![
            region.clone(),
            region_name(&region).unwrap_or("").to_string(),
            config.bucket_name(&region),
            config.log_bucket_name(&region),
        ]);
    }
    rows
}

/// One row per field whose change matters once the stacks exist (`config/changes.rs`): its value
/// and what a change of it does then. Offline, this says the rule; `plan` applies it.
fn once_deployed(config: &Config) -> Vec<Vec<String>> {
    let mut rows = vec![["FIELD", "VALUE", "A CHANGE ONCE DEPLOYED"].map(String::from).to_vec()];
    for (input, route) in changes::fields() {
        let Source::Field { value, .. } = input.source else { continue };
        rows.push(vec![input.source.name(), value(config), route.describe().to_string()]);
    }
    rows
}

fn credentials(access: &Access) -> String {
    match access {
        Access::Default => "default credential chain".into(),
        Access::Profile(profile) => format!("profile {profile}"),
        Access::Role(role) => format!("assume role {role}"),
    }
}

/// The config as JSON, with the derived regions, waves and bucket names added.
fn resolved(config: &Config) -> Result<serde_json::Value> {
    let mut value = serde_json::to_value(config)?;
    value["regions"] = config
        .regions()
        .iter()
        .map(|region| {
            json!({
                "region": region,
                "bucket": config.bucket_name(region),
                "log_bucket": config.log_bucket_name(region),
            })
        })
        .collect();
    value["waves"] = config
        .waves()
        .iter()
        .map(|(wave, workloads)| {
            json!({"wave": wave, "workloads": workloads.iter().map(|workload| &workload.name).collect::<Vec<_>>()})
        })
        .collect();
    value["once_deployed"] = changes::fields()
        .into_iter()
        .filter_map(|(input, route)| match input.source {
            Source::Field { value, .. } => {
                Some(json!({ "field": input.source.name(), "value": value(config), "route": route }))
            }
            _ => None,
        })
        .collect();
    Ok(value)
}
