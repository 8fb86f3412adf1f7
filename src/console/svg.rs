//! Inline SVG bar charts: one `.mark` per point (a run, a backup), in order, scaled to the
//! largest value or the target, with the target as a dashed line. No script: a hover title
//! per mark carries the exact figure.

use super::html::esc;
use std::fmt::Write;

pub struct Point {
    /// What the mark is (a backup id, a run id), shown on hover.
    pub label: String,
    /// None: not measured, drawn as a stub on the baseline (never as 0).
    pub value: Option<f64>,
    /// Whether the point met its target (None: no target or not measured).
    pub met: Option<bool>,
}

#[derive(Clone, Copy)]
pub enum Unit {
    Bytes,
    Seconds,
}

impl Unit {
    fn show(self, v: f64) -> String {
        match self {
            Unit::Bytes => crate::commands::human_bytes(v.max(0.0) as u64),
            Unit::Seconds => crate::drill::measure::fmt_secs(v),
        }
    }
}

const W: f64 = 600.0;
const H: f64 = 150.0;
const TOP: f64 = 18.0;
const BOTTOM: f64 = 8.0;

/// A bar chart `id` of `points`, oldest left.
pub fn bars(id: &str, caption: &str, points: &[Point], unit: Unit, target: Option<f64>) -> String {
    let mut out = String::new();
    let max = points
        .iter()
        .filter_map(|p| p.value)
        .chain(target)
        .fold(0.0_f64, f64::max);
    let scale = if max > 0.0 { max * 1.1 } else { 1.0 };
    let plot = H - TOP - BOTTOM;
    let y = |v: f64| TOP + plot - (v / scale) * plot;
    let _ = write!(
        out,
        r#"<figure class="chart"><figcaption>{}</figcaption><svg data-chart="{}" viewBox="0 0 {W} {H}" role="img" aria-label="{}" preserveAspectRatio="none">"#,
        esc(caption),
        esc(id),
        esc(caption)
    );
    let _ = write!(
        out,
        r##"<line x1="0" y1="{b}" x2="{W}" y2="{b}" stroke="#8c959f" stroke-width="1"/><text x="2" y="12" class="axis">{}</text>"##,
        esc(&unit.show(scale)),
        b = TOP + plot
    );
    let n = points.len().max(1) as f64;
    let slot = W / n;
    let bar = (slot * 0.7).clamp(1.0, 40.0);
    for (i, p) in points.iter().enumerate() {
        let x = i as f64 * slot + (slot - bar) / 2.0;
        let (top, h, class, text) = match p.value {
            Some(v) => {
                let top = y(v).min(TOP + plot - 1.0);
                let class = match p.met {
                    Some(true) => "ok",
                    Some(false) => "bad",
                    None => "plain",
                };
                (top, TOP + plot - top, class, unit.show(v))
            }
            None => (TOP + plot - 3.0, 3.0, "none", "not measured".to_string()),
        };
        let _ = write!(
            out,
            r#"<rect class="mark {class}" x="{x:.1}" y="{top:.1}" width="{bar:.1}" height="{h:.1}"><title>{}: {}</title></rect>"#,
            esc(&p.label),
            esc(&text)
        );
    }
    if let Some(t) = target {
        let ty = y(t);
        let _ = write!(
            out,
            r##"<line class="target" x1="0" y1="{ty:.1}" x2="{W}" y2="{ty:.1}" stroke="#b42318" stroke-dasharray="6 4" stroke-width="1.5"/><text x="{tx}" y="{ly:.1}" class="axis" text-anchor="end">target {}</text>"##,
            esc(&unit.show(t)),
            tx = W - 2.0,
            ly = (ty - 3.0).max(10.0)
        );
    }
    out.push_str("</svg>");
    if points.is_empty() {
        out.push_str(r#"<p class="muted">nothing recorded yet</p>"#);
    }
    out.push_str("</figure>");
    out
}
