//! The effect layer: reads the repository state a decision needs, and carries a decision out
//! through the AWS SDK. No policy lives here; `decide.rs` makes every choice.
//!
//! Three clients: CodeCommit as the function's own role (read, open, comment, merge), CodeCommit
//! as the approver role (approve only: CodeCommit refuses an approval from a pull request's
//! author, and the function's role authors the pull requests it opens), and CodeBuild (start the
//! validation build). Expected remote conditions (a branch that does not exist, a rule that
//! already exists, a pull request that moved on, a merge that needs a human) are matched on the
//! SDK's modelled errors and reported in the outcome, not raised.

use anyhow::{Context, Result};
use aws_config::SdkConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_sdk_codebuild::types::{EnvironmentVariable, EnvironmentVariableType};
use aws_sdk_codecommit::error::ProvideErrorMetadata;
use aws_sdk_codecommit::operation::create_pull_request_approval_rule::CreatePullRequestApprovalRuleError;
use aws_sdk_codecommit::operation::get_branch::GetBranchError;
use aws_sdk_codecommit::operation::update_pull_request_approval_state::UpdatePullRequestApprovalStateError;
use aws_sdk_codecommit::types::{ApprovalState, PullRequestStatusEnum, Target};
use serde::Serialize;
use serde_json::Value;

use crate::decide::{self, Decision, Merge, PullRequestState, PushState};
use crate::event::{self, Push, Trigger};
use crate::history::{self, CommitInfo, CommitSource};
use crate::settings::{MergeStrategy, Settings};

/// Commits read at most to list what develop has that main lacks.
const HISTORY_BUDGET: usize = 100;

/// The SDK clients the function uses.
pub struct Aws {
    /// As the function's own role.
    pub codecommit: aws_sdk_codecommit::Client,
    /// As the approver role, for UpdatePullRequestApprovalState only.
    pub approver: aws_sdk_codecommit::Client,
    pub codebuild: aws_sdk_codebuild::Client,
}

impl Aws {
    /// Clients from the Lambda's environment; the approver's credentials come from AssumeRole on
    /// first use.
    pub async fn from_config(config: &SdkConfig, settings: &Settings) -> Aws {
        let approver_credentials = AssumeRoleProvider::builder(settings.approver_role_arn.clone())
            .session_name("gitflow-approver")
            .configure(config)
            .build()
            .await;
        let approver = aws_sdk_codecommit::Client::from_conf(
            aws_sdk_codecommit::config::Builder::from(config).credentials_provider(approver_credentials).build(),
        );
        Aws {
            codecommit: aws_sdk_codecommit::Client::new(config),
            approver,
            codebuild: aws_sdk_codebuild::Client::new(config),
        }
    }
}

/// What one invocation did: the Lambda's response, and its log line.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Outcome {
    pub decision: Decision,
    /// What the execution added: ids created, conditions met on the way.
    pub notes: Vec<String>,
}

/// Handles one EventBridge event end to end.
pub async fn handle(aws: &Aws, settings: &Settings, event: &Value) -> Result<Outcome> {
    let decision = match event::classify(settings, event) {
        Err(reason) => Decision::Ignore { reason },
        Ok(Trigger::Push(push)) => {
            let state = push_state(aws, settings, &push).await?;
            decide::decide_push(settings, &push, &state)
        }
        Ok(Trigger::PullRequest(change)) => {
            let pull_request = pull_request_state(aws, &change.pull_request_id).await?;
            decide::decide_pull_request(settings, &change, &pull_request)
        }
        Ok(Trigger::Build(build)) => {
            let pull_request = pull_request_state(aws, &build.pull_request_id).await?;
            decide::decide_build(settings, &build, &pull_request)
        }
    };
    let notes = execute(aws, settings, &decision).await?;
    Ok(Outcome { decision, notes })
}

