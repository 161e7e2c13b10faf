//! `cargo xtask status`: every stack of the plan with its account, region, state and last
//! update; `--json` for machines. Changes nothing.

use anyhow::Result;
use futures_util::future::try_join_all;
use serde::Serialize;

use crate::Ctx;
use crate::config::Target;
use crate::engine::session::{self, Options};
use crate::engine::stack::Stacks;
use crate::engine::topology::Inputs;
use crate::output::table;

/// Arguments of `cargo xtask status`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// Print the states as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Row {
    name: String,
    account: String,
    region: String,
    /// The CloudFormation status, or `NOT_DEPLOYED`.
    status: String,
    /// RFC 3339, when deployed.
    last_updated: Option<String>,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let inputs = |_: &crate::config::Config| Inputs::stacks_only();
    let session = session::open(ctx, &args.target, inputs, Options::default()).await?;
    let env = &session.env;
    let rows = try_join_all(session.plan.stacks().map(|(_, step, stack)| async move {
        let stacks = Stacks::new(env.aws.cloudformation(&step.account, &step.region).await?, env.timeout);
        let state = stacks.describe(&stack.name).await?;
        anyhow::Ok(Row {
            name: stack.name.clone(),
            account: step.account.clone(),
            region: step.region.clone(),
            status: state.as_ref().map(|state| state.status_text()).unwrap_or_else(|| "NOT_DEPLOYED".into()),
            last_updated: state
                .and_then(|state| state.last_updated)
                .and_then(|time| time.fmt(aws_smithy_types::date_time::Format::DateTime).ok()),
        })
    }))
    .await?;
    let mut lines = vec![["STACK", "ACCOUNT", "REGION", "STATUS", "LAST UPDATE"].map(String::from).to_vec()];
    for row in &rows {
        lines.push(vec![
            row.name.clone(),
            row.account.clone(),
            row.region.clone(),
            row.status.clone(),
            row.last_updated.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    ctx.printer.text(table(&lines).trim_end());
    if args.json {
        ctx.printer.json(&serde_json::json!({ "stacks": rows }))?;
    }
    Ok(())
}
