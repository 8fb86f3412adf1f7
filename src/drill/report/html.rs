//! The HTML report: one self-contained page (inline CSS and SVG, no scripts, no fetches), so
//! it can be attached to a ticket or opened from the repository years later.
//!
//! The timeline has one bar per step on a shared time axis, coloured by owner, with marks
//! for the fault and recovery instants and the RTO target as a line.

use super::super::measure::{describe, fmt_secs};
use super::super::record::{Phase, RunRecord, Status, StepRecord};
use std::collections::BTreeMap;
use std::fmt::Write;

const PALETTE: &[&str] = &[
    "#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#bab0ac",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// At most `n` characters, with an ellipsis when cut.
fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

fn secs_since(r: &RunRecord, t: chrono::DateTime<chrono::Utc>) -> f64 {
    (t - r.started_at).num_milliseconds() as f64 / 1000.0
}

/// A tick step giving 4–10 ticks over `span` seconds.
fn tick_step(span: f64) -> f64 {
    for s in [
        0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0,
        600.0, 900.0, 1800.0, 3600.0, 7200.0,
    ] {
        if span / s <= 10.0 {
            return s;
        }
    }
    span / 8.0
}

pub fn html(r: &RunRecord) -> String {
    let steps: Vec<&StepRecord> = r.steps.iter().collect();
    let mut owners: BTreeMap<&str, &str> = BTreeMap::new();
    for s in &steps {
        let n = owners.len();
        owners
            .entry(s.owner.as_str())
            .or_insert(PALETTE[n % PALETTE.len()]);
    }
    let fault = r.fault_at.map(|t| secs_since(r, t));
    let recovered = r.recovered_at.map(|t| secs_since(r, t));
    let rto_line = match (fault, r.rto.target_seconds) {
        (Some(f), Some(t)) => Some(f + t),
        _ => None,
    };
    let end = secs_since(r, r.finished_at).max(0.1);
    // The axis covers the run, and the RTO target when it is near enough to be drawn without
    // squashing every bar into a sliver; otherwise the target is noted at the right edge.
    let target_on_scale = rto_line.is_some_and(|t| t <= end * 3.0);
    let span = if target_on_scale {
        end.max(rto_line.unwrap_or(0.0))
    } else {
        end
    } * 1.04;

    let (label_w, chart_w, row_h, top) = (300.0, 620.0, 28.0, 40.0);
    let height = top + row_h * steps.len() as f64 + 30.0;
    let x = |t: f64| label_w + (t / span) * chart_w;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{height}" viewBox="0 0 {w} {height}" role="img" aria-label="timeline">"#,
        w = label_w + chart_w + 20.0
    );
    let _ = write!(
        svg,
        r##"<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="3" height="6" fill="#c0392b" fill-opacity="0.55"/></pattern></defs>"##
    );
    // Time axis.
    let step = tick_step(span);
    let mut t = 0.0;
    while t <= span {
        let px = x(t);
        let _ = write!(
            svg,
            r##"<line x1="{px:.1}" y1="{y0}" x2="{px:.1}" y2="{y1}" stroke="#e3e3e3"/><text x="{px:.1}" y="{ty}" class="tick">{}</text>"##,
            fmt_secs(t),
            y0 = top - 6.0,
            y1 = height - 24.0,
            ty = top - 12.0
        );
        t += step;
    }
    for (i, s) in steps.iter().enumerate() {
        let y = top + row_h * i as f64;
        if i % 2 == 1 {
            let _ = write!(
                svg,
                r##"<rect x="0" y="{y}" width="{w}" height="{row_h}" fill="#f7f7f9"/>"##,
                w = label_w + chart_w + 20.0
            );
        }
        let prefix = if s.phase == Phase::Rollback {
            "↩ "
        } else {
            ""
        };
        let label = short(&format!("{prefix}{} — {}", s.id, s.name), 40);
        let _ = write!(
            svg,
            r#"<text x="8" y="{:.1}" class="label">{}</text>"#,
            y + row_h * 0.65,
            esc(&label)
        );
        let color = owners.get(s.owner.as_str()).copied().unwrap_or("#888");
        match (s.started_at, s.finished_at) {
            (Some(a), Some(b)) => {
                let (x0, x1) = (x(secs_since(r, a)), x(secs_since(r, b)));
                let w = (x1 - x0).max(2.0);
                let _ = write!(
                    svg,
                    r#"<rect x="{x0:.1}" y="{:.1}" width="{w:.1}" height="{:.1}" rx="3" fill="{color}"><title>{}</title></rect>"#,
                    y + 5.0,
                    row_h - 10.0,
                    esc(&format!(
                        "{} ({}) {} in {}{}",
                        s.id,
                        s.owner,
                        s.status.as_str(),
                        s.seconds().map(fmt_secs).unwrap_or_default(),
                        s.error
                            .as_deref()
                            .map(|e| format!(": {e}"))
                            .unwrap_or_default()
                    ))
                );
                if !s.status.ok() {
                    let _ = write!(
                        svg,
                        r##"<rect x="{x0:.1}" y="{:.1}" width="{w:.1}" height="{:.1}" rx="3" fill="url(#hatch)" stroke="#c0392b" stroke-width="1.5"/>"##,
                        y + 5.0,
                        row_h - 10.0
                    );
                }
                let _ = write!(
                    svg,
                    r#"<text x="{:.1}" y="{:.1}" class="dur">{}{}</text>"#,
                    x0 + w + 4.0,
                    y + row_h * 0.65,
                    s.seconds().map(fmt_secs).unwrap_or_default(),
                    if s.status.ok() {
                        String::new()
                    } else {
                        format!(" {}", s.status.as_str())
                    }
                );
            }
            _ => {
                let _ = write!(
                    svg,
                    r#"<text x="{:.1}" y="{:.1}" class="dur">{}</text>"#,
                    label_w + 4.0,
                    y + row_h * 0.65,
                    s.status.as_str()
                );
            }
        }
    }
    // Fault label to the left of its line, recovery to the right, so close marks stay legible.
    let marks = [
        (fault, "#c0392b", "fault".to_string(), "6 3", "end", -4.0),
        (
            recovered,
            "#27ae60",
            "recovered".to_string(),
            "0",
            "start",
            4.0,
        ),
        (
            rto_line.filter(|_| target_on_scale),
            "#e67e22",
            "RTO target".to_string(),
            "2 3",
            "end",
            -4.0,
        ),
    ];
    for (at, color, name, dash, anchor, dx) in marks.iter() {
        if let Some(t) = at {
            let px = x(*t);
            // Near the right edge a label goes on the left of its line, to stay visible.
            let (anchor, dx) = if px + 70.0 > label_w + chart_w {
                ("end", -4.0)
            } else {
                (*anchor, *dx)
            };
            let _ = write!(
                svg,
                r#"<line x1="{px:.1}" y1="{}" x2="{px:.1}" y2="{}" stroke="{color}" stroke-width="2" stroke-dasharray="{dash}"/><text x="{:.1}" y="{}" class="mark" fill="{color}" text-anchor="{anchor}">{name}</text>"#,
                top - 4.0,
                height - 22.0,
                px + dx,
                height - 8.0
            );
        }
    }
    if let (Some(t), false) = (r.rto.target_seconds, target_on_scale) {
        let _ = write!(
            svg,
            r##"<text x="{:.1}" y="14" class="mark" fill="#e67e22" text-anchor="end">RTO target {} (beyond this scale)</text>"##,
            label_w + chart_w,
            fmt_secs(t)
        );
    }
    svg.push_str("</svg>");

    let mut legend = String::new();
    for (o, c) in &owners {
        let _ = write!(
            legend,
            r#"<span class="chip"><i style="background:{c}"></i>{}</span>"#,
            esc(o)
        );
    }

    let verdict = match (r.passed, r.rehearsal) {
        (true, true) => {
            r#"<span class="na">REHEARSAL — RTO not measured (steps confirmed by --yes)</span>"#
        }
        (false, true) => {
            r#"<span class="bad">REHEARSAL — FAILED (RTO not measured: steps confirmed by --yes)</span>"#
        }
        (true, false) => r#"<span class="ok">PASSED</span>"#,
        (false, false) => r#"<span class="bad">FAILED</span>"#,
    };
    let metric = |name: &str, m: &super::super::record::Metric| {
        let cls = match m.met {
            Some(true) => "ok",
            Some(false) => "bad",
            None => "na",
        };
        format!(
            r#"<div class="metric {cls}"><b>{}</b><small>{}</small></div>"#,
            esc(&describe(name, m)),
            esc(&m.note)
        )
    };
    let mut rows = String::new();
    for s in &steps {
        let cls = match s.status {
            Status::Passed => "ok",
            Status::Skipped | Status::NotRun | Status::Automatic => "na",
            _ => "bad",
        };
        let detail = s.error.clone().unwrap_or_else(|| s.output.clone());
        let _ = write!(rows, "<tr><td>{}{}</td><td><code>{}</code> {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{cls}\">{}</td><td class=\"detail\">{}</td></tr>",
            if s.phase == Phase::Rollback { "↩ " } else { "" },
            s.started_at.map(|t| format!("+{}", fmt_secs(secs_since(r, t)))).unwrap_or_else(|| "—".into()),
            esc(&s.id), esc(&s.name), esc(&s.owner), esc(&s.kind),
            s.seconds().map(fmt_secs).unwrap_or_else(|| "—".into()), fmt_secs(s.timeout_seconds),
            if s.confirmed_by_flag { "passed — confirmed by --yes, not by a person" } else { s.status.as_str() },
            esc(&super::super::steps::excerpt(&detail, 600)));
    }
    let failures: String = r
        .failures
        .iter()
        .map(|f| format!("<li>{}</li>", esc(f)))
        .collect();
    let title = super::title(r);
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>DR drill {title_e} · {run}</title>
<style>
body{{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Noto Sans CJK SC",sans-serif;color:#222;margin:24px auto;max-width:980px;padding:0 16px}}
h1{{font-size:22px;margin:0 0 4px}} h2{{font-size:16px;margin:22px 0 8px}}
.meta{{color:#555}} .ok{{color:#1e7e34;font-weight:600}} .bad{{color:#c0392b;font-weight:600}} .na{{color:#777}}
.metrics{{display:flex;gap:12px;margin:14px 0}} .metric{{flex:1;border:1px solid #ddd;border-radius:6px;padding:10px 12px}}
.metric b{{display:block;font-size:15px}} .metric small{{color:#666}} .metric.ok{{border-left:5px solid #27ae60}} .metric.bad{{border-left:5px solid #c0392b}} .metric.na{{border-left:5px solid #aaa}}
svg{{display:block;border:1px solid #e5e5e5;border-radius:6px;background:#fff;max-width:100%;height:auto}}
svg .label{{font-size:12px;fill:#222}} svg .tick{{font-size:10px;fill:#888;text-anchor:middle}} svg .dur{{font-size:11px;fill:#444}} svg .mark{{font-size:11px;font-weight:600}}
.legend{{margin:8px 0}} .chip{{display:inline-flex;align-items:center;margin-right:14px}} .chip i{{width:12px;height:12px;border-radius:2px;margin-right:5px;display:inline-block}}
table{{border-collapse:collapse;width:100%;font-size:13px}} th,td{{border-bottom:1px solid #eee;padding:5px 6px;text-align:left;vertical-align:top}} th{{background:#fafafa}}
td.detail{{font-family:ui-monospace,monospace;font-size:12px;white-space:pre-wrap;word-break:break-word;max-width:320px}}
.failures li{{color:#c0392b}}
</style></head><body>
<h1>DR drill: {title_e} — {verdict}</h1>
<div class="meta">{desc}</div>{metadata}
<div class="meta">Run <code>{run}</code> on {host} · started {start} · took {took} · drctl {ver} · {source}</div>
<div class="metrics">{rto}{rpo}</div>
{failures_block}
<h2>Timeline</h2>
<div class="legend">{legend}<span class="chip" style="color:#c0392b">┆ fault</span><span class="chip" style="color:#27ae60">│ recovered</span><span class="chip" style="color:#e67e22">┊ RTO target</span></div>
{svg}
<h2>Steps</h2>
<table><thead><tr><th>start</th><th>step</th><th>owner</th><th>kind</th><th>took</th><th>timeout</th><th>status</th><th>detail</th></tr></thead><tbody>{rows}</tbody></table>
</body></html>
"#,
        title_e = esc(&title),
        run = esc(&r.run_id),
        desc = esc(&r.description),
        metadata = if r.metadata.is_empty() {
            String::new()
        } else {
            format!(
                r#"<div class="meta">{}</div>"#,
                r.metadata
                    .iter()
                    .map(|(k, v)| format!("{}: {}", esc(k), esc(v)))
                    .collect::<Vec<_>>()
                    .join(" · ")
            )
        },
        host = esc(&r.host),
        start = r.started_at.to_rfc3339(),
        took = fmt_secs(end),
        ver = esc(&r.drctl_version),
        source = esc(&r.source),
        rto = metric("RTO", &r.rto),
        rpo = metric("RPO", &r.rpo),
        failures_block = if failures.is_empty() {
            String::new()
        } else {
            format!(r#"<h2>What failed</h2><ul class="failures">{failures}</ul>"#)
        },
    )
}
