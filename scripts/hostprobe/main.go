// Command hostprobe measures what this machine charges for two things a
// notification does many times, so that a benchmark sitting's figures can
// be read against the machine they ran on: a system call, and one thread
// waking another. On the project's VMs the first has measured 98 ns
// (session 12) and 0.6–0.7 µs (session 17) (docs/benchmarks.md).
//
//	hostprobe                             one line: system call ns, wake-up round trip µs
//	hostprobe -calls 200000 -trips 2000   a quicker, rougher reading
//
// Each figure is the cheapest of five batches, so that a batch the host
// preempted does not count: it is what the machine charges when nothing
// else runs, not what a busy benchmark pays (the scripts take it before
// their load). The scripts print its line with each sitting
// (scripts/bench-unicast.sh, scripts/bench-peers.sh, scripts/bench-ab.sh).
// It is a benchmark helper, not part of the product.
package main

import (
	"flag"
	"fmt"
	"os"
)

// batches is how many batches each figure is the cheapest of.
const batches = 5

func main() {
	calls := flag.Int("calls", 1_000_000, "getppid system calls to time, in all")
	trips := flag.Int("trips", 20_000, "wake-up round trips to time, in all (a byte through a pipe to another thread and back)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: hostprobe [-calls N] [-trips N]\n\n"+
			"Prints what this machine charges for a system call and for a wake-up of one\n"+
			"thread by another, each the cheapest of %d batches (about a second).\n\nFlags:\n", batches)
		flag.PrintDefaults()
	}
	flag.Parse()
	if *calls < batches || *trips < batches {
		fmt.Fprintf(os.Stderr, "hostprobe: -calls and -trips must be at least %d\n", batches)
		os.Exit(2)
	}
	r, err := probe(*calls/batches, *trips/batches, batches)
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
}

func (r reading) String() string {
	return fmt.Sprintf("a system call %.0f ns (getppid), a wake-up round trip between two threads %.1f µs (pipes)", r.SyscallNS, r.WakeUS)
}
