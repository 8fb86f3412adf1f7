//! RTO and RPO, exactly as DESIGN.md defines them. Pure: step records in, measures out.
//!
//! - fault instant T_f: start of the step marked `fault: true`; the drill's start if none.
//! - recovered instant T_r: end of the first successful step marked `recovered: true`; the
//!   end of the last step if none is marked.
//! - RTO = T_r − T_f.
//! - last durable data T_d: the newest `durable_at` a successful step proved (an RPO probe,
//!   or the `consistent_at` of the backup a restore step used).
//! - RPO = T_f − T_d, never negative. Not measured ⇒ `seconds: None`, never 0.
//! - A step confirmed by `--yes` (not by a person or a probe) between T_f and T_r proves
//!   nothing about time: RTO is then not measured, and the run is a rehearsal.

use super::record::{Metric, Phase, Status, StepRecord};
use chrono::{DateTime, Utc};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct Measures {
    pub fault_at: Option<DateTime<Utc>>,
    pub recovered_at: Option<DateTime<Utc>>,
    pub durable_at: Option<DateTime<Utc>>,
    pub rto: Metric,
    pub rpo: Metric,
    /// Why the run was a rehearsal (a step between T_f and T_r confirmed by `--yes`).
    pub rehearsal: Option<String>,
}

fn secs(d: chrono::Duration) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

pub fn measure(
    steps: &[StepRecord],
    drill_start: DateTime<Utc>,
    rto_target: Option<Duration>,
    rpo_target: Option<Duration>,
) -> Measures {
    let main: Vec<&StepRecord> = steps.iter().filter(|s| s.phase == Phase::Main).collect();

    let (fault_at, fault_note) = match main.iter().find(|s| s.fault) {
        None => (
            Some(drill_start),
            "from the drill's start (no fault step)".to_string(),
        ),
        Some(s) => match s.started_at {
            Some(t) => (Some(t), format!("from the start of fault step `{}`", s.id)),
            None => (None, format!("the fault step `{}` did not run", s.id)),
        },
    };

    let marked: Vec<&&StepRecord> = main.iter().filter(|s| s.recovered).collect();
    let (recovered_at, rec_note) = if marked.is_empty() {
        let last = main.iter().filter_map(|s| s.finished_at).max();
        (
            last,
            "to the end of the last step (no step marked recovered)".to_string(),
        )
    } else {
        let ok = marked
            .iter()
            .filter(|s| s.status == Status::Passed)
            .filter_map(|s| s.finished_at.map(|t| (t, &s.id)))
            .min();
        match ok {
            Some((t, id)) => (Some(t), format!("to the end of recovery step `{id}`")),
            None => {
                let ids: Vec<_> = marked.iter().map(|s| format!("`{}`", s.id)).collect();
                (
                    None,
                    format!("recovery step {} did not succeed", ids.join(", ")),
                )
            }
        }
    };

    let durable = main
        .iter()
        .filter(|s| s.status == Status::Passed)
        .filter_map(|s| s.durable_at.map(|t| (t, &s.id)))
        .max();
    let durable_at = durable.map(|(t, _)| t);

    let rto_secs = match (fault_at, recovered_at) {
        (Some(f), Some(r)) => Some(secs(r - f).max(0.0)),
        _ => None,
    };
    // A flag-confirmed step inside [T_f, T_r] took no real time: the interval is not a
    // measurement of anything a person or a probe showed.
    let flagged: Vec<String> = match (fault_at, recovered_at) {
        (Some(f), Some(r)) => main
            .iter()
            .filter(|s| s.confirmed_by_flag)
            .filter(|s| {
                s.finished_at.is_some_and(|t| t >= f) && s.started_at.is_some_and(|t| t <= r)
            })
            .map(|s| format!("`{}`", s.id))
            .collect(),
        _ => Vec::new(),
    };
    let rehearsal = (!flagged.is_empty()).then(|| {
        format!(
            "step {} between the fault and the recovery was confirmed by --yes, not by a person or a probe: this run was a rehearsal",
            flagged.join(", ")
        )
    });
    let rto_secs = if rehearsal.is_some() { None } else { rto_secs };
    let rto_note = match (&rehearsal, rto_secs) {
        (Some(why), _) => why.clone(),
        (None, Some(_)) => format!("{fault_note}, {rec_note}"),
        (None, None) if fault_at.is_none() => fault_note.clone(),
        (None, None) => rec_note,
    };

    let (rpo_secs, rpo_note) = match (fault_at, durable) {
        (Some(f), Some((d, id))) => (
            Some(secs(f - d).max(0.0)),
            format!(
                "{fault_note}, back to data proven by `{id}` at {}",
                d.to_rfc3339()
            ),
        ),
        (None, _) => (None, fault_note),
        (_, None) => (
            None,
            "no RPO probe or restore step proved which data survived".to_string(),
        ),
    };

    Measures {
        fault_at,
        recovered_at,
        durable_at,
        rto: metric(rto_secs, rto_target, rto_note),
        rpo: metric(rpo_secs, rpo_target, rpo_note),
        rehearsal,
    }
}

