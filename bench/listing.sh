#!/usr/bin/env bash
# Listing at scale (issue 17): `status`, `backup list`, `prune --dry-run` and `restore`
# (latest) over N backups of one job in two S3 regions, each behind a proxy that adds
# LISTING_DELAY_MS (default 50) to every request, as a cross-region bucket does; with the
# job's index in place, and with it lost (each run rebuilds it).
#
#   bench/listing.sh                  # N = 1000 and 10000
#   LISTING_SIZES=2000 LISTING_DELAY_MS=20 bench/listing.sh
#
# One real backup (a small files job) is taken through drctl; the older ones are its manifest
# under other ids (older instants), written straight into both buckets — listing, status and
# prune read manifests only, and restore takes the real newest one.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
scripts/deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --locked --quiet
DRCTL=$ROOT/target/release/drctl
SIZES=${LISTING_SIZES:-1000 10000}
DELAY=${LISTING_DELAY_MS:-50}
W=${BENCH_DIR:-$ROOT/target/bench-listing}
rm -rf "$W"; mkdir -p "$W"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  [[ ${BENCH_KEEP:-0} == 1 ]] || rm -rf "$W"
}
trap cleanup EXIT
source bench/garage.sh
start_garage "$W/garage" reg1 reg2
export EP
AWS="aws --endpoint-url $EP"
# One delaying proxy per region, as two regions are two links.
P1=$(free_port); P2=$(free_port)
python3 bench/delay_proxy.py "$P1" "${EP#http://}" "$DELAY" & PIDS+=($!)
python3 bench/delay_proxy.py "$P2" "${EP#http://}" "$DELAY" & PIDS+=($!)
sleep 0.5

mkdir -p "$W/data"; echo "listen: 8080" > "$W/data/app.yaml"
config() { # endpoint1 endpoint2
  cat <<YAML
regions:
  - { name: reg1, kind: s3, bucket: reg1, root: drctl, region: garage, endpoint: "$1", access_key_id: "\${AWS_ACCESS_KEY_ID}", secret_access_key: "\${AWS_SECRET_ACCESS_KEY}" }
  - { name: reg2, kind: s3, bucket: reg2, root: drctl, region: garage, endpoint: "$2", access_key_id: "\${AWS_ACCESS_KEY_ID}", secret_access_key: "\${AWS_SECRET_ACCESS_KEY}" }
jobs:
  - name: app
    source: { kind: files, paths: ["$W/data"] }
    retention: { keep_last: 5 }
YAML
}
config "$EP" "$EP" > "$W/direct.yaml"
config "http://127.0.0.1:$P1" "http://127.0.0.1:$P2" > "$W/delayed.yaml"

# Time one command (seconds, 3 decimals); it must succeed.
timed() {
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >/dev/null 2>"$W/last.err" || { echo "failed: $*" >&2; cat "$W/last.err" >&2; exit 1; }
  t1=$(date +%s.%N)
  echo "$t0 $t1" | awk '{printf "%.2f", $2 - $1}'
}
drop_index() { for b in reg1 reg2; do $AWS s3 rm --quiet "s3://$b/drctl/indexes/app.json.zst" || true; done; }

echo "| backups | index | status | backup list | prune --dry-run | restore (latest) |"
echo "|---:|---|---:|---:|---:|---:|"
have=0
for n in $SIZES; do
  if ((have == 0)); then
    $DRCTL -c "$W/direct.yaml" -o json backup run app > "$W/real.json"
    have=1
  fi
  real=$(python3 -c "import json,sys; print(json.load(open('$W/real.json'))[0]['id'])")
  # Seed older manifests up to n backups in all (ids one minute apart, before the real one).
  python3 - "$W/seed" "$real" "$n" "$W/real-manifest.json" <<'PY'
import json, os, sys, datetime, subprocess
out, real, n, mfile = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
os.makedirs(out, exist_ok=True)
m = json.loads(subprocess.run(["aws", "--endpoint-url", os.environ["EP"], "s3", "cp",
                               f"s3://reg1/drctl/backups/app/{real}/manifest.json", "-"],
                              capture_output=True, check=True).stdout)
t0 = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
for i in range(n - 1):
    t = t0 + datetime.timedelta(minutes=i)
    bid = t.strftime("%Y%m%dT%H%M%SZ") + f"-{i:06x}"
    d = os.path.join(out, "backups", "app", bid)
    if os.path.exists(d):
        continue
    os.makedirs(d)
    m2 = dict(m, id=bid, consistent_at=t.isoformat().replace("+00:00", "Z"),
              started_at=t.isoformat().replace("+00:00", "Z"), finished_at=t.isoformat().replace("+00:00", "Z"))
    with open(os.path.join(d, "manifest.json"), "w") as f:
        json.dump(m2, f)
PY
  for b in reg1 reg2; do $AWS s3 sync --quiet "$W/seed" "s3://$b/drctl"; done
  for mode in "in place" lost; do
    row=()
    for cmd in "status" "backup list app" "prune --dry-run" "restore app --to dir:$W/restored"; do
      [[ $mode == lost ]] && drop_index
      [[ $mode == "in place" ]] && $DRCTL -c "$W/direct.yaml" backup list app >/dev/null
      rm -rf "$W/restored"
      # shellcheck disable=SC2086
      row+=("$(timed $DRCTL -c "$W/delayed.yaml" $cmd)")
    done
    echo "| $n | $mode | ${row[0]} | ${row[1]} | ${row[2]} | ${row[3]} |"
  done
done
echo
echo "Two regions on one Garage, each behind its own proxy adding ${DELAY} ms to every request; seconds of wall time, one run each."
