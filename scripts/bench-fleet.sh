#!/usr/bin/env bash
# One `openmpns fleet` command driving many devices against several server
# processes (one process holds at most ~19,000 connections here), then one
# raw notification to every channel from the channels file.
#
#   scripts/bench-fleet.sh                  100,000 devices, 6 servers
#   DEVICES=20000 SERVERS=2 scripts/bench-fleet.sh
#
# Prints the time to register every device, the fleet's memory per device,
# and the fleet's report (every notification received, exactly once).
set -euo pipefail
cd "$(dirname "$0")/.."
# BIN=path uses that binary; by default the current code is built.
if [ -z "${BIN:-}" ]; then BIN=bin/openmpns; CGO_ENABLED=0 go build -o "$BIN" ./cmd/openmpns; fi
DEVICES=${DEVICES:-100000}
SERVERS=${SERVERS:-6}
RATE=${RATE:-5000}
BASE=${BASE:-18100}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

urls=()
for i in $(seq 0 $((SERVERS - 1))); do
	port=$((BASE + i))
	"$BIN" serve --listen 127.0.0.1:$port --data "$work/data$i" --log-level error --daily-quota -1 >/dev/null 2>&1 &
	urls+=("http://127.0.0.1:$port")
	for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
done
servers=$(IFS=,; echo "${urls[*]}")
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
"$BIN" load --channels "$work/channels.csv" --concurrency 128 --count "$DEVICES" --mix raw=1 2>/dev/null
for _ in $(seq 600); do
	[ "$(tail -1 "$work/fleet.log" | sed -E 's/.* ([0-9]+) received.*/\1/')" -ge "$DEVICES" ] 2>/dev/null && break
	sleep 0.1
done
kill -INT $fl; wait $fl || true
cat "$work/fleet.out"
