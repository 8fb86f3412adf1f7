//! One error type for the whole tool.
//!
//! Every error a user sees says what went wrong (naming the job, region, file:line:column or
//! step involved) and, where we know it, what to do about it. The kind decides the exit code:
//! bad usage, config or playbook exit 2; an operation that ran and failed exits 1.

use std::fmt;

/// What class of failure this is; decides the exit code and whether a retry may help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad command line, config file or playbook. Exit code 2.
    Usage,
    /// The operation ran and failed (source, store, restore...). Exit code 1.
    Failed,
    /// The operation failed in a way that may succeed when tried again (network, 5xx).
    Temporary,
    /// The run was interrupted by SIGINT/SIGTERM and cleaned up after itself. Exit code 130,
    /// as a shell reports a command killed by Ctrl-C.
    Interrupted,
    /// Another run holds the lease (the same job, or another prune). Exit code 3: nothing
    /// was done, and trying again after that run ends is the remedy.
    LeaseHeld,
}

/// Exit codes, as `drctl --help` documents them.
pub const EXIT_FAILED: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_LEASE_HELD: i32 = 3;
pub const EXIT_INTERRUPTED: i32 = 130;

/// The error every drctl operation returns.
pub struct Error {
    kind: ErrorKind,
    message: String,
    hint: Option<String>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            hint: None,
            source: None,
        }
    }
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Usage, message)
    }
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Failed, message)
    }
    pub fn interrupted(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Interrupted, message)
    }
    pub fn lease_held(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::LeaseHeld, message)
    }
    /// Attach what the user should do next.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
    /// Attach a hint unless the error already carries one (the more specific advice, from
    /// where the cause was found, wins over a caller's general one).
    pub fn hint_or(self, hint: impl Into<String>) -> Self {
        if self.hint.is_some() {
            self
        } else {
            self.hint(hint)
        }
    }
    /// Keep the underlying error for `source()` (the message should already say it in words).
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }
    /// Prefix the message with context ("region beijing: ..."), unless the message already
    /// starts with it: a cause that names its region or job is not named twice.
    pub fn context(mut self, ctx: impl fmt::Display) -> Self {
        let ctx = ctx.to_string();
        // "region beijing (path): …" already names it; "region beijing2: …" does not.
        let named = self
            .message
            .strip_prefix(&ctx)
            .is_some_and(|rest| rest.starts_with([':', ' ']));
        if !named {
            self.message = format!("{ctx}: {}", self.message);
        }
        self
    }
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    pub fn message(&self) -> &str {
        &self.message
    }
    pub fn hint_text(&self) -> Option<&str> {
        self.hint.as_deref()
    }
    /// Whether the kept cause is a `T` (a marker a caller branches on, such as
    /// `source::TargetChanged`).
    pub fn caused_by<T: std::error::Error + 'static>(&self) -> bool {
        self.source.as_ref().is_some_and(|s| s.is::<T>())
    }
    pub fn is_temporary(&self) -> bool {
        self.kind == ErrorKind::Temporary
    }
    /// Process exit code for this error, as documented in `drctl --help`.
    pub fn exit_code(&self) -> i32 {
        match self.kind {
            ErrorKind::Usage => EXIT_USAGE,
            ErrorKind::LeaseHeld => EXIT_LEASE_HELD,
            ErrorKind::Interrupted => EXIT_INTERRUPTED,
            ErrorKind::Failed | ErrorKind::Temporary => EXIT_FAILED,
        }
    }

    /// The error as one JSON object, for `-o json`: what scripts branch on.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "error": {
                "kind": match self.kind {
                    ErrorKind::Usage => "usage",
                    ErrorKind::Failed => "failed",
                    ErrorKind::Temporary => "temporary",
                    ErrorKind::Interrupted => "interrupted",
                    ErrorKind::LeaseHeld => "lease_held",
                },
                "message": self.message,
                "hint": self.hint,
                "exit_code": self.exit_code(),
            }
        })
    }
}

/// The message (which already says the cause in words), then the hint. The cause itself is
/// kept for `source()`, not printed again.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {self}", self.kind)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

impl From<opendal::Error> for Error {
    fn from(e: opendal::Error) -> Self {
        let kind = if e.is_temporary() {
            ErrorKind::Temporary
        } else {
            ErrorKind::Failed
        };
        Error::new(kind, format!("storage error: {e}")).with_source(e)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::failed(format!("I/O error: {e}")).with_source(e)
    }
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        let msg = match e.as_db_error() {
            Some(db) => format!("PostgreSQL: {}: {}", db.severity(), db.message()),
            None => format!("PostgreSQL: {e}"),
        };
        Error::failed(msg).with_source(e)
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::failed(format!("JSON: {e}")).with_source(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    /// The format users and scripts read: `context: message[: cause]`, then the hint on its
    /// own indented line. A cause already in the message is not repeated; a context already
    /// leading the message is not added again.
    #[test]
    fn display_format_is_pinned() {
        let e = Error::failed("the upload stalled")
            .context("region beijing (backups/app/1/db.zst)")
            .context("region beijing")
            .hint("check the endpoint");
        assert_eq!(
            e.to_string(),
            "region beijing (backups/app/1/db.zst): the upload stalled\n  hint: check the endpoint"
        );
        assert_eq!(e.exit_code(), 1);
        // Another region whose name starts the same is context, not a repeat.
        let e = Error::failed("region beijing2: timed out").context("region beijing");
        assert_eq!(e.to_string(), "region beijing: region beijing2: timed out");

        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied");
        let e = Error::from(io).context("job app");
        assert_eq!(e.to_string(), "job app: I/O error: denied");
        assert_eq!(e.source().map(|s| s.to_string()).as_deref(), Some("denied"));

        let wrapped = Error::usage("bad flag").with_source(std::fmt::Error);
        assert_eq!(wrapped.to_string(), "bad flag");
        assert!(wrapped.source().is_some());
        assert_eq!(wrapped.exit_code(), 2);
    }
}
