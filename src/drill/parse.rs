//! Playbook text → validated `Playbook`. Pure (it reads environment variables only to check
//! that `${VAR}` references resolve, as the config does). Every problem is collected, not just
//! the first, each with `file:line:column` and the step id, so `drill validate` shows them all.
//!
//! Two shapes are accepted: the native one (`steps:`) and the checklist teams already keep
//! (`scenarios:` with steps keyed 1, 2, 3… of `{action, owner, timeout}`), whose steps become
//! manual steps unless they name a `kind`.

use super::plan::{Guard, Item, OnFailure, Playbook, Step, Targets};
use super::steps;
use super::vars::{self, Ref};
use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};
use marked_yaml::{LoaderOptions, Node, Span};
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::time::Duration;

/// One thing wrong with a playbook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub column: usize,
    pub step: Option<String>,
    pub message: String,
}

/// Every problem found, rendered one per line as `file:line:column: step `id`: message`.
#[derive(Debug)]
pub struct Problems {
    pub file: String,
    pub list: Vec<Problem>,
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.list.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}:{}:{}: ", self.file, p.line, p.column)?;
            if let Some(s) = &p.step {
                write!(f, "step `{s}`: ")?;
            }
            write!(f, "{}", p.message)?;
        }
        Ok(())
    }
}

/// What the command line adds: the scenario to pick, and `--var` values.
#[derive(Debug, Default, Clone)]
pub struct Options {
    pub scenario: Option<String>,
    pub vars: Vec<(String, String)>,
}

const COMMON: &[&str] = &[
    "id",
    "name",
    "owner",
    "timeout",
    "retries",
    "backoff",
    "until_success",
    "on_failure",
    "fault",
    "recovered",
    "rpo_probe",
    "kind",
];

fn pos(span: &Span) -> (usize, usize) {
    span.start()
        .map(|m| (m.line(), m.column()))
        .unwrap_or((1, 1))
}

pub(super) struct Parser {
    pub(super) problems: Vec<Problem>,
}

impl Parser {
    pub(super) fn problem(&mut self, span: &Span, step: Option<&str>, message: impl Into<String>) {
        let (line, column) = pos(span);
        self.problems.push(Problem {
            line,
            column,
            step: step.map(str::to_string),
            message: message.into(),
        });
    }

    pub(super) fn unknown_keys(
        &mut self,
        m: &MarkedMappingNode,
        allowed: &[&str],
        step: Option<&str>,
        what: &str,
    ) {
        for k in m.keys() {
            if !allowed.contains(&k.as_str()) {
                self.problem(
                    k.span(),
                    step,
                    format!(
                        "unknown field `{}` in {what}; expected one of: {}",
                        k.as_str(),
                        allowed.join(", ")
                    ),
                );
            }
        }
    }

    fn string(&mut self, m: &MarkedMappingNode, key: &str, step: Option<&str>) -> Option<String> {
        match m.get_node(key) {
            None => None,
            Some(Node::Scalar(s)) => Some(s.as_str().to_string()),
            Some(n) => {
                self.problem(n.span(), step, format!("`{key}` must be a string"));
                None
            }
        }
    }

    fn duration(
        &mut self,
        m: &MarkedMappingNode,
        key: &str,
        step: Option<&str>,
    ) -> Option<Duration> {
        self.duration_from(m, key, step, false)
    }

    /// A duration; with `zero_ok`, 0 is a value too (a step's `timeout: 0`).
    fn duration_from(
        &mut self,
        m: &MarkedMappingNode,
        key: &str,
        step: Option<&str>,
        zero_ok: bool,
    ) -> Option<Duration> {
        let n = m.get_node(key)?;
        let text = match n {
            Node::Scalar(s) => s.as_str().to_string(),
            _ => String::new(),
        };
        match humantime::parse_duration(text.trim()) {
            Ok(d) if zero_ok || !d.is_zero() => Some(d),
            Ok(_) => {
                self.problem(n.span(), step, format!("`{key}` must be more than 0"));
                None
            }
            Err(e) => {
                self.problem(
                    n.span(),
                    step,
                    format!("`{key}`: {text:?} is not a duration ({e}); write e.g. 90s, 5m, 30min, 1h30m"),
                );
                None
            }
        }
    }

