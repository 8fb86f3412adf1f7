//! Schedule arithmetic, pure: which tasks exist, when each fires next, whether a tick was
//! missed while the daemon was down, and how long to back off before a retry.
//!
//! Missed ticks (documented in docs/operations.md): a task whose most recent tick lies after
//! its last run — read from the repository: the newest backup's start, the newest
//! verification — runs once when the daemon starts, however many ticks were missed; then it
//! follows its schedule. A job that was never backed up therefore backs up at start. Prune
//! keeps no record of its runs and does not catch up.

use crate::config::{Config, Schedule};
use chrono::{DateTime, TimeZone, Utc};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TaskKind {
    Backup,
    Verify,
    Prune,
}

impl TaskKind {
    pub fn name(self) -> &'static str {
        match self {
            TaskKind::Backup => "backup",
            TaskKind::Verify => "verify",
            TaskKind::Prune => "prune",
        }
    }
}

/// One scheduled thing: a job's backup or verification, or the daemon's prune.
#[derive(Debug, Clone)]
pub struct Task {
    pub kind: TaskKind,
    /// The job; `None` for prune (all jobs with retention).
    pub job: Option<String>,
    pub schedule: Schedule,
}

impl Task {
    /// "backup/app-db", "verify/app-db", "prune": the in-process guard's key.
    pub fn id(&self) -> String {
        match &self.job {
            Some(j) => format!("{}/{j}", self.kind.name()),
            None => self.kind.name().to_string(),
        }
    }
}

/// Every task the config schedules: a job's `schedule`, its `verify.schedule`, and
/// `scheduler.prune`.
pub fn tasks(cfg: &Config) -> Vec<Task> {
    let mut out = Vec::new();
    for j in &cfg.jobs {
        if let Some(s) = &j.schedule {
            out.push(Task {
                kind: TaskKind::Backup,
                job: Some(j.name.0.clone()),
                schedule: s.clone(),
            });
        }
        if let Some(s) = j.verify.as_ref().and_then(|v| v.schedule.as_ref()) {
            out.push(Task {
                kind: TaskKind::Verify,
                job: Some(j.name.0.clone()),
                schedule: s.clone(),
            });
        }
    }
    if let Some(s) = &cfg.scheduler.prune {
        out.push(Task {
            kind: TaskKind::Prune,
            job: None,
            schedule: s.clone(),
        });
    }
    out
}

/// The first tick strictly after `after`, reading the cron fields in `tz`.
pub fn next_tick<Z: TimeZone>(s: &Schedule, tz: &Z, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    s.cron()
        .find_next_occurrence(&after.with_timezone(tz), false)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The last tick at or before `at`.
pub fn last_tick<Z: TimeZone>(s: &Schedule, tz: &Z, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    s.cron()
        .find_previous_occurrence(&at.with_timezone(tz), true)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Whether the task missed a tick while nothing ran it: its last tick is after its last run
/// started (or it never ran).
pub fn missed<Z: TimeZone>(
    s: &Schedule,
    tz: &Z,
    now: DateTime<Utc>,
    last_run: Option<DateTime<Utc>>,
) -> bool {
    match (last_tick(s, tz, now), last_run) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(t), Some(r)) => t > r,
    }
}

/// Wait before attempt `n` (2, 3, …): `base`, doubled each time, at most one hour.
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let factor = 1u32 << attempt.saturating_sub(2).min(16);
    base.saturating_mul(factor).min(Duration::from_secs(3600))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }
    fn sched(s: &str) -> Schedule {
        Schedule::parse(s).unwrap()
    }

    #[test]
    fn next_tick_is_strictly_after_and_reads_fields_in_the_time_zone() {
        let s = sched("0 3 * * *");
        assert_eq!(
            next_tick(&s, &Utc, at("2026-11-23T03:00:00Z")),
            Some(at("2026-11-24T03:00:00Z"))
        );
        // 03:00 in Berlin is 02:00 UTC in winter.
        let berlin = chrono_tz::Europe::Berlin;
        assert_eq!(
            next_tick(&s, &berlin, at("2026-11-23T00:00:00Z")),
            Some(at("2026-11-23T02:00:00Z"))
        );
        // Weekdays as in a Kubernetes CronJob: 1-5 is Monday to Friday. 2026-11-28 is a Saturday.
        let wk = sched("30 4 * * 1-5");
        assert_eq!(
            next_tick(&wk, &Utc, at("2026-11-27T05:00:00Z")),
            Some(at("2026-11-30T04:30:00Z"))
        );
        assert_eq!(
            next_tick(&sched("@hourly"), &Utc, at("2026-11-23T10:15:00Z")),
            Some(at("2026-11-23T11:00:00Z"))
        );
    }

    #[test]
    fn a_missed_tick_runs_once_however_many_were_missed() {
        let s = sched("0 * * * *");
        let now = at("2026-11-23T10:20:00Z");
        assert!(missed(&s, &Utc, now, None), "never ran");
        assert!(
            missed(&s, &Utc, now, Some(at("2026-11-20T00:00:00Z"))),
            "days ago"
        );
        assert!(missed(&s, &Utc, now, Some(at("2026-11-23T09:59:00Z"))));
        assert!(
            !missed(&s, &Utc, now, Some(at("2026-11-23T10:00:01Z"))),
            "ran after the tick"
        );
        assert!(!missed(&s, &Utc, now, Some(at("2026-11-23T10:00:00Z"))));
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let b = Duration::from_secs(30);
        assert_eq!(backoff(b, 2), Duration::from_secs(30));
        assert_eq!(backoff(b, 3), Duration::from_secs(60));
        assert_eq!(backoff(b, 4), Duration::from_secs(120));
        assert_eq!(backoff(b, 40), Duration::from_secs(3600));
    }

    #[test]
    fn dst_gap_and_overlap_in_a_zone_still_give_one_tick() {
        // Europe/Berlin springs forward at 02:00 on 2026-03-29: 02:30 does not exist that day.
        let berlin = chrono_tz::Europe::Berlin;
        let s = sched("30 2 * * *");
        let t = next_tick(&s, &berlin, at("2026-03-28T12:00:00Z")).unwrap();
        assert!(
            t > at("2026-03-28T12:00:00Z") && t < at("2026-03-30T12:00:00Z"),
            "{t}"
        );
        let _ = berlin.with_ymd_and_hms(2026, 10, 25, 2, 30, 0);
    }
}
