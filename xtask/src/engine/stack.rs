//! One CloudFormation stack: deploy it (through a change set or directly), preview a change,
//! describe it, delete it, and find the root cause when it fails.
//!
//! "No changes" has three faces and all of them are success: a `ValidationError` "No updates are
//! to be performed.", a change set that FAILED because it "didn't contain changes", and a
//! change set with no changes. A stack whose template and parameters hash to the value in its
//! `gbg:config-hash` tag is not sent to CloudFormation at all. A stack in `ROLLBACK_COMPLETE` (a
//! failed first create) cannot be updated, so it is deleted and created again, saying so.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::error::ProvideErrorMetadata;
use aws_sdk_cloudformation::types::{
    Capability, ChangeAction, ChangeSetStatus, ChangeSetType, Parameter, Replacement, Stack, StackStatus, Tag,
};
use aws_smithy_types::DateTime;
use sha2::{Digest, Sha256};

use crate::aws::error::one_line;
use crate::aws::{AwsError, AwsResultExt};
use crate::output::Progress;

/// The tag holding the hash of what the stack was last deployed with.
pub const HASH_TAG: &str = "gbg:config-hash";

/// How a stack is deployed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Create a change set, inspect it, execute it (the default on AWS).
    ChangeSet,
    /// CreateStack / UpdateStack (the default locally: the emulator's executed change sets leave
    /// the stack without its outputs, so a local change-set deploy sends each stack twice, see
    /// `EMULATOR_CHANGE_SET`).
    Direct,
}

/// A parameter's value in a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParamValue {
    Value(String),
    /// Keep the value the stack has (CloudFormation's UsePreviousValue); the given value is used
    /// only when the stack is created. It is not part of the stack's hash: a later change of the
    /// fallback alone does not make the stack "changed".
    KeepPrevious(String),
}

/// Everything needed to deploy one stack, fully resolved.
#[derive(Clone, Debug)]
pub struct StackRequest {
    pub name: String,
    pub template_body: String,
    pub parameters: Vec<(String, ParamValue)>,
    pub tags: Vec<(String, String)>,
}

impl StackRequest {
    /// A hash over the template and the parameters: equal hashes mean an identical deploy.
    pub fn hash(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.template_body.as_bytes());
        let mut parameters = self.parameters.clone();
        parameters.sort_by(|left, right| left.0.cmp(&right.0));
        for (name, value) in parameters {
            hasher.update(b"\0");
            hasher.update(name.as_bytes());
            match value {
                ParamValue::Value(value) => {
                    hasher.update(b"=");
                    hasher.update(value.as_bytes());
                }
                ParamValue::KeepPrevious(_) => hasher.update(b"<previous>"),
            }
        }
        for (key, value) in &self.tags {
            hasher.update(format!("\0tag {key}={value}").as_bytes());
        }
        hex::encode(hasher.finalize())[..16].to_string()
    }

    /// The parameters as sent: "keep previous" values become UsePreviousValue for an existing
    /// stack and their fallback for a new one.
    fn parameters_for(&self, exists: bool) -> Result<Vec<Parameter>> {
        self.parameters
            .iter()
            .map(|(name, value)| {
                let builder = Parameter::builder().parameter_key(name);
                Ok(match value {
                    ParamValue::Value(value) => builder.parameter_value(value).build(),
                    ParamValue::KeepPrevious(_) if exists => builder.use_previous_value(true).build(),
                    ParamValue::KeepPrevious(fallback) => builder.parameter_value(fallback).build(),
                })
            })
            .collect()
    }

    fn tags_with_hash(&self) -> Vec<Tag> {
        self.tags
            .iter()
            .map(|(key, value)| Tag::builder().key(key).value(value).build())
            .chain(std::iter::once(Tag::builder().key(HASH_TAG).value(self.hash()).build()))
            .collect()
    }
}

