//! Malformed configs: each error must name file:line:column and the field path, exit 2.

use crate::common::World;

const GOOD_HEAD: &str = "regions:\n  - name: a\n    kind: fs\n    root: /tmp/x\n  - name: b\n    kind: fs\n    root: /tmp/y\n";
const GOOD_JOB: &str =
    "jobs:\n  - name: app\n    source: { kind: postgres, url: \"postgres://u@h:5432/db\" }\n";

/// (name, config text, expected substrings of the error: position, field path, cause)
fn cases() -> Vec<(&'static str, String, Vec<&'static str>)> {
    vec![
        ("unknown top-level field", format!("{GOOD_HEAD}{GOOD_JOB}regionz: []\n"), vec!["drctl.yaml:11:1", "unknown field `regionz`"]),
        ("unknown region field", "regions:\n  - name: a\n    kind: fs\n    rot: /x\njobs: []\n".into(), vec!["drctl.yaml:4:5", "regions[0]", "unknown field `rot`"]),
        ("unknown region kind", "regions:\n  - name: a\n    kind: ftp\n    root: /x\njobs: []\n".into(), vec!["drctl.yaml:3:11", "regions[0].kind", "unknown variant `ftp`"]),
        ("four-field cron", format!("{GOOD_HEAD}{GOOD_JOB}    schedule: \"0 * * *\"\n"), vec!["drctl.yaml:11:15", "jobs[0].schedule", "expected 5 cron fields"]),
        ("cron minute out of range", format!("{GOOD_HEAD}{GOOD_JOB}    schedule: \"61 * * * *\"\n"), vec!["drctl.yaml:11:15", "jobs[0].schedule", "invalid schedule"]),
        ("bad duration", format!("{GOOD_HEAD}{GOOD_JOB}    rpo: one hour\n"), vec!["drctl.yaml:11:10", "jobs[0].rpo"]),
        (
            "missing environment variable",
            "regions:\n  - name: a\n    kind: s3\n    bucket: b\n    secret_access_key: ${DRCTL_TEST_SURELY_UNSET}\njobs: []\n".into(),
            vec!["drctl.yaml:5:24", "regions[0].secret_access_key", "DRCTL_TEST_SURELY_UNSET is not set"],
        ),
        ("min_copies above regions", format!("{GOOD_HEAD}min_copies: 3\n{GOOD_JOB}"), vec!["drctl.yaml:8:1", "min_copies", "between 1 and the number of regions (2)"]),
        ("duplicate job", format!("{GOOD_HEAD}{GOOD_JOB}  - name: app\n    source: {{ kind: postgres, url: \"postgres://u@h/db\" }}\n"), vec!["drctl.yaml:11:5", "jobs[1].name", "duplicate job name"]),
        ("fs region without root", "regions:\n  - name: a\n    kind: fs\njobs: []\n".into(), vec!["drctl.yaml:2:5", "regions[0].root", "needs `root`"]),
        ("yaml syntax", format!("{GOOD_HEAD}jobs: [\n  - name: x\n"), vec!["drctl.yaml:9:"]),
        ("unknown source kind", format!("{GOOD_HEAD}jobs:\n  - name: app\n    source: {{ kind: mongodb, url: x }}\n"), vec!["drctl.yaml:10:", "jobs[0].source", "unknown variant `mongodb`"]),
        ("invalid job name", format!("{GOOD_HEAD}jobs:\n  - name: App DB\n    source: {{ kind: postgres, url: \"postgres://u@h/db\" }}\n"), vec!["drctl.yaml:9:11", "jobs[0].name", "invalid name"]),
        ("compression level", format!("{GOOD_HEAD}{GOOD_JOB}    compression: {{ codec: zstd, level: 40 }}\n"), vec!["drctl.yaml:11:", "jobs[0].compression", "out of range"]),
        ("source url scheme", format!("{GOOD_HEAD}jobs:\n  - name: app\n    source: {{ kind: postgres, url: \"mysql://u@h/db\" }}\n"), vec!["drctl.yaml:10:36", "jobs[0].source.url", "not postgres://"]),
        ("chroma url scheme", format!("{GOOD_HEAD}jobs:\n  - name: v\n    source: {{ kind: chroma, url: \"ftp://h:8000\" }}\n"), vec!["drctl.yaml:10:34", "jobs[0]", "not an http:// or https:// URL"]),
        ("redis method", format!("{GOOD_HEAD}jobs:\n  - name: c\n    source: {{ kind: redis, url: \"redis://h\", method: bgsave }}\n"), vec!["drctl.yaml:10:54", "jobs[0]", "unknown variant `bgsave`"]),
        ("assertions on redis", format!("{GOOD_HEAD}jobs:\n  - name: c\n    source: {{ kind: redis, url: \"redis://h\" }}\n    verify:\n      level: restore\n      assertions:\n        - {{ sql: \"SELECT 1\", expect: 1 }}\n"), vec!["drctl.yaml:13:7", "jobs[0].verify.assertions", "apply to postgres jobs, not redis"]),
        ("assertion without expect", format!("{GOOD_HEAD}{GOOD_JOB}    verify:\n      level: structure\n      assertions:\n        - {{ sql: \"SELECT 1\" }}\n"), vec!["drctl.yaml:14:", "jobs[0].verify.assertions[0]", "missing field `expect`"]),
        ("qdrant unknown field", format!("{GOOD_HEAD}jobs:\n  - name: q\n    source: {{ kind: qdrant, url: \"http://h:6333\", apikey: x }}\n"), vec!["drctl.yaml:10:51", "jobs[0]", "unknown field `apikey`"]),
    ]
}

