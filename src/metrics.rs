//! Prometheus metrics: a small registry of gauges and counters keyed by name and labels,
//! rendered in the text exposition format (version 0.0.4). The daemon serves it on
//! `/metrics`; `backup run --pushgateway URL` pushes the same names once per job.
//!
//! Names follow Prometheus conventions: `drctl_` prefix, base units (seconds, bytes),
//! `_total` for counters, `_timestamp_seconds` for Unix times.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// (help, type) of every metric drctl exports; rendering and tests share this one list.
pub const FAMILIES: &[(&str, &str, &str)] = &[
    ("drctl_backup_last_success_timestamp_seconds", "gauge", "Unix time the job's last backup committed."),
    ("drctl_backup_last_attempt_timestamp_seconds", "gauge", "Unix time the job's last backup run ended, successful or not."),
    ("drctl_backup_last_run_success", "gauge", "1 when the job's last backup run committed, 0 when it failed."),
    ("drctl_backup_duration_seconds", "gauge", "Wall time of the job's last committed backup."),
    ("drctl_backup_bytes", "gauge", "Size of the job's last committed backup: kind=raw (source bytes) or kind=stored (after compression)."),
    ("drctl_backup_region_last_success_timestamp_seconds", "gauge", "Unix time the job's last backup was committed in this region."),
    ("drctl_backup_failures_total", "counter", "Backup runs of the job that failed (after retries)."),
    ("drctl_backup_region_failures_total", "counter", "Backups of the job that could not be written to this region."),
    ("drctl_rpo_exposure_seconds", "gauge", "Now minus consistent_at of the newest backup held by min_copies regions (and verified when the job verifies)."),
    ("drctl_rpo_target_seconds", "gauge", "The job's rpo."),
    ("drctl_rto_measured_seconds", "gauge", "The job's newest timed restore (verify level restore or a drill's restore step); +Inf when the job has an rto and no restore was ever timed."),
    ("drctl_rto_target_seconds", "gauge", "The job's rto."),
    ("drctl_rto_estimated_seconds", "gauge", "The newest timed restore scaled by the newest backup's size, when that backup is at least 1.5 times the timed one."),
    ("drctl_region_readable", "gauge", "1 when the daemon's last status read of the region succeeded, 0 when it failed."),
    ("drctl_drill_last_passed_timestamp_seconds", "gauge", "Unix time the playbook's newest passed drill run finished (from the repository)."),
    ("drctl_drill_next_due_timestamp_seconds", "gauge", "When the playbook's next drill is due, Unix seconds: a checklist's next_drill, or its newest passed run plus its cadence (drills.cadence)."),
    ("drctl_verify_last_success_timestamp_seconds", "gauge", "Unix time the job's last passed verification finished."),
    ("drctl_verify_failures_total", "counter", "Verifications of the job that failed."),
    ("drctl_catalog_errors_total", "counter", "Catalog updates that failed (the repository holds the truth; `drctl catalog sync` catches up)."),
    ("drctl_restore_test_duration_seconds", "gauge", "Wall time of the job's last scratch restore (verify level restore): its measured data-restore time."),
    ("drctl_prune_last_success_timestamp_seconds", "gauge", "Unix time the daemon's last prune finished."),
    ("drctl_prune_deleted_total", "counter", "Backup copies deleted by the daemon's prunes."),
    ("drctl_schedule_overlaps_total", "counter", "Ticks skipped because the task's previous run was still going."),
    ("drctl_schedule_next_run_timestamp_seconds", "gauge", "Unix time of the task's next tick."),
    ("drctl_runs_in_progress", "gauge", "Runs executing now."),
];

type Labels = Vec<(&'static str, String)>;

/// The registry. Labels are kept sorted by name so one series has one key.
#[derive(Default)]
pub struct Registry {
    series: Mutex<BTreeMap<&'static str, BTreeMap<Labels, f64>>>,
}

fn key(labels: &[(&'static str, &str)]) -> Labels {
    let mut l: Labels = labels.iter().map(|(k, v)| (*k, v.to_string())).collect();
    l.sort();
    l
}

impl Registry {
    pub fn set(&self, name: &'static str, labels: &[(&'static str, &str)], v: f64) {
        debug_assert!(FAMILIES.iter().any(|f| f.0 == name), "{name}");
        let mut s = self.series.lock().unwrap_or_else(|p| p.into_inner());
        s.entry(name).or_default().insert(key(labels), v);
    }

    pub fn add(&self, name: &'static str, labels: &[(&'static str, &str)], v: f64) {
        let mut s = self.series.lock().unwrap_or_else(|p| p.into_inner());
        *s.entry(name).or_default().entry(key(labels)).or_insert(0.0) += v;
    }

    /// Forget every series of `name` (a task removed by a reload must not linger).
    pub fn clear(&self, name: &str) {
        let mut s = self.series.lock().unwrap_or_else(|p| p.into_inner());
        s.remove(name);
    }

    /// The text exposition format. `drop_label` leaves one label out of every series (the
    /// Pushgateway takes `job` from its URL's grouping key and refuses it in the body).
    pub fn render(&self, drop_label: Option<&str>) -> String {
        let s = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        for (name, kind, help) in FAMILIES {
            let Some(series) = s.get(name).filter(|m| !m.is_empty()) else {
                continue;
            };
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, v) in series {
                let ls: Vec<String> = labels
                    .iter()
                    .filter(|(k, _)| Some(*k) != drop_label)
                    .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                    .collect();
                let ls = if ls.is_empty() {
                    String::new()
                } else {
                    format!("{{{}}}", ls.join(","))
                };
                let _ = writeln!(out, "{name}{ls} {}", number(*v));
            }
        }
        out
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

