//! A small JSON-over-HTTP client shared by the sources that speak REST: one
//! place for the auth header, timeouts and error messages that name the service, the method,
//! the path, the status and what the server said.

use crate::error::{Error, ErrorKind, Result};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::Duration;

#[derive(Clone)]
pub struct Api {
    client: reqwest::Client,
    base: String,
    /// Service name for messages, e.g. "Qdrant".
    pub service: &'static str,
    auth: Option<(&'static str, String)>,
}

impl Api {
    /// `auth`: a header name and value sent with every request (API key, token).
    pub fn new(
        service: &'static str,
        base: &str,
        auth: Option<(&'static str, String)>,
    ) -> Result<Api> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            // Per read, not per request: a snapshot download may take long but must not stall.
            .read_timeout(Duration::from_secs(300))
            .build()
            .map_err(|e| Error::failed(format!("{service}: cannot build an HTTP client: {e}")))?;
        Ok(Api {
            client,
            base: base.trim_end_matches('/').to_string(),
            service,
            auth,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let rb = self.client.request(method, format!("{}{path}", self.base));
        match &self.auth {
            Some((h, v)) => rb.header(*h, v),
            None => rb,
        }
    }

    /// Send; a transport error or a non-2xx status becomes an `Error` naming the call.
    pub async fn send(&self, method: Method, path: &str, rb: RequestBuilder) -> Result<Response> {
        let resp = self.transport(&method, path, rb).await?;
        self.check(method, path, resp).await
    }

    async fn transport(&self, method: &Method, path: &str, rb: RequestBuilder) -> Result<Response> {
        rb.send().await.map_err(|e| {
            Error::new(
                ErrorKind::Temporary,
                format!(
                    "{} {method} {path}: cannot reach {}: {e}",
                    self.service, self.base
                ),
            )
            .hint("check the url and that the server is up")
        })
    }

    async fn check(&self, method: Method, path: &str, resp: Response) -> Result<Response> {
        let what = format!("{} {method} {path}", self.service);
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.text().await.unwrap_or_default();
        let excerpt: String = body.chars().take(300).collect();
        let err = Error::new(
            if status.is_server_error() {
                ErrorKind::Temporary
            } else {
                ErrorKind::Failed
            },
            format!("{what}: {status}: {excerpt}"),
        );
        Err(match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                err.hint("check the API key / token in the source config")
            }
            _ => err,
        })
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let r = self
            .send(Method::GET, path, self.request(Method::GET, path))
            .await?;
        self.json(path, r).await
    }

    pub async fn post<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T> {
        let rb = self.request(Method::POST, path).json(body);
        let r = self.send(Method::POST, path, rb).await?;
        self.json(path, r).await
    }

    pub async fn delete(&self, path: &str) -> Result<()> {
        self.send(Method::DELETE, path, self.request(Method::DELETE, path))
            .await
            .map(drop)
    }

    /// Whether `GET path` answers 2xx (true) or 404 (false); other statuses are errors.
    pub async fn exists(&self, path: &str) -> Result<bool> {
        let resp = self
            .transport(&Method::GET, path, self.request(Method::GET, path))
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(false);
        }
        self.check(Method::GET, path, resp).await.map(|_| true)
    }

    async fn json<T: DeserializeOwned>(&self, path: &str, r: Response) -> Result<T> {
        r.json().await.map_err(|e| {
            Error::failed(format!("{} {path}: unexpected response: {e}", self.service))
        })
    }
}

impl Api {
    /// `prepare` of a REST restore target: the target collections that already exist
    /// (`(name, path)` each, names as restored) are refused unless `--clean`.
    pub async fn refuse_existing(
        &self,
        collections: &[(String, String)],
        clean: bool,
    ) -> Result<()> {
        let mut existing = Vec::new();
        for (name, path) in collections {
            if self.exists(path).await? {
                existing.push(name.clone());
            }
        }
        refuse_existing(self.service, &self.base, &existing, clean)
    }

    /// The collections a job backs up (see `pick_collections`).
    pub fn pick_collections<T>(
        &self,
        all: Vec<T>,
        name: impl Fn(&T) -> &str,
        wanted: &[String],
    ) -> Result<Vec<T>> {
        pick_collections(self.service, &self.base, all, name, wanted)
    }
}

