//! `cargo xtask plan`: what `deploy` would change, per stack (resources added, modified, removed,
//! replaced), changing nothing. Exit 0 when nothing would change, 1 when something would, 2 on
//! error; so CI can gate on it.

use anyhow::Result;

use crate::Ctx;
use crate::aws::error::one_line;
use crate::config::Target;
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
        preview::preview(&session.plan, &session.env).await
    }
    .await;
    let previews = match outcome {
        Ok(previews) => previews,
        Err(error) if error.is::<crate::config::Invalid>() => return Err(error),
        Err(error) => {
            ctx.printer.error(one_line(&error));
            return Err(Exit(2).into());
        }
    };
    ctx.printer.text(preview::render(&previews).trim_end());
    if args.json {
        ctx.printer.json(&serde_json::json!({ "stacks": previews }))?;
    }
    if previews.iter().any(preview::StackPreview::changes_anything) {
        return Err(Exit(1).into());
    }
    Ok(())
}
