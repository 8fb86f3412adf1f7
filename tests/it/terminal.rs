//! drctl on a terminal (a pty from util-linux `script`): the progress board is drawn, a region
//! that fails mid-upload (or a copy that fails its check at restore) says so on its own bar,
//! the warning stays on the screen above the board instead of being glued to a frame of it,
//! logs are text (not JSON), and the store's secret appears nowhere. The screen is what a
//! VT100 shows after the transcript, so a log line written inside the board fails the test.

use crate::common::*;
use crate::proxy::Proxy;
use std::process::{Command, Stdio};

/// A world whose job `cfg` backs up a 64 MiB file to `local` (fs) and `garage` (S3 in 5 MiB
/// parts, through a proxy that cuts the second part: the region fails mid-upload, with tens of
/// MiB still to send, so its lane is dropped while the board is drawn).
fn failing_garage_world(name: &str) -> (World, Proxy) {
    let w = World::new(name);
    let proxy = Proxy::start(garage().endpoint.trim_start_matches("http://"));
    proxy.cut_requests_containing("partNumber=2");
    write_files_job(&w, 64, &proxy.url());
    (w, proxy)
}

/// A config whose job `cfg` backs up a tree of one `mib` MiB file (at `tree/` in the world)
/// to `local` (fs) and `garage` (S3 through `endpoint`, 5 MiB parts), `min_copies: 1`.
fn write_files_job(w: &World, mib: usize, endpoint: &str) {
    let tree = w.dir.join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    let mut data = Vec::with_capacity(mib << 20);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while data.len() < mib << 20 {
        // xorshift: bytes zstd cannot shrink, without reading /dev/urandom.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(tree.join("big.bin"), data).unwrap();
    let key = ("${TEST_S3_KEY}", "${TEST_S3_SECRET}");
    let source = format!("{{ kind: files, paths: [\"{}\"] }}", tree.display());
    let text = ConfigText::default()
        .fs("local", &w.fs_root)
        .garage_at("garage", &w.s3_root, endpoint, key, ", part_size_mib: 5")
        .top("min_copies: 1")
        .job("cfg", &source, &[])
        .text();
    w.write_config(&text);
}

/// Run `drctl -c <config> <args>` on a pty; returns the exit status and the transcript.
fn on_a_terminal(w: &World, args: &str) -> (bool, Vec<u8>) {
    on_a_terminal_at(w, args, COLS)
}

/// `on_a_terminal` on a pty `cols` wide.
fn on_a_terminal_at(w: &World, args: &str, cols: usize) -> (bool, Vec<u8>) {
    let log = w.dir.join("typescript");
    let line = format!(
        "stty cols {cols} rows 50; exec {} -c {} {args}",
        env!("CARGO_BIN_EXE_drctl"),
        w.config.display()
    );
    let g = garage();
    let o = Command::new("script")
        .args(["-q", "-e", "-c", &line])
        .arg(&log)
        .env("TEST_S3_KEY", &g.key_id)
        .env("TEST_S3_SECRET", &g.secret)
        .env_remove("RUST_LOG")
        .env_remove("DRCTL_OUTPUT")
        .env_remove("DRCTL_LOG_FORMAT")
        .stdin(Stdio::null())
        .output()
        .expect("util-linux `script` runs drctl on a pty");
    (o.status.success(), std::fs::read(&log).unwrap())
}

/// The pty's width: set with `stty` before drctl starts, so the board's lines wrap (indicatif
/// pads each to the width instead of ending it) exactly where `screen` wraps them.
const COLS: usize = 100;

/// The lines a terminal `COLS` wide shows after `bytes`, a line that wrapped joined again:
/// enough of a VT100 for indicatif's frames (cursor up and down, carriage return, erase in
/// line, auto-wrap at the last column) and tracing's colours (ignored).
fn screen(bytes: &[u8]) -> Vec<String> {
    screen_at(bytes, COLS)
}

/// `screen` of a terminal `cols` wide.
fn screen_at(bytes: &[u8], cols: usize) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    // Each row's characters, and whether it wrapped into the next.
    let mut rows: Vec<(Vec<char>, bool)> = vec![(Vec::new(), false)];
    let (mut row, mut col) = (0usize, 0usize);
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        while rows.len() <= row + 1 {
            rows.push((Vec::new(), false));
        }
        match c {
            '\r' => col = 0,
            '\n' => {
                row += 1;
                col = 0;
            }
            '\x1b' => {
                if chars.next() != Some('[') {
                    continue;
                }
                let mut params = String::new();
                let fin = loop {
                    match chars.next() {
                        Some(p) if p.is_ascii_digit() || p == ';' || p == '?' => params.push(p),
                        other => break other,
                    }
                };
                let n = params.parse::<usize>().unwrap_or(1).max(1);
                match fin {
                    Some('A') => row = row.saturating_sub(n),
                    Some('B') => row += n,
                    Some('K') if params == "2" => rows[row] = (Vec::new(), false),
                    Some('K') if params.is_empty() || params == "0" => {
                        rows[row].0.truncate(col);
                        rows[row].1 = false;
                    }
                    _ => {}
                }
                col = col.min(cols);
            }
            c => {
                if col >= cols {
                    rows[row].1 = true;
                    row += 1;
                    col = 0;
                    while rows.len() <= row {
                        rows.push((Vec::new(), false));
                    }
                }
                let line = &mut rows[row].0;
                while line.len() < col {
                    line.push(' ');
                }
                if col < line.len() {
                    line[col] = c;
                } else {
                    line.push(c);
                }
                col += 1;
            }
        }
    }
    let mut shown = Vec::new();
    let mut joined = String::new();
    for (chars, wrapped) in rows {
        joined.extend(chars);
        if !wrapped {
            let line = std::mem::take(&mut joined).trim_end().to_string();
            if !line.is_empty() {
                shown.push(line);
            }
        }
    }
    shown
}

