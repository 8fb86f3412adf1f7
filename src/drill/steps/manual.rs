//! `manual`: a person does something and confirms it. On a terminal the engine shows the
//! action and owner and waits for y / n / skip (within the step's timeout); `--yes`
//! confirms all; off a terminal without `--yes` the drill refuses to start rather than hang.

use super::{Ctx, Outcome, StepKind};
use crate::error::{Error, Result};
use serde::Deserialize;
use std::io::Write;
use tokio::sync::{mpsc, Mutex};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manual {
    /// What the person must do.
    pub action: String,
}

/// Asks people, one question at a time (parallel manual steps queue up).
#[derive(Debug)]
pub struct Prompter {
    pub yes: bool,
    pub interactive: bool,
    lines: Mutex<Option<mpsc::Receiver<String>>>,
}

impl Prompter {
    pub fn new(yes: bool, interactive: bool) -> Self {
        Prompter {
            yes,
            interactive,
            lines: Mutex::new(None),
        }
    }

    /// Standard input, line by line, read by one thread for the whole run so a prompt that
    /// timed out leaves nothing blocked behind it.
    async fn next_line(rx: &mut Option<mpsc::Receiver<String>>) -> Option<String> {
        let rx = rx.get_or_insert_with(|| {
            let (tx, rx) = mpsc::channel(4);
            std::thread::spawn(move || {
                let stdin = std::io::stdin();
                let mut line = String::new();
                loop {
                    line.clear();
                    match stdin.read_line(&mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            if tx.blocking_send(line.trim().to_string()).is_err() {
                                break;
                            }
                        }
                    }
                }
            });
            rx
        });
        rx.recv().await
    }
}

#[async_trait::async_trait]
impl StepKind for Manual {
    fn describe(&self) -> String {
        format!("manual: {}", self.action)
    }

    async fn run(&self, ctx: &Ctx) -> Result<Outcome> {
        let action = ctx.expand("action", &self.action)?;
        let p = &ctx.prompter;
        if p.yes {
            eprintln!(
                "  [{}] {}: {action} — confirmed by --yes",
                ctx.owner, ctx.step_name
            );
            return Ok(Outcome {
                excerpt: "confirmed by --yes (not by a person)".into(),
                confirmed_by_flag: true,
                ..Default::default()
            }
            .with("answer", "yes"));
        }
        if !p.interactive {
            return Err(Error::usage(format!(
                "manual step `{}` needs {} to confirm it, and standard input is not a terminal",
                ctx.step_id, ctx.owner
            ))
            .hint("run the drill on a terminal, or pass --yes to confirm every manual step"));
        }
        let mut lines = p.lines.lock().await;
        loop {
            eprint!(
                "\n▶ [{}] {}\n  {action}\n  Done? [y]es / [n]o / [s]kip (timeout {}): ",
                ctx.owner,
                ctx.step_name,
                humantime::format_duration(ctx.timeout)
            );
            let _ = std::io::stderr().flush();
            let Some(answer) = Prompter::next_line(&mut lines).await else {
                return Err(Error::failed("standard input closed before an answer"));
            };
            match answer.to_lowercase().as_str() {
                "y" | "yes" => {
                    return Ok(Outcome {
                        excerpt: format!("confirmed by {}", ctx.owner),
                        ..Default::default()
                    }
                    .with("answer", "yes"))
                }
                "s" | "skip" => {
                    return Ok(Outcome {
                        excerpt: format!("skipped by {}", ctx.owner),
                        skipped: true,
                        ..Default::default()
                    }
                    .with("answer", "skip"))
                }
                "n" | "no" => {
                    return Err(Error::failed(format!(
                        "{} answered no: the action was not done",
                        ctx.owner
                    )))
                }
                _ => eprintln!("  please answer y, n or s"),
            }
        }
    }
}
