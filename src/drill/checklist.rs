//! The checklist shape teams already keep — `scenarios:`, each with steps keyed 1, 2, 3… of
//! `{action, owner, timeout}` and a `recovery_time_target` — turned into the native mapping
//! for the chosen scenario, so it goes through the same step parser and checks. A step with
//! only an action, an owner and a timeout becomes a manual step whose name is its action.

use super::parse::{Options, Parser};
use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};
use marked_yaml::Node;
use std::collections::BTreeMap;

/// The checklist shape → a native mapping for the chosen scenario.
pub(super) fn native(
    p: &mut Parser,
    top: &MarkedMappingNode,
    opts: &Options,
) -> Option<(MarkedMappingNode, Option<String>, BTreeMap<String, String>)> {
    // The file is the team's document: top-level fields drctl does not use (a version, the
    // dates of the last and next drill, an approver…) are kept and shown, never refused.
    let metadata = own_fields(top);
    let Some(list) = top.get_node("scenarios").and_then(|n| n.as_sequence()) else {
        p.problem(
            top.span(),
            None,
            "`scenarios` is a list of {name, description, steps, recovery_time_target}",
        );
        return None;
    };
    let names: Vec<String> = list
        .iter()
        .filter_map(|s| {
            s.as_mapping()?
                .get_scalar("name")
                .map(|n| n.as_str().to_string())
        })
        .collect();
    let chosen = match &opts.scenario {
        Some(want) => list.iter().find(|s| {
            s.as_mapping()
                .and_then(|m| m.get_scalar("name"))
                .map(|n| n.as_str())
                == Some(want.as_str())
        }),
        None if list.len() == 1 => list.first(),
        None => None,
    };
    let Some(sc) = chosen.and_then(|n| n.as_mapping()) else {
        let msg = match &opts.scenario {
            Some(w) => format!("no scenario named {w:?}; scenarios: {}", names.join(", ")),
            None => format!(
                "this checklist has {} scenarios: pick one with --scenario NAME ({})",
                list.len(),
                names.join(", ")
            ),
        };
        p.problem(
            top.get_node("scenarios")
                .map(|n| n.span())
                .unwrap_or(top.span()),
            None,
            msg,
        );
        return None;
    };
    p.unknown_keys(
        sc,
        &[
            "name",
            "description",
            "steps",
            "recovery_time_target",
            "recovery_point_target",
        ],
        None,
        "a scenario",
    );
    let span = *sc.span();
    let key = |k: &str| MarkedScalarNode::new(span, k);
    let mut out = MarkedMappingNode::new_empty(span);
    if let Some(n) = top.get_node("name") {
        out.insert(key("name"), n.clone());
    }
    if let Some(n) = sc.get_node("description") {
        out.insert(key("description"), n.clone());
    }
    if let Some(n) = top.get_node("vars") {
        out.insert(key("vars"), n.clone());
    }
    let mut targets = MarkedMappingNode::new_empty(span);
    if let Some(n) = sc.get_node("recovery_time_target") {
        targets.insert(key("rto"), n.clone());
    }
    if let Some(n) = sc.get_node("recovery_point_target") {
        targets.insert(key("rpo"), n.clone());
    }
    out.insert(key("targets"), Node::from(targets));
    let Some(steps) = sc.get_node("steps").and_then(|n| n.as_mapping()) else {
        p.problem(
            &span,
            None,
            "a scenario's `steps` is a mapping keyed 1, 2, 3… of {action, owner, timeout}",
        );
        return None;
    };
    let mut numbered: Vec<(u64, Node)> = Vec::new();
    for (k, v) in steps.iter() {
        let Ok(n) = k.as_str().trim().parse::<u64>() else {
            p.problem(
                k.span(),
                Some(k.as_str()),
                "checklist steps are keyed by number (1, 2, 3…)",
            );
            continue;
        };
        let Some(vm) = v.as_mapping() else {
            p.problem(
                v.span(),
                Some(k.as_str()),
                "a checklist step is a mapping {action, owner, timeout}",
            );
            continue;
        };
        let mut s = vm.clone();
        let sspan = *vm.span();
        let skey = |x: &str| MarkedScalarNode::new(sspan, x);
        s.insert(
            skey("id"),
            Node::from(MarkedScalarNode::new(*k.span(), k.as_str().trim())),
        );
        if s.get_node("kind").is_none() {
            if s.get_node("action").is_none() {
                p.problem(
                    &sspan,
                    Some(k.as_str()),
                    "a checklist step needs an `action` (or a `kind`)",
                );
            }
            s.insert(
                skey("kind"),
                Node::from(MarkedScalarNode::new(sspan, "manual")),
            );
        }
        if s.get_node("name").is_none() {
            if let Some(a) = vm.get_node("action") {
                if s.get_node("kind")
                    .and_then(|n| n.as_scalar())
                    .map(|x| x.as_str())
                    != Some("manual")
                {
                    s.remove("action");
                }
                s.insert(skey("name"), a.clone());
            }
        }
        numbered.push((n, Node::from(s)));
    }
    numbered.sort_by_key(|(n, _)| *n);
    out.insert(
        key("steps"),
        Node::from(numbered.into_iter().map(|(_, n)| n).collect::<Vec<Node>>()),
    );
    // The evidence folder is named by the file (or its `name:`); the scenario is recorded.
    let scenario = sc.get_scalar("name").map(|n| n.as_str().to_string());
    Some((out, scenario, metadata))
}

/// A metadata value as text: a scalar as written, a list or mapping in flow style.
fn render(n: &Node) -> String {
    match n {
        Node::Scalar(s) => s.as_str().to_string(),
        Node::Sequence(q) => format!("[{}]", q.iter().map(render).collect::<Vec<_>>().join(", ")),
        Node::Mapping(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}: {}", k.as_str(), render(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The next drill's due instant from a checklist's `next_drill` (a date, `2026-06-01`, or an
/// RFC 3339 instant): what `drill list` marks overdue and the daemon exports.
pub fn next_due(metadata: &BTreeMap<String, String>) -> Option<chrono::DateTime<chrono::Utc>> {
    let v = metadata.get("next_drill")?.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Some(t.with_timezone(&chrono::Utc));
    }
    chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// A checklist's top-level metadata, from its raw text (for listings of files that need a
/// `--scenario` to parse in full). Empty for native playbooks.
pub fn metadata_of(text: &str) -> BTreeMap<String, String> {
    let Ok(root) = marked_yaml::parse_yaml(0, text.trim_start_matches('\u{feff}')) else {
        return BTreeMap::new();
    };
    let Some(top) = root.as_mapping() else {
        return BTreeMap::new();
    };
    if top.get_node("scenarios").is_none() {
        return BTreeMap::new();
    }
    own_fields(top)
}

/// The top-level fields of a checklist that drctl does not use, rendered as text.
fn own_fields(top: &MarkedMappingNode) -> BTreeMap<String, String> {
    top.iter()
        .filter(|(k, _)| !["scenarios", "name", "description", "vars"].contains(&k.as_str()))
        .map(|(k, v)| (k.as_str().to_string(), render(v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_drill_reads_dates_and_instants() {
        let m = |v: &str| BTreeMap::from([("next_drill".to_string(), v.to_string())]);
        assert_eq!(
            next_due(&m("2026-06-01")).unwrap().to_rfc3339(),
            "2026-06-01T00:00:00+00:00"
        );
        assert!(next_due(&m("2026-06-01T08:00:00Z")).is_some());
        assert!(next_due(&m("soon")).is_none());
    }
}
