//! The bad-input corpus: every malformed config (`tests/bad_input/config/`) and playbook
//! (`tests/bad_input/playbook/`) gets exit 2 and an error at the `file:line:column` it must
//! name, within 1 s of CPU and 100 MiB; plus cases too big to keep as files (huge scalars, alias
//! bombs by size and by depth, 10k-deep nesting, a file over the size limit), made here.
//! One small file per case; the table says what each must produce.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/bad_input");

/// (case, exit code, "line:column" the error must name, a fragment of the message).
const CONFIGS: &[(&str, i32, &str, &str)] = &[
    (
        "alias-as-key",
        2,
        "9:1",
        "an alias as a mapping key is not supported",
    ),
    (
        "assertion-empty-sql",
        2,
        "11:13",
        "jobs[0].verify.assertions[0].sql: empty query",
    ),
    (
        "assertions-on-redis",
        2,
        "10:7",
        "jobs[0].verify.assertions: SQL assertions apply",
    ),
    (
        "bad-indentation",
        2,
        "3:8",
        "not valid YAML: while parsing a block",
    ),
    (
        "bom-then-unknown-field",
        2,
        "8:1",
        "unknown field `regionz`, expected one of",
    ),
    ("bom-valid", 0, "", ""),
    (
        "chroma-url-scheme",
        2,
        "7:34",
        "jobs[0].source.url: \"ftp://h:8000\" is not an",
    ),
    (
        "compression-level-out-of-range",
        2,
        "8:18",
        "jobs[0].compression: compression level 40 is",
    ),
    (
        "cron-four-fields",
        2,
        "8:15",
        "jobs[0].schedule: invalid schedule \"0 * * *\":",
    ),
    (
        "cron-minute-out-of-range",
        2,
        "8:15",
        "jobs[0].schedule: invalid schedule \"61 * * *",
    ),
    (
        "cron-words",
        2,
        "8:15",
        "jobs[0].schedule: invalid schedule \"every",
    ),
    (
        "duplicate-job-name",
        2,
        "8:5",
        "jobs[1].name: duplicate job name \"app\"",
    ),
    (
        "duplicate-key-in-flow-map",
        2,
        "7:57",
        "duplicate key `kind` (first at line 7, column",
    ),
    (
        "duplicate-key-in-job",
        2,
        "9:5",
        "duplicate key `rpo` (first at line 8, column 5)",
    ),
    (
        "duplicate-key-in-region",
        2,
        "5:5",
        "duplicate key `root` (first at line 4, column 5)",
    ),
    (
        "duplicate-region-name",
        2,
        "5:5",
        "regions[1].name: duplicate region name \"a\"",
    ),
    (
        "duplicate-top-key",
        2,
        "8:1",
        "duplicate key `jobs` (first at line 5, column 1)",
    ),
    (
        "duration-unknown-unit",
        2,
        "8:12",
        "lease_ttl: invalid value: string \"10 parsecs\",",
    ),
    (
        "duration-words",
        2,
        "8:10",
        "jobs[0].rpo: invalid value: string \"one hour\",",
    ),
    (
        "empty-file",
        2,
        "1:1",
        "the file is empty: a config is a mapping of",
    ),
    (
        "empty-regions",
        2,
        "1:1",
        "regions: at least one region is required",
    ),
    (
        "endpoint-ftp",
        2,
        "5:5",
        "regions[0].endpoint: \"ftp://store.example\": the",
    ),
    (
        "endpoint-garbage",
        2,
        "5:5",
        "regions[0].endpoint: \"ht!tp://::::\" is not a",
    ),
    (
        "endpoint-no-host",
        2,
        "5:5",
        "regions[0].endpoint: \"http://\" is not a URL",
    ),
    (
        "fs-without-root",
        2,
        "2:5",
        "regions[0].root: an fs region needs `root` (a",
    ),
    (
        "job-name-with-space",
        2,
        "6:11",
        "jobs[0].name: invalid name \"App DB\": use",
    ),
    (
        "lease-ttl-too-short",
        2,
        "8:1",
        "lease_ttl: must be at least 10s (it is renewed",
    ),
    (
        "list-document",
        2,
        "1:1",
        "a config is a mapping of fields (regions,",
    ),
    (
        "max-concurrent-zero",
        2,
        "9:3",
        "scheduler.max_concurrent: must be at least 1",
    ),
    (
        "min-copies-above-regions",
        2,
        "8:1",
        "min_copies: 3 must be between 1 and the number",
    ),
    (
        "min-copies-zero",
        2,
        "8:1",
        "min_copies: 0 must be between 1 and the number",
    ),
    (
        "missing-env-var",
        2,
        "5:24",
        "regions[0].secret_access_key: environment",
    ),
    (
        "missing-job-name",
        2,
        "6:5",
        "jobs[0]: missing field `name`",
    ),
    ("missing-jobs", 2, "1:1", "missing field `jobs`"),
    (
        "missing-region-kind",
        2,
        "2:5",
        "regions[0]: missing field `kind`",
    ),
    (
        "missing-region-name",
        2,
        "2:5",
        "regions[0]: missing field `name`",
    ),
    ("missing-regions", 2, "1:1", "missing field `regions`"),
    (
        "missing-source-url",
        2,
        "7:13",
        "jobs[0].source: missing field `url`",
    ),
    (
        "missing-source",
        2,
        "6:5",
        "jobs[0]: missing field `source`",
    ),
    (
        "negative-min-copies",
        2,
        "8:13",
        "min_copies: invalid type: integer `-1`,",
    ),
    (
        "not-utf8",
        2,
        "4:22",
        "byte 0xff is not UTF-8: save the file as UTF-8",
    ),
    (
        "notification-url-not-http",
        2,
        "10:5",
        "notifications[0].url: not an http:// or",
    ),
    (
        "only-a-comment",
        2,
        "1:1",
        "the file is empty: a config is a mapping of",
    ),
    (
        "part-size-too-small",
        2,
        "5:5",
        "regions[0].part_size_mib: 1 MiB is outside what",
    ),
    (
        "postgres-url-scheme",
        2,
        "7:36",
        "jobs[0].source.url: scheme \"mysql\" is not",
    ),
    (
        "redis-url-scheme",
        2,
        "7:33",
        "jobs[0].source.url: scheme \"http\" is not",
    ),
    (
        "region-timeout-zero",
        2,
        "5:5",
        "regions[0].timeout: must be at least 1s (how",
    ),
    (
        "retention-without-rules",
        2,
        "8:5",
        "jobs[0].retention: no keep_* rule: this would",
    ),
    (
        "rpo-zero",
        2,
        "8:5",
        "jobs[0].rpo: `rpo: 0s` can never be met: a",
    ),
    (
        "s3-without-bucket",
        2,
        "2:5",
        "regions[0].bucket: a s3 region needs `bucket`",
    ),
    (
        "scalar-document",
        2,
        "1:1",
        "a config is a mapping of fields (regions,",
    ),
    (
        "tab-indentation",
        2,
        "2:2",
        "not valid YAML: tabs disallowed within this",
    ),
    (
        "timezone-unknown",
        2,
        "9:13",
        "scheduler.timezone: unknown time zone",
    ),
    (
        "two-documents",
        2,
        "8:1",
        "a second YAML document (`---`): a config is one",
    ),
    (
        "unclosed-flow-sequence",
        2,
        "6:3",
        "not valid YAML: \"-\" is only valid inside a block",
    ),
    (
        "unknown-assertion-field",
        2,
        "11:41",
        "jobs[0].verify.assertions[0]: unknown field",
    ),
    (
        "unknown-compression-field",
        2,
        "8:33",
        "jobs[0].compression: unknown field `lvl`,",
    ),
    (
        "unknown-field-deep-in-redis-tls",
        2,
        "7:46",
        "jobs[0].source: unknown field `methd`, expected `url`",
    ),
    (
        "unknown-job-field",
        2,
        "8:5",
        "jobs[0]: unknown field `schedul`, expected one",
    ),
    (
        "unknown-notification-field",
        2,
        "11:5",
        "notifications[0]: unknown field `evnts`,",
    ),
    (
        "unknown-region-field",
        2,
        "4:5",
        "regions[0]: unknown field `rot`, expected one",
    ),
    (
        "unknown-region-kind",
        2,
        "3:11",
        "regions[0].kind: unknown variant `ftp`,",
    ),
    (
        "unknown-retention-field",
        2,
        "8:18",
        "jobs[0].retention: unknown field `keep_lst`,",
    ),
    (
        "unknown-scheduler-field",
        2,
        "9:3",
        "scheduler: unknown field `timezon`, expected",
    ),
    (
        "unknown-source-field",
        2,
        "7:31",
        "jobs[0].source: unknown field `urll`, expected one of",
    ),
    (
        "unknown-source-kind",
        2,
        "7:21",
        "jobs[0].source.kind: unknown variant `mongodb`,",
    ),
    (
        "unknown-top-field",
        2,
        "8:1",
        "unknown field `regionz`, expected one of",
    ),
    (
        "unknown-verify-field",
        2,
        "9:7",
        "jobs[0].verify: unknown field `levle`, expected",
    ),
    (
        "unterminated-env-ref",
        2,
        "4:13",
        "regions[0].bucket: unterminated `${` in",
    ),
    (
        "upload-concurrency-zero",
        2,
        "5:5",
        "regions[0].upload_concurrency: must be at least",
    ),
    (
        "verify-restore-without-scratch",
        2,
        "8:5",
        "jobs[0].verify.scratch: `level: restore` needs",
    ),
    (
        "wrong-type-jobs-string",
        2,
        "5:7",
        "jobs: invalid type: string \"app\", expected a",
    ),
    (
        "wrong-type-min-copies",
        2,
        "8:13",
        "min_copies: invalid type: string \"two\",",
    ),
    (
        "wrong-type-part-size",
        2,
        "5:20",
        "regions[0].part_size_mib: invalid type: string",
    ),
    (
        "wrong-type-regions-mapping",
        2,
        "1:10",
        "regions: invalid type: map, expected a sequence",
    ),
];

