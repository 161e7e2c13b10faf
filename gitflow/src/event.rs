//! The EventBridge events the Lambda receives, and which of them it acts on.
//!
//! Three rules of the `gitflow` stack deliver events here: a push to the develop branch
//! ("CodeCommit Repository State Change"), a pull request opened or updated from develop to main
//! ("CodeCommit Pull Request State Change"), and the end of a validation build ("CodeBuild Build
//! State Change"). The rules already filter, but the function checks again (repository, branch,
//! project, event name), so a too-wide rule or a hand-made test event is ignored with a reason,
//! never acted on. The field names follow the examples in the CodeCommit user guide ("Monitoring
//! CodeCommit events in Amazon EventBridge") and the CodeBuild user guide ("Build notifications
//! input format reference").

use serde::Deserialize;
use serde_json::Value;

use crate::settings::Settings;

/// The environment variables that tie a validation build to its pull request. The Lambda sets
/// them when it starts the build and reads them back from the build's state-change event.
pub const BUILD_PULL_REQUEST_ID: &str = "GITFLOW_PULL_REQUEST_ID";
pub const BUILD_SOURCE_COMMIT: &str = "GITFLOW_SOURCE_COMMIT";
pub const BUILD_DESTINATION_COMMIT: &str = "GITFLOW_DESTINATION_COMMIT";
pub const BUILD_REPOSITORY: &str = "GITFLOW_REPOSITORY";