    fn boolean(&mut self, m: &MarkedMappingNode, key: &str, step: Option<&str>) -> bool {
        match m.get_node(key) {
            None => false,
            Some(Node::Scalar(s)) => match s.as_bool() {
                Some(b) => b,
                None => {
                    self.problem(s.span(), step, format!("`{key}` must be true or false"));
                    false
                }
            },
            Some(n) => {
                self.problem(n.span(), step, format!("`{key}` must be true or false"));
                false
            }
        }
    }

    fn number(&mut self, m: &MarkedMappingNode, key: &str, step: Option<&str>) -> Option<u32> {
        let n = m.get_node(key)?;
        match n
            .as_scalar()
            .and_then(|s| s.as_str().trim().parse::<u32>().ok())
        {
            Some(v) => Some(v),
            None => {
                self.problem(n.span(), step, format!("`{key}` must be a whole number"));
                None
            }
        }
    }

    /// One step mapping → a Step (or nothing, with problems recorded).
    fn step(&mut self, node: &Node) -> Option<Step> {
        let Some(m) = node.as_mapping() else {
            self.problem(
                node.span(),
                None,
                "a step must be a mapping with at least id, owner, timeout and kind",
            );
            return None;
        };
        let id = self.string(m, "id", None);
        let sid = id.as_deref();
        let Some(id) = id.clone() else {
            self.problem(m.span(), None, "a step needs an `id`");
            return None;
        };
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
        {
            self.problem(
                m.get_node("id").map(|n| n.span()).unwrap_or(m.span()),
                sid,
                "`id` may hold only letters, digits, `-` and `_`",
            );
        }
        let owner = self.string(m, "owner", sid);
        if owner.as_deref().map(str::trim).unwrap_or("").is_empty() {
            self.problem(
                m.span(),
                sid,
                "a step needs an `owner` (who acts: a team or a role)",
            );
        }
        // `timeout: 0` (a checklist's automatic step, e.g. owner System: a circuit breaker
        // that opens by itself) means the step happens by itself: recorded, not waited for.
        let timeout = self.duration_from(m, "timeout", sid, true);
        if m.get_node("timeout").is_none() {
            self.problem(
                m.span(),
                sid,
                "a step needs a `timeout` (e.g. 5m): drills must not hang",
            );
        }
        let retries = self.number(m, "retries", sid).unwrap_or(0);
        let backoff = self
            .duration(m, "backoff", sid)
            .unwrap_or(Duration::from_secs(1));
        let until_success = match m.get_node("until_success") {
            None => None,
            Some(Node::Mapping(u)) => {
                self.unknown_keys(u, &["every"], sid, "until_success");
                Some(
                    self.duration(u, "every", sid)
                        .unwrap_or(Duration::from_secs(1)),
                )
            }
            Some(n) => {
                self.problem(
                    n.span(),
                    sid,
                    "`until_success` is a mapping, e.g. { every: 1s }",
                );
                None
            }
        };
        if until_success.is_some() && m.get_node("retries").is_some() {
            self.problem(
                m.span(),
                sid,
                "`until_success` polls until the timeout; `retries` cannot be combined with it",
            );
        }
        let on_failure = match self.string(m, "on_failure", sid).as_deref() {
            None | Some("abort") => OnFailure::Abort,
            Some("continue") => OnFailure::Continue,
            Some(other) => {
                let span = m
                    .get_node("on_failure")
                    .map(|n| *n.span())
                    .unwrap_or_else(|| *m.span());
                self.problem(
                    &span,
                    sid,
                    format!("`on_failure: {other}`: use abort or continue"),
                );
                OnFailure::Abort
            }
        };
        let fault = self.boolean(m, "fault", sid);
        let recovered = self.boolean(m, "recovered", sid);
        let rpo_probe = self.boolean(m, "rpo_probe", sid);

        let kind_name = self.string(m, "kind", sid);
        let Some(kind_name) = kind_name else {
            self.problem(
                m.span(),
                sid,
                format!(
                    "a step needs a `kind`: one of {}",
                    steps::names().join(", ")
                ),
            );
            return None;
        };
        let Some(reg) = steps::kind(&kind_name) else {
            let span = m
                .get_node("kind")
                .map(|n| *n.span())
                .unwrap_or_else(|| *m.span());
            self.problem(
                &span,
                sid,
                format!(
                    "unknown kind `{kind_name}`; known kinds: {}",
                    steps::names().join(", ")
                ),
            );
            return None;
        };
        let mut rest = m.clone();
        for k in COMMON {
            rest.remove(*k);
        }
        if timeout.is_some_and(|t| t.is_zero()) && kind_name != "manual" {
            self.problem(
                m.get_node("timeout").map(|n| n.span()).unwrap_or(m.span()),
                sid,
                format!("`timeout: 0` means the step happens by itself, which only a manual step can; give this {kind_name} step a real timeout (e.g. 5m)"),
            );
        }
        let rest = Node::from(rest);
        let kind = match steps::build(reg, &rest) {
            Ok(k) => k,
            Err(e) => {
                let mut span = e
                    .start_mark()
                    .map(Span::new_start)
                    .unwrap_or_else(|| *m.span());
                if let marked_yaml::Error::UnknownFieldError(field, _, _) = &*e {
                    if let Some((k, _)) = m.iter().find(|(k, _)| k.as_str() == field) {
                        span = *k.span();
                    }
                }
                let msg = (*e).to_string();
                self.problem(&span, sid, format!("{kind_name} step: {msg}"));
                return None;
            }
        };
        if let Err(msg) = kind.check() {
            self.problem(m.span(), sid, format!("{kind_name} step: {msg}"));
        }
        Some(Step {
            name: self.string(m, "name", sid).unwrap_or_else(|| id.clone()),
            id,
            owner: owner.unwrap_or_default(),
            timeout: timeout.unwrap_or(Duration::from_secs(60)),
            retries,
            backoff,
            until_success,
            on_failure,
            fault,
            recovered,
            rpo_probe,
            kind_name,
            kind,
            line: pos(m.span()).0,
        })
    }

