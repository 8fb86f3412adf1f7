//! `redis`: a command with an expected reply, `promote` (REPLICAOF NO ONE, then confirm
//! `role:master`), or `sentinel_failover: <master>` against a Sentinel (SENTINEL FAILOVER,
//! then wait until it names a new master).

use super::{redact_url as redact, Ctx, Outcome, StepKind};
use crate::error::{Error, Result};
use crate::source::redis::conn::{Conn, Reply};
use crate::source::redis::Target;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redis {
    pub url: String,
    #[serde(default)]
    pub command: Option<Vec<String>>,
    #[serde(default)]
    pub expect: Option<String>,
    #[serde(default)]
    pub promote: bool,
    /// The master name; `url` is then a Sentinel.
    #[serde(default)]
    pub sentinel_failover: Option<String>,
}

fn text(r: &Reply) -> String {
    match r {
        Reply::Simple(s) | Reply::Error(s) => s.clone(),
        Reply::Int(i) => i.to_string(),
        Reply::Bulk(Some(b)) => String::from_utf8_lossy(b).into_owned(),
        Reply::Bulk(None) | Reply::Array(None) => "nil".into(),
        Reply::Array(Some(items)) => items.iter().map(text).collect::<Vec<_>>().join("\n"),
    }
}

async fn role(c: &mut Conn) -> Result<String> {
    let info = c.bulk(&["INFO", "replication"]).await?;
    Ok(info
        .lines()
        .find_map(|l| l.strip_prefix("role:"))
        .unwrap_or("unknown")
        .trim()
        .to_string())
}

#[async_trait::async_trait]
impl StepKind for Redis {
    fn describe(&self) -> String {
        let what = if self.promote {
            "REPLICAOF NO ONE".to_string()
        } else if let Some(m) = &self.sentinel_failover {
            format!("SENTINEL FAILOVER {m}")
        } else {
            self.command.clone().unwrap_or_default().join(" ")
        };
        format!("{what} on {}", redact(&self.url))
    }

    fn check(&self) -> std::result::Result<(), String> {
        let n = [
            self.command.is_some(),
            self.promote,
            self.sentinel_failover.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if n != 1 {
            return Err(
                "give exactly one of `command`, `promote: true`, `sentinel_failover`".into(),
            );
        }
        if matches!(&self.command, Some(c) if c.is_empty()) {
            return Err("`command` is empty".into());
        }
        if self.expect.is_some() && self.command.is_none() {
            return Err("`expect` goes with `command`".into());
        }
        Ok(())
    }

    async fn run(&self, ctx: &Ctx) -> Result<Outcome> {
        let url = ctx.expand("url", &self.url)?;
        let mut c = Conn::open(&Target::parse(&url)?).await?;
        if self.promote {
            let before = role(&mut c).await?;
            if before != "slave" {
                return Err(Error::failed(format!(
                    "{} is a {before}, not a replica: nothing to promote",
                    redact(&url)
                ))
                .hint("point `url` at the replica"));
            }
            c.simple(&["REPLICAOF", "NO", "ONE"]).await?;
            while role(&mut c).await? != "master" {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            return Ok(Outcome {
                excerpt: format!("{} promoted: role:master", redact(&url)),
                ..Default::default()
            }
            .with("value", "master"));
        }
        if let Some(master) = &self.sentinel_failover {
            let master = ctx.expand("sentinel_failover", master)?;
            let addr = |r: Reply| text(&r).replace('\n', ":");
            let before = addr(
                c.call(&["SENTINEL", "get-master-addr-by-name", &master])
                    .await?,
            );
            c.simple(&["SENTINEL", "FAILOVER", &master]).await?;
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let now = addr(
                    c.call(&["SENTINEL", "get-master-addr-by-name", &master])
                        .await?,
                );
                if now != before && now != "nil" {
                    return Ok(Outcome {
                        excerpt: format!("{master}: {before} → {now}"),
                        ..Default::default()
                    }
                    .with("value", now));
                }
            }
        }
        let mut args = Vec::new();
        for (i, a) in self.command.iter().flatten().enumerate() {
            args.push(ctx.expand(&format!("command[{i}]"), a)?);
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let reply = text(&c.call(&argv).await?);
        if let Some(want) = &self.expect {
            let want = ctx.expand("expect", want)?;
            if !super::same(&reply, &want) {
                return Err(Error::failed(format!(
                    "{} returned {reply:?}, expected {want:?}",
                    argv[0]
                )));
            }
        }
        Ok(Outcome {
            excerpt: super::excerpt(&reply, 1000),
            ..Default::default()
        }
        .with("value", reply))
    }
}
