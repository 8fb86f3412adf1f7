//! YAML text → a `marked_yaml::Node` tree: every node keeps the line and column it starts at,
//! so errors found while deserializing a piece, or by cross-field checks after, are placed
//! where the user wrote the value. Unlike marked-yaml's own loader this one accepts anchors
//! and aliases (an alias becomes a copy of its anchor's node, positions included): configs
//! use them, and `yamlscan::scan` has already bounded what they can expand to. Run it only on
//! text `scan` accepted.

use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode, MarkedSequenceNode};
use marked_yaml::{Marker, Node, Span};
use std::collections::HashMap;
use yaml_rust2::parser::{Event, Parser};

enum Open {
    Map {
        node: MarkedMappingNode,
        key: Option<MarkedScalarNode>,
        anchor: usize,
    },
    Seq {
        span: Span,
        items: Vec<Node>,
        anchor: usize,
    },
}

fn marker(m: yaml_rust2::scanner::Marker) -> Marker {
    Marker::new(0, m.index(), m.line().max(1), m.col() + 1)
}

/// Build the tree. Errors (which `scan` would have reported first) come back as text with
/// their line and column.
pub fn tree(text: &str) -> Result<Node, (usize, usize, String)> {
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Open> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut root = None;
    loop {
        let (ev, mark) = parser.next_token().map_err(|e| {
            let m = marker(*e.marker());
            (
                m.line(),
                m.column(),
                format!("not valid YAML: {}", e.info()),
            )
        })?;
        let at = marker(mark);
        let done = match ev {
            Event::StreamEnd => break,
            Event::Scalar(value, _, anchor, _) => {
                let s = MarkedScalarNode::new(Span::new_start(at), value);
                if let Some(Open::Map {
                    key: key @ None,
                    node,
                    ..
                }) = stack.last_mut()
                {
                    // A block mapping's start event is marked after its first key: the
                    // mapping starts where its first key does.
                    if node.is_empty()
                        && node
                            .span()
                            .start()
                            .is_none_or(|m| m.character() > at.character())
                    {
                        *node.span_mut() = Span::new_start(at);
                    }
                    *key = Some(s);
                    continue;
                }
                Some((Node::from(s), anchor))
            }
            Event::Alias(id) => anchors.get(&id).cloned().map(|n| (n, 0)),
            Event::MappingStart(anchor, _) => {
                let node = MarkedMappingNode::new_empty(Span::new_start(at));
                stack.push(Open::Map {
                    node,
                    key: None,
                    anchor,
                });
                None
            }
            Event::SequenceStart(anchor, _) => {
                stack.push(Open::Seq {
                    span: Span::new_start(at),
                    items: Vec::new(),
                    anchor,
                });
                None
            }
            Event::MappingEnd | Event::SequenceEnd => match stack.pop() {
                Some(Open::Map { node, anchor, .. }) => Some((Node::from(node), anchor)),
                Some(Open::Seq {
                    span,
                    items,
                    anchor,
                }) => Some((Node::from(MarkedSequenceNode::new(span, items)), anchor)),
                None => None,
            },
            _ => None,
        };
        let Some((node, anchor)) = done else { continue };
        if anchor > 0 {
            anchors.insert(anchor, node.clone());
        }
        match stack.last_mut() {
            None => root = Some(node),
            Some(Open::Seq { items, .. }) => items.push(node),
            Some(Open::Map { node: map, key, .. }) => {
                if let Some(k) = key.take() {
                    map.insert(k, node);
                }
            }
        }
    }
    root.ok_or((1, 1, "the file is empty".to_string()))
}

/// Where a node starts, as (line, column).
pub fn start(node: &Node) -> (usize, usize) {
    node.span()
        .start()
        .map_or((1, 1), |m| (m.line(), m.column()))
}

/// The node at a field path (`jobs[2].verify.level`), and where it starts; for a mapping
/// field, the key's position (where the user looks for it). The nearest ancestor's when the
/// path does not exist.
pub fn find(root: &Node, path: &str) -> (usize, usize) {
    let mut node = root;
    let mut at = start(root);
    for seg in segments(path) {
        let next = match seg {
            Seg::Key(k) => node.as_mapping().and_then(|m| {
                m.iter()
                    .find(|(key, _)| key.as_str() == k)
                    .map(|(key, v)| (key.span().start().map(|s| (s.line(), s.column())), v))
            }),
            Seg::Index(i) => node
                .as_sequence()
                .and_then(|s| s.get(i))
                .map(|v| (v.span().start().map(|s| (s.line(), s.column())), v)),
        };
        match next {
            Some((pos, v)) => {
                at = pos.unwrap_or(at);
                node = v;
            }
            None => break,
        }
    }
    at
}

enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

fn segments(path: &str) -> Vec<Seg<'_>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (name, rest) = part.split_once('[').unwrap_or((part, ""));
        if !name.is_empty() {
            out.push(Seg::Key(name));
        }
        for idx in rest.split('[') {
            if let Ok(i) = idx.trim_end_matches(']').parse() {
                out.push(Seg::Index(i));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_survive_flow_style_comments_and_aliases() {
        let text = "# top\nbase: &b { keep_last: 3 }\njobs:\n  - name: a   # first\n    retention: *b\n  - { name: b, retention: {} }\n";
        let root = tree(text).unwrap();
        assert_eq!(find(&root, "jobs[0].name"), (4, 5));
        assert_eq!(find(&root, "jobs[1].retention"), (6, 16));
        assert_eq!(find(&root, "jobs[0].retention"), (5, 5));
        // The alias is a copy of the anchored node.
        let r = root.as_mapping().unwrap().get_node("jobs").unwrap();
        let first = r
            .as_sequence()
            .unwrap()
            .first()
            .unwrap()
            .as_mapping()
            .unwrap();
        let kept = first.get_node("retention").unwrap().as_mapping().unwrap();
        assert_eq!(kept.get_scalar("keep_last").unwrap().as_str(), "3");
        // A path that does not exist stops at its nearest ancestor.
        assert_eq!(find(&root, "jobs[1].verify.level"), (6, 5));

        let t = "regions:\n  - name: a\n    kind: fs\njobs:\n  - { name: x, verify: { level: restore } }\n";
        let root = tree(t).unwrap();
        assert_eq!(find(&root, "regions[0].kind"), (3, 5));
        assert_eq!(find(&root, "jobs[0].verify.level"), (5, 26));
        assert_eq!(find(&root, "jobs[0].verify.scratch"), (5, 16));
    }
}
