//! `cargo xtask ci check|build`: the steps CodeBuild runs. `buildspec.yaml` installs the
//! toolchains and runs `cargo xtask ci ${CI_STEP}`, nothing else; the build template sets
//! `CI_STEP=check` for the gitflow's pull-request validation and `CI_STEP=build` for the
//! pipeline's build (cfn/tools/build.yaml).
//!
//! - `check`: lints the templates (`cargo xtask lint`), then formatting, clippy and every test
//!   (`cargo xtask test`).
//! - `build`: lints the templates, then builds the site's image once, pushes it to every workload's registry
//!   and packages the release into every regional bucket and the pipeline's build artifact folder
//!   (`cargo xtask package --out target/release/artifact`:
//!   `<workload>/taskdef.json`, `<workload>/appspec.yaml`, `<workload>/imageDetail.json`,
//!   `release-manifest.json`, what buildspec.yaml exports), and verifies it
//!   (`cargo xtask verify-release`).
//!
//! `build` does not run the tests again. They need the repository's history (the pipeline
//! rehearsal exports a commit of it; `gitflow init` archives HEAD), which a CodePipeline `CODE_ZIP`
//! source does not have, and they already ran on this very commit: the gitflow merges into main
//! only the commit its validation build (`ci check`, a full clone) passed. `--skip-check` (or
//! `GBG_CI_SKIP_CHECK=1`) skips the lint too.
//!
//! Each step is this same binary run as a child with its subcommand, so CI runs exactly what a
//! developer runs, and a failure names the step and the command to repeat it.

use std::path::PathBuf;

use anyhow::{Context, Result};
use xshell::{Shell, cmd};

use crate::Ctx;
use crate::cli;
use crate::config::Target;
use crate::output::Verbosity;
use crate::release_files::{self, MANIFEST_FILE};

/// Arguments of `cargo xtask ci`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub step: Step,
}

#[derive(clap::Subcommand, Debug)]
pub enum Step {
    /// Lint the templates, then formatting, clippy and every test (pull-request validation).
    Check,
    /// Lint, then build and push the image, package the release into every regional bucket and the
    /// pipeline's artifact folder, and verify it (the pipeline's build; the tests ran in `check`).
    Build(BuildArgs),
}

#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub image: cli::ImageArgs,
    /// The folder the pipeline's build action exports (buildspec.yaml's base-directory).
    #[arg(long, value_name = "DIR", value_parser = cli::out_dir)]
    pub out: Option<PathBuf>,
    /// Skip the lint, e.g. when the same commit was just validated; also set by
    /// `GBG_CI_SKIP_CHECK=1` in the build's environment (`cargo xtask pipeline run --skip-check`).
    #[arg(long, env = "GBG_CI_SKIP_CHECK", value_parser = cli::boolish)]
    pub skip_check: bool,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    match args.step {
        Step::Check => check(ctx),
        Step::Build(build_args) => build(ctx, build_args),
    }
}

fn check(ctx: &Ctx) -> Result<()> {
    step(ctx, "lint", &["lint".into()])?;
    step(ctx, "test", &["test".into()])?;
    ctx.printer.status("Finished", "ci check: the templates lint clean and every test passes");
    Ok(())
}

fn build(ctx: &Ctx, args: BuildArgs) -> Result<()> {
    if args.skip_check {
        ctx.printer.note("ci build: lint skipped (--skip-check or GBG_CI_SKIP_CHECK)");
    } else {
        step(ctx, "lint", &["lint".into()])?;
    }
    ctx.printer.note(
        "ci build runs no tests: the validation build (`ci check`, a full clone) ran them on this commit before the gitflow merged it",
    );
    let out = args.out.unwrap_or_else(release_files::default_out_dir);
    // The groups are passed on through their own `to_args`, so the child steps take every flag
    // `ci build` was given (a test parses them back).
    let target = args.target.to_args();
    // The build acts as CodeBuild's service role: the tools account only (`aws.rs`, `Principal`).
    let mut package = vec!["package".to_string(), "--as-build".into(), "--out".into(), out.display().to_string()];
    package.extend(args.image.to_args());
    package.extend(target.clone());
    step(ctx, "package", &package)?;
    let mut verify = vec![
        "verify-release".to_string(),
        "--as-build".into(),
        "--manifest".into(),
        out.join(MANIFEST_FILE).display().to_string(),
    ];
    verify.extend(target);
    step(ctx, "verify-release", &verify)?;
    ctx.printer.status(
        "Finished",
        format!("ci build: the release is packaged, verified, and its artifact is in {}", out.display()),
    );
    Ok(())
}

/// Runs this binary with `args`, from the project root; a failure names the command to repeat.
fn step(ctx: &Ctx, name: &str, args: &[String]) -> Result<()> {
    ctx.printer.status("CI step", format!("cargo xtask {}", args.join(" ")));
    let sh = Shell::new()?;
    sh.change_dir(&ctx.root);
    let xtask = std::env::current_exe().context("finding the running xtask binary")?;
    let verbosity: &[&str] = match ctx.printer.verbosity() {
        Verbosity::Quiet => &["--quiet"],
        Verbosity::Normal => &[],
        Verbosity::Verbose => &["--verbose"],
    };
    cmd!(sh, "{xtask} {verbosity...} {args...}")
        .quiet()
        .run()
        .with_context(|| format!("ci step `{name}` failed (above); repeat it with `cargo xtask {}`", args.join(" ")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Build {
        #[command(flatten)]
        args: BuildArgs,
    }

    #[derive(Parser)]
    struct Package {
        #[command(flatten)]
        args: crate::package::Args,
    }

    /// The flags `ci build` passes to its `package` step are the ones it was given: each group
    /// writes itself out (`to_args`) and `package` parses them back to the same values.
    #[test]
    fn the_build_passes_its_target_and_image_on_unchanged() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let given = ["ci", "--config", "topology/prod.toml", "--local", "--image-digest", &digest];
        let given: Vec<&str> = given.into_iter().chain(["--image-version", "v1.2.3"]).collect();
        let build = Build::try_parse_from(&given).expect("ci build's flags").args;
        let mut passed = vec!["package".to_string()];
        passed.extend(build.image.to_args());
        passed.extend(build.target.to_args());
        let package = Package::try_parse_from(&passed).expect("package takes what ci build passes").args;
        assert_eq!(package.image, build.image);
        assert_eq!(package.image.image_version.map(|tag| tag.to_string()).as_deref(), Some("v1.2.3"));
        assert_eq!((package.target.config, package.target.local), (PathBuf::from("topology/prod.toml"), true));

        let bare = Build::try_parse_from(["ci"]).expect("no flags").args;
        assert_eq!(bare.image.to_args(), Vec::<String>::new());
        assert_eq!(bare.target.to_args(), ["--config", "deploy.toml"]);
    }
}
