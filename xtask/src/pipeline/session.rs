//! The identities the rehearsal acts as: a role assumed through STS, with its clients and the
//! caller ARN STS reports for it. On AWS, CodePipeline assumes its service role, CodeBuild its
//! project's service role, and CodePipeline, as its service role, each action's `RoleArn`
//! (https://docs.aws.amazon.com/codepipeline/latest/userguide/pipelines-create-cross-account.html).
//! On the emulator the rehearsal assumes the same roles itself: the pipeline and build roles from
//! the operator's identity (the emulator checks no trust policy; the access proof does), the
//! release roles from the pipeline role's session, as CodePipeline does.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use aws_config::{AppName, Region, SdkConfig};
use aws_sdk_sts::config::{Credentials, SharedCredentialsProvider};

use crate::aws::error::app_name;
use crate::aws::{AwsResultExt, Recorder, recorded};

/// The session name on every role the rehearsal assumes (seen in the caller ARN).
pub const SESSION_NAME: &str = "gbg-pipeline-rehearsal";

/// One assumed role.
#[derive(Clone)]
pub struct RoleSession {
    /// The role assumed.
    pub role_arn: String,
    /// The caller ARN: `arn:aws:sts::<account>:assumed-role/<role>/<session>`.
    pub identity: String,
    pub account: String,
    /// Deliberately not `Debug`: these are credentials.
    access_key_id: String,
    secret_access_key: String,
    session_token: String,
    base: SdkConfig,
    /// Where this session's calls are recorded (`aws/record.rs`), if anywhere.
    call_log: Option<PathBuf>,
}

impl RoleSession {
    /// Assumes `role_arn` with the credentials of `from` (an SDK config) and asks STS who it is:
    /// the rehearsal standing in for an AWS service that assumes a role (not recorded as a call).
    pub async fn assume(from: &SdkConfig, role_arn: &str, call_log: Option<&Path>) -> Result<RoleSession> {
        RoleSession::assume_with(&aws_sdk_sts::Client::new(from), from, role_arn, call_log).await
    }

    /// Assumes `role_arn` as this session (a recorded call of this role), in `region`.
    pub async fn assume_role(&self, role_arn: &str, region: &str) -> Result<RoleSession> {
        let config = self.config(region);
        let sts = recorded!(aws_sdk_sts, &config, self.recorder(region));
        RoleSession::assume_with(&sts, &config, role_arn, self.call_log.as_deref()).await
    }

    async fn assume_with(
        sts: &aws_sdk_sts::Client,
        from: &SdkConfig,
        role_arn: &str,
        call_log: Option<&Path>,
    ) -> Result<RoleSession> {
        let assumed = sts
            .assume_role()
            .role_arn(role_arn)
            .role_session_name(SESSION_NAME)
            .send()
            .await
            .aws(&sts)
            .with_context(|| format!("assuming {role_arn}"))?;
        let credentials = assumed.credentials().context("STS returned no credentials")?;
        let mut session = RoleSession {
            role_arn: role_arn.to_string(),
            identity: String::new(),
            // The role's account (`arn:aws:iam::<account>:role/...`) until STS confirms it below.
            account: role_arn.split(':').nth(4).unwrap_or_default().to_string(),
            access_key_id: credentials.access_key_id().to_string(),
            secret_access_key: credentials.secret_access_key().to_string(),
            session_token: credentials.session_token().to_string(),
            base: from.clone(),
            call_log: call_log.map(Path::to_path_buf),
        };
        let caller_sts =
            aws_sdk_sts::Client::new(&session.config(from.region().map_or("us-east-1", |region| region.as_ref())));
        let caller = caller_sts
            .get_caller_identity()
            .send()
            .await
            .aws(&caller_sts)
            .with_context(|| format!("asking STS who {role_arn} is"))?;
        session.identity = caller.arn().unwrap_or_default().to_string();
        session.account = caller.account().unwrap_or_default().to_string();
        Ok(session)
    }

    /// The SDK config of this session in `region`.
    pub fn config(&self, region: &str) -> SdkConfig {
        let credentials = Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            Some(self.session_token.clone()),
            None,
            "gbg-pipeline-rehearsal",
        );
        let mut builder = self
            .base
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(credentials))
            .region(Region::new(region.to_string()));
        if let Ok(app_name) = AppName::new(app_name(&self.account, self.base.endpoint_url())) {
            builder = builder.app_name(app_name);
        }
        builder.build()
    }

    fn recorder(&self, region: &str) -> Option<Recorder> {
        Some(Recorder::new(self.call_log.as_deref()?, &self.role_arn, &self.account, region))
    }

    /// The access key id of this session (an id, not a secret): how its calls are told apart in
    /// the call log of a process that got its credentials through the environment.
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// S3 in `region`, path-style (the emulator's bucket host names do not resolve).
    pub fn s3(&self, region: &str) -> aws_sdk_s3::Client {
        let mut builder = aws_sdk_s3::config::Builder::from(&self.config(region)).force_path_style(true);
        if let Some(recorder) = self.recorder(region) {
            builder = builder.interceptor(recorder);
        }
        aws_sdk_s3::Client::from_conf(builder.build())
    }

    pub fn ecs(&self, region: &str) -> aws_sdk_ecs::Client {
        recorded!(aws_sdk_ecs, &self.config(region), self.recorder(region))
    }

    pub fn codedeploy(&self, region: &str) -> aws_sdk_codedeploy::Client {
        recorded!(aws_sdk_codedeploy, &self.config(region), self.recorder(region))
    }

    /// The variables a process needs to act as this session (CodeBuild hands its build the
    /// service role's credentials the same way, through the default credential chain).
    pub fn environment(&self) -> [(&'static str, String); 3] {
        [
            ("AWS_ACCESS_KEY_ID", self.access_key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_access_key.clone()),
            ("AWS_SESSION_TOKEN", self.session_token.clone()),
        ]
    }
}
