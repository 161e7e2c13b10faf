//! `cargo xtask test`: the one command that proves the project works, locally and in CI.
//!
//! It first provisions what the tests use, so a missing piece is one clear error with the command
//! that installs it instead of a failure deep inside a test: the Docker engine (reachable), the
//! `docker-registry` binary (local registries), the Python venv with moto and the linters
//! (created in `target/venv` on first use, about two minutes) and cfn-guard, which runs the Guard
//! rules (built into `target/tools` on first use, about five minutes). Then it runs, in order and
//! stopping at the first failure: `cargo fmt --check`, `cargo clippy -D warnings` and `cargo test`
//! over the whole workspace, with any extra arguments passed to `cargo test`.
//!
//! Sized for a 2-core machine: cargo builds with its default job count, tests run with the
//! harness's default threads (one per CPU), and the Docker-backed tests wait on the engine rather
//! than on the CPU.

use anyhow::{Context, Result, bail};
use xshell::{Shell, cmd};

use crate::Ctx;
use crate::docker::Docker;
use crate::tools;
use crate::venv::Venv;

/// Arguments of `cargo xtask test`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Skip `cargo fmt --check` and clippy (a quicker loop while working; CI runs everything).
    #[arg(long)]
    pub no_lint: bool,
    /// Extra arguments for `cargo test`, e.g. `-p xtask --test it image` or `-- --nocapture`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "CARGO_TEST_ARGS")]
    pub cargo_test_args: Vec<String>,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    provision(ctx).await?;
    let sh = Shell::new()?;
    sh.change_dir(&ctx.root);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    if !args.no_lint {
        ctx.printer.status("Checking", "formatting (cargo fmt --check)");
        cmd!(sh, "{cargo} fmt --all -- --check")
            .run()
            .context("the code is not formatted; run `cargo fmt --all`, then `cargo xtask test` again")?;
        ctx.printer.status("Linting", "the workspace (cargo clippy -D warnings)");
        cmd!(sh, "{cargo} clippy --workspace --all-targets --locked -- -D warnings")
            .run()
            .context("clippy found problems (above); fix them, then run `cargo xtask test` again")?;
    }
    ctx.printer.status("Testing", "the workspace (cargo test)");
    let extra = &args.cargo_test_args;
    cmd!(sh, "{cargo} test --workspace --locked {extra...}")
        .run()
        .context("tests failed (above); rerun one with `cargo xtask test --no-lint -- <name>`")?;
    ctx.printer.status("Finished", "formatting, lints and tests all pass");
    Ok(())
}

/// Makes sure everything the tests use is there; every missing piece is reported at once.
pub async fn provision(ctx: &Ctx) -> Result<()> {
    ctx.printer.status("Provisioning", "the Docker engine, docker-registry, the Python tools, cfn-guard");
    let mut missing = Vec::new();
    if let Err(error) = Docker::connect().await {
        missing.push(format!("{error:#}"));
    }
    if let Err(error) = crate::local::registry::find_program() {
        missing.push(error.to_string());
    }
    if !missing.is_empty() {
        bail!("the tests cannot run yet:\n  - {}", missing.join("\n  - "));
    }
    Venv::ensure(&ctx.printer).context("preparing the Python tools the tests use (target/venv)")?;
    tools::CFN_GUARD.ensure(&ctx.printer).context("preparing cfn-guard, which the lint tests run (target/tools)")?;
    Ok(())
}
