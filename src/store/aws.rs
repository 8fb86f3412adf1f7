//! AWS identities and SigV4 for the requests drctl signs itself (S3 multipart housekeeping and
//! Object Lock calls, Route53 drill steps), and the credential chain handed to OpenDAL's S3
//! service, so that every S3 request of a region uses the same identity.
//!
//! The chain is reqsign's (the same crates OpenDAL signs with): static keys from the config
//! first, then the environment (`AWS_ACCESS_KEY_ID` … `AWS_SESSION_TOKEN`), the shared profile,
//! SSO, web identity (`AWS_ROLE_ARN` + `AWS_WEB_IDENTITY_TOKEN_FILE`, as IRSA sets them),
//! `credential_process`, the container endpoint (ECS, EKS Pod Identity) and instance metadata.
//! Temporary credentials are cached and refreshed before they expire.
//!
//! Every credential request goes through drctl's own HTTP client, which honours the AWS
//! standard `AWS_ENDPOINT_URL_STS` (a VPC endpoint, or a test server): reqsign itself always
//! calls the public STS host.

use crate::error::{Error, Result};
use crate::interp::Secret;
use bytes::Bytes;
use reqsign_aws_v4::{
    Credential, DefaultCredentialProvider, RequestSigner, StaticCredentialProvider,
};
use reqsign_core::{Context, HttpSend, OsEnv, ProvideCredential, ProvideCredentialChain, Signer};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// Keys written in the config (`${VAR}` expanded), tried before the standard chain.
#[derive(Clone, Default)]
pub struct StaticKeys {
    pub id: Option<String>,
    pub secret: Option<String>,
    pub token: Option<String>,
}

impl StaticKeys {
    pub fn from_secrets(
        id: Option<&Secret>,
        secret: Option<&Secret>,
        token: Option<&Secret>,
    ) -> Self {
        let s = |v: Option<&Secret>| v.map(|v| v.expose().to_string());
        StaticKeys {
            id: s(id),
            secret: s(secret),
            token: s(token),
        }
    }
}

/// The credential chain for one region or step.
pub fn chain(keys: &StaticKeys) -> ProvideCredentialChain<Credential> {
    let mut chain = ProvideCredentialChain::new();
    if let (Some(id), Some(secret)) = (&keys.id, &keys.secret) {
        let mut p = StaticCredentialProvider::new(id, secret);
        if let Some(t) = &keys.token {
            p = p.with_session_token(t);
        }
        chain = chain.push(p);
    }
    chain.push(ViaDrctl(DefaultCredentialProvider::new()))
}

/// A provider whose HTTP requests (STS, container and instance metadata) go through drctl's
/// client, whatever client the caller's context carries.
#[derive(Debug)]
struct ViaDrctl<P>(P);

impl<P: ProvideCredential<Credential = Credential>> ProvideCredential for ViaDrctl<P> {
    type Credential = Credential;

    async fn provide_credential(&self, ctx: &Context) -> reqsign_core::Result<Option<Credential>> {
        let ctx = ctx.clone().with_http_send(Http::default());
        self.0.provide_credential(&ctx).await
    }
}

fn context() -> Context {
    Context::new()
        .with_file_read(reqsign_file_read_tokio::TokioFileRead)
        .with_env(OsEnv)
        .with_http_send(Http::default())
}

/// reqwest, as reqsign's `HttpSend`, with the STS endpoint override.
#[derive(Debug, Clone, Default)]
struct Http(reqwest::Client);

impl HttpSend for Http {
    async fn http_send(
        &self,
        mut req: http::Request<Bytes>,
    ) -> reqsign_core::Result<http::Response<Bytes>> {
        if let Some(uri) = sts_override(req.uri(), std::env::var("AWS_ENDPOINT_URL_STS").ok()) {
            *req.uri_mut() = uri;
        }
        let req = reqwest::Request::try_from(req)
            .map_err(|e| reqsign_core::Error::unexpected("a credential request").with_source(e))?;
        let resp = self.0.execute(req).await.map_err(|e| {
            reqsign_core::Error::unexpected("a credential request failed")
                .with_source(e.without_url())
                .set_retryable(true)
        })?;
        let mut out = http::Response::builder().status(resp.status());
        for (k, v) in resp.headers() {
            out = out.header(k, v);
        }
        let body = resp.bytes().await.map_err(|e| {
            reqsign_core::Error::unexpected("reading a credential response").with_source(e)
        })?;
        out.body(body)
            .map_err(|e| reqsign_core::Error::unexpected("a credential response").with_source(e))
    }
}

