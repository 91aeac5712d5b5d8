#!/usr/bin/env bash
# End-to-end throughput and latency: POST accepted by the server, delivered
# over the WebSocket, received (and acked) by a device.
#
#   scripts/bench-e2e.sh                 10,000 devices; closed loop, then paced
#   DEVICES=1000 DURATION=5s RATE=1000 CONC=64 scripts/bench-e2e.sh
#   SERVE_FLAGS=--reader-goroutines scripts/bench-e2e.sh   (no epoll poller)
#   PHASES=paced scripts/bench-e2e.sh                       (one of the two runs)
#   FLEET_NICE=10 scripts/bench-e2e.sh                      (the devices at a lower priority)
#   LOAD_FLAGS=--net-http scripts/bench-e2e.sh              (the sender through net/http)
#
# Three processes, as in production: `openmpns serve`, `openmpns fleet`
# (the devices, writing their Channel URIs to a file) and `openmpns load`
# (the cloud service). Prints the load report (answers, achieved rate, round
# trip) and the fleet report (received, latency from accept to receipt).
# PROFILE_DIR=dir also saves a 10 s CPU profile of the server under load.
# The issue 10 workload (1,000 devices, raw 64-byte payloads, a count
# instead of a duration, medians of several runs) is scripts/bench-unicast.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib-bench.sh
. scripts/lib-bench.sh
bench_build # BIN=path uses that binary; by default the current code is built.
DEVICES=${DEVICES:-10000}
DURATION=${DURATION:-20s}
CONC=${CONC:-128}
RATE=${RATE:-1000}
MIX=${MIX:-toast=60,tile=30,raw=10}
PORT=${PORT:-18090}
PPORT=${PPORT:-16070}
work=$(mktemp -d)
trap bench_cleanup EXIT

# shellcheck disable=SC2086 # SERVE_FLAGS is a list of flags
bench_serve "$PORT" "$PPORT" ${SERVE_FLAGS:-}

run() { # $1 = name, rest = load flags
	local name=$1
	shift
	bench_fleet "$name" "$DEVICES" "http://127.0.0.1:$PORT"
	echo "== $name: $DEVICES devices registered; openmpns load $*"
	if [ -n "${PROFILE_DIR:-}" ]; then
		mkdir -p "$PROFILE_DIR"
		curl -fsS "http://127.0.0.1:$PPORT/debug/pprof/profile?seconds=10" -o "$PROFILE_DIR/cpu-$name.pprof" &
	fi
	local s0 f0
	s0=$(bench_cpu $srv)
	f0=$(bench_cpu $fl)
	# shellcheck disable=SC2086 # LOAD_FLAGS is a list of flags
	/usr/bin/time -f "%U %S" -o "$work/load.time" "$BIN" load --channels "$work/channels.jsonl" --mix "$MIX" \
		--report "$work/load-$name.json" ${LOAD_FLAGS:-} "$@" 2>/dev/null
	local s1 f1 lt
	s1=$(bench_cpu $srv)
	f1=$(bench_cpu $fl)
	lt=$(awk '{print $1+$2}' "$work/load.time")
	echo "CPU seconds during the load: server $(echo "$s1-$s0" | bc), fleet $(echo "$f1-$f0" | bc), load $lt"
	bench_fleet_stop "$(bench_received "$name")"
	bench_report "$name"
}

for phase in ${PHASES:-closed paced}; do
	case $phase in
	closed) run closed --concurrency "$CONC" --duration "$DURATION" ;;
	paced) run paced --rate "$RATE" --duration "$DURATION" ;;
	esac
done
