# Sourced by the benchmarks: one Garage server on loopback with the buckets named.
#   start_garage DIR BUCKET...   sets EP (its S3 endpoint), GA (its CLI), exports the aws
#                                CLI's key and region; appends the server's pid to PIDS.
# Needs free_port and PIDS from the caller.
# BENCH_GARAGE_COMPRESSION (default none): Garage's block compression. Every object the
# benchmark stores is compressed already (drctl's zstd, the shell rows' zstd/gzip, restic's),
# and Garage would zstd-encode each block again on write and decode it twice on read (once to
# verify it, once to serve it), on the same cores as the tools measured; a store for backups is
# configured without it. BENCH_GARAGE_COMPRESSION=1 is Garage's own default.
#   garage_buckets BUCKET...     creates more buckets on the server started last ($GA).
start_garage() {
  local G=$1; shift
  mkdir -p "$G"
  local S3PORT RPCPORT ADMPORT
  S3PORT=$(free_port); RPCPORT=$(free_port); ADMPORT=$(free_port)
  cat > "$G/garage.toml" <<TOML
metadata_dir = "$G/meta"
data_dir = "$G/data"
db_engine = "lmdb"
compression_level = $(q=${BENCH_GARAGE_COMPRESSION:-none}; [[ $q == none ]] && echo '"none"' || echo "$q")
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$RPCPORT"
rpc_public_addr = "127.0.0.1:$RPCPORT"
rpc_secret = "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$S3PORT"
root_domain = ".s3.garage.localhost"
[admin]
api_bind_addr = "127.0.0.1:$ADMPORT"
TOML
  garage -c "$G/garage.toml" server >"$G/log" 2>&1 & PIDS+=($!)
  GA="garage -c $G/garage.toml"
  for _ in $(seq 100); do $GA status >/dev/null 2>&1 && break; sleep 0.2; done
  $GA layout assign -z dc1 -c 10G "$($GA node id -q | cut -d@ -f1)" >/dev/null
  $GA layout apply --version 1 >/dev/null
  export AWS_ACCESS_KEY_ID=GK0123456789abcdef01234567
  export AWS_SECRET_ACCESS_KEY=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
  export AWS_DEFAULT_REGION=garage AWS_REGION=garage
  $GA key import --yes -n bench "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >/dev/null
  garage_buckets "$@"
  EP=http://127.0.0.1:$S3PORT
}

garage_buckets() {
  local b
  for b in "$@"; do
    $GA bucket create "$b" >/dev/null; $GA bucket allow --read --write --owner "$b" --key bench >/dev/null
  done
}