/// Whether some frame of the transcript (a stretch between carriage returns) holds all of `what`.
fn drawn(raw: &str, what: &[&str]) -> bool {
    raw.split(['\r', '\n'])
        .any(|f| what.iter().all(|w| f.contains(w)))
}

/// Whether the screen shows a warning holding all of `what` on a line of its own: from its
/// timestamp, not glued to a frame of the board.
fn logged(shown: &[String], what: &[&str]) -> bool {
    shown.iter().any(|l| {
        l.starts_with(|c: char| c.is_ascii_digit())
            && l.contains(" WARN ")
            && what.iter().all(|w| l.contains(w))
    })
}

#[test]
fn the_screen_emulator_keeps_what_a_terminal_keeps() {
    let bytes =
        b"log one\r\nbar a\r\nbar b\x1b[1A\r\x1b[2K\x1b[1B\r\x1b[2K\x1b[1A\x1b[32mdone\x1b[0m\r\n";
    assert_eq!(screen(bytes), ["log one", "done"]);
    // A line one column wider than the terminal wraps, and is shown whole again.
    let long = format!("{}x\r\nnext", "a".repeat(COLS));
    assert_eq!(
        screen(long.as_bytes()),
        [format!("{}x", "a".repeat(COLS)), "next".into()]
    );
    // Two bars padded to the width, no newline between them, then cleared from the first.
    let pad = |s: &str| format!("{s:<COLS$}");
    let frame = format!(
        "{}{}\x1b[1A\r\x1b[2K\x1b[1B\r\x1b[2K\x1b[1Aafter",
        pad("bar a"),
        pad("bar b")
    );
    assert_eq!(screen(frame.as_bytes()), ["after"]);
}

/// A backup on a terminal whose S3 region fails mid-upload: the board is drawn with a bar per
/// region, the failed region's bar says "failed", the warning survives every later frame,
/// the summary names the region the backup is NOT in, and logs are text, without the secret.
#[test]
fn a_region_failing_on_a_terminal_is_shown_on_its_bar_and_its_warning_stays_on_screen() {
    a_region_failing_on_a_terminal(COLS);
}

