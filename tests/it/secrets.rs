//! Secrets stay secret: planted credentials (an S3 secret key, a DSN password, a TSIG key, a
//! webhook URL's token) never appear in any output at any log level, nor in any file drctl
//! writes; child processes do not inherit drctl's credentials.

use crate::common::*;

const DSN_PASSWORD: &str = "Dsn+Pa&ss-7781";
const TSIG_SECRET: &str = "c2VjcmV0LXRzaWcta2V5LTc3ODE=";
const WEBHOOK_TOKEN: &str = "hooktoken7781xyz";
const UNRELATED: &str = "unrelated-credential-7781";

fn planted(w: &World) -> Vec<String> {
    let g = garage();
    vec![
        g.secret.clone(),
        DSN_PASSWORD.into(),
        "Dsn%2BPa%26ss-7781".into(),
        TSIG_SECRET.into(),
        WEBHOOK_TOKEN.into(),
        UNRELATED.into(),
        w.dir.display().to_string() + "/never", // a control: absent by construction
    ]
}

#[test]
fn no_log_level_and_no_written_file_shows_a_secret() {
    let pg = pg();
    let db = db_name("secret_src");
    seed(pg, &db);
    let w = World::new("secrets");
    let g = garage();
    // The DSN carries a password (the test server trusts loopback, so any password works).
    let url = pg.url(&db).replacen(
        "postgres://postgres@",
        "postgres://postgres:Dsn%2BPa%26ss-7781@",
        1,
    );
    let hook_port = free_port(); // nothing listens: the notifier fails and logs
    let scratch = pg.url("postgres").replacen(
        "postgres://postgres@",
        "postgres://postgres:Dsn%2BPa%26ss-7781@",
        1,
    );
    let text = w
        .regions()
        .notification(&format!(
            "{{ kind: webhook, url: \"http://127.0.0.1:{hook_port}/hooks/{WEBHOOK_TOKEN}\", on: [failure, success], timeout: 2s }}"
        ))
        .job(
            "app",
            &pg_source(&url, &[]),
            &[&format!("verify: {{ level: restore, scratch: \"{scratch}\" }}")],
        )
        .text();
    w.write_config(&text);
    let playbook = w.dir.join("tsig.yaml");
    std::fs::write(
        &playbook,
        format!(
            "name: tsig-secret\nsteps:\n  - id: update\n    owner: SRE\n    timeout: 3s\n    kind: dns\n    server: 127.0.0.1:{p}\n    zone: example.test.\n    tsig: {{ name: drill-key, algorithm: hmac-sha256, secret: \"{TSIG_SECRET}\" }}\n    update: {{ name: app.example.test., type: A, ttl: 30, data: [192.0.2.1] }}\n",
            p = free_port()
        ),
    )
    .unwrap();
    let pb = playbook.to_str().unwrap();
    let commands: Vec<Vec<&str>> = vec![
        vec!["config", "validate"],
        vec!["-o", "json", "config", "validate"],
        vec!["backup", "run", "app"],
        vec!["-o", "json", "backup", "run", "app"],
        vec!["backup", "list"],
        vec!["status"],
        // structure, not restore: a scratch database would race the verify tests that
        // assert none is left on the shared server.
        vec!["verify", "app", "--level", "structure"],
        vec!["prune", "--dry-run"],
        vec!["k8s", "render", "--image", "x/drctl:1"],
        vec!["drill", "validate", pb],
        vec!["drill", "run", pb, "--dry-run"],
        vec!["drill", "run", pb],
    ];
    let secrets = planted(&w);
    let mut leaks = Vec::new();
    for level in ["trace", "debug", "info"] {
        for args in &commands {
            let o = w
                .cmd(args)
                .current_dir(&w.dir)
                .env("RUST_LOG", level)
                .env("DRCTL_EVIDENCE_DIR", w.dir.join("evidence"))
                .env("DRCTL_TEST_UNRELATED", UNRELATED)
                .output()
                .unwrap();
            let all = format!("{}{}", stdout(&o), stderr(&o));
            for s in &secrets {
                if all.contains(s.as_str()) {
                    leaks.push(format!(
                        "RUST_LOG={level} drctl {}: shows {s:?}",
                        args.join(" ")
                    ));
                }
            }
        }
    }
    // Every file drctl wrote: the fs region, the evidence, anything in the world — and the
    // S3 region's objects, copied down with the aws CLI.
    let s3_copy = w.dir.join("s3-copy");
    let sync = g.aws(&[
        "s3",
        "sync",
        &format!("s3://{}{}", g.bucket, w.s3_root),
        s3_copy.to_str().unwrap(),
    ]);
    assert!(sync.status.success(), "{}", stderr(&sync));
    assert!(
        files_under(&s3_copy)
            .iter()
            .any(|f| f.ends_with("manifest.json")),
        "nothing was copied from the S3 region"
    );
    let written = files_under(&w.dir);
    for f in written
        .iter()
        .filter(|f| !f.ends_with("drctl.yaml") && !f.ends_with("tsig.yaml"))
    {
        let text = String::from_utf8_lossy(&std::fs::read(f).unwrap()).into_owned();
        for s in &secrets {
            if text.contains(s.as_str()) {
                leaks.push(format!("{} holds {s:?}", f.display()));
            }
        }
    }
    assert!(
        written.iter().any(|f| f.ends_with("manifest.json")),
        "no backup was written"
    );
    assert!(leaks.is_empty(), "\n{}", leaks.join("\n"));
}

