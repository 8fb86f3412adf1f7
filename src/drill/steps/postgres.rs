//! `postgres`: a query with an expectation, `promote` (pg_promote(), then confirm
//! pg_is_in_recovery() is false), or `wait_for_replay` (a standby has replayed what it
//! received, or up to `lsn`). A query's first column of the first row is `${steps.<id>.value}`;
//! with `rpo_probe: true` that value is the newest surviving data's timestamp.

use super::{Ctx, Outcome, StepKind};
use crate::error::{Error, Result};
use crate::source::postgres::ConnInfo;
use serde::Deserialize;
use std::time::Duration;
use tokio_postgres::SimpleQueryMessage;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Postgres {
    pub url: String,
    #[serde(default)]
    pub query: Option<String>,
    /// The first column of the first row, in PostgreSQL's text form (`t`, `42`, `no rows`).
    #[serde(default)]
    pub expect: Option<String>,
    #[serde(default)]
    pub promote: bool,
    #[serde(default)]
    pub wait_for_replay: bool,
    /// With `wait_for_replay`: wait until replay reaches this LSN.
    #[serde(default)]
    pub lsn: Option<String>,
}

pub fn redact(url: &str) -> String {
    if url.contains("${") {
        return url.to_string();
    }
    ConnInfo::parse(url)
        .map(|c| c.redacted)
        .unwrap_or_else(|_| "<invalid URL>".into())
}

/// The first column of the first row, as text; None when there is no row.
async fn first_value(c: &tokio_postgres::Client, sql: &str) -> Result<(Option<String>, usize)> {
    let mut first = None;
    let mut rows = 0;
    for m in c.simple_query(sql).await? {
        if let SimpleQueryMessage::Row(r) = m {
            if rows == 0 {
                first = Some(r.get(0).unwrap_or("null").to_string());
            }
            rows += 1;
        }
    }
    Ok((first, rows))
}

#[async_trait::async_trait]
impl StepKind for Postgres {
    fn describe(&self) -> String {
        let what = if self.promote {
            "promote".to_string()
        } else if self.wait_for_replay {
            format!(
                "wait for replay{}",
                self.lsn
                    .as_ref()
                    .map(|l| format!(" to {l}"))
                    .unwrap_or_default()
            )
        } else {
            format!("query {:?}", self.query.as_deref().unwrap_or(""))
        };
        format!("{what} on {}", redact(&self.url))
    }

    fn check(&self) -> std::result::Result<(), String> {
        let n = [self.query.is_some(), self.promote, self.wait_for_replay]
            .iter()
            .filter(|b| **b)
            .count();
        if n != 1 {
            return Err(
                "give exactly one of `query`, `promote: true`, `wait_for_replay: true`".into(),
            );
        }
        if self.expect.is_some() && self.query.is_none() {
            return Err("`expect` goes with `query`".into());
        }
        if self.lsn.is_some() && !self.wait_for_replay {
            return Err("`lsn` goes with `wait_for_replay: true`".into());
        }
        Ok(())
    }

    async fn run(&self, ctx: &Ctx) -> Result<Outcome> {
        let url = ctx.expand("url", &self.url)?;
        let conn = ConnInfo::parse(&url)?;
        let c = conn.connect().await?;
        if self.promote {
            let (rec, _) = first_value(&c, "SELECT pg_is_in_recovery()").await?;
            if rec.as_deref() != Some("t") {
                return Err(Error::failed(format!(
                    "{} is not in recovery: there is no standby to promote",
                    conn.redacted
                ))
                .hint("point `url` at the standby"));
            }
            let wait = ctx.timeout.as_secs().clamp(1, 3600);
            let (done, _) = first_value(&c, &format!("SELECT pg_promote(true, {wait})")).await?;
            if done.as_deref() != Some("t") {
                return Err(Error::failed(format!(
                    "pg_promote() on {} did not finish within {wait}s",
                    conn.redacted
                )));
            }
            let (rec, _) = first_value(&c, "SELECT pg_is_in_recovery()").await?;
            if rec.as_deref() != Some("f") {
                return Err(Error::failed(format!(
                    "{} is still in recovery after pg_promote()",
                    conn.redacted
                )));
            }
            return Ok(Outcome {
                excerpt: format!("{} promoted: pg_is_in_recovery() = f", conn.redacted),
                ..Default::default()
            }
            .with("value", "promoted"));
        }
        if self.wait_for_replay {
            let sql = match &self.lsn {
                Some(l) => {
                    let l = ctx.expand("lsn", l)?;
                    if !l.chars().all(|c| c.is_ascii_hexdigit() || c == '/') {
                        return Err(Error::failed(format!(
                            "{l:?} is not an LSN (like 0/3000060)"
                        )));
                    }
                    format!("SELECT pg_last_wal_replay_lsn() >= '{l}'::pg_lsn")
                }
                None => "SELECT pg_last_wal_replay_lsn() >= pg_last_wal_receive_lsn()".into(),
            };
            loop {
                if first_value(&c, &sql).await?.0.as_deref() == Some("t") {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let (lsn, _) = first_value(&c, "SELECT pg_last_wal_replay_lsn()").await?;
            let lsn = lsn.unwrap_or_default();
            return Ok(Outcome {
                excerpt: format!("replayed up to {lsn}"),
                ..Default::default()
            }
            .with("value", lsn));
        }
        let sql = ctx.expand("query", self.query.as_deref().unwrap_or_default())?;
        let (first, rows) = first_value(&c, &sql).await?;
        let value = first.clone().unwrap_or_else(|| "no rows".into());
        if let Some(want) = &self.expect {
            let want = ctx.expand("expect", want)?;
            if !super::same(&value, &want) {
                return Err(Error::failed(format!(
                    "`{sql}` returned {value}, expected {want}"
                )));
            }
        }
        Ok(Outcome {
            excerpt: format!("{rows} row(s); first value: {value}"),
            ..Default::default()
        }
        .with("value", first.unwrap_or_default())
        .with("rows", rows.to_string()))
    }
}