/// The same on a terminal narrower than the board's lines (a split pane, `kubectl exec` at
/// its default width): what stays on the screen is the same, and no bar is left behind.
#[test]
fn a_terminal_narrower_than_the_board_keeps_the_warning_and_loses_every_bar() {
    let raw = a_region_failing_on_a_terminal(48);
    // The board's lines were wider than the terminal: it wrapped them, and the frames that
    // followed still went back over every row.
    assert!(
        raw.split(['\r', '\n'])
            .any(|f| f.contains("→ garage") && f.chars().count() > 48),
        "no frame wider than the terminal:\n{raw}"
    );
}

/// Returns the transcript.
fn a_region_failing_on_a_terminal(cols: usize) -> String {
    let (w, _proxy) = failing_garage_world("tty");
    let (ok, transcript) = on_a_terminal_at(&w, "backup run cfg", cols);
    let raw = String::from_utf8_lossy(&transcript).to_string();
    let shown = screen_at(&transcript, cols);
    let all = shown.join("\n");
    assert!(ok, "{all}");

    // The board: the source and both regions, and garage's bar marked failed in some frame.
    assert!(raw.contains("cfg/files read"), "{raw}");
    assert!(raw.contains("→ local") && raw.contains("→ garage"), "{raw}");
    assert!(
        drawn(&raw, &["→ garage", "failed"]),
        "no frame marks garage failed:\n{raw}"
    );

    // What stays on screen: the warning on a line of its own (from its timestamp, not glued to
    // a frame of the board), and the summary; the board itself is gone.
    assert!(
        logged(
            &shown,
            &["region dropped out of the backup", "region=garage"]
        ),
        "the warning was wiped or garbled:\n{all}"
    );
    assert!(
        shown
            .iter()
            .any(|l| l.starts_with("cfg: backup ") && l.contains("NOT in garage")),
        "{all}"
    );
    assert!(!shown.iter().any(|l| l.contains("→ local")), "{all}");
    assert!(
        !raw.contains("{\"timestamp\""),
        "JSON logs on a terminal:\n{raw}"
    );
    assert!(
        !raw.contains(&garage().secret),
        "the S3 secret reached the terminal"
    );
    raw
}

/// `--no-progress` on a terminal: no board, the same warning and summary.
#[test]
fn no_progress_draws_no_board_on_a_terminal() {
    let (w, _proxy) = failing_garage_world("tty-nobar");
    let (ok, transcript) = on_a_terminal(&w, "--no-progress backup run cfg");
    let raw = String::from_utf8_lossy(&transcript).to_string();
    assert!(ok, "{raw}");
    assert!(
        !raw.contains("→ local") && !raw.contains("cfg/files read"),
        "{raw}"
    );
    let shown = screen(&transcript).join("\n");
    assert!(
        shown.contains("region dropped out of the backup"),
        "{shown}"
    );
    assert!(shown.contains("NOT in garage"), "{shown}");
}

