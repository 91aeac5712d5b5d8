package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/server"
	"github.com/openmpns/openmpns/shared/payload"
	"github.com/openmpns/openmpns/shared/sender"
)

// runDemo shows the whole path in a terminal: a real server on a loopback
// port, a device with a news app, and a cloud service sending every kind of
// notification through the MPNS HTTP API.
func runDemo(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "demo", "[--time-scale N]")
	scale := fs.Float64("time-scale", 100, "shorten the batching windows by this factor, 1 to 1000000 (100: 450 s becomes 4.5 s; 1: real time, and the demo waits 7.5 minutes for its batched raw)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if !(*scale >= 1 && *scale <= 1e6) { // NaN too
		return badUsage("--time-scale %v: want 1 to 1000000 (1: real time, a 450 s batching window; 100: 4.5 s)", *scale)
	}
	dir, err := os.MkdirTemp("", "openmpns-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := server.Config{Listen: "127.0.0.1:0", DataDir: dir, TimeScale: *scale, Logger: quiet}
	srv, err := server.New(cfg)
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	defer srv.Close()
	say := func(format string, a ...any) { fmt.Fprintf(e.stdout, format+"\n", a...) }
	say("== OpenMPNS demo: server on %s", srv.URL())

	got := make(chan string, 16)
	h := device.Handlers{
		ShellToast: func(m device.Meta, t *payload.Toast) {
			got <- fmt.Sprintf("phone shows toast: %q / %q (opens %s) after %v", t.Text1, t.Text2, t.Param, m.ReceivedAt.Sub(m.AcceptedAt).Round(time.Microsecond))
		},
		Tile: func(m device.Meta, t *payload.Tile, _ []string) {
			got <- "phone updates " + describeTile(t)
		},
	}
	dev, err := device.New(device.Config{Server: srv.URL(), Handlers: h, Logger: quiet})
	if err != nil {
		return err
	}
	defer dev.Close()
	const app = "com.example.news"
	dev.SetAppState(app, device.AppState{Running: true})
	ch := dev.NewChannel(app, "news", "")
	// The app's own events: raw data reaches it while it runs.
	ch.SetEvents(device.ChannelEvents{HTTPNotificationReceived: func(m device.Meta, b []byte) {
		got <- fmt.Sprintf("app receives raw data %q (class %d, after %v)", b, m.Class, m.ReceivedAt.Sub(m.AcceptedAt).Round(time.Millisecond))
	}})
	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := ch.Open(octx); err != nil {
		return err
	}
	if err := ch.BindToShellToast(octx); err != nil {
		return err
	}
	if err := ch.BindToShellTile(octx); err != nil {
		return err
	}
	uri := ch.ChannelURI()
	say("== phone opened channel %q for %s and bound toast and tile", ch.Name(), app)
	say("   Channel URI: %s", uri)

	client := &sender.Client{}
	steps := []struct {
		what string
		req  func() (sender.Request, error)
	}{
		{"toast", func() (sender.Request, error) {
			return sender.NewToast(uri, &payload.Toast{Text1: "Breaking", Text2: "MPNS is back on the desktop", Param: "/Story.xaml?id=42"}, sender.Immediate)
		}},
		{"flip tile", func() (sender.Request, error) {
			return sender.NewTile(uri, &payload.Tile{Template: payload.TemplateFlip, Fields: map[string]string{
				payload.Title: "News", payload.Count: "3", payload.BackTitle: "Top story", payload.BackContent: "Go 2 ships"}}, sender.Immediate)
		}},
		{"secondary cycle tile", func() (sender.Request, error) {
			return sender.NewTile(uri, &payload.Tile{ID: "/Gallery.xaml", Template: payload.TemplateCycle, Fields: map[string]string{
				payload.Title: "Gallery", payload.CycleImage(1): "/Assets/1.png", payload.CycleImage(2): "/Assets/2.png"}}, sender.Immediate)
		}},
		{"clear the count", func() (sender.Request, error) {
			return sender.NewTile(uri, &payload.Tile{Template: payload.TemplateFlip, Cleared: []string{payload.Count}}, sender.Immediate)
		}},
		{"raw, batched within 450 s", func() (sender.Request, error) {
			return sender.NewRaw(uri, []byte(`{"scores":[3,1]}`), sender.Within450), nil
		}},
	}
	for _, s := range steps {
		req, err := s.req()
		if err != nil {
			return err
		}
		req.MessageID = sender.NewMessageID()
		resp, err := client.Send(ctx, req)
		if err != nil {
			return err
		}
		say("-> cloud service POSTs %s: HTTP %d %s/%s/%s", s.what, resp.StatusCode, resp.NotificationStatus, resp.SubscriptionStatus, resp.DeviceConnectionStatus)
		if window := cfg.BatchWindow(req.Class); window > 0 {
			say("   (batched: the server holds it for up to %v, the %v window / --time-scale %g; waiting for it)",
				window.Round(time.Millisecond), time.Duration(float64(window)**scale).Round(time.Second), *scale)
		}
		select {
		case line := <-got:
			say("   %s", line)
		case <-time.After(time.Duration(float64(900*time.Second) / *scale) + 5*time.Second):
			return fmt.Errorf("the phone did not receive the %s", s.what)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := ch.UnbindToShellToast(octx); err != nil {
		return err
	}
	req, _ := sender.NewToast(uri, &payload.Toast{Text1: "Muted"}, sender.Immediate)
	resp, err := client.Send(ctx, req)
	if err != nil {
		return err
	}
	say("-> after the user turns toasts off: HTTP %d %s (%s)", resp.StatusCode, resp.NotificationStatus, resp.Reason)
	if err := ch.Close(octx); err != nil {
		return err
	}
	resp, err = client.Send(ctx, req)
	if err != nil {
		return err
	}
	say("-> after the app closes its channel: HTTP %d %s/%s", resp.StatusCode, resp.NotificationStatus, resp.SubscriptionStatus)
	say("== done. Next: openmpns serve, openmpns device --app APP --toast --tile, openmpns send toast --uri URI --text1 Hi")
	return nil
}

// describeTile says in words what a tile update changes: which tile, then
// each element set (in the template's order) and each element cleared.
func describeTile(t *payload.Tile) string {
	tmpl := t.Template.String()
	if tmpl == "" {
		tmpl = "WP7.5"
	}
	which := "the primary " + tmpl + " tile"
	if t.ID != "" {
		which = "the secondary " + tmpl + " tile " + t.ID
	}
	names := slices.Sorted(maps.Keys(t.Fields))
	if order := payload.Elements(t.Template); order != nil {
		slices.SortStableFunc(names, func(a, b string) int { return rank(order, a) - rank(order, b) })
	}
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %q", n, t.Fields[n]))
	}
	for _, n := range t.Cleared {
		parts = append(parts, n+" cleared")
	}
	if len(parts) == 0 {
		parts = []string{"nothing changed"}
	}
	return which + ": " + strings.Join(parts, ", ")
}

// rank is name's place in order, unknown names last.
func rank(order []string, name string) int {
	if i := slices.Index(order, name); i >= 0 {
		return i
	}
	return len(order)
}
