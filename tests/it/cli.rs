//! The command line's habits: completions, man pages kept current in `docs/man/`, the
//! version with its git revision, `-o json` errors as one object on stderr, the
//! environment variables for the global flags, config discovery, `--quiet`, and the exit
//! codes scripts branch on.

use crate::common::*;
use std::path::Path;
use std::process::Command;

fn drctl(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_drctl"))
        .args(args)
        .env_remove("DRCTL_CONFIG")
        .env_remove("DRCTL_OUTPUT")
        .env_remove("DRCTL_LOG_FORMAT")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

#[test]
fn completions_for_bash_zsh_and_fish_name_every_command() {
    for shell in ["bash", "zsh", "fish"] {
        let o = drctl(&["completion", shell]);
        assert!(o.status.success(), "{shell}: {}", stderr(&o));
        let script = stdout(&o);
        for sub in [
            "backup",
            "restore",
            "verify",
            "prune",
            "drill",
            "completion",
        ] {
            assert!(script.contains(sub), "{shell} completion lacks {sub}");
        }
    }
    assert_eq!(drctl(&["completion", "tcsh"]).status.code(), Some(2));
}

/// `docs/man/` is what `drctl man --dir` writes today: regenerate it with
/// `cargo run -- man --dir docs/man` when the command line changes.
#[test]
fn man_pages_in_docs_are_current() {
    let dir = tempdir("man-");
    let o = drctl(&["man", "--dir", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let kept = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/man");
    let names = |d: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names(&dir),
        names(&kept),
        "pages added or removed: regenerate docs/man"
    );
    for n in names(&dir) {
        let (new, old) = (
            std::fs::read_to_string(dir.join(&n)).unwrap(),
            std::fs::read_to_string(kept.join(&n)).unwrap(),
        );
        assert!(
            new == old,
            "docs/man/{n} is stale: run `cargo run -- man --dir docs/man`"
        );
    }
    assert!(stdout(&drctl(&["man"])).contains(".TH drctl 1"));
}

#[test]
fn version_names_the_git_revision() {
    let v = stdout(&drctl(&["--version"]));
    let rev = v
        .trim()
        .rsplit_once('(')
        .map(|(_, r)| r.trim_end_matches(')'));
    assert!(
        v.starts_with(concat!("drctl ", env!("CARGO_PKG_VERSION"), " ("))
            && rev.is_some_and(|r| !r.is_empty()),
        "{v}"
    );
}

/// Under `-o json` (or `DRCTL_OUTPUT=json`) an error is one JSON object on stderr.
#[test]
fn json_errors_are_one_object_on_stderr() {
    let w = World::new("cli-json");
    for via_env in [false, true] {
        let mut c = Command::new(env!("CARGO_BIN_EXE_drctl"));
        c.arg("-c").arg(w.dir.join("missing.yaml")).arg("status");
        if via_env {
            c.env("DRCTL_OUTPUT", "json");
        } else {
            c.args(["-o", "json"]);
        }
        let o = c.env_remove("DRCTL_CONFIG").output().unwrap();
        assert_eq!(o.status.code(), Some(2));
        let err = stderr(&o);
        let v: serde_json::Value = serde_json::from_str(err.trim())
            .unwrap_or_else(|e| panic!("not one JSON object ({e}): {err}"));
        assert_eq!(v["error"]["kind"], "usage", "{v}");
        assert_eq!(v["error"]["exit_code"], 2, "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("missing.yaml"),
            "{v}"
        );
        assert!(v["error"]["hint"].is_string(), "{v}");
    }
}

/// `$DRCTL_CONFIG` is used without `-c`, and `-c` wins over it; with neither, the error
/// names ./drctl.yaml and says where else drctl looks.
#[test]
fn config_discovery_order() {
    let w = World::new("cli-discovery");
    w.write_config(&ConfigText::default().fs("a", &w.fs_root).text());
    let validate = |env: Option<&Path>, flag: Option<&Path>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_drctl"));
        c.current_dir(&w.dir).env_remove("DRCTL_CONFIG");
        if let Some(e) = env {
            c.env("DRCTL_CONFIG", e);
        }
        if let Some(f) = flag {
            c.arg("-c").arg(f);
        }
        c.args(["config", "validate"]).output().unwrap()
    };
    let elsewhere = tempdir("cli-none-");
    assert!(validate(Some(&w.config), None).status.success());
    let o = validate(Some(&w.config), Some(&elsewhere.join("nope.yaml")));
    assert_eq!(o.status.code(), Some(2), "-c wins over DRCTL_CONFIG");
    // From the world's directory, ./drctl.yaml is found.
    assert!(validate(None, None).status.success());
    let o = Command::new(env!("CARGO_BIN_EXE_drctl"))
        .current_dir(&elsewhere)
        .env_remove("DRCTL_CONFIG")
        .args(["config", "validate"])
        .output()
        .unwrap();
    if !Path::new("/etc/drctl/drctl.yaml").exists() {
        assert_eq!(o.status.code(), Some(2));
        assert!(
            stderr(&o).contains("/etc/drctl/drctl.yaml"),
            "{}",
            stderr(&o)
        );
    }
}

/// `k8s render` refuses the cron extensions croner (and so the daemon) accepts but the
/// CronJob controller does not.
#[test]
fn k8s_render_refuses_cron_extensions_kubernetes_rejects() {
    let w = World::new("cli-cron-ext");
    for sched in ["0 3 L * *", "0 3 * * 5#3", "0 3 15W * *"] {
        let schedule = format!("schedule: \"{sched}\"");
        let source = "{ kind: postgres, url: \"postgres://u@h:5432/db\" }";
        w.write_config(
            &ConfigText::default()
                .fs("a", &w.fs_root)
                .job("app", source, &[&schedule])
                .text(),
        );
        let o = w.drctl(&["config", "validate"]);
        assert!(
            o.status.success(),
            "the daemon accepts {sched}: {}",
            stderr(&o)
        );
        let o = w.drctl(&["k8s", "render", "--image", "drctl:1"]);
        assert_eq!(o.status.code(), Some(2), "{sched}: {}", stdout(&o));
        assert!(
            stderr(&o).contains("Kubernetes CronJob refuses"),
            "{sched}: {}",
            stderr(&o)
        );
    }
}

/// `--quiet` leaves errors only on stderr.
#[test]
fn quiet_logs_errors_only() {
    let w = World::new("cli-quiet");
    let pb = w.dir.join("nap.yaml");
    std::fs::write(
        &pb,
        "name: nap\nsteps:\n  - { id: nap, owner: SRE, timeout: 5s, kind: sleep, duration: 10ms }\n",
    )
    .unwrap();
    let run = |quiet: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_drctl"));
        c.current_dir(&w.dir)
            .env_remove("RUST_LOG")
            .env_remove("DRCTL_CONFIG");
        c.args(["--log-format", "json"]);
        if quiet {
            c.arg("--quiet");
        }
        c.args(["drill", "run"])
            .arg(&pb)
            .args(["--evidence-dir"])
            .arg(w.dir.join("ev"));
        c.output().unwrap()
    };
    let (loud, quiet) = (run(false), run(true));
    assert!(
        loud.status.success() && quiet.status.success(),
        "{}",
        stderr(&quiet)
    );
    let info = |o: &std::process::Output| {
        stderr(o)
            .lines()
            .filter(|l| l.contains("\"level\":\"INFO\""))
            .count()
    };
    assert!(info(&loud) > 0, "the drill logs at info: {}", stderr(&loud));
    assert_eq!(info(&quiet), 0, "{}", stderr(&quiet));
}