    fn item(&mut self, node: &Node) -> Option<(Item, Vec<Node>)> {
        if let Some(m) = node.as_mapping() {
            if let Some(children) = m.get_node("parallel") {
                let gid = self
                    .string(m, "id", None)
                    .unwrap_or_else(|| format!("parallel-{}", pos(m.span()).0));
                self.unknown_keys(
                    m,
                    &["id", "name", "parallel"],
                    Some(&gid),
                    "a parallel group",
                );
                let Some(seq) = children.as_sequence() else {
                    self.problem(children.span(), Some(&gid), "`parallel` is a list of steps");
                    return None;
                };
                if seq.is_empty() {
                    self.problem(
                        children.span(),
                        Some(&gid),
                        "`parallel` is empty: a group runs at least one step (remove it, or list its steps)",
                    );
                    return None;
                }
                let mut steps = Vec::new();
                let mut nodes = Vec::new();
                for c in seq.iter() {
                    if c.as_mapping()
                        .and_then(|cm| cm.get_node("parallel"))
                        .is_some()
                    {
                        self.problem(c.span(), Some(&gid), "parallel groups cannot be nested");
                        continue;
                    }
                    if let Some(s) = self.step(c) {
                        steps.push(s);
                        nodes.push(c.clone());
                    }
                }
                let name = self
                    .string(m, "name", Some(&gid))
                    .unwrap_or_else(|| gid.clone());
                return Some((
                    Item::Parallel {
                        id: gid,
                        name,
                        steps,
                    },
                    nodes,
                ));
            }
        }
        self.step(node).map(|s| (Item::Step(s), vec![node.clone()]))
    }

