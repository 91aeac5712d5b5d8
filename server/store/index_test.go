package store

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// The index's compact records give back what they were given, whatever the
// times (the zero time, before 1678 and after 2262 where UnixNano fails)
// and whether or not a Channel URI ends in its token.
func TestIndexRecordsRoundTrip(t *testing.T) {
	times := map[string]time.Time{
		"zero":        {},
		"now":         time.Now(),
		"year 1200":   time.Date(1200, 3, 4, 5, 6, 7, 8, time.UTC),
		"year 9000":   time.Date(9000, 12, 31, 23, 59, 59, 999999999, time.UTC),
		"before 1970": time.Date(1969, 12, 31, 23, 59, 59, 1, time.FixedZone("x", -3600)),
	}
	for name, at := range times {
		t.Run(name, func(t *testing.T) {
			d := Device{ID: "dev", TokenHash: []byte{1, 2, 3}, CreatedAt: at, LastSeen: at.Add(time.Second), Power: "low", Rev: 7}
			r := newDevRec(d)
			got := r.device()
			if got.ID != d.ID || !slices.Equal(got.TokenHash, d.TokenHash) || !got.CreatedAt.Equal(d.CreatedAt) ||
				!got.LastSeen.Equal(d.LastSeen) || got.Power != d.Power || got.Rev != d.Rev || got.CreatedAt.IsZero() != at.IsZero() {
				t.Fatalf("device: got %+v, want %+v", got, d)
			}
			for _, uri := range []string{"http://h:1/push/tok", "http://h:1/push/other", "", "tok"} {
				c := Channel{Token: "tok", DeviceID: "dev", App: "app", Name: "n", Service: "s", URI: uri,
					Toast: true, Domains: []string{"a.example", "b.example"}, CreatedAt: at, Rev: 9}
				r.putChannel(c)
				got := r.channel("tok").channel("dev")
				if got.Token != c.Token || got.DeviceID != c.DeviceID || got.App != c.App || got.Name != c.Name ||
					got.Service != c.Service || got.URI != c.URI || got.Toast != c.Toast || got.Tile != c.Tile ||
					!slices.Equal(got.Domains, c.Domains) || !got.CreatedAt.Equal(c.CreatedAt) || got.Rev != c.Rev {
					t.Fatalf("channel: got %+v, want %+v", got, c)
				}
				got.Domains[0] = "changed"
				if r.channel("tok").channel("dev").Domains[0] != "a.example" {
					t.Fatal("a channel read shares its Domains with the index")
				}
			}
			if len(r.chans) != 1 {
				t.Fatalf("%d channels after rewriting one, want 1", len(r.chans))
			}
			p := newPresRec(true, at, 3).presence()
			if !p.Connected || !p.Since.Equal(at) || p.Claim != 3 || p.Node != localNode {
				t.Fatalf("presence: got %+v", p)
			}
		})
	}
}

// A deleted channel leaves no reference behind in its device's record.
func TestIndexDeleteChannel(t *testing.T) {
	r := newDevRec(Device{ID: "dev"})
	for _, tok := range []string{"a", "b", "c"} {
		r.putChannel(Channel{Token: tok, App: "app-" + tok})
	}
	r.deleteChannel("a")
	if len(r.chans) != 2 || r.chans[0].token != "b" || r.chans[1].token != "c" {
		t.Fatalf("after deleting a: %+v", r.chans)
	}
	if tail := r.chans[:cap(r.chans)][2]; tail.token != "" {
		t.Fatalf("the freed element still holds %q", tail.token)
	}
	if r.appChannel("app-c") == nil || r.appChannel("app-a") != nil {
		t.Fatal("appChannel does not follow the deletion")
	}
	r.deleteChannel("b")
	r.deleteChannel("c")
	if r.chans != nil {
		t.Fatal("a device without channels keeps their array")
	}
}

// A device's presence lives in its record once it has one, and in the
// presence map before that (a claim may come before the device is stored):
// either way Presence finds the latest, and DeleteDevice drops it.
func TestPresenceBeforeAndAfterTheDevice(t *testing.T) {
	e := openAt(t, filepath.Join(t.TempDir(), "db"), time.Now())
	defer e.Close()
	ctx := context.Background()
	at := time.Date(2026, 12, 6, 7, 0, 0, 5, time.UTC)
	want := func(what string, connected bool, claim uint64, since time.Time) {
		t.Helper()
		p, ok, err := e.Presence(ctx, "d")
		if err != nil || !ok || p.Connected != connected || p.Claim != claim || !p.Since.Equal(since) || p.Node != localNode {
			t.Fatalf("%s: Presence = %+v, %v, %v; want connected %v, claim %d, since %v", what, p, ok, err, connected, claim, since)
		}
	}
	c1, err := e.Claim(ctx, "d", at)
	if err != nil {
		t.Fatal(err)
	}
	want("claimed, no device", true, c1, at)
	d, err := e.PutDevice(ctx, Device{ID: "d"})
	if err != nil {
		t.Fatal(err)
	}
	want("device stored since", true, c1, at)
	c2, err := e.Claim(ctx, "d", at.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	want("claimed again", true, c2, at.Add(time.Second))
	if _, inMap := e.presence["d"]; inMap || e.devices["d"].pres.claim != c2 {
		t.Fatalf("a stored device's presence is not in its record: map %v, record %+v", inMap, e.devices["d"].pres)
	}
	if err := e.Release(ctx, "d", c1, at.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	want("older claim released", true, c2, at.Add(time.Second))
	if err := e.Release(ctx, "d", c2, at.Add(3*time.Second)); err != nil {
		t.Fatal(err)
	}
	want("released", false, c2, at.Add(3*time.Second))
	if d, err = e.Device(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	if err := e.DeleteDevice(ctx, d); err != nil {
		t.Fatal(err)
	}
	if p, ok, err := e.Presence(ctx, "d"); ok || err != nil {
		t.Fatalf("deleted device: Presence = %+v, %v, %v", p, ok, err)
	}
}