/// A restore target's `prepare`: the collections it already has (`existing`, names as
/// restored) are refused unless `--clean`.
pub fn refuse_existing(service: &str, base: &str, existing: &[String], clean: bool) -> Result<()> {
    if existing.is_empty() || clean {
        return Ok(());
    }
    Err(Error::usage(format!(
        "{service} at {base} already has collection(s) {}: refusing to restore over them",
        existing.join(", ")
    ))
    .hint("pass --clean to replace them, or --rename FROM=TO to restore beside them"))
}

/// The collections a job backs up: the ones `wanted` names, in that order, or every one
/// when `wanted` is empty. A name the server lacks fails before any byte is written.
pub fn pick_collections<T>(
    service: &str,
    base: &str,
    all: Vec<T>,
    name: impl Fn(&T) -> &str,
    wanted: &[String],
) -> Result<Vec<T>> {
    if wanted.is_empty() {
        return Ok(all);
    }
    if let Some(missing) = wanted.iter().find(|w| !all.iter().any(|c| name(c) == *w)) {
        return Err(Error::failed(format!(
            "{service} at {base} has no collection {missing:?} (it has: {})",
            all.iter().map(&name).collect::<Vec<_>>().join(", ")
        ))
        .hint("fix the job's source.collections, or leave it empty for all"));
    }
    let mut all = all;
    Ok(wanted
        .iter()
        .filter_map(|w| {
            let i = all.iter().position(|c| name(c) == *w)?;
            Some(all.swap_remove(i))
        })
        .collect())
}

/// Percent-encode one path segment (collection names).
pub fn seg(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// A REST kind's `--to` must be an http(s) URL; `form` is e.g. `http(s)://host:6333` and
/// `hint` says where the rest of the connection (auth, tenant) comes from.
pub fn check_target(to: &str, service: &str, form: &str, hint: &str) -> Result<()> {
    if to.starts_with("http://") || to.starts_with("https://") {
        return Ok(());
    }
    Err(Error::usage(format!(
        "--to {to:?}: a {service} backup restores to {form}"
    ))
    .hint(hint.to_string()))
}

/// A REST source's backup side: its spec and the client built from it.
pub struct RestSource<S> {
    pub spec: S,
    pub api: Api,
}

/// The `url` of a REST source: an http(s) URL with a host, `${VAR}` expanded when the config
/// is read. A type of its own so every REST kind checks it the same way, and its schema says
/// it is a string.
#[derive(Debug, Clone)]
pub struct HttpUrl(pub crate::interp::Interp);

impl std::ops::Deref for HttpUrl {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de> serde::Deserialize<'de> for HttpUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use crate::interp::{expand, parse_scalar, Interp};
        parse_scalar(d, "an http:// URL", |raw| {
            let url = expand(raw, |k| std::env::var(k).ok())?;
            match url::Url::parse(&url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
                    Ok(HttpUrl(Interp(url)))
                }
                Ok(_) => Err(format!("{url:?} is not an http:// or https:// URL")),
                Err(e) => Err(format!("{url:?} is not a valid URL ({e})")),
            }
        })
    }
}

impl schemars::JsonSchema for HttpUrl {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "HttpUrl".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "format": "uri" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_listed_collections_in_order_or_all() {
        let api = Api::new("Qdrant", "http://q:6333", None).unwrap();
        let all = || vec!["a".to_string(), "b".into(), "c".into()];
        let pick = |w: &[&str]| {
            let w: Vec<String> = w.iter().map(|s| s.to_string()).collect();
            api.pick_collections(all(), |c| c.as_str(), &w)
        };
        assert_eq!(pick(&[]).unwrap(), all());
        assert_eq!(pick(&["c", "a"]).unwrap(), vec!["c", "a"]);
        let e = pick(&["a", "zz"]).unwrap_err();
        assert!(
            e.message()
                .contains("Qdrant at http://q:6333 has no collection \"zz\" (it has: a, b, c)"),
            "{}",
            e.message()
        );
    }
}
