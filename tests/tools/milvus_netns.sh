#!/usr/bin/env bash
# Run the embedded Milvus server (PyPI `milvus`) inside a network namespace of its own: it
# binds every interface, so it must not see the host's. The namespace reaches the host over a
# veth pair: the host side is 10.231.IDX.1, the server 10.231.IDX.2. Stays until WATCH_PID
# exits (the test process), then kills everything in the namespace and removes it.
# Usage: milvus_netns.sh IDX DATA_DIR WATCH_PID VENV [SERVER_ARGS...]
set -uo pipefail
idx=$1 data=$2 watch=$3 venv=$4
shift 4
ns="drctl-mv$idx" host="drctlmv${idx}h" peer="drctlmv${idx}n"
cleanup() {
  for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
  ip netns del "$ns" 2>/dev/null
  ip link del "$host" 2>/dev/null
  true
}
trap cleanup EXIT
cleanup
set -e
ip netns add "$ns"
ip link add "$host" type veth peer name "$peer"
ip link set "$peer" netns "$ns"
ip addr add "10.231.$idx.1/30" dev "$host"
ip link set "$host" up
ip netns exec "$ns" ip addr add "10.231.$idx.2/30" dev "$peer"
ip netns exec "$ns" ip link set "$peer" up
ip netns exec "$ns" ip link set lo up
mkdir -p "$data"
ip netns exec "$ns" "$venv/bin/milvus-server" --data "$data" "$@" >"$data/server.log" 2>&1 &
set +e
while kill -0 "$watch" 2>/dev/null; do sleep 1; done