pub fn unix(t: chrono::DateTime<chrono::Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

/// Record a finished backup run (the daemon's and `backup run --pushgateway`'s shared view).
pub fn record_backup(
    reg: &Registry,
    job: &str,
    result: &Result<crate::backup::BackupReport, crate::error::Error>,
) {
    let now = unix(chrono::Utc::now());
    reg.set(
        "drctl_backup_last_attempt_timestamp_seconds",
        &[("job", job)],
        now,
    );
    match result {
        Ok(r) => {
            reg.set(
                "drctl_backup_last_success_timestamp_seconds",
                &[("job", job)],
                now,
            );
            reg.set("drctl_backup_last_run_success", &[("job", job)], 1.0);
            reg.set(
                "drctl_backup_duration_seconds",
                &[("job", job)],
                r.duration_seconds,
            );
            reg.set(
                "drctl_backup_bytes",
                &[("job", job), ("kind", "raw")],
                r.raw_bytes as f64,
            );
            reg.set(
                "drctl_backup_bytes",
                &[("job", job), ("kind", "stored")],
                r.stored_bytes as f64,
            );
            for region in &r.regions {
                reg.set(
                    "drctl_backup_region_last_success_timestamp_seconds",
                    &[("job", job), ("region", region)],
                    now,
                );
            }
            for f in &r.failed_regions {
                reg.add(
                    "drctl_backup_region_failures_total",
                    &[("job", job), ("region", &f.region)],
                    1.0,
                );
            }
            reg.add("drctl_backup_failures_total", &[("job", job)], 0.0);
        }
        Err(_) => {
            reg.set("drctl_backup_last_run_success", &[("job", job)], 0.0);
            reg.add("drctl_backup_failures_total", &[("job", job)], 1.0);
        }
    }
}

/// RPO exposure and target per job, from `status`'s reading of the repository.
pub fn record_status(reg: &Registry, jobs: &[crate::status::JobStatus]) {
    for s in jobs {
        // No covering backup at all: the exposure is unbounded, exported as +Inf.
        let e = s.rpo_exposure_seconds.unwrap_or(f64::INFINITY);
        reg.set("drctl_rpo_exposure_seconds", &[("job", &s.job)], e);
        if let Some(t) = s.rpo_target_seconds {
            reg.set("drctl_rpo_target_seconds", &[("job", &s.job)], t);
        }
        if let Some(t) = s.rto_target_seconds {
            reg.set("drctl_rto_target_seconds", &[("job", &s.job)], t);
        }
        match (&s.rto_measured, s.rto_target_seconds) {
            (Some(m), _) => reg.set("drctl_rto_measured_seconds", &[("job", &s.job)], m.seconds),
            (None, Some(_)) => reg.set(
                "drctl_rto_measured_seconds",
                &[("job", &s.job)],
                f64::INFINITY,
            ),
            (None, None) => {}
        }
        if let Some(e) = s.rto_estimated_seconds {
            reg.set("drctl_rto_estimated_seconds", &[("job", &s.job)], e);
        }
        if let Some(secs) = s.last_restore_test_seconds {
            reg.set(
                "drctl_restore_test_duration_seconds",
                &[("job", &s.job)],
                secs,
            );
        }
    }
}

/// Push `reg` to a Pushgateway as the group `job=<job>` (POST: metrics of the same names in
/// the group are replaced, others kept). The `job` label comes from the grouping key, so it
/// is left out of the body, as the Pushgateway requires; with `honor_labels: true` Prometheus
/// sees the same series the daemon exports.
pub async fn push(url: &str, job: &str, reg: &Registry) -> crate::Result<()> {
    let target = format!(
        "{}/metrics/job/{}",
        url.trim_end_matches('/'),
        crate::source::http::seg(job)
    );
    let resp = reqwest::Client::new()
        .post(&target)
        .header("content-type", "text/plain; version=0.0.4")
        .body(reg.render(Some("job")))
        .timeout(std::time::Duration::from_secs(15))
        .send()
        .await
        .map_err(|e| crate::Error::failed(format!("Pushgateway {url}: {e}")))?;
    if !resp.status().is_success() {
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        return Err(crate::Error::failed(format!(
            "Pushgateway {url} answered {status}: {}",
            body.trim()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_text_format_with_help_type_and_escaped_labels() {
        let r = Registry::default();
        r.set("drctl_backup_duration_seconds", &[("job", "a\"b")], 1.5);
        r.add("drctl_backup_failures_total", &[("job", "x")], 1.0);
        r.add("drctl_backup_failures_total", &[("job", "x")], 1.0);
        r.set("drctl_backup_bytes", &[("kind", "raw"), ("job", "x")], 10.0);
        let text = r.render(None);
        assert!(text.contains("# TYPE drctl_backup_failures_total counter\ndrctl_backup_failures_total{job=\"x\"} 2\n"), "{text}");
        assert!(
            text.contains("drctl_backup_duration_seconds{job=\"a\\\"b\"} 1.5\n"),
            "{text}"
        );
        assert!(
            text.contains("drctl_backup_bytes{job=\"x\",kind=\"raw\"} 10\n"),
            "{text}"
        );
        let pushed = r.render(Some("job"));
        assert!(
            pushed.contains("drctl_backup_bytes{kind=\"raw\"} 10\n"),
            "{pushed}"
        );
        assert!(
            pushed.contains("drctl_backup_failures_total 2\n"),
            "{pushed}"
        );
    }
}
