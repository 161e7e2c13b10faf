//! The gitflow Lambda (`bootstrap` for the `provided.al2023` runtime): opens develop-to-main pull
//! requests, validates them with CodeBuild, and approves and merges the ones that pass.
//!
//! The original sample's Lambda only opened a pull request; nothing approved or merged one, and a
//! merge never started the pipeline. Here, driven by EventBridge rules of the `gitflow` stack:
//! - a push to develop opens a pull request to main when none is open and develop has commits
//!   main lacks (the title names the head commit, the description lists the commits);
//! - a pull request from develop to main, opened or updated, gets the approval rule
//!   `gitflow-validation` and a validation build (`cargo xtask ci check`) of its source commit;
//! - a passed build is reported on the pull request, approved through the approver role, and,
//!   when auto-merge is on, merged (fast-forward or squash) pinned to the validated commit; a
//!   failed build is reported with its console link and the pull request stays open;
//! - the merge moves main, and the stack's main-branch rule starts the pipeline.
//!
//! # Environment (set by `cfn/tools/gitflow.yaml` from `deploy.toml`)
//! | variable | meaning |
//! |---|---|
//! | `GITFLOW_REPOSITORY` | the CodeCommit repository |
//! | `GITFLOW_DEVELOP_BRANCH` | pull requests come from this branch (`[gitflow] develop_branch`) |
//! | `GITFLOW_MAIN_BRANCH` | and go to this one (`[gitflow] main_branch`) |
//! | `GITFLOW_VALIDATE_PROJECT` | the CodeBuild project running `cargo xtask ci check` |
//! | `GITFLOW_AUTO_MERGE` | `true` or `false` (`[gitflow] auto_merge`) |
//! | `GITFLOW_MERGE_STRATEGY` | `fast-forward` or `squash` (`[gitflow] merge_strategy`) |
//! | `GITFLOW_APPROVER_ROLE_ARN` | the role assumed to approve |
//!
//! All are required; a missing or malformed one stops the function at start with a message
//! naming it. The AWS SDK reads the usual variables the Lambda service sets (`AWS_REGION`,
//! credentials) and honours `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` for tests.
//!
//! # Why an approver role
//! CodeCommit refuses an approval from the pull request's author
//! (`PullRequestCannotBeApprovedByAuthorException`), and this function's role authors the pull
//! requests it opens. So approvals come from a second role that only this function may assume
//! and that may only approve; the approval rule's pool is exactly that role's sessions. A person
//! can still review and merge, or override the rule, with their own permissions.
//!
//! Each validation build carries `GITFLOW_PULL_REQUEST_ID`, `GITFLOW_SOURCE_COMMIT`,
//! `GITFLOW_DESTINATION_COMMIT` and `GITFLOW_REPOSITORY`, which tie its state-change event back
//! to the pull request. The response of an invocation is the decision and what was done, as
//! JSON; the same line goes to the log.

mod decide;
mod effects;
mod event;
mod history;
mod settings;

use std::process::ExitCode;

use aws_config::BehaviorVersion;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;

use crate::effects::Aws;
use crate::settings::Settings;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let settings = match Settings::from_vars(std::env::vars()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("gitflow: {error:#}");
            return ExitCode::from(2);
        }
    };
    let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let aws = Aws::from_config(&config, &settings).await;
    let handler = service_fn(|event: LambdaEvent<Value>| invoke(&aws, &settings, event));
    match lambda_runtime::run(handler).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("gitflow: the Lambda runtime stopped: {error}");
            ExitCode::FAILURE
        }
    }
}

/// One invocation: the outcome as the response, or the error chain as the function error.
async fn invoke(aws: &Aws, settings: &Settings, event: LambdaEvent<Value>) -> Result<Value, Diagnostic> {
    match effects::handle(aws, settings, &event.payload).await {
        Ok(outcome) => {
            let response = serde_json::to_value(&outcome).unwrap_or_else(|error| Value::String(error.to_string()));
            eprintln!("gitflow: {response}");
            Ok(response)
        }
        Err(error) => {
            let message = format!("{error:#}");
            eprintln!("gitflow: error: {message}");
            Err(Diagnostic { error_type: "GitflowError".into(), error_message: message })
        }
    }
}
