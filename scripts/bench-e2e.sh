#!/usr/bin/env bash
# End-to-end throughput and latency: POST accepted by the server, delivered
# over the WebSocket, received (and acked) by a device.
#
#   scripts/bench-e2e.sh                 10,000 devices; closed loop, then paced
#   DEVICES=1000 DURATION=5s RATE=1000 CONC=64 scripts/bench-e2e.sh
#   SERVE_FLAGS=--reader-goroutines scripts/bench-e2e.sh   (no epoll poller)
#   PHASES=paced scripts/bench-e2e.sh                       (one of the two runs)
#   FLEET_NICE=10 scripts/bench-e2e.sh                      (the devices at a lower priority)
#
# Three processes, as in production: `openmpns serve`, `openmpns fleet`
# (the devices, writing their Channel URIs to a file) and `openmpns load`
# (the cloud service). Prints the load report (answers, achieved rate, round
# trip) and the fleet report (received, latency from accept to receipt).
# PROFILE_DIR=dir also saves a 10 s CPU profile of the server under load.
set -euo pipefail
cd "$(dirname "$0")/.."
# BIN=path uses that binary; by default the current code is built.
if [ -z "${BIN:-}" ]; then BIN=bin/openmpns; CGO_ENABLED=0 go build -o "$BIN" ./cmd/openmpns; fi
DEVICES=${DEVICES:-10000}
DURATION=${DURATION:-20s}
CONC=${CONC:-128}
RATE=${RATE:-1000}
MIX=${MIX:-toast=60,tile=30,raw=10}
PORT=${PORT:-18090}
PPORT=${PPORT:-16070}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

cpu() { # CPU seconds (user+system) of a process and its children so far
	local t=0 p
	for p in $1 $(pgrep -P "$1" || true); do t=$((t + $(awk '{print $14+$15+$16+$17}' "/proc/$p/stat" 2>/dev/null || echo 0))); done
	echo "scale=2; $t/$(getconf CLK_TCK)" | bc
}

# shellcheck disable=SC2086 # SERVE_FLAGS is a list of flags
"$BIN" serve --listen 127.0.0.1:$PORT --data "$work/data" --log-level error --daily-quota -1 \
	--pprof 127.0.0.1:$PPORT ${SERVE_FLAGS:-} >/dev/null 2>&1 &
srv=$!
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

run() { # $1 = name, rest = load flags
	local name=$1; shift
	nice -n "${FLEET_NICE:-0}" "$BIN" fleet --server http://127.0.0.1:$PORT --devices "$DEVICES" --apps com.example.app --connect-rate 5000 \
		--channels-out "$work/channels.jsonl" --report "$work/fleet-$name.json" --progress 1s 2>"$work/fleet.log" >/dev/null &
	local fl=$!
	until grep -q " $DEVICES registered" "$work/fleet.log" 2>/dev/null; do
		kill -0 $fl || { tail "$work/fleet.log"; exit 1; }
		sleep 0.2
	done
	echo "== $name: $DEVICES devices registered; openmpns load $*"
	if [ -n "${PROFILE_DIR:-}" ]; then
		mkdir -p "$PROFILE_DIR"
		curl -fsS "http://127.0.0.1:$PPORT/debug/pprof/profile?seconds=10" -o "$PROFILE_DIR/cpu-$name.pprof" &
	fi
	local s0 f0 l0
	s0=$(cpu $srv); f0=$(cpu $fl)
	/usr/bin/time -f "%U %S" -o "$work/load.time" "$BIN" load --channels "$work/channels.jsonl" --mix "$MIX" --report "$work/load-$name.json" "$@" 2>/dev/null
	local s1 f1 lt
	s1=$(cpu $srv); f1=$(cpu $fl)
	lt=$(awk '{print $1+$2}' "$work/load.time")
	echo "CPU seconds during the load: server $(echo "$s1-$s0" | bc), fleet $(echo "$f1-$f0" | bc), load $lt"
	local want
	want=$(python3 -c "import json;print(json.load(open('$work/load-$name.json'))['load']['received'])")
	for _ in $(seq 300); do
		grep -q "received" "$work/fleet.log" && [ "$(tail -1 "$work/fleet.log" | sed -E 's/.* ([0-9]+) received.*/\1/')" -ge "$want" ] 2>/dev/null && break
		sleep 0.1
	done
	kill -INT $fl; wait $fl || true
	python3 - "$work/fleet-$name.json" "$work/load-$name.json" <<'PY'
import json, sys
f = json.load(open(sys.argv[1])); l = json.load(open(sys.argv[2]))["load"]
lat = f["latency"]
ms = lambda ns: "%.2f ms" % (ns / 1e6)
print("devices received %d of %d accepted; duplicates %d, redelivered %d, out of order %d" % (
    sum(f["notifications"].values()), l["received"], f["duplicates"], f["redelivered"], f["out_of_order"]))
print("delivery rate %.0f/s over the load's %.1f s; accept->device p50 %s p95 %s p99 %s max %s" % (
    sum(f["notifications"].values()) / (l["elapsed_ns"] / 1e9), l["elapsed_ns"] / 1e9,
    ms(lat["p50_ns"]), ms(lat["p95_ns"]), ms(lat["p99_ns"]), ms(lat["max_ns"])))
sl = f["send_latency"]
print("POST->device p50 %s p95 %s p99 %s max %s" % (ms(sl["p50_ns"]), ms(sl["p95_ns"]), ms(sl["p99_ns"]), ms(sl["max_ns"])))
sa = f.get("send_to_accept")
if sa:
    print("  of which POST->accept p50 %s p95 %s p99 %s max %s" % (ms(sa["p50_ns"]), ms(sa["p95_ns"]), ms(sa["p99_ns"]), ms(sa["max_ns"])))
PY
}

for phase in ${PHASES:-closed paced}; do
	case $phase in
	closed) run closed --concurrency "$CONC" --duration "$DURATION" ;;
	paced) run paced --rate "$RATE" --duration "$DURATION" ;;
	esac
done