const PLAYBOOKS: &[(&str, i32, &str, &str)] = &[
    (
        "anchors-and-aliases",
        2,
        "2:15",
        "not valid playbook YAML: Unexpected definition",
    ),
    (
        "bad-duration",
        2,
        "5:14",
        "`timeout`: \"five\" is not a duration (expected",
    ),
    (
        "bad-name-for-folder",
        2,
        "1:7",
        "name \"my playbook\" may hold only ASCII letters,",
    ),
    ("bom-valid", 0, "", ""),
    (
        "checklist-step-key-not-a-number",
        2,
        "4:7",
        "checklist steps are keyed by number (1, 2, 3…)",
    ),
    (
        "checklist-step-without-action",
        2,
        "4:10",
        "a checklist step needs an `action` (or a `kind`)",
    ),
    (
        "checklist-unknown-scenario-field",
        2,
        "4:5",
        "unknown field `stepz` in a scenario; expected",
    ),
    ("duplicate-id", 2, "8:9", "duplicate step id `one`"),
    (
        "duplicate-key-in-step",
        2,
        "6:5",
        "duplicate key `timeout` (first at line 5,",
    ),
    (
        "empty-file",
        2,
        "1:1",
        "the file is empty: a playbook is a mapping of",
    ),
    (
        "empty-parallel",
        2,
        "8:15",
        "`parallel` is empty: a group runs at least one",
    ),
    (
        "id-with-space",
        2,
        "3:9",
        "`id` may hold only letters, digits, `-` and `_`",
    ),
    (
        "list-document",
        2,
        "1:1",
        "a playbook is a mapping of fields (name,",
    ),
    (
        "malformed-yaml",
        2,
        "3:3",
        "not valid YAML: \"-\" is only valid inside a block",
    ),
    (
        "missing-kind",
        2,
        "3:7",
        "a step needs a `kind`: one of manual, shell,",
    ),
    (
        "missing-owner",
        2,
        "3:7",
        "a step needs an `owner` (who acts: a team or a",
    ),
    (
        "missing-timeout",
        2,
        "3:7",
        "a step needs a `timeout` (e.g. 5m): drills must",
    ),
    (
        "nested-parallel",
        2,
        "9:17",
        "parallel groups cannot be nested",
    ),
    ("no-steps", 2, "1:5", "the playbook has no steps"),
    (
        "not-utf8",
        2,
        "4:13",
        "byte 0xc3 is not UTF-8: save the file as UTF-8",
    ),
    (
        "recovered-before-fault",
        2,
        "3:7",
        "a `recovered: true` step must come after the",
    ),
    (
        "ref-to-later-step",
        2,
        "3:60",
        "`${steps.later.stdout}`: no step `later` runs",
    ),
    (
        "ref-to-unknown-output",
        2,
        "8:60",
        "`${steps.one.colour}`: a sleep step has no output",
    ),
    (
        "ref-to-output-another-kind-has",
        2,
        "8:60",
        "`${steps.nap.rows}`: a sleep step has no output `rows`; its outputs: none",
    ),
    (
        "ref-to-unknown-step",
        2,
        "8:60",
        "`${steps.ghost.stdout}`: no step `ghost` runs",
    ),
    (
        "retries-with-until-success",
        2,
        "3:7",
        "`until_success` polls until the timeout;",
    ),
    (
        "step-not-a-mapping",
        2,
        "3:5",
        "a step must be a mapping with at least id,",
    ),
    ("steps-not-a-list", 2, "2:8", "`steps` is a list of steps"),
    (
        "tab-indentation",
        2,
        "3:2",
        "not valid YAML: tabs disallowed within this",
    ),
    (
        "two-documents",
        2,
        "8:1",
        "a second YAML document (`---`): a playbook is",
    ),
    (
        "two-fault-steps",
        2,
        "9:7",
        "a second `fault: true` step (the first is",
    ),
    (
        "undefined-var",
        2,
        "8:60",
        "undefined variable `${nope}`: define it under",
    ),
    (
        "unknown-field-of-kind",
        2,
        "8:5",
        "sleep step: Unknown field `speed`, expected",
    ),
    (
        "unknown-kind",
        2,
        "6:11",
        "unknown kind `teleport`; known kinds: manual,",
    ),
    (
        "unknown-step-field",
        2,
        "8:5",
        "sleep step: Unknown field `ownr`, expected",
    ),
    (
        "unknown-top-field",
        2,
        "8:1",
        "unknown field `targetz` in a playbook; expected",
    ),
    (
        "zero-timeout-on-shell",
        2,
        "3:37",
        "`timeout: 0` means the step happens by itself,",
    ),
];

