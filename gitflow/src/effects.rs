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

/// The effect layer against a local HTTP double of the CodeCommit and CodeBuild JSON APIs.
///
/// No local emulator serves CodeCommit's branch, commit or pull-request API (moto implements only
/// repositories), so these tests point the SDK clients at a small server that answers each
/// operation with a body shaped exactly as the CodeCommit API reference documents it ("Response
/// Syntax"; errors as `{"__type": ..., "message": ...}` with HTTP 400), and records every request
/// so the tests can assert what the Lambda sent. The real SDK serializes and parses on both
/// sides. CodeBuild's StartBuild, which moto does serve, is recorded here only because it is one
/// step of the pull-request flow; `xtask/tests/it/gitflow.rs` runs that flow with StartBuild
/// against moto.
#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use aws_sdk_codecommit::config::{BehaviorVersion, Credentials, Region};
    use serde_json::json;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;
    use crate::event::tests::{PR_VARIABLES, build_event, pull_request_event, push_event};
    use crate::settings::tests::settings;

    const MAIN: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
    const D1: &str = "d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1";
    const D2: &str = "d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2";
    /// The pull request events' source and destination commits (see `event::tests`).
    const SOURCE: &str = "5000000000000000000000000000000000000001";
    const DESTINATION: &str = "d000000000000000000000000000000000000001";

    type Responder = Arc<dyn Fn(&str, &Value) -> (u16, Value) + Send + Sync>;

    #[derive(Clone, Debug)]
    struct Request {
        operation: String,
        body: Value,
    }

    struct Double {
        endpoint: String,
        requests: Arc<Mutex<Vec<Request>>>,
    }

    impl Double {
        async fn start(responder: impl Fn(&str, &Value) -> (u16, Value) + Send + Sync + 'static) -> Double {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let endpoint = format!("http://{}", listener.local_addr().unwrap());
            let requests = Arc::new(Mutex::new(Vec::new()));
            let responder: Responder = Arc::new(responder);
            let recorded = requests.clone();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(serve(stream, responder.clone(), recorded.clone()));
                }
            });
            Double { endpoint, requests }
        }

        fn operations(&self) -> Vec<String> {
            self.requests.lock().unwrap().iter().map(|request| request.operation.clone()).collect()
        }

        fn body(&self, operation: &str) -> Value {
            let requests = self.requests.lock().unwrap();
            let found = requests.iter().find(|request| request.operation == operation);
            found.unwrap_or_else(|| panic!("no {operation} request")).body.clone()
        }

        fn aws(&self) -> Aws {
            let codecommit = aws_sdk_codecommit::config::Builder::new()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("ap-south-1"))
                .endpoint_url(&self.endpoint)
                .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
                .build();
            let codebuild = aws_sdk_codebuild::config::Builder::new()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("ap-south-1"))
                .endpoint_url(&self.endpoint)
                .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
                .build();
            Aws {
                codecommit: aws_sdk_codecommit::Client::from_conf(codecommit.clone()),
                approver: aws_sdk_codecommit::Client::from_conf(codecommit),
                codebuild: aws_sdk_codebuild::Client::from_conf(codebuild),
            }
        }
    }

    /// One keep-alive connection: `Content-Length` bodies, the operation from `X-Amz-Target`.
    async fn serve(stream: TcpStream, responder: Responder, requests: Arc<Mutex<Vec<Request>>>) {
        let mut reader = BufReader::new(stream);
        loop {
            let mut length = 0;
            let mut operation = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                if line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    match name.trim().to_ascii_lowercase().as_str() {
                        "content-length" => length = value.trim().parse().unwrap(),
                        "x-amz-target" => {
                            operation = value.trim().rsplit('.').next().unwrap_or_default().to_string();
                        }
                        _ => {}
                    }
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).await.unwrap();
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let (status, answer) = responder(&operation, &body);
            requests.lock().unwrap().push(Request { operation, body });
            let answer = answer.to_string();
            let response = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/x-amz-json-1.1\r\nx-amzn-RequestId: test\r\nContent-Length: {}\r\n\r\n{answer}",
                answer.len()
            );
            reader.get_mut().write_all(response.as_bytes()).await.unwrap();
        }
    }

    fn error(code: &str) -> (u16, Value) {
        (400, json!({"__type": code, "message": format!("{code} (test double)")}))
    }

    /// GetCommit's documented response for a commit.
    fn commit(id: &str, parents: &[&str], time: i64, message: &str) -> Value {
        let user = json!({"name": "Mary Major", "email": "mary_major@example.com", "date": format!("{time} -0800")});
        json!({"commit": {
            "additionalData": "",
            "author": user,
            "commitId": id,
            "committer": user,
            "message": message,
            "parents": parents,
            "treeId": "347a3408EXAMPLE"
        }})
    }

    /// GetPullRequest's documented response for pull request 7, develop -> main.
    fn pull_request(status: &str, source: &str, rules: &[&str]) -> Value {
        let rules: Vec<Value> = rules
            .iter()
            .map(|name| {
                json!({
                    "approvalRuleContent": "{\"Version\": \"2018-11-08\"}",
                    "approvalRuleId": "dd8b17fe-EXAMPLE",
                    "approvalRuleName": name,
                    "creationDate": 1571356106.936,
                    "lastModifiedDate": 1571356106.936,
                    "lastModifiedUser": "arn:aws:iam::111111111111:user/Mary_Major",
                    "ruleContentSha256": "4711b576EXAMPLE"
                })
            })
            .collect();
        json!({"pullRequest": {
            "approvalRules": rules,
            "authorArn": "arn:aws:sts::111111111111:assumed-role/web-gitflow/web-gitflow",
            "clientRequestToken": "",
            "creationDate": 1508962823.285,
            "description": "Commits on `develop` ...",
            "lastActivityDate": 1508962823.285,
            "pullRequestId": "7",
            "pullRequestStatus": status,
            "pullRequestTargets": [{
                "destinationCommit": DESTINATION,
                "destinationReference": "refs/heads/main",
                "mergeBase": DESTINATION,
                "mergeMetadata": {"isMerged": false},
                "repositoryName": "web",
                "sourceCommit": source,
                "sourceReference": "refs/heads/develop"
            }],
            "revisionId": "9f29d167EXAMPLE",
            "title": "Merge develop into main"
        }})
    }

    fn comment_posted() -> Value {
        json!({
            "afterCommitId": SOURCE,
            "beforeCommitId": DESTINATION,
            "comment": {"commentId": "abcd1234EXAMPLE", "content": "...", "deleted": false},
            "pullRequestId": "7",
            "repositoryName": "web"
        })
    }

    /// The answers of a repository where develop (d2 -> d1 -> main) is ahead of main.
    fn repository(open: &'static [&'static str]) -> impl Fn(&str, &Value) -> (u16, Value) + Send + Sync + 'static {
        move |operation, body| match operation {
            "GetBranch" => (200, json!({"branch": {"branchName": "main", "commitId": MAIN}})),
            "ListPullRequests" => (200, json!({"pullRequestIds": open})),
            "GetPullRequest" => (200, pull_request("OPEN", SOURCE, &[])),
            "GetCommit" => match body["commitId"].as_str().unwrap() {
                D2 => (200, commit(D2, &[D1], 1700000300, "Add the health check\n\nbody")),
                D1 => (200, commit(D1, &[MAIN], 1700000200, "Pin the image by digest")),
                MAIN => (200, commit(MAIN, &[], 1700000100, "Initial commit")),
                other => error(&format!("CommitDoesNotExistException {other}")),
            },
            "CreatePullRequest" => (200, {
                let mut created = pull_request("OPEN", D2, &[]);
                created["pullRequest"]["pullRequestId"] = json!("8");
                created
            }),
            other => error(&format!("Unexpected{other}")),
        }
    }

    #[tokio::test]
    async fn a_push_opens_a_pull_request_listing_the_new_commits() {
        let double = Double::start(repository(&[])).await;
        let outcome = handle(&double.aws(), &settings(), &push_event("develop", "referenceUpdated", D2)).await.unwrap();
        assert_eq!(outcome.notes, vec!["opened pull request 8"]);
        assert_eq!(
            double.operations(),
            ["GetBranch", "ListPullRequests", "GetCommit", "GetCommit", "GetCommit", "CreatePullRequest"]
        );
        let created = double.body("CreatePullRequest");
        assert_eq!(created["title"], "Merge develop into main: d2d2d2d Add the health check");
        assert_eq!(
            created["targets"],
            json!([{"repositoryName": "web", "sourceReference": "refs/heads/develop", "destinationReference": "refs/heads/main"}])
        );
        assert_eq!(created["clientRequestToken"], D2);
        let description = created["description"].as_str().unwrap();
        assert!(
            description.contains(
                "- d2d2d2d Add the health check (Mary Major)\n- d1d1d1d Pin the image by digest (Mary Major)\n\n"
            ),
            "{description}"
        );
        assert!(!description.contains("a1a1a1a"), "main's commit is listed: {description}");
    }

    #[tokio::test]
    async fn a_push_with_an_open_pull_request_opens_nothing() {
        let double = Double::start(repository(&["7"])).await;
        let outcome = handle(&double.aws(), &settings(), &push_event("develop", "referenceUpdated", D2)).await.unwrap();
        assert!(matches!(outcome.decision, Decision::Skip { ref reason } if reason.contains("pull request 7")));
        assert_eq!(double.operations(), ["GetBranch", "ListPullRequests", "GetPullRequest"]);
    }

    #[tokio::test]
    async fn a_push_to_another_branch_calls_nothing() {
        let double = Double::start(repository(&[])).await;
        let outcome =
            handle(&double.aws(), &settings(), &push_event("feature/x", "referenceUpdated", D2)).await.unwrap();
        assert!(matches!(outcome.decision, Decision::Ignore { .. }));
        assert!(double.operations().is_empty());
    }

    #[tokio::test]
    async fn a_missing_repository_fails_naming_it() {
        let double = Double::start(|_, _| error("RepositoryDoesNotExistException")).await;
        let failure =
            handle(&double.aws(), &settings(), &push_event("develop", "referenceUpdated", D2)).await.unwrap_err();
        let message = format!("{failure:#}");
        assert!(message.contains("reading branch `main` of repository `web`"), "{message}");
    }

    #[tokio::test]
    async fn a_pull_request_gets_the_approval_rule_and_a_validation_build() {
        let double = Double::start(|operation, _| match operation {
            "GetPullRequest" => (200, pull_request("OPEN", SOURCE, &[])),
            "CreatePullRequestApprovalRule" => (200, json!({"approvalRule": {
                "approvalRuleContent": "{}", "approvalRuleId": "aac33506-EXAMPLE", "approvalRuleName": "gitflow-validation",
                "creationDate": 1571356106.936, "lastModifiedDate": 1571356106.936,
                "lastModifiedUser": "arn:aws:sts::111111111111:assumed-role/web-gitflow/web-gitflow", "ruleContentSha256": "4711b576EXAMPLE"
            }})),
            "StartBuild" => (200, json!({"build": {"id": "web-validate:0f5b2b0c", "arn": "arn:aws:codebuild:ap-south-1:111111111111:build/web-validate:0f5b2b0c", "buildStatus": "IN_PROGRESS", "projectName": "web-validate", "sourceVersion": SOURCE}})),
            other => error(&format!("Unexpected{other}")),
        })
        .await;
        let event = pull_request_event("pullRequestCreated", "develop", "main");
        let outcome = handle(&double.aws(), &settings(), &event).await.unwrap();
        assert_eq!(outcome.notes, ["added approval rule `gitflow-validation`", "started build web-validate:0f5b2b0c"]);
        assert_eq!(double.operations(), ["GetPullRequest", "CreatePullRequestApprovalRule", "StartBuild"]);
        let rule = double.body("CreatePullRequestApprovalRule");
        assert_eq!(rule["pullRequestId"], "7");
        let content: Value = serde_json::from_str(rule["approvalRuleContent"].as_str().unwrap()).unwrap();
        assert_eq!(
            content["Statements"][0]["ApprovalPoolMembers"],
            json!(["arn:aws:sts::111111111111:assumed-role/web-gitflow-approver/*"])
        );
        let build = double.body("StartBuild");
        assert_eq!(build["projectName"], "web-validate");
        assert_eq!(build["sourceVersion"], SOURCE);
        assert_eq!(
            build["environmentVariablesOverride"],
            json!([
                {"name": "GITFLOW_PULL_REQUEST_ID", "value": "7", "type": "PLAINTEXT"},
                {"name": "GITFLOW_SOURCE_COMMIT", "value": SOURCE, "type": "PLAINTEXT"},
                {"name": "GITFLOW_DESTINATION_COMMIT", "value": DESTINATION, "type": "PLAINTEXT"},
                {"name": "GITFLOW_REPOSITORY", "value": "web", "type": "PLAINTEXT"}
            ])
        );
    }

    fn after_build(merge: (u16, Value)) -> impl Fn(&str, &Value) -> (u16, Value) + Send + Sync + 'static {
        move |operation, _| match operation {
            "GetPullRequest" => (200, pull_request("OPEN", SOURCE, &["gitflow-validation"])),
            "PostCommentForPullRequest" => (200, comment_posted()),
            "UpdatePullRequestApprovalState" => (200, json!({})),
            "MergePullRequestByFastForward" | "MergePullRequestBySquash" => merge.clone(),
            other => error(&format!("Unexpected{other}")),
        }
    }

    fn merged() -> (u16, Value) {
        let mut merged = pull_request("CLOSED", SOURCE, &["gitflow-validation"]);
        merged["pullRequest"]["pullRequestTargets"][0]["mergeMetadata"] =
            json!({"isMerged": true, "mergedBy": "arn:aws:sts::111111111111:assumed-role/web-gitflow/web-gitflow"});
        (200, merged)
    }

    #[tokio::test]
    async fn a_passed_build_is_reported_approved_and_fast_forwarded() {
        let double = Double::start(after_build(merged())).await;
        let event = build_event("web-validate", "SUCCEEDED", PR_VARIABLES);
        let outcome = handle(&double.aws(), &settings(), &event).await.unwrap();
        assert_eq!(
            outcome.notes,
            ["approved pull request 7 as the approver role", "merged pull request 7 (fast-forward)"]
        );
        assert_eq!(
            double.operations(),
            [
                "GetPullRequest",
                "PostCommentForPullRequest",
                "UpdatePullRequestApprovalState",
                "MergePullRequestByFastForward"
            ]
        );
        assert_eq!(
            double.body("UpdatePullRequestApprovalState"),
            json!({"pullRequestId": "7", "revisionId": "9f29d167EXAMPLE", "approvalState": "APPROVE"})
        );
        assert_eq!(
            double.body("MergePullRequestByFastForward"),
            json!({"pullRequestId": "7", "repositoryName": "web", "sourceCommitId": SOURCE})
        );
        let comment = double.body("PostCommentForPullRequest");
        assert_eq!(comment["beforeCommitId"], DESTINATION);
        assert_eq!(comment["afterCommitId"], SOURCE);
        assert!(comment["content"].as_str().unwrap().starts_with("Validation build passed for 5000000"), "{comment}");
    }

    #[tokio::test]
    async fn a_squash_merge_names_the_squashed_head() {
        let double = Double::start(after_build(merged())).await;
        let squash = Settings { merge_strategy: MergeStrategy::Squash, ..settings() };
        let event = build_event("web-validate", "SUCCEEDED", PR_VARIABLES);
        handle(&double.aws(), &squash, &event).await.unwrap();
        let merge = double.body("MergePullRequestBySquash");
        assert_eq!(merge["sourceCommitId"], SOURCE);
        assert_eq!(merge["authorName"], "gitflow");
        assert!(merge["commitMessage"].as_str().unwrap().contains(&format!("Gitflow-Squashed-Head: {SOURCE}")));
    }

    #[tokio::test]
    async fn a_merge_that_needs_a_person_is_reported_on_the_pull_request() {
        let double = Double::start(after_build(error("ManualMergeRequiredException"))).await;
        let event = build_event("web-validate", "SUCCEEDED", PR_VARIABLES);
        let outcome = handle(&double.aws(), &settings(), &event).await.unwrap();
        assert_eq!(outcome.notes[1], "not merged (ManualMergeRequiredException); commented on pull request 7");
        let comments: Vec<Request> = double
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|request| request.operation == "PostCommentForPullRequest")
            .cloned()
            .collect();
        assert_eq!(comments.len(), 2);
        let content = comments[1].body["content"].as_str().unwrap();
        assert!(content.contains("Merge `main` into `develop` and push"), "{content}");
    }

    #[tokio::test]
    async fn an_approval_of_a_moved_pull_request_is_noted_and_nothing_merges() {
        let double = Double::start(|operation, body| match operation {
            "UpdatePullRequestApprovalState" => error("RevisionNotCurrentException"),
            other => after_build(merged())(other, body),
        })
        .await;
        let event = build_event("web-validate", "SUCCEEDED", PR_VARIABLES);
        let outcome = handle(&double.aws(), &settings(), &event).await.unwrap();
        assert_eq!(
            outcome.notes,
            ["not approved: pull request 7 changed since the build (RevisionNotCurrentException)"]
        );
        assert!(!double.operations().iter().any(|operation| operation.starts_with("Merge")));
    }

    #[tokio::test]
    async fn a_failed_build_is_reported_with_its_link_and_not_approved() {
        let double = Double::start(after_build(merged())).await;
        let event = build_event("web-validate", "FAILED", PR_VARIABLES);
        let outcome = handle(&double.aws(), &settings(), &event).await.unwrap();
        assert_eq!(outcome.notes, ["commented on pull request 7"]);
        assert_eq!(double.operations(), ["GetPullRequest", "PostCommentForPullRequest"]);
        let comment = double.body("PostCommentForPullRequest");
        let content = comment["content"].as_str().unwrap();
        assert!(content.contains("https://ap-south-1.console.aws.amazon.com/codesuite/codebuild/111111111111/projects/web-validate/build/web-validate%3A8745a7a9-c340-456a-9166-edf953571bEX/?region=ap-south-1"), "{content}");
        assert_eq!(comment["clientRequestToken"], "8745a7a9-c340-456a-9166-edf953571bEX");
    }
}
