//! `http`: one request, with an expected status and body. Polling is the engine's
//! `until_success`; the step's timeout cancels a request in flight.

use super::{excerpt, Ctx, Outcome, StepKind};
use crate::error::{Error, Result};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Http {
    pub url: String,
    #[serde(default = "get")]
    pub method: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub expect: Expect,
}

fn get() -> String {
    "GET".into()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Exact status; default: any 2xx.
    #[serde(default)]
    pub status: Option<u16>,
    /// The body must contain this text.
    #[serde(default)]
    pub body_contains: Option<String>,
}

#[async_trait::async_trait]
impl StepKind for Http {
    fn describe(&self) -> String {
        let want = match self.expect.status {
            Some(s) => format!("expect {s}"),
            None => "expect 2xx".into(),
        };
        format!("{} {} ({want})", self.method, self.url)
    }

    fn check(&self) -> std::result::Result<(), String> {
        reqwest::Method::from_bytes(self.method.as_bytes())
            .map(|_| ())
            .map_err(|_| format!("method {:?} is not an HTTP method", self.method))
    }

    async fn run(&self, ctx: &Ctx) -> Result<Outcome> {
        let url = ctx.expand("url", &self.url)?;
        let method = reqwest::Method::from_bytes(self.method.as_bytes())
            .map_err(|_| Error::usage(format!("bad method {:?}", self.method)))?;
        let client = reqwest::Client::builder()
            .timeout(ctx.timeout)
            .build()
            .map_err(|e| Error::failed(format!("HTTP client: {e}")))?;
        let mut req = client.request(method, &url);
        for (k, v) in &self.headers {
            req = req.header(k, ctx.expand(&format!("headers.{k}"), v)?);
        }
        if let Some(b) = &self.body {
            req = req.body(ctx.expand("body", b)?);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| Error::failed(format!("{} {url}: {}", self.method, e.without_url())))?;
        let status = resp.status();
        let body = resp
            .text()
            .await
            .map_err(|e| Error::failed(format!("reading the body: {}", e.without_url())))?;
        let ok = match self.expect.status {
            Some(s) => status.as_u16() == s,
            None => status.is_success(),
        };
        if !ok {
            return Err(Error::failed(format!(
                "{url} answered {status}, expected {}: {}",
                self.expect
                    .status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "2xx".into()),
                excerpt(body.trim(), 200)
            )));
        }
        if let Some(want) = &self.expect.body_contains {
            let want = ctx.expand("expect.body_contains", want)?;
            if !body.contains(&want) {
                return Err(Error::failed(format!(
                    "{url} answered {status} without {want:?} in the body: {}",
                    excerpt(body.trim(), 200)
                )));
            }
        }
        let trimmed = body.trim();
        Ok(Outcome {
            excerpt: format!("{status} {}", excerpt(trimmed, 1000)),
            ..Default::default()
        }
        .with("status", status.as_u16().to_string())
        .with("body", excerpt(trimmed, 64 * 1024))
        .with("value", trimmed.lines().next().unwrap_or("").to_string()))
    }
}
