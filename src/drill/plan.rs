//! A validated playbook: what `drill run` executes and `--dry-run` prints. Built only by
//! `parse`, so every step here has an id, an owner, a timeout and a kind that exists, and
//! every `${...}` it uses resolves.

use super::steps::StepKind;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    Abort,
    Continue,
}

#[derive(Debug, Clone)]
pub struct Step {
    pub id: String,
    pub name: String,
    pub owner: String,
    pub timeout: Duration,
    /// Extra attempts after a failure, `backoff` apart (doubling).
    pub retries: u32,
    pub backoff: Duration,
    /// Poll until the step succeeds, this far apart, within `timeout`.
    pub until_success: Option<Duration>,
    pub on_failure: OnFailure,
    pub fault: bool,
    pub recovered: bool,
    /// The step's `value` output is the newest surviving data's timestamp (T_d).
    pub rpo_probe: bool,
    pub kind_name: String,
    pub kind: Arc<dyn StepKind>,
    /// Line in the playbook, for messages.
    pub line: usize,
}

#[derive(Debug, Clone)]
pub enum Item {
    Step(Step),
    /// Children run concurrently; the group fails if any child that may abort fails.
    Parallel {
        id: String,
        name: String,
        steps: Vec<Step>,
    },
}

impl Item {
    pub fn steps(&self) -> Vec<&Step> {
        match self {
            Item::Step(s) => vec![s],
            Item::Parallel { steps, .. } => steps.iter().collect(),
        }
    }
}

/// A continuous probe beside the drill: `failures` failures in a row abort it.
#[derive(Debug, Clone)]
pub struct Guard {
    pub step: Step,
    pub every: Duration,
    pub failures: u32,
}

#[derive(Debug, Clone, Default)]
pub struct Targets {
    pub rto: Option<Duration>,
    pub rpo: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct Playbook {
    /// Safe for paths: `drills/<name>/<run-id>/` (a checklist's name made a slug).
    pub name: String,
    /// The name as written (a checklist's may hold spaces), for reports.
    pub title: String,
    /// A checklist's top-level metadata drctl does not use, kept and shown as written.
    pub metadata: BTreeMap<String, String>,
    pub scenario: Option<String>,
    pub description: String,
    /// Where it came from: a file path, or `shipped:<name>`.
    pub source: String,
    pub targets: Targets,
    /// Playbook `vars:` with `--var` applied.
    pub vars: BTreeMap<String, String>,
    pub items: Vec<Item>,
    pub rollback: Vec<Step>,
    pub guard: Option<Guard>,
}

impl Playbook {
    pub fn all_steps(&self) -> impl Iterator<Item = &Step> {
        self.items
            .iter()
            .flat_map(|i| i.steps())
            .chain(self.rollback.iter())
            .chain(self.guard.iter().map(|g| &g.step))
    }
    pub fn needs_config(&self) -> bool {
        self.all_steps().any(|s| s.kind.needs_config())
    }
}
