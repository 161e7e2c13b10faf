//! `cargo xtask deploy`: every stack to every account and region of the config, in dependency
//! order, independent steps in parallel; then a summary. With `--dry-run` it previews instead
//! (the same code path as `cargo xtask plan`). Either way it first compares the deployed stacks'
//! inputs with the config: a change AWS would refuse stops it before anything changes (exit 2),
//! one that goes out with the next release is said.

use anyhow::Result;

use crate::Ctx;
use crate::cli::ImageReference;
use crate::config::Target;
use crate::config::changes;
use crate::engine::executor;
use crate::engine::preview;
use crate::engine::report::Summary;
use crate::engine::session::{self, Options};
use crate::engine::stack::Method;
use crate::engine::topology::{ImageSource, Inputs};
use crate::output::Exit;
use crate::preflight;
use crate::topology_lock::{self, LockArgs};

/// Arguments of `cargo xtask deploy`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// How stacks are deployed: through change sets (the default on AWS) or directly (the
    /// default locally, where the emulator drops the outputs of executed change sets).
    #[arg(long, value_enum)]
    pub method: Option<Method>,
    /// How many steps run at once (1 to 64).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// Deploy this image (`<registry>/<repository>@sha256:<digest>`) as the services' first image.
    #[arg(long, value_name = "REFERENCE")]
    pub image: Option<ImageReference>,
    /// Show what would change, per stack, without changing anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Print a machine-readable summary on stdout.
    #[arg(long)]
    pub json: bool,
    /// After a successful deploy, verify the topology as `cargo xtask verify` does (exit 1 if it
    /// fails). It runs after the deploy, not before: a pre-flight cannot verify stacks that do
    /// not exist yet. Its table goes to stderr; --json prints only the deploy's summary.
    #[arg(long, conflicts_with = "dry_run")]
    pub verify: bool,
    #[command(flatten)]
    pub lock: LockArgs,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let inputs = |_: &crate::config::Config| Inputs {
        image: match &args.image {
            Some(reference) => ImageSource::Given(reference.to_string()),
            None => ImageSource::Build,
        },
        local: args.target.local,
    };
    let session =
        session::open(ctx, &args.target, inputs, Options { method: args.method, show_identities: true }).await?;
    // The lock first (not for a dry run, which changes nothing), so that what follows reads the
    // stacks as they are once no one else changes them.
    let lock = match args.dry_run {
        true => None,
        false => {
            topology_lock::acquire(&session.env.aws, &session.config, "deploy", args.lock.wait(), &ctx.printer).await?
        }
    };
    topology_lock::hold(lock, &ctx.printer, deploy(ctx, &args, &session)).await
}

/// The deploy itself, under the topology lock.
async fn deploy(ctx: &Ctx, args: &Args, session: &session::Session) -> Result<()> {
    // Before any change: what the deployed stacks cannot take is refused, what goes out with the
    // next release is said (`config/changes.rs`).
    let differences = preview::differences(&session.plan, &session.env).await?;
    if changes::refuse(&ctx.printer, &differences) {
        return Err(Exit(2).into());
    }
    changes::note_releases(&ctx.printer, &differences);
    if args.dry_run {
        let previews = preview::preview(&session.plan, &session.env).await?;
        ctx.printer.text(preview::render(&previews).trim_end());
        if args.json {
            ctx.printer.json(&serde_json::json!({ "stacks": previews }))?;
        }
        return Ok(());
    }
    let results = executor::execute(session.plan.clone(), session.env.clone(), usize::from(args.concurrency)).await;
    let mut summary = Summary::new(&session.plan, &results);
    summary.site = session.index.local_site.and_then(|step| {
        results.iter().find(|result| result.step == step).and_then(|result| result.outputs.get("Url").cloned())
    });
    summary.print(&ctx.printer);
    if let Some(url) = &summary.site {
        ctx.printer.status("Serving", format!("the site at {}", ctx.printer.bold(url)));
    }
    if args.json {
        ctx.printer.json(&summary)?;
    }
    if summary.failed() > 0 {
        return Err(Exit(1).into());
    }
    if args.verify {
        let env = &session.env;
        return preflight::run(&ctx.printer, &ctx.root, &env.aws, &session.config, false).await;
    }
    Ok(())
}