struct Ran {
    code: Option<i32>,
    stderr: String,
    took: Duration,
    peak_rss: u64,
}

/// Run drctl, measuring its wall time and peak memory (wait4's rusage of that one child).
fn run(args: &[&str], file: &Path) -> Ran {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_drctl"));
    cmd.args(args)
        .arg(file)
        .env_remove("RUST_LOG")
        .env_remove("DRCTL_CONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting for our own child; `usage` is a valid out-pointer.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32);
    let _wall = start.elapsed();
    std::mem::forget(child); // already reaped
                             // CPU time (user + system), not wall time: tests run in parallel on a small machine.
    let cpu = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    let took = cpu(usage.ru_utime) + cpu(usage.ru_stime);
    Ran {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        stderr,
        took,
        peak_rss: usage.ru_maxrss as u64 * 1024,
    }
}

fn check(kind: &str, args: &[&str], file: &Path, code: i32, pos: &str, frag: &str) -> Vec<String> {
    let r = run(args, file);
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    let mut bad = Vec::new();
    if r.code != Some(code) {
        bad.push(format!(
            "{kind} {name}: exit {:?}, want {code}: {}",
            r.code, r.stderr
        ));
    }
    if code != 0 {
        let at = format!("{}:{pos}: ", file.display());
        if !r.stderr.contains(&at) {
            bad.push(format!("{kind} {name}: no `{at}` in: {}", r.stderr));
        }
        if !r.stderr.contains(frag) {
            bad.push(format!("{kind} {name}: no {frag:?} in: {}", r.stderr));
        }
    }
    if r.stderr.contains("create ./drctl.yaml") {
        bad.push(format!(
            "{kind} {name}: tells to create a file that exists: {}",
            r.stderr
        ));
    }
    if r.took > Duration::from_secs(1) {
        bad.push(format!("{kind} {name}: took {:?}", r.took));
    }
    if r.peak_rss > 100 << 20 {
        bad.push(format!(
            "{kind} {name}: peak memory {} MiB",
            r.peak_rss >> 20
        ));
    }
    if r.stderr.len() > 64 * 1024 {
        bad.push(format!("{kind} {name}: {} bytes on stderr", r.stderr.len()));
    }
    bad
}

fn corpus(kind: &str, table: &[(&str, i32, &str, &str)], args: &[&str]) {
    let dir = Path::new(DIR).join(kind);
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| {
            e.file_name()
                .to_string_lossy()
                .trim_end_matches(".yaml")
                .to_string()
        })
        .collect();
    files.sort();
    let listed: Vec<&str> = table.iter().map(|t| t.0).collect();
    let unlisted: Vec<_> = files
        .iter()
        .filter(|f| !listed.contains(&f.as_str()))
        .collect();
    assert!(
        unlisted.is_empty(),
        "cases without an expectation: {unlisted:?}"
    );
    let mut bad = Vec::new();
    for (case, code, pos, frag) in table {
        bad.extend(check(
            kind,
            args,
            &dir.join(format!("{case}.yaml")),
            *code,
            pos,
            frag,
        ));
    }
    assert!(bad.is_empty(), "\n{}", bad.join("\n"));
}

