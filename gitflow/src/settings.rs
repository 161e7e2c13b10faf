//! The Lambda's settings, read once at start from the environment the `gitflow` stack sets.
//!
//! Every variable is required (the template always sets all of them, from `deploy.toml`), so a
//! missing or malformed one stops the function at start with a message naming the variable,
//! instead of surfacing later as a confusing API error. The contract is documented in `main.rs`.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use serde::Serialize;

/// How an approved pull request is merged into the main branch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MergeStrategy {
    /// Main moves to develop's head; fails (and the Lambda comments) when main has commits
    /// develop lacks.
    FastForward,
    /// One new commit on main with develop's changes; develop's history stays off main.
    Squash,
}

impl MergeStrategy {
    pub fn as_str(self) -> &'static str {
        match self {
            MergeStrategy::FastForward => "fast-forward",
            MergeStrategy::Squash => "squash",
        }
    }
}

/// What the Lambda works on, from `GITFLOW_*` environment variables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// `GITFLOW_REPOSITORY`: the CodeCommit repository; events of other repositories are ignored.
    pub repository: String,
    /// `GITFLOW_DEVELOP_BRANCH`: the branch pull requests come from.
    pub develop_branch: String,
    /// `GITFLOW_MAIN_BRANCH`: the branch pull requests go to.
    pub main_branch: String,
    /// `GITFLOW_VALIDATE_PROJECT`: the CodeBuild project that runs `cargo xtask ci check`.
    pub validate_project: String,
    /// `GITFLOW_AUTO_MERGE`: `true` or `false`.
    pub auto_merge: bool,
    /// `GITFLOW_MERGE_STRATEGY`: `fast-forward` or `squash`.
    pub merge_strategy: MergeStrategy,
    /// `GITFLOW_APPROVER_ROLE_ARN`: the role the Lambda assumes to approve. A pull request's
    /// author cannot approve it, and the Lambda (its own role) opens the pull requests.
    pub approver_role_arn: String,
}

pub const REPOSITORY: &str = "GITFLOW_REPOSITORY";
pub const DEVELOP_BRANCH: &str = "GITFLOW_DEVELOP_BRANCH";
pub const MAIN_BRANCH: &str = "GITFLOW_MAIN_BRANCH";
pub const VALIDATE_PROJECT: &str = "GITFLOW_VALIDATE_PROJECT";
pub const AUTO_MERGE: &str = "GITFLOW_AUTO_MERGE";
pub const MERGE_STRATEGY: &str = "GITFLOW_MERGE_STRATEGY";
pub const APPROVER_ROLE_ARN: &str = "GITFLOW_APPROVER_ROLE_ARN";

impl Settings {
    /// Reads the settings from `vars` (the process environment in production), reporting every
    /// missing or malformed variable at once.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Settings> {
        let vars: BTreeMap<String, String> = vars.into_iter().collect();
        let mut problems = Vec::new();
        let mut text = |name: &str| -> String {
            match vars.get(name).map(|value| value.trim()) {
                Some(value) if !value.is_empty() => value.to_string(),
                _ => {
                    problems.push(format!("{name} is not set"));
                    String::new()
                }
            }
        };
        let repository = text(REPOSITORY);
        let develop_branch = text(DEVELOP_BRANCH);
        let main_branch = text(MAIN_BRANCH);
        let validate_project = text(VALIDATE_PROJECT);
        let auto_merge = text(AUTO_MERGE);
        let merge_strategy = text(MERGE_STRATEGY);
        let approver_role_arn = text(APPROVER_ROLE_ARN);
        let auto_merge = match auto_merge.as_str() {
            "true" => true,
            "false" => false,
            "" => false,
            other => {
                problems.push(format!("{AUTO_MERGE} is `{other}`; expected `true` or `false`"));
                false
            }
        };
        let merge_strategy = match merge_strategy.as_str() {
            "fast-forward" | "" => MergeStrategy::FastForward,
            "squash" => MergeStrategy::Squash,
            other => {
                problems.push(format!("{MERGE_STRATEGY} is `{other}`; expected `fast-forward` or `squash`"));
                MergeStrategy::FastForward
            }
        };
        if !develop_branch.is_empty() && develop_branch == main_branch {
            problems.push(format!("{DEVELOP_BRANCH} and {MAIN_BRANCH} are both `{main_branch}`; they must differ"));
        }
        if !approver_role_arn.is_empty() && role_parts(&approver_role_arn).is_none() {
            problems.push(format!(
                "{APPROVER_ROLE_ARN} is `{approver_role_arn}`; expected `arn:<partition>:iam::<account>:role/<name>`"
            ));
        }
        if !problems.is_empty() {
            bail!(
                "the gitflow Lambda's environment is incomplete: {}; the `gitflow` stack sets these, so redeploy it with `cargo xtask deploy`",
                problems.join("; ")
            );
        }
        Ok(Settings {
            repository,
            develop_branch,
            main_branch,
            validate_project,
            auto_merge,
            merge_strategy,
            approver_role_arn,
        })
    }

    /// The approval-pool member matching every session of the approver role:
    /// `arn:<partition>:sts::<account>:assumed-role/<name>/*`.
    pub fn approver_pool_member(&self) -> String {
        let (partition, account, name) = role_parts(&self.approver_role_arn).expect("validated in from_vars");
        format!("arn:{partition}:sts::{account}:assumed-role/{name}/*")
    }

    pub fn develop_ref(&self) -> String {
        format!("refs/heads/{}", self.develop_branch)
    }

    pub fn main_ref(&self) -> String {
        format!("refs/heads/{}", self.main_branch)
    }
}

