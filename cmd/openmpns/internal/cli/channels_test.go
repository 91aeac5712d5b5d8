package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openmpns/openmpns/device/fleet"
	"github.com/openmpns/openmpns/internal/servertest"
	"github.com/openmpns/openmpns/server"
)

// A fleet's channels file keeps the line of a URI that changed, and adds
// one whose replaces is the old URI; `openmpns load --channels` reading it
// (while the fleet runs) sends to the current URIs only. Here the server
// forgets every device (a new data directory), the devices register again
// as new devices with new Channel URIs, and load's every push is
// Received: it sent to the forgotten URIs too, and counted their 404s.
func TestLoadSendsToTheCurrentURIs(t *testing.T) {
	for _, ext := range []string{".csv", ".jsonl"} {
		t.Run(ext, func(t *testing.T) {
			const devices, apps = 3, 2
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			srv, err := startEmbedded(server.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Logger: servertest.QuietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { srv.Close() }()
			path := filepath.Join(t.TempDir(), "channels"+ext)
			cw, err := newChannelWriter(path)
			if err != nil {
				t.Fatal(err)
			}
			replaced := make(chan fleet.Channel, devices*apps)
			fl, err := fleet.Start(ctx, fleet.Config{Servers: []string{srv.URL()}, Devices: devices, Apps: []string{"a", "b"},
				Logger: servertest.QuietLogger(), MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
				OnChannel: func(c fleet.Channel) {
					cw.write(c)
					if c.Replaces != "" {
						replaced <- c
					}
				}})
			if err != nil {
				t.Fatal(err)
			}
			defer fl.Close()
			if err := fl.WaitRegistered(ctx); err != nil {
				t.Fatal(err)
			}
			// The server forgets every device and channel.
			srv.srv.Close()
			srv.cfg.DataDir = t.TempDir()
			if err := srv.start(); err != nil {
				t.Fatal(err)
			}
			for range devices * apps {
				select {
				case c := <-replaced:
					if c.URI == c.Replaces {
						t.Fatalf("%+v", c)
					}
				case <-ctx.Done():
					t.Fatalf("the channels did not all get new URIs: %v", fl.Stats())
				}
			}
			// The fleet still runs: the file is read as it is.
			rep := filepath.Join(t.TempDir(), "load.json")
			var out, errb bytes.Buffer
			if code := RunContext(ctx, []string{"load", "--channels", path, "--concurrency", "2", "--count", fmt.Sprint(2 * devices * apps),
				"--mix", "raw=1", "--report", rep}, nil, &out, &errb); code != 0 {
				t.Fatalf("load: exit %d: %s", code, errb.String())
			}
			if want := fmt.Sprintf("%d lines hold a Channel URI that a later line replaces", devices*apps); !strings.Contains(errb.String(), want) {
				t.Errorf("load's stderr has no %q: %s", want, errb.String())
			}
			b, err := os.ReadFile(rep)
			if err != nil {
				t.Fatal(err)
			}
			var r loadReport
			if err := json.Unmarshal(b, &r); err != nil {
				t.Fatal(err)
			}
			if r.Load.Channels != devices*apps || len(r.Load.Answers) != 1 || r.Load.Answers["200 Received"] != 2*devices*apps || len(r.Load.Errors) != 0 {
				t.Fatalf("load sent to %d channels, answers %v, errors %v; want %d channels, every push Received", r.Load.Channels, r.Load.Answers, r.Load.Errors, devices*apps)
			}
			if err := cw.close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