#[test]
fn every_malformed_config_is_refused_at_its_position_quickly_and_cheaply() {
    assert!(CONFIGS.len() >= 60, "{} config cases", CONFIGS.len());
    corpus("config", CONFIGS, &["config", "validate", "-c"]);
}

#[test]
fn every_malformed_playbook_is_refused_at_its_position_quickly_and_cheaply() {
    assert!(PLAYBOOKS.len() >= 25, "{} playbook cases", PLAYBOOKS.len());
    corpus("playbook", PLAYBOOKS, &["drill", "validate"]);
}

/// Cases made at run time: too big to keep as files.
fn generated(dir: &Path) -> Vec<(PathBuf, &'static str, &'static str, &'static str)> {
    let head = "regions:\n  - name: a\n    kind: fs\n    root: /tmp/x\njobs:\n";
    let mut out = Vec::new();
    let mut put =
        |name: &str, text: String, pos: &'static str, frag: &'static str, kind: &'static str| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            out.push((p, kind, pos, frag));
        };
    // A 3 MB scalar where a name goes: the error quotes a short prefix, not 3 MB.
    put(
        "huge-scalar.yaml",
        format!(
            "{head}  - name: \"{}\"\n    source: {{ kind: redis, url: \"redis://h\" }}\n",
            "x".repeat(2 << 20)
        ),
        "6:11",
        "invalid name",
        "config",
    );
    // Over the size limit: refused before parsing.
    put(
        "too-large.yaml",
        format!("{head}# {}\n", "y".repeat(5 << 20)),
        "1:1",
        "at most 4194304 are read",
        "config",
    );
    // One 1 MB string aliased 2,000 times (by size), and the classic by-depth bomb.
    let mut bomb = format!(
        "{head}  - name: app\n    source: {{ kind: chroma, url: \"http://h\", collections: ["
    );
    bomb = format!("a: &big \"{}\"\n{bomb}", "z".repeat(1 << 20));
    bomb.push_str(&vec!["*big"; 2000].join(", "));
    bomb.push_str("] }\n");
    put(
        "alias-bomb-by-size.yaml",
        bomb,
        "8:",
        "aliases expand this document past 16 MiB",
        "config",
    );
    let mut laughs = String::from("a0: &a0 [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]\n");
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 9].join(", ");
        laughs.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    put(
        "alias-bomb-by-depth.yaml",
        laughs,
        "",
        "aliases expand this document past 16 MiB",
        "config",
    );
    // 10,000-deep nesting, flow and block.
    put(
        "deep-flow.yaml",
        format!("x: {}{}\n", "[".repeat(10_000), "]".repeat(10_000)),
        "1:",
        "nested too deeply",
        "config",
    );
    let mut block = String::new();
    for i in 0..10_000usize {
        block.push_str(&format!("{}k{i}:\n", " ".repeat(i.min(200))));
    }
    put("deep-block.yaml", block, "", "nested too deeply", "config");
    // The same for playbooks.
    put("pb-huge-scalar.yaml", format!("name: p\nsteps:\n  - {{ id: one, owner: \"{}\", timeout: 5s, kind: sleep, duration: 1s, bogus: 1 }}\n", "o".repeat(2 << 20)), "3:", "Unknown field `bogus`", "playbook");
    put(
        "pb-deep-flow.yaml",
        format!(
            "name: p\nvars: {}{}\n",
            "{a: ".repeat(10_000),
            "}".repeat(10_000)
        ),
        "2:",
        "nested too deeply",
        "playbook",
    );
    put(
        "pb-too-large.yaml",
        format!("name: p\n# {}\n", "y".repeat(5 << 20)),
        "1:1",
        "at most 4194304 are read",
        "playbook",
    );
    out
}

