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
//! Credentials are never printed: identities are shown by account and ARN only.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sts::config::{Credentials, SharedCredentialsProvider};
use aws_smithy_types::error::display::DisplayErrorContext;
use futures_util::future::try_join_all;

use crate::config::{Access, Config, DEFAULT_ROLE};
use crate::output::Printer;

/// Where the AWS calls go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// Real AWS (or whatever `AWS_ENDPOINT_URL` names).
    Aws,
    /// The local emulator at this URL, e.g. `http://127.0.0.1:4566`.
    Local(String),
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
    /// Prepares access for every account of `config`. Makes no AWS call.
    pub async fn new(config: &Config, endpoint: Endpoint) -> Aws {
        let mut loader =
            aws_config::defaults(BehaviorVersion::latest()).region(Region::new(config.tools.region.clone()));
        if let Endpoint::Local(url) = &endpoint {
            let credentials = Credentials::new(LOCAL_ACCESS_KEY, "gbg-local-secret", None, None, "gbg-local");
            loader = loader.endpoint_url(url).credentials_provider(credentials);
        }
        let base = loader.load().await;
        let local = matches!(endpoint, Endpoint::Local(_));
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
        Aws {
            inner: Arc::new(Inner {
                base,
                endpoint,
                accounts: Mutex::new(HashMap::new()),
                clients: Mutex::new(HashMap::new()),
                access,
            }),
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
        Ok(account_config.to_builder().region(Region::new(region.to_string())).build())
    }

    async fn account_config(&self, account: &str) -> Result<SdkConfig> {
        if let Some(config) = self.inner.accounts.lock().expect("account cache").get(account) {
            return Ok(config.clone());
        }
        let access =
            self.inner.access.get(account).with_context(|| format!("account {account} is not in the config"))?.clone();
        let config = match access {
            AccountAccess::Base => self.inner.base.clone(),
            AccountAccess::Role(role) => {
                let arn = format!("arn:aws:iam::{account}:role/{role}");
                let provider = AssumeRoleProvider::builder(arn)
                    .session_name(SESSION_NAME)
                    .configure(&self.inner.base)
                    .build()
                    .await;
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
        self.client(account, region, |config| aws_sdk_cloudformation::Client::new(config)).await
    }

    pub async fn sts(&self, account: &str, region: &str) -> Result<aws_sdk_sts::Client> {
        self.client(account, region, |config| aws_sdk_sts::Client::new(config)).await
    }

    /// S3 with path-style addressing locally: `bucket.127.0.0.1` does not resolve.
    pub async fn s3(&self, account: &str, region: &str) -> Result<aws_sdk_s3::Client> {
        let local = self.is_local();
        self.client(account, region, |config| {
            aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(config).force_path_style(local).build())
        })
        .await
    }

    /// The shared client of type `C` for `account` in `region`, made by `make` on first use.
    async fn client<C: Clone + Send + Sync + 'static>(
        &self,
        account: &str,
        region: &str,
        make: impl FnOnce(&SdkConfig) -> C,
    ) -> Result<C> {
        let key = (TypeId::of::<C>(), account.to_string(), region.to_string());
        if let Some(client) = self.inner.clients.lock().expect("client cache").get(&key)
            && let Some(client) = client.downcast_ref::<C>()
        {
            return Ok(client.clone());
        }
        let client = make(&self.sdk_config(account, region).await?);
        self.inner.clients.lock().expect("client cache").insert(key, Box::new(client.clone()));
        Ok(client)
    }

    pub async fn kms(&self, account: &str, region: &str) -> Result<aws_sdk_kms::Client> {
        self.client(account, region, |config| aws_sdk_kms::Client::new(config)).await
    }

    pub async fn ecr(&self, account: &str, region: &str) -> Result<aws_sdk_ecr::Client> {
        self.client(account, region, |config| aws_sdk_ecr::Client::new(config)).await
    }

    pub async fn ecs(&self, account: &str, region: &str) -> Result<aws_sdk_ecs::Client> {
        self.client(account, region, |config| aws_sdk_ecs::Client::new(config)).await
    }

    pub async fn elbv2(&self, account: &str, region: &str) -> Result<aws_sdk_elasticloadbalancingv2::Client> {
        self.client(account, region, |config| aws_sdk_elasticloadbalancingv2::Client::new(config)).await
    }

    pub async fn codedeploy(&self, account: &str, region: &str) -> Result<aws_sdk_codedeploy::Client> {
        self.client(account, region, |config| aws_sdk_codedeploy::Client::new(config)).await
    }

    pub async fn codepipeline(&self, account: &str, region: &str) -> Result<aws_sdk_codepipeline::Client> {
        self.client(account, region, |config| aws_sdk_codepipeline::Client::new(config)).await
    }

    pub async fn codecommit(&self, account: &str, region: &str) -> Result<aws_sdk_codecommit::Client> {
        self.client(account, region, |config| aws_sdk_codecommit::Client::new(config)).await
    }

    pub async fn codebuild(&self, account: &str, region: &str) -> Result<aws_sdk_codebuild::Client> {
        self.client(account, region, |config| aws_sdk_codebuild::Client::new(config)).await
    }

    /// Asks STS who each account of the config is, in parallel, and checks that each identity
    /// belongs to the account the config names. The first call that touches AWS.
    pub async fn identities(&self, config: &Config) -> Result<Vec<Identity>> {
        let mut wanted = vec![("tools".to_string(), config.tools.account.clone(), config.tools.region.clone())];
        for workload in &config.workloads {
            wanted.push((workload.name.clone(), workload.account.clone(), workload.region.clone()));
        }
        try_join_all(wanted.into_iter().map(|(label, account, region)| async move {
            let sts = self.sts(&account, &region).await?;
            let reply = sts.get_caller_identity().send().await.map_err(|error| {
                anyhow::anyhow!("{}", DisplayErrorContext(&error)).context(self.access_hint(&label, &account))
            })?;
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

/// The error code and message of an SDK error, for matching expected conditions and for printing.
/// The SDK's own `Display` says only "service error"; this says what the service said.
pub fn error_text<E, R>(error: &aws_sdk_cloudformation::error::SdkError<E, R>) -> String
where
    E: std::error::Error + aws_sdk_cloudformation::error::ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_cloudformation::error::ProvideErrorMetadata;
    match (error.code(), error.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        _ => DisplayErrorContext(error).to_string(),
    }
}

/// Prints each identity as a status line.
pub fn print_identities(printer: &Printer, identities: &[Identity]) {
    for identity in identities {
        printer.status("Identity", format!("{} {} as {}", identity.label, identity.account, identity.arn));
    }
}