/// Main's head, an open develop-to-main pull request, and develop's commits that main lacks.
pub async fn push_state(aws: &Aws, settings: &Settings, push: &Push) -> Result<PushState> {
    let main_head = branch_head(&aws.codecommit, &settings.repository, &settings.main_branch).await?;
    let open_pull_request = open_pull_request(aws, settings).await?;
    let ahead = match (&main_head, &open_pull_request) {
        (Some(main_head), None) => {
            let mut source = SdkCommits { client: &aws.codecommit, repository: &settings.repository };
            history::commits_ahead(&mut source, &push.commit, main_head, HISTORY_BUDGET).await?
        }
        // Not needed: the decision is already made without it.
        _ => history::Ahead::default(),
    };
    Ok(PushState { main_head, open_pull_request, ahead })
}

async fn branch_head(client: &aws_sdk_codecommit::Client, repository: &str, branch: &str) -> Result<Option<String>> {
    match client.get_branch().repository_name(repository).branch_name(branch).send().await {
        Ok(output) => Ok(output.branch.and_then(|branch| branch.commit_id)),
        Err(error) if matches!(error.as_service_error(), Some(GetBranchError::BranchDoesNotExistException(_))) => {
            Ok(None)
        }
        Err(error) => Err(error).with_context(|| format!("reading branch `{branch}` of repository `{repository}`")),
    }
}

async fn open_pull_request(aws: &Aws, settings: &Settings) -> Result<Option<String>> {
    let mut pages = aws
        .codecommit
        .list_pull_requests()
        .repository_name(&settings.repository)
        .pull_request_status(PullRequestStatusEnum::Open)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page =
            page.with_context(|| format!("listing open pull requests of repository `{}`", settings.repository))?;
        for id in page.pull_request_ids {
            let pull_request = pull_request_state(aws, &id).await?;
            if pull_request.open
                && pull_request.source_reference == settings.develop_ref()
                && pull_request.destination_reference == settings.main_ref()
            {
                return Ok(Some(id));
            }
        }
    }
    Ok(None)
}

/// GetPullRequest, reduced to what the decisions read.
pub async fn pull_request_state(aws: &Aws, id: &str) -> Result<PullRequestState> {
    let output = aws
        .codecommit
        .get_pull_request()
        .pull_request_id(id)
        .send()
        .await
        .with_context(|| format!("reading pull request {id}"))?;
    let pull_request = output.pull_request.with_context(|| format!("GetPullRequest returned no pull request {id}"))?;
    let target = pull_request
        .pull_request_targets
        .unwrap_or_default()
        .into_iter()
        .next()
        .with_context(|| format!("pull request {id} has no target"))?;
    Ok(PullRequestState {
        id: id.to_string(),
        open: pull_request.pull_request_status == Some(PullRequestStatusEnum::Open)
            && !target.merge_metadata.is_some_and(|merge| merge.is_merged),
        source_reference: target.source_reference.unwrap_or_default(),
        destination_reference: target.destination_reference.unwrap_or_default(),
        source_commit: target.source_commit.unwrap_or_default(),
        destination_commit: target.destination_commit.unwrap_or_default(),
        revision_id: pull_request.revision_id.unwrap_or_default(),
        approval_rules: pull_request
            .approval_rules
            .unwrap_or_default()
            .into_iter()
            .filter_map(|rule| rule.approval_rule_name)
            .collect(),
    })
}

struct SdkCommits<'a> {
    client: &'a aws_sdk_codecommit::Client,
    repository: &'a str,
}

impl CommitSource for SdkCommits<'_> {
    async fn commit(&mut self, id: &str) -> Result<CommitInfo> {
        let output = self
            .client
            .get_commit()
            .repository_name(self.repository)
            .commit_id(id)
            .send()
            .await
            .with_context(|| format!("reading commit {id} of repository `{}`", self.repository))?;
        let commit = output.commit.with_context(|| format!("GetCommit returned no commit {id}"))?;
        let date = commit.committer.as_ref().or(commit.author.as_ref()).and_then(|user| user.date.as_deref());
        let time = date.map(history::parse_time).unwrap_or(0);
        Ok(CommitInfo {
            id: commit.commit_id.unwrap_or_else(|| id.to_string()),
            parents: commit.parents.unwrap_or_default(),
            message: commit.message.unwrap_or_default(),
            author: commit.author.and_then(|author| author.name).unwrap_or_default(),
            time,
        })
    }
}