#[test]
fn child_processes_get_a_base_environment_not_drctls_credentials() {
    let db = db_name("childenv_src");
    seed(pg(), &db);
    let w = World::new("childenv");
    // A pg_dump stand-in that records its environment, then dumps for real.
    let env_file = w.dir.join("pg_dump.env");
    let fake = w.dir.join("pg_dump");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nenv > {}\nexec pg_dump \"$@\"\n",
            env_file.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    w.two_regions(
        2,
        &pg().url(&db),
        &[&format!("pg_dump: \"{}\"", fake.display())],
    );
    let o = w
        .cmd(&["backup", "run", "app"])
        .env("DRCTL_TEST_UNRELATED", UNRELATED)
        .env("PGCONNECT_TIMEOUT", "7")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let env = std::fs::read_to_string(&env_file).unwrap();
    assert!(
        !env.contains(UNRELATED),
        "pg_dump saw an unrelated variable:\n{env}"
    );
    assert!(
        !env.contains(&garage().secret),
        "pg_dump saw the S3 secret key:\n{env}"
    );
    assert!(
        env.lines().any(|l| l == "PGCONNECT_TIMEOUT=7"),
        "libpq settings pass:\n{env}"
    );
    assert!(env.lines().any(|l| l.starts_with("PATH=")), "{env}");

    // A shell step: the base set plus what it declares.
    let pb = w.dir.join("env.yaml");
    std::fs::write(
        &pb,
        "name: env-check\nsteps:\n  - id: show\n    owner: SRE\n    timeout: 5s\n    kind: shell\n    env: { WANTED: \"yes\" }\n    run: \"env\"\n",
    )
    .unwrap();
    let o = w
        .cmd(&["-o", "json", "drill", "run", pb.to_str().unwrap()])
        .env("DRCTL_TEST_UNRELATED", UNRELATED)
        .env("DRCTL_EVIDENCE_DIR", w.dir.join("ev"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = files_under(&w.dir.join("ev"));
    let journal = out
        .iter()
        .find(|f| f.ends_with("journal.jsonl"))
        .map(|f| std::fs::read_to_string(f).unwrap())
        .unwrap_or_default();
    let all = format!("{}{journal}", stdout(&o));
    assert!(all.contains("WANTED=yes"), "{all}");
    assert!(
        !all.contains(UNRELATED) && !all.contains("TEST_S3_SECRET"),
        "{all}"
    );
}
