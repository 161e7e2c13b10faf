//! `cargo xtask push`: builds the site's image once and pushes it to every workload's registry in
//! parallel, then checks that every registry reports the same digest. The registries must exist
//! (`cargo xtask deploy` creates them); locally they are the per-region `docker-registry`s.

use anyhow::Result;

use crate::Ctx;
use crate::config::Target;
use crate::output::table;
use crate::release_files;

/// Arguments of `cargo xtask push`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// Print every push as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let config = args.target.load(&ctx.root)?;
    let aws = crate::aws::connect(ctx, &config, args.target.local, true).await?;
    let published = release_files::publish_image(ctx, &aws, &config).await?;
    let (image, pushes, digest) = (&published.built, &published.pushes, &published.images.digest);
    let mut rows = vec![["WORKLOAD", "ACCOUNT", "REGION", "IMAGE", "LAYERS SENT"].map(String::from).to_vec()];
    for push in pushes {
        rows.push(vec![
            push.workload.clone(),
            push.account.clone(),
            push.region.clone(),
            push.image_uri.clone(),
            format!("{}/{}", push.layers_pushed, push.layers_total),
        ]);
    }
    ctx.printer.text(table(&rows).trim_end());
    ctx.printer.status("Verified", format!("every registry holds {digest}"));
    if args.json {
        ctx.printer.json(&serde_json::json!({ "image": image.reference, "digest": digest, "pushes": pushes }))?;
    }
    Ok(())
}
