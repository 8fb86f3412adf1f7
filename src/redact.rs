//! Secrets never leave the process in clear: every secret value drctl learns (config
//! `Secret`s, passwords in URLs, TSIG keys, webhook URLs) is registered here, and everything
//! drctl writes for people — every log line at every level, errors, reports — passes
//! `scrub`, which replaces each registered value with `[redacted]`.
//!
//! Why at the output and not only at the call sites: a library's debug log (OpenDAL's
//! credential provider prints its whole config at `RUST_LOG=debug`) is code we do not own.
//! Redacting where bytes leave covers what call-site discipline cannot.

use std::borrow::Cow;
use std::io::Write;
use std::sync::RwLock;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Shorter values are not scrubbed: they would garble ordinary words, and a secret that
/// short is no secret anyway.
const MIN_LEN: usize = 4;

/// Remember a secret value (and its percent-encoded form, as it appears inside URLs).
pub fn register(secret: &str) {
    // JSON's literals are never secrets, and scrubbing them would corrupt `-o json`.
    if secret.len() < MIN_LEN || ["true", "false", "null"].contains(&secret) {
        return;
    }
    let encoded: String =
        url::form_urlencoded::byte_serialize(secret.as_bytes()).collect::<String>();
    // As it appears quoted: in a JSON log line, in a `Debug` rendering, and in both.
    let inner = |q: String| q[1..q.len() - 1].to_string();
    let json = |v: &str| inner(serde_json::to_string(v).unwrap_or_default());
    let debug = inner(format!("{secret:?}"));
    let forms = [
        secret.to_string(),
        encoded,
        secret.replace('+', "%2B"),
        json(secret),
        json(&debug),
        debug,
    ];
    let mut all = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    for s in forms {
        if !all.contains(&s) {
            all.push(s);
        }
    }
    // Longest first, so a secret that contains another is replaced whole.
    all.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// `text` with every registered secret replaced.
pub fn scrub(text: &str) -> Cow<'_, str> {
    let all = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    if !all.iter().any(|s| text.contains(s.as_str())) {
        return Cow::Borrowed(text);
    }
    let mut out = text.to_string();
    for s in all.iter() {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "[redacted]");
        }
    }
    Cow::Owned(out)
}

/// A writer that scrubs what passes through it. The log formatter hands it one whole event
/// per write, so a secret is never split across calls.
pub struct Scrubbing<W: Write>(pub W);

impl<W: Write> Write for Scrubbing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match std::str::from_utf8(buf) {
            Ok(s) => self.0.write_all(scrub(s).as_bytes())?,
            Err(_) => self
                .0
                .write_all(scrub(&String::from_utf8_lossy(buf)).as_bytes())?,
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_values_are_replaced_in_clear_and_url_forms() {
        register("s3cr3t+key/AB");
        let line = "secret_access_key: s3cr3t+key/AB, url http://u:s3cr3t%2Bkey%2FAB@h";
        let s = scrub(line);
        assert!(!s.contains("s3cr3t"), "{s}");
        assert_eq!(scrub("nothing here"), "nothing here");
        register(r#"q"uo\te"#);
        let json_log = serde_json::to_string(&format!("{:?}", r#"q"uo\te"#)).unwrap();
        assert!(!scrub(&json_log).contains("uo"), "{json_log}");
    }
}