/// `(partition, account, name)` of a role ARN without a path.
fn role_parts(arn: &str) -> Option<(&str, &str, &str)> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account), Some(resource)) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let name = resource.strip_prefix("role/")?;
    let valid_account = account.len() == 12 && account.chars().all(|c| c.is_ascii_digit());
    (valid_account && !partition.is_empty() && !name.is_empty() && !name.contains('/'))
        .then_some((partition, account, name))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn vars() -> Vec<(String, String)> {
        [
            (REPOSITORY, "web"),
            (DEVELOP_BRANCH, "develop"),
            (MAIN_BRANCH, "main"),
            (VALIDATE_PROJECT, "web-validate"),
            (AUTO_MERGE, "true"),
            (MERGE_STRATEGY, "fast-forward"),
            (APPROVER_ROLE_ARN, "arn:aws:iam::111111111111:role/web-gitflow-approver"),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
    }

    pub(crate) fn settings() -> Settings {
        Settings::from_vars(vars()).unwrap()
    }

    fn with(changes: &[(&str, Option<&str>)]) -> Result<Settings> {
        let mut vars: BTreeMap<String, String> = vars().into_iter().collect();
        for (name, value) in changes {
            match value {
                Some(value) => vars.insert(name.to_string(), value.to_string()),
                None => vars.remove(*name),
            };
        }
        Settings::from_vars(vars)
    }

    #[test]
    fn reads_the_complete_environment() {
        let settings = settings();
        assert_eq!(settings.repository, "web");
        assert_eq!(settings.main_ref(), "refs/heads/main");
        assert_eq!(settings.develop_ref(), "refs/heads/develop");
        assert!(settings.auto_merge);
        assert_eq!(settings.merge_strategy, MergeStrategy::FastForward);
        assert_eq!(settings.approver_pool_member(), "arn:aws:sts::111111111111:assumed-role/web-gitflow-approver/*");
    }

    #[test]
    fn bad_environments_name_every_variable() {
        type Changes<'a> = &'a [(&'a str, Option<&'a str>)];
        let cases: &[(Changes, &[&str])] = &[
            (&[(REPOSITORY, None)], &["GITFLOW_REPOSITORY is not set"]),
            (&[(REPOSITORY, Some("  "))], &["GITFLOW_REPOSITORY is not set"]),
            (
                &[(AUTO_MERGE, Some("yes")), (MERGE_STRATEGY, Some("rebase"))],
                &["GITFLOW_AUTO_MERGE is `yes`", "GITFLOW_MERGE_STRATEGY is `rebase`"],
            ),
            (&[(DEVELOP_BRANCH, Some("main"))], &["are both `main`"]),
            (&[(APPROVER_ROLE_ARN, Some("arn:aws:iam::111111111111:user/bob"))], &["GITFLOW_APPROVER_ROLE_ARN is"]),
            (&[(APPROVER_ROLE_ARN, Some("arn:aws:iam::1111:role/x"))], &["GITFLOW_APPROVER_ROLE_ARN is"]),
            (&[(APPROVER_ROLE_ARN, Some("arn:aws:iam::111111111111:role/path/x"))], &["GITFLOW_APPROVER_ROLE_ARN is"]),
        ];
        for (changes, expected) in cases {
            let message = format!("{:#}", with(changes).unwrap_err());
            for part in *expected {
                assert!(message.contains(part), "{changes:?}: `{message}` lacks `{part}`");
            }
            assert!(message.contains("cargo xtask deploy"), "{message}");
        }
    }

    #[test]
    fn squash_and_manual_merge_are_read() {
        let settings = with(&[(AUTO_MERGE, Some("false")), (MERGE_STRATEGY, Some("squash"))]).unwrap();
        assert!(!settings.auto_merge);
        assert_eq!(settings.merge_strategy, MergeStrategy::Squash);
        let china = with(&[(APPROVER_ROLE_ARN, Some("arn:aws-cn:iam::111111111111:role/a"))]).unwrap();
        assert_eq!(china.approver_pool_member(), "arn:aws-cn:sts::111111111111:assumed-role/a/*");
    }
}
