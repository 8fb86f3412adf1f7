#!/usr/bin/env bash
# One command, fresh machine: install what is needed, start a PostgreSQL and a Redis on
# loopback with sample data, back both up to two filesystem "regions", restore the database
# into a new database and the Redis into a fresh server, and prove each restore equals its
# source; then run the shipped `restore-from-backup` DR drill (lose the restored database,
# restore it from the repository, verify, measure RTO and RPO, keep the evidence).
# Everything lives in ./.demo (removed first).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
scripts/deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --locked --quiet
DRCTL=$ROOT/target/release/drctl

DEMO=$ROOT/.demo
rm -rf "$DEMO"; mkdir -p "$DEMO/pg"
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
RUNAS=()
if [[ $(id -u) -eq 0 ]]; then chown nobody "$DEMO/pg"; RUNAS=(runuser -u nobody --); fi
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"${RUNAS[@]}" "$PGBIN/initdb" -D "$DEMO/pg/data" -U postgres --auth=trust --no-sync >/dev/null
"${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$DEMO/pg/data" -l "$DEMO/pg/log" -w \
  -o "-p $PORT -k $DEMO/pg -c listen_addresses=127.0.0.1" start >/dev/null
URL=postgres://postgres@127.0.0.1:$PORT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
REDIS_PORT=$(free_port); REDIS2_PORT=$(free_port)
for p in "$REDIS_PORT" "$REDIS2_PORT"; do
  mkdir -p "$DEMO/redis-$p"
  redis-server --port "$p" --bind 127.0.0.1 --dir "$DEMO/redis-$p" --save "" --appendonly no \
    --repl-diskless-sync-delay 0 --enable-debug-command local --daemonize yes --pidfile "$DEMO/redis-$p/pid" --logfile "$DEMO/redis-$p/log"
done
cleanup() {
  "${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$DEMO/pg/data" -m fast stop >/dev/null 2>&1 || true
  for p in "$REDIS_PORT" "$REDIS2_PORT"; do redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true; done
}
trap cleanup EXIT
until redis-cli -p "$REDIS2_PORT" ping >/dev/null 2>&1; do sleep 0.1; done

echo "==> PostgreSQL on 127.0.0.1:$PORT with sample data (database: shop)"
psql -X -q -v ON_ERROR_STOP=1 "$URL/postgres" -c "CREATE DATABASE shop"
psql -X -q -v ON_ERROR_STOP=1 "$URL/shop" <<'SQL'
CREATE TABLE customers(id serial PRIMARY KEY, name text, email text, created timestamptz, profile jsonb);
INSERT INTO customers(name, email, created, profile)
  SELECT 'customer ' || g, 'c' || g || '@example.test', now() - g * interval '1 hour', jsonb_build_object('tier', g % 3)
  FROM generate_series(1, 20000) g;
CREATE TABLE orders(id bigserial PRIMARY KEY, customer_id int REFERENCES customers, amount numeric(10,2), placed date);
INSERT INTO orders(customer_id, amount, placed)
  SELECT 1 + g % 20000, (g % 1000) / 3.0, current_date - g % 365 FROM generate_series(1, 100000) g;
SQL

echo "==> Redis on 127.0.0.1:$REDIS_PORT with sample data (sessions with TTLs, carts, a leaderboard)"
{
  for i in $(seq 1 2000); do
    echo "SET session:$i user-$i EX $((3600 + i))"
    echo "HSET cart:$i item-a $((i % 5)) item-b $((i % 3))"
  done
  echo "ZADD leaderboard 10 alice 20 bob 30 carol"
} | redis-cli -p "$REDIS_PORT" >/dev/null
redis-cli -p "$REDIS_PORT" DEBUG POPULATE 50000 cache: 128 >/dev/null

# The shop's configuration directory, as /etc/shop would hold it.
rm -rf "$DEMO/etc"
mkdir -p "$DEMO/etc/shop/tls" "$DEMO/etc/shop/conf.d"
printf 'listen: 0.0.0.0:8080\ndatabase: shop\nreplicas: 3\n' > "$DEMO/etc/shop/app.yaml"
printf 'ssl_protocols TLSv1.3;\n' > "$DEMO/etc/shop/conf.d/tls.conf"
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=shop.demo -days 30 \
  -keyout "$DEMO/etc/shop/tls/key.pem" -out "$DEMO/etc/shop/tls/cert.pem" 2>/dev/null
chmod 600 "$DEMO/etc/shop/tls/key.pem"
ln -sfn conf.d/tls.conf "$DEMO/etc/shop/current.conf"
printf 'swap' > "$DEMO/etc/shop/.app.yaml.swp"

cat > "$DEMO/drctl.yaml" <<YAML
regions:
  - name: shanghai
    kind: fs
    root: $DEMO/regions/shanghai
  - name: beijing
    kind: fs
    root: $DEMO/regions/beijing
min_copies: 2
drills: { cadence: { restore-from-backup: 30d, region-failure: 90d } }
jobs:
  - name: shop-db
    source: { kind: postgres, url: "$URL/shop" }
    schedule: "0 * * * *"
    compression: zstd
    rpo: 1h
    rto: 10m
    retention: { keep_last: 3, keep_daily: 7 }
    verify: { level: restore, scratch: "$URL/postgres" }
  - name: sessions
    source: { kind: redis, url: "redis://127.0.0.1:$REDIS_PORT" }
    schedule: "*/15 * * * *"
    rpo: 15m
  - name: shop-config
    source: { kind: files, paths: ["$DEMO/etc/shop"], exclude: ["*.swp"] }
    schedule: "30 * * * *"
    rpo: 1h
