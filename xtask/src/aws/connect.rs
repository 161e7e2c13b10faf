//! Reaching a config's accounts: the emulator or AWS, every account's identity checked first.
//!
//! Every command that talks to AWS connects here, before its own work, so a missing credential or
//! a stopped emulator fails before any change.

use anyhow::Result;

use crate::Ctx;
use crate::aws::{self, Aws, Endpoint, Principal};
use crate::config::{Config, Target};
use crate::local::moto;

/// Reaches `config`'s accounts: locally through the emulator (started if it is not running).
/// Every account's identity is checked first (and printed with `show_identities`), so a missing
/// credential fails before any change.
pub async fn connect(ctx: &Ctx, config: &Config, local: bool, show_identities: bool) -> Result<Aws> {
    connect_as(ctx, config, local, Principal::Operator, show_identities).await
}

/// [`connect`] as `principal` (`aws.rs`): the pipeline's build reaches the tools account alone.
pub async fn connect_as(
    ctx: &Ctx,
    config: &Config,
    local: bool,
    principal: Principal,
    show_identities: bool,
) -> Result<Aws> {
    let endpoint = if local {
        Endpoint::Local(moto::ensure(&ctx.printer, config.local.emulator_port)?.url)
    } else {
        Endpoint::Aws
    };
    let aws = Aws::new_as(config, endpoint, principal).await;
    let identities = aws.identities(config).await?;
    if show_identities {
        aws::print_identities(&ctx.printer, &identities);
    }
    Ok(aws)
}

/// Reads the config of `target` and reaches its accounts as an operator, as `deploy` does.
pub async fn target(ctx: &Ctx, target: &Target) -> Result<(Config, Aws)> {
    target_as(ctx, target, Principal::Operator).await
}

/// [`target`] as `principal`: the pipeline's build reaches the tools account alone, and prints
/// the identity it runs as (the build role in CodeBuild).
pub async fn target_as(ctx: &Ctx, target: &Target, principal: Principal) -> Result<(Config, Aws)> {
    let config = target.load(&ctx.root)?;
    let show = principal == Principal::Build;
    let aws = connect_as(ctx, &config, target.local, principal, show).await?;
    Ok((config, aws))
}
