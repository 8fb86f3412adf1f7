//! What ships for monitoring: the alert rules (checked and unit-tested by `promtool` from
//! Debian's `prometheus`), the PrometheusRule that must say the same, and the Grafana
//! dashboard — every expression parses and names only metrics drctl exports, every runbook
//! link lands on a heading of docs/operations.md.

use crate::common::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn promtool(args: &[&str], dir: &Path) -> String {
    let o = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool (Debian `prometheus`, installed by scripts/deps.sh)");
    let out = format!("{}{}", stdout(&o), stderr(&o));
    assert!(o.status.success(), "promtool {args:?}:\n{out}");
    out
}

/// Every `drctl_…` metric name in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("drctl_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

fn assert_exported(names: &BTreeSet<String>, what: &str) {
    assert!(!names.is_empty(), "{what} names no drctl metric");
    for n in names {
        assert!(
            drctl::metrics::FAMILIES.iter().any(|f| f.0 == n),
            "{what} uses {n}, which drctl does not export"
        );
    }
}

/// GitHub's anchor for a markdown heading.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == ' ' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn the_alert_rules_pass_promtool_check_and_their_unit_tests() {
    let dir = repo("deploy/prometheus");
    let out = promtool(&["check", "rules", "alerts.yaml"], &dir);
    assert!(out.contains("SUCCESS: 7 rules found"), "{out}");
    let out = promtool(&["test", "rules", "alerts.test.yaml"], &dir);
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn the_prometheusrule_says_what_alerts_yaml_says_and_every_runbook_link_lands() {
    let plain: serde_norway::Value =
        serde_norway::from_str(&read("deploy/prometheus/alerts.yaml")).unwrap();
    let crd: serde_norway::Value =
        serde_norway::from_str(&read("deploy/kubernetes/prometheusrule.yaml")).unwrap();
    assert_eq!(crd["kind"], "PrometheusRule");
    assert_eq!(crd["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(
        crd["spec"], plain,
        "prometheusrule.yaml's spec differs from alerts.yaml"
    );

    let rules = plain["groups"][0]["rules"].as_sequence().unwrap();
    let alerts: BTreeSet<&str> = rules.iter().map(|r| r["alert"].as_str().unwrap()).collect();
    for want in [
        "DrctlRpoBreached",
        "DrctlRtoBreached",
        "DrctlRtoNotMeasured",
        "DrctlBackupFailing",
        "DrctlVerificationFailing",
        "DrctlRegionUnreadable",
        "DrctlDrillOverdue",
    ] {
        assert!(alerts.contains(want), "no {want} alert");
    }
    let exprs: String = rules
        .iter()
        .map(|r| format!("{}\n", r["expr"].as_str().unwrap()))
        .collect();
    assert_exported(&metric_names(&exprs), "alerts.yaml");

    let ops = read("docs/operations.md");
    let anchors: BTreeSet<String> = ops
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|h| slug(h.trim_start_matches('#')))
        .collect();
    for r in rules {
        let url = r["annotations"]["runbook_url"].as_str().unwrap();
        let (page, anchor) = url.split_once('#').unwrap();
        assert!(page.ends_with("/docs/operations.md"), "{url}");
        assert!(
            anchors.contains(anchor),
            "{}: runbook anchor #{anchor} is no heading of docs/operations.md",
            r["alert"].as_str().unwrap()
        );
    }
}

#[test]
fn the_grafana_dashboard_queries_parse_and_name_only_exported_metrics() {
    let text = read("deploy/grafana/drctl.json");
    let dash: serde_json::Value = serde_json::from_str(&text).unwrap();
    let panels = dash["panels"].as_array().unwrap();
    let ids: BTreeSet<u64> = panels.iter().map(|p| p["id"].as_u64().unwrap()).collect();
    assert_eq!(ids.len(), panels.len(), "panel ids must be unique");
    let mut exprs = vec![];
    for p in panels.iter().filter(|p| p["type"] != "row") {
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{}", p["title"]);
        let w = &p["gridPos"];
        assert!(
            w["x"].as_u64().unwrap() + w["w"].as_u64().unwrap() <= 24,
            "{} is wider than the grid",
            p["title"]
        );
        for t in p["targets"].as_array().unwrap() {
            exprs.push(t["expr"].as_str().unwrap().replace("$job", ".*"));
        }
    }
    assert_exported(&metric_names(&exprs.join("\n")), "drctl.json");
    for need in [
        "drctl_rpo_exposure_seconds",
        "drctl_rto_measured_seconds",
        "drctl_backup_region_last_success_timestamp_seconds",
        "drctl_backup_bytes",
        "drctl_backup_duration_seconds",
        "drctl_verify_failures_total",
        "drctl_drill_next_due_timestamp_seconds",
    ] {
        assert!(
            exprs.iter().any(|e| e.contains(need)),
            "no panel shows {need}"
        );
    }

    // promtool parses PromQL only inside rule files: one recording rule per expression.
    let dir = tempdir("grafana_exprs");
    let rules: String = exprs
        .iter()
        .enumerate()
        .map(|(i, e)| format!("      - record: dashboard:expr{i}\n        expr: {e:?}\n"))
        .collect();
    std::fs::write(
        dir.join("exprs.yaml"),
        format!("groups:\n  - name: dashboard\n    rules:\n{rules}"),
    )
    .unwrap();
    let out = promtool(&["check", "rules", "exprs.yaml"], &dir);
    assert!(
        out.contains(&format!("SUCCESS: {} rules found", exprs.len())),
        "{out}"
    );
}
