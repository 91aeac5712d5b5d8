// Package htmlreport writes the report of a fleet or load run as one
// self-contained HTML file for people: the summary table, the latency
// distribution, deliveries per second, connected devices, reconnects and
// errors over the run, and a scenario's phases with their verdicts. The
// plots are SVG drawn with gonum.org/v1/plot and embedded in the page, so
// the file opens anywhere without a network.
package htmlreport

import (
	"bytes"
	"fmt"
	"html/template"
	"image/color"
	"io"
	"math"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/openmpns/openmpns/device/fleet"
	"github.com/openmpns/openmpns/shared/histogram"
)

// Phase is one phase of a scenario run and its verdict.
type Phase struct {
	Name string
	// Verdict is PASS, FAIL, ERROR or SKIP.
	Verdict string
	// Detail says why it failed or was skipped.
	Detail          string
	Start, Duration time.Duration
}

// Input is what a report shows; nil and empty parts are left out.
type Input struct {
	// Title heads the page, such as the scenario's name.
	Title string
	// Subtitle says what ran, such as the command line or scenario file.
	Subtitle string
	// Fleet is the devices' report (counts, latency histograms).
	Fleet *fleet.Report
	// Timeline is the fleet's counters through the run; Fleet.Timeline
	// when empty.
	Timeline []fleet.Sample
	// Phases are a scenario's phases.
	Phases []Phase
	// Sender is the sender's side of a load run, as text (its table).
	Sender string
	// Generated is when the report was made.
	Generated time.Time
}

// Write writes the report as HTML.
func Write(w io.Writer, in Input) error {
	if in.Timeline == nil && in.Fleet != nil {
		in.Timeline = in.Fleet.Timeline
	}
	page := pageData{Title: in.Title, Subtitle: in.Subtitle, Generated: in.Generated.Format(time.RFC1123), Sender: in.Sender}
	if in.Fleet != nil {
		for _, r := range in.Fleet.Rows() {
			page.Summary = append(page.Summary, row{r[0], r[1]})
		}
	}
	for _, p := range in.Phases {
		page.Phases = append(page.Phases, phaseRow{Name: p.Name, Verdict: p.Verdict, Class: strings.ToLower(p.Verdict), Detail: p.Detail,
			Start: fmtSeconds(p.Start), Duration: p.Duration.Round(time.Millisecond).String()})
		switch p.Verdict {
		case "FAIL", "ERROR":
			page.Failed++
		case "SKIP":
			page.Skipped++
		}
	}
	page.HasPhases = len(in.Phases) > 0
	var plots []func() (string, string, error)
	if in.Fleet != nil {
		plots = append(plots, func() (string, string, error) {
			svg, err := latencyPlot(in.Fleet)
			return "Latency distribution", svg, err
		})
	}
	if len(in.Timeline) > 1 {
		tl := in.Timeline
		plots = append(plots,
			func() (string, string, error) {
				svg, err := timePlot("Deliveries per second", "notifications/s", phaseMarks(in.Phases), series{"received", rates(tl)})
				return "Deliveries per second", svg, err
			},
			func() (string, string, error) {
				svg, err := timePlot("Devices", "devices", phaseMarks(in.Phases),
					series{"connected", pick(tl, func(s fleet.Sample) int64 { return s.Connected })},
					series{"registered", pick(tl, func(s fleet.Sample) int64 { return s.Registered })})
				return "Connected devices", svg, err
			},
			func() (string, string, error) {
				svg, err := timePlot("Reconnects and errors (since the start)", "count", phaseMarks(in.Phases),
					series{"reconnects", pick(tl, func(s fleet.Sample) int64 { return s.Reconnects })},
					series{"errors", pick(tl, func(s fleet.Sample) int64 { return s.Errors })})
				return "Reconnects and errors over time", svg, err
			})
	}
	for _, f := range plots {
		title, svg, err := f()
		if err != nil {
			return fmt.Errorf("htmlreport: %s: %w", title, err)
		}
		page.Plots = append(page.Plots, plotData{Title: title, SVG: template.HTML(svg)})
	}
	if err := pageTemplate.Execute(w, page); err != nil {
		return fmt.Errorf("htmlreport: %w", err)
	}
	return nil
}

