#!/usr/bin/env bash
# make cluster: OpenMPNS as one service on several nodes, on this machine.
# A 3-server NATS JetStream cluster and 3 openmpns nodes sharing it; prints
# the URLs to give a fleet, a device or the emulator. Ctrl-C stops it all.
#
#   NODES=3 NATS_SERVERS=3 BASE_PORT=8181 DATA=./data/cluster scripts/cluster.sh
#
# Any node takes any push and any device. Channel URIs carry the public URL
# (node 1's address here, as a load balancer's would be): a sender may POST
# the same path to any node.
set -euo pipefail
cd "$(dirname "$0")/.."
nodes=${NODES:-3}
nats_servers=${NATS_SERVERS:-3}
base=${BASE_PORT:-8181}
data=${DATA:-./data/cluster}
nats_version=v2.15.3

if [ ! -x bin/nats-server ]; then
  echo "cluster: installing nats-server $nats_version into bin/ (once)"
  GOBIN="$PWD/bin" go install "github.com/nats-io/nats-server/v2@$nats_version"
fi
[ -x bin/openmpns ] || make build

mkdir -p "$data"
pids=()
stop() {
  echo
  echo "cluster: stopping"
  # openmpns nodes first (they drain their devices), then NATS.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[$i]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop EXIT
# Ctrl-C ends the script, and the EXIT trap stops everything once.
trap 'exit 130' INT TERM

client_urls=()
routes=()
for ((i = 0; i < nats_servers; i++)); do
  routes+=("nats://127.0.0.1:$((base + 1100 + i))")
  client_urls+=("nats://127.0.0.1:$((base + 1000 + i))")
done
route_list=$(IFS=,; echo "${routes[*]}")
nats_list=$(IFS=,; echo "${client_urls[*]}")

for ((i = 0; i < nats_servers; i++)); do
  echo "cluster: NATS server n$i on ${client_urls[$i]} (JetStream in $data/nats$i)"
  bin/nats-server --name "n$i" --addr 127.0.0.1 --port $((base + 1000 + i)) \
    --cluster_name openmpns --cluster "nats://127.0.0.1:$((base + 1100 + i))" --routes "$route_list" \
    --http_port $((base + 1200 + i)) --jetstream --store_dir "$data/nats$i" >"$data/nats$i.log" 2>&1 &
  pids+=($!)
done

# wait_healthy URL WHAT: waits (30 s at most) until URL answers 200.
wait_healthy() {
  for _ in $(seq 300); do
    curl -fsS "$1" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "cluster: $2 is not healthy; see $data/*.log"
  exit 1
}

# Wait until every NATS server is healthy, JetStream (its meta leader) included.
for ((i = 0; i < nats_servers; i++)); do
  wait_healthy "http://127.0.0.1:$((base + 1200 + i))/healthz" "NATS server n$i"
done
echo "cluster: NATS JetStream cluster ready"

public="http://127.0.0.1:$base"
node_urls=()
for ((i = 0; i < nodes; i++)); do
  port=$((base + i))
  node_urls+=("http://127.0.0.1:$port")
  echo "cluster: openmpns node $i on 127.0.0.1:$port (log $data/node$i.log)"
  bin/openmpns serve --listen "127.0.0.1:$port" --public-url "$public" --node-id "node$i" --data "$data/node$i" \
    --nats "$nats_list" --log-level "${LOG_LEVEL:-info}" >"$data/node$i.log" 2>&1 &
  pids+=($!)
done

# Wait until every node answers /healthz.
for u in "${node_urls[@]}"; do
  wait_healthy "$u/healthz" "node $u"
done

servers=$(IFS=,; echo "${node_urls[*]}")
cat <<EOF

OpenMPNS cluster: $nodes nodes on $nats_servers NATS servers.
  nodes:        $servers
  public URL:   $public (in every Channel URI; any node takes any push)
  NATS:         $nats_list

Try:
  bin/openmpns device --server $servers --app com.example.news --toast
  bin/openmpns fleet --server $servers --devices 1000 --duration 30s
  bin/openmpns-emulator --server $servers
  bin/openmpns service add weather --nats $nats_list

Ctrl-C stops the cluster.
EOF
wait
