//! `drctl drill run|validate|list|report|history`.

use super::{is_text, print_json};
use crate::cli::{DrillCmd, DrillSelect, Output, ReportFormat};
use crate::config::Config;
use crate::drill::{self, engine, evidence, journal::Journal, measure, parse, plan, report};
use crate::error::{Error, Result};
use serde_json::json;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;

pub async fn run(
    explicit: Option<&Path>,
    cfg_path: &Path,
    cmd: DrillCmd,
    out: Output,
) -> Result<()> {
    // A drill needs the config only for engine steps and to store evidence in the
    // repository; without one (and none named) it runs with local evidence only.
    let config = || -> Result<Option<Arc<Config>>> {
        if explicit.is_some() || cfg_path.is_file() {
            Ok(Some(Arc::new(Config::load(cfg_path)?)))
        } else {
            Ok(None)
        }
    };
    match cmd {
        DrillCmd::Validate(a) => validate(&a.select, out),
        DrillCmd::List => list(out),
        DrillCmd::Run(a) => {
            let pb = drill::load(&a.select.playbook, &options(&a.select)?)?;
            if a.dry_run {
                return dry_run(&pb, out);
            }
            let cfg = config()?;
            run_drill(&pb, cfg, a.yes, a.rollback, &a.evidence_dir, out).await
        }
        DrillCmd::Report(a) => {
            let cfg = config()?;
            let r = evidence::find(cfg.as_deref(), &a.evidence_dir, &a.run).await?;
            match (a.format, out) {
                (ReportFormat::Json, _) | (ReportFormat::Text, Output::Json) => {
                    println!("{}", report::json(&r))
                }
                (ReportFormat::Markdown, _) => print!("{}", report::markdown(&r)),
                (ReportFormat::Html, _) => print!("{}", report::html(&r)),
                (ReportFormat::Text, Output::Text) => print!("{}", report::summary(&r)),
            }
            Ok(())
        }
        DrillCmd::History(a) => {
            let cfg = config()?;
            history(cfg.as_deref(), &a.evidence_dir, a.playbook.as_deref(), out).await
        }
    }
}

fn options(sel: &DrillSelect) -> Result<parse::Options> {
    let mut vars = Vec::new();
    for v in &sel.vars {
        let (k, val) = v
            .split_once('=')
            .ok_or_else(|| Error::usage(format!("--var {v:?}: write NAME=VALUE")))?;
        vars.push((k.trim().to_string(), val.to_string()));
    }
    Ok(parse::Options {
        scenario: sel.scenario.clone(),
        vars,
    })
}

fn validate(sel: &DrillSelect, out: Output) -> Result<()> {
    let pb = drill::load(&sel.playbook, &options(sel)?)?;
    let steps: Vec<_> = pb.items.iter().flat_map(|i| i.steps()).collect();
    let manual = steps.iter().filter(|s| s.kind_name == "manual").count();
    if is_text(out) {
        println!(
            "playbook {} ({}) is valid: {} steps ({manual} manual), {} rollback step(s){}",
            pb.name,
            pb.source,
            steps.len(),
            pb.rollback.len(),
            pb.guard.as_ref().map(|_| ", a guard").unwrap_or_default()
        );
    } else {
        print_json(
            &json!({ "valid": true, "playbook": pb.name, "source": pb.source, "scenario": pb.scenario,
            "steps": steps.len(), "manual_steps": manual, "rollback_steps": pb.rollback.len() }),
        )?;
    }
    Ok(())
}