/// A value against its target. A target whose metric was not measured counts as missed:
/// a drill cannot claim what it did not show.
fn metric(seconds: Option<f64>, target: Option<Duration>, note: String) -> Metric {
    let target_seconds = target.map(|t| t.as_secs_f64());
    let (met, missed_by_seconds) = match (seconds, target_seconds) {
        (Some(s), Some(t)) if s <= t => (Some(true), None),
        (Some(s), Some(t)) => (Some(false), Some(s - t)),
        (None, Some(_)) => (Some(false), None),
        (_, None) => (None, None),
    };
    Metric {
        seconds,
        target_seconds,
        met,
        missed_by_seconds,
        note,
    }
}

/// Human text for a metric: "12.3s (target 20m: met)", "not measured: ...".
pub fn describe(name: &str, m: &Metric) -> String {
    let target = m
        .target_seconds
        .map(fmt_secs)
        .map(|t| match (m.met, m.missed_by_seconds) {
            (Some(true), _) => format!(" (target {t}: met)"),
            (Some(false), Some(by)) => format!(" (target {t}: MISSED by {})", fmt_secs(by)),
            (Some(false), None) => format!(" (target {t}: MISSED, not measured)"),
            _ => format!(" (target {t})"),
        })
        .unwrap_or_default();
    match m.seconds {
        Some(s) => format!("{name} {}{target}", fmt_secs(s)),
        None => format!("{name} not measured: {}{target}", m.note),
    }
}