/// Carries out `decision`; returns notes on what happened.
pub async fn execute(aws: &Aws, settings: &Settings, decision: &Decision) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    match decision {
        Decision::Ignore { .. } | Decision::Skip { .. } => {}
        Decision::Open { title, description, client_request_token } => {
            let target = Target::builder()
                .repository_name(&settings.repository)
                .source_reference(settings.develop_ref())
                .destination_reference(settings.main_ref())
                .build()
                .context("building the pull request target")?;
            let output = aws
                .codecommit
                .create_pull_request()
                .title(title)
                .description(description)
                .targets(target)
                .client_request_token(client_request_token)
                .send()
                .await
                .with_context(|| {
                    format!("opening a pull request from `{}` to `{}`", settings.develop_branch, settings.main_branch)
                })?;
            let id = output.pull_request.and_then(|pull_request| pull_request.pull_request_id).unwrap_or_default();
            notes.push(format!("opened pull request {id}"));
        }
        Decision::Validate { pull_request_id, source_commit, destination_commit, approval_rule } => {
            if let Some(rule) = approval_rule {
                let created = aws
                    .codecommit
                    .create_pull_request_approval_rule()
                    .pull_request_id(pull_request_id)
                    .approval_rule_name(&rule.name)
                    .approval_rule_content(&rule.content)
                    .send()
                    .await;
                match created {
                    Ok(_) => notes.push(format!("added approval rule `{}`", rule.name)),
                    Err(error)
                        if matches!(
                            error.as_service_error(),
                            Some(CreatePullRequestApprovalRuleError::ApprovalRuleNameAlreadyExistsException(_))
                        ) =>
                    {
                        notes.push(format!("approval rule `{}` already exists", rule.name));
                    }
                    Err(error) => {
                        return Err(error).with_context(|| {
                            format!("adding approval rule `{}` to pull request {pull_request_id}", rule.name)
                        });
                    }
                }
            }
            let variables = [
                (event::BUILD_PULL_REQUEST_ID, pull_request_id.as_str()),
                (event::BUILD_SOURCE_COMMIT, source_commit.as_str()),
                (event::BUILD_DESTINATION_COMMIT, destination_commit.as_str()),
                (event::BUILD_REPOSITORY, settings.repository.as_str()),
            ];
            let mut start =
                aws.codebuild.start_build().project_name(&settings.validate_project).source_version(source_commit);
            for (name, value) in variables {
                let variable = EnvironmentVariable::builder()
                    .name(name)
                    .value(value)
                    .r#type(EnvironmentVariableType::Plaintext)
                    .build()
                    .context("building a build variable")?;
                start = start.environment_variables_override(variable);
            }
            let output = start.send().await.with_context(|| {
                format!("starting validation build `{}` for pull request {pull_request_id}", settings.validate_project)
            })?;
            let build = output.build_value.and_then(|build| build.id).unwrap_or_default();
            notes.push(format!("started build {build}"));
        }
        Decision::Approve {
            pull_request_id,
            revision_id,
            source_commit,
            destination_commit,
            comment,
            client_request_token,
            merge,
        } => {
            post_comment(
                aws,
                settings,
                pull_request_id,
                destination_commit,
                source_commit,
                comment,
                client_request_token,
            )
            .await?;
            let approved = aws
                .approver
                .update_pull_request_approval_state()
                .pull_request_id(pull_request_id)
                .revision_id(revision_id)
                .approval_state(ApprovalState::Approve)
                .send()
                .await;
            match approved {
                Ok(_) => notes.push(format!("approved pull request {pull_request_id} as the approver role")),
                Err(error)
                    if matches!(
                        error.as_service_error(),
                        Some(UpdatePullRequestApprovalStateError::RevisionNotCurrentException(_))
                            | Some(UpdatePullRequestApprovalStateError::PullRequestAlreadyClosedException(_))
                    ) =>
                {
                    notes.push(format!(
                        "not approved: pull request {pull_request_id} changed since the build ({})",
                        error.code().unwrap_or("unknown")
                    ));
                    return Ok(notes);
                }
                Err(error) => {
                    return Err(error).with_context(|| {
                        format!("approving pull request {pull_request_id} as {}", settings.approver_role_arn)
                    });
                }
            }
            if let Some(merge) = merge {
                notes.push(
                    merge_pull_request(aws, settings, pull_request_id, source_commit, destination_commit, merge)
                        .await?,
                );
            }
        }
        Decision::Comment { pull_request_id, before_commit_id, after_commit_id, content, client_request_token } => {
            post_comment(
                aws,
                settings,
                pull_request_id,
                before_commit_id,
                after_commit_id,
                content,
                client_request_token,
            )
            .await?;
            notes.push(format!("commented on pull request {pull_request_id}"));
        }
    }
    Ok(notes)
}