/// What happened to a stack, or to another step of a plan (the `action` of `--json`'s rows).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Created,
    Updated,
    /// Nothing to do: the stack, object or image was already as asked.
    Unchanged,
    Failed,
    Deleted,
    /// Not attempted because a step it depends on failed.
    Skipped,
    /// Not done, or not provable, because the emulator records without running (no replica key,
    /// no task, no load balancer address; said in a note); the steps after it go on.
    EmulatorGap,
    /// An image or package built.
    Built,
    /// An image pushed to a registry.
    Pushed,
    /// Objects written to a bucket.
    Uploaded,
    /// A check that passed against what AWS holds (a key, a service, the site, digests).
    Checked,
    /// The local site container serves the version.
    Serving,
}

impl Action {
    /// Whether the steps after this one may go on.
    pub fn succeeded(self) -> bool {
        !matches!(self, Action::Failed | Action::Skipped | Action::Deleted)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Updated => "updated",
            Action::Unchanged => "unchanged",
            Action::Failed => "failed",
            Action::Deleted => "deleted",
            Action::Skipped => "skipped",
            Action::EmulatorGap => "emulator-gap",
            Action::Built => "built",
            Action::Pushed => "pushed",
            Action::Uploaded => "uploaded",
            Action::Checked => "checked",
            Action::Serving => "serving",
        }
    }
}

/// The result of a successful deploy.
#[derive(Clone, Debug)]
pub struct Deployed {
    pub action: Action,
    pub status: String,
    pub outputs: BTreeMap<String, String>,
    /// The stack's parameters as CloudFormation holds them now (a kept previous value included).
    pub parameters: BTreeMap<String, String>,
    /// Said when the stack had to be deleted and created again.
    pub note: Option<String>,
}

/// A stack operation that failed, with its root cause first.
#[derive(Debug, thiserror::Error)]
#[error("{root_cause}")]
pub struct StackFailed {
    pub stack: String,
    pub status: String,
    /// The first `*_FAILED` event with its reason, or the API's error.
    pub root_cause: String,
}

/// A stack as CloudFormation describes it.
#[derive(Clone, Debug)]
pub struct StackState {
    /// CloudFormation's status, as the SDK's enum (`StackStatus::as_str()` is AWS's word).
    pub status: StackStatus,
    pub status_reason: Option<String>,
    pub last_updated: Option<DateTime>,
    pub tags: BTreeMap<String, String>,
    pub outputs: BTreeMap<String, String>,
    pub parameters: BTreeMap<String, String>,
}

impl StackState {
    fn from_stack(stack: &Stack) -> StackState {
        StackState {
            status: stack.stack_status().cloned().unwrap_or_else(|| StackStatus::from("UNKNOWN")),
            status_reason: stack.stack_status_reason().map(str::to_string),
            last_updated: stack.last_updated_time().or(stack.creation_time()).cloned(),
            tags: stack
                .tags()
                .iter()
                .filter_map(|tag| Some((tag.key()?.to_string(), tag.value()?.to_string())))
                .collect(),
            outputs: stack
                .outputs()
                .iter()
                .filter_map(|output| Some((output.output_key()?.to_string(), output.output_value()?.to_string())))
                .collect(),
            parameters: stack
                .parameters()
                .iter()
                .filter_map(|parameter| {
                    Some((parameter.parameter_key()?.to_string(), parameter.parameter_value()?.to_string()))
                })
                .collect(),
        }
    }

    /// A stable state a stack can be updated from.
    pub fn is_complete(&self) -> bool {
        matches!(
            self.status,
            StackStatus::CreateComplete
                | StackStatus::UpdateComplete
                | StackStatus::UpdateRollbackComplete
                | StackStatus::ImportComplete
        )
    }

    /// An operation still running (every `*_IN_PROGRESS` status of
    /// https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_Stack.html).
    pub fn is_in_progress(&self) -> bool {
        self.status.as_str().ends_with("_IN_PROGRESS")
    }

    /// AWS's word for the status: `CREATE_COMPLETE`.
    pub fn status_text(&self) -> String {
        self.status.as_str().to_string()
    }
}

