//! Config tree → `ConfigSpec`, one piece at a time: each region, each job, each job's
//! `source` (through the source registry), each notifier, the scheduler and the top-level
//! values are deserialized on their own, so one mistake does not hide the next, and every
//! problem is placed at the `file:line:column` of the value it is about, with its field path.

use super::daemon::{NotifierSpec, SchedulerSpec};
use super::spec::{CatalogSpec, ConfigSpec, DrillsSpec, EncryptionSpec, JobSpec, RegionSpec, Skip};
use crate::error::Error;
use crate::yamltree;
use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};
use marked_yaml::Node;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

/// One thing wrong with a config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub column: usize,
    /// Field path, e.g. `jobs[2].retention`; empty for the document itself.
    pub field: String,
    pub message: String,
}

/// Every problem found, in file order.
#[derive(Debug, Default)]
pub struct Problems {
    pub list: Vec<Problem>,
}

impl Problems {
    pub fn push(
        &mut self,
        (line, column): (usize, usize),
        field: &str,
        message: impl Into<String>,
    ) {
        self.list.push(Problem {
            line,
            column,
            field: field.to_string(),
            message: message.into(),
        });
    }

    /// One error naming every problem, one per line: `file:line:column: field: message`.
    pub fn into_error(mut self, path: &Path) -> Error {
        self.list.sort_by_key(|p| (p.line, p.column));
        self.list.dedup();
        let lines: Vec<String> = self
            .list
            .iter()
            .map(|p| {
                let field = if p.field.is_empty() {
                    String::new()
                } else {
                    format!("{}: ", p.field)
                };
                format!(
                    "{}:{}:{}: {field}{}",
                    path.display(),
                    p.line,
                    p.column,
                    crate::yamlscan::clip_quoted(&p.message, 80)
                )
            })
            .collect();
        Error::usage(lines.join("\n"))
            .hint("fix the config and check it with `drctl config validate`")
    }
}

const TOP: &[&str] = &[
    "regions",
    "min_copies",
    "lease_ttl",
    "jobs",
    "scheduler",
    "notifications",
    "encryption",
    "catalog",
    "drills",
];

/// The top-level values that are not lists of pieces.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Top {
    #[serde(default)]
    min_copies: Option<usize>,
    #[serde(default, with = "humantime_serde")]
    lease_ttl: Option<Duration>,
}

/// What parsed, with each item's index in the file (items that failed are left out, and
/// their problems recorded), so cross-field checks still run on the rest and name the right
/// `jobs[i]`.
pub struct Parsed {
    pub spec: ConfigSpec,
    pub region_at: Vec<usize>,
    pub job_at: Vec<usize>,
    pub notification_at: Vec<usize>,
    /// Every piece parsed: checks over whole lists (min_copies, the region count) apply.
    pub complete: bool,
}

