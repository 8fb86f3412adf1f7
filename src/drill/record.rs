//! What a drill run leaves behind: one record per step, the measures, the verdict. The
//! report (JSON, Markdown, HTML) is rendered from this; `report.json` is this, serialized.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Passed,
    Failed,
    TimedOut,
    /// A person answered `skip` to a manual step.
    Skipped,
    /// The drill was aborted (a failed step, a guard, Ctrl-C) before or while it ran.
    Cancelled,
    /// Not reached because the drill stopped earlier.
    NotRun,
    /// `timeout: 0`: a step the playbook says happens by itself (a circuit breaker that
    /// opens, an automatic failover). drctl records it and does not wait for it.
    Automatic,
}

impl Status {
    pub fn ok(self) -> bool {
        matches!(self, Status::Passed | Status::Skipped | Status::Automatic)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::TimedOut => "timed out",
            Status::Skipped => "skipped",
            Status::Cancelled => "cancelled",
            Status::NotRun => "not run",
            Status::Automatic => "automatic",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Main,
    Rollback,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRecord {
    pub id: String,
    pub name: String,
    pub owner: String,
    pub kind: String,
    pub phase: Phase,
    /// The parallel group this step ran in, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub status: Status,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub attempts: u32,
    pub timeout_seconds: f64,
    #[serde(default)]
    pub fault: bool,
    #[serde(default)]
    pub recovered: bool,
    /// The newest data instant this step proved survived (RPO probe, restore's backup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durable_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The first lines of the step's output (stdout, response body, query result).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub output: String,
    /// A `restore` step's measured restore: `status` judges the job's RTO by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored: Option<Restored>,
    /// Confirmed by `--yes` rather than by a person or a probe.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub confirmed_by_flag: bool,
}

impl StepRecord {
    pub fn seconds(&self) -> Option<f64> {
        match (self.started_at, self.finished_at) {
            (Some(s), Some(f)) => Some((f - s).num_milliseconds() as f64 / 1000.0),
            _ => None,
        }
    }
}

/// What a drill's restore step restored, and how long the restore itself took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Restored {
    pub job: String,
    pub backup: String,
    pub seconds: f64,
    pub raw_bytes: u64,
}

/// A measured duration with its target, or why it was not measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// None: not measured (see `note`). Never 0 in place of unknown.
    pub seconds: Option<f64>,
    pub target_seconds: Option<f64>,
    /// Some(true) met, Some(false) missed, None no target or not measured.
    pub met: Option<bool>,
    /// How far over the target (seconds), when missed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missed_by_seconds: Option<f64>,
    pub note: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub format: u32,
    /// The evidence folder's name (a slug for checklists).
    pub playbook: String,
    /// The playbook's or checklist's full name, as written.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    /// A checklist's own metadata (version, last and next drill, …), kept as written.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub metadata: std::collections::BTreeMap<String, String>,
    /// A step between the fault and the recovery was confirmed by `--yes`: the run was a
    /// rehearsal, and its RTO is not measured.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rehearsal: bool,
    #[serde(default)]
    pub scenario: Option<String>,
    pub description: String,
    pub source: String,
    pub run_id: String,
    pub host: String,
    pub drctl_version: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub fault_at: Option<DateTime<Utc>>,
    pub recovered_at: Option<DateTime<Utc>>,
    pub durable_at: Option<DateTime<Utc>>,
    pub rto: Metric,
    pub rpo: Metric,
    pub steps: Vec<StepRecord>,
    /// Why the drill stopped early (a failed step, a guard, an interrupt), as text.
    pub aborted: Option<String>,
    /// The same, as data (absent in records written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<Abort>,
    pub passed: bool,
    /// One line per reason the drill failed (steps and missed targets).
    pub failures: Vec<String>,
}

/// Why a drill stopped before its last step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Abort {
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// The guard's probe failed `failures` times in a row.
    Guard {
        step: String,
        failures: u32,
        error: String,
    },
    /// A step with `on_failure: abort` failed.
    Step {
        step: String,
        status: String,
        error: String,
    },
    /// Stopped from outside without a recorded cause.
    Stopped,
}

impl std::fmt::Display for Abort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Abort::Interrupted => f.write_str("interrupted (Ctrl-C / SIGTERM)"),
            Abort::Guard {
                step,
                failures,
                error,
            } => write!(
                f,
                "guard `{step}` failed {failures} times in a row: {error}"
            ),
            Abort::Step {
                step,
                status,
                error,
            } => write!(f, "step `{step}` {status}: {error}"),
            Abort::Stopped => f.write_str("stopped"),
        }
    }
}

impl RunRecord {
    pub fn main_steps(&self) -> impl Iterator<Item = &StepRecord> {
        self.steps.iter().filter(|s| s.phase == Phase::Main)
    }
}
