// Command hostprobe measures what this machine charges for things a
// notification does many times, so that a benchmark sitting's figures can
// be read against the machine they ran on: a system call, one thread
// waking another, and one thread waking another on a core that has been
// idle for a while. On the project's VMs the first has measured 98 ns
// (session 12) and 0.6–0.7 µs (session 17); on session 18's, the last
// read 40–58 µs against 19–20 µs for the second, and slow wake-ups of
// idle cores are our reading of that session's paced figures
// (docs/benchmarks.md).
//
//	hostprobe                                        one line: the three figures
//	hostprobe -calls 200000 -trips 2000 -pauses 50   a quicker, rougher reading
//
// The first two figures are each the cheapest of five batches, so that a
// batch the host preempted does not count: they are what the machine
// charges when nothing else runs, not what a busy benchmark pays (the
// scripts take them before their load). The third is the median of round
// trips between two threads pinned to two cores, each trip after a pause
// of a millisecond, the gap between two notifications at 1,000/s: the
// echoing thread's core idles meanwhile, and a virtual machine's host may
// stop running it. A median and a cheapest batch are not the same
// statistic: compare the third figure with the second only roughly. The
// scripts print the line with each sitting (scripts/bench-unicast.sh,
// scripts/bench-peers.sh, scripts/bench-ab.sh). It is a benchmark helper,
// not part of the product.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"
)

// batches is how many batches each of the first two figures is the
// cheapest of.
const batches = 5

// pauseMS is how long, in milliseconds, a core idles before each round
// trip of the third figure; pause is the same as a duration.
const (
	pauseMS = 1
	pause   = pauseMS * time.Millisecond
)

func main() {
	calls := flag.Int("calls", 1_000_000, "getppid system calls to time, in all")
	trips := flag.Int("trips", 20_000, "wake-up round trips to time, in all (a byte through a pipe to another thread and back)")
	pauses := flag.Int("pauses", 200, "round trips to time to a thread on another core, each after that core idled 1 ms (0: none)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: hostprobe [-calls N] [-trips N] [-pauses N]\n\n"+
			"Prints what this machine charges for a system call and for a wake-up of one\n"+
			"thread by another, each the cheapest of %d batches, and for a wake-up of a\n"+
			"thread on a core that idled for %d ms, the median of -pauses round trips\n"+
			"(about a second in all).\n\nFlags:\n", batches, pauseMS)
		flag.PrintDefaults()
	}
	flag.Parse()
	if *calls < batches || *trips < batches || *pauses < 0 {
		fmt.Fprintf(os.Stderr, "hostprobe: -calls and -trips must be at least %d, -pauses at least 0\n", batches)
		os.Exit(2)
	}
	r, err := probe(*calls/batches, *trips/batches, batches, *pauses)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hostprobe:", err)
		os.Exit(1)
	}
	fmt.Println(r)
}

// reading is one probe's result.
type reading struct {
	SyscallNS float64 // one getppid, raw (no runtime bookkeeping)
	WakeUS    float64 // a byte to another, sleeping thread through a pipe and back
	// IdleWakeUS is the same to a thread on another core that idled for
	// pause, the median; IdleWake says why it was not measured, when it
	// was not.
	IdleWakeUS float64
	IdleWake   string
}

func (r reading) String() string {
	idle := fmt.Sprintf("%.1f µs to a core idle for %d ms", r.IdleWakeUS, pauseMS)
	if r.IdleWake != "" {
		idle = "not measured to an idle core (" + r.IdleWake + ")"
	}
	return fmt.Sprintf("a system call %.0f ns (getppid), a wake-up round trip between two threads %.1f µs (pipes), %s",
		r.SyscallNS, r.WakeUS, idle)
}
