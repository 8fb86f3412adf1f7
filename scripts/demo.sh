#!/usr/bin/env bash
# One command, fresh machine: install what is needed, start a PostgreSQL on loopback with
# sample data, back it up to two filesystem "regions", restore it into a new database and
# prove the restored data equals the source. Everything lives in ./.demo (removed first).
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
trap '"${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$DEMO/pg/data" -m fast stop >/dev/null 2>&1 || true' EXIT
URL=postgres://postgres@127.0.0.1:$PORT

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

cat > "$DEMO/drctl.yaml" <<YAML
regions:
  - name: shanghai
    kind: fs
    root: $DEMO/regions/shanghai
  - name: beijing
    kind: fs
    root: $DEMO/regions/beijing
min_copies: 2
jobs:
  - name: shop-db
    source: { kind: postgres, url: "$URL/shop" }
    schedule: "0 * * * *"
    compression: zstd
    rpo: 1h
YAML
export DRCTL_CONFIG=$DEMO/drctl.yaml

echo "==> drctl config validate"
"$DRCTL" config validate
echo "==> drctl backup run shop-db   (one pass, two regions)"
"$DRCTL" --log-format text backup run shop-db
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