fn list(out: Output) -> Result<()> {
    let mut rows = Vec::new();
    let mut add = |name: String, source: String, text: &str, stem: &str| {
        let mut entry = match parse::parse(&source, text, stem, &parse::Options::default()) {
            Ok(pb) => json!({ "name": name, "source": source, "description": pb.description,
                "title": pb.title,
                "steps": pb.items.iter().map(|i| i.steps().len()).sum::<usize>(),
                "rto_target_seconds": pb.targets.rto.map(|d| d.as_secs_f64()),
                "rpo_target_seconds": pb.targets.rpo.map(|d| d.as_secs_f64()) }),
            // Checklists with several scenarios, or playbooks needing --var or an environment
            // variable, still list, from their raw text.
            Err(p) => {
                let raw: serde_norway::Value = serde_norway::from_str(text).unwrap_or_default();
                let t = |k: &str| {
                    raw.get("targets")
                        .and_then(|t| t.get(k))
                        .and_then(|v| v.as_str())
                        .and_then(|v| humantime::parse_duration(v).ok())
                        .map(|d| d.as_secs_f64())
                };
                json!({ "name": name, "source": source,
                    "description": raw.get("description").and_then(|d| d.as_str()).unwrap_or(""),
                    "steps": raw.get("steps").and_then(|s| s.as_sequence()).map(|s| s.len()),
                    "rto_target_seconds": t("rto"), "rpo_target_seconds": t("rpo"),
                    "note": p.list.first().map(|x| x.message.clone()) })
            }
        };
        // A checklist's own fields, from its text: the same whether or not it parsed in full.
        let meta = crate::drill::checklist::metadata_of(text);
        entry["metadata"] = json!(meta);
        if let Some(due) = crate::drill::checklist::next_due(&meta) {
            entry["next_drill_due"] = json!(due.to_rfc3339());
            entry["overdue"] = json!(due < chrono::Utc::now());
        }
        rows.push(entry);
    };
    for (name, text) in drill::SHIPPED {
        add(name.to_string(), format!("shipped:{name}"), text, name);
    }
    for f in drill::local_playbooks() {
        if let Ok(text) = std::fs::read_to_string(&f) {
            let stem = f
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            add(stem.clone(), f.display().to_string(), &text, &stem);
        }
    }
    if !is_text(out) {
        return print_json(&rows);
    }
    println!(
        "{:<24} {:<40} {:>5}  {:<10} description",
        "name", "source", "steps", "targets"
    );
    for r in &rows {
        let t = |k: &str, n: &str| {
            r[k].as_f64()
                .map(|s| format!("{n} {}", measure::fmt_secs(s)))
        };
        let targets = [
            t("rto_target_seconds", "RTO"),
            t("rpo_target_seconds", "RPO"),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ");
        let desc = r["description"].as_str().unwrap_or("");
        let desc: String = desc
            .split(". ")
            .next()
            .unwrap_or("")
            .chars()
            .take(80)
            .collect();
        println!(
            "{:<24} {:<40} {:>5}  {:<10} {}",
            r["name"].as_str().unwrap_or(""),
            r["source"].as_str().unwrap_or(""),
            r["steps"]
                .as_u64()
                .map(|n| n.to_string())
                .unwrap_or_else(|| "?".into()),
            targets,
            desc.replace('\n', " ")
        );
        if r["overdue"] == json!(true) {
            println!(
                "{:<24} OVERDUE: the next drill was due {}",
                "",
                r["next_drill_due"].as_str().unwrap_or("")
            );
        }
        if let Some(meta) = r["metadata"].as_object().filter(|m| !m.is_empty()) {
            let shown: Vec<String> = meta
                .iter()
                .map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or("")))
                .collect();
            println!("{:<24} {}", "", shown.join(" · "));
        }
    }
    Ok(())
}

/// Variables whose values look secret are masked in the plan.
fn shown(name: &str, value: &str) -> String {
    let n = name.to_lowercase();
    if ["secret", "password", "token", "key"]
        .iter()
        .any(|w| n.contains(w))
        && !n.ends_with("_key")
    {
        "***".into()
    } else if value.contains("://") {
        crate::drill::steps::redact_url(value)
    } else {
        value.to_string()
    }
}

