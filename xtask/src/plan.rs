//! `cargo xtask plan`: what `deploy` would change, per stack (resources added, modified, removed,
//! replaced), changing nothing. Exit 0 when nothing would change, 1 when something would, 2 on
//! error or on a change AWS would refuse (`config/changes.rs`: named with its fix, before any
//! change set is made); so CI can gate on it. A change that goes out with the next release (cpu,
//! memory) is said as a note and changes no stack.

use anyhow::Result;

use crate::Ctx;
use crate::aws::error::one_line;
use crate::config::Target;
use crate::config::changes::{self, Route};
use crate::engine::preview;
use crate::engine::session::{self, Options};
use crate::engine::topology::Inputs;
use crate::output::Exit;

/// Arguments of `cargo xtask plan`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// Print the preview as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let inputs = |_: &crate::config::Config| Inputs::stacks_only();
    let outcome = async {
        let session = session::open(ctx, &args.target, inputs, Options::default()).await?;
        // A change AWS would refuse stops the plan before any change set is made for it.
        let differences = preview::differences(&session.plan, &session.env).await?;
        if changes::refuse(&ctx.printer, &differences) {
            return Ok(None);
        }
        let previews = preview::preview(&session.plan, &session.env).await?;
        anyhow::Ok(Some((previews, differences)))
    }
    .await;
    let (previews, differences) = match outcome {
        Ok(Some(planned)) => planned,
        Ok(None) => return Err(Exit(2).into()),
        Err(error) if error.is::<crate::config::Invalid>() => return Err(error),
        Err(error) => {
            ctx.printer.error(one_line(&error));
            return Err(Exit(2).into());
        }
    };
    ctx.printer.text(preview::render(&previews).trim_end());
    changes::note_releases(&ctx.printer, &differences);
    if args.json {
        let release: Vec<_> = differences.iter().filter(|difference| difference.route == Route::Release).collect();
        ctx.printer.json(&serde_json::json!({ "stacks": previews, "release": release }))?;
    }
    if previews.iter().any(preview::StackPreview::changes_anything) {
        return Err(Exit(1).into());
    }
    Ok(())
}
