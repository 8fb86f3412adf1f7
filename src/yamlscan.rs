//! The first look at a YAML file a user wrote (config or playbook), before any deserializer
//! sees it: bytes → text (a UTF-8 byte-order mark accepted, a non-UTF-8 byte placed at its
//! line and column), then one pass over the parser's events that bounds what a hostile or
//! broken file can cost.
//!
//! Why a separate pass: a deserializer bounds alias *depth*, not the *size* an alias expands
//! to, so a 1 MB file that aliases one 1 MB string 2,000 times costs 2 GB; it reports a
//! duplicate key at the mapping, not at the key that repeats. Where each field is, for
//! errors found after parsing, comes from the positioned tree (`yamltree`).

use std::collections::HashMap;
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::Marker;

/// What one file may cost. Anything past these is refused with a position, never attempted.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The file itself.
    pub max_bytes: usize,
    /// Scalar bytes after every alias is expanded.
    pub max_expanded: usize,
    /// Nesting of mappings and sequences.
    pub max_depth: usize,
}

/// Configs and playbooks are small documents; these leave them room by orders of magnitude.
pub const LIMITS: Limits = Limits {
    max_bytes: 4 << 20,
    max_expanded: 16 << 20,
    max_depth: 64,
};

/// A problem at a 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

fn problem(m: Marker, message: impl Into<String>) -> Problem {
    Problem {
        line: m.line().max(1),
        column: m.col() + 1,
        message: message.into(),
    }
}

/// Bytes → text. A leading UTF-8 BOM is dropped (editors on Windows write one); a byte that
/// is not UTF-8 is reported where it is.
pub fn decode(bytes: &[u8], limits: &Limits) -> Result<String, Problem> {
    if bytes.len() > limits.max_bytes {
        return Err(Problem {
            line: 1,
            column: 1,
            message: format!(
                "the file is {} bytes; at most {} are read (is this the right file?)",
                bytes.len(),
                limits.max_bytes
            ),
        });
    }
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(body) {
        Ok(s) => Ok(s.to_string()),
        Err(e) => {
            let good = &body[..e.valid_up_to()];
            let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
            let start = good.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let column = String::from_utf8_lossy(&good[start..]).chars().count() + 1;
            Err(Problem {
                line,
                column,
                message: format!(
                    "byte 0x{:02x} is not UTF-8: save the file as UTF-8",
                    body[e.valid_up_to()]
                ),
            })
        }
    }
}

enum Frame {
    Map {
        /// The key just read, waiting for its value; `None` while expecting a key.
        key: Option<String>,
        seen: HashMap<String, (usize, usize)>,
        size: usize,
        anchor: usize,
    },
    Seq {
        size: usize,
        anchor: usize,
    },
}

impl Frame {
    fn size(&mut self) -> &mut usize {
        match self {
            Frame::Map { size, .. } | Frame::Seq { size, .. } => size,
        }
    }
}

/// What kind of document the top level must be, for the message when it is not.
pub struct Expect {
    /// e.g. "a config" or "a playbook".
    pub what: &'static str,
    /// e.g. "regions, jobs, …".
    pub fields: &'static str,
}

