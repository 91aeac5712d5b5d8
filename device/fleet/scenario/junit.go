package scenario

import (
	"encoding/xml"
	"fmt"
	"io"
)

type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	ClassName string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Error     *junitMessage `xml:"error,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes the outcome as JUnit XML: one test suite, a test case
// per phase, and one in error for the closing of the fleet when it failed
// (ClosePhase), as a test framework reports a teardown that failed.
func (o *Outcome) WriteJUnit(w io.Writer) error {
	s := junitSuite{Name: o.Name, Tests: len(o.Results), Time: secs(o.Elapsed.Seconds())}
	for _, r := range o.Results {
		c := junitCase{Name: r.Phase, ClassName: "openmpns.scenario", Time: secs(r.Duration.Seconds())}
		if r.Failure != "" {
			s.Failures++
			c.Failure = &junitMessage{Message: r.Failure, Text: r.Failure}
		}
		if r.Error != "" {
			s.Errors++
			c.Error = &junitMessage{Message: r.Error, Text: r.Error}
		}
		if r.Skipped != "" {
			s.Skipped++
			c.Skipped = &junitMessage{Message: r.Skipped}
		}
		s.Cases = append(s.Cases, c)
	}
	if o.CloseError != "" {
		s.Tests++
		s.Errors++
		s.Cases = append(s.Cases, junitCase{Name: ClosePhase, ClassName: "openmpns.scenario", Time: secs(0),
			Error: &junitMessage{Message: o.CloseError, Text: o.CloseError}})
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(junitSuites{Suites: []junitSuite{s}}); err != nil {
		return fmt.Errorf("scenario: junit: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func secs(s float64) string { return fmt.Sprintf("%.3f", s) }
