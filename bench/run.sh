#!/usr/bin/env bash
# Benchmark protocol of shared/bench/README.md: drctl against the limit (pg_dump alone) and
# the pipelines teams run today, side by side in one run on one machine, median of N runs.
#
#   bench/run.sh                 # default dataset (1.5M messages, ~730 MB dump), 3 runs
#   BENCH_ROWS=3000000 bench/run.sh   # double the data (is peak RSS flat?)
#   BENCH_RUNS=5 BENCH_ONLY=backup bench/run.sh      # backup | restore | drctl (limit + drctl only) | redis
#   BENCH_ONLY=drctl BENCH_BASELINE=/path/drctl bench/run.sh   # also an older build, same rounds (restore too)
#   BENCH_SERVERS=2 bench/run.sh   # one Garage server per region, as two regions really are
#   BENCH_SCALES="1 2 4" BENCH_ONLY=drctl bench/run.sh   # the drctl table at 1x, 2x, 4x the rows
#   BENCH_GARAGE_COMPRESSION=1 bench/run.sh   # Garage compressing blocks again (its default; see bench/garage.sh)
#
# Services: a PostgreSQL from the installed server binaries and Garage (S3-compatible) on
# loopback; "2 regions" are two buckets on one server, or with BENCH_SERVERS=2 one bucket on
# each of two servers (reg2 and the shell pipelines' second copy on the second). Prints markdown tables: wall (median, min,
# max), CPU seconds, the whole machine's CPU seconds and the floor they set, peak RSS (GNU time: the largest single process of the pipeline), and
# stored bytes. Work files go to $BENCH_DIR (default ./target/bench), removed at the start and
# at the end (BENCH_KEEP=1 keeps them).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
scripts/deps.sh --bench
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --locked --quiet
DRCTL=$ROOT/target/release/drctl
RUNS=${BENCH_RUNS:-3}
ROWS=${BENCH_ROWS:-1500000}
ONLY=${BENCH_ONLY:-all}
DATASET=${BENCH_DATASET:-$ROOT/bench/realistic.sql}
[[ -f $DATASET ]] || DATASET=$ROOT/../shared/bench/realistic.sql
W=${BENCH_DIR:-$ROOT/target/bench}
rm -rf "$W"; mkdir -p "$W"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PIDS=()
# The work files (a database, dumps, buckets: ~10 GB at the default size) go at the end too,
# unless BENCH_KEEP=1: left behind, they crowd the disk the next build and test run need.
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [[ ${MEM:-} == /dev/shm/* ]] && rm -rf "$MEM" || true
  [[ -n ${PGCTL:-} ]] && { $PGCTL stop -m fast >/dev/null 2>&1 || true; }
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  [[ ${BENCH_KEEP:-0} == 1 ]] || rm -rf "$W"
}
trap cleanup EXIT

# ---- PostgreSQL
mkdir -p "$W/pg"
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
RUNAS=(); if [[ $(id -u) -eq 0 ]]; then chown nobody "$W/pg"; RUNAS=(runuser -u nobody --); fi
PGPORT=$(free_port)
"${RUNAS[@]}" "$PGBIN/initdb" -D "$W/pg/data" -U postgres --auth=trust --no-sync >/dev/null
PGCTL="${RUNAS[*]} $PGBIN/pg_ctl -D $W/pg/data"
$PGCTL -l "$W/pg/log" -w -o "-p $PGPORT -k $W/pg -c listen_addresses=127.0.0.1 -c max_wal_size=4GB" start >/dev/null
PG=postgres://postgres@127.0.0.1:$PGPORT
# load ROWS: (re)create the bench database; RAW is its dump's size (pg_dump -Fc -Z0), the
# denominator of "s/GB".
RAW=0
load() {
  echo "loading $(basename "$DATASET") with rows=$1 ..." >&2
  psql -X -q "$PG/postgres" -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS bench" -c "CREATE DATABASE bench"
  psql -X -q -v ON_ERROR_STOP=1 -v rows="$1" -d "$PG/bench" -f "$DATASET" >/dev/null
  LOADED=$1; RAW=$(pg_dump -Fc -Z0 -d "$PG/bench" | wc -c)
}
LOADED=0
if [[ $ONLY != redis ]]; then load "$ROWS"; fi

# ---- Garage: one server with every bucket, or (BENCH_SERVERS=2) a second one for reg2
SERVERS=${BENCH_SERVERS:-1}
source bench/garage.sh
start_garage "$W/garage" reg1 seed shell restic
EP1=$EP
if [[ $SERVERS == 2 ]]; then start_garage "$W/garage2" reg2 shell2; else garage_buckets reg2 shell2; fi
EP2=$EP; EP=$EP1
AWS="aws --endpoint-url $EP1"; AWS2="aws --endpoint-url $EP2"
endpoint() { case $1 in reg2|shell2) echo "$EP2";; *) echo "$EP1";; esac; }
bucket_bytes() { aws --endpoint-url "$(endpoint "$1")" s3 ls --recursive "s3://$1/${2:-}" | awk '{s+=$3} END {print s+0}'; }
empty_bucket() { aws --endpoint-url "$(endpoint "$1")" s3 rm --recursive --quiet "s3://$1/" >/dev/null || true; }

region() { cat <<YAML
  - name: $1
    kind: s3
    bucket: $1
    root: /drctl
    region: garage
    endpoint: $(endpoint "$1")
    access_key_id: \${AWS_ACCESS_KEY_ID}
    secret_access_key: \${AWS_SECRET_ACCESS_KEY}
YAML
}
job="jobs:
  - name: bench
    source: { kind: postgres, url: \"$PG/bench\" }"
{ echo "regions:"; region reg1; echo "min_copies: 1"; echo "$job"; } > "$W/one.yaml"
{ echo "regions:"; region reg1; region reg2; echo "min_copies: 2"; echo "$job"; } > "$W/two.yaml"
# parallel: 2 (one snapshot, pre-data + 2 data buckets + post-data at once).
{ echo "regions:"; region reg1; region reg2; echo "min_copies: 2"; echo "${job% \}}, parallel: 2 }"; } > "$W/two-par.yaml"
# The same, encrypted with age to one recipient (a public key: backup needs no identity).
{ cat "$W/two.yaml"; echo "encryption: { recipients: [age1sdypvgqexfhseucq2stq4lt5az5jsjexk7wwqhs83s7ckdrkl5msuskr0e] }"; } > "$W/two-enc.yaml"
# Two regions in memory (tmpfs): drctl's own pipeline without an S3 server on the same two
# cores as the database and the dump (the Garage rows' servers are), and without disk writeback.
MEM=$W/mem; [[ -d /dev/shm && -w /dev/shm ]] && MEM=$(mktemp -d /dev/shm/drctl-bench.XXXXXX)
{ echo "regions:"; echo "  - { name: mem1, kind: fs, root: $MEM/r1 }"; echo "  - { name: mem2, kind: fs, root: $MEM/r2 }"; echo "min_copies: 2"; echo "$job"; } > "$W/two-mem.yaml"

# ---- measuring
# Rows are registered, then run in rounds: round i runs every row once, in order. Machine
# noise drifts over minutes, so interleaving keeps the limit and drctl under the same
# conditions; "× limit" is the median of the per-round ratios.
ROW_NAMES=(); ROW_CMDS=(); ROW_PRES=(); ROW_BYTES=()
declare -A WALLS CPUS RSSS BYTES BUSYS
# CPU-seconds the whole machine spent (user, nice, system, irq, softirq; every process: the
# database, the S3 servers, the tool measured): a row cannot finish faster than this divided
# by the cores, whatever the tool does.
HZ=$(getconf CLK_TCK); CORES=$(nproc)
machine_cpu() { awk -v hz="$HZ" '/^cpu /{printf "%.2f", ($2+$3+$4+$7+$8)/hz}' /proc/stat; }
row() { ROW_NAMES+=("$1"); ROW_CMDS+=("$2"); ROW_BYTES+=("$3"); ROW_PRES+=("${4:-true}"); }
run_rounds() {
  for i in $(seq "$RUNS"); do
    for k in "${!ROW_NAMES[@]}"; do
      local name=${ROW_NAMES[$k]}
      eval "${ROW_PRES[$k]}"
      local b0; b0=$(machine_cpu)
      /usr/bin/time -f "%e %U %S %M" -o "$W/time" bash -c "set -o pipefail; ${ROW_CMDS[$k]}" >/dev/null 2>"$W/err" \
        || { echo "FAILED: $name: $(tail -5 "$W/err")" >&2; exit 1; }
      BUSYS[$name]+="$(echo "$(machine_cpu) - $b0" | bc) "
      read -r e u s m < <(tail -1 "$W/time")
      WALLS[$name]+="$e "; CPUS[$name]+="$(echo "$u + $s" | bc) "; RSSS[$name]+="$m "
      [[ $i -eq 1 ]] && BYTES[$name]=$(eval "${ROW_BYTES[$k]}")
      echo "  round $i: $name: wall $e s, rss $m KiB" >&2
    done
  done
}
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {printf "%.3f", a[int((NR+1)/2)]}'; }
table() { # title; the first registered row is the limit
  local title=$1 limit=${ROW_NAMES[0]}
  local lw=(${WALLS[$limit]}) lmed; lmed=$(echo "${WALLS[$limit]}" | median)
  echo; echo "### $title (rows=$LOADED, dump $(echo "$RAW / 1000000" | bc) MB, $RUNS interleaved rounds, $SERVERS Garage server(s), Garage compression ${BENCH_GARAGE_COMPRESSION:-none})"; echo
  echo "| row | wall s (median) | min | max | × limit (median of rounds) | s/GB of dump | CPU s | machine CPU s | floor (machine CPU / $CORES cores) × limit | peak RSS MiB (max) | stored MB |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for r in "${ROW_NAMES[@]}"; do
    local ws=(${WALLS[$r]}) ratios=""
    for j in "${!ws[@]}"; do ratios+="$(echo "${ws[$j]} / ${lw[$j]}" | bc -l) "; done
    local sorted; sorted=$(printf '%s\n' "${ws[@]}" | sort -g)
    local wall; wall=$(echo "${WALLS[$r]}" | median)
    local spg="–"; [[ $RAW -gt 0 ]] && spg=$(printf "%.2f" "$(echo "$wall * 1000000000 / $RAW" | bc -l)")
    local busy; busy=$(echo "${BUSYS[$r]}" | median)
    printf "| %s | %.2f | %.2f | %.2f | %.3f | %s | %.2f | %.2f | %.3f | %.1f | %.1f |\n" "${r//|/\\|}" "$wall" \
      "$(echo "$sorted" | head -1)" "$(echo "$sorted" | tail -1)" "$(echo "$ratios" | median)" "$spg" \
      "$(echo "${CPUS[$r]}" | median)" "$busy" "$(echo "$busy / $CORES / $lmed" | bc -l)" \
      "$(echo "$(printf '%s\n' ${RSSS[$r]} | sort -g | tail -1) / 1024" | bc -l)" \
      "$(echo "${BYTES[$r]:-0} / 1000000" | bc -l)"
  done
}
# Sections share row names ("drctl, 2 regions"): a section's measurements must not carry into
# the next one's, or its rows have more rounds than its limit.
reset_rows() { ROW_NAMES=(); ROW_CMDS=(); ROW_PRES=(); ROW_BYTES=(); WALLS=(); CPUS=(); RSSS=(); BYTES=(); BUSYS=(); }

if [[ $ONLY == drctl ]]; then
  # Only the limit and drctl, at each of BENCH_SCALES times the rows (default 1): is peak RSS
  # flat, and do the seconds per GB hold, as the database grows?
  for scale in ${BENCH_SCALES:-1}; do
    [[ $scale == 1 ]] || load $((ROWS * scale))
    row "limit: pg_dump -Fc -Z0 > /dev/null" "pg_dump -Fc -Z0 -d $PG/bench > /dev/null" "echo 0"
    row "drctl, 2 regions" "$DRCTL -c $W/two.yaml --log-format json backup run bench" \
      'echo $(( $(bucket_bytes reg1) + $(bucket_bytes reg2) ))' "empty_bucket reg1; empty_bucket reg2"
    row "drctl, 2 regions, encrypted (age)" "$DRCTL -c $W/two-enc.yaml --log-format json backup run bench" \
      'echo $(( $(bucket_bytes reg1) + $(bucket_bytes reg2) ))' "empty_bucket reg1; empty_bucket reg2"
    # BENCH_BASELINE=/path/to/an/older/drctl: the same run by another build, interleaved in the
    # same rounds, to tell a change's cost from the machine's noise.
    if [[ -n ${BENCH_BASELINE:-} ]]; then
      row "drctl baseline, 2 regions" "$BENCH_BASELINE -c $W/two.yaml --log-format json backup run bench" \
        'echo $(( $(bucket_bytes reg1) + $(bucket_bytes reg2) ))' "empty_bucket reg1; empty_bucket reg2"
    fi
    row "drctl parallel: 2, 2 regions" "$DRCTL -c $W/two-par.yaml --log-format json backup run bench" \
      'echo $(( $(bucket_bytes reg1) + $(bucket_bytes reg2) ))' "empty_bucket reg1; empty_bucket reg2"
    row "drctl, 2 fs regions in tmpfs (no S3 server)" "$DRCTL -c $W/two-mem.yaml --log-format json backup run bench" \
      'du -sb $MEM/r1 $MEM/r2 | awk "{s+=\$1} END {print s}"' "rm -rf $MEM/r1 $MEM/r2"
    run_rounds
    table "Backup, limit and drctl only" | tee "$W/backup-drctl-x$scale.md"
    reset_rows
  done
fi

if [[ $ONLY == all || $ONLY == backup ]]; then
  echo "backup rows ..." >&2
  row "limit: pg_dump -Fc -Z0 > /dev/null" "pg_dump -Fc -Z0 -d $PG/bench > /dev/null" "echo 0"
  row "seed script: pg_dump | gzip, aws s3 cp" \
    "pg_dump -d $PG/bench > $W/f.sql && gzip -f $W/f.sql && $AWS s3 cp --quiet $W/f.sql.gz s3://seed/f.sql.gz && rm -f $W/f.sql.gz" \
    "bucket_bytes seed" "empty_bucket seed"
  row "shell stream: pg_dump | zstd -T0 -3 | aws s3 cp -" \
    "pg_dump -Fc -Z0 -d $PG/bench | zstd -q -T0 -3 | $AWS s3 cp --quiet - s3://shell/a/f.zst" "bucket_bytes shell a/" "empty_bucket shell"
  row "shell stream, 2 regions (tee)" \
    "pg_dump -Fc -Z0 -d $PG/bench | zstd -q -T0 -3 | tee >($AWS s3 cp --quiet - s3://shell/b/f.zst) | $AWS2 s3 cp --quiet - s3://shell2/c/f.zst; wait" \
    'echo $(( $(bucket_bytes shell) + $(bucket_bytes shell2) ))' "empty_bucket shell; empty_bucket shell2"
  row "restic backup --stdin (fresh repo)" \
    "RESTIC_PASSWORD=bench restic -q -r s3:$EP/restic/repo init && pg_dump -Fc -Z0 -d $PG/bench | RESTIC_PASSWORD=bench restic -q -r s3:$EP/restic/repo backup --stdin --stdin-filename bench.dump" \
    "bucket_bytes restic" "empty_bucket restic"
  row "drctl, 1 region" "$DRCTL -c $W/one.yaml --log-format json backup run bench" "bucket_bytes reg1" "empty_bucket reg1"
  row "drctl, 2 regions" "$DRCTL -c $W/two.yaml --log-format json backup run bench" \
    'echo $(( $(bucket_bytes reg1) + $(bucket_bytes reg2) ))' "empty_bucket reg1; empty_bucket reg2"
  row "drctl, 2 regions, encrypted (age)" "$DRCTL -c $W/two-enc.yaml --log-format json backup run bench" \
    'echo $(( $(bucket_bytes reg1) + $(bucket_bytes reg2) ))' "empty_bucket reg1; empty_bucket reg2"
  # The parallel goal: drctl parallel: 2 to two regions against pg_dump's own parallel mode.
  row "limit, parallel: pg_dump -Fd -j 2 -Z0 into a local dir" "pg_dump -Fd -j 2 -Z0 -d $PG/bench -f $W/fd" \
    "du -sb $W/fd | cut -f1" "rm -rf $W/fd"
  row "drctl parallel: 2, 2 regions" "$DRCTL -c $W/two-par.yaml --log-format json backup run bench" \
    'echo $(( $(bucket_bytes reg1) + $(bucket_bytes reg2) ))' "empty_bucket reg1; empty_bucket reg2"
  run_rounds
  table "Backup" | tee "$W/backup.md"
  reset_rows
fi

if [[ $ONLY == all || $ONLY == redis ]]; then
  echo "redis rows ..." >&2
  RPORT=$(free_port); mkdir -p "$W/redis"
  redis-server --port "$RPORT" --bind 127.0.0.1 --dir "$W/redis" --save "" --appendonly no \
    --enable-debug-command yes --repl-diskless-sync-delay 0 >"$W/redis/log" 2>&1 & PIDS+=($!)
  for _ in $(seq 100); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-cli -p "$RPORT" DEBUG POPULATE 2000000 key 256 >/dev/null
  for n in 1 2; do
    { echo "regions:"; region reg1; [[ $n == 2 ]] && region reg2; echo "min_copies: $n"
      echo "jobs:"; echo "  - name: cache"; echo "    source: { kind: redis, url: \"redis://127.0.0.1:$RPORT\" }"; } > "$W/redis$n.yaml"
  done
  # redis-cli 7.0 fsyncs its output, which /dev/null refuses: the limit writes a local file.
  row "limit: redis-cli --rdb FILE" "redis-cli -p $RPORT --rdb $W/limit.rdb && rm -f $W/limit.rdb" "echo 0"
  row "shell: redis-cli --rdb f && zstd f && aws s3 cp" \
    "redis-cli -p $RPORT --rdb $W/f.rdb && zstd -q -f $W/f.rdb && $AWS s3 cp --quiet $W/f.rdb.zst s3://shell/r/f.rdb.zst" \
    "bucket_bytes shell r/" "empty_bucket shell; rm -f $W/f.rdb $W/f.rdb.zst"
  row "drctl, 1 region" "$DRCTL -c $W/redis1.yaml --log-format json backup run cache" "bucket_bytes reg1" "empty_bucket reg1"
  row "drctl, 2 regions" "$DRCTL -c $W/redis2.yaml --log-format json backup run cache" \
    'echo $(( $(bucket_bytes reg1) + $(bucket_bytes reg2) ))' "empty_bucket reg1; empty_bucket reg2"
  run_rounds
  table "Redis backup (DEBUG POPULATE 2000000 key 256)" | tee "$W/redis.md"
  reset_rows
fi

if [[ $ONLY == all || $ONLY == restore ]]; then
  echo "restore rows ..." >&2
  pg_dump -Fc -Z0 -d "$PG/bench" -f "$W/f.dump"
  zstd -q -3 -f "$W/f.dump" -o "$W/f.zst" && $AWS s3 cp --quiet "$W/f.zst" s3://shell/restore/f.zst
  empty_bucket reg1; $DRCTL -c "$W/one.yaml" --log-format json backup run bench >/dev/null 2>&1
  { echo "regions:"; region reg2; echo "min_copies: 1"; echo "${job% \}}, parallel: 2 }"; } > "$W/par-restore.yaml"
  empty_bucket reg2; $DRCTL -c "$W/par-restore.yaml" --log-format json backup run bench >/dev/null 2>&1
  newdb() { psql -X -q "$PG/postgres" -c "DROP DATABASE IF EXISTS restored" -c "CREATE DATABASE restored" 2>/dev/null; }
  row "limit: pg_restore from a local file" "pg_restore -d $PG/restored $W/f.dump" "stat -c %s $W/f.dump" newdb
  row "limit, parallel: pg_restore -j 2" "pg_restore -j 2 -d $PG/restored $W/f.dump" "stat -c %s $W/f.dump" newdb
  row "shell stream: aws s3 cp - | zstd -d | pg_restore" "$AWS s3 cp --quiet s3://shell/restore/f.zst - | zstd -q -d | pg_restore -d $PG/restored" "stat -c %s $W/f.zst" newdb
  row "drctl restore" "$DRCTL -c $W/one.yaml --log-format json restore bench --to $PG/restored" "bucket_bytes reg1" newdb
  row "drctl restore --jobs 2" "$DRCTL -c $W/one.yaml --log-format json restore bench --jobs 2 --to $PG/restored" "bucket_bytes reg1" newdb
  row "drctl restore --jobs 2 of a parallel: 2 backup" "$DRCTL -c $W/par-restore.yaml --log-format json restore bench --jobs 2 --to $PG/restored" "bucket_bytes reg2" newdb
  # An older build restoring the same backups in the same rounds (see the backup table).
  if [[ -n ${BENCH_BASELINE:-} ]]; then
    row "drctl baseline restore" "$BENCH_BASELINE -c $W/one.yaml --log-format json restore bench --to $PG/restored" "bucket_bytes reg1" newdb
    row "drctl baseline restore --jobs 2" "$BENCH_BASELINE -c $W/one.yaml --log-format json restore bench --jobs 2 --to $PG/restored" "bucket_bytes reg1" newdb
    row "drctl baseline restore --jobs 2 of a parallel: 2 backup" "$BENCH_BASELINE -c $W/par-restore.yaml --log-format json restore bench --jobs 2 --to $PG/restored" "bucket_bytes reg2" newdb
  fi
  run_rounds
  table "Restore" | tee "$W/restore.md"
fi