/// The common EventBridge envelope.
#[derive(Clone, Debug, Deserialize)]
pub struct Envelope {
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub source: String,
    #[serde(default)]
    pub detail: Value,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReferenceDetail {
    event: String,
    repository_name: String,
    #[serde(default)]
    reference_type: String,
    #[serde(default)]
    reference_name: String,
    #[serde(default)]
    commit_id: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PullRequestDetail {
    event: String,
    pull_request_id: String,
    #[serde(default)]
    repository_names: Vec<String>,
    #[serde(default)]
    source_reference: String,
    #[serde(default)]
    destination_reference: String,
    #[serde(default)]
    source_commit: String,
    #[serde(default)]
    destination_commit: String,
    #[serde(default)]
    pull_request_status: String,
}

#[derive(Clone, Debug, Deserialize)]
struct BuildDetail {
    #[serde(rename = "build-status")]
    build_status: String,
    #[serde(rename = "project-name")]
    project_name: String,
    #[serde(rename = "build-id")]
    build_id: String,
    #[serde(rename = "additional-information", default)]
    additional_information: BuildInformation,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct BuildInformation {
    #[serde(default)]
    environment: BuildEnvironment,
    #[serde(default)]
    logs: BuildLogs,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct BuildEnvironment {
    #[serde(rename = "environment-variables", default)]
    environment_variables: Vec<BuildVariable>,
}

#[derive(Clone, Debug, Deserialize)]
struct BuildVariable {
    name: String,
    #[serde(default)]
    value: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct BuildLogs {
    #[serde(rename = "deep-link", default)]
    deep_link: Option<String>,
}

/// A push to the develop branch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Push {
    pub commit: String,
}

/// A pull request from develop to main was opened, or develop moved under it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullRequestChange {
    pub pull_request_id: String,
    pub source_commit: String,
    pub destination_commit: String,
}

/// The final state of a validation build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildFinished {
    pub build_arn: String,
    pub project: String,
    pub status: BuildStatus,
    pub pull_request_id: String,
    pub source_commit: String,
    pub logs_link: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuildStatus {
    Succeeded,
    /// FAILED, FAULT, STOPPED, TIMED_OUT: the build did not pass.
    NotPassed(String),
}

/// An event the Lambda acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trigger {
    Push(Push),
    PullRequest(PullRequestChange),
    Build(BuildFinished),
}

/// Sorts `event` into a [`Trigger`], or into the reason it is ignored.
pub fn classify(settings: &Settings, event: &Value) -> Result<Trigger, String> {
    let envelope: Envelope = serde_json::from_value(event.clone())
        .map_err(|error| format!("not an EventBridge event (no `detail-type`/`source`): {error}"))?;
    match (envelope.source.as_str(), envelope.detail_type.as_str()) {
        ("aws.codecommit", "CodeCommit Repository State Change") => classify_reference(settings, envelope.detail),
        ("aws.codecommit", "CodeCommit Pull Request State Change") => classify_pull_request(settings, envelope.detail),
        ("aws.codebuild", "CodeBuild Build State Change") => classify_build(settings, envelope.detail),
        (source, detail_type) => Err(format!("`{detail_type}` events from `{source}` are not handled")),
    }
}

fn classify_reference(settings: &Settings, detail: Value) -> Result<Trigger, String> {
    let detail: ReferenceDetail =
        serde_json::from_value(detail).map_err(|error| format!("malformed repository event: {error}"))?;
    if detail.repository_name != settings.repository {
        return Err(format!("repository `{}` is not `{}`", detail.repository_name, settings.repository));
    }
    if detail.reference_type != "branch" || detail.reference_name != settings.develop_branch {
        return Err(format!(
            "{} `{}` is not the develop branch `{}`",
            detail.reference_type, detail.reference_name, settings.develop_branch
        ));
    }
    if !matches!(detail.event.as_str(), "referenceCreated" | "referenceUpdated") {
        return Err(format!("`{}` of the develop branch needs no pull request", detail.event));
    }
    let Some(commit) = detail.commit_id.filter(|commit| !commit.is_empty()) else {
        return Err("the repository event names no commit".into());
    };
    Ok(Trigger::Push(Push { commit }))
}

fn classify_pull_request(settings: &Settings, detail: Value) -> Result<Trigger, String> {
    let detail: PullRequestDetail =
        serde_json::from_value(detail).map_err(|error| format!("malformed pull request event: {error}"))?;
    if !detail.repository_names.contains(&settings.repository) {
        return Err(format!("pull request {} is not in repository `{}`", detail.pull_request_id, settings.repository));
    }
    if !matches!(detail.event.as_str(), "pullRequestCreated" | "pullRequestSourceBranchUpdated") {
        return Err(format!("`{}` of pull request {} needs no validation", detail.event, detail.pull_request_id));
    }
    if detail.source_reference != settings.develop_ref() || detail.destination_reference != settings.main_ref() {
        return Err(format!(
            "pull request {} goes from `{}` to `{}`, not from `{}` to `{}`",
            detail.pull_request_id,
            detail.source_reference,
            detail.destination_reference,
            settings.develop_ref(),
            settings.main_ref()
        ));
    }
    if !detail.pull_request_status.eq_ignore_ascii_case("open") {
        return Err(format!("pull request {} is {}", detail.pull_request_id, detail.pull_request_status));
    }
    if detail.source_commit.is_empty() || detail.destination_commit.is_empty() {
        return Err(format!("the event of pull request {} names no commits", detail.pull_request_id));
    }
    Ok(Trigger::PullRequest(PullRequestChange {
        pull_request_id: detail.pull_request_id,
        source_commit: detail.source_commit,
        destination_commit: detail.destination_commit,
    }))
}

fn classify_build(settings: &Settings, detail: Value) -> Result<Trigger, String> {
    let detail: BuildDetail =
        serde_json::from_value(detail).map_err(|error| format!("malformed build event: {error}"))?;
    if detail.project_name != settings.validate_project {
        return Err(format!(
            "project `{}` is not the validation project `{}`",
            detail.project_name, settings.validate_project
        ));
    }
    let status = match detail.build_status.as_str() {
        "SUCCEEDED" => BuildStatus::Succeeded,
        "FAILED" | "FAULT" | "STOPPED" | "TIMED_OUT" => BuildStatus::NotPassed(detail.build_status.clone()),
        other => return Err(format!("build {} is {other}, not finished", detail.build_id)),
    };
    let variable = |name: &str| {
        detail
            .additional_information
            .environment
            .environment_variables
            .iter()
            .find(|variable| variable.name == name)
            .map(|variable| variable.value.clone())
            .filter(|value| !value.is_empty())
    };
    let (Some(pull_request_id), Some(source_commit)) = (variable(BUILD_PULL_REQUEST_ID), variable(BUILD_SOURCE_COMMIT))
    else {
        return Err(format!(
            "build {} was not started for a pull request (no {BUILD_PULL_REQUEST_ID})",
            detail.build_id
        ));
    };
    if let Some(repository) = variable(BUILD_REPOSITORY)
        && repository != settings.repository
    {
        return Err(format!("build {} validated repository `{repository}`", detail.build_id));
    }
    Ok(Trigger::Build(BuildFinished {
        build_arn: detail.build_id,
        project: detail.project_name,
        status,
        pull_request_id,
        source_commit,
        logs_link: detail.additional_information.logs.deep_link,
    }))
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::json;

    use super::*;
    use crate::settings::tests::settings;

    /// The user guide's `referenceUpdated` example, for repository `web` and `branch`.
    pub(crate) fn push_event(branch: &str, event: &str, commit: &str) -> Value {
        json!({
            "version": "0",
            "id": "01234567-EXAMPLE",
            "detail-type": "CodeCommit Repository State Change",
            "source": "aws.codecommit",
            "account": "111111111111",
            "time": "2019-06-12T10:23:43Z",
            "region": "ap-south-1",
            "resources": ["arn:aws:codecommit:ap-south-1:111111111111:web"],
            "detail": {
                "event": event,
                "repositoryName": "web",
                "repositoryId": "12345678-1234-5678-abcd-12345678abcd",
                "referenceType": "branch",
                "referenceName": branch,
                "referenceFullName": format!("refs/heads/{branch}"),
                "commitId": commit,
                "oldCommitId": "3e5983DESTINATION"
            }
        })
    }

    /// The user guide's `pullRequestCreated` example, for repository `web`.
    pub(crate) fn pull_request_event(event: &str, source: &str, destination: &str) -> Value {
        json!({
            "version": "0",
            "id": "98377d67-EXAMPLE",
            "detail-type": "CodeCommit Pull Request State Change",
            "source": "aws.codecommit",
            "account": "111111111111",
            "time": "2019-02-09T07:15:16Z",
            "region": "ap-south-1",
            "resources": ["arn:aws:codecommit:ap-south-1:111111111111:web"],
            "detail": {
                "author": "arn:aws:sts::111111111111:assumed-role/web-gitflow/web-gitflow",
                "callerUserArn": "arn:aws:sts::111111111111:assumed-role/web-gitflow/web-gitflow",
                "creationDate": "Tue Feb 9 2019 10:18:42 PDT ",
                "description": "An example description.",
                "destinationCommit": "d000000000000000000000000000000000000001",
                "destinationReference": format!("refs/heads/{destination}"),
                "event": event,
                "isMerged": "False",
                "lastModifiedDate": "Tue Feb 9 2019 10:18:42 PDT",
                "notificationBody": "A pull request event occurred ...",
                "pullRequestId": "7",
                "pullRequestStatus": "Open",
                "repositoryNames": ["web"],
                "revisionId": "bdc0cb9bEXAMPLE",
                "sourceCommit": "5000000000000000000000000000000000000001",
                "sourceReference": format!("refs/heads/{source}"),
                "title": "Merge develop into main"
            }
        })
    }

    /// A "CodeBuild Build State Change" event shaped like the CodeBuild user guide's example.
    pub(crate) fn build_event(project: &str, status: &str, variables: &[(&str, &str)]) -> Value {
        let variables: Vec<Value> =
            variables.iter().map(|(name, value)| json!({"name": name, "type": "PLAINTEXT", "value": value})).collect();
        json!({
            "version": "0",
            "id": "bfdc1220-60ff-44ae-bd8e-a4d8d0ea7dcb",
            "detail-type": "CodeBuild Build State Change",
            "source": "aws.codebuild",
            "account": "111111111111",
            "time": "2017-09-01T16:14:21Z",
            "region": "ap-south-1",
            "resources": [format!("arn:aws:codebuild:ap-south-1:111111111111:build/{project}:8745a7a9-c340-456a-9166-edf953571bEX")],
            "detail": {
                "build-status": status,
                "project-name": project,
                "build-id": format!("arn:aws:codebuild:ap-south-1:111111111111:build/{project}:8745a7a9-c340-456a-9166-edf953571bEX"),
                "additional-information": {
                    "artifact": {"location": ""},
                    "environment": {
                        "image": "aws/codebuild/standard:7.0",
                        "privileged-mode": false,
                        "compute-type": "BUILD_GENERAL1_SMALL",
                        "type": "LINUX_CONTAINER",
                        "environment-variables": variables
                    },
                    "timeout-in-minutes": 60,
                    "build-complete": true,
                    "initiator": "web-gitflow",
                    "build-start-time": "Sep 1, 2017 4:12:29 PM",
                    "source": {"location": "https://git-codecommit.ap-south-1.amazonaws.com/v1/repos/web", "type": "CODECOMMIT"},
                    "source-version": "5000000000000000000000000000000000000001",
                    "logs": {
                        "group-name": format!("/aws/codebuild/{project}"),
                        "stream-name": "8745a7a9-c340-456a-9166-edf953571bEX",
                        "deep-link": "https://console.aws.amazon.com/cloudwatch/home?region=ap-south-1#logEvent:group=/aws/codebuild/web-validate;stream=8745a7a9"
                    },
                    "phases": []
                },
                "current-phase": "COMPLETED",
                "current-phase-context": "[]",
                "version": "1"
            }
        })
    }

    pub(crate) const PR_VARIABLES: &[(&str, &str)] = &[
        (BUILD_PULL_REQUEST_ID, "7"),
        (BUILD_SOURCE_COMMIT, "5000000000000000000000000000000000000001"),
        (BUILD_DESTINATION_COMMIT, "d000000000000000000000000000000000000001"),
        (BUILD_REPOSITORY, "web"),
    ];

    fn check(event: Value, expect: Result<Trigger, &str>) {
        let got = classify(&settings(), &event);
        match (&got, &expect) {
            (Ok(got), Ok(expect)) => assert_eq!(got, expect),
            (Err(reason), Err(part)) => assert!(reason.contains(part), "`{reason}` lacks `{part}`"),
            _ => panic!("{event}\n got {got:?}\n expected {expect:?}"),
        }
    }

    #[test]
    fn classifies_pushes() {
        let commit = "c000000000000000000000000000000000000001";
        check(push_event("develop", "referenceUpdated", commit), Ok(Trigger::Push(Push { commit: commit.into() })));
        check(push_event("develop", "referenceCreated", commit), Ok(Trigger::Push(Push { commit: commit.into() })));
        check(push_event("feature/x", "referenceUpdated", commit), Err("branch `feature/x` is not the develop branch"));
        check(push_event("main", "referenceUpdated", commit), Err("is not the develop branch"));
        check(push_event("develop", "referenceDeleted", commit), Err("`referenceDeleted` of the develop branch"));
        let mut other_repository = push_event("develop", "referenceUpdated", commit);
        other_repository["detail"]["repositoryName"] = json!("other");
        check(other_repository, Err("repository `other` is not `web`"));
        let mut tag = push_event("develop", "referenceCreated", commit);
        tag["detail"]["referenceType"] = json!("tag");
        check(tag, Err("tag `develop` is not the develop branch"));
    }

    #[test]
    fn classifies_pull_requests() {
        let change = PullRequestChange {
            pull_request_id: "7".into(),
            source_commit: "5000000000000000000000000000000000000001".into(),
            destination_commit: "d000000000000000000000000000000000000001".into(),
        };
        check(pull_request_event("pullRequestCreated", "develop", "main"), Ok(Trigger::PullRequest(change.clone())));
        check(
            pull_request_event("pullRequestSourceBranchUpdated", "develop", "main"),
            Ok(Trigger::PullRequest(change)),
        );
        check(pull_request_event("pullRequestStatusChanged", "develop", "main"), Err("needs no validation"));
        check(pull_request_event("pullRequestCreated", "feature/x", "main"), Err("goes from `refs/heads/feature/x`"));
        check(pull_request_event("pullRequestCreated", "develop", "release"), Err("to `refs/heads/release`"));
        let mut closed = pull_request_event("pullRequestSourceBranchUpdated", "develop", "main");
        closed["detail"]["pullRequestStatus"] = json!("Closed");
        check(closed, Err("pull request 7 is Closed"));
        let mut elsewhere = pull_request_event("pullRequestCreated", "develop", "main");
        elsewhere["detail"]["repositoryNames"] = json!(["other"]);
        check(elsewhere, Err("is not in repository `web`"));
    }

    #[test]
    fn classifies_builds() {
        let finished = |status: BuildStatus| {
            Ok(Trigger::Build(BuildFinished {
                build_arn: "arn:aws:codebuild:ap-south-1:111111111111:build/web-validate:8745a7a9-c340-456a-9166-edf953571bEX".into(),
                project: "web-validate".into(),
                status,
                pull_request_id: "7".into(),
                source_commit: "5000000000000000000000000000000000000001".into(),
                logs_link: Some("https://console.aws.amazon.com/cloudwatch/home?region=ap-south-1#logEvent:group=/aws/codebuild/web-validate;stream=8745a7a9".into()),
            }))
        };
        check(build_event("web-validate", "SUCCEEDED", PR_VARIABLES), finished(BuildStatus::Succeeded));
        check(build_event("web-validate", "FAILED", PR_VARIABLES), finished(BuildStatus::NotPassed("FAILED".into())));
        check(build_event("web-validate", "STOPPED", PR_VARIABLES), finished(BuildStatus::NotPassed("STOPPED".into())));
        check(build_event("web-validate", "IN_PROGRESS", PR_VARIABLES), Err("is IN_PROGRESS, not finished"));
        check(
            build_event("web-build", "SUCCEEDED", PR_VARIABLES),
            Err("project `web-build` is not the validation project"),
        );
        check(build_event("web-validate", "SUCCEEDED", &[]), Err("was not started for a pull request"));
        check(
            build_event(
                "web-validate",
                "SUCCEEDED",
                &[(BUILD_PULL_REQUEST_ID, "7"), (BUILD_SOURCE_COMMIT, "5"), (BUILD_REPOSITORY, "x")],
            ),
            Err("validated repository `x`"),
        );
    }

    #[test]
    fn ignores_other_events() {
        check(json!({"hello": "world"}), Err("not an EventBridge event"));
        check(
            json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}),
            Err("`Scheduled Event` events from `aws.events` are not handled"),
        );
        check(
            json!({"detail-type": "CodeCommit Repository State Change", "source": "aws.codecommit", "detail": {"x": 1}}),
            Err("malformed repository event"),
        );
    }
}
