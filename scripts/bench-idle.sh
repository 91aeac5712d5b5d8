#!/usr/bin/env bash
# Server memory per idle device connection, and the fleet's connect rate.
#
#   scripts/bench-idle.sh [N ...]      (default: 1000 5000 10000 19000)
#
# For each N: starts `openmpns serve` (its own process), forces a GC through
# --pprof and reads its RSS; starts `openmpns fleet` with N devices (worker
# processes of 10,000, so the per-process open-file limit is not the
# limit), waits until every device is registered, forces a GC again and
# reads the RSS. Prints N, RSS growth per connection, server goroutines,
# fleet RSS per device and the connect rate. Needs curl.
#
# TLS=1 serves WSS (a fresh self-signed certificate for 127.0.0.1; the
# fleet trusts it through SSL_CERT_FILE). PROFILE_DIR=dir keeps, for each
# N, the server's heap profile (heap-idle-N.pprof) and its runtime.MemStats
# (heap-idle-N.txt, the end of /debug/pprof/heap?debug=1; before the fleet
# connects: heap-idle-N-before.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
# BIN=path uses that binary; by default the current code is built.
if [ -z "${BIN:-}" ]; then BIN=bin/openmpns; CGO_ENABLED=0 go build -o "$BIN" ./cmd/openmpns; fi
RATE=${RATE:-5000}
PORT=${PORT:-18080}
PPORT=${PPORT:-16060}
# A run that fails half-way leaves no server or fleet behind (kill fails when
# no job is left: || true keeps the script's own exit status).
certdir=""
trap 'kill $(jobs -p) 2>/dev/null || true; [ -z "$certdir" ] || rm -rf "$certdir"' EXIT
scheme=http
srvtls=()
curlca=()
if [ "${TLS:-0}" = 1 ]; then
	certdir=$(mktemp -d)
	(cd "$certdir" && go run "$(go env GOROOT)/src/crypto/tls/generate_cert.go" --host 127.0.0.1 --ecdsa-curve P256 --ca >/dev/null 2>&1)
	scheme=https
	srvtls=(--tls-cert "$certdir/cert.pem" --tls-key "$certdir/key.pem")
	curlca=(--cacert "$certdir/cert.pem")
	export SSL_CERT_FILE="$certdir/cert.pem" # the fleet's roots
fi
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000 5000 10000 19000)

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
tree_rss_kib() { # a process and its children
	local total=0 p
	for p in $1 $(pgrep -P "$1" || true); do total=$((total + $(rss_kib "$p"))); done
	echo $total
}
gc() { curl -fsS "http://127.0.0.1:$PPORT/debug/pprof/heap?gc=1" >/dev/null; }

printf "%8s %12s %12s %12s %14s %12s\n" devices "server KiB" "KiB/conn" goroutines "fleet KiB/dev" "connects/s"
for n in "${sizes[@]}"; do
	data=$(mktemp -d)
	"$BIN" serve --listen 127.0.0.1:$PORT --data "$data" --log-level error --pprof 127.0.0.1:$PPORT "${srvtls[@]}" >/dev/null 2>&1 &
	srv=$!
	for _ in $(seq 100); do curl -fsS "${curlca[@]}" "$scheme://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
	gc; sleep 1; gc
	base=$(rss_kib $srv)
	[ -z "${PROFILE_DIR:-}" ] || curl -fsS "http://127.0.0.1:$PPORT/debug/pprof/heap?debug=1" | sed -n '/^# runtime.MemStats/,$p' >"$PROFILE_DIR/heap-idle-$n-before.txt"
	log=$(mktemp)
	start=$(date +%s.%N)
	"$BIN" fleet --server $scheme://127.0.0.1:$PORT --devices "$n" --apps com.example.app --connect-rate "$RATE" \
		--per-process 10000 --progress 250ms --duration 1h 2>"$log" >/dev/null &
	fl=$!
	until grep -q " $n registered" "$log"; do
		kill -0 $fl 2>/dev/null || { echo "fleet died:"; tail "$log"; exit 1; }
		sleep 0.25
	done
	end=$(date +%s.%N)
	gc; sleep 2; gc; sleep 1
	after=$(rss_kib $srv)
	curl -fsS "http://127.0.0.1:$PPORT/debug/pprof/goroutine?debug=1" -o "$log.gor"
	gor=$(awk 'NR==1 {print $NF}' "$log.gor")
	if [ -n "${PROFILE_DIR:-}" ]; then
		curl -fsS "http://127.0.0.1:$PPORT/debug/pprof/heap" -o "$PROFILE_DIR/heap-idle-$n.pprof"
		curl -fsS "http://127.0.0.1:$PPORT/debug/pprof/heap?debug=1" | sed -n '/^# runtime.MemStats/,$p' >"$PROFILE_DIR/heap-idle-$n.txt"
	fi
	flrss=$(tree_rss_kib $fl)
	printf "%8d %12d %12.2f %12d %14.1f %12.0f\n" "$n" "$after" "$(echo "($after-$base)/$n" | bc -l)" "$gor" \
		"$(echo "$flrss/$n" | bc -l)" "$(echo "$n/($end-$start)" | bc -l)"
	kill -INT $fl; wait $fl 2>/dev/null || true
	kill -TERM $srv; wait $srv 2>/dev/null || true
	rm -rf "$data" "$log" "$log.gor"
done
