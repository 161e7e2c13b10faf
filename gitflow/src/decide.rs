//! The Lambda's decisions: pure functions of an event and the repository's state.
//!
//! Every outcome (open a pull request, skip, validate, approve and merge, comment, ignore) is
//! decided here from plain data, so the whole policy is tested with tables and no AWS. The effect
//! layer (`effects.rs`) only reads the state these functions need and carries out the result.

use serde::Serialize;

use crate::event::{BuildFinished, BuildStatus, PullRequestChange, Push};
use crate::history::{Ahead, SQUASHED_HEAD_TRAILER};
use crate::settings::{MergeStrategy, Settings};

/// Name of the approval rule the Lambda puts on every develop-to-main pull request.
pub const APPROVAL_RULE_NAME: &str = "gitflow-validation";
/// CodeCommit limits: a pull request title is at most 150 characters, a description 10,240.
const TITLE_LIMIT: usize = 150;
const DESCRIPTION_LIMIT: usize = 10_240;
/// Commits listed in a description; the rest are counted.
const LISTED_COMMITS: usize = 30;

/// The repository as a push to develop finds it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PushState {
    /// Main's head commit; `None` when the branch does not exist.
    pub main_head: Option<String>,
    /// An open pull request from develop to main, if any.
    pub open_pull_request: Option<String>,
    /// Develop's commits that main lacks (empty when main does not exist).
    pub ahead: Ahead,
}

/// A pull request as GetPullRequest reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullRequestState {
    pub id: String,
    pub open: bool,
    pub source_reference: String,
    pub destination_reference: String,
    pub source_commit: String,
    pub destination_commit: String,
    pub revision_id: String,
    pub approval_rules: Vec<String>,
}

