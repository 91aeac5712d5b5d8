# Shell functions shared by the multi-process benchmarks (bench-e2e.sh,
# bench-unicast.sh, bench-peers.sh; bench-cluster.sh and bench-fleet.sh use
# bench_cleanup, bench-ab.sh bench_probe). Source it after `set -euo
# pipefail` and `cd` to the repository root; it expects $work (a scratch
# directory the caller removes).
#
#   bench_build                 sets BIN: the given binary, or the current code built
#   bench_cleanup               the EXIT trap: stops the script's background jobs, removes $work
#   bench_cpu PID...            CPU seconds (user+system) of processes and their children so far
#   bench_cpu_split PID...      the same as two figures: user seconds, system seconds
#   bench_serve PORT PPORT ...  starts `openmpns serve` (rest: extra flags), sets $srv, waits for /healthz
#   bench_fleet NAME N URL      starts a fleet of N devices with Channel URIs in $work/channels.jsonl
#                               and its report in $work/fleet-NAME.json, sets $fl, waits until registered
#   bench_fleet_stop WANT       waits (up to 30 s) until the fleet received WANT, then stops it (report written)
#   bench_report NAME           prints the devices' and the sender's view of run NAME
#   bench_switches PID          context switches (voluntary and not) of a process's threads so far
#   bench_host, bench_idle_pct  the host's idle, iowait, steal and total CPU ticks; their percents between two readings
#   bench_probe                 once a sitting, a line: what this machine charges for a system call and a wake-up
#   bench_log URL               the server's notification log counters (records, fdatasyncs,
#                               written, skipped), "- - - -" for a build without them

# bench_build sets BIN: $BIN if given (to compare builds), else the current code built.
bench_build() {
	if [ -z "${BIN:-}" ]; then
		BIN=bin/openmpns
		CGO_ENABLED=0 go build -o "$BIN" ./cmd/openmpns
	fi
}

# bench_cleanup is a benchmark script's EXIT trap: it stops the script's
# background jobs and removes $work. No step's failure becomes the script's
# exit status: kill with no job left exits 2, which under set -e would turn a
# good run into a failed one.
bench_cleanup() {
	# shellcheck disable=SC2046 # one argument per job
	kill $(jobs -p) 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$work" 2>/dev/null || true
}

# bench_cpu prints the CPU seconds (user+system, children's included) of
# the processes and of their children so far.
bench_cpu() {
	bench_cpu_split "$@" | awk '{printf "%.3f\n", $1 + $2}'
}

