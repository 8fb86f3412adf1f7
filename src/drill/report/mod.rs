//! Reports rendered from a `RunRecord`: JSON (the record itself), Markdown, and a
//! self-contained HTML page with a timeline.

mod html;

pub use html::html;

use super::measure::{describe, fmt_secs};
use super::record::{Phase, RunRecord, StepRecord};
use std::fmt::Write;

pub fn json(r: &RunRecord) -> String {
    serde_json::to_string_pretty(r).unwrap_or_default()
}

fn offset(r: &RunRecord, s: &StepRecord) -> String {
    s.started_at
        .map(|t| {
            format!(
                "+{}",
                fmt_secs((t - r.started_at).num_milliseconds() as f64 / 1000.0)
            )
        })
        .unwrap_or_else(|| "—".into())
}

pub(super) fn title(r: &RunRecord) -> String {
    let name = if r.title.is_empty() {
        &r.playbook
    } else {
        &r.title
    };
    match &r.scenario {
        Some(s) => format!("{name} — {s}"),
        None => name.clone(),
    }
}

/// The verdict and the two measures, a few lines (the text output of `drill run`).
pub fn summary(r: &RunRecord) -> String {
    let mut out = String::new();
    let verdict = match (r.passed, r.rehearsal) {
        (_, true) if r.passed => "REHEARSAL (passed; RTO not measured)",
        (_, true) => "REHEARSAL, FAILED",
        (true, false) => "PASSED",
        (false, false) => "FAILED",
    };
    let _ = writeln!(out, "drill {} run {}: {verdict}", title(r), r.run_id);
    let _ = writeln!(out, "  {}", describe("RTO", &r.rto));
    let _ = writeln!(out, "  {}", describe("RPO", &r.rpo));
    for f in &r.failures {
        let _ = writeln!(out, "  ✗ {f}");
    }
    out
}

pub fn markdown(r: &RunRecord) -> String {
    let mut md = String::new();
    let verdict = match (r.passed, r.rehearsal) {
        (true, true) => "🟡 rehearsal (steps confirmed by --yes: RTO not measured)",
        (false, true) => "❌ failed (a rehearsal: steps confirmed by --yes)",
        (true, false) => "✅ passed",
        (false, false) => "❌ failed",
    };
    let _ = writeln!(md, "# DR drill: {}\n", title(r));
    if !r.description.is_empty() {
        let _ = writeln!(md, "{}\n", r.description);
    }
    let _ = writeln!(
        md,
        "- Run: `{}` on `{}` (drctl {})",
        r.run_id, r.host, r.drctl_version
    );
    let _ = writeln!(
        md,
        "- Started {}, finished {} ({})",
        r.started_at.to_rfc3339(),
        r.finished_at.to_rfc3339(),
        fmt_secs((r.finished_at - r.started_at).num_milliseconds() as f64 / 1000.0)
    );
    let _ = writeln!(md, "- Verdict: **{verdict}**");
    for (k, v) in &r.metadata {
        let _ = writeln!(md, "- {k}: {v}");
    }
    let _ = writeln!(md, "- {}", describe("RTO", &r.rto));
    let _ = writeln!(md, "  - {}", r.rto.note);
    let _ = writeln!(md, "- {}", describe("RPO", &r.rpo));
    let _ = writeln!(md, "  - {}", r.rpo.note);
    if let Some(a) = &r.aborted {
        let _ = writeln!(md, "- Aborted: {a}");
    }
    if !r.failures.is_empty() {
        let _ = writeln!(md, "\n## What failed\n");
        for f in &r.failures {
            let _ = writeln!(md, "- {f}");
        }
    }
    for (phase, heading) in [(Phase::Main, "Steps"), (Phase::Rollback, "Rollback")] {
        let steps: Vec<&StepRecord> = r.steps.iter().filter(|s| s.phase == phase).collect();
        if steps.is_empty() {
            continue;
        }
        let _ = writeln!(md, "\n## {heading}\n");
        let _ = writeln!(
            md,
            "| # | step | owner | kind | start | took | timeout | status | detail |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|");
        for (i, s) in steps.iter().enumerate() {
            let mut marks = String::new();
            if s.fault {
                marks.push_str(" ⚡fault");
            }
            if s.recovered {
                marks.push_str(" ✔recovered");
            }
            if s.confirmed_by_flag {
                marks.push_str(" ⚑confirmed by --yes");
            }
            let detail = s.error.clone().unwrap_or_else(|| s.output.clone());
            let detail = detail.replace('|', "\\|").replace('\n', " ");
            let detail = super::steps::excerpt(&detail, 300);
            let _ = writeln!(
                md,
                "| {} | `{}` {}{marks} | {} | {} | {} | {} | {} | {} | {detail} |",
                i + 1,
                s.id,
                s.name.replace('|', "\\|"),
                s.owner,
                s.kind,
                offset(r, s),
                s.seconds().map(fmt_secs).unwrap_or_else(|| "—".into()),
                fmt_secs(s.timeout_seconds),
                s.status.as_str(),
            );
        }
    }
    md
}