#[test]
fn huge_and_hostile_inputs_cost_under_a_second_and_100_mib() {
    let dir = crate::common::tempdir("bad-input-");
    let mut bad = Vec::new();
    for (file, kind, pos, frag) in generated(&dir) {
        let args: &[&str] = if kind == "config" {
            &["config", "validate", "-c"]
        } else {
            &["drill", "validate"]
        };
        let r = run(args, &file);
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        if r.code != Some(2) {
            bad.push(format!(
                "{name}: exit {:?}: {}",
                r.code,
                crate::common::excerpt(&r.stderr)
            ));
        }
        let at = format!("{}:{pos}", file.display());
        if !r.stderr.contains(&at) || !r.stderr.contains(frag) {
            bad.push(format!(
                "{name}: want {at:?} and {frag:?} in: {}",
                crate::common::excerpt(&r.stderr)
            ));
        }
        if r.took > Duration::from_secs(1) || r.peak_rss > 100 << 20 || r.stderr.len() > 64 * 1024 {
            bad.push(format!(
                "{name}: {:?}, {} MiB, {} bytes on stderr",
                r.took,
                r.peak_rss >> 20,
                r.stderr.len()
            ));
        }
    }
    assert!(bad.is_empty(), "\n{}", bad.join("\n"));
}
