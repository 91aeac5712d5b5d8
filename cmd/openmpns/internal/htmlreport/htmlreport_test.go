package htmlreport

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/openmpns/openmpns/device/fleet"
	"github.com/openmpns/openmpns/shared/histogram"
)

func TestPageHasEverythingInline(t *testing.T) {
	var lat histogram.Histogram
	for i := 1; i <= 1000; i++ {
		lat.Record(time.Duration(i) * 10 * time.Microsecond)
	}
	r := &fleet.Report{Devices: 10, Notifications: map[string]int64{"toast": 1000}, Latency: lat.Snapshot(), Elapsed: 3 * time.Second}
	r.Finish()
	var tl []fleet.Sample
	for i := 0; i <= 3; i++ {
		tl = append(tl, fleet.Sample{At: time.Duration(i) * time.Second, Connected: 10, Registered: 10, Received: int64(i) * 333})
	}
	var b bytes.Buffer
	err := Write(&b, Input{Title: "Scenario <smoke>", Fleet: r, Timeline: tl, Generated: time.Unix(0, 0),
		Phases: []Phase{{Name: "1 connect 10 devices", Verdict: "PASS"}, {Name: "2 expect", Verdict: "FAIL", Detail: "device 3: 0 toasts, want 1", Start: time.Second}}})
	if err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{"Scenario &lt;smoke&gt;", "1 phase(s) failed", `class="verdict fail"`, "device 3: 0 toasts, want 1",
		"Latency distribution", "Deliveries per second", "Connected devices", "Reconnects and errors over time"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if n := strings.Count(page, "<svg"); n != 4 {
		t.Errorf("%d plots, want 4", n)
	}
	if strings.Contains(page, "<script") || strings.Contains(page, "src=\"http") || strings.Contains(page, "href=\"http") {
		t.Error("the page loads something")
	}
}

// A run whose later phases never ran (an interrupted run) does not say
// that every phase passed.
func TestPageOfARunWithPhasesNotRun(t *testing.T) {
	var b bytes.Buffer
	err := Write(&b, Input{Title: "Scenario s", Generated: time.Unix(0, 0),
		Phases: []Phase{{Name: "1 connect", Verdict: "PASS"}, {Name: "2 send", Verdict: "SKIP", Detail: "the run was interrupted"}}})
	if err != nil {
		t.Fatal(err)
	}
	if page := b.String(); strings.Contains(page, "every phase passed") || !strings.Contains(page, "1 phase(s) not run") {
		t.Errorf("the page of a run with a phase not run: %s", page)
	}
}