    fn steps_list(
        &mut self,
        node: Option<&Node>,
        what: &str,
        top: &MarkedMappingNode,
    ) -> (Vec<Item>, Vec<Vec<Node>>) {
        let Some(node) = node else {
            self.problem(
                top.span(),
                None,
                format!("the playbook needs `{what}:` (a list of steps)"),
            );
            return (vec![], vec![]);
        };
        let Some(seq) = node.as_sequence() else {
            self.problem(node.span(), None, format!("`{what}` is a list of steps"));
            return (vec![], vec![]);
        };
        seq.iter().filter_map(|n| self.item(n)).unzip()
    }
}

/// Every scalar string under `node`, with its span.
fn strings<'a>(node: &'a Node, out: &mut Vec<&'a MarkedScalarNode>) {
    match node {
        Node::Scalar(s) => out.push(s),
        Node::Sequence(q) => q.iter().for_each(|n| strings(n, out)),
        Node::Mapping(m) => m.values().for_each(|n| strings(n, out)),
    }
}

/// Parse and validate playbook text. `file` names it in messages; `stem` is its name when
/// it does not give one.
pub fn parse(file: &str, text: &str, stem: &str, opts: &Options) -> Result<Playbook, Problems> {
    let fail = |list: Vec<Problem>| Problems {
        file: file.to_string(),
        list,
    };
    let root = load(text).map_err(|list| fail(vec![list]))?;
    let top = root.as_mapping().expect("load returns a mapping");
    let mut p = Parser {
        problems: Vec::new(),
    };

    let (top, scenario, metadata) = if top.get_node("scenarios").is_some() {
        match super::checklist::native(&mut p, top, opts) {
            Some(x) => x,
            None => return Err(fail(p.problems)),
        }
    } else {
        p.unknown_keys(
            top,
            &[
                "name",
                "description",
                "targets",
                "vars",
                "steps",
                "rollback",
                "guard",
            ],
            None,
            "a playbook",
        );
        (top.clone(), None, BTreeMap::new())
    };

    let title = p
        .string(&top, "name", None)
        .unwrap_or_else(|| stem.to_string());
    // A checklist's name is the team's title ("Region Failure — Shanghai"); its evidence
    // folder is a slug of it. A native playbook's name must already be one.
    let name = if scenario.is_some() {
        slug(&title)
    } else {
        title.clone()
    };
    if scenario.is_none()
        && (name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)))
    {
        let span = top
            .get_node("name")
            .map(|n| *n.span())
            .unwrap_or_else(|| *top.span());
        p.problem(&span, None, format!("name {name:?} may hold only ASCII letters, digits, `-`, `_` and `.` (it names the evidence folder)"));
    }
    let description = p.string(&top, "description", None).unwrap_or_default();
    let targets = targets(&mut p, &top);
    let vars = variables(&mut p, &top, opts);

    let (items, item_nodes) = p.steps_list(top.get_node("steps"), "steps", &top);
    let (rollback_items, rollback_nodes) = match top.get_node("rollback") {
        None => (vec![], vec![]),
        n => p.steps_list(n, "rollback", &top),
    };
    let mut rollback = Vec::new();
    let mut rollback_pairs = Vec::new();
    for (it, nodes) in rollback_items.into_iter().zip(rollback_nodes) {
        match it {
            Item::Step(s) => {
                rollback_pairs.push((s.clone(), nodes[0].clone()));
                rollback.push(s);
            }
            Item::Parallel { id, .. } => p.problems.push(Problem {
                line: 1,
                column: 1,
                step: Some(id),
                message: "rollback steps run in order; `parallel` is not allowed there".into(),
            }),
        }
    }
    let guard = top.get_node("guard").and_then(|g| guard(&mut p, g));

    duplicate_ids(&mut p, &top);

    cross_check(
        &mut p,
        &CrossCheck {
            top: &top,
            vars: &vars,
            items: &items,
            item_nodes: &item_nodes,
            rollback: &rollback_pairs,
            guard: guard.as_ref(),
        },
    );
    if items.is_empty() && p.problems.is_empty() {
        p.problem(top.span(), None, "the playbook has no steps");
    }
    if !p.problems.is_empty() {
        p.problems.sort_by_key(|x| (x.line, x.column));
        p.problems.dedup();
        return Err(fail(p.problems));
    }
    Ok(Playbook {
        name,
        title,
        metadata,
        scenario,
        description,
        source: file.to_string(),
        targets,
        vars,
        items,
        rollback,
        guard,
    })
}