async fn merge_pull_request(
    aws: &Aws,
    settings: &Settings,
    pull_request_id: &str,
    source_commit: &str,
    destination_commit: &str,
    merge: &Merge,
) -> Result<String> {
    let strategy = merge.strategy;
    // The source commit pins the merge to the validated commit: CodeCommit refuses it when develop
    // moved meanwhile (TipOfSourceReferenceIsDifferentException).
    let result = match strategy {
        MergeStrategy::FastForward => aws
            .codecommit
            .merge_pull_request_by_fast_forward()
            .pull_request_id(pull_request_id)
            .repository_name(&settings.repository)
            .source_commit_id(source_commit)
            .send()
            .await
            .map(|_| ())
            .map_err(|error| (error.code().map(str::to_string), anyhow::Error::new(error))),
        MergeStrategy::Squash => aws
            .codecommit
            .merge_pull_request_by_squash()
            .pull_request_id(pull_request_id)
            .repository_name(&settings.repository)
            .source_commit_id(source_commit)
            .commit_message(&merge.commit_message)
            .author_name("gitflow")
            .send()
            .await
            .map(|_| ())
            .map_err(|error| (error.code().map(str::to_string), anyhow::Error::new(error))),
    };
    match result {
        Ok(()) => Ok(format!("merged pull request {pull_request_id} ({})", strategy.as_str())),
        Err((Some(code), _)) if NEEDS_A_HUMAN.contains(&code.as_str()) => {
            let comment = decide::merge_blocked_comment(settings, strategy, &code);
            let token = format!("merge-{source_commit}");
            post_comment(aws, settings, pull_request_id, destination_commit, source_commit, &comment, &token).await?;
            Ok(format!("not merged ({code}); commented on pull request {pull_request_id}"))
        }
        Err((_, error)) => {
            Err(error).with_context(|| format!("merging pull request {pull_request_id} ({})", strategy.as_str()))
        }
    }
}

/// Merge failures that leave the pull request open and approved, waiting for a person.
const NEEDS_A_HUMAN: &[&str] = &[
    "ManualMergeRequiredException",
    "TipsDivergenceExceededException",
    "PullRequestApprovalRulesNotSatisfiedException",
    "TipOfSourceReferenceIsDifferentException",
];

async fn post_comment(
    aws: &Aws,
    settings: &Settings,
    pull_request_id: &str,
    before_commit_id: &str,
    after_commit_id: &str,
    content: &str,
    client_request_token: &str,
) -> Result<()> {
    aws.codecommit
        .post_comment_for_pull_request()
        .pull_request_id(pull_request_id)
        .repository_name(&settings.repository)
        .before_commit_id(before_commit_id)
        .after_commit_id(after_commit_id)
        .content(content)
        .client_request_token(client_request_token)
        .send()
        .await
        .with_context(|| format!("commenting on pull request {pull_request_id}"))?;
    Ok(())
}
