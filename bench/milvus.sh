#!/usr/bin/env bash
# Milvus benchmark (issue 15): drctl's backup of one collection of float vectors against what a
# user scripts today — pymilvus's query_iterator writing every key and vector to a local file —
# side by side, interleaved, on the embedded Milvus server (inside a network namespace, as the
# tests run it); then drctl's peak RSS with the collection doubled.
#
#   bench/milvus.sh                       # 200,000 vectors of dim 768, then 400,000; 3 rounds
#   BENCH_MILVUS_ROWS=100000 BENCH_RUNS=1 bench/milvus.sh
#
# drctl writes to one fs region (the file the script writes is local too) and to two fs
# regions. Prints a markdown table: wall (median, min, max), CPU seconds, peak RSS, bytes.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
scripts/deps.sh --bench
cargo build --release --locked --quiet
DRCTL=$ROOT/target/release/drctl
RUNS=${BENCH_RUNS:-3}
ROWS=${BENCH_MILVUS_ROWS:-200000}
DIM=${BENCH_MILVUS_DIM:-768}
VENV=${DRCTL_MILVUS_VENV:-$HOME/.cache/drctl/milvus-venv}
W=${BENCH_DIR:-$ROOT/target/bench-milvus}
rm -rf "$W"; mkdir -p "$W"
PY="$VENV/bin/python"
TOOL="$ROOT/bench/milvus_tool.py"

# The server, in a namespace that goes away with this script.
IDX=$(( ($$ % 200) + 30 ))
"$ROOT/tests/tools/milvus_netns.sh" "$IDX" "$W/milvus" $$ "$VENV" </dev/null >/dev/null 2>&1 &
URI="http://10.231.$IDX.2:19530"
for _ in $(seq 1 180); do
  curl -sf "http://10.231.$IDX.2:9091/healthz" >/dev/null 2>&1 && break
  sleep 1
done

measure() { # label cmd... : appends "label wall cpu rss" to $W/results
  local label=$1; shift
  /usr/bin/time -f "%e %U %S %M" -o "$W/time" "$@" >"$W/out" 2>"$W/err" || { cat "$W/err" >&2; exit 1; }
  read -r wall usr sys rss <"$W/time"
  echo "$label $wall $(echo "$usr + $sys" | bc) $rss" >>"$W/results"
}

config() { # file regions...
  local file=$1; shift
  {
    echo "regions:"
    for r in "$@"; do echo "  - { name: $r, kind: fs, root: \"$W/$r\" }"; done
    echo "jobs:"
    echo "  - { name: vec, schedule: \"0 * * * *\", source: { kind: milvus, url: \"$URI\", collections: [bench] } }"
  } >"$file"
}

round() { # rows
  for i in $(seq 1 "$RUNS"); do
    rm -rf "$W"/r1 "$W"/r2 "$W/export.bin"
    measure "pymilvus-query_iterator-to-file@$1" "$PY" "$TOOL" "$URI" export bench "$W/export.bin"
    echo "bytes pymilvus@$1 $(stat -c %s "$W/export.bin")" >>"$W/sizes"
    measure "drctl-1-region@$1" "$DRCTL" -c "$W/r1.yaml" backup run vec
    echo "bytes drctl@$1 $(du -sb "$W/r1/backups" | cut -f1)" >>"$W/sizes"
    rm -rf "$W"/r1
    measure "drctl-2-regions@$1" "$DRCTL" -c "$W/r1r2.yaml" backup run vec
  done
}

config "$W/r1.yaml" r1
config "$W/r1r2.yaml" r1 r2
: >"$W/results"; : >"$W/sizes"
for rows in "$ROWS" $((ROWS * 2)); do
  echo "seeding $rows vectors of dim $DIM ..." >&2
  t0=$(date +%s); "$PY" "$TOOL" "$URI" seed bench "$rows" "$DIM" 2>/dev/null; echo "  seeded in $(( $(date +%s) - t0 ))s" >&2
  round "$rows"
done

echo
echo "### Milvus backup (one collection, dim $DIM, $RUNS interleaved rounds)"
echo
echo "| rows | what | wall median (min–max) | CPU s | peak RSS |"
echo "|---:|---|---:|---:|---:|"
awk '{split($1,a,"@"); k=a[2]" "a[1]; n[k]++; w[k,n[k]]=$2; c[k]+=$3; if ($4>r[k]) r[k]=$4}
  END {for (k in n) {m=n[k]; for(i=1;i<=m;i++) for(j=i+1;j<=m;j++) if (w[k,j]<w[k,i]) {t=w[k,i]; w[k,i]=w[k,j]; w[k,j]=t}
    split(k,p," "); printf "| %s | %s | %.2f s (%.2f–%.2f) | %.1f | %d MiB |\n", p[1], p[2], w[k,int((m+1)/2)], w[k,1], w[k,m], c[k]/m, r[k]/1024}}' "$W/results" | sort -t'|' -k2,2n -k3,3
echo
sort -u "$W/sizes" | awk '{printf "- %s: %s bytes\n", $2, $3}'
