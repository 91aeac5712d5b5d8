//go:build linux

package chaostest

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openmpns/openmpns/server"
)

// TestDamagedDataFileRefusesToStart: a server that finds its bbolt file
// damaged or unreadable exits non-zero with a message naming the file and
// saying what to do, and leaves the file as it was, instead of starting
// with an empty store.
func TestDamagedDataFileRefusesToStart(t *testing.T) {
	// A real store with devices, channels and queued notifications.
	good := t.TempDir()
	srv := StartServer(t, ChildConfig{DataDir: good, DailyQuota: -1})
	fleet := NewFleet(t, FleetConfig{Server: srv.URL(), N: 2, MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	fleet.Devs[0].SetOnline(false)
	snd := NewSender()
	defer snd.Close()
	snd.Pad = 3000
	for range 40 {
		if x := snd.Push(context.Background(), fleet.Devs[0], 3); x.Outcome != Received {
			t.Fatalf("push: %s", x.Status)
		}
	}
	srv.Stop()
	fleet.Close()
	valid, err := os.ReadFile(filepath.Join(good, server.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	const page = 4096
	cases := []struct {
		name string
		make func(path string) error
	}{
		{"garbage", func(p string) error {
			b := make([]byte, 64<<10)
			rand.Read(b)
			return os.WriteFile(p, b, 0o600)
		}},
		{"truncated", func(p string) error { return os.WriteFile(p, valid[:len(valid)/3], 0o600) }},
		{"both meta pages zeroed", func(p string) error {
			b := append([]byte(nil), valid...)
			clear(b[:2*page])
			return os.WriteFile(p, b, 0o600)
		}},
		{"data pages overwritten", func(p string) error {
			b := append([]byte(nil), valid...)
			for i := 2 * page; i < len(b); i++ {
				b[i] = byte(i*7 + 3)
			}
			return os.WriteFile(p, b, 0o600)
		}},
		{"a directory", func(p string) error { return os.Mkdir(p, 0o755) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, server.DBFile)
			if err := c.make(path); err != nil {
				t.Fatal(err)
			}
			before, _ := os.ReadFile(path)
			code, stderr := Run(t, ChildConfig{DataDir: dir})
			if code == 0 {
				t.Fatalf("server started on a damaged file; stderr:\n%s", stderr)
			}
			for _, want := range []string{path, "damaged or unreadable", "restore the file from a backup", "move it away"} {
				if !strings.Contains(stderr, want) {
					t.Errorf("message lacks %q:\n%s", want, stderr)
				}
			}
			if after, _ := os.ReadFile(path); string(after) != string(before) {
				t.Errorf("the damaged file was modified")
			}
		})
	}
}

// TestFullDiskRefusesWith503: with the data file unable to grow (a real
// RLIMIT_FSIZE on the server process: writes fail with EFBIG as on a full
// disk) the server answers 503 instead of Received for what it cannot
// store; everything it did answer Received survives a SIGKILL and is
// delivered exactly once; when space returns it accepts again by itself.
func TestFullDiskRefusesWith503(t *testing.T) {
	dir := t.TempDir()
	srv := StartServer(t, ChildConfig{DataDir: dir, DailyQuota: -1, QueueLimit: 100000, FileSizeLimit: 512 << 10})
	fleet := NewFleet(t, FleetConfig{Server: srv.URL(), N: 1, MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	d := fleet.Devs[0]
	d.SetOnline(false) // everything stays in the store
	snd := NewSender()
	defer snd.Close()
	snd.Pad = 3000
	ctx := context.Background()
	var full int
	for i := 0; full < 20; i++ {
		if i == 2000 {
			t.Fatalf("2000 pushes of 3 KB into a 512 KB file were all accepted: %s", snd.Answers())
		}
		switch x := snd.Push(ctx, d, 3); {
		case x.Outcome == Received:
		case x.Status == "503 ":
			full++
		default:
			t.Fatalf("push %d: %s, want Received or 503", i, x.Status)
		}
	}
	t.Logf("disk full: %s", snd.Answers())
	// Space returns: the server accepts again without a restart.
	if err := srv.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	recovered := false
	for range 500 {
		if x := snd.Push(ctx, d, 3); x.Outcome == Received {
			recovered = true
			break
		} else if x.Status != "503 " {
			t.Fatalf("after space returned: %s", x.Status)
		}
	}
	if !recovered {
		t.Fatal("the server did not accept notifications again once space returned")
	}
	for range 20 {
		if x := snd.Push(ctx, d, 3); x.Outcome != Received {
			t.Fatalf("after space returned: %s", x.Status)
		}
	}
	// What was Received is durable and the file is sound: kill, restart,
	// and the device gets each of them exactly once, and no 503 one.
	srv.Kill()
	srv.Restart()
	d.SetOnline(true)
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := fleet.WaitFor(wctx, snd.AllReceivedArrived); err != nil {
		t.Fatal(err)
	}
	// The restarted server has the same file size limit and a file at it:
	// only what the device acknowledged makes room. Once the server has
	// taken every ack (the queue is empty), a new push fits.
	waitAcksTaken(wctx, t, srv)
	if x := snd.Push(ctx, d, 3); x.Outcome != Received {
		t.Fatalf("marker: %s", x.Status)
	}
	if err := fleet.WaitFor(wctx, snd.AllReceivedArrived); err != nil {
		t.Fatal(err)
	}
	r := snd.Check(fleet, Expiry{})
	t.Log(r)
	if r.Lost != 0 || r.Duplicates != 0 || r.Spurious != 0 || r.UnknownSeen != 0 {
		t.Fatalf("%s\n%v", r, r.Examples)
	}
}

// TestFullDiskAckedNotificationsMakeRoom: on a full disk, what a device
// acknowledges makes room for new pushes at once, although the deletion of
// acknowledged notifications normally waits to ride on the next commit.
// The server's remove delay is an hour here, so the deletions can only be
// written by that next commit: the push's, which fails for lack of room
// until they are written first.
func TestFullDiskAckedNotificationsMakeRoom(t *testing.T) {
	srv := StartServer(t, ChildConfig{DataDir: t.TempDir(), DailyQuota: -1, QueueLimit: 100000,
		FileSizeLimit: 512 << 10, RemoveDelay: time.Hour})
	fleet := NewFleet(t, FleetConfig{Server: srv.URL(), N: 1, MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	d := fleet.Devs[0]
	d.SetOnline(false)
	snd := NewSender()
	defer snd.Close()
	snd.Pad = 3000
	ctx := context.Background()
	// Full: 20 refusals in a row.
	for i, full := 0, 0; full < 20; i++ {
		if i == 2000 {
			t.Fatalf("2000 pushes of 3 KB into a 512 KB file were all accepted: %s", snd.Answers())
		}
		switch x := snd.Push(ctx, d, 3); {
		case x.Status == "503 ":
			full++
		case x.Outcome == Received:
			full = 0
		default:
			t.Fatalf("push %d: %s, want Received or 503", i, x.Status)
		}
	}
	t.Logf("disk full: %s", snd.Answers())
	d.SetOnline(true)
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := fleet.WaitFor(wctx, snd.AllReceivedArrived); err != nil {
		t.Fatal(err)
	}
	waitAcksTaken(wctx, t, srv)
	for i := range 5 {
		if x := snd.Push(ctx, d, 3); x.Outcome != Received {
			t.Fatalf("push %d after the device acknowledged everything: %s, want room", i, x.Status)
		}
	}
	if err := fleet.WaitFor(wctx, snd.AllReceivedArrived); err != nil {
		t.Fatal(err)
	}
	if r := snd.Check(fleet, Expiry{}); r.Lost != 0 || r.Duplicates != 0 || r.Spurious != 0 || r.UnknownSeen != 0 {
		t.Fatalf("%s\n%v", r, r.Examples)
	}
}

// waitAcksTaken waits until the server has taken every ack of its devices:
// its queue is empty (the deletions may still wait to ride on a commit).
func waitAcksTaken(ctx context.Context, t *testing.T, srv *Proc) {
	t.Helper()
	for scrape(t, srv.URL(), "openmpns_queue_depth") != "0" {
		if ctx.Err() != nil {
			t.Fatalf("the server never took the device's acks: queue depth %s", scrape(t, srv.URL(), "openmpns_queue_depth"))
		}
		time.Sleep(10 * time.Millisecond) // polling a metric no event announces
	}
}
