#!/usr/bin/env bash
# One node on bbolt beside two nodes on a 3-server NATS JetStream cluster,
# the same end-to-end run against each, alternated: `openmpns fleet` runs
# DEVICES devices (spread over the nodes), `openmpns load` POSTs to their
# channels (for the cluster through the node its device is not on, --via),
# closed loop with CONC senders for COUNT notifications, then paced at
# RATE/s for PACED. CPU is counted during the load only.
#
#   scripts/bench-cluster.sh                     10,000 devices, 2 rounds
#   DEVICES=2000 COUNT=20000 ROUNDS=1 scripts/bench-cluster.sh
#   ONLY=cluster scripts/bench-cluster.sh        (or ONLY=single)
#   SERVE_FLAGS=--commit-linger=1ms ONLY=single ...   flags for the single node's serve
#   PROFILE_DIR=/tmp/prof ...                     CPU profiles (4 s) of node 0 and
#                                                 NATS server 0 in the closed loop
#
# Everything shares this machine's cores: NATS, the nodes, the devices and
# the senders. Figures and what they show: docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib-bench.sh
. scripts/lib-bench.sh
DEVICES=${DEVICES:-10000}
COUNT=${COUNT:-50000}
CONC=${CONC:-64}
RATE=${RATE:-1000}
PACED=${PACED:-10000}
ROUNDS=${ROUNDS:-2}
MIX=${MIX:-raw=1}
BASE=${BASE_PORT:-28181}
nats_version=v2.15.3
[ -x bin/nats-server ] || GOBIN="$PWD/bin" go install "github.com/nats-io/nats-server/v2@$nats_version"
CGO_ENABLED=0 go build -o bin/openmpns ./cmd/openmpns
work=$(mktemp -d)
trap bench_cleanup EXIT

wait_http() { for _ in $(seq 300); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "no answer from $1"; exit 1; }

cpu() { # CPU seconds (user+system) of processes so far
	local t=0 p
	for p in "$@"; do t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done
	echo "scale=2; $t/$(getconf CLK_TCK)" | bc
}

metric_urls="" nats_pids=""
reqs() { # kind=count of NATS requests summed over the nodes in $metric_urls
	local u
	for u in $metric_urls; do curl -fsS "$u/metrics" 2>/dev/null; done |
		awk -F'[{}"]' '/^openmpns_nats_requests_total/ {split($0, v, " "); n[$3] += v[2]} END {for (k in n) printf "%s=%d ", k, n[k]}'
}
per_note() { # $1 = requests before, $2 = after, $3 = notifications
	[ -n "$metric_urls" ] || return 0
	echo "$1|$2" | awk -v n="$3" -F'|' '{split($1, a, " "); split($2, b, " "); for (i in a) {split(a[i], x, "="); before[x[1]] = x[2]}
		out = ""; for (i in b) {split(b[i], y, "="); out = out sprintf("%s %.2f, ", y[1], (y[2] - before[y[1]]) / n)} print "   NATS requests per notification: " substr(out, 1, length(out) - 2)}'
}