/// Deserialize every piece that parses; record the problem of every one that does not.
pub fn parse(root: &Node, p: &mut Problems) -> Option<Parsed> {
    let Some(map) = root.as_mapping() else {
        p.push(
            (1, 1),
            "",
            "a config is a mapping of fields (regions, min_copies, jobs, …)",
        );
        return None;
    };
    let before = p.list.len();
    for (k, _) in map.iter() {
        if !TOP.contains(&k.as_str()) {
            p.push(start_of(k), "", unknown_field(k.as_str(), TOP));
        }
    }
    let mut top = MarkedMappingNode::new_empty(*map.span());
    for (k, v) in map.iter() {
        if matches!(k.as_str(), "min_copies" | "lease_ttl") {
            top.insert(k.clone(), v.clone());
        }
    }
    let top: Top = piece(&Node::from(top), "", p).unwrap_or(Top {
        min_copies: None,
        lease_ttl: None,
    });
    let (regions, region_at) = list(map, "regions", true, p, |n, f, p| {
        piece::<RegionSpec>(n, f, p)
    });
    let (jobs, job_at) = list(map, "jobs", true, p, job);
    let scheduler = match map.get_node("scheduler") {
        Some(n) => piece::<SchedulerSpec>(n, "scheduler", p).unwrap_or_default(),
        None => SchedulerSpec::default(),
    };
    let (notifications, notification_at) = list(map, "notifications", false, p, |n, f, p| {
        piece::<NotifierSpec>(n, f, p)
    });
    let encryption = map
        .get_node("encryption")
        .and_then(|n| piece::<EncryptionSpec>(n, "encryption", p));
    let catalog = map
        .get_node("catalog")
        .and_then(|n| piece::<CatalogSpec>(n, "catalog", p));
    let drills = map
        .get_node("drills")
        .and_then(|n| piece::<DrillsSpec>(n, "drills", p));
    Some(Parsed {
        spec: ConfigSpec {
            regions,
            min_copies: top.min_copies,
            lease_ttl: top.lease_ttl,
            jobs,
            scheduler,
            notifications,
            encryption,
            catalog,
            drills,
        },
        region_at,
        job_at,
        notification_at,
        complete: p.list.len() == before,
    })
}

/// A list of pieces: every item is tried, whatever the others did. Returns what parsed and
/// each one's index in the file.
fn list<T>(
    map: &MarkedMappingNode,
    key: &str,
    required: bool,
    p: &mut Problems,
    item: impl Fn(&Node, &str, &mut Problems) -> Option<T>,
) -> (Vec<T>, Vec<usize>) {
    let (mut out, mut at) = (Vec::new(), Vec::new());
    let Some(node) = map.get_node(key) else {
        if required {
            p.push((1, 1), "", format!("missing field `{key}`"));
        }
        return (out, at);
    };
    let Some(seq) = node.as_sequence() else {
        p.push(
            yamltree::start(node),
            key,
            format!("invalid type: {}, expected a sequence", what(node)),
        );
        return (out, at);
    };
    for (i, n) in seq.iter().enumerate() {
        if let Some(v) = item(n, &format!("{key}[{i}]"), p) {
            out.push(v);
            at.push(i);
        }
    }
    (out, at)
}

/// A job: its fields, then its `source` through the registry.
fn job(node: &Node, field: &str, p: &mut Problems) -> Option<JobSpec> {
    let Some(m) = node.as_mapping() else {
        p.push(
            yamltree::start(node),
            field,
            format!("invalid type: {}, expected a job (a mapping)", what(node)),
        );
        return None;
    };
    // The first pass reads `source` as anything; the registry reads it properly below.
    let mut fields = m.clone();
    let key = MarkedScalarNode::new(*m.span(), "source");
    let had_source = fields.get_node("source").is_some();
    fields.insert(key, Node::from(MarkedScalarNode::new(*m.span(), "")));
    let spec = piece::<JobSpec<Skip>>(&Node::from(fields), field, p);
    if !had_source {
        p.push(yamltree::start(node), field, "missing field `source`");
        return None;
    }
    let source = source(m.get_node("source")?, &format!("{field}.source"), p);
    Some(spec?.with_source(source?))
}

fn source(node: &Node, field: &str, p: &mut Problems) -> Option<crate::source::SourceSpec> {
    let Some(m) = node.as_mapping() else {
        p.push(
            yamltree::start(node),
            field,
            format!(
                "invalid type: {}, expected a mapping with a `kind`",
                what(node)
            ),
        );
        return None;
    };
    let names: Vec<&str> = crate::source::kinds().iter().map(|(n, _)| *n).collect();
    let Some(kind) = m.get_node("kind") else {
        p.push(
            yamltree::start(node),
            field,
            format!("missing field `kind` (one of {})", ticked(&names)),
        );
        return None;
    };
    let name = kind.as_scalar().map_or("", |s| s.as_str());
    let mut rest = m.clone();
    rest.remove("kind");
    match crate::source::parse_source(name, &Node::from(rest)) {
        Some(Ok(spec)) => Some(spec),
        Some(Err(e)) => {
            report(node, field, &e, e.path(), p);
            None
        }
        None => {
            p.push(
                yamltree::start(kind),
                &format!("{field}.kind"),
                format!(
                    "unknown variant `{name}`, expected one of {}",
                    ticked(&names)
                ),
            );
            None
        }
    }
}

