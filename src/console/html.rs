//! The page as HTML: server-rendered, inline CSS and SVG, no script and no external
//! resource (an air-gapped cluster reads it as is). It reflows to one column on a phone:
//! cards in an auto-fit grid, ids that may break anywhere, charts scaled to their card.
//! Every job's card carries `data-job`, `data-rpo` and `data-rto`, and every chart
//! `data-chart`, so tests (and scripts) can read the page's verdicts without scraping text.

use super::svg::{bars, Point, Unit};
use super::{DrillView, JobView, Page, CHART_POINTS};
use crate::drill::measure::fmt_secs;
use crate::status::RtoState;
use chrono::{DateTime, Utc};
use std::fmt::Write;

/// Text as HTML (element content and quoted attribute values).
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const STYLE: &str = "\
*{box-sizing:border-box}\
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;padding:12px;max-width:1200px;color:#1f2328;background:#f6f8fa}\
h1{font-size:20px;margin:4px 0}h2{font-size:17px;margin:0 0 6px}h3{font-size:15px;margin:10px 0 4px}\
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,440px),1fr));gap:12px;margin:12px 0}\
section.card{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:12px;min-width:0}\
section.card.breached{border-color:#cf222e;border-width:2px}\
.badge{display:inline-block;padding:0 8px;border-radius:10px;font-size:13px;font-weight:600;margin:0 4px 4px 0;max-width:100%;overflow-wrap:anywhere}\
.ok{background:#dafbe1;color:#116329}.bad{background:#ffebe9;color:#a40e26}.warn{background:#fff8c5;color:#7d4e00}.plain{background:#eaeef2;color:#424a53}\
.banner{padding:8px 12px;border-radius:6px;margin:8px 0}\
dl{display:grid;grid-template-columns:minmax(0,9em) minmax(0,1fr);gap:2px 8px;margin:6px 0}dt{color:#59636e}dd{margin:0;min-width:0}\
.id{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:13px;overflow-wrap:anywhere}\
table{border-collapse:collapse;width:100%;font-size:13px;table-layout:fixed}th,td{padding:2px 4px;text-align:left;vertical-align:top;overflow-wrap:anywhere}th{color:#59636e;font-weight:600}\
tr+tr td{border-top:1px solid #eaeef2}\
figure.chart{margin:8px 0}figcaption{font-size:13px;color:#59636e}\
svg{display:block;width:100%;height:110px;background:#fbfcfd;border:1px solid #eaeef2;border-radius:4px}\
svg .axis{font-size:11px;fill:#59636e}svg .mark.ok{fill:#2da44e}svg .mark.bad{fill:#cf222e}svg .mark.plain{fill:#0969da}svg .mark.none{fill:#8c959f}\
.muted{color:#59636e;font-size:13px;margin:2px 0}footer{color:#59636e;font-size:13px;margin:16px 0}";

