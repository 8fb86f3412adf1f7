#!/usr/bin/env bash
# The test command: install what the tests need, then run every test against real services
# (PostgreSQL, Garage) started by the test harness on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo test --locked "$@"