fn dry_run(pb: &plan::Playbook, out: Output) -> Result<()> {
    let step_json = |s: &plan::Step| {
        json!({ "id": s.id, "name": s.name, "owner": s.owner, "kind": s.kind_name,
        "timeout_seconds": s.timeout.as_secs_f64(), "retries": s.retries, "until_success_every_seconds": s.until_success.map(|d| d.as_secs_f64()),
        "on_failure": format!("{:?}", s.on_failure).to_lowercase(), "fault": s.fault, "recovered": s.recovered, "rpo_probe": s.rpo_probe,
        "target": s.kind.describe() })
    };
    if !is_text(out) {
        let items: Vec<_> = pb.items.iter().map(|i| match i {
            plan::Item::Step(s) => step_json(s),
            plan::Item::Parallel { id, name, steps } => json!({ "parallel": id, "name": name, "steps": steps.iter().map(step_json).collect::<Vec<_>>() }),
        }).collect();
        let vars: serde_json::Map<String, serde_json::Value> = pb
            .vars
            .iter()
            .map(|(k, v)| (k.clone(), json!(shown(k, v))))
            .collect();
        return print_json(
            &json!({ "dry_run": true, "playbook": pb.name, "scenario": pb.scenario, "source": pb.source,
            "targets": { "rto_seconds": pb.targets.rto.map(|d| d.as_secs_f64()), "rpo_seconds": pb.targets.rpo.map(|d| d.as_secs_f64()) },
            "vars": vars, "steps": items, "rollback": pb.rollback.iter().map(step_json).collect::<Vec<_>>(),
            "guard": pb.guard.as_ref().map(|g| json!({ "every_seconds": g.every.as_secs_f64(), "failures": g.failures, "step": step_json(&g.step) })) }),
        );
    }
    let fmt = |d: std::time::Duration| humantime::format_duration(d).to_string();
    println!("DRY RUN: nothing will be touched.");
    println!(
        "playbook {}{} ({})",
        pb.name,
        pb.scenario
            .as_ref()
            .map(|s| format!(" — {s}"))
            .unwrap_or_default(),
        pb.source
    );
    if !pb.description.is_empty() {
        println!("  {}", pb.description.trim());
    }
    println!(
        "targets: RTO {}, RPO {}",
        pb.targets.rto.map(fmt).unwrap_or_else(|| "none".into()),
        pb.targets.rpo.map(fmt).unwrap_or_else(|| "none".into())
    );
    if !pb.vars.is_empty() {
        println!("vars:");
        for (k, v) in &pb.vars {
            println!("  {k} = {}", shown(k, v));
        }
    }
    let line = |n: String, s: &plan::Step| {
        let mut marks = Vec::new();
        if s.fault {
            marks.push("FAULT (RTO/RPO start)".to_string());
        }
        if s.recovered {
            marks.push("RECOVERED (RTO stop)".to_string());
        }
        if s.rpo_probe {
            marks.push("RPO probe".to_string());
        }
        if let Some(e) = s.until_success {
            marks.push(format!("until success every {}", fmt(e)));
        }
        if s.retries > 0 {
            marks.push(format!("{} retries", s.retries));
        }
        if s.on_failure == plan::OnFailure::Continue {
            marks.push("continue on failure".into());
        }
        println!(
            "{n:>4} {:<22} [{}] {} · timeout {}{}",
            s.id,
            s.owner,
            s.kind_name,
            fmt(s.timeout),
            if marks.is_empty() {
                String::new()
            } else {
                format!(" · {}", marks.join(" · "))
            }
        );
        println!("       {}", s.name);
        println!("       → {}", s.kind.describe());
    };
    println!("steps:");
    for (i, item) in pb.items.iter().enumerate() {
        match item {
            plan::Item::Step(s) => line(format!("{}.", i + 1), s),
            plan::Item::Parallel { id, steps, .. } => {
                println!("{:>4} parallel group {id}:", format!("{}.", i + 1));
                for (j, s) in steps.iter().enumerate() {
                    line(format!("{}{}.", i + 1, (b'a' + j as u8) as char), s);
                }
            }
        }
    }
    if !pb.rollback.is_empty() {
        println!("rollback (after an abort, or with --rollback):");
        for (i, s) in pb.rollback.iter().enumerate() {
            line(format!("R{}.", i + 1), s);
        }
    }
    if let Some(g) = &pb.guard {
        println!(
            "guard: every {}, abort after {} failures in a row: {}",
            fmt(g.every),
            g.failures,
            g.step.kind.describe()
        );
    }
    Ok(())
}