/// Deserialize one piece, recording its problem at the value it is about.
fn piece<T: DeserializeOwned>(node: &Node, field: &str, p: &mut Problems) -> Option<T> {
    match marked_yaml::from_node::<T>(node) {
        Ok(v) => Some(v),
        Err(e) => {
            report(node, field, &e, e.path(), p);
            None
        }
    }
}

fn report(node: &Node, field: &str, e: &marked_yaml::Error, sub: Option<&str>, p: &mut Problems) {
    use marked_yaml::Error as E;
    let at = e
        .start_mark()
        .map_or_else(|| yamltree::start(node), |m| (m.line(), m.column()));
    let path = match (field, sub) {
        (f, Some(s)) if !f.is_empty() => format!("{f}.{s}"),
        (_, Some(s)) => s.to_string(),
        (f, None) => f.to_string(),
    };
    let text = || scalar_at(node, at).unwrap_or_default();
    let message = match e {
        E::UnknownFieldError(f, expected, _) => unknown_field(f, expected),
        E::IntegerParseFailure(..) => match text().parse::<i64>() {
            Ok(i) => format!("invalid type: integer `{i}`, expected a non-negative whole number"),
            Err(_) => format!("invalid type: string {:?}, expected a whole number", text()),
        },
        E::FloatParseFailure(..) => format!("invalid type: string {:?}, expected a number", text()),
        E::NotBoolean(_) => format!("invalid type: string {:?}, expected true or false", text()),
        other => other.to_string(),
    };
    // An unknown field is reported at the mapping that holds it: the path names the mapping.
    let path = match e {
        E::UnknownFieldError(f, ..) => path
            .strip_suffix(&format!(".{f}"))
            .map_or(path.clone(), str::to_string),
        _ => path,
    };
    p.push(at, &path, message);
}

/// The text of the scalar that starts at `at`, anywhere under `node`.
fn scalar_at(node: &Node, at: (usize, usize)) -> Option<String> {
    match node {
        Node::Scalar(s) => (start_of(s) == at).then(|| s.as_str().to_string()),
        Node::Mapping(m) => m.iter().find_map(|(_, v)| scalar_at(v, at)),
        Node::Sequence(s) => s.iter().find_map(|v| scalar_at(v, at)),
    }
}

fn start_of(s: &MarkedScalarNode) -> (usize, usize) {
    s.span().start().map_or((1, 1), |m| (m.line(), m.column()))
}

fn what(node: &Node) -> String {
    match node {
        Node::Scalar(s) => format!("string {:?}", crate::yamlscan::clip(s.as_str(), 60)),
        Node::Mapping(_) => "map".into(),
        Node::Sequence(_) => "sequence".into(),
    }
}

fn ticked(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// serde's wording, so messages read the same for every piece.
fn unknown_field(field: &str, expected: &[&str]) -> String {
    match expected {
        [] => format!("unknown field `{field}`, there are no fields"),
        [one] => format!("unknown field `{field}`, expected `{one}`"),
        [a, b] => format!("unknown field `{field}`, expected `{a}` or `{b}`"),
        many => format!("unknown field `{field}`, expected one of {}", ticked(many)),
    }
}

#[cfg(test)]
mod tests {
    /// The loader reads each top-level field on its own: its list is the spec's, exactly.
    #[test]
    fn top_level_fields_are_the_specs() {
        let schema = super::super::schema();
        let mut spec: Vec<&str> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut ours = super::TOP.to_vec();
        spec.sort();
        ours.sort();
        assert_eq!(ours, spec);
    }
}