/// A verify, then a restore, on a terminal, with the first region's copy corrupt: each copy's
/// check is drawn, the corrupt one's bar says "failed", the warning is a line of its own, the copy from the
/// next region is streamed with its size and time left, and the tree comes back whole.
#[test]
fn verify_and_restore_on_a_terminal_show_each_copy_they_read_and_why_one_was_left() {
    let w = World::new("tty-restore");
    write_files_job(&w, 48, &garage().endpoint);
    let id = w.backup_ok_job("cfg")["id"].as_str().unwrap().to_string();
    let copy = w.fs_root.join(format!("backups/cfg/{id}/files.tar.zst"));
    let mut bytes = std::fs::read(&copy).unwrap();
    bytes[1 << 20] ^= 0x01;
    std::fs::write(&copy, bytes).unwrap();

    // verify reads every copy whole first: each read is drawn, the corrupt one marked.
    let (_, transcript) = on_a_terminal(&w, "verify cfg --level checksum");
    let raw = String::from_utf8_lossy(&transcript).to_string();
    assert!(drawn(&raw, &["files check local", "failed"]), "{raw}");
    assert!(drawn(&raw, &["files check garage", "/48.00 MiB"]), "{raw}");
    let shown = screen(&transcript).join("\n");
    assert!(
        shown.contains("region local") && shown.contains("corrupt"),
        "{shown}"
    );
    assert!(!shown.contains(" check "), "{shown}");

    let out = w.dir.join("out");
    let (ok, transcript) = on_a_terminal(&w, &format!("restore cfg --to dir:{}", out.display()));
    let raw = String::from_utf8_lossy(&transcript).to_string();
    let shown = screen(&transcript);
    let all = shown.join("\n");
    assert!(ok, "{all}");

    let frame = |what: &[&str]| drawn(&raw, what);
    assert!(frame(&["files check local", "failed"]), "{raw}");
    assert!(frame(&["files check garage", "/48.00 MiB"]), "{raw}");
    assert!(frame(&["files ← garage", "/48.00 MiB"]), "{raw}");
    assert!(
        !frame(&["files ← local"]),
        "a copy that failed its check is not streamed:\n{raw}"
    );

    assert!(
        logged(
            &shown,
            &["copy unusable, trying the next region", "region=local"]
        ),
        "the warning was wiped or garbled:\n{all}"
    );
    assert!(
        shown
            .iter()
            .any(|l| l.starts_with("cfg: restored backup ") && l.contains("from region garage")),
        "{all}"
    );
    assert!(
        !shown
            .iter()
            .any(|l| l.contains(" check ") || l.contains(" ← ")),
        "{all}"
    );
    let tree = w.dir.join("tree");
    let restored = out.join(tree.strip_prefix("/").unwrap());
    assert_eq!(
        tree_digest(&restored, &|_| false),
        tree_digest(&tree, &|_| false)
    );
}

/// A parallel restore on a terminal whose target refuses one bucket while the other is still
/// being read: the restore fails, and no bar is left on the screen — neither the failed
/// bucket's nor the one whose read was cancelled with it.
#[test]
fn a_failed_parallel_restore_on_a_terminal_leaves_no_bar_behind() {
    let (pg, src, w) = crate::parallel::parallel_world("tty_par");
    w.backup_ok();
    // The bucket holding `orders` fails at once (a full disk); the other bucket's pg_restore
    // waits 3 s before it restores, so that bucket is still in flight when the restore fails.
    let script = format!(
        "#!/bin/sh\ncase \"$*\" in *--single-transaction*) ;; *) exec pg_restore \"$@\";; esac\n\
         f={dir}/stdin.$$; cat > \"$f\"; toc=$(pg_restore -l \"$f\")\n\
         if echo \"$toc\" | grep -q 'TABLE DATA public orders'; then\n\
         echo 'pg_restore: error: could not extend file: No space left on device' >&2; exit 1; fi\n\
         sleep 3; pg_restore \"$@\" < \"$f\"; exit $?\n",
        dir = w.dir.display()
    );
    crate::parallel::use_pg_restore(&w, pg, &src, &script);

    let dst = db_name("tty_par_dst");
    let (ok, transcript) =
        on_a_terminal(&w, &format!("restore app --jobs 2 --to {}", pg.url(&dst)));
    let raw = String::from_utf8_lossy(&transcript).to_string();
    let shown = screen(&transcript);
    let all = shown.join("\n");
    assert!(!ok, "{all}");
    assert!(
        drawn(&raw, &["data-1 ← local"]) && drawn(&raw, &["data-2 ← local"]),
        "{raw}"
    );
    assert!(all.contains("No space left on device"), "{all}");
    assert!(
        !shown.iter().any(|l| l.contains(" ← ")),
        "a bar was left:\n{all}"
    );
}
