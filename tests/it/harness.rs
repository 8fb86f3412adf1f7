//! The harness itself: what a test run leaves on disk, and what a failing test says when a
//! shared server died under it (CI once failed 30 tests on a full disk with nothing but
//! "error sending request" to show for it).

use crate::common::*;
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn a_passed_tests_directory_goes_and_a_failed_ones_stays() {
    let passed = {
        let w = World::new("harness-pass");
        std::fs::write(w.dir.join("big"), vec![7u8; 1 << 20]).unwrap();
        w.dir.clone()
    };
    assert!(!passed.exists(), "{} is left behind", passed.display());

    let failed = std::sync::Mutex::new(None);
    let r = std::panic::catch_unwind(|| {
        let w = World::new("harness-fail");
        std::fs::write(w.dir.join("evidence"), "kept").unwrap();
        *failed.lock().unwrap() = Some(w.dir.clone());
        panic!("a failing test (on purpose)");
    });
    assert!(r.is_err());
    let failed = failed.into_inner().unwrap().unwrap();
    assert_eq!(
        std::fs::read_to_string(failed.join("evidence")).unwrap(),
        "kept"
    );
    std::fs::remove_dir_all(failed).unwrap();
}

#[test]
fn a_server_that_dies_unasked_is_named_by_every_failing_test() {
    let mut cmd = Command::new("sleep");
    cmd.arg("3217");
    let pid = spawn_server(cmd);
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    let start = Instant::now();
    let note = loop {
        if let Some(n) = run_health().filter(|n| n.contains(&format!("pid {pid}"))) {
            break n;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            run_health()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        note.contains(&format!("sleep 3217 (pid {pid}) signal: 9 (SIGKILL)")),
        "{note}"
    );
    assert!(note.contains("MiB free where the tests write"), "{note}");
    // From here on it is no news to the other tests (it is reaped: never signal its pid again).
    expected_end(pid);
    assert!(
        run_health().is_none_or(|n| !n.contains(&format!("pid {pid}"))),
        "{:?}",
        run_health()
    );
}