/// One resource change of a preview.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    /// `Add`, `Modify`, `Remove`, `Import`, `Dynamic`.
    pub action: String,
    pub logical_id: String,
    pub resource_type: String,
    /// For `Modify`: `True`, `False` or `Conditional`.
    pub replacement: Option<String>,
}

/// Talks to CloudFormation about stacks in one account and region.
pub struct Stacks {
    pub client: Client,
    /// How long one operation may take before we give up waiting.
    pub timeout: Duration,
    /// The client talks to the local emulator, whose executed change sets need a second send
    /// (`EMULATOR_CHANGE_SET`).
    pub emulator: bool,
}

/// What a local deploy through a change set says about the emulator (moto 5's
/// `execute_change_set` and `ChangeSet.diff`): it creates or updates the resources but leaves the
/// stack's recorded template, parameters, tags and outputs as they were (a created stack has no
/// outputs at all), and its change sets list no change when only parameters differ. AWS applies
/// all of it with the change set ("Updating stacks using change sets", AWS CloudFormation User
/// Guide, https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-updating-stacks-changesets.html).
pub const EMULATOR_CHANGE_SET: &str = "emulator gap: moto's ExecuteChangeSet does not record the template, parameters, tags or outputs on the stack, and its change sets list no change for a parameter-only update; the same template and parameters were sent again with UpdateStack so the stack holds what AWS would";

impl Stacks {
    pub fn new(client: Client, timeout: Duration) -> Stacks {
        Stacks { client, timeout, emulator: false }
    }

    /// The same, talking to the local emulator when `emulator` is true.
    pub fn against_emulator(self, emulator: bool) -> Stacks {
        Stacks { emulator, ..self }
    }

    /// The stack named `name`, or `None` when it does not exist (or is deleted).
    pub async fn describe(&self, name: &str) -> Result<Option<StackState>> {
        match self.client.describe_stacks().stack_name(name).send().await {
            Ok(reply) => {
                let state = reply.stacks().first().map(StackState::from_stack);
                Ok(state.filter(|state| state.status != StackStatus::DeleteComplete))
            }
            Err(error) if is_missing(&error) => Ok(None),
            Err(error) => Err(error).aws(&self.client).with_context(|| format!("describing stack {name}")),
        }
    }

