package test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/server"
)

// TestDamagedStateValuesAreRepairedAtLoad: a state file that parses but
// holds values the server refuses (a power level, half of the device's
// credentials, a channel's app id or name, tile domains, a second channel
// of an app) does not keep the device offline forever (bad_frame at every
// set-up): New repairs them (normal power, a new identity, the channel
// dropped, the binding unbound) and the device connects with what is
// sound.
func TestDamagedStateValuesAreRepairedAtLoad(t *testing.T) {
	srv := startServer(t, server.Config{})
	long := strings.Repeat("n", 65)
	for _, c := range []struct {
		name  string
		state string
		check func(t *testing.T, d *device.Device)
	}{
		{"power", `{"power":"bogus"}`, func(t *testing.T, d *device.Device) {
			if d.PowerLevel() != device.PowerNormal {
				t.Errorf("power level %q, want normal", d.PowerLevel())
			}
		}},
		{"credentials", `{"device_id":"d-without-token"}`, func(t *testing.T, d *device.Device) {
			if id := d.ID(); id == "" || id == "d-without-token" {
				t.Errorf("device id %q, want a new one", id)
			}
		}},
		{"channels", `{"channels":[
			{"app":"com.example.ok","name":"main","toast":true},
			{"app":"bad app","name":"main"},
			{"app":"com.example.long","name":"` + long + `"},
			{"app":"com.example.tiles","name":"main","tile":true,"domains":["bad domain.example.com"]},
			{"app":"com.example.ok","name":"second"}]}`, func(t *testing.T, d *device.Device) {
			if ch := d.Find("com.example.ok", "main"); ch == nil {
				t.Error("the sound channel was dropped")
			} else if !ch.IsShellToastBound() || ch.ChannelURI() == "" {
				t.Errorf("the sound channel: toast bound %v, URI %q", ch.IsShellToastBound(), ch.ChannelURI())
			}
			if d.Find("bad app", "main") != nil || d.Find("com.example.long", long) != nil || d.Find("com.example.ok", "second") != nil {
				t.Error("a channel the server refuses was kept")
			}
			if ch := d.Find("com.example.tiles", "main"); ch == nil {
				t.Error("the channel with refused tile domains was dropped; want it open, its tile unbound")
			} else if ch.IsShellTileBound() || len(ch.Domains()) > 0 || ch.ChannelURI() == "" {
				t.Errorf("the channel with refused tile domains: tile bound %v to %q, URI %q; want it open, its tile unbound", ch.IsShellTileBound(), ch.Domains(), ch.ChannelURI())
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "device.json"), []byte(c.state), 0o600); err != nil {
				t.Fatal(err)
			}
			connected := make(chan struct{}, 1)
			failed := make(chan error, 100)
			d, err := device.New(device.Config{Server: srv.URL(), StateDir: dir, Logger: quietLogger(), MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
				Handlers: device.Handlers{
					ConnectionStatusChanged: func(s device.ConnectionStatus) {
						if s == device.Connected {
							select {
							case connected <- struct{}{}:
							default:
							}
						}
					},
					ConnectFailed: func(err error, _ time.Duration) {
						select {
						case failed <- err:
						default:
						}
					}}})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			defer d.Close()
			deadline := time.NewTimer(waitLimit)
			defer deadline.Stop()
			select {
			case <-connected:
			case <-deadline.C:
				var last error
				select {
				case last = <-failed:
				default:
				}
				t.Fatalf("the device never connects with the state file %s: %v", c.state, last)
			}
			c.check(t, d)
		})
	}
}