#[test]
fn malformed_configs_name_position_and_field() {
    let w = World::new("config");
    let mut failures = vec![];
    for (name, text, expected) in cases() {
        w.write_config(&text);
        let o = w.drctl(&["config", "validate"]);
        let err = crate::common::stderr(&o);
        if o.status.code() != Some(2) {
            failures.push(format!("{name}: exit {:?}, stderr: {err}", o.status.code()));
            continue;
        }
        for e in &expected {
            if !err.contains(e) {
                failures.push(format!("{name}: expected {e:?} in: {err}"));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn valid_config_passes_and_schema_prints() {
    let w = World::new("config-ok");
    w.write_config(&format!("{GOOD_HEAD}min_copies: 1\n{GOOD_JOB}    schedule: \"@hourly\"\n    rpo: 1h30m\n    compression: {{ codec: gzip, level: 6 }}\n"));
    let o = w.drctl(&["-o", "json", "config", "validate"]);
    assert!(o.status.success(), "{}", crate::common::stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["min_copies"], 1);
    assert_eq!(v["jobs"][0], "app");
    let o = w.drctl(&["config", "schema"]);
    let schema: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(schema["properties"]["regions"].is_object(), "{schema}");
}

#[test]
fn missing_config_file_is_a_usage_error() {
    let w = World::new("config-missing");
    let o = w.drctl(&["backup", "list"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        crate::common::stderr(&o).contains("cannot read config"),
        "{}",
        crate::common::stderr(&o)
    );
}

/// Five problems in three jobs, in block and flow style with comments between: every one is
/// reported, each at its own line and column with its field path, in file order — not just
/// the first, and not at the first line that happens to hold the same key.
#[test]
fn every_problem_of_a_config_is_reported_at_its_own_position() {
    let w = World::new("config-five");
    let text = "\
regions:
  - { name: a, kind: fs, root: /tmp/x }   # one region, flow style
jobs:
  - name: app
    source: { kind: postgres, url: \"postgres://u@h:5432/db\" }
    retention: { keep_last: 3 }
    rpo: 0s                                # 1: can never be met
  - name: cache
    source:
      kind: redis
      url: \"redis://h:6379\"
      methd: dump                          # 2: unknown field
    schedule: \"61 * * * *\"                 # 3: minute out of range
  - name: vectors
    # retention below has no rule
    source: { kind: chroma, url: \"http://c:8000\", page_size: 0 }  # 4: page_size 0
    retention: {}                          # 5: no keep_* rule
";
    w.write_config(text);
    let o = w.drctl(&["config", "validate"]);
    let err = crate::common::stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    let want = [
        (
            "drctl.yaml:7:5: jobs[0].rpo: ",
            "`rpo: 0s` can never be met",
        ),
        ("drctl.yaml:12:7: jobs[1].source: ", "unknown field `methd`"),
        (
            "drctl.yaml:13:15: jobs[1].schedule: ",
            "invalid schedule \"61 * * * *\"",
        ),
        ("drctl.yaml:16:51: jobs[2].source.page_size: ", "at least 1"),
        ("drctl.yaml:17:5: jobs[2].retention: ", "no keep_* rule"),
    ];
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("drctl.yaml:")).collect();
    assert_eq!(lines.len(), want.len(), "one line per problem:\n{err}");
    for ((at, what), line) in want.iter().zip(&lines) {
        assert!(
            line.contains(at) && line.contains(what),
            "want {at}{what}, got: {line}\nall:\n{err}"
        );
    }
}

/// The RTO and drill-cadence fields: a zero target, a zero cadence, a cadence that is no
/// duration and an unknown key under `drills` are each named at their own position.
#[test]
fn rto_and_drill_cadence_problems_are_reported_where_they_are() {
    let w = World::new("config-rto");
    let check = |text: &str, want: &[(&str, &str)]| {
        w.write_config(text);
        let o = w.drctl(&["config", "validate"]);
        let err = crate::common::stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{err}");
        for (at, what) in want {
            assert!(
                err.lines().any(|l| l.contains(at) && l.contains(what)),
                "want {at} … {what}:\n{err}"
            );
        }
    };
    let head = "regions:\n  - { name: a, kind: fs, root: /tmp/x }\n";
    let job =
        "jobs:\n  - name: app\n    source: { kind: postgres, url: \"postgres://u@h:5432/db\" }\n";
    check(
        &format!("{head}drills:\n  cadence:\n    region-failure: 90d\n    quick: often\n{job}    rto: 0s\n"),
        &[
            ("drctl.yaml:6:12: drills.cadence.quick: ", "expected a duration"),
            ("drctl.yaml:10:5: jobs[0].rto: ", "`rto: 0s` can never be met"),
        ],
    );
    check(
        &format!("{head}drills:\n  cadense: {{}}\n{job}"),
        &[("drctl.yaml:4:3: drills: ", "unknown field `cadense`")],
    );
    check(
        &format!("{head}drills: {{ cadence: {{ region-failure: 0s }} }}\n{job}"),
        &[(
            "drctl.yaml:3:22: drills.cadence.region-failure: ",
            "0s is overdue at once",
        )],
    );
}
