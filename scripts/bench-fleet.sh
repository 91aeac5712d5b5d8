#!/usr/bin/env bash
# One `openmpns fleet` command driving many devices against several server
# processes (one process holds at most ~19,000 connections here), then one
# raw notification to every channel from the channels file.
#
#   scripts/bench-fleet.sh                  100,000 devices, 6 servers
#   DEVICES=20000 SERVERS=2 scripts/bench-fleet.sh
#   NATS=3 RATE=1000 scripts/bench-fleet.sh 100,000 devices on 6 nodes of one
#                                           service sharing a 3-server NATS
#                                           JetStream cluster; every Channel URI
#                                           POSTed to a node other than the one
#                                           its device is connected to
#
# Prints the time to register every device, the fleet's memory per device,
# and the fleet's report (every notification received, exactly once).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib-bench.sh
. scripts/lib-bench.sh
# BIN=path uses that binary; by default the current code is built.
if [ -z "${BIN:-}" ]; then BIN=bin/openmpns; CGO_ENABLED=0 go build -o "$BIN" ./cmd/openmpns; fi
DEVICES=${DEVICES:-100000}
SERVERS=${SERVERS:-6}
RATE=${RATE:-5000}
BASE=${BASE:-18100}
work=$(mktemp -d)
trap bench_cleanup EXIT

NATS=${NATS:-0}
cluster_flags=()
if [ "$NATS" -gt 0 ]; then
	[ -x bin/nats-server ] || GOBIN="$PWD/bin" go install github.com/nats-io/nats-server/v2@v2.15.3
	routes="" nurls=""
	for i in $(seq 0 $((NATS - 1))); do
		routes="$routes,nats://127.0.0.1:$((BASE + 1100 + i))"; nurls="$nurls,nats://127.0.0.1:$((BASE + 1000 + i))"
	done
	routes=${routes#,}; nurls=${nurls#,}
	for i in $(seq 0 $((NATS - 1))); do
		bin/nats-server --name "n$i" --addr 127.0.0.1 --port $((BASE + 1000 + i)) --http_port $((BASE + 1200 + i)) \
			--cluster_name fleet --cluster "nats://127.0.0.1:$((BASE + 1100 + i))" --routes "$routes" \
			--jetstream --store_dir "$work/nats$i" >/dev/null 2>&1 &
	done
	for i in $(seq 0 $((NATS - 1))); do
		for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$((BASE + 1200 + i))/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
	done
	cluster_flags=(--nats "$nurls" --public-url "http://127.0.0.1:$BASE")
fi
urls=()
for i in $(seq 0 $((SERVERS - 1))); do
	port=$((BASE + i))
	node=()
	[ "$NATS" -gt 0 ] && node=(--node-id "node$i")
	"$BIN" serve --listen 127.0.0.1:$port --data "$work/data$i" --log-level error --daily-quota -1 "${cluster_flags[@]}" "${node[@]}" >"$work/serve$i.log" 2>&1 &
	urls+=("http://127.0.0.1:$port")
	for _ in $(seq 300); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
done
servers=$(IFS=,; echo "${urls[*]}")
load_flags=()
if [ "$NATS" -gt 0 ]; then
	# Device i connects to node i % SERVERS; its Channel URI goes to node i+1.
	load_flags=(--via "$(IFS=,; echo "${urls[*]:1},${urls[0]}")")
	echo "== one service on $SERVERS nodes, $NATS NATS servers (R$([ "$NATS" -ge 3 ] && echo 3 || echo 1)); every push through another node than its device's"
fi
echo "== $SERVERS servers; openmpns fleet --devices $DEVICES --connect-rate $RATE"
start=$(date +%s.%N)
"$BIN" fleet --server "$servers" --devices "$DEVICES" --apps com.example.app --connect-rate "$RATE" \
	--per-process 10000 --channels-out "$work/channels.csv" --report "$work/fleet.json" --progress 1s \
	2>"$work/fleet.log" >"$work/fleet.out" &
fl=$!
until grep -q " $DEVICES registered" "$work/fleet.log"; do
	kill -0 $fl || { tail "$work/fleet.log"; exit 1; }
	sleep 0.25
done
end=$(date +%s.%N)
rss=0
for p in $fl $(pgrep -P $fl); do rss=$((rss + $(awk '/^VmRSS/ {print $2}' /proc/$p/status))); done
printf "registered %d devices in %.1f s (%.0f/s); fleet RSS %.0f MiB, %.1f KiB per device, %d fleet processes\n" \
	"$DEVICES" "$(echo "$end-$start" | bc)" "$(echo "$DEVICES/($end-$start)" | bc -l)" \
	"$(echo "$rss/1024" | bc -l)" "$(echo "$rss/$DEVICES" | bc -l)" "$((1 + $(pgrep -P $fl | wc -l)))"
start=$(date +%s.%N)
"$BIN" load --channels "$work/channels.csv" "${load_flags[@]}" --concurrency 128 --count "$DEVICES" --mix raw=1 2>/dev/null
for _ in $(seq 600); do
	[ "$(tail -1 "$work/fleet.log" | sed -E 's/.* ([0-9]+) received.*/\1/')" -ge "$DEVICES" ] 2>/dev/null && break
	sleep 0.1
done
end=$(date +%s.%N)
printf "every notification sent and received in %.1f s\n" "$(echo "$end-$start" | bc)"
kill -INT $fl; wait $fl || true
cat "$work/fleet.out"