/// `targets: { rto, rpo }`.
fn targets(p: &mut Parser, top: &MarkedMappingNode) -> Targets {
    let mut targets = Targets::default();
    match top.get_node("targets") {
        None => {}
        Some(Node::Mapping(t)) => {
            p.unknown_keys(t, &["rto", "rpo"], None, "targets");
            targets.rto = p.duration(t, "rto", None);
            targets.rpo = p.duration(t, "rpo", None);
        }
        Some(n) => p.problem(
            n.span(),
            None,
            "`targets` is a mapping, e.g. { rto: 20m, rpo: 1m }",
        ),
    }
    targets
}

/// `vars:` (strings; a default may come from the environment as `${VAR}`), then `--var`.
fn variables(p: &mut Parser, top: &MarkedMappingNode, opts: &Options) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    match top.get_node("vars") {
        None => {}
        Some(Node::Mapping(v)) => {
            for (k, n) in v.iter() {
                match n {
                    Node::Scalar(s) => {
                        vars.insert(k.as_str().to_string(), s.as_str().to_string());
                    }
                    _ => p.problem(
                        n.span(),
                        None,
                        format!("variable `{}` must be a string", k.as_str()),
                    ),
                }
            }
        }
        Some(n) => p.problem(n.span(), None, "`vars` is a mapping of names to strings"),
    }
    // A playbook variable may take its default from the environment (`${VAR}`), as the
    // config does; `--var` overrides it without needing that variable.
    if let Some(Node::Mapping(v)) = top.get_node("vars") {
        for (k, n) in v.iter() {
            let (Some(s), false) = (
                n.as_scalar(),
                opts.vars.iter().any(|(o, _)| o == k.as_str()),
            ) else {
                continue;
            };
            match vars::scan(s.as_str()) {
                Err(e) => p.problem(s.span(), None, format!("variable `{}`: {e}", k.as_str())),
                Ok(refs) if refs.is_empty() => {}
                Ok(_) => match (vars::Scope::default()).expand(s.as_str()) {
                    Ok(x) => {
                        vars.insert(k.as_str().to_string(), x);
                    }
                    Err(e) => p.problem(s.span(), None, format!("variable `{}`: {e} (variables take only environment variables; or pass --var {}=VALUE)", k.as_str(), k.as_str())),
                },
            }
        }
    }
    for (k, v) in &opts.vars {
        vars.insert(k.clone(), v.clone());
    }
    vars
}

