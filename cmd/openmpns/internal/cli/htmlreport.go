package cli

import (
	"bytes"
	"fmt"
	"time"

	"github.com/openmpns/openmpns/cmd/openmpns/internal/htmlreport"
	"github.com/openmpns/openmpns/device/fleet"
	"github.com/openmpns/openmpns/device/fleet/scenario"
	"github.com/openmpns/openmpns/shared/sender/load"
)

// writeHTML writes an HTML report to out.
func writeHTML(out *outputFile, in htmlreport.Input) error {
	in.Generated = time.Now()
	var b bytes.Buffer
	if err := htmlreport.Write(&b, in); err != nil {
		out.discard()
		return fmt.Errorf("%s: %w", out.flag, err)
	}
	return out.commit(b.Bytes())
}

// writeFleetHTML writes the HTML report of an `openmpns fleet` run.
func writeFleetHTML(out *outputFile, r *fleet.Report) error {
	return writeHTML(out, htmlreport.Input{Title: "OpenMPNS fleet report",
		Subtitle: fmt.Sprintf("openmpns fleet: %d devices, %s", r.Devices, r.Elapsed.Round(time.Second)), Fleet: r})
}

// writeScenarioHTML writes the HTML report of a scenario run.
func writeScenarioHTML(dst *outputFile, file string, out *scenario.Outcome) error {
	in := htmlreport.Input{Title: "Scenario " + out.Name, Subtitle: "openmpns fleet --scenario " + file, Fleet: out.Report, Timeline: out.Timeline}
	for _, r := range out.Results {
		in.Phases = append(in.Phases, htmlreport.Phase{Name: r.Phase, Verdict: r.Verdict(), Detail: r.Failure + r.Error + r.Skipped,
			Start: r.Start, Duration: r.Duration})
	}
	if out.CloseError != "" {
		in.Phases = append(in.Phases, htmlreport.Phase{Name: scenario.ClosePhase, Verdict: "ERROR", Detail: out.CloseError, Start: out.Elapsed})
	}
	return writeHTML(dst, in)
}

// writeLoadHTML writes the HTML report of an `openmpns load` run: the
// sender's table, and the devices' view when it ran its own fleet.
func writeLoadHTML(out *outputFile, lr *load.Report, fr *fleet.Report, timeline []fleet.Sample) error {
	var b bytes.Buffer
	lr.WriteTable(&b)
	return writeHTML(out, htmlreport.Input{Title: "OpenMPNS load report",
		Subtitle: fmt.Sprintf("openmpns load: %d notifications to %d channels", lr.Sent, lr.Channels),
		Sender:   b.String(), Fleet: fr, Timeline: timeline})
}
