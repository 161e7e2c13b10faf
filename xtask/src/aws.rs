//! AWS access: one base SDK config, a credentials source per account, and clients per
//! (account, region), built lazily and shared.
//!
//! The base config comes from the default chain (environment, `AWS_PROFILE`, SSO, instance role,
//! `AWS_ENDPOINT_URL`). The tools account uses the base identity, a named profile, or a role
//! assumed from the base identity; a workload account uses a named profile or a role assumed from
//! the base identity (`OrganizationAccountAccessRole` unless the config names another).
//!
//! Locally (`--local`) only the endpoint and the base credentials change: every account, the tools
//! account included, is reached by AssumeRole exactly as on AWS, and the emulator files each call
//! under the account of the assumed role. A profile has no meaning against the emulator, so an
//! account configured with a profile is reached there through the default role instead.
//!
//! The pipeline's build acts as another principal ([`Principal::Build`]): CodeBuild's service
//! role, from the ambient credentials, in the tools account only. It reaches the workloads'
//! registries cross-account (their repository policies admit the build role) and never assumes a
//! role, so an account it may not reach fails here, with the fix, rather than at AWS.
//!
//! Credentials are never printed: identities are shown by account and ARN only.

pub mod connect;
pub mod error;
pub mod record;
#[cfg(test)]
pub mod replay;

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use aws_config::sts::AssumeRoleProvider;
use aws_config::{AppName, BehaviorVersion, Region, SdkConfig};
use aws_sdk_sts::config::{Credentials, SharedCredentialsProvider};
use futures_util::future::try_join_all;

use crate::config::{Access, Config, DEFAULT_ROLE};
use crate::output::Printer;
pub use connect::{connect, connect_as};
pub use error::{AwsError, AwsResultExt, Placed};
pub use record::Recorder;

/// Where the AWS calls go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// Real AWS (or whatever `AWS_ENDPOINT_URL` names).
    Aws,
    /// The local emulator at this URL, e.g. `http://127.0.0.1:4566`.
    Local(String),
}

/// A service client from `config`, with `recorder` (`Option<Recorder>`) among its interceptors.
macro_rules! recorded {
    ($service:ident, $config:expr, $recorder:expr) => {{
        let mut builder = $service::config::Builder::from($config);
        if let Some(recorder) = $recorder {
            builder = builder.interceptor(recorder);
        }
        $service::Client::from_conf(builder.build())
    }};
}
pub(crate) use recorded;

/// Whom the xtask acts as.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Principal {
    /// An operator: the tools identity, and every workload account through its configured access.
    #[default]
    Operator,
    /// The pipeline's build: CodeBuild's service role (`<app>-build`), which CodeBuild hands the
    /// build as its credentials (https://docs.aws.amazon.com/codebuild/latest/userguide/setting-up-service-role.html).
    /// It reaches the tools account only; locally the same ambient credentials, pointed at the
    /// emulator.
    Build,
}

/// The session name the xtask's assumed roles carry; visible in CloudTrail of every account.
pub const SESSION_NAME: &str = "gbg-xtask";

/// The access key the xtask uses against the local emulator. The emulator ignores secrets; a key
/// it does not know is filed under its default account, from which every account is assumed.
const LOCAL_ACCESS_KEY: &str = "AKIAGBGLOCALBASE0000";

/// Clients for every account and region of one config.
#[derive(Clone)]
pub struct Aws {
    inner: Arc<Inner>,
}

struct Inner {
    base: SdkConfig,
    endpoint: Endpoint,
    /// Credentials per account, built on first use.
    accounts: Mutex<HashMap<String, SdkConfig>>,
    /// Clients per (service, account, region): built once, shared by every step (a client holds
    /// its connection pool, so sharing also reuses connections).
    clients: Mutex<HashMap<ClientKey, Box<dyn Any + Send + Sync>>>,
    /// How each account of the config is reached.
    access: HashMap<String, AccountAccess>,
    principal: Principal,
    tools_account: String,
}

/// A cached client: its type, account and region.
type ClientKey = (TypeId, String, String);

#[derive(Clone, Debug)]
enum AccountAccess {
    /// The base identity itself.
    Base,
    Profile(String),
    Role(String),
}

/// One account's identity as STS reports it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Identity {
    /// Which config entry this is: `tools` or the workload's name.
    pub label: String,
    pub account: String,
    pub arn: String,
}

impl Aws {
    /// Prepares an operator's access to every account of `config`. Makes no AWS call.
    pub async fn new(config: &Config, endpoint: Endpoint) -> Aws {
        Aws::new_as(config, endpoint, Principal::Operator).await
    }