/// Text → the playbook's top-level mapping: bounds and duplicate keys (`yamlscan`), then the
/// marked tree. The first problem ends it: nothing else can be placed in a broken file.
fn load(text: &str) -> Result<Node, Problem> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let expect = crate::yamlscan::Expect {
        what: "a playbook",
        fields: "name, targets, steps, … or scenarios",
    };
    if let Err(e) = crate::yamlscan::scan(text, &crate::yamlscan::LIMITS, &expect) {
        return Err(Problem {
            line: e.line,
            column: e.column,
            step: None,
            message: e.message,
        });
    }
    let root = marked_yaml::parse_yaml_with_options(
        0,
        text,
        LoaderOptions::default().error_on_duplicate_keys(true),
    )
    .map_err(|e| {
        let (line, column) = match &e {
            marked_yaml::LoadError::TopLevelMustBeMapping(m)
            | marked_yaml::LoadError::UnexpectedAnchor(m)
            | marked_yaml::LoadError::MappingKeyMustBeScalar(m)
            | marked_yaml::LoadError::UnexpectedTag(m)
            | marked_yaml::LoadError::ScanError(m, _) => (m.line(), m.column()),
            marked_yaml::LoadError::DuplicateKey(d) => pos(d.key.span()),
            _ => (1, 1),
        };
        let msg = e.to_string();
        let msg = msg
            .split_once(": ")
            .map(|(_, m)| m.to_string())
            .filter(|_| !matches!(e, marked_yaml::LoadError::DuplicateKey(_)))
            .unwrap_or(msg);
        Problem {
            line,
            column,
            step: None,
            message: format!("not valid playbook YAML: {msg}"),
        }
    })?;
    if root.as_mapping().is_none() {
        return Err(Problem {
            line: 1,
            column: 1,
            step: None,
            message: "a playbook is a mapping".into(),
        });
    }
    Ok(root)
}

/// Duplicate step ids, from the raw mappings so a step that failed to parse still counts.
fn duplicate_ids(p: &mut Parser, top: &MarkedMappingNode) {
    let mut ids: HashSet<String> = HashSet::new();
    let mut raw: Vec<&Node> = Vec::new();
    for key in ["steps", "rollback"] {
        for n in top
            .get_node(key)
            .and_then(|n| n.as_sequence())
            .map(|q| q.iter().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            match n
                .as_mapping()
                .and_then(|m| m.get_node("parallel"))
                .and_then(|c| c.as_sequence())
            {
                Some(children) => raw.extend(children.iter()),
                None => raw.push(n),
            }
        }
    }
    for n in raw {
        if let Some(id) = n.as_mapping().and_then(|m| m.get_scalar("id")) {
            if !ids.insert(id.as_str().to_string()) {
                p.problem(
                    id.span(),
                    Some(id.as_str()),
                    format!("duplicate step id `{}`", id.as_str()),
                );
            }
        }
    }
}

/// What the cross-step checks look at.
struct CrossCheck<'a> {
    top: &'a MarkedMappingNode,
    vars: &'a BTreeMap<String, String>,
    items: &'a [Item],
    item_nodes: &'a [Vec<Node>],
    rollback: &'a [(Step, Node)],
    guard: Option<&'a Guard>,
}