# bench_cpu_split prints the same as two figures, user and system seconds.
# The kernel's loopback TCP (the receiving socket's work too, done in the
# sending process's system call) is in the system part; the user part is
# what a program's own code costs.
bench_cpu_split() {
	local u=0 s=0 p q t
	for p in "$@"; do
		for q in $p $(pgrep -P "$p" || true); do
			# comm, field 2, may hold spaces: count from after its ")".
			t=$(sed 's/.*) //' "/proc/$q/stat" 2>/dev/null | awk '{print $12+$14, $13+$15}') || t=""
			[ -n "$t" ] || continue
			u=$((u + ${t% *}))
			s=$((s + ${t#* }))
		done
	done
	echo "$(echo "scale=3; $u/$(getconf CLK_TCK)" | bc) $(echo "scale=3; $s/$(getconf CLK_TCK)" | bc)"
}

# bench_switches prints the context switches of all threads of a process
# so far: each is a thread that went to sleep or was preempted, so per
# notification they count the wake-ups a notification costs.
bench_switches() {
	cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ {n += $2} END {print n + 0}'
}

# bench_host prints the host's CPU time so far in clock ticks (/proc/stat):
# idle, iowait, steal, then all (user to steal; guest time is in user
# already).
bench_host() {
	awk '$1 == "cpu" {t = 0; for (i = 2; i <= 9; i++) t += $i; print $5, $6, $9, t; exit}' /proc/stat
}

# bench_idle_pct "IDLE0 IOWAIT0 STEAL0 ALL0" "IDLE1 IOWAIT1 STEAL1 ALL1"
# prints, between two bench_host readings, the percent of the cores left
# idle, the percent idle waiting for the disk (iowait) apart, and the
# percent the hypervisor ran something else on our virtual CPUs (steal:
# time none of our processes could run, however ready).
bench_idle_pct() {
	echo "$1 $2" | awk '{d = $8 - $4; if (d <= 0) d = 1; printf "%.1f %.1f %.1f\n", 100 * ($5 - $1) / d, 100 * ($6 - $2) / d, 100 * ($7 - $3) / d}'
}

# bench_probe prints, as "host: ...", what a system call, a wake-up of one
# thread by another, and a wake-up on a core that idled for 1 ms cost on
# this machine now, idle (scripts/hostprobe, about a second): things a
# notification does many times. System calls have cost six to seven times
# as much on one of the project's VMs as on another (session 17); slow
# wake-ups of idle cores are our reading of session 18's paced figures
# (docs/benchmarks.md). Once per sitting: it exports BENCH_PROBED, and the
# scripts a sitting runs inside it (bench-peers' and bench-ab's runs of
# bench-unicast.sh) print nothing. A failed probe says so and fails
# nothing.
bench_probe() {
	[ -z "${BENCH_PROBED:-}" ] || return 0
	export BENCH_PROBED=1
	local line
	if go build -o bin/hostprobe ./scripts/hostprobe && line=$(bin/hostprobe); then
		echo "host: $line"
	else
		echo "host: not measured (hostprobe failed)"
	fi
}

# bench_serve PORT PPORT [flags...] starts a server on a fresh data
# directory with its pprof endpoint on PPORT, and waits until it answers.
# Its log goes to SERVE_LOG if set (with SERVE_FLAGS="--log-level debug",
# say), else into the run's work directory.
bench_serve() {
	local port=$1 pport=$2
	shift 2
	if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
		echo "something already answers on port $port (another benchmark?): give PORT=... and PPORT=..." >&2
		exit 1
	fi
	"$BIN" serve --listen "127.0.0.1:$port" --data "$work/data" --log-level error --daily-quota -1 \
		--pprof "127.0.0.1:$pport" "$@" >/dev/null 2>"${SERVE_LOG:-$work/serve.log}" &
	srv=$!
	for _ in $(seq 100); do
		curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0
		kill -0 $srv 2>/dev/null || break
		sleep 0.1
	done
	echo "the server did not start:" >&2
	tail "${SERVE_LOG:-$work/serve.log}" >&2
	exit 1
}

# bench_fleet NAME N URL starts N devices (one app, toast and tile bound)
# at ${FLEET_NICE:-0} with ${FLEET_FLAGS:-}, and waits until all are registered.
bench_fleet() {
	local name=$1 n=$2 url=$3
	rm -f "$work/channels.jsonl"
	# shellcheck disable=SC2086 # FLEET_FLAGS is a list of flags
	nice -n "${FLEET_NICE:-0}" "$BIN" fleet --server "$url" --devices "$n" --apps com.example.app --connect-rate 5000 \
		--channels-out "$work/channels.jsonl" --report "$work/fleet-$name.json" --progress 1s ${FLEET_FLAGS:-} 2>"$work/fleet.log" >/dev/null &
	fl=$!
	until grep -q " $n registered" "$work/fleet.log" 2>/dev/null; do
		kill -0 $fl 2>/dev/null || { tail "$work/fleet.log" >&2; exit 1; }
		sleep 0.2
	done
}

# bench_fleet_stop WANT waits until the fleet's progress line counts WANT
# received (at most 30 s), then interrupts it, which writes its report.
bench_fleet_stop() {
	local want=$1
	for _ in $(seq 300); do
		grep -q "received" "$work/fleet.log" &&
			[ "$(tail -1 "$work/fleet.log" | sed -E 's/.* ([0-9]+) received.*/\1/')" -ge "$want" ] 2>/dev/null && break
		sleep 0.1
	done
	kill -INT $fl
	wait $fl || true
}

# bench_received NAME prints how many notifications run NAME's sender had answered 200 Received.
bench_received() {
	python3 -c "import json,sys;print(json.load(open(sys.argv[1]))['load']['received'])" "$work/load-$1.json"
}

# bench_report NAME prints the fleet's report (received, duplicates,
# latencies) against the sender's of run NAME.
bench_report() {
	python3 - "$work/fleet-$1.json" "$work/load-$1.json" <<'PY'
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

# bench_log URL prints the notification log's counters of the server at
# URL (/metrics): records, fdatasyncs, notifications written, skipped
# (acknowledged before their commit), then the heap allocations the
# process made so far; dashes for a build without the log's counters.
bench_log() {
	curl -fsS "$1/metrics" 2>/dev/null | awk '
		/^openmpns_log_records_total / {r=$2}
		/^openmpns_log_syncs_total / {s=$2}
		/^openmpns_log_notifications_total\{outcome="written"\} / {w=$2}
		/^openmpns_log_notifications_total\{outcome="skipped"\} / {k=$2}
		/^go_memstats_mallocs_total / {m=$2}
		END {if (r == "") print "- - - - -"; else printf "%d %d %d %d %.0f\n", r, s, w, k, m}'
}