/// The STS request's URI rewritten to `endpoint`, when one is set and the request is for STS.
fn sts_override(uri: &http::Uri, endpoint: Option<String>) -> Option<http::Uri> {
    let endpoint = endpoint.filter(|e| !e.trim().is_empty())?;
    let host = uri.host()?;
    if !(host.starts_with("sts.") && host.contains(".amazonaws.com")) {
        return None;
    }
    let base = endpoint.trim_end_matches('/');
    let pq = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    format!("{base}{pq}").parse().ok()
}

/// A SigV4 client for one service in one AWS region.
#[derive(Clone, Debug)]
pub struct Aws {
    signer: Signer<Credential>,
    client: reqwest::Client,
    service: &'static str,
}

/// A response, read whole (the calls drctl makes answer with small XML documents).
pub struct Answer {
    pub status: reqwest::StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Aws {
    pub fn new(service: &'static str, region: &str, keys: &StaticKeys) -> Aws {
        Aws {
            signer: Signer::new(context(), chain(keys), RequestSigner::new(service, region)),
            client: reqwest::Client::new(),
            service,
        }
    }

    /// Sign and send one request. `url` is already percent-encoded; the payload is hashed
    /// and signed (Route53 requires it; S3 accepts it).
    pub async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        headers: &[(&str, String)],
        body: Bytes,
        timeout: Duration,
    ) -> Result<Answer> {
        let mut req = http::Request::builder().method(method.clone()).uri(url);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let req = req
            .header("x-amz-content-sha256", hex::encode(Sha256::digest(&body)))
            .body(body)
            .map_err(|e| Error::usage(format!("{} request {url}: {e}", self.service)))?;
        let (mut parts, body) = req.into_parts();
        self.signer
            .sign(&mut parts, None)
            .await
            .map_err(|e| no_credentials(self.service, e))?;
        let req = reqwest::Request::try_from(http::Request::from_parts(parts, body))
            .map_err(|e| Error::usage(format!("{} request {url}: {e}", self.service)))?;
        let path = req.url().path().to_string();
        let resp = self.client.execute(req).await.map_err(|e| {
            Error::failed(format!(
                "{} {method} {path}: {}",
                self.service,
                e.without_url()
            ))
        })?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = tokio::time::timeout(timeout, resp.text())
            .await
            .map_err(|_| Error::failed(format!("{} {method} {path}: timed out", self.service)))?
            .unwrap_or_default();
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}

fn no_credentials(service: &str, e: reqsign_core::Error) -> Error {
    Error::failed(format!("{service}: no usable AWS credentials: {e}")).hint(
        "give access_key_id/secret_access_key (with ${VAR}), or run with an AWS identity: \
         AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY[/AWS_SESSION_TOKEN], AWS_PROFILE, \
         AWS_ROLE_ARN with AWS_WEB_IDENTITY_TOKEN_FILE (IRSA), or instance/container metadata",
    )
}

/// The raw `<tag>…</tag>` bodies of a flat AWS XML response (for nested elements).
pub fn elements<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(&after[..j]);
        rest = &after[j + close.len()..];
    }
    out
}

/// The text of the first `<tag>`, entities decoded.
pub fn element(xml: &str, tag: &str) -> Option<String> {
    elements(xml, tag).first().map(|s| unescape(s))
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// XML text escaping for request bodies.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// SigV4's URI encoding: unreserved characters stay, everything else is %XX (and `/` too
/// unless it separates path segments).
pub fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sts_requests_follow_the_endpoint_override_and_nothing_else_does() {
        let sts: http::Uri = "https://sts.amazonaws.com/?Action=X".parse().unwrap();
        let to = Some("http://127.0.0.1:5000/".to_string());
        assert_eq!(
            sts_override(&sts, to.clone()).unwrap().to_string(),
            "http://127.0.0.1:5000/?Action=X"
        );
        let regional: http::Uri = "https://sts.eu-west-1.amazonaws.com/".parse().unwrap();
        assert!(sts_override(&regional, to.clone()).is_some());
        let s3: http::Uri = "https://s3.amazonaws.com/b".parse().unwrap();
        assert!(sts_override(&s3, to).is_none());
        assert!(sts_override(&sts, None).is_none());
    }

    #[test]
    fn parses_flat_xml() {
        let xml = "<R><Upload><Key>a&amp;b</Key></Upload><Upload><Key>c</Key></Upload></R>";
        let ups = elements(xml, "Upload");
        assert_eq!(ups.len(), 2);
        assert_eq!(element(ups[0], "Key").as_deref(), Some("a&b"));
        assert_eq!(element(xml, "Nope"), None);
        assert_eq!(uri_encode("a b/c~", true), "a%20b/c~");
        assert_eq!(uri_encode("a/b", false), "a%2Fb");
    }
}