/// The whole page. `refresh`: seconds between reloads (the daemon's page), none for a file.
pub fn render(page: &Page, refresh: Option<u32>) -> String {
    let mut o = String::new();
    o.push_str("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">");
    o.push_str("<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">");
    if let Some(r) = refresh {
        let _ = write!(o, "<meta http-equiv=\"refresh\" content=\"{r}\">");
    }
    let _ = write!(
        o,
        "<title>drctl status</title><style>{STYLE}</style></head><body><header><h1>drctl — recovery status</h1><p class=\"muted\">Read {} · history from the {} · {} job(s)</p>",
        when(page.generated_at),
        page.history_source,
        page.jobs.len()
    );
    summary(&mut o, page);
    o.push_str("</header><main>");
    o.push_str("<h2>Jobs</h2><div class=\"cards\">");
    for j in &page.jobs {
        job(&mut o, j, page.generated_at);
    }
    o.push_str("</div>");
    if !page.drills.is_empty() {
        o.push_str("<h2>Drills</h2><div class=\"cards\">");
        for d in &page.drills {
            drill(&mut o, d, page.generated_at);
        }
        o.push_str("</div>");
    }
    next_runs(&mut o, page);
    o.push_str("</main>");
    let _ = write!(
        o,
        "<footer>drctl {} · the repository is the system of record; this page is a reading of it.</footer></body></html>",
        env!("CARGO_PKG_VERSION")
    );
    o
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn ago(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    let s = (now - t).num_seconds();
    if s < 0 {
        format!("in {}", fmt_secs(-s as f64))
    } else {
        format!("{} ago", fmt_secs(s as f64))
    }
}

fn summary(o: &mut String, page: &Page) {
    let rpo = page.jobs.iter().filter(|j| j.status.rpo_breached).count();
    let rto = page.jobs.iter().filter(|j| j.status.rto_breached).count();
    let overdue = page
        .drills
        .iter()
        .filter(|d| d.due.as_ref().is_some_and(|d| d.overdue))
        .count();
    o.push_str("<p>");
    for (n, what) in [
        (rpo, "RPO breached"),
        (rto, "RTO breached or not measured"),
        (overdue, "drill(s) overdue"),
    ] {
        let class = if n == 0 { "ok" } else { "bad" };
        let _ = write!(o, "<span class=\"badge {class}\">{n} {what}</span>");
    }
    o.push_str("</p>");
    if !page.unreadable_regions.is_empty() {
        let _ = write!(
            o,
            "<p class=\"banner bad\" data-unreadable=\"{}\">Could not be read: region(s) {}. The figures below leave them out.</p>",
            esc(&page.unreadable_regions.join(",")),
            esc(&page.unreadable_regions.join(", "))
        );
    }
}

fn badge(o: &mut String, class: &str, text: &str) {
    let _ = write!(o, "<span class=\"badge {class}\">{}</span>", esc(text));
}

fn job(o: &mut String, j: &JobView, now: DateTime<Utc>) {
    let s = &j.status;
    let rpo = match (s.rpo_target_seconds, s.rpo_breached) {
        (None, _) => "no_target",
        (Some(_), true) => "breached",
        (Some(_), false) => "met",
    };
    let rto = match s.rto_state {
        RtoState::NoTarget => "no_target",
        RtoState::Met => "met",
        RtoState::Breached => "breached",
        RtoState::NotMeasured => "not_measured",
    };
    let breached = s.rpo_breached || s.rto_breached;
    let _ = write!(
        o,
        "<section class=\"card job{}\" id=\"job-{id}\" data-job=\"{id}\" data-rpo=\"{rpo}\" data-rto=\"{rto}\"><h2>{id}</h2><p>",
        if breached { " breached" } else { "" },
        id = esc(&s.job)
    );
    match rpo {
        "breached" => badge(o, "bad", "RPO BREACHED"),
        "met" => badge(o, "ok", "RPO met"),
        _ => badge(o, "plain", "no RPO target"),
    }
    match s.rto_state {
        RtoState::Breached => badge(o, "bad", "RTO BREACHED"),
        RtoState::NotMeasured => badge(o, "bad", "RTO NOT MEASURED"),
        RtoState::Met => badge(o, "ok", "RTO met"),
        RtoState::NoTarget => badge(o, "plain", "no RTO target"),
    }
    if s.rto_note.is_some() {
        badge(o, "warn", "RTO measured on a smaller backup");
    }
    o.push_str("</p><dl>");
    let dd = |o: &mut String, k: &str, v: String| {
        let _ = write!(o, "<dt>{}</dt><dd>{v}</dd>", esc(k));
    };
    let id = |x: &Option<String>| {
        x.as_deref().map_or("none".to_string(), |v| {
            format!("<span class=\"id\">{}</span>", esc(v))
        })
    };
    dd(o, "Newest", id(&s.newest_complete));
    dd(o, "Newest verified", id(&s.newest_verified));
    let exposure = s
        .rpo_exposure_seconds
        .map_or("unbounded (no backup counts)".to_string(), fmt_secs);
    let target = |t: Option<f64>| t.map_or("none".to_string(), fmt_secs);
    dd(
        o,
        "RPO exposure",
        format!(
            "{} · target {}",
            esc(&exposure),
            esc(&target(s.rpo_target_seconds))
        ),
    );
    let measured = match &s.rto_measured {
        Some(m) => format!(
            "{} by {} on <span class=\"id\">{}</span>, {}",
            esc(&fmt_secs(m.seconds)),
            esc(&m.by),
            esc(&m.backup),
            esc(&ago(now, m.finished_at))
        ),
        None => "not measured".into(),
    };
    dd(
        o,
        "RTO (restore)",
        format!("{measured} · target {}", esc(&target(s.rto_target_seconds))),
    );
    if let Some(n) = &s.rto_note {
        dd(o, "Note", esc(n));
    }
    let copies: Vec<String> = s
        .newest_copies
        .iter()
        .map(|(r, held)| {
            format!(
                "<span class=\"badge {}\">{}: {}</span>",
                if *held { "ok" } else { "bad" },
                esc(r),
                if *held { "held" } else { "missing" }
            )
        })
        .collect();
    dd(o, "Copies (newest)", copies.join(""));
    o.push_str("</dl>");
    let rows = tail(&j.history, CHART_POINTS);
    let more = if j.history.len() > rows.len() {
        format!(" (newest {} of {})", rows.len(), j.history.len())
    } else {
        String::new()
    };
    let size: Vec<Point> = rows
        .iter()
        .map(|r| Point {
            label: r.id.clone(),
            value: Some(r.raw_bytes as f64),
            met: None,
        })
        .collect();
    o.push_str(&bars(
        &format!("{}-size", s.job),
        &format!("Backup size (source bytes) per backup{more}"),
        &size,
        Unit::Bytes,
        None,
    ));
    let dur: Vec<Point> = rows
        .iter()
        .map(|r| Point {
            label: r.id.clone(),
            value: Some(r.duration_seconds),
            met: None,
        })
        .collect();
    o.push_str(&bars(
        &format!("{}-duration", s.job),
        &format!("Backup duration per backup{more}"),
        &dur,
        Unit::Seconds,
        None,
    ));
    verifications(o, j);
    o.push_str("</section>");
}

fn tail<T>(v: &[T], n: usize) -> &[T] {
    &v[v.len().saturating_sub(n)..]
}

fn verifications(o: &mut String, j: &JobView) {
    let verified: Vec<_> = j
        .history
        .iter()
        .filter_map(|r| r.verification.as_ref().map(|v| (r, v)))
        .collect();
    o.push_str("<h3>Verifications</h3>");
    if verified.is_empty() {
        o.push_str("<p class=\"muted\">no backup of this job was ever verified</p>");
        return;
    }
    o.push_str("<table><thead><tr><th style=\"width:42%\">Backup</th><th>Level</th><th>Result</th><th>Restore</th></tr></thead><tbody>");
    for (r, v) in verified.iter().rev().take(10) {
        let _ = write!(
            o,
            "<tr data-verification=\"{}\"><td class=\"id\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if v.passed { "passed" } else { "failed" },
            esc(&r.id),
            esc(&v.level),
            if v.passed {
                "<span class=\"badge ok\">passed</span>"
            } else {
                "<span class=\"badge bad\">FAILED</span>"
            },
            v.restore_seconds.map_or("-".into(), |s| esc(&fmt_secs(s)))
        );
    }
    o.push_str("</tbody></table>");
    if verified.len() > 10 {
        let _ = write!(o, "<p class=\"muted\">newest 10 of {}</p>", verified.len());
    }
}

fn drill(o: &mut String, d: &DrillView, now: DateTime<Utc>) {
    let overdue = d.due.as_ref().is_some_and(|d| d.overdue);
    let _ = write!(
        o,
        "<section class=\"card drill{}\" data-playbook=\"{p}\" data-overdue=\"{overdue}\"><h2>{p}</h2>",
        if overdue { " breached" } else { "" },
        p = esc(&d.playbook)
    );
    if !d.title.is_empty() && d.title != d.playbook {
        let _ = write!(o, "<p class=\"muted\">{}</p>", esc(&d.title));
    }
    o.push_str("<p>");
    if let Some(last) = d.runs.last() {
        if last.passed {
            badge(o, "ok", "last run passed");
        } else {
            badge(o, "bad", "last run FAILED");
        }
    } else {
        badge(o, "plain", "never run");
    }
    if let Some(due) = &d.due {
        let text = match due.at {
            Some(at) if due.overdue => format!("OVERDUE since {} ({})", when(at), due.from),
            Some(at) => format!("next due {} ({})", ago(now, at), due.from),
            None => format!("OVERDUE: no passed run ({})", due.from),
        };
        badge(o, if due.overdue { "bad" } else { "plain" }, &text);
    }
    o.push_str("</p>");
    let runs = tail(&d.runs, CHART_POINTS);
    for (what, pick) in [
        (
            "rto",
            (|r: &super::DrillRun| &r.rto) as fn(&super::DrillRun) -> &crate::drill::record::Metric,
        ),
        ("rpo", |r: &super::DrillRun| &r.rpo),
    ] {
        let points: Vec<Point> = runs
            .iter()
            .map(|r| Point {
                label: format!(
                    "{}{}",
                    r.run_id,
                    if r.rehearsal { " (rehearsal)" } else { "" }
                ),
                value: pick(r).seconds,
                met: pick(r).met,
            })
            .collect();
        let target = runs.last().and_then(|r| pick(r).target_seconds);
        o.push_str(&bars(
            &format!("{}-{what}", d.playbook),
            &format!("{} per run", what.to_uppercase()),
            &points,
            Unit::Seconds,
            target,
        ));
    }
    o.push_str("</section>");
}

fn next_runs(o: &mut String, page: &Page) {
    o.push_str("<h2>Next scheduled runs</h2>");
    if page.next_runs.is_empty() {
        o.push_str("<p class=\"muted\">no job has a schedule</p>");
        return;
    }
    o.push_str(
        "<section class=\"card\"><table><thead><tr><th>Task</th><th>When</th></tr></thead><tbody>",
    );
    for r in page.next_runs.iter().take(20) {
        let _ = write!(
            o,
            "<tr><td class=\"id\">{}</td><td>{} ({})</td></tr>",
            esc(&r.task),
            when(r.at),
            ago(page.generated_at, r.at)
        );
    }
    o.push_str("</tbody></table></section>");
}