async fn run_drill(
    pb: &plan::Playbook,
    cfg: Option<Arc<Config>>,
    yes: bool,
    rollback: bool,
    base: &Path,
    out: Output,
) -> Result<()> {
    // First SIGINT/SIGTERM: abort the drill, then roll back. Second: stop the rollback too.
    let (interrupt, hard_stop) =
        super::interrupt_tokens("aborting the drill, then rolling back (again to stop that too)");
    let opts = engine::RunOptions {
        run_id: drill::new_run_id(),
        yes,
        interactive: std::io::stdin().is_terminal(),
        rollback,
        config: cfg.clone(),
        interrupt,
        hard_stop,
    };
    engine::preflight(pb, &opts)?;
    let dir = evidence::run_dir(base, &pb.name, &opts.run_id);
    let journal = Arc::new(Journal::create(&dir.join("journal.jsonl"))?);
    let rec = engine::run(pb, opts, journal).await;
    evidence::write_local(&dir, &rec)?;
    let mut stored = vec![dir.display().to_string()];
    if let Some(cfg) = &cfg {
        let published = evidence::publish(cfg, &dir, &rec).await;
        for (region, error) in &published.failed {
            tracing::warn!(region = %region, error = %error, "drill evidence not stored in a region");
        }
        let ok = published.stored;
        crate::catalog::record_drill(cfg, &rec, &ok).await;
        if !ok.is_empty() {
            stored.push(format!(
                "drills/{}/{}/ in {}",
                rec.playbook,
                rec.run_id,
                ok.join(", ")
            ));
        }
    }
    if is_text(out) {
        print!("{}", report::summary(&rec));
        println!("  evidence: {}", stored.join("; "));
    } else {
        println!("{}", report::json(&rec));
    }
    let see = format!("see {}", dir.join("report.html").display());
    if rec.cause == Some(crate::drill::record::Abort::Interrupted) {
        Err(Error::interrupted(format!(
            "drill {} run {} was interrupted",
            rec.playbook, rec.run_id
        ))
        .hint(see))
    } else if rec.passed {
        Ok(())
    } else {
        Err(Error::failed(format!("drill {} run {} failed", rec.playbook, rec.run_id)).hint(see))
    }
}

async fn history(
    cfg: Option<&Config>,
    base: &Path,
    playbook: Option<&str>,
    out: Output,
) -> Result<()> {
    let (runs, warnings) = evidence::all(cfg, base).await;
    for w in &warnings {
        tracing::warn!(error = %w, "drill history incomplete");
    }
    let runs: Vec<_> = runs
        .into_iter()
        .filter(|r| playbook.is_none_or(|p| r.playbook == p))
        .collect();
    // Trend: this run's RTO against the previous run of the same playbook.
    let mut rows = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        let prev = runs[..i]
            .iter()
            .rev()
            .find(|p| p.playbook == r.playbook && p.scenario == r.scenario);
        let delta = match (prev.and_then(|p| p.rto.seconds), r.rto.seconds) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        };
        rows.push((r, delta));
    }
    if !is_text(out) {
        let v: Vec<_> = rows.iter().map(|(r, d)| json!({ "run_id": r.run_id, "playbook": r.playbook, "scenario": r.scenario,
            "started_at": r.started_at, "passed": r.passed, "rto": r.rto, "rpo": r.rpo, "rto_change_seconds": d })).collect();
        return print_json(&v);
    }
    if rows.is_empty() {
        println!(
            "no drill runs recorded (in {} or the repository)",
            base.display()
        );
        return Ok(());
    }
    println!(
        "{:<24} {:<22} {:<7} {:>10} {:>10} {:>10}",
        "run", "playbook", "result", "RTO", "RPO", "RTO trend"
    );
    for (r, d) in rows {
        let m = |x: &crate::drill::record::Metric| {
            x.seconds
                .map(measure::fmt_secs)
                .unwrap_or_else(|| "n/m".into())
        };
        let trend = d
            .map(|d| {
                format!(
                    "{}{}",
                    if d > 0.0 {
                        "+"
                    } else if d < 0.0 {
                        "-"
                    } else {
                        "±"
                    },
                    measure::fmt_secs(d.abs())
                )
            })
            .unwrap_or_default();
        println!(
            "{:<24} {:<22} {:<7} {:>10} {:>10} {:>10}",
            r.run_id,
            r.playbook,
            if r.passed { "passed" } else { "FAILED" },
            m(&r.rto),
            m(&r.rpo),
            trend
        );
    }
    Ok(())
}