    /// Prepares `principal`'s access: an operator's to every account of `config`, the build's to
    /// the tools account alone. Makes no AWS call.
    pub async fn new_as(config: &Config, endpoint: Endpoint, principal: Principal) -> Aws {
        let mut loader =
            aws_config::defaults(BehaviorVersion::latest()).region(Region::new(config.tools.region.clone()));
        if let Endpoint::Local(url) = &endpoint {
            loader = loader.endpoint_url(url);
            // The build keeps the credentials it was given (the build role's, assumed by the
            // pipeline rehearsal); an operator starts from the emulator's base identity.
            if principal == Principal::Operator {
                let credentials = Credentials::new(LOCAL_ACCESS_KEY, "gbg-local-secret", None, None, "gbg-local");
                loader = loader.credentials_provider(credentials);
            }
        }
        let base = loader.load().await;
        let local = matches!(endpoint, Endpoint::Local(_));
        let inner = |access| Inner {
            base,
            endpoint,
            accounts: Mutex::new(HashMap::new()),
            clients: Mutex::new(HashMap::new()),
            access,
            principal,
            tools_account: config.tools.account.clone(),
        };
        if principal == Principal::Build {
            let access = HashMap::from([(config.tools.account.clone(), AccountAccess::Base)]);
            return Aws { inner: Arc::new(inner(access)) };
        }
        let mut access = HashMap::new();
        let tools = match (&config.tools.access, local) {
            (Access::Default, false) => AccountAccess::Base,
            (Access::Role(role), _) => AccountAccess::Role(role.clone()),
            (Access::Profile(profile), false) => AccountAccess::Profile(profile.clone()),
            (_, true) => AccountAccess::Role(DEFAULT_ROLE.to_string()),
        };
        access.insert(config.tools.account.clone(), tools);
        for workload in &config.workloads {
            let how = match (&workload.access, local) {
                (Access::Role(role), _) => AccountAccess::Role(role.clone()),
                (Access::Profile(profile), false) => AccountAccess::Profile(profile.clone()),
                (Access::Default, _) | (Access::Profile(_), true) => AccountAccess::Role(DEFAULT_ROLE.to_string()),
            };
            // Two entries for one account must agree; the tools account's access wins otherwise.
            access.entry(workload.account.clone()).or_insert(how);
        }
        Aws { inner: Arc::new(inner(access)) }
    }

    /// Whom the calls into `account` are meant to run as, for the call log (`aws/record.rs`).
    fn principal_label(&self, account: &str) -> String {
        let build = if self.inner.principal == Principal::Build { "build:" } else { "" };
        match self.inner.access.get(account) {
            Some(AccountAccess::Base) => format!("{build}default-chain"),
            Some(AccountAccess::Profile(profile)) => format!("profile:{profile}"),
            Some(AccountAccess::Role(role)) => format!("arn:aws:iam::{account}:role/{role}"),
            None => "unknown".to_string(),
        }
    }

    pub fn principal(&self) -> Principal {
        self.inner.principal
    }