    /// Deploys `request`, creating, recreating or updating the stack as needed.
    pub async fn deploy(&self, request: &StackRequest, method: Method, progress: &Progress) -> Result<Deployed> {
        let mut note = None;
        let mut current = self.describe(&request.name).await?;
        // The emulator is synchronous: a stack it shows in CREATE_IN_PROGRESS is one whose create
        // failed (moto answers the failing call with an error and never moves the stack on), so
        // there is nothing to wait for; it is deleted and created again below, and said.
        let stuck = |state: &StackState| self.emulator && state.status == StackStatus::CreateInProgress;
        if let Some(state) = &current
            && state.is_in_progress()
            && state.status != StackStatus::ReviewInProgress
            && !stuck(state)
        {
            // Any other operation in progress on the emulator is stuck too; only its reset helps.
            if self.emulator {
                bail!(
                    "stack {} is {} in the emulator, which runs every operation at once, so it will not leave that state (an emulator gap); `cargo xtask local down` resets the emulator, then run the command again",
                    request.name,
                    state.status
                );
            }
            progress.update(format!("waiting for {} to finish", state.status));
            current = Some(self.wait_stable(&request.name, progress).await?);
        }
        if let Some(state) = &current {
            let leftover = match state.status {
                StackStatus::RollbackComplete
                | StackStatus::RollbackFailed
                | StackStatus::CreateFailed
                | StackStatus::DeleteFailed => true,
                // A CREATE change set that was never executed (a preview) leaves this state.
                StackStatus::ReviewInProgress => true,
                _ => stuck(state),
            };
            if leftover {
                note = Some(format!(
                    "{} was in {} from an earlier failed create: deleted and created again",
                    request.name, state.status
                ));
                progress.update(format!("deleting the leftover {} stack", state.status));
                self.delete(&request.name, progress).await?;
                current = None;
            }
        }
        if let Some(state) = &current
            && state.is_complete()
            && state.tags.get(HASH_TAG) == Some(&request.hash())
        {
            return Ok(Deployed {
                action: Action::Unchanged,
                status: state.status_text(),
                outputs: state.outputs.clone(),
                parameters: state.parameters.clone(),
                note,
            });
        }
        let exists = current.is_some();
        let started = DateTime::from(std::time::SystemTime::now());
        let sent = match method {
            Method::Direct => self.send_direct(request, exists, progress).await,
            Method::ChangeSet => self.send_change_set(request, exists, progress).await,
        };
        let sent = match sent {
            // The change set ran (or the emulator listed none for a request whose hash differs):
            // either way the stack changes, whatever moto answers the second send.
            Ok(true) if method == Method::ChangeSet && self.emulator => {
                self.send_again_to_emulator(request, progress).await.map(|_| true)
            }
            other => other,
        };
        let changed = match sent {
            Ok(changed) => changed,
            Err(error) => {
                let status = self
                    .describe(&request.name)
                    .await
                    .ok()
                    .flatten()
                    .map(|state| state.status_text())
                    .unwrap_or_default();
                let cause = self.root_cause(&request.name, &started).await.unwrap_or_default();
                let root_cause =
                    if cause.is_empty() { one_line(&error) } else { format!("{cause} ({})", one_line(&error)) };
                return Err(StackFailed { stack: request.name.clone(), status, root_cause }.into());
            }
        };
        if !changed {
            let state = self.describe(&request.name).await?.context("the stack vanished")?;
            return Ok(Deployed {
                action: Action::Unchanged,
                status: state.status_text(),
                outputs: state.outputs,
                parameters: state.parameters,
                note,
            });
        }
        let state = self.wait_stable(&request.name, progress).await?;
        let succeeded = matches!(state.status, StackStatus::CreateComplete | StackStatus::UpdateComplete);
        if !succeeded {
            let cause = self.root_cause(&request.name, &started).await?;
            let root_cause = if cause.is_empty() {
                state.status_reason.clone().unwrap_or_else(|| format!("the stack ended in {}", state.status))
            } else {
                cause
            };
            return Err(StackFailed { stack: request.name.clone(), status: state.status_text(), root_cause }.into());
        }
        if method == Method::ChangeSet && self.emulator {
            note = Some(match note {
                Some(note) => format!("{note}; {EMULATOR_CHANGE_SET}"),
                None => EMULATOR_CHANGE_SET.to_string(),
            });
        }
        let action = if exists { Action::Updated } else { Action::Created };
        Ok(Deployed { action, status: state.status_text(), outputs: state.outputs, parameters: state.parameters, note })
    }

    /// Against the emulator, after its change set ran (or listed nothing for a request whose hash
    /// differs): the same request once more through UpdateStack, which moto applies to the
    /// stack's record (`EMULATOR_CHANGE_SET`).
    async fn send_again_to_emulator(&self, request: &StackRequest, progress: &Progress) -> Result<bool> {
        let state = self.wait_stable(&request.name, progress).await?;
        if !matches!(state.status, StackStatus::CreateComplete | StackStatus::UpdateComplete) {
            bail!("the change set left the stack in {}", state.status);
        }
        progress.update("UpdateStack (the emulator's change sets leave the stack's outputs as they were)");
        self.send_direct(request, true, progress).await
    }