/// What to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Decision {
    /// Not an event for this function.
    Ignore { reason: String },
    /// An event for this function that needs nothing done now.
    Skip { reason: String },
    /// Open a pull request from develop to main.
    Open { title: String, description: String, client_request_token: String },
    /// Start the validation build of a pull request, first adding the approval rule if missing.
    Validate {
        pull_request_id: String,
        source_commit: String,
        destination_commit: String,
        approval_rule: Option<ApprovalRule>,
    },
    /// Report the passed build, approve through the approver role, then merge when configured.
    Approve {
        pull_request_id: String,
        revision_id: String,
        source_commit: String,
        destination_commit: String,
        comment: String,
        client_request_token: String,
        merge: Option<Merge>,
    },
    /// Report a build that did not pass; the pull request stays open.
    Comment {
        pull_request_id: String,
        before_commit_id: String,
        after_commit_id: String,
        content: String,
        client_request_token: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApprovalRule {
    pub name: String,
    pub content: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Merge {
    pub strategy: MergeStrategy,
    /// The squash commit's message (unused for a fast-forward).
    pub commit_message: String,
}

pub fn decide_push(settings: &Settings, push: &Push, state: &PushState) -> Decision {
    let Some(main_head) = &state.main_head else {
        return Decision::Ignore {
            reason: format!(
                "branch `{}` does not exist yet; create it with `cargo xtask gitflow init`",
                settings.main_branch
            ),
        };
    };
    if let Some(id) = &state.open_pull_request {
        return Decision::Skip {
            reason: format!(
                "pull request {id} from `{}` to `{}` is already open; CodeCommit re-validates it on this push",
                settings.develop_branch, settings.main_branch
            ),
        };
    }
    if state.ahead.commits.is_empty() {
        return Decision::Skip {
            reason: format!(
                "`{}` at {} has no commits that `{}` (at {}) lacks",
                settings.develop_branch,
                short(&push.commit),
                settings.main_branch,
                short(main_head)
            ),
        };
    }
    let subject = state.ahead.commits.iter().find(|commit| commit.id == push.commit).map(|commit| commit.subject());
    let title = match subject {
        Some(subject) if !subject.is_empty() => {
            format!(
                "Merge {} into {}: {} {subject}",
                settings.develop_branch,
                settings.main_branch,
                short(&push.commit)
            )
        }
        _ => format!("Merge {} into {}: {}", settings.develop_branch, settings.main_branch, short(&push.commit)),
    };
    Decision::Open {
        title: truncate(&title, TITLE_LIMIT),
        description: truncate(&describe(settings, &state.ahead), DESCRIPTION_LIMIT),
        client_request_token: push.commit.clone(),
    }
}

pub fn decide_pull_request(
    settings: &Settings,
    change: &PullRequestChange,
    pull_request: &PullRequestState,
) -> Decision {
    if let Some(reason) = not_ours(settings, pull_request) {
        return Decision::Ignore { reason };
    }
    if pull_request.source_commit != change.source_commit {
        return Decision::Skip {
            reason: format!(
                "pull request {} is now at {}, not {}; the event for the newer commit validates it",
                pull_request.id,
                short(&pull_request.source_commit),
                short(&change.source_commit)
            ),
        };
    }
    let approval_rule = (!pull_request.approval_rules.iter().any(|name| name == APPROVAL_RULE_NAME))
        .then(|| ApprovalRule { name: APPROVAL_RULE_NAME.into(), content: approval_rule_content(settings) });
    Decision::Validate {
        pull_request_id: pull_request.id.clone(),
        source_commit: pull_request.source_commit.clone(),
        destination_commit: pull_request.destination_commit.clone(),
        approval_rule,
    }
}

pub fn decide_build(settings: &Settings, build: &BuildFinished, pull_request: &PullRequestState) -> Decision {
    if let Some(reason) = not_ours(settings, pull_request) {
        return Decision::Ignore {
            reason: format!("{reason}; the result of build {} is not applied", build.build_arn),
        };
    }
    if pull_request.source_commit != build.source_commit {
        return Decision::Skip {
            reason: format!(
                "build {} validated {}, but pull request {} is now at {}; the newer build decides",
                build.build_arn,
                short(&build.source_commit),
                pull_request.id,
                short(&pull_request.source_commit)
            ),
        };
    }
    let link = build_link(build);
    let token = build_token(&build.build_arn);
    match &build.status {
        BuildStatus::Succeeded => {
            let merge = settings.auto_merge.then(|| Merge {
                strategy: settings.merge_strategy,
                commit_message: squash_message(settings, pull_request),
            });
            let next = match settings.auto_merge {
                true => {
                    format!("Approved; merging into `{}` ({}).", settings.main_branch, settings.merge_strategy.as_str())
                }
                false => "Approved; auto-merge is off, so merge it when you are ready.".to_string(),
            };
            Decision::Approve {
                pull_request_id: pull_request.id.clone(),
                revision_id: pull_request.revision_id.clone(),
                source_commit: pull_request.source_commit.clone(),
                destination_commit: pull_request.destination_commit.clone(),
                comment: format!(
                    "Validation build passed for {} (`cargo xtask ci check`): {link}\n\n{next}",
                    short(&pull_request.source_commit)
                ),
                client_request_token: token,
                merge,
            }
        }
        BuildStatus::NotPassed(status) => Decision::Comment {
            pull_request_id: pull_request.id.clone(),
            before_commit_id: pull_request.destination_commit.clone(),
            after_commit_id: pull_request.source_commit.clone(),
            content: format!(
                "Validation build {status} for {} (`cargo xtask ci check`): {link}\n\nThe pull request stays open: push a fix to `{}` and it is validated again.",
                short(&pull_request.source_commit),
                settings.develop_branch
            ),
            client_request_token: token,
        },
    }
}

/// The comment posted when an approved pull request cannot be merged automatically.
pub fn merge_blocked_comment(settings: &Settings, strategy: MergeStrategy, error_code: &str) -> String {
    let why = match error_code {
        "ManualMergeRequiredException" if strategy == MergeStrategy::FastForward => format!(
            "`{main}` has commits that `{develop}` lacks, so it cannot be fast-forwarded. Merge `{main}` into `{develop}` and push; the pull request is then validated again.",
            main = settings.main_branch,
            develop = settings.develop_branch
        ),
        "ManualMergeRequiredException" | "TipsDivergenceExceededException" => {
            "The branches conflict or diverged too far for an automatic merge; resolve it and merge by hand."
                .to_string()
        }
        "PullRequestApprovalRulesNotSatisfiedException" => {
            "Other approval rules of this pull request are not satisfied yet; merge once they are.".to_string()
        }
        "TipOfSourceReferenceIsDifferentException" => format!(
            "`{}` moved after the validated commit; the newer commit is being validated.",
            settings.develop_branch
        ),
        other => format!("The merge failed ({other})."),
    };
    format!("Approved, but not merged automatically: {why}")
}

/// The approval rule: one approval from any session of the approver role.
pub fn approval_rule_content(settings: &Settings) -> String {
    serde_json::json!({
        "Version": "2018-11-08",
        "Statements": [{
            "Type": "Approvers",
            "NumberOfApprovalsNeeded": 1,
            "ApprovalPoolMembers": [settings.approver_pool_member()]
        }]
    })
    .to_string()
}

/// Why a pull request is not a develop-to-main pull request this function may act on.
fn not_ours(settings: &Settings, pull_request: &PullRequestState) -> Option<String> {
    if !pull_request.open {
        return Some(format!("pull request {} is no longer open", pull_request.id));
    }
    if pull_request.source_reference != settings.develop_ref()
        || pull_request.destination_reference != settings.main_ref()
    {
        return Some(format!(
            "pull request {} goes from `{}` to `{}`, not from `{}` to `{}`",
            pull_request.id,
            pull_request.source_reference,
            pull_request.destination_reference,
            settings.develop_ref(),
            settings.main_ref()
        ));
    }
    None
}

fn describe(settings: &Settings, ahead: &Ahead) -> String {
    let mut text = format!(
        "Commits on `{}` that `{}` does not have yet, newest first:\n\n",
        settings.develop_branch, settings.main_branch
    );
    for commit in ahead.commits.iter().take(LISTED_COMMITS) {
        text.push_str(&format!("- {} {} ({})\n", short(&commit.id), commit.subject(), commit.author));
    }
    let unlisted = ahead.commits.len().saturating_sub(LISTED_COMMITS);
    match (unlisted, ahead.truncated) {
        (0, false) => {}
        (0, true) => text.push_str("- ... and possibly more (the history walk stopped at its limit)\n"),
        (more, truncated) => {
            text.push_str(&format!("- ... and {more}{} more\n", if truncated { " or" } else { "" }));
        }
    }
    let merge = match settings.auto_merge {
        true => format!("then merged ({})", settings.merge_strategy.as_str()),
        false => "and then waits for you to merge it".to_string(),
    };
    text.push_str(&format!(
        "\nOpened by the gitflow Lambda. The validation build (`cargo xtask ci check` in CodeBuild project `{}`) runs on every update; when it passes, this pull request is approved {merge}. A merge into `{}` starts the pipeline.\n",
        settings.validate_project, settings.main_branch
    ));
    text
}

fn squash_message(settings: &Settings, pull_request: &PullRequestState) -> String {
    format!(
        "Merge {} into {} (pull request {})\n\n{SQUASHED_HEAD_TRAILER} {}\n",
        settings.develop_branch, settings.main_branch, pull_request.id, pull_request.source_commit
    )
}

/// The build's page in the CodeBuild console, or its logs link outside the `aws` partition.
fn build_link(build: &BuildFinished) -> String {
    // arn:aws:codebuild:<region>:<account>:build/<project>:<build uuid>
    let parts: Vec<&str> = build.build_arn.splitn(6, ':').collect();
    if let ["arn", "aws", "codebuild", region, account, resource] = parts.as_slice()
        && let Some(id) = resource.strip_prefix("build/")
        && let Some((project, uuid)) = id.split_once(':')
    {
        return format!(
            "https://{region}.console.aws.amazon.com/codesuite/codebuild/{account}/projects/{project}/build/{project}%3A{uuid}/?region={region}"
        );
    }
    build.logs_link.clone().unwrap_or_else(|| build.build_arn.clone())
}

/// One comment per build: the build's id after the project name, which is a UUID.
fn build_token(build_arn: &str) -> String {
    let id = build_arn.rsplit(':').next().unwrap_or(build_arn);
    truncate(id, 64)
}

fn short(commit: &str) -> &str {
    commit.get(..7).unwrap_or(commit)
}

fn truncate(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(limit - 3).collect();
    cut.push_str("...");
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::CommitInfo;
    use crate::settings::tests::settings;

    const DEVELOP_HEAD: &str = "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3";
    const MAIN_HEAD: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
    const BUILD: &str =
        "arn:aws:codebuild:ap-south-1:111111111111:build/web-validate:8745a7a9-c340-456a-9166-edf953571bEX";

    fn commit(id: &str, message: &str, time: i64) -> CommitInfo {
        CommitInfo { id: id.into(), parents: vec![], message: message.into(), author: "Mary Major".into(), time }
    }

    fn ahead(count: usize, truncated: bool) -> Ahead {
        let mut commits = vec![commit(DEVELOP_HEAD, "Add the health check\n\nLonger body", 1000)];
        commits.extend(
            (1..count).map(|n| commit(&format!("{n:07}{}", "e".repeat(33)), &format!("Change {n}"), 1000 - n as i64)),
        );
        commits.truncate(count);
        Ahead { commits, truncated }
    }

    fn pull_request() -> PullRequestState {
        PullRequestState {
            id: "7".into(),
            open: true,
            source_reference: "refs/heads/develop".into(),
            destination_reference: "refs/heads/main".into(),
            source_commit: DEVELOP_HEAD.into(),
            destination_commit: MAIN_HEAD.into(),
            revision_id: "rev-1".into(),
            approval_rules: vec![],
        }
    }

    fn build(status: BuildStatus, source_commit: &str) -> BuildFinished {
        BuildFinished {
            build_arn: BUILD.into(),
            project: "web-validate".into(),
            status,
            pull_request_id: "7".into(),
            source_commit: source_commit.into(),
            logs_link: None,
        }
    }

    fn action(decision: &Decision) -> String {
        serde_json::to_value(decision).unwrap()["action"].as_str().unwrap().to_string()
    }

    #[test]
    fn pushes() {
        let push = Push { commit: DEVELOP_HEAD.into() };
        let state = |main: Option<&str>, open: Option<&str>, ahead: Ahead| PushState {
            main_head: main.map(str::to_string),
            open_pull_request: open.map(str::to_string),
            ahead,
        };
        let cases: Vec<(PushState, &str, &str)> = vec![
            (state(None, None, Ahead::default()), "ignore", "create it with `cargo xtask gitflow init`"),
            (
                state(Some(MAIN_HEAD), Some("7"), ahead(2, false)),
                "skip",
                "pull request 7 from `develop` to `main` is already open",
            ),
            (
                state(Some(MAIN_HEAD), None, Ahead::default()),
                "skip",
                "`develop` at c3c3c3c has no commits that `main` (at a1a1a1a) lacks",
            ),
            (
                state(Some(MAIN_HEAD), None, ahead(2, false)),
                "open",
                "Merge develop into main: c3c3c3c Add the health check",
            ),
        ];
        for (state, expected_action, expected_text) in cases {
            let decision = decide_push(&settings(), &push, &state);
            assert_eq!(action(&decision), expected_action, "{decision:?}");
            let text = serde_json::to_string(&decision).unwrap();
            assert!(text.contains(expected_text), "{text} lacks {expected_text}");
        }
    }

    #[test]
    fn opened_pull_requests_describe_the_commits_within_limits() {
        let push = Push { commit: DEVELOP_HEAD.into() };
        let cases = [
            (2, false, "- 0000001 Change 1 (Mary Major)\n\nOpened by", ""),
            (40, false, "- ... and 10 more\n", "Change 30"),
            (40, true, "- ... and 10 or more\n", "Change 30"),
            (3, true, "- ... and possibly more", ""),
        ];
        for (count, truncated, expected, absent) in cases {
            let state = PushState {
                main_head: Some(MAIN_HEAD.into()),
                open_pull_request: None,
                ahead: ahead(count, truncated),
            };
            let Decision::Open { title, description, client_request_token } = decide_push(&settings(), &push, &state)
            else {
                panic!("expected open");
            };
            assert_eq!(client_request_token, DEVELOP_HEAD);
            assert!(title.chars().count() <= TITLE_LIMIT);
            assert!(description.starts_with("Commits on `develop` that `main` does not have yet, newest first:\n\n- c3c3c3c Add the health check (Mary Major)\n"), "{description}");
            assert!(description.contains(expected), "{description} lacks {expected}");
            assert!(absent.is_empty() || !description.contains(absent), "{description} has {absent}");
            assert!(description.contains("approved then merged (fast-forward)"), "{description}");
        }
        let mut long = ahead(1, false);
        long.commits[0].message = "x".repeat(500);
        let state = PushState { main_head: Some(MAIN_HEAD.into()), open_pull_request: None, ahead: long };
        let Decision::Open { title, description, .. } = decide_push(&settings(), &push, &state) else { panic!() };
        assert_eq!(title.chars().count(), TITLE_LIMIT);
        assert!(title.ends_with("..."));
        assert!(description.chars().count() <= DESCRIPTION_LIMIT);
    }

    #[test]
    fn pull_request_changes() {
        let change = PullRequestChange {
            pull_request_id: "7".into(),
            source_commit: DEVELOP_HEAD.into(),
            destination_commit: MAIN_HEAD.into(),
        };
        let with_rule = PullRequestState { approval_rules: vec![APPROVAL_RULE_NAME.into()], ..pull_request() };
        let closed = PullRequestState { open: false, ..pull_request() };
        let moved = PullRequestState { source_commit: "d4d4d4d4".into(), ..pull_request() };
        let elsewhere = PullRequestState { destination_reference: "refs/heads/release".into(), ..pull_request() };
        let cases = [
            (pull_request(), "validate", "\"approval_rule\":{\"name\":\"gitflow-validation\""),
            (with_rule, "validate", "\"approval_rule\":null"),
            (closed, "ignore", "pull request 7 is no longer open"),
            (moved, "skip", "is now at d4d4d4d, not c3c3c3c"),
            (elsewhere, "ignore", "to `refs/heads/release`"),
        ];
        for (state, expected_action, expected_text) in cases {
            let decision = decide_pull_request(&settings(), &change, &state);
            assert_eq!(action(&decision), expected_action, "{decision:?}");
            let text = serde_json::to_string(&decision).unwrap();
            assert!(text.contains(expected_text), "{text} lacks {expected_text}");
        }
    }

    #[test]
    fn build_results() {
        let manual = Settings { auto_merge: false, ..settings() };
        let squash = Settings { merge_strategy: MergeStrategy::Squash, ..settings() };
        let link = "https://ap-south-1.console.aws.amazon.com/codesuite/codebuild/111111111111/projects/web-validate/build/web-validate%3A8745a7a9-c340-456a-9166-edf953571bEX/?region=ap-south-1";
        let cases: Vec<(Settings, BuildFinished, PullRequestState, &str, Vec<&str>)> = vec![
            (
                settings(),
                build(BuildStatus::Succeeded, DEVELOP_HEAD),
                pull_request(),
                "approve",
                vec![
                    "\"strategy\":\"fast-forward\"",
                    "\"revision_id\":\"rev-1\"",
                    link,
                    "merging into `main` (fast-forward)",
                ],
            ),
            (
                squash,
                build(BuildStatus::Succeeded, DEVELOP_HEAD),
                pull_request(),
                "approve",
                vec!["\"strategy\":\"squash\"", "Gitflow-Squashed-Head: c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3"],
            ),
            (
                manual,
                build(BuildStatus::Succeeded, DEVELOP_HEAD),
                pull_request(),
                "approve",
                vec!["\"merge\":null", "auto-merge is off"],
            ),
            (
                settings(),
                build(BuildStatus::NotPassed("FAILED".into()), DEVELOP_HEAD),
                pull_request(),
                "comment",
                vec![
                    "Validation build FAILED for c3c3c3c",
                    link,
                    "\"before_commit_id\":\"a1a1a1a1",
                    "\"client_request_token\":\"8745a7a9-c340-456a-9166-edf953571bEX\"",
                ],
            ),
            (
                settings(),
                build(BuildStatus::NotPassed("STOPPED".into()), DEVELOP_HEAD),
                pull_request(),
                "comment",
                vec!["Validation build STOPPED"],
            ),
            (
                settings(),
                build(BuildStatus::Succeeded, "0ld0ld0"),
                pull_request(),
                "skip",
                vec!["validated 0ld0ld0, but pull request 7 is now at c3c3c3c"],
            ),
            (
                settings(),
                build(BuildStatus::Succeeded, DEVELOP_HEAD),
                PullRequestState { open: false, ..pull_request() },
                "ignore",
                vec!["no longer open; the result of build"],
            ),
        ];
        for (settings, build, state, expected_action, expected_texts) in cases {
            let decision = decide_build(&settings, &build, &state);
            assert_eq!(action(&decision), expected_action, "{decision:?}");
            let text = serde_json::to_string(&decision).unwrap().replace("\\n", "\n");
            for expected in expected_texts {
                assert!(text.contains(expected), "{text} lacks {expected}");
            }
        }
    }

    #[test]
    fn links_outside_the_aws_partition_use_the_logs() {
        let mut china = build(BuildStatus::NotPassed("FAILED".into()), DEVELOP_HEAD);
        china.build_arn = "arn:aws-cn:codebuild:cn-north-1:111111111111:build/web-validate:abc".into();
        china.logs_link = Some("https://logs.example/abc".into());
        assert_eq!(build_link(&china), "https://logs.example/abc");
        china.logs_link = None;
        assert_eq!(build_link(&china), china.build_arn);
    }

    #[test]
    fn merge_blocked_comments_say_what_to_do() {
        let cases = [
            (MergeStrategy::FastForward, "ManualMergeRequiredException", "Merge `main` into `develop` and push"),
            (MergeStrategy::Squash, "ManualMergeRequiredException", "resolve it and merge by hand"),
            (MergeStrategy::FastForward, "PullRequestApprovalRulesNotSatisfiedException", "Other approval rules"),
            (MergeStrategy::FastForward, "TipOfSourceReferenceIsDifferentException", "`develop` moved"),
            (MergeStrategy::Squash, "Weird", "The merge failed (Weird)"),
        ];
        for (strategy, code, expected) in cases {
            let comment = merge_blocked_comment(&settings(), strategy, code);
            assert!(comment.starts_with("Approved, but not merged automatically: "), "{comment}");
            assert!(comment.contains(expected), "{comment} lacks {expected}");
        }
    }

    #[test]
    fn approval_rule_names_the_approver_role_sessions() {
        let content: serde_json::Value = serde_json::from_str(&approval_rule_content(&settings())).unwrap();
        assert_eq!(
            content,
            serde_json::json!({
                "Version": "2018-11-08",
                "Statements": [{
                    "Type": "Approvers",
                    "NumberOfApprovalsNeeded": 1,
                    "ApprovalPoolMembers": ["arn:aws:sts::111111111111:assumed-role/web-gitflow-approver/*"]
                }]
            })
        );
    }
}
