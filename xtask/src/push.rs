//! `cargo xtask push`: builds the site's image once and pushes it to every workload's registry in
//! parallel, then checks that every registry reports the same digest. The registries must exist
//! (`cargo xtask deploy` creates them); locally they are the per-region `docker-registry`s.

use anyhow::{Result, bail};
use futures_util::future::try_join_all;

use crate::Ctx;
use crate::config::Target;
use crate::docker::Docker;
use crate::engine::session::{self, Options};
use crate::engine::topology::Inputs;
use crate::output::table;
use crate::publish;
use crate::site_image;

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
    let session =
        session::open(ctx, &args.target, |_| Inputs::stacks_only(), Options { method: None, show_identities: true })
            .await?;
    let config = &session.config;
    let options = site_image::Options { config: config.path.clone(), dockerfile: None };
    let image = site_image::build(ctx, &options).await?;
    let docker = Docker::connect().await?;
    let aws = &session.env.aws;
    let pushes = try_join_all(config.workloads.iter().map(|workload| {
        let (docker, image) = (&docker, &image);
        async move {
            let progress = ctx.printer.progress(
                "Pushing",
                format!("{} to {} ({}/{})", image.reference, workload.name, workload.account, workload.region),
            );
            let destination = publish::destination(aws, config, workload, &ctx.printer).await?;
            let pushed = publish::push(docker, aws, &image.reference, &image.tag, &destination).await?;
            progress.finish(
                "Pushed",
                format!(
                    "{} ({} of {} layers sent, {} bytes)",
                    pushed.image_uri, pushed.layers_pushed, pushed.layers_total, pushed.bytes_pushed
                ),
            );
            anyhow::Ok(pushed)
        }
    }))
    .await?;
    let digest = match publish::same_digest(&pushes) {
        Ok(digest) => digest,
        Err(error) => bail!("{error:#}"),
    };
    let mut rows = vec![["WORKLOAD", "ACCOUNT", "REGION", "IMAGE", "LAYERS SENT"].map(String::from).to_vec()];
    for push in &pushes {
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