/// One pass over the events: one document, a mapping at the top, no duplicate keys, bounded
/// depth and expanded size.
pub fn scan(text: &str, limits: &Limits, expect: &Expect) -> Result<(), Problem> {
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, usize> = HashMap::new();
    let mut total = 0usize;
    let mut documents = 0;
    let mut root_seen = false;
    loop {
        let (ev, mark) = parser.next_token().map_err(|e| {
            let why = match e.info() {
                "recursion limit exceeded" => {
                    format!("nested too deeply (more than {} levels)", limits.max_depth)
                }
                other => format!("not valid YAML: {other}"),
            };
            problem(*e.marker(), why)
        })?;
        let at = (mark.line().max(1), mark.col() + 1);
        let is_alias = matches!(ev, Event::Alias(_));
        match ev {
            Event::StreamEnd => break,
            Event::StreamStart | Event::Nothing | Event::DocumentEnd => {}
            Event::DocumentStart => {
                documents += 1;
                if documents > 1 {
                    return Err(problem(
                        mark,
                        format!(
                            "a second YAML document (`---`): {} is one document",
                            expect.what
                        ),
                    ));
                }
            }
            Event::Scalar(value, _, anchor, _) => {
                if !root_seen {
                    return Err(not_a_mapping(expect, mark, "a single value"));
                }
                total += value.len();
                let is_key = matches!(stack.last(), Some(Frame::Map { key: None, .. }));
                if is_key {
                    let Some(Frame::Map { key, seen, .. }) = stack.last_mut() else {
                        unreachable!()
                    };
                    if let Some((l, c)) = seen.get(&value) {
                        return Err(problem(
                            mark,
                            format!(
                                "duplicate key `{}` (first at line {l}, column {c})",
                                clip(&value, 60)
                            ),
                        ));
                    }
                    seen.insert(value.clone(), at);
                    *key = Some(value.clone());
                }
                node_done(&mut stack, &mut anchors, value.len() + 1, anchor, is_key);
            }
            Event::Alias(id) => {
                let size = anchors.get(&id).copied().unwrap_or(0);
                total += size;
                if matches!(stack.last(), Some(Frame::Map { key: None, .. })) {
                    return Err(problem(mark, "an alias as a mapping key is not supported"));
                }
                node_done(&mut stack, &mut anchors, size, 0, false);
            }
            Event::MappingStart(anchor, _) | Event::SequenceStart(anchor, _) => {
                let is_map = matches!(ev, Event::MappingStart(..));
                if !root_seen {
                    root_seen = true;
                    if !is_map {
                        return Err(not_a_mapping(expect, mark, "a list"));
                    }
                }
                if stack.len() >= limits.max_depth {
                    return Err(problem(
                        mark,
                        format!("nested too deeply (more than {} levels)", limits.max_depth),
                    ));
                }
                if matches!(stack.last(), Some(Frame::Map { key: None, .. })) {
                    return Err(problem(mark, "a mapping key must be a plain value"));
                }
                stack.push(if is_map {
                    Frame::Map {
                        key: None,
                        seen: HashMap::new(),
                        size: 1,
                        anchor,
                    }
                } else {
                    Frame::Seq { size: 1, anchor }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                let (size, anchor) = match stack.pop() {
                    Some(Frame::Map { size, anchor, .. } | Frame::Seq { size, anchor, .. }) => {
                        (size, anchor)
                    }
                    None => (0, 0),
                };
                node_done(&mut stack, &mut anchors, size, anchor, false);
            }
        }
        if total > limits.max_expanded {
            let what = if is_alias {
                "aliases expand this document past"
            } else {
                "this document holds more values than"
            };
            return Err(problem(
                mark,
                format!(
                    "{what} {} MiB; refusing to read on",
                    limits.max_expanded >> 20
                ),
            ));
        }
    }
    if !root_seen {
        return Err(Problem {
            line: 1,
            column: 1,
            message: format!(
                "the file is empty: {} is a mapping of fields ({})",
                expect.what, expect.fields
            ),
        });
    }
    Ok(())
}

fn not_a_mapping(expect: &Expect, mark: Marker, found: &str) -> Problem {
    problem(
        mark,
        format!(
            "{} is a mapping of fields ({}), not {found}",
            expect.what, expect.fields
        ),
    )
}

/// A node of `size` ended: add it to its parent and remember it under its anchor. A value
/// ends its mapping entry (the mapping expects a key again); a key does not.
fn node_done(
    stack: &mut [Frame],
    anchors: &mut HashMap<usize, usize>,
    size: usize,
    anchor: usize,
    is_key: bool,
) {
    if anchor > 0 {
        anchors.insert(anchor, size);
    }
    if let Some(parent) = stack.last_mut() {
        *parent.size() = parent.size().saturating_add(size);
        if let (Frame::Map { key, .. }, false) = (parent, is_key) {
            *key = None;
        }
    }
}

/// At most `n` characters of `s`, marked when cut: what error messages quote of a value.
pub fn clip(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        None => s.to_string(),
        Some((i, _)) => format!("{}… ({} bytes in all)", &s[..i], s.len()),
    }
}

/// Shorten every long quoted run in a message (a deserializer quotes the offending value in
/// full: a 50 MB scalar would come back whole on stderr).
pub fn clip_quoted(msg: &str, n: usize) -> String {
    let mut out = String::new();
    let mut rest = msg;
    while let Some(open) = rest.find(['"', '`']) {
        let q = rest.as_bytes()[open] as char;
        out.push_str(&rest[..=open]);
        let after = &rest[open + 1..];
        match after.find(q) {
            Some(close) => {
                out.push_str(&clip(&after[..close], n));
                out.push(q);
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&clip(after, n));
                return out;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const E: Expect = Expect {
        what: "a config",
        fields: "regions, jobs",
    };

    #[test]
    fn duplicate_key_is_reported_where_it_repeats() {
        let t = "jobs:\n  - name: a\n    rpo: 1h\n    rpo: 2h\n";
        let p = scan(t, &LIMITS, &E).unwrap_err();
        assert_eq!((p.line, p.column), (4, 5), "{p:?}");
        assert!(p
            .message
            .contains("duplicate key `rpo` (first at line 3, column 5)"));
    }

    #[test]
    fn alias_bomb_by_size_is_refused_at_the_alias() {
        let big = "x".repeat(1 << 20);
        let mut t = format!("a: &big \"{big}\"\nb: [");
        for _ in 0..20 {
            t.push_str("*big, ");
        }
        t.push_str("]\n");
        let p = scan(&t, &LIMITS, &E).unwrap_err();
        assert_eq!(p.line, 2, "{p:?}");
        assert!(p.message.contains("aliases expand"), "{p:?}");
    }

    #[test]
    fn bom_is_dropped_and_bad_bytes_are_placed() {
        assert_eq!(decode(b"\xEF\xBB\xBFa: 1\n", &LIMITS).unwrap(), "a: 1\n");
        let p = decode(b"a: 1\nbb: \xff\n", &LIMITS).unwrap_err();
        assert_eq!((p.line, p.column), (2, 5), "{p:?}");
    }

    #[test]
    fn clips_long_quotes() {
        let m = format!(
            "invalid type: string \"{}\", expected u32",
            "y".repeat(1000)
        );
        let c = clip_quoted(&m, 20);
        assert!(c.len() < 120, "{c}");
        assert!(c.ends_with("expected u32"), "{c}");
    }
}