type row struct{ Name, Value string }

type phaseRow struct{ Name, Verdict, Class, Detail, Start, Duration string }

type plotData struct {
	Title string
	SVG   template.HTML
}

type pageData struct {
	Title, Subtitle, Generated string
	Summary                    []row
	Phases                     []phaseRow
	HasPhases                  bool
	Failed, Skipped            int
	Plots                      []plotData
	Sender                     string
}

func fmtSeconds(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

// Colours of the series, in order (colour-blind safe).
var palette = []color.Color{
	color.RGBA{R: 0x00, G: 0x72, B: 0xb2, A: 0xff},
	color.RGBA{R: 0xd5, G: 0x5e, B: 0x00, A: 0xff},
	color.RGBA{R: 0x00, G: 0x9e, B: 0x73, A: 0xff},
}

type series struct {
	name string
	xys  plotter.XYs
}

// latencyPlot draws the share of notifications delivered within a
// latency, for accept → device and POST → device, on a log scale.
func latencyPlot(r *fleet.Report) (string, error) {
	p := plot.New()
	p.Title.Text = "Latency: share of notifications delivered within"
	p.X.Label.Text = "latency (ms, log scale)"
	p.Y.Label.Text = "% of notifications"
	p.Y.Min, p.Y.Max = 0, 100
	p.Add(plotter.NewGrid())
	n := 0
	for i, h := range []struct {
		name string
		snap *histogram.Snapshot
	}{{"accept → device", r.Latency}, {"POST → device", r.SendLatency}} {
		xys := cdf(h.snap)
		if len(xys) == 0 {
			continue
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return "", err
		}
		l.Color = palette[i]
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("%s (p50 %s, p99 %s)", h.name, ms(h.snap.Quantile(0.5)), ms(h.snap.Quantile(0.99))), l)
		n++
	}
	if n == 0 {
		p.Title.Text += " (no notifications received)"
		p.X.Min, p.X.Max = 0, 1
	} else {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	p.Legend.Top, p.Legend.Left = false, false // the curves end top right
	p.Legend.XOffs, p.Legend.YOffs = vg.Points(-10), vg.Points(10)
	return svg(p)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }

// cdf is the cumulative share (in %) of a histogram's samples at the upper
// bound of each of its buckets, in milliseconds (at least 1 µs, for the log
// scale).
func cdf(s *histogram.Snapshot) plotter.XYs {
	if s == nil || s.Count == 0 {
		return nil
	}
	var xys plotter.XYs
	var seen uint64
	for _, b := range s.Buckets {
		seen += b[1]
		x := math.Max(float64(s.UpperBound(b[0]))/1e6, 0.001)
		y := 100 * float64(seen) / float64(s.Count)
		if len(xys) > 0 && xys[len(xys)-1].X >= x {
			xys[len(xys)-1].Y = y
			continue
		}
		if len(xys) == 0 {
			xys = append(xys, plotter.XY{X: x, Y: 0})
		}
		xys = append(xys, plotter.XY{X: x, Y: y})
	}
	return xys
}

// rates is the received count's growth per second between samples.
func rates(tl []fleet.Sample) plotter.XYs {
	var xys plotter.XYs
	for i := 1; i < len(tl); i++ {
		dt := (tl[i].At - tl[i-1].At).Seconds()
		if dt <= 0 {
			continue
		}
		xys = append(xys, plotter.XY{X: tl[i].At.Seconds(), Y: float64(tl[i].Received-tl[i-1].Received) / dt})
	}
	return xys
}

func pick(tl []fleet.Sample, v func(fleet.Sample) int64) plotter.XYs {
	xys := make(plotter.XYs, len(tl))
	for i, s := range tl {
		xys[i] = plotter.XY{X: s.At.Seconds(), Y: float64(v(s))}
	}
	return xys
}

// phaseMarks are the start times of the phases, in seconds.
func phaseMarks(ph []Phase) []float64 {
	var out []float64
	for _, p := range ph {
		if p.Verdict != "SKIP" {
			out = append(out, p.Start.Seconds())
		}
	}
	return out
}

// timePlot draws series over the run's time, with a dotted line where each
// scenario phase began.
func timePlot(title, ylabel string, marks []float64, ss ...series) (string, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "time since the start (s)"
	p.Y.Label.Text = ylabel
	p.Y.Min = 0
	p.Add(plotter.NewGrid())
	top := 1.0
	for i, s := range ss {
		if len(s.xys) == 0 {
			continue
		}
		l, err := plotter.NewLine(s.xys)
		if err != nil {
			return "", err
		}
		l.Color = palette[i%len(palette)]
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(s.name, l)
		for _, xy := range s.xys {
			top = math.Max(top, xy.Y)
		}
	}
	p.Y.Max = top * 1.1
	for _, m := range marks {
		l, err := plotter.NewLine(plotter.XYs{{X: m, Y: 0}, {X: m, Y: top * 1.1}})
		if err != nil {
			return "", err
		}
		l.Color = color.Gray{Y: 0x99}
		l.Dashes = []vg.Length{vg.Points(2), vg.Points(3)}
		p.Add(l)
	}
	p.Legend.Top = true
	return svg(p)
}

// svg renders p as an SVG element (without the XML prologue, for inlining).
func svg(p *plot.Plot) (string, error) {
	wt, err := p.WriterTo(9*vg.Inch, 3.2*vg.Inch, "svg")
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if _, err := wt.WriteTo(&b); err != nil {
		return "", err
	}
	out := b.String()
	if i := strings.Index(out, "<svg"); i > 0 {
		out = out[i:]
	}
	return out, nil
}

var pageTemplate = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{{.Title}}</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 920px; color: #222; }
h1 { margin-bottom: 0.1em; } .sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
td, th { padding: 0.25em 0.8em; border-bottom: 1px solid #ddd; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.verdict { font-weight: bold; } .pass { color: #087f23; } .fail, .error { color: #b00020; } .skip { color: #777; }
.banner { padding: 0.6em 1em; border-radius: 4px; font-weight: bold; }
.banner.ok { background: #e6f4ea; color: #087f23; } .banner.bad { background: #fce8e6; color: #b00020; }
figure { margin: 1em 0 2em; } figcaption { font-weight: bold; margin-bottom: 0.3em; }
svg { max-width: 100%; height: auto; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; }
</style></head><body>
<h1>{{.Title}}</h1>
<p class="sub">{{.Subtitle}} · generated {{.Generated}}</p>
{{if .HasPhases}}
{{if or .Failed .Skipped}}<p class="banner bad">{{if .Failed}}{{.Failed}} phase(s) failed{{end}}{{if and .Failed .Skipped}}, {{end}}{{if .Skipped}}{{.Skipped}} phase(s) not run{{end}}</p>{{else}}<p class="banner ok">every phase passed</p>{{end}}
<h2>Phases</h2>
<table><tr><th>phase</th><th>verdict</th><th>start</th><th>took</th><th>detail</th></tr>
{{range .Phases}}<tr><td>{{.Name}}</td><td class="verdict {{.Class}}">{{.Verdict}}</td><td class="num">{{.Start}}</td><td class="num">{{.Duration}}</td><td>{{.Detail}}</td></tr>
{{end}}</table>
{{end}}
{{if .Summary}}<h2>Summary</h2>
<table>{{range .Summary}}<tr><td>{{.Name}}</td><td class="num">{{.Value}}</td></tr>
{{end}}</table>{{end}}
{{if .Sender}}<h2>Sender</h2><pre>{{.Sender}}</pre>{{end}}
{{range .Plots}}<figure><figcaption>{{.Title}}</figcaption>{{.SVG}}</figure>
{{end}}
</body></html>
`))
