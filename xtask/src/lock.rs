//! `cargo xtask lock`: who holds the topology lock (`status`), and removing a stale one (`break`).
//! `deploy`, `release` and `destroy` take and release the lock themselves (`topology_lock.rs`);
//! this is for the lock a killed run left behind.

use anyhow::Result;

use crate::Ctx;
use crate::config::Target;
use crate::topology_lock::{self, LOCK_KEY};

/// Arguments of `cargo xtask lock`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Show who holds the topology lock, from where, for which command and since when.
    Status(StatusArgs),
    /// Remove the topology lock whoever holds it: only when the run that took it is gone (a
    /// killed process, a lost machine), or two runs will change the topology at once.
    Break(StatusArgs),
}

#[derive(clap::Args, Debug)]
struct StatusArgs {
    #[command(flatten)]
    target: Target,
    /// Print the holder as JSON on stdout (`null` when the lock is free).
    #[arg(long)]
    json: bool,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let (breaking, args) = match args.command {
        Command::Status(args) => (false, args),
        Command::Break(args) => (true, args),
    };
    let config = args.target.load(&ctx.root)?;
    let aws = crate::aws::connect(ctx, &config, args.target.local, false).await?;
    let Some(place) = topology_lock::place(&aws, &config).await? else {
        ctx.printer.status("Free", "no artifact bucket yet, so no lock: nothing is deployed");
        if args.json {
            ctx.printer.json(&serde_json::Value::Null)?;
        }
        return Ok(());
    };
    let holder = match breaking {
        false => topology_lock::read(&place).await?.map(|(holder, _)| holder),
        true => topology_lock::break_lock(&place).await?,
    };
    match (&holder, breaking) {
        (None, _) => ctx.printer.status("Free", format!("s3://{}/{LOCK_KEY} is not held", place.bucket)),
        (Some(holder), false) => ctx.printer.status("Locked", format!("by {holder}")),
        (Some(holder), true) => ctx.printer.status("Broke", format!("the lock held by {holder}")),
    }
    if args.json {
        ctx.printer.json(&holder)?;
    }
    Ok(())
}
