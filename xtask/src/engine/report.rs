//! The end of a run: failures with their root causes first, then a table of every stack, then
//! the other steps; or the same as JSON on stdout.

use serde::Serialize;

use crate::engine::executor::StepResult;
use crate::engine::stack::Action;
use crate::engine::{Plan, StackRow, StepKind};
use crate::output::{Printer, table};

/// The machine-readable summary of `deploy` and `destroy`.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub stacks: Vec<StackRow>,
    pub steps: Vec<StepRow>,
    /// The local site's URL, when the run started it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct StepRow {
    pub id: String,
    pub account: String,
    pub region: String,
    pub action: Action,
    pub status: String,
    pub detail: Option<String>,
    pub seconds: f64,
}

impl Summary {
    pub fn new(plan: &Plan, results: &[StepResult]) -> Summary {
        let mut stacks = Vec::new();
        let mut steps = Vec::new();
        for result in results {
            let step = &plan.steps[result.step];
            match &step.kind {
                StepKind::Stack(stack) => stacks.push(StackRow {
                    name: stack.name.clone(),
                    account: step.account.clone(),
                    region: step.region.clone(),
                    status: result.status.clone(),
                    action: result.action.as_str().to_string(),
                    emulator_gaps: result.emulator_gaps.clone(),
                }),
                StepKind::Action(_) => {}
            }
            steps.push(StepRow {
                id: step.id.clone(),
                account: step.account.clone(),
                region: step.region.clone(),
                action: result.action,
                status: result.status.clone(),
                detail: result.detail.clone(),
                seconds: (result.seconds * 10.0).round() / 10.0,
            });
        }
        Summary { stacks, steps, site: None }
    }

    pub fn failed(&self) -> usize {
        self.steps.iter().filter(|step| step.action == Action::Failed).count()
    }

    /// Prints the human summary on stderr.
    pub fn print(&self, printer: &Printer) {
        let failures: Vec<&StepRow> = self.steps.iter().filter(|step| step.action == Action::Failed).collect();
        // The gaps column only where there are gaps: against the emulator.
        let any_gaps = self.stacks.iter().any(|stack| !stack.emulator_gaps.is_empty());
        let mut header = ["STACK", "ACCOUNT", "REGION", "ACTION", "STATUS", "TIME"].map(String::from).to_vec();
        if any_gaps {
            header.push("EMULATOR GAPS".into());
        }
        let mut rows = vec![header];
        for (stack, step) in self.stacks.iter().zip(self.steps.iter().filter(|step| self.is_stack(step))) {
            let mut row = vec![
                stack.name.clone(),
                stack.account.clone(),
                stack.region.clone(),
                stack.action.clone(),
                stack.status.clone(),
                format!("{:.1}s", step.seconds),
            ];
            if any_gaps {
                row.push(match stack.emulator_gaps.len() {
                    0 => "-".to_string(),
                    count => count.to_string(),
                });
            }
            rows.push(row);
        }
        printer.text("");
        printer.text(table(&rows).trim_end());
        for stack in self.stacks.iter().filter(|stack| !stack.emulator_gaps.is_empty()) {
            let place = format!("{}/{}", stack.account, stack.region);
            printer.note(crate::engine::gaps::describe(&stack.name, &place, &stack.emulator_gaps));
        }
        let others: Vec<&StepRow> = self.steps.iter().filter(|step| !self.is_stack(step)).collect();
        if !others.is_empty() {
            let mut rows = vec![["STEP", "ACCOUNT", "REGION", "RESULT"].map(String::from).to_vec()];
            for step in others {
                let result = match step.action {
                    Action::Failed | Action::Skipped => step.action.as_str().to_string(),
                    _ => step.status.clone(),
                };
                rows.push(vec![step.id.clone(), step.account.clone(), step.region.clone(), result]);
            }
            printer.text("");
            printer.text(table(&rows).trim_end());
        }
        let gaps: Vec<&StepRow> = self
            .steps
            .iter()
            .filter(|step| step.action == Action::EmulatorGap && step.status != "NOT_DEPLOYED")
            .collect();
        for gap in gaps {
            printer.note(gap.detail.as_deref().unwrap_or("an emulator gap"));
        }
        let skipped = self.steps.iter().filter(|step| step.action == Action::Skipped).count();
        if !failures.is_empty() {
            printer.text("");
            for failure in &failures {
                printer.error(format!(
                    "{} ({}/{}): {}",
                    failure.id,
                    failure.account,
                    failure.region,
                    failure.detail.as_deref().unwrap_or("failed")
                ));
            }
            printer.error(format!(
                "{} step{} failed, {skipped} skipped because of them; the rest completed. Fix the cause above and run the command again: finished stacks are not touched again",
                failures.len(),
                if failures.len() == 1 { "" } else { "s" }
            ));
        }
    }

    fn is_stack(&self, step: &StepRow) -> bool {
        self.stacks.iter().any(|stack| step.id.starts_with(&format!("{}@", stack.name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::gaps::EmulatorGap;
    use crate::output::Verbosity;

    fn step(id: &str, action: Action, status: &str, detail: Option<&str>) -> StepRow {
        StepRow {
            id: id.into(),
            account: "111111111111".into(),
            region: "ap-south-1".into(),
            action,
            status: status.into(),
            detail: detail.map(str::to_string),
            seconds: 1.25,
        }
    }

    /// What a user reads at the end of a run, captured through the printer's buffer: the stack
    /// table with its gaps column, the other steps by what they did, the notes, the failures last.
    #[test]
    fn the_summary_shows_gaps_outcomes_and_failures() {
        let gap = EmulatorGap {
            logical_id: "Repository".into(),
            kind: "AWS::CodeCommit::Repository".into(),
            stand_in: Some("api".into()),
            note: Some("created through the CodeCommit API".into()),
        };
        let summary = Summary {
            stacks: vec![StackRow {
                name: "web-source".into(),
                account: "111111111111".into(),
                region: "ap-south-1".into(),
                status: "CREATE_COMPLETE".into(),
                action: "created".into(),
                emulator_gaps: vec![gap],
            }],
            steps: vec![
                step("web-source@ap-south-1", Action::Created, "CREATE_COMPLETE", None),
                step("image-build", Action::Built, "BUILT web:1a2b", None),
                step("service-ready@india", Action::EmulatorGap, "2 DESIRED", Some("the emulator runs no task")),
                step("image-push@india", Action::Failed, "FAILED", Some("the registry refused the push")),
            ],
            site: None,
        };
        let (printer, buffer) = Printer::buffer(Verbosity::Normal);
        summary.print(&printer);
        let text = buffer.contents();
        assert!(text.contains("EMULATOR GAPS"), "{text}");
        assert!(text.contains("web-source  111111111111  ap-south-1  created  CREATE_COMPLETE  1.2s  1"), "{text}");
        assert!(text.contains("Repository (AWS::CodeCommit::Repository, stand-in: api)"), "{text}");
        assert!(text.contains("image-build          111111111111  ap-south-1  BUILT web:1a2b"), "{text}");
        assert!(text.contains("note: the emulator runs no task"), "{text}");
        assert!(
            text.contains("error: image-push@india (111111111111/ap-south-1): the registry refused the push"),
            "{text}"
        );
        assert!(text.contains("1 step failed, 0 skipped"), "{text}");
        assert_eq!(summary.failed(), 1);

        let (quiet, buffer) = Printer::buffer(Verbosity::Quiet);
        summary.print(&quiet);
        let text = buffer.contents();
        assert!(!text.contains("EMULATOR GAPS") && text.contains("error: image-push@india"), "{text}");
    }
}
