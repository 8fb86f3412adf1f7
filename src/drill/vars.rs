//! `${...}` references in playbook strings. Pure: scanning (for validation) and expansion
//! (at run time, when earlier steps' outputs are known).
//!
//! `${name}` is a playbook variable (`vars:`, overridden by `--var name=value`) or, failing
//! that, an environment variable; `${steps.<id>.<output>}` is an output of an earlier step.
//! `$${` writes a literal `${` (for shell parameter expansion inside `run:`).

use std::collections::BTreeMap;

/// One `${...}` reference found in a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ref {
    Var(String),
    Step { id: String, output: String },
}

/// Every reference in `s`, or an error describing a malformed one.
pub fn scan(s: &str) -> Result<Vec<Ref>, String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix("${") {
            rest = r;
            continue;
        }
        if !after.starts_with('{') {
            rest = after;
            continue;
        }
        let Some(end) = after.find('}') else {
            return Err(format!("unclosed `${{` in {s:?}"));
        };
        out.push(parse_ref(&after[1..end])?);
        rest = &after[end + 1..];
    }
    Ok(out)
}

fn parse_ref(name: &str) -> Result<Ref, String> {
    let ok = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    let parts: Vec<&str> = name.split('.').collect();
    match parts.as_slice() {
        [v] if ok(v) => Ok(Ref::Var(v.to_string())),
        ["steps", id, output] if ok(id) && ok(output) => Ok(Ref::Step {
            id: id.to_string(),
            output: output.to_string(),
        }),
        _ => Err(format!(
            "`${{{name}}}` is not a variable: use ${{name}} or ${{steps.<id>.<output>}}"
        )),
    }
}

/// What references resolve against at run time.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub vars: BTreeMap<String, String>,
    /// `steps.<id>.<output>` → value.
    pub outputs: BTreeMap<String, String>,
}

impl Scope {
    /// Expand every reference; an unresolved one is an error naming it (validation makes that
    /// rare: it can only be an output a step did not produce).
    pub fn expand(&self, s: &str) -> Result<String, String> {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            if let Some(r) = after.strip_prefix("${") {
                out.push_str("${");
                rest = r;
                continue;
            }
            if !after.starts_with('{') {
                out.push('$');
                rest = after;
                continue;
            }
            let end = after
                .find('}')
                .ok_or_else(|| format!("unclosed `${{` in {s:?}"))?;
            let name = &after[1..end];
            let value = match parse_ref(name)? {
                Ref::Var(v) => self
                    .vars
                    .get(&v)
                    .cloned()
                    .or_else(|| std::env::var(&v).ok())
                    .ok_or_else(|| format!("variable `{v}` is not set"))?,
                Ref::Step { .. } => self.outputs.get(name).cloned().ok_or_else(|| {
                    format!("`${{{name}}}`: that step did not produce this output")
                })?,
            };
            out.push_str(&value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_and_expands() {
        let s = "pg_ctl -D ${data} stop; echo $${HOME} ${steps.q.value} $1";
        assert_eq!(
            scan(s).unwrap(),
            vec![
                Ref::Var("data".into()),
                Ref::Step {
                    id: "q".into(),
                    output: "value".into()
                }
            ]
        );
        let mut scope = Scope::default();
        scope.vars.insert("data".into(), "/d".into());
        scope.outputs.insert("steps.q.value".into(), "42".into());
        assert_eq!(
            scope.expand(s).unwrap(),
            "pg_ctl -D /d stop; echo ${HOME} 42 $1"
        );
    }

    #[test]
    fn malformed_references_are_errors() {
        assert!(scan("${a b}").is_err());
        assert!(scan("${unclosed").is_err());
        assert!(scan("${steps.x}").is_err());
        let scope = Scope::default();
        assert!(scope
            .expand("${DRCTL_SURELY_UNSET_VAR}")
            .unwrap_err()
            .contains("DRCTL_SURELY_UNSET_VAR"));
    }
}
