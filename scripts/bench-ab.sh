#!/usr/bin/env bash
# Two builds of the server and the fleet on issue 10's workload, run by run
# in one sitting: the host's speed moves by a fifth within minutes here, so
# builds measured in different sittings (or one after the other) say little
# about a change of a few percent. Each pair runs both builds back to back,
# the first of them alternating; the sender is one build for all runs.
#
#   A=7c16624 B=HEAD scripts/bench-ab.sh                  revisions, built in git worktrees
#   A=/tmp/openmpns-old B=bin/openmpns scripts/bench-ab.sh  binaries
#   PHASE=paced PAIRS=4 ... scripts/bench-ab.sh            the paced run (1,000/s) instead
#
# Knobs (defaults): PAIRS=8 PHASE=closed (or paced), LOAD_BIN (the sender:
# B's build), and bench-unicast.sh's (DEVICES, CONC, COUNT, PACED, RATE, ...).
# Per pair it prints deliveries/s, POST->device p50/p99 and the CPU per
# notification of server / fleet / sender for A and for B; at the end the
# medians, B's ratio to A in each pair, the pairs B won, and the chance of
# at least that many wins were the builds alike (a two-sided sign test).
set -euo pipefail
# A binary given by a path from where the script was started.
[ -f "${A:-}" ] && A=$(realpath "$A")
[ -f "${B:-}" ] && B=$(realpath "$B")
[ -f "${LOAD_BIN:-}" ] && LOAD_BIN=$(realpath "$LOAD_BIN")
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib-bench.sh
. scripts/lib-bench.sh
PAIRS=${PAIRS:-8}
PHASE=${PHASE:-closed}
case $PHASE in closed | paced) ;; *)
	echo "PHASE is closed or paced, not $PHASE" >&2
	exit 2
	;;
esac
if [ -z "${A:-}" ] || [ -z "${B:-}" ]; then
	echo "usage: A=<revision or binary> B=<revision or binary> [PAIRS=8] [PHASE=closed|paced] $0" >&2
	exit 2
fi
work=$(mktemp -d)
trees=()
cleanup() {
	for t in "${trees[@]}"; do git worktree remove --force "$t" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

# build NAME SPEC sets built: SPEC itself when it is an executable file,
# else the revision SPEC built in a worktree of its own (not in a
# subshell: the worktree is removed on exit).
build() {
	if [ -f "$2" ] && [ -x "$2" ]; then
		built=$2
		return
	fi
	local rev
	rev=$(git rev-parse --verify --quiet "$2^{commit}") || {
		echo "$2 is neither an executable file nor a revision" >&2
		exit 2
	}
	local tree=$work/tree-$1
	git worktree add --detach --quiet "$tree" "$rev"
	trees+=("$tree")
	echo "building $1 = $2 (${rev:0:12})" >&2
	(cd "$tree" && CGO_ENABLED=0 go build -o "$work/openmpns-$1" ./cmd/openmpns)
	built=$work/openmpns-$1
}
build a "$A"
binA=$built
build b "$B"
binB=$built
LOAD_BIN=${LOAD_BIN:-$binB}
echo "A = $A ($binA), B = $B ($binB), sender $LOAD_BIN; $PAIRS pairs of one $PHASE run each; $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
bench_probe

# one BIN: prints the percent of the cores the hypervisor took during the
# run's load (steal), then the run's row of bench-unicast's table (its
# columns: run, deliveries/s, received, POST->device p50 / p99, CPU server /
# fleet / load).
name=closed-1
[ "$PHASE" = paced ] && name=paced
one() {
	local out row stolen
	# (-e is off inside the caller's $(...): each failure exits here.)
	out=$(BIN=$1 LOAD_BIN=$LOAD_BIN PHASES=$PHASE RUNS=1 scripts/bench-unicast.sh 2>&1) &&
		row=$(grep -E "^\| $name \|" <<<"$out") || {
		echo "$out" | tail -20 >&2
		echo "a run of $1 failed" >&2
		exit 1
	}
	stolen=$(grep -E "^$name: CPU" <<<"$out" | sed -n 's/.*stolen \([0-9.]*\) %.*/\1/p') || true
	echo "${stolen:--} $row"
}
: >"$work/rows"
for i in $(seq "$PAIRS"); do
	order="a b"
	[ $((i % 2)) = 0 ] && order="b a"
	for w in $order; do
		bin=$binA
		[ "$w" = b ] && bin=$binB
		row=$(one "$bin")
		echo "$i $w $row" >>"$work/rows"
		echo "pair $i, $w: ${row#* } stolen ${row%% *} %"
	done
done

python3 - "$work/rows" "$PHASE" "$A" "$B" <<'PY'
import math, statistics, sys
rows, phase, a_name, b_name = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
runs = {}
for line in open(rows):
    pair, who, stolen, rest = line.split(" ", 3)
    cols = [c.strip() for c in rest.strip().strip("|").split("|")]
    p50, p99 = (float(x) for x in cols[3].split("/"))
    srv, fleet, load = (float(x) for x in cols[4].split("/"))
    runs[(int(pair), who)] = dict(rate=float(cols[1]), p50=p50, p99=p99, srv=srv, fleet=fleet, load=load,
                                  stolen=float("nan") if stolen == "-" else float(stolen))
pairs = sorted({p for p, _ in runs})
# What is better for B: more deliveries/s closed; a lower p99 paced.
key, higher = ("rate", True) if phase == "closed" else ("p99", False)
print("\n| pair | A: deliveries/s, p50 / p99 ms, CPU µs server / fleet / load, cores stolen %% | B: the same | B / A (%s) |" % key)
print("|---|---|---|---|")
ratios, wins = [], 0
for p in pairs:
    a, b = runs[(p, "a")], runs[(p, "b")]
    r = b[key] / a[key] if a[key] else float("nan")
    ratios.append(r)
    wins += (b[key] > a[key]) if higher else (b[key] < a[key])
    cell = lambda x: "%.0f, %.2f / %.2f, %.0f / %.0f / %.0f, %.1f" % (x["rate"], x["p50"], x["p99"], x["srv"], x["fleet"], x["load"], x["stolen"])
    print("| %d | %s | %s | %.3f |" % (p, cell(a), cell(b), r))
n = len(pairs)
def med(who, k):
    v = [runs[(p, who)][k] for p in pairs]
    v = [x for x in v if not math.isnan(x)]  # a run without the figure
    return statistics.median(v) if v else float("nan")
# Two-sided sign test: the chance of a split at least this uneven if each
# pair were a coin toss.
k = max(wins, n - wins)
tail = sum(math.comb(n, j) for j in range(k, n + 1)) / 2 ** n
print("\nA = %s, B = %s, %d pairs, %s:" % (a_name, b_name, n, phase))
print("  medians: deliveries/s A %.0f, B %.0f; p99 ms A %.2f, B %.2f; server µs A %.0f, B %.0f; fleet µs A %.0f, B %.0f; load µs A %.1f, B %.1f" % (
    med("a", "rate"), med("b", "rate"), med("a", "p99"), med("b", "p99"), med("a", "srv"), med("b", "srv"),
    med("a", "fleet"), med("b", "fleet"), med("a", "load"), med("b", "load")))
print("  cores stolen by the hypervisor, median %%: A %.1f, B %.1f" % (med("a", "stolen"), med("b", "stolen")))
print("  B / A %s per pair: median %.3f (%.3f–%.3f); B better in %d of %d pairs (sign test, two-sided: p = %.2f)" % (
    key, statistics.median(ratios), min(ratios), max(ratios), wins, n, min(1.0, 2 * tail)))
PY