/// Cross-step checks, in execution order: references to variables and to earlier steps'
/// outputs (declared by each kind in the step registry), one fault instant, recovery after
/// the fault, no fault or recovery in rollback.
fn cross_check(p: &mut Parser, c: &CrossCheck) {
    let CrossCheck {
        top,
        vars,
        items,
        item_nodes,
        rollback: rollback_pairs,
        guard,
    } = c;
    let mut before: BTreeMap<String, String> = BTreeMap::new();
    let mut fault_seen: Option<String> = None;
    let known = |v: &str, vars: &BTreeMap<String, String>| {
        vars.contains_key(v) || std::env::var_os(v).is_some()
    };
    let check_refs = |p: &mut Parser,
                      step: &Step,
                      node: &Node,
                      earlier: &BTreeMap<String, String>| {
        let mut ss = Vec::new();
        if let Some(m) = node.as_mapping() {
            let mut rest = m.clone();
            for k in COMMON {
                rest.remove(*k);
            }
            for (_, n) in rest.iter() {
                strings(n, &mut ss);
            }
            // `strings` borrowed from `rest`; scan here while it lives.
            for s in ss.drain(..) {
                match vars::scan(s.as_str()) {
                    Err(e) => p.problem(s.span(), Some(&step.id), e),
                    Ok(refs) => {
                        for r in refs {
                            match r {
                                Ref::Var(v) if !known(&v, vars) => p.problem(
                                    s.span(),
                                    Some(&step.id),
                                    format!("undefined variable `${{{v}}}`: define it under `vars:`, pass --var {v}=VALUE, or set it in the environment"),
                                ),
                                Ref::Step { id, output } => {
                                    let outputs = earlier.get(&id).and_then(|k| steps::kind(k)).map(|r| r.outputs);
                                    match outputs {
                                        None => p.problem(s.span(), Some(&step.id), format!("`${{steps.{id}.{output}}}`: no step `{id}` runs before this one")),
                                        Some(o) if !o.contains(&output.as_str()) => {
                                            let kind = &earlier[&id];
                                            let has = if o.is_empty() { "none".to_string() } else { o.join(", ") };
                                            p.problem(s.span(), Some(&step.id), format!("`${{steps.{id}.{output}}}`: a {kind} step has no output `{output}`; its outputs: {has}"));
                                        }
                                        Some(_) => {}
                                    }
                                }
                                _ => {}
                            }
                        }
                    }
                }
            }
        }
    };
    let mut recovered_before_fault = Vec::new();
    for (item, nodes) in items.iter().zip(item_nodes.iter()) {
        let mut group_ids = Vec::new();
        for (s, n) in item.steps().into_iter().zip(nodes) {
            if s.fault {
                if let Some(first) = &fault_seen {
                    p.problem(n.span(), Some(&s.id), format!("a second `fault: true` step (the first is `{first}`): a drill has one fault instant"));
                } else {
                    fault_seen = Some(s.id.clone());
                }
            }
            if s.recovered
                && fault_seen.is_none()
                && (s.fault || items.iter().flat_map(|i| i.steps()).any(|x| x.fault))
            {
                recovered_before_fault.push((*n.span(), s.id.clone()));
            }
            check_refs(p, s, n, &before);
            group_ids.push((s.id.clone(), s.kind_name.clone()));
        }
        before.extend(group_ids);
    }
    for (span, id) in recovered_before_fault {
        p.problem(
            &span,
            Some(&id),
            "a `recovered: true` step must come after the `fault: true` step",
        );
    }
    for (st, n) in rollback_pairs.iter() {
        if st.fault || st.recovered {
            p.problem(
                n.span(),
                Some(&st.id),
                "rollback steps cannot be marked fault or recovered",
            );
        }
        check_refs(p, st, n, &before);
    }
    if let (Some(g), Some(gnode)) = (&guard, top.get_node("guard")) {
        check_refs(p, &g.step, gnode, &BTreeMap::new());
    }
}

/// `guard: { every, failures, <a step without id/owner/timeout> }`.
fn guard(p: &mut Parser, node: &Node) -> Option<Guard> {
    let Some(m) = node.as_mapping() else {
        p.problem(
            node.span(),
            Some("guard"),
            "`guard` is a mapping: { every: 5s, failures: 3, kind: http, url: ... }",
        );
        return None;
    };
    let every = p
        .duration(m, "every", Some("guard"))
        .unwrap_or(Duration::from_secs(5));
    let failures = p.number(m, "failures", Some("guard")).unwrap_or(3).max(1);
    let mut rest = m.clone();
    rest.remove("every");
    rest.remove("failures");
    let span = *m.span();
    for (k, v) in [
        ("id", "guard".to_string()),
        ("owner", "drctl".to_string()),
        ("timeout", format!("{}ms", every.as_millis().max(1))),
    ] {
        if rest.get_node(k).is_none() {
            rest.insert(
                MarkedScalarNode::new(span, k),
                Node::from(MarkedScalarNode::new(span, v)),
            );
        }
    }
    let step = p.step(&Node::from(rest))?;
    Some(Guard {
        step,
        every,
        failures,
    })
}

/// A name fit for a folder: ASCII letters and digits kept (lowercased), every other run of
/// characters one `-`; never empty.
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let s = out.trim_matches('-').to_string();
    if s.is_empty() {
        "checklist".into()
    } else {
        s
    }
}
