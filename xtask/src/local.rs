//! `cargo xtask local`: the local stack, on this machine's Docker engine and loopback.
//!
//! `run` and `stop` manage the site container (`local/site.rs`); `status` lists every part of the
//! stack that is up, and `down` stops all of them. The parts are independent modules under
//! `local/`, each offering `status` rows and a way down; the site is the first part, the AWS
//! emulator (`local/moto.rs`) and the per-region registries (`local/registry.rs`) join it in
//! [`status`] and [`down`]. Every command is idempotent: running what runs, or stopping what is
//! stopped, succeeds without changing anything.

pub mod daemon;
pub mod moto;
pub mod registry;
pub mod site;

pub use daemon::PartStatus;

use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::Ctx;
use crate::cli::ImageTag;
use crate::config::Config;
use crate::docker::Docker;
use crate::output::table;
use crate::project;
use crate::site_image;

use site::{Colour, SiteSpec};

/// Arguments of `cargo xtask local`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Run the site's image on 127.0.0.1, wait until it is healthy and print its URL (builds the
    /// image first when the checkout's is missing).
    Run(RunArgs),
    /// Stop and remove the site's containers.
    Stop(StopArgs),
    /// List every part of the local stack with its state and URL.
    Status(StatusArgs),
    /// Stop every part of the local stack.
    Down(StopArgs),
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The topology file (its `app` names the image and the container).
    #[arg(long, default_value = "deploy.toml", value_name = "PATH")]
    pub config: PathBuf,
    /// The port on 127.0.0.1 to publish the site on (default: the config's `site_port` under
    /// [local], where `deploy --local` publishes it too).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// Run this image tag instead of the checkout's (it must exist; nothing is built).
    #[arg(long)]
    pub tag: Option<ImageTag>,
    /// Which of two side-by-side versions this is.
    #[arg(long, value_enum, default_value_t = Colour::Blue)]
    pub colour: Colour,
    /// Print the running site as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct StopArgs {
    /// The topology file (its `app` names the containers).
    #[arg(long, default_value = "deploy.toml", value_name = "PATH")]
    pub config: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// The topology file.
    #[arg(long, default_value = "deploy.toml", value_name = "PATH")]
    pub config: PathBuf,
    /// Print the parts as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    match args.command {
        Command::Run(args) => run_site(ctx, args).await,
        Command::Stop(args) => stop_site(ctx, args).await,
        Command::Status(args) => status(ctx, args).await,
        Command::Down(args) => down(ctx, args).await,
    }
}

async fn run_site(ctx: &Ctx, args: RunArgs) -> Result<()> {
    let config = Config::load(&ctx.root.join(&args.config))?;
    let port = args.port.unwrap_or(config.local.site_port);
    let docker = Docker::connect().await?;
    let explicit_tag = args.tag.is_some();
    let tag = match args.tag {
        Some(tag) => tag.to_string(),
        None => project::revision(&ctx.root)?.tag(),
    };
    let reference = format!("{}:{tag}", config.app);
    let name = site::container_name(&config.app, args.colour);
    // Fail on a taken port before a minute of building; our own container on it is replaced later.
    let ours = docker.container(&name).await?.is_some_and(|container| container.host_port == Some(port));
    if !ours {
        site::ensure_port_free(port)?;
    }
    if docker.image(&reference).await?.is_none() {
        if explicit_tag {
            bail!("image {reference} does not exist; build it with `cargo xtask image` (or omit --tag)");
        }
        ctx.printer.note(format!("image {reference} is not built yet; building it"));
        let options = site_image::Options { config: args.config.clone(), dockerfile: None };
        site_image::build(ctx, &options).await?;
    }
    let spec = SiteSpec {
        app: config.app.clone(),
        image: reference,
        version: tag,
        colour: args.colour,
        host_port: port,
        container_port: config.service.container_port,
    };
    let running = site::run(&docker, &spec, &ctx.printer).await?;
    let verb = if running.unchanged { "Unchanged" } else { "Serving" };
    ctx.printer.status(verb, format!("{} ({}) at {}", running.image, running.colour, ctx.printer.bold(&running.url)));
    if args.json {
        ctx.printer.json(&running)?;
    }
    Ok(())
}

async fn stop_site(ctx: &Ctx, args: StopArgs) -> Result<()> {
    let config = Config::load(&ctx.root.join(&args.config))?;
    let docker = Docker::connect().await?;
    report_stopped(ctx, &config, site::stop(&docker, &config.app, None).await?);
    Ok(())
}

fn report_stopped(ctx: &Ctx, config: &Config, removed: Vec<String>) {
    if removed.is_empty() {
        ctx.printer.status("Stopped", format!("nothing: no site container of {} exists", config.app));
    }
    for name in removed {
        ctx.printer.status("Stopped", format!("{name} (removed)"));
    }
}

/// Every part's rows: the site, then the parts added later (emulator, registries).
async fn status(ctx: &Ctx, args: StatusArgs) -> Result<()> {
    let config = Config::load(&ctx.root.join(&args.config))?;
    let docker = Docker::connect().await?;
    let mut parts = site::status(&docker, &config.app).await?;
    let port = config.local.emulator_port;
    if moto::probe(port).unwrap_or(false) {
        parts.push(PartStatus {
            part: "emulator".into(),
            name: "moto_server".into(),
            state: "running".into(),
            url: Some(moto::url(port)),
            detail: "AWS APIs for every account and region (state in memory)".into(),
        });
    }
    for (region, found) in registry::known() {
        if registry::probe(found.port) {
            parts.push(PartStatus {
                part: "registry".into(),
                name: format!("docker-registry {region}"),
                state: "running".into(),
                url: Some(found.url()),
                detail: format!("stands in for ECR's registry in {region}"),
            });
        }
    }
    parts.sort_by(|left, right| (&left.part, &left.name).cmp(&(&right.part, &right.name)));
    if args.json {
        ctx.printer.json(&parts)?;
        return Ok(());
    }
    if parts.is_empty() {
        ctx.printer.status("Status", format!("nothing of the local stack of {} is running", config.app));
        return Ok(());
    }
    let mut rows = vec![["PART", "NAME", "STATE", "URL", "DETAIL"].map(String::from).to_vec()];
    for part in parts {
        rows.push(vec![part.part, part.name, part.state, part.url.unwrap_or_else(|| "-".into()), part.detail]);
    }
    ctx.printer.text(table(&rows).trim_end());
    Ok(())
}

/// Stops every part, the site first (it depends on nothing), then the parts added later.
async fn down(ctx: &Ctx, args: StopArgs) -> Result<()> {
    let config = Config::load(&ctx.root.join(&args.config))?;
    let docker = Docker::connect().await?;
    report_stopped(ctx, &config, site::stop(&docker, &config.app, None).await?);
    for region in registry::stop_all()? {
        ctx.printer.status("Stopped", format!("the registry for {region} (its images stay in target/local/registry)"));
    }
    if moto::stop()? {
        ctx.printer.status("Stopped", "the AWS emulator (its state is gone: every local stack with it)");
    }
    Ok(())
}