YAML
export DRCTL_CONFIG=$DEMO/drctl.yaml

echo "==> drctl config validate"
"$DRCTL" config validate
echo "==> drctl backup run shop-db sessions shop-config   (one pass each, two regions)"
"$DRCTL" --log-format text backup run shop-db sessions shop-config
echo "==> drctl backup list"
"$DRCTL" backup list
echo "==> drctl restore shop-db --to $URL/shop_restored"
"$DRCTL" --log-format text restore shop-db --region beijing --to "$URL/shop_restored"

echo "==> verifying the restore: every table's contents, source vs restored"
digest() {
  psql -X -tA "$URL/$1" -c "SELECT string_agg(t || '=' || d, ' ' ORDER BY t) FROM (
    SELECT 'customers' t, md5(string_agg(c::text, '|' ORDER BY id)) d FROM customers c
    UNION ALL SELECT 'orders', md5(string_agg(o::text, '|' ORDER BY id)) FROM orders o) x"
}
if [[ "$(digest shop)" == "$(digest shop_restored)" ]]; then
  echo "restore verified: customers and orders are identical to the source"
else
  echo "restore MISMATCH" >&2; exit 1
fi

echo "==> drctl verify shop-db   (checksums in both regions, the archive's TOC, a timed scratch restore)"
"$DRCTL" --log-format text verify shop-db
echo "==> drctl verify sessions --level structure   (the RDB parsed end to end, CRC64, keys per db)"
"$DRCTL" --log-format text verify sessions --level structure
echo "==> more orders, and a second backup of shop-db and sessions   (the history grows)"
psql -X -q "$URL/shop" -c "INSERT INTO orders (customer_id, amount, placed)
  SELECT 1 + g % 1000, (g % 500) + 0.99, now() FROM generate_series(1, 20000) g"
"$DRCTL" --log-format text backup run shop-db sessions
echo "==> drctl status   (RPO and RTO exposure per job)"
"$DRCTL" status
echo "==> drctl prune --dry-run"
"$DRCTL" prune --dry-run

echo "==> drctl restore sessions --to redis://127.0.0.1:$REDIS2_PORT   (RESTORE replay into a fresh server)"
"$DRCTL" --log-format text restore sessions --region shanghai --to "redis://127.0.0.1:$REDIS2_PORT"
# DEBUG DIGEST hashes every key of every db: type, value and expiry.
if [[ "$(redis-cli -p "$REDIS_PORT" DEBUG DIGEST)" == "$(redis-cli -p "$REDIS2_PORT" DEBUG DIGEST)" ]]; then
  echo "restore verified: $(redis-cli -p "$REDIS2_PORT" DBSIZE) keys, DEBUG DIGEST identical to the source (types, values, TTLs)"
else
  echo "Redis restore MISMATCH" >&2; exit 1
fi

echo "==> drctl restore shop-config --to dir:$DEMO/restored-config   (modes, owners, mtimes, symlinks)"
rm -rf "$DEMO/restored-config"
"$DRCTL" --log-format text restore shop-config --region beijing --to "dir:$DEMO/restored-config"
# tar keeps mtimes to the second; a symlink is compared by its target.
tree_of() {
  (cd "$1" && { find . ! -name '*.swp' ! -type l -exec stat -c '%n %A %u:%g %Y' {} +
                find . -type l -printf '%p -> %l\n'; } | sort)
}
restored="$DEMO/restored-config${DEMO}/etc/shop"
if [[ "$(tree_of "$DEMO/etc/shop")" == "$(tree_of "$restored")" ]] && diff -r --no-dereference -x '*.swp' "$DEMO/etc/shop" "$restored"; then
  echo "restore verified: every file, mode, owner, mtime and symlink of $DEMO/etc/shop (the .swp excluded)"
else
  echo "config restore MISMATCH" >&2; exit 1
fi
echo "==> drctl restore shop-config --path …/app.yaml --to dir:/ --clean   (one file back in place)"
echo "replicas: 0  # a bad edit" > "$DEMO/etc/shop/app.yaml"
"$DRCTL" --log-format text restore shop-config --to dir:/ --path "${DEMO#/}/etc/shop/app.yaml" --clean
grep -q 'replicas: 3' "$DEMO/etc/shop/app.yaml" && echo "app.yaml is back as it was backed up"

echo "==> drctl drill run restore-from-backup   (lose shop_restored, restore it, verify; RTO and RPO measured)"
export DRCTL_EVIDENCE_DIR=$DEMO/drills
"$DRCTL" --log-format text drill run restore-from-backup \
  --var job=shop-db --var admin="$URL/postgres" --var database=shop_restored \
  --var target="$URL/shop_restored" --var "check_query=SELECT count(*) FROM orders"
if [[ "$(digest shop)" == "$(digest shop_restored)" ]]; then
  echo "drill verified: shop_restored is identical to the source again"
else
  echo "drill restore MISMATCH" >&2; exit 1
fi
echo "==> drctl drill history   (evidence: $DEMO/drills and drills/ in both regions)"
"$DRCTL" drill history
echo "==> drctl report --html --publish   (the operator's page: also at / of drctl schedule)"
"$DRCTL" report --html "$DEMO/status.html" --publish
echo "status page: $DEMO/status.html (and console/index.html in both regions)"
if command -v chromium >/dev/null; then
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,1500 \
    --disable-background-networking --disable-component-update --disable-sync --no-first-run \
    --user-data-dir="$DEMO/chromium-profile" \
    --screenshot="$ROOT/docs/img/status-page.png" "file://$DEMO/status.html" >/dev/null 2>&1 \
    && echo "screenshot: docs/img/status-page.png"
fi