    /// CreateStack or UpdateStack. Returns false when there was nothing to update.
    async fn send_direct(&self, request: &StackRequest, exists: bool, progress: &Progress) -> Result<bool> {
        let parameters = request.parameters_for(exists)?;
        let capabilities = [Capability::CapabilityIam, Capability::CapabilityNamedIam];
        if !exists {
            progress.update("CreateStack");
            self.client
                .create_stack()
                .stack_name(&request.name)
                .template_body(&request.template_body)
                .set_parameters(Some(parameters))
                .set_capabilities(Some(capabilities.to_vec()))
                .set_tags(Some(request.tags_with_hash()))
                .send()
                .await
                .aws(&self.client)?;
            return Ok(true);
        }
        progress.update("UpdateStack");
        let sent = self
            .client
            .update_stack()
            .stack_name(&request.name)
            .template_body(&request.template_body)
            .set_parameters(Some(parameters))
            .set_capabilities(Some(capabilities.to_vec()))
            .set_tags(Some(request.tags_with_hash()))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(true),
            Err(error) if is_no_updates(error.message()) => Ok(false),
            Err(error) => Err(AwsError::from_call(error, &self.client).into()),
        }
    }

    /// Creates a change set, waits for it, executes it unless it holds no change. Returns false
    /// when there was nothing to change (the change set is deleted then).
    async fn send_change_set(&self, request: &StackRequest, exists: bool, progress: &Progress) -> Result<bool> {
        let change_set = self.create_change_set(request, exists, progress).await?;
        let Some(change_set) = change_set else {
            // moto answers a parameter-only update with "no changes" (EMULATOR_CHANGE_SET).
            return Ok(self.emulator && exists);
        };
        let changes = self.change_set_changes(&request.name, &change_set).await?;
        if changes.is_empty() {
            self.delete_change_set(&request.name, &change_set).await;
            return Ok(self.emulator && exists);
        }
        progress.update(format!("ExecuteChangeSet ({} changes)", changes.len()));
        self.client
            .execute_change_set()
            .stack_name(&request.name)
            .change_set_name(&change_set)
            .send()
            .await
            .aws(&self.client)?;
        Ok(true)
    }

    /// Creates a change set and waits until it is ready. `None` when CloudFormation says there is
    /// nothing to change (in either of its two ways).
    async fn create_change_set(
        &self,
        request: &StackRequest,
        exists: bool,
        progress: &Progress,
    ) -> Result<Option<String>> {
        let name = format!(
            "gbg-{}-{}",
            request.hash(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs()
        );
        progress.update("CreateChangeSet");
        let created = self
            .client
            .create_change_set()
            .stack_name(&request.name)
            .change_set_name(&name)
            .change_set_type(if exists { ChangeSetType::Update } else { ChangeSetType::Create })
            .template_body(&request.template_body)
            .set_parameters(Some(request.parameters_for(exists)?))
            .set_capabilities(Some(vec![Capability::CapabilityIam, Capability::CapabilityNamedIam]))
            .set_tags(Some(request.tags_with_hash()))
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(error) if is_no_updates(error.message()) => return Ok(None),
            Err(error) => return Err(AwsError::from_call(error, &self.client).into()),
        }
        let deadline = Instant::now() + self.timeout;
        let mut pause = Duration::from_millis(200);
        loop {
            let reply = self
                .client
                .describe_change_set()
                .stack_name(&request.name)
                .change_set_name(&name)
                .send()
                .await
                .aws(&self.client)?;
            match reply.status() {
                Some(ChangeSetStatus::CreateComplete) => return Ok(Some(name)),
                Some(ChangeSetStatus::Failed) => {
                    let reason = reply.status_reason().unwrap_or_default().to_string();
                    self.delete_change_set(&request.name, &name).await;
                    if is_no_updates(Some(&reason)) {
                        return Ok(None);
                    }
                    bail!("the change set failed: {reason}");
                }
                _ => {}
            }
            if Instant::now() > deadline {
                bail!("the change set {name} was not ready within {} s", self.timeout.as_secs());
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    }

    async fn change_set_changes(&self, stack: &str, change_set: &str) -> Result<Vec<Change>> {
        let mut changes = Vec::new();
        let mut pages =
            self.client.describe_change_set().stack_name(stack).change_set_name(change_set).into_paginator().send();
        while let Some(page) = pages.next().await {
            let reply = page.aws(&self.client)?;
            for change in reply.changes() {
                let Some(resource) = change.resource_change() else { continue };
                changes.push(Change {
                    action: resource.action().map(ChangeAction::as_str).unwrap_or("?").to_string(),
                    logical_id: resource.logical_resource_id().unwrap_or_default().to_string(),
                    resource_type: resource.resource_type().unwrap_or_default().to_string(),
                    replacement: resource.replacement().map(Replacement::as_str).map(str::to_string),
                });
            }
        }
        Ok(changes)
    }

    async fn delete_change_set(&self, stack: &str, change_set: &str) {
        // Best effort: a change set left behind costs nothing and is replaced by the next one.
        let _ = self.client.delete_change_set().stack_name(stack).change_set_name(change_set).send().await;
    }

    /// What deploying `request` to the existing stack would change, through a change set that is
    /// deleted afterwards. `None` when nothing would change.
    pub async fn preview(&self, request: &StackRequest, progress: &Progress) -> Result<Option<Vec<Change>>> {
        let Some(change_set) = self.create_change_set(request, true, progress).await? else {
            return Ok(None);
        };
        let changes = self.change_set_changes(&request.name, &change_set).await;
        self.delete_change_set(&request.name, &change_set).await;
        let changes = changes?;
        Ok((!changes.is_empty()).then_some(changes))
    }

    /// Deletes the stack and waits until it is gone. Returns false when there was no stack.
    pub async fn delete(&self, name: &str, progress: &Progress) -> Result<bool> {
        if self.describe(name).await?.is_none() {
            return Ok(false);
        }
        let started = DateTime::from(std::time::SystemTime::now());
        progress.update("DeleteStack");
        self.client
            .delete_stack()
            .stack_name(name)
            .send()
            .await
            .aws(&self.client)
            .with_context(|| format!("deleting stack {name}"))?;
        let deadline = Instant::now() + self.timeout;
        let mut pause = Duration::from_millis(200);
        loop {
            let Some(state) = self.describe(name).await? else {
                return Ok(true);
            };
            if state.status == StackStatus::DeleteFailed {
                let cause = self.root_cause(name, &started).await.unwrap_or_default();
                let status = state.status_text();
                let root_cause =
                    if cause.is_empty() { state.status_reason.unwrap_or_else(|| status.clone()) } else { cause };
                return Err(StackFailed { stack: name.to_string(), status, root_cause }.into());
            }
            if Instant::now() > deadline {
                bail!("stack {name} was still {} after {} s", state.status, self.timeout.as_secs());
            }
            progress.update(&state.status);
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    }

    /// Polls until the stack is in no `*_IN_PROGRESS` state, showing its newest event.
    async fn wait_stable(&self, name: &str, progress: &Progress) -> Result<StackState> {
        let deadline = Instant::now() + self.timeout;
        let mut pause = Duration::from_millis(100);
        loop {
            let state =
                self.describe(name).await?.with_context(|| format!("stack {name} vanished while we waited for it"))?;
            if !state.is_in_progress() {
                return Ok(state);
            }
            if Instant::now() > deadline && self.emulator {
                bail!(
                    "stack {name} is still {} after {} s: the emulator runs every operation at once, so it is stuck there and will not leave it (an emulator gap); `cargo xtask local down` resets the emulator, then run the command again",
                    state.status,
                    self.timeout.as_secs()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "stack {name} is still {} after {} s; look at its events, or wait and run the command again",
                    state.status,
                    self.timeout.as_secs()
                );
            }
            if let Ok(reply) = self.client.describe_stack_events().stack_name(name).send().await
                && let Some(event) = reply.stack_events().first()
            {
                progress.update(format!(
                    "{} {} {}",
                    event.resource_status().map(|status| status.as_str()).unwrap_or_default(),
                    event.resource_type().unwrap_or_default(),
                    event.logical_resource_id().unwrap_or_default()
                ));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    }

    /// The first `*_FAILED` event since `since`, with its resource and reason: the root cause.
    /// Later failures ("Resource creation cancelled") are consequences and come after it.
    pub async fn root_cause(&self, name: &str, since: &DateTime) -> Result<String> {
        let mut failures = Vec::new();
        // By hand: this SDK's DescribeStackEvents has no paginator, and the walk stops at the
        // first event older than `since` rather than reading the stack's whole history.
        let mut token = None;
        'pages: loop {
            let reply = match self.client.describe_stack_events().stack_name(name).set_next_token(token).send().await {
                Ok(reply) => reply,
                Err(_) => break,
            };
            for event in reply.stack_events() {
                if event.timestamp().is_some_and(|time| time.secs() < since.secs() - 1) {
                    break 'pages;
                }
                let status = event.resource_status().map(|status| status.as_str()).unwrap_or_default();
                let Some(reason) = event.resource_status_reason() else { continue };
                if status.ends_with("_FAILED") {
                    failures.push(format!(
                        "{} ({}) {status}: {reason}",
                        event.logical_resource_id().unwrap_or_default(),
                        event.resource_type().unwrap_or_default()
                    ));
                }
            }
            token = reply.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        // Events come newest first: the root cause is the oldest failure.
        Ok(failures.pop().unwrap_or_default())
    }
}

fn is_missing<E: ProvideErrorMetadata, R>(error: &aws_sdk_cloudformation::error::SdkError<E, R>) -> bool {
    error.code() == Some("ValidationError") && error.message().is_some_and(|message| message.contains("does not exist"))
}

/// The two texts CloudFormation uses for "nothing to change".
fn is_no_updates(message: Option<&str>) -> bool {
    message.is_some_and(|message| {
        message.contains("No updates are to be performed") || message.contains("didn't contain changes")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(parameters: &[(&str, &str)]) -> StackRequest {
        StackRequest {
            name: "web-network".into(),
            template_body: "Resources: {}".into(),
            parameters: parameters
                .iter()
                .map(|(name, value)| (name.to_string(), ParamValue::Value(value.to_string())))
                .collect(),
            tags: vec![("gbg:app".into(), "web".into())],
        }
    }

    #[test]
    fn hash_ignores_parameter_order_but_not_values() {
        let one = request(&[("A", "1"), ("B", "2")]);
        let same = request(&[("B", "2"), ("A", "1")]);
        let other = request(&[("A", "1"), ("B", "3")]);
        assert_eq!(one.hash(), same.hash());
        assert_ne!(one.hash(), other.hash());
        let mut previous = one.clone();
        previous.parameters[0].1 = ParamValue::KeepPrevious("1".into());
        assert_ne!(one.hash(), previous.hash());
        let mut other_fallback = previous.clone();
        other_fallback.parameters[0].1 = ParamValue::KeepPrevious("9".into());
        assert_eq!(previous.hash(), other_fallback.hash());
    }

    #[test]
    fn no_updates_has_two_texts() {
        for (message, expect) in [
            (Some("No updates are to be performed."), true),
            (
                Some(
                    "The submitted information didn't contain changes. Submit different information to create a change set.",
                ),
                true,
            ),
            (Some("Template format error"), false),
            (None, false),
        ] {
            assert_eq!(is_no_updates(message), expect, "{message:?}");
        }
    }

    #[test]
    fn keep_previous_falls_back_on_create() {
        let mut keep = request(&[]);
        keep.parameters.push(("ImageUri".into(), ParamValue::KeepPrevious("img@sha256:1".into())));
        let update = keep.parameters_for(true).unwrap();
        assert_eq!((update[0].use_previous_value(), update[0].parameter_value()), (Some(true), None));
        let create = keep.parameters_for(false).unwrap();
        assert_eq!(create[0].parameter_value(), Some("img@sha256:1"));
    }
}
