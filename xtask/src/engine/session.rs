//! Opening a session: everything `deploy`, `plan`, `status` and `destroy` do before their own
//! work, in the same order for all of them.
//!
//! 1. read and validate the config (every error at once; exit 2);
//! 2. build the plan and check it against the templates (no AWS call yet);
//! 3. locally, make sure the emulator runs;
//! 4. ask STS who every account is and print it: the first call that touches AWS.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use crate::Ctx;
use crate::aws::connect;
use crate::config::{Config, Target};
use crate::engine::executor::Env;
use crate::engine::stack::Method;
use crate::engine::topology::{self, Index, Inputs};
use crate::engine::{Plan, prepare};

/// How long one stack operation may take on AWS (an ECS service with NAT and ALB can take 20
/// minutes) and on the emulator (synchronous: anything long is stuck).
const AWS_TIMEOUT: Duration = Duration::from_secs(60 * 60);
const LOCAL_TIMEOUT: Duration = Duration::from_secs(60);

/// A plan ready to run.
pub struct Session {
    pub config: Config,
    pub plan: Arc<Plan>,
    pub index: Index,
    pub env: Arc<Env>,
}

/// Options that differ between commands.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The deploy method; default: change sets on AWS, direct locally.
    pub method: Option<Method>,
    /// Print the caller identity of every account.
    pub show_identities: bool,
}

/// Loads the config and the plan, then connects; see the module docs for the order.
pub async fn open(
    ctx: &Ctx,
    target: &Target,
    inputs: impl FnOnce(&Config) -> Inputs,
    options: Options,
) -> Result<Session> {
    let config = target.load(&ctx.root)?;
    open_config(ctx, config, target.local, inputs, options).await
}

/// [`open`] with a config already loaded.
pub async fn open_config(
    ctx: &Ctx,
    config: Config,
    local: bool,
    inputs: impl FnOnce(&Config) -> Inputs,
    options: Options,
) -> Result<Session> {
    let (plan, index) = topology::plan(&config, &inputs(&config));
    let bodies = prepare(&plan, &ctx.root)?;
    let aws = connect(ctx, &config, local, options.show_identities).await?;
    let method = options.method.unwrap_or(if local { Method::Direct } else { Method::ChangeSet });
    let env = Env {
        config: config.clone(),
        aws,
        printer: ctx.printer.clone(),
        method,
        timeout: if local { LOCAL_TIMEOUT } else { AWS_TIMEOUT },
        root: ctx.root.clone(),
        bodies,
    };
    Ok(Session { config, plan: Arc::new(plan), index, env: Arc::new(env) })
}