    /// The account whose ECR API serves `workload`'s registry for this principal, and the registry
    /// id to name: an operator asks the workload's own account; the build asks its own (tools)
    /// account, naming the workload's registry, whose repository policy admits the build role. An
    /// ECR token "can be used to access any Amazon ECR registry that your IAM principal has access
    /// to" (https://docs.aws.amazon.com/AmazonECR/latest/userguide/registry_auth.html), so the
    /// build's own token serves every workload's registry.
    pub fn registry_access<'a>(&'a self, registry_account: &'a str) -> (&'a str, Option<&'a str>) {
        match self.inner.principal {
            Principal::Operator => (registry_account, None),
            Principal::Build => (self.inner.tools_account.as_str(), Some(registry_account)),
        }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.endpoint
    }

    pub fn is_local(&self) -> bool {
        matches!(self.inner.endpoint, Endpoint::Local(_))
    }

    /// The SDK config for `account` in `region`, credentials included.
    pub async fn sdk_config(&self, account: &str, region: &str) -> Result<SdkConfig> {
        let account_config = self.account_config(account).await?;
        let endpoint = match &self.inner.endpoint {
            Endpoint::Local(url) => Some(url.as_str()),
            Endpoint::Aws => account_config.endpoint_url(),
        };
        let app_name =
            AppName::new(error::app_name(account, endpoint)).context("an account id makes a valid app name")?;
        Ok(account_config.to_builder().region(Region::new(region.to_string())).app_name(app_name).build())
    }

    async fn account_config(&self, account: &str) -> Result<SdkConfig> {
        if let Some(config) = self.inner.accounts.lock().expect("account cache").get(account) {
            return Ok(config.clone());
        }
        let Some(access) = self.inner.access.get(account).cloned() else {
            if self.inner.principal == Principal::Build {
                bail!(
                    "the build reaches only the tools account, yet was about to call account {account}: \
                     the pipeline's build role cannot assume roles in other accounts (cfn/tools/build.yaml)"
                );
            }
            bail!("account {account} is not in the config");
        };
        let config = match access {
            AccountAccess::Base => self.inner.base.clone(),
            AccountAccess::Role(role) => {
                let arn = format!("arn:aws:iam::{account}:role/{role}");
                // A workload's role is assumed by the tools identity (README), which is itself a
                // profile or an assumed role when the config says so; the tools account's own role
                // is assumed from the base credentials.
                let source = if account == self.inner.tools_account {
                    self.inner.base.clone()
                } else {
                    Box::pin(self.account_config(&self.inner.tools_account)).await?
                };
                let provider =
                    AssumeRoleProvider::builder(arn).session_name(SESSION_NAME).configure(&source).build().await;
                self.inner.base.to_builder().credentials_provider(SharedCredentialsProvider::new(provider)).build()
            }
            AccountAccess::Profile(profile) => {
                let mut loader = aws_config::defaults(BehaviorVersion::latest())
                    .profile_name(&profile)
                    .region(self.inner.base.region().cloned().unwrap_or_else(|| Region::new("us-east-1")));
                if let Endpoint::Local(url) = &self.inner.endpoint {
                    loader = loader.endpoint_url(url);
                }
                let loaded = loader.load().await;
                let Some(provider) = loaded.credentials_provider() else {
                    bail!("profile `{profile}` for account {account} yields no credentials: check ~/.aws/config");
                };
                self.inner.base.to_builder().credentials_provider(provider).build()
            }
        };
        self.inner.accounts.lock().expect("account cache").insert(account.to_string(), config.clone());
        Ok(config)
    }

    pub async fn cloudformation(&self, account: &str, region: &str) -> Result<aws_sdk_cloudformation::Client> {
        self.client(account, region, |config, recorder| recorded!(aws_sdk_cloudformation, config, recorder)).await
    }

    pub async fn sts(&self, account: &str, region: &str) -> Result<aws_sdk_sts::Client> {
        self.client(account, region, |config, recorder| recorded!(aws_sdk_sts, config, recorder)).await
    }

    /// S3 with path-style addressing locally: `bucket.127.0.0.1` does not resolve.
    pub async fn s3(&self, account: &str, region: &str) -> Result<aws_sdk_s3::Client> {
        let local = self.is_local();
        self.client(account, region, |config, recorder| {
            let mut builder = aws_sdk_s3::config::Builder::from(config).force_path_style(local);
            if let Some(recorder) = recorder {
                builder = builder.interceptor(recorder);
            }
            aws_sdk_s3::Client::from_conf(builder.build())
        })
        .await
    }

    /// The shared client of type `C` for `account` in `region`, made by `make` on first use.
    async fn client<C: Clone + Send + Sync + 'static>(
        &self,
        account: &str,
        region: &str,
        make: impl FnOnce(&SdkConfig, Option<Recorder>) -> C,
    ) -> Result<C> {
        let key = (TypeId::of::<C>(), account.to_string(), region.to_string());
        if let Some(client) = self.inner.clients.lock().expect("client cache").get(&key)
            && let Some(client) = client.downcast_ref::<C>()
        {
            return Ok(client.clone());
        }
        let recorder = Recorder::from_env(&self.principal_label(account), account, region);
        let client = make(&self.sdk_config(account, region).await?, recorder);
        self.inner.clients.lock().expect("client cache").insert(key, Box::new(client.clone()));
        Ok(client)
    }

    pub async fn kms(&self, account: &str, region: &str) -> Result<aws_sdk_kms::Client> {
        self.client(account, region, |config, recorder| recorded!(aws_sdk_kms, config, recorder)).await
    }

    pub async fn ecr(&self, account: &str, region: &str) -> Result<aws_sdk_ecr::Client> {
        self.client(account, region, |config, recorder| recorded!(aws_sdk_ecr, config, recorder)).await
    }

    pub async fn ecs(&self, account: &str, region: &str) -> Result<aws_sdk_ecs::Client> {
        self.client(account, region, |config, recorder| recorded!(aws_sdk_ecs, config, recorder)).await
    }

    pub async fn elbv2(&self, account: &str, region: &str) -> Result<aws_sdk_elasticloadbalancingv2::Client> {
        self.client(account, region, |config, recorder| recorded!(aws_sdk_elasticloadbalancingv2, config, recorder))
            .await
    }

    /// CloudWatch Logs (IAM prefix `logs`).
    pub async fn logs(&self, account: &str, region: &str) -> Result<aws_sdk_cloudwatchlogs::Client> {
        self.client(account, region, |config, recorder| recorded!(aws_sdk_cloudwatchlogs, config, recorder)).await
    }

    pub async fn codedeploy(&self, account: &str, region: &str) -> Result<aws_sdk_codedeploy::Client> {
        self.client(account, region, |config, recorder| recorded!(aws_sdk_codedeploy, config, recorder)).await
    }

    pub async fn codepipeline(&self, account: &str, region: &str) -> Result<aws_sdk_codepipeline::Client> {
        self.client(account, region, |config, recorder| recorded!(aws_sdk_codepipeline, config, recorder)).await
    }

    pub async fn codecommit(&self, account: &str, region: &str) -> Result<aws_sdk_codecommit::Client> {
        self.client(account, region, |config, recorder| recorded!(aws_sdk_codecommit, config, recorder)).await
    }

    pub async fn codebuild(&self, account: &str, region: &str) -> Result<aws_sdk_codebuild::Client> {
        self.client(account, region, |config, recorder| recorded!(aws_sdk_codebuild, config, recorder)).await
    }

    /// IAM is global: `region` only picks the endpoint's partition
    /// (https://docs.aws.amazon.com/general/latest/gr/iam-service.html).
    pub async fn iam(&self, account: &str, region: &str) -> Result<aws_sdk_iam::Client> {
        self.client(account, region, |config, recorder| recorded!(aws_sdk_iam, config, recorder)).await
    }

    /// Asks STS who each account of the config is, in parallel, and checks that each identity
    /// belongs to the account the config names. The first call that touches AWS.
    pub async fn identities(&self, config: &Config) -> Result<Vec<Identity>> {
        let mut wanted = vec![("tools".to_string(), config.tools.account.clone(), config.tools.region.clone())];
        // The build reaches the tools account alone.
        for workload in config.workloads.iter().filter(|_| self.inner.principal == Principal::Operator) {
            wanted.push((workload.name.clone(), workload.account.clone(), workload.region.clone()));
        }
        try_join_all(wanted.into_iter().map(|(label, account, region)| async move {
            let sts = self.sts(&account, &region).await?;
            let reply = sts
                .get_caller_identity()
                .send()
                .await
                .aws(&sts)
                .map_err(|error| anyhow::Error::new(error).context(self.access_hint(&label, &account)))?;
            let actual = reply.account().unwrap_or_default().to_string();
            let arn = reply.arn().unwrap_or_default().to_string();
            if actual != account {
                bail!(
                    "the credentials for `{label}` belong to account {actual} ({arn}), but the config says {account}: {}",
                    self.access_fix(&label)
                );
            }
            Ok(Identity { label, account, arn })
        }))
        .await
    }

    fn access_hint(&self, label: &str, account: &str) -> String {
        let how = match self.inner.access.get(account) {
            Some(AccountAccess::Base) => "the default credential chain".to_string(),
            Some(AccountAccess::Profile(profile)) => format!("profile `{profile}`"),
            Some(AccountAccess::Role(role)) => format!("assuming arn:aws:iam::{account}:role/{role}"),
            None => "no configured access".to_string(),
        };
        format!("getting the identity of `{label}` ({account}) through {how}; {}", self.access_fix(label))
    }

    fn access_fix(&self, label: &str) -> String {
        if self.inner.principal == Principal::Build {
            return "the build uses the credentials it is given: in CodeBuild the project's service role, \
                    locally the build role that `cargo xtask pipeline run --local` assumes"
                .to_string();
        }
        match self.inner.endpoint {
            Endpoint::Local(_) => "is the local emulator running? `cargo xtask local status` shows it".to_string(),
            Endpoint::Aws if label == "tools" => {
                "set AWS_PROFILE, or `profile`/`role` under [tools] in the config".to_string()
            }
            Endpoint::Aws => format!(
                "set `profile` or `role` for workload `{label}` in the config, and make sure the tools identity may assume it"
            ),
        }
    }
}

/// Prints each identity as a status line.
pub fn print_identities(printer: &Printer, identities: &[Identity]) {
    for identity in identities {
        printer.status("Identity", format!("{} {} as {}", identity.label, identity.account, identity.arn));
    }
}
