//! `${VAR}` interpolation, done while deserializing so that a missing variable is reported
//! with the file, line, column and field path of the value that needs it.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};
use std::fmt;

/// Expand `${VAR}` from the environment. `$$` is a literal `$`.
pub fn expand(input: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| format!("unterminated `${{` in {input:?}: close it with `}}`"))?;
            let name = &body[..end];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "`${{{name}}}` is not a valid environment variable name"
                ));
            }
            let value = lookup(name).ok_or_else(|| {
                format!("environment variable {name} is not set: export it or remove `${{{name}}}`")
            })?;
            out.push_str(&value);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// A string that may contain `${VAR}` references, expanded at load time.
#[derive(Clone, PartialEq, Eq, JsonSchema)]
#[schemars(transparent)]
pub struct Interp(pub String);

impl<'de> Deserialize<'de> for Interp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_scalar(d, "a string", |raw| {
            expand(raw, |k| std::env::var(k).ok()).map(Interp)
        })
    }
}

/// Deserialize a string scalar through `parse`. The check runs inside the deserializer's visit
/// of the scalar, so serde_norway reports its error at that scalar's line and column with the
/// full field path (an error raised after `String::deserialize` returns gets neither).
pub fn parse_scalar<'de, D, T>(
    d: D,
    expecting: &'static str,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct V<F>(&'static str, F);
    impl<'de, T, F: FnOnce(&str) -> Result<T, String>> serde::de::Visitor<'de> for V<F> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
            (self.1)(v).map_err(E::custom)
        }
    }
    d.deserialize_str(V(expecting, parse))
}

impl fmt::Debug for Interp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl std::ops::Deref for Interp {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// An interpolated credential. Its `Debug` never prints the value, and loading one
/// registers it with `redact`, so no output of drctl's (logs included) shows it.
#[derive(Clone, JsonSchema)]
#[schemars(transparent)]
pub struct Secret(pub Interp);

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Interp::deserialize(d)?;
        crate::redact::register(&v.0);
        Ok(Secret(v))
    }
}

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0 .0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"[redacted]\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        (k == "HOME_REGION").then(|| "shanghai".to_string())
    }

    #[test]
    fn expands_and_escapes() {
        assert_eq!(expand("a-${HOME_REGION}-b", env).unwrap(), "a-shanghai-b");
        assert_eq!(expand("cost $$5 and $x", env).unwrap(), "cost $5 and $x");
    }

    #[test]
    fn missing_variable_is_named() {
        let e = expand("${NOPE_NOT_SET}", env).unwrap_err();
        assert!(e.contains("NOPE_NOT_SET is not set"), "{e}");
        assert!(expand("${unterminated", env)
            .unwrap_err()
            .contains("unterminated"));
    }
}