/// Seconds as a short human duration: 45ms, 12.3s, 4m05s, 1h02m, 3d04h, 90d.
pub fn fmt_secs(s: f64) -> String {
    if s >= 86400.0 && s.is_finite() {
        let (d, h) = ((s / 86400.0) as u64, ((s % 86400.0) / 3600.0) as u64);
        if h == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{h:02}h")
        }
    } else if s < 1.0 && s > 0.0 {
        format!("{}ms", (s * 1000.0).round() as u64)
    } else if s < 60.0 {
        format!("{s:.1}s")
    } else if s < 3600.0 {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!(
            "{}h{:02}m",
            (s / 3600.0) as u64,
            ((s % 3600.0) / 60.0) as u64
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_800_000_000_000 + ms).unwrap()
    }

    fn step(id: &str, start: i64, end: i64, status: Status) -> StepRecord {
        StepRecord {
            id: id.into(),
            name: id.into(),
            owner: "SRE".into(),
            kind: "shell".into(),
            phase: Phase::Main,
            group: None,
            status,
            started_at: Some(t(start)),
            finished_at: Some(t(end)),
            attempts: 1,
            timeout_seconds: 60.0,
            fault: false,
            recovered: false,
            durable_at: None,
            error: None,
            output: String::new(),
            restored: None,
            confirmed_by_flag: false,
        }
    }

    #[test]
    fn a_step_confirmed_by_the_flag_between_fault_and_recovery_makes_a_rehearsal() {
        let mut stop = step("stop", 1_000, 1_001, Status::Passed);
        stop.fault = true;
        let mut promote = step("promote", 1_001, 1_002, Status::Passed);
        promote.confirmed_by_flag = true;
        let mut healthy = step("healthy", 1_002, 1_003, Status::Passed);
        healthy.recovered = true;
        let m = measure(
            &[stop.clone(), promote.clone(), healthy.clone()],
            t(0),
            Some(Duration::from_secs(1800)),
            None,
        );
        assert_eq!(
            m.rto.seconds, None,
            "an instant --yes proves nothing about time"
        );
        assert_eq!(m.rto.met, Some(false), "never reported met");
        assert!(
            m.rto.note.contains("`promote`") && m.rto.note.contains("rehearsal"),
            "{}",
            m.rto.note
        );
        assert!(m.rehearsal.is_some());
        // Confirmed by the flag before the fault: the interval itself was observed.
        promote.started_at = Some(t(10));
        promote.finished_at = Some(t(11));
        let m = measure(
            &[promote, stop, healthy],
            t(0),
            Some(Duration::from_secs(1800)),
            None,
        );
        assert_eq!(m.rto.seconds, Some(0.003));
        assert!(m.rehearsal.is_none());
    }

    #[test]
    fn design_example() {
        let mut stop = step("stop", 1_000, 1_500, Status::Passed);
        stop.fault = true;
        let mut promote = step("promote", 1_500, 4_000, Status::Passed);
        promote.durable_at = Some(t(700));
        let mut healthy = step("healthy", 4_000, 6_000, Status::Passed);
        healthy.recovered = true;
        let after = step("cleanup", 6_000, 9_000, Status::Passed);
        let m = measure(
            &[stop, promote, healthy, after],
            t(0),
            Some(Duration::from_secs(4)),
            Some(Duration::from_millis(100)),
        );
        assert_eq!(m.rto.seconds, Some(5.0));
        assert_eq!(m.rto.met, Some(false));
        assert_eq!(m.rto.missed_by_seconds, Some(1.0));
        assert_eq!(m.rpo.seconds, Some(0.3));
        assert_eq!(m.rpo.missed_by_seconds, Some(0.3 - 0.1));
    }

    #[test]
    fn nothing_marked_counts_from_start_to_last_end_and_rpo_is_not_measured() {
        let m = measure(
            &[
                step("a", 100, 200, Status::Passed),
                step("b", 200, 2_600, Status::Passed),
            ],
            t(0),
            None,
            Some(Duration::from_secs(60)),
        );
        assert_eq!(m.rto.seconds, Some(2.6));
        assert_eq!(m.rpo.seconds, None);
        assert_eq!(m.rpo.met, Some(false), "a target not measured is not met");
        assert!(describe("RPO", &m.rpo).contains("not measured"));
    }

    #[test]
    fn failed_recovery_step_leaves_rto_unmeasured() {
        let mut h = step("healthy", 0, 5_000, Status::TimedOut);
        h.recovered = true;
        let m = measure(&[h], t(0), Some(Duration::from_secs(60)), None);
        assert_eq!(m.rto.seconds, None);
        assert!(m.rto.note.contains("`healthy` did not succeed"));
    }

    proptest! {
        #[test]
        fn rpo_never_negative_and_not_measured_is_never_zero(
            fault in 0i64..100_000, durable in proptest::option::of(0i64..200_000),
            rec in 0i64..100_000, marked in any::<bool>(), ok in any::<bool>(),
        ) {
            let mut f = step("f", fault, fault + 10, Status::Passed);
            f.fault = true;
            let mut p = step("p", fault + 10, fault + 10 + rec,
                             if ok { Status::Passed } else { Status::Failed });
            p.recovered = marked;
            p.durable_at = durable.map(t);
            let m = measure(&[f, p], t(0), Some(Duration::from_secs(30)), Some(Duration::from_secs(30)));
            if let Some(r) = m.rpo.seconds { prop_assert!(r >= 0.0); }
            prop_assert_eq!(m.rpo.seconds.is_some(), ok && durable.is_some());
            if ok && durable.is_some() {
                let expect = ((fault - durable.unwrap()).max(0)) as f64 / 1000.0;
                prop_assert!((m.rpo.seconds.unwrap() - expect).abs() < 1e-9);
            }
            // RTO from the fault's start to the recovery step's end.
            if !marked || ok {
                prop_assert!((m.rto.seconds.unwrap() - (rec + 10) as f64 / 1000.0).abs() < 1e-9);
            } else {
                prop_assert_eq!(m.rto.seconds, None);
            }
            for x in [&m.rto, &m.rpo] {
                match (x.seconds, x.met) {
                    (None, met) => prop_assert_eq!(met, Some(false)),
                    (Some(s), Some(true)) => prop_assert!(s <= 30.0),
                    (Some(s), Some(false)) => prop_assert!(s > 30.0 && x.missed_by_seconds.unwrap() > 0.0),
                    (Some(_), None) => prop_assert!(false, "target set but no verdict"),
                }
            }
        }
    }
}
