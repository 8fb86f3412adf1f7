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
cargo test --locked "$@"
