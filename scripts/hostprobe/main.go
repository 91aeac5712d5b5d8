// Command hostprobe measures what this machine charges for the two things
// the unicast benchmarks are made of, so that a sitting's figures can be
// read against the machine they ran on: a system call, and one thread
// waking another. On the project's VMs the first has measured from about
// 0.1 to 0.7 µs and the second moves with it (docs/benchmarks.md, session
// 17), while the benchmarks' rates moved by half.
//
//	hostprobe                 one line: system call ns, wake-up round trip µs
//	hostprobe -calls 200000 -trips 2000   a quicker, rougher reading
//
// The scripts print its line with each sitting (scripts/bench-unicast.sh,
// scripts/bench-peers.sh). It is a benchmark helper, not part of the
// product.
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	calls := flag.Int("calls", 1_000_000, "getppid system calls to time")
	trips := flag.Int("trips", 20_000, "wake-up round trips to time (a byte through a pipe to another thread and back)")
	flag.Parse()
	if *calls < 1 || *trips < 1 {
		fmt.Fprintln(os.Stderr, "hostprobe: -calls and -trips must be at least 1")
		os.Exit(2)
	}
	r, err := probe(*calls, *trips)
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
