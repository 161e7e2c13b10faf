//! `cargo xtask`: the one command of Global Blue/Green.
//!
//! It builds the site's image, lints the CloudFormation templates, deploys every stack to every
//! account and region named in `deploy.toml`, releases the image blue/green, and runs the same
//! flow locally against an AWS emulator and the Docker engine. This file only parses the command
//! line, builds the context and dispatches; each subcommand lives in its own module.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use xtask::output::{ColorChoice, Exit, Printer, Usage, Verbosity};
use xtask::*;

/// Build, lint, deploy and release Global Blue/Green.
#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// Print only warnings and errors.
    #[arg(long, short, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Print detail lines too.
    #[arg(long, short, global = true)]
    verbose: bool,
    /// Colour on stderr: auto (a terminal without NO_COLOR), always, never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    color: ColorChoice,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the site's static binary and its FROM-scratch container image.
    Image(image::Args),
    /// Run, stop and inspect the local stack: the site container, the emulator, the registries.
    Local(local::Args),
    /// Lint every CloudFormation template (cfn-lint, checkov, cfn_nag, the pattern's own rules).
    Lint(lint::Args),
    /// Check the codebase's own rules (module docs, no stray subprocesses, templates deployed).
    Tidy(tidy::Args),
    /// Provision what the tests need, then run the whole test suite.
    Test(test::Args),
    /// Measure the site, the deploy and the publish against their peers, side by side.
    Bench(bench::Args),
    /// Deploy every stack to every account and region of the config, then the site.
    Deploy(deploy::Args),
    /// Show what a deploy would change, per stack, without changing anything.
    Plan(plan::Args),
    /// Show every stack of the plan with its account, region and state.
    Status(status::Args),
    /// Tear down every stack of the plan, in reverse order.
    Destroy(destroy::Args),
    /// Push the image to every workload's registry.
    Push(push::Args),
    /// Render, zip, encrypt and upload the release artifacts to every regional bucket.
    Package(package::Args),
    /// Download every artifact of the release and check it against its manifest.
    VerifyRelease(verify_release::Args),
    /// Release the image blue/green to every workload, wave by wave.
    Release(release::Args),
    /// Redeploy a workload's previous release.
    Rollback(rollback::Args),
    /// The steps CodeBuild runs (`ci build`, `ci check`).
    Ci(ci::Args),
    /// Rehearse the deployed pipeline on this machine, stage by stage, as AWS would run it.
    Pipeline(pipeline::Args),
    /// Verify the deployed topology: every call of every role (IAM's simulator on AWS, our evaluator
    /// locally) and the live checks (key replicas, policies, CodeDeploy groups, pipeline, image).
    Verify(verify::Args),
    /// Set up the source repository's branches for the gitflow.
    Gitflow(gitflow::Args),
    /// Show or break the topology lock that deploy, release and destroy hold while they run.
    Lock(lock::Args),
    /// Validate deploy.toml and show the topology it resolves to.
    Config(config_check::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let verbosity = match (cli.quiet, cli.verbose) {
        (true, _) => Verbosity::Quiet,
        (_, true) => Verbosity::Verbose,
        _ => Verbosity::Normal,
    };
    let ctx = Ctx { root: project::root(), printer: Printer::with_color(verbosity, cli.color) };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            ctx.printer.error(format!("starting the async runtime: {error}"));
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(dispatch(&ctx, cli.command));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // An invalid config file: every problem with its line, then exit 2.
        Err(error) if error.is::<config::Invalid>() => {
            if let Some(invalid) = error.downcast_ref::<config::Invalid>() {
                invalid.report(&ctx.printer);
            }
            ExitCode::from(config::Invalid::EXIT_CODE)
        }
        // A bad command line that clap could not judge alone (it needed the config, or several
        // flags at once): one line, then exit 2 like clap's own errors.
        Err(error) if error.is::<Usage>() => {
            if let Some(usage) = error.downcast_ref::<Usage>() {
                ctx.printer.error(usage);
            }
            ExitCode::from(Usage::EXIT_CODE)
        }
        Err(error) => match error.downcast_ref::<Exit>() {
            Some(Exit(code)) => ExitCode::from(*code),
            None => {
                // Each cause on its line, down to an AWS error, whose line already says what the
                // SDK's own error below it would (never its debug dump).
                ctx.printer.error(aws::error::lines(&error).join("\n  caused by: "));
                ExitCode::FAILURE
            }
        },
    }
}

async fn dispatch(ctx: &Ctx, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Image(args) => image::run(ctx, args).await,
        Command::Local(args) => local::run(ctx, args).await,
        Command::Lint(args) => lint::run(ctx, args).await,
        Command::Tidy(args) => tidy::run(ctx, args).await,
        Command::Test(args) => test::run(ctx, args).await,
        Command::Bench(args) => bench::run(ctx, args).await,
        Command::Deploy(args) => deploy::run(ctx, args).await,
        Command::Plan(args) => plan::run(ctx, args).await,
        Command::Status(args) => status::run(ctx, args).await,
        Command::Destroy(args) => destroy::run(ctx, args).await,
        Command::Push(args) => push::run(ctx, args).await,
        Command::Package(args) => package::run(ctx, args).await,
        Command::VerifyRelease(args) => verify_release::run(ctx, args).await,
        Command::Release(args) => release::run(ctx, args).await,
        Command::Rollback(args) => rollback::run(ctx, args).await,
        Command::Ci(args) => ci::run(ctx, args).await,
        Command::Pipeline(args) => pipeline::run(ctx, args).await,
        Command::Verify(args) => verify::run(ctx, args).await,
        Command::Gitflow(args) => gitflow::run(ctx, args).await,
        Command::Lock(args) => lock::run(ctx, args).await,
        Command::Config(args) => config_check::run(ctx, args).await,
    }
}
