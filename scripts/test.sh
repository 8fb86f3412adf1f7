#!/usr/bin/env bash
# The test command: install what the tests need, then run every test against real services
# (PostgreSQL, Garage, …) started by the test harness on loopback — the alert rules through
# promtool, the status page in headless Chromium; lint the Dockerfile first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
# The image cannot be built here; its Dockerfile is linted instead.
"$HOME/.cache/drctl/lint-venv/bin/hadolint" Dockerfile
# The tests write under target/tmp/it (servers' data, one directory per test, removed when it
# passes); an earlier run's leftovers go first. A full disk kills the shared servers and fails
# every later test on a refused connection, so a short disk is said before and after.
rm -rf target/tmp/it || echo "test.sh: some of target/tmp/it could not be removed (a mount a failed run left?)" >&2
free_mib() { df -Pm "${1:-.}" | awk 'NR == 2 { print $4 }'; }
if (( $(free_mib) < 8192 )); then
  echo "test.sh: only $(free_mib) MiB free here; a fresh build and the tests take up to ~8 GiB (free some, or expect failures once the disk is full)" >&2
fi
cargo test --locked "$@" || {
  rc=$?
  echo "test.sh: tests failed with $(free_mib target) MiB free under target/ and $(awk '/MemAvailable/ { print int($2 / 1024) }' /proc/meminfo) MiB memory available" >&2
  exit "$rc"
}
