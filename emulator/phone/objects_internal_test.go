package phone

import (
	"context"
	"testing"
	"time"

	"github.com/openmpns/openmpns/shared/payload"
	"github.com/openmpns/openmpns/shared/sender"
)

// TestOpensAtOnceRaiseEachNotificationOnce: the user answers an app's
// prompt and then changes the answer in Settings while the phone is
// offline, so two opens of the app's channel wait for the connection at
// once. They open the channel with one object: two objects would each
// raise every notification (the device raises a channel's events on each
// of its live objects), and the app page and the inspector would show each
// raw twice.
func TestOpensAtOnceRaiseEachNotificationOnce(t *testing.T) {
	srv := StartTestServer(t)
	changed := make(chan struct{}, 1)
	const app = "com.example.news"
	p, err := New(Config{Server: srv.URL(), StateDir: t.TempDir(), Logger: quietLog, MinBackoff: 5 * time.Millisecond,
		Apps: []App{{ID: app, Name: "News", Channel: "main", WantsToast: true, Template: payload.TemplateFlip}},
		OnChange: func(Change) {
			select {
			case changed <- struct{}{}:
			default:
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	until := func(what string, cond func(AppPage) bool) AppPage {
		t.Helper()
		deadline := time.After(20 * time.Second) // a bound for a failure, not a measurement
		for {
			pg, _ := p.Page(app)
			if cond(pg) {
				return pg
			}
			select {
			case <-changed:
			case <-deadline:
				t.Fatalf("%s: not reached; the page is %+v", what, pg)
			}
		}
	}

	p.SetAirplane(true)
	p.Answer(app, true)           // opens, waiting for the connection
	p.SetNotifications(app, true) // opens again, still waiting
	p.SetAirplane(false)
	p.wg.Wait() // both opens done (no handoff, no images here)
	uri := until("the channel open", func(pg AppPage) bool { return pg.URI != "" }).URI
	if _, err := p.Launch(app); err != nil {
		t.Fatal(err)
	}
	for _, data := range []string{"one", "two"} {
		resp, err := (&sender.Client{}).Send(context.Background(), sender.NewRaw(uri, []byte(data), sender.Immediate))
		if err != nil || !resp.Delivered() {
			t.Fatalf("raw %q: %v %v", data, resp, err)
		}
	}
	// The device raises events in order: once "two" is on the page, every
	// object has raised "one".
	pg := until("the second raw", func(pg AppPage) bool {
		return len(pg.Raws) > 0 && string(pg.Raws[len(pg.Raws)-1].Payload) == "two"
	})
	var got []string
	for _, r := range pg.Raws {
		got = append(got, string(r.Payload))
	}
	if len(got) != 2 || got[0] != "one" {
		t.Fatalf("the app page has raws %q, want [one two]", got)
	}
}