load() { # $1 = name, $2 = servers (the fleet's), $3 = extra load flags, $4 = server pids
	local name=$1 servers=$2 extra=$3 pids=$4
	bin/openmpns fleet --server "$servers" --devices "$DEVICES" --apps com.example.app --connect-rate 2000 \
		--channels-out "$work/channels.jsonl" --progress 1s 2>"$work/fleet.log" >/dev/null &
	local fl=$!
	until grep -q " $DEVICES registered" "$work/fleet.log" 2>/dev/null; do
		kill -0 $fl || { tail "$work/fleet.log"; exit 1; }
		sleep 0.2
	done
	local c0 c1 f0 f1
	echo "== $name: closed loop, $CONC senders, $COUNT notifications, $DEVICES devices"
	c0=$(cpu $pids); f0=$(cpu $fl); r0=$(reqs); n0=$(cpu $nats_pids)
	if [ -n "${PROFILE_DIR:-}" ] && [ -n "$metric_urls" ]; then
		mkdir -p "$PROFILE_DIR"
		(sleep 1; curl -fsS "http://127.0.0.1:$((BASE + 1300))/debug/pprof/profile?seconds=4" -o "$PROFILE_DIR/cpu-node0.pprof") &
		(sleep 1; curl -fsS "http://127.0.0.1:$((BASE + 1400))/debug/pprof/profile?seconds=4" -o "$PROFILE_DIR/cpu-nats0.pprof") &
	fi
	# shellcheck disable=SC2086
	bin/openmpns load --channels "$work/channels.jsonl" $extra --concurrency "$CONC" --count "$COUNT" --mix "$MIX" \
		--report "$work/$name-closed.json" 2>/dev/null | grep -E 'sent .* in|round trip'
	c1=$(cpu $pids); f1=$(cpu $fl); r1=$(reqs); n1=$(cpu $nats_pids)
	echo "   CPU per notification: servers $(echo "scale=1; ($c1-$c0)*1000000/$COUNT" | bc) µs (NATS $(echo "scale=1; ($n1-$n0)*1000000/$COUNT" | bc)), devices $(echo "scale=1; ($f1-$f0)*1000000/$COUNT" | bc) µs"
	per_note "$r0" "$r1" "$COUNT"
	echo "== $name: paced $RATE/s, $PACED notifications"
	c0=$(cpu $pids); f0=$(cpu $fl); r0=$(reqs); n0=$(cpu $nats_pids)
	# shellcheck disable=SC2086
	bin/openmpns load --channels "$work/channels.jsonl" $extra --rate "$RATE" --count "$PACED" --mix "$MIX" \
		--report "$work/$name-paced.json" 2>/dev/null | grep -E 'sent .* in|round trip'
	c1=$(cpu $pids); f1=$(cpu $fl); r1=$(reqs); n1=$(cpu $nats_pids)
	echo "   CPU per notification: servers $(echo "scale=1; ($c1-$c0)*1000000/$PACED" | bc) µs (NATS $(echo "scale=1; ($n1-$n0)*1000000/$PACED" | bc)), devices $(echo "scale=1; ($f1-$f0)*1000000/$PACED" | bc) µs"
	per_note "$r0" "$r1" "$PACED"
	kill -INT $fl; wait $fl 2>/dev/null || true
	grep -E 'received|end to end|POST' "$work/fleet.log" | tail -3 | sed 's/^/   fleet: /'
}

single() {
	local port=$((BASE + 50))
	# shellcheck disable=SC2086 # SERVE_FLAGS is a list of flags
	bin/openmpns serve --listen 127.0.0.1:$port --data "$work/single" --log-level error --daily-quota -1 ${SERVE_FLAGS:-} >/dev/null 2>&1 &
	local srv=$!
	wait_http "http://127.0.0.1:$port/healthz"
	load single "http://127.0.0.1:$port" "" "$srv"
	kill $srv; wait $srv 2>/dev/null || true
	rm -rf "$work/single" 2>/dev/null || true
}

cluster() {
	local routes="" urls="" pids="" i
	for i in 0 1 2; do routes="$routes,nats://127.0.0.1:$((BASE + 1100 + i))"; urls="$urls,nats://127.0.0.1:$((BASE + 1000 + i))"; done
	routes=${routes#,}; urls=${urls#,}
	for i in 0 1 2; do
		bin/nats-server --name "n$i" --addr 127.0.0.1 --port $((BASE + 1000 + i)) --http_port $((BASE + 1200 + i)) \
			--cluster_name bench --cluster "nats://127.0.0.1:$((BASE + 1100 + i))" --routes "$routes" \
			--jetstream --store_dir "$work/nats$i" ${PROFILE_DIR:+--profile $((BASE + 1400 + i))} >/dev/null 2>&1 &
		pids="$pids $!"
	done
	nats_pids=$pids
	for i in 0 1 2; do wait_http "http://127.0.0.1:$((BASE + 1200 + i))/healthz"; done
	local servers=""
	for i in 0 1; do
		bin/openmpns serve --listen "127.0.0.1:$((BASE + i))" --public-url "http://127.0.0.1:$BASE" --node-id "node$i" \
			--data "$work/node$i" --nats "$urls" --log-level error --daily-quota -1 \
			${PROFILE_DIR:+--pprof 127.0.0.1:$((BASE + 1300 + i))} >/dev/null 2>&1 &
		pids="$pids $!"
		servers="$servers,http://127.0.0.1:$((BASE + i))"
	done
	servers=${servers#,}
	for i in 0 1; do wait_http "http://127.0.0.1:$((BASE + i))/healthz"; done
	metric_urls="http://127.0.0.1:$BASE http://127.0.0.1:$((BASE + 1))"
	# Device i connects to node i % 2; its pushes go to the other node.
	load cluster "$servers" "--via http://127.0.0.1:$((BASE + 1)),http://127.0.0.1:$BASE" "$pids"
	metric_urls="" nats_pids=""
	# shellcheck disable=SC2086
	kill $pids; wait 2>/dev/null || true
	rm -rf "$work"/nats* "$work"/node* 2>/dev/null || true
}

echo "bench-cluster: $(date -u +%FT%TZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$ROUNDS"); do
	echo "--- round $r"
	[ "${ONLY:-}" = cluster ] || single
	[ "${ONLY:-}" = single ] || cluster
done
