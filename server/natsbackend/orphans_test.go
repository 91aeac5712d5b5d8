package natsbackend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/openmpns/openmpns/server/backend"
	"github.com/openmpns/openmpns/shared/clock"
)

// openSwept opens a node whose sweep runs on fake (its passes run within
// fake.Advance, the first one at the first Advance).
func openSwept(t *testing.T, s *server.Server, prefix, id string, fake *clock.Fake) *Backend {
	t.Helper()
	b, err := Open(context.Background(), Config{URLs: []string{s.ClientURL()}, Prefix: prefix, Replicas: 1,
		NodeID: id, Clock: fake, NodeTTL: 24 * time.Hour, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// deviceWithChannels stores device id with a channel per app, a queued
// notification on each and a presence record.
func deviceWithChannels(t *testing.T, b *Backend, id string, apps ...string) (backend.Device, []backend.Channel) {
	t.Helper()
	ctx := context.Background()
	d, err := b.PutDevice(ctx, backend.Device{ID: id, CreatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	var chans []backend.Channel
	for _, app := range apps {
		c, err := b.PutChannel(ctx, backend.Channel{Token: id + "." + app, DeviceID: id, App: app, CreatedAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		chans = append(chans, c)
		appendNote(t, b, id, c.Token)
	}
	if _, err := b.Claim(ctx, id, time.Now()); err != nil {
		t.Fatal(err)
	}
	return d, chans
}

// deleteSteps are the writes of DeleteDevice, in its order, as a node
// makes them directly against the buckets and the queue: a node that dies
// after the first n of them leaves the rest undone.
func deleteSteps(b *Backend, d backend.Device, chans []backend.Channel) []struct {
	name string
	do   func(context.Context) error
} {
	return []struct {
		name string
		do   func(context.Context) error
	}{
		{"device", func(ctx context.Context) error { return b.devices.del(ctx, token(d.ID), d.Rev) }},
		{"channels", func(ctx context.Context) error {
			for _, c := range chans {
				if err := b.channels.del(ctx, token(c.Token), 0); err != nil {
					return err
				}
			}
			return nil
		}},
		{"queue", func(ctx context.Context) error {
			return b.queue.Purge(ctx, jetstream.WithPurgeSubject(b.deviceFilter(d.ID)))
		}},
		{"index", func(ctx context.Context) error { return b.index.del(ctx, token(d.ID), 0) }},
		{"presence", func(ctx context.Context) error { return b.presence.del(ctx, token(d.ID), 0) }},
	}
}

// interruptDelete makes the first n steps of DeleteDevice of d.
func interruptDelete(t *testing.T, b *Backend, d backend.Device, chans []backend.Channel, n int) {
	t.Helper()
	for _, st := range deleteSteps(b, d, chans)[:n] {
		if err := st.do(context.Background()); err != nil {
			t.Fatalf("delete step %s: %v", st.name, err)
		}
	}
}

// leftOf says what is left of device id and its channels: nothing when
// they are all gone.
func leftOf(t *testing.T, b *Backend, id string, chans []backend.Channel) []string {
	t.Helper()
	ctx := context.Background()
	var left []string
	for _, c := range chans {
		if _, err := b.Channel(ctx, c.Token); !errors.Is(err, backend.ErrNotFound) {
			left = append(left, fmt.Sprintf("channel %s (%v)", c.Token, err))
		}
	}
	if _, err := b.index.get(ctx, token(id)); !errors.Is(err, errNoKey) {
		left = append(left, fmt.Sprintf("index key (%v)", err))
	}
	if _, ok, err := b.Presence(ctx, id); ok || err != nil {
		left = append(left, fmt.Sprintf("presence (%v)", err))
	}
	if ns, err := b.Pending(ctx, id, time.Now()); len(ns) != 0 || err != nil {
		left = append(left, fmt.Sprintf("%d queued notifications (%v)", len(ns), err))
	}
	return left
}

// TestSweepHealsAnInterruptedDeleteDevice: whatever a DeleteDevice
// interrupted after any of its steps left (channel records, the index key,
// queued notifications, the presence record) is removed by the next pass of
// a node's sweep: the pass a node makes when it starts, and the periodic
// ones. Nothing else ever removed it: the channels kept counting in Stats,
// and a node whose cache still held the device queued pushes to them.
func TestSweepHealsAnInterruptedDeleteDevice(t *testing.T) {
	s := runTestServer(t)
	ctx := context.Background()
	for n := 1; n < 5; n++ {
		t.Run(fmt.Sprintf("after %d steps", n), func(t *testing.T) {
			fake := clock.NewFake(time.Unix(1_000_000_000, 0))
			b := openSwept(t, s, fmt.Sprintf("int%d", n), "n1", fake)
			d, chans := deviceWithChannels(t, b, "dev", "app1", "app2")
			keep, keepChans := deviceWithChannels(t, b, "keep", "app1")
			interruptDelete(t, b, d, chans, n)
			if left := leftOf(t, b, d.ID, chans); len(left) == 0 {
				t.Fatal("the interrupted delete left nothing: the test reproduces nothing")
			}
			// The pass at the node's start, and those until the leftovers
			// are older than the grace.
			fake.Advance(sweepGrace)
			if left := leftOf(t, b, d.ID, chans); len(left) != 0 {
				t.Fatalf("after the sweep's passes, the deleted device still has: %v", left)
			}
			// The device that was not deleted keeps everything.
			if got, err := b.Channels(ctx, keep.ID); err != nil || len(got) != 1 {
				t.Fatalf("Channels of the device kept: %v, %v", got, err)
			}
			if ns, err := b.Pending(ctx, keep.ID, time.Now()); err != nil || len(ns) != 1 {
				t.Fatalf("Pending of the device kept: %d, %v", len(ns), err)
			}
			if _, ok, err := b.Presence(ctx, keep.ID); !ok || err != nil {
				t.Fatalf("Presence of the device kept: %v, %v", ok, err)
			}

			// Later, the periodic pass.
			d2, chans2 := deviceWithChannels(t, b, "dev2", "app1")
			interruptDelete(t, b, d2, chans2, n)
			fake.Advance(sweepGrace)
			if left := leftOf(t, b, d2.ID, chans2); len(left) != 0 {
				t.Fatalf("after the periodic passes, the deleted device still has: %v", left)
			}
			st, err := b.Stats(ctx)
			if err != nil || st.Channels != len(keepChans) || st.Devices != 1 || st.Queued != 1 {
				t.Fatalf("Stats = %+v, %v; want the kept device's 1 channel and 1 notification", st, err)
			}
		})
	}
}

// TestSweepBoundedAndShared: a pass reads at most its batch of each
// bucket, the next goes on from there (so a long backlog is removed over
// several passes), and nodes sweeping the same leftovers at once both
// succeed, the leftovers removed once.
func TestSweepBoundedAndShared(t *testing.T) {
	s := runTestServer(t)
	fake := clock.NewFake(time.Unix(1_000_000_000, 0))
	a := openSwept(t, s, "shared", "a", fake)
	b := openSwept(t, s, "shared", "b", fake)
	const devices = 9
	var all []backend.Channel
	for i := range devices {
		d, chans := deviceWithChannels(t, a, fmt.Sprint("dev", i), "app")
		interruptDelete(t, a, d, chans, 1)
		all = append(all, chans...)
	}
	countLeft := func() int {
		n := 0
		for _, c := range all {
			if _, err := a.Channel(context.Background(), c.Token); err == nil {
				n++
			}
		}
		return n
	}
	// One pass of a with a batch of 2 reads at most 2 channel records and
	// 2 index keys, each removing at most one device's channel.
	a.sweep.batch = 2
	b.sweep.batch = 2
	a.sweep.grace, b.sweep.grace = 0, 0 // the leftovers are young: no age guard here
	removed, err := a.sweepPass(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if left := countLeft(); left < devices-4 || removed > 6 {
		t.Fatalf("a pass with a batch of 2 removed %d records, %d of %d channels left", removed, left, devices)
	}
	// Both nodes at once, until everything is gone.
	for pass := 0; countLeft() > 0; pass++ {
		if pass > devices {
			t.Fatalf("%d channels left after %d passes of 2 nodes", countLeft(), pass)
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, n := range []*Backend{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = n.sweepPass(context.Background())
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("pass %d: %v", pass, err)
		}
	}
	st, err := a.Stats(context.Background())
	if err != nil || st.Channels != 0 || st.Queued != 0 {
		t.Fatalf("Stats = %+v, %v; want nothing left", st, err)
	}
}

// TestSweepKeepsAChannelMadeWithItsDevice: a channel created for a device
// that is being created at the same moment. Were PutChannel to write the
// channel before it first read the device, a pass of the sweep running
// between the channel's index entry and PutChannel's read of the device
// would find the device absent and remove the channel; the device then
// stored, PutChannel would read it and report the channel made, although
// it is gone. PutChannel reads the device first: it refuses the channel
// (ErrNotFound) before writing anything. And a pass running in the middle
// of a PutChannel of a device that exists removes nothing.
func TestSweepKeepsAChannelMadeWithItsDevice(t *testing.T) {
	s := runTestServer(t)
	ctx := context.Background()
	fake := clock.NewFake(time.Unix(1_000_000_000, 0))
	b := openSwept(t, s, "race", "n1", fake)
	// The records are young: no age guard, so that the order of
	// PutChannel's writes alone keeps the channel.
	b.sweep.grace = 0
	var swept []int
	b.testAfterIndex = func(c backend.Channel) {
		n, err := b.sweepPass(ctx)
		if err != nil {
			t.Errorf("sweep: %v", err)
		}
		swept = append(swept, n)
		// The device arrives now (if it is not there yet).
		if _, err := b.PutDevice(ctx, backend.Device{ID: c.DeviceID}); err != nil && !errors.Is(err, backend.ErrExists) {
			t.Errorf("PutDevice: %v", err)
		}
	}
	c, err := b.PutChannel(ctx, backend.Channel{Token: "tok1", DeviceID: "new", App: "app"})
	if err == nil {
		if _, err := b.Channel(ctx, c.Token); err != nil {
			t.Fatalf("PutChannel reported the channel made (the sweep removed %v records meanwhile), but Channel: %v", swept, err)
		}
	} else if !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("PutChannel for a device not there yet: %v; want ErrNotFound (or the channel made)", err)
	} else if st, err := b.Stats(ctx); err != nil || st.Channels != 0 {
		t.Fatalf("PutChannel refused the channel, but Stats = %+v, %v; want no channel", st, err)
	}

	// A device that exists: the pass in the middle removes nothing.
	if _, err := b.PutDevice(ctx, backend.Device{ID: "old"}); err != nil {
		t.Fatal(err)
	}
	swept = nil
	c, err = b.PutChannel(ctx, backend.Channel{Token: "tok2", DeviceID: "old", App: "app"})
	if err != nil {
		t.Fatal(err)
	}
	if len(swept) != 1 || swept[0] != 0 {
		t.Fatalf("the pass in the middle of PutChannel removed %v records, want [0]", swept)
	}
	if got, err := b.Channels(ctx, "old"); err != nil || len(got) != 1 || got[0].Token != c.Token {
		t.Fatalf("Channels = %v, %v; want the channel just made", got, err)
	}
}

// TestSweepSparesYoungRecords: a pass acts on a single read of the device,
// so a record whose device is absent is removed only once the stream
// stored it sweepGrace ago or more (by the stream's time, moved on by
// Config.Clock): before, it is left for a later pass.
func TestSweepSparesYoungRecords(t *testing.T) {
	s := runTestServer(t)
	fake := clock.NewFake(time.Unix(1_000_000_000, 0))
	b := openSwept(t, s, "young", "n1", fake)
	d, chans := deviceWithChannels(t, b, "dev", "app1", "app2")
	interruptDelete(t, b, d, chans, 1) // the device gone, all the rest left
	all := len(leftOf(t, b, d.ID, chans))
	fake.Advance(0) // the pass at the node's start
	if left := leftOf(t, b, d.ID, chans); len(left) != all {
		t.Fatalf("the pass at start left %v of %d records younger than the grace", left, all)
	}
	fake.Advance(sweepGrace - time.Second) // the pass a minute later
	if left := leftOf(t, b, d.ID, chans); len(left) != all {
		t.Fatalf("a pass %v later left %v of %d records younger than the grace", sweepEvery, left, all)
	}
	fake.Advance(time.Second) // the pass sweepGrace after the records were stored
	if left := leftOf(t, b, d.ID, chans); len(left) != 0 {
		t.Fatalf("once older than the grace, the deleted device still has: %v", left)
	}
}

// TestSweepPassesAnUndecodableChannelOfAnIndex: an index key of a device
// that is gone names a channel whose record does not decode. The sweep
// leaves that record and the key alone, as it leaves an undecodable
// channel record, and goes on: it used to fail the pass at that key, which
// then began every following pass there, and never reached the presence
// bucket (a warning every minute, presence records of deleted devices
// never removed). A channel in no index whose device's index key does not
// decode is left alone as well.
func TestSweepPassesAnUndecodableChannelOfAnIndex(t *testing.T) {
	s := runTestServer(t)
	ctx := context.Background()
	fake := clock.NewFake(time.Unix(1_000_000_000, 0))
	b := openSwept(t, s, "undecodable", "n1", fake)
	b.sweep.grace = 0 // the records are young: no age guard here
	if _, err := b.channels.put(ctx, token("bad"), []byte("not json")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.index.put(ctx, token("gone"), []byte(`{"app":"bad"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.presence.put(ctx, token("gone"), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	// A channel in no index whose device exists, and whose device's index
	// key does not decode: left alone too.
	deviceWithChannels(t, b, "live")
	halfPut(t, b, backend.Channel{Token: "unindexed", DeviceID: "live", App: "app"})
	if _, err := b.index.put(ctx, token("live"), []byte("not json")); err != nil {
		t.Fatal(err)
	}
	for pass := range 2 {
		if _, err := b.sweepPass(ctx); err != nil {
			t.Fatalf("pass %d: %v", pass, err)
		}
		if _, err := b.presence.get(ctx, token("gone")); !errors.Is(err, errNoKey) {
			t.Fatalf("after pass %d, the presence record of a device that is gone: %v; want it removed", pass, err)
		}
		if _, err := b.index.get(ctx, token("gone")); err != nil {
			t.Fatalf("after pass %d, the index key naming an undecodable channel: %v; want it left alone", pass, err)
		}
		if _, err := b.channels.get(ctx, token("bad")); err != nil {
			t.Fatalf("after pass %d, the undecodable channel record: %v; want it left alone", pass, err)
		}
		if e, err := b.index.get(ctx, token("live")); err != nil || string(e.val) != "not json" {
			t.Fatalf("after pass %d, the undecodable index key of a live device: %q, %v; want it left alone", pass, e.val, err)
		}
		if _, err := b.channels.get(ctx, token("unindexed")); err != nil {
			t.Fatalf("after pass %d, the channel that undecodable index does not name: %v; want it left alone", pass, err)
		}
	}
}

// halfPut writes what a PutChannel of c that died after its first write
// leaves: the channel's record, in no index.
func halfPut(t *testing.T, b *Backend, c backend.Channel) {
	t.Helper()
	val, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.channels.create(context.Background(), token(c.Token), val, 0); err != nil {
		t.Fatal(err)
	}
}

// foundEverywhere says how channel c is not found by the lookups: by its
// token (Channel, Target) and among its device's channels (Channels, which
// the engine's Open and Bind read); nothing when it is found by all.
func foundEverywhere(t *testing.T, b *Backend, c backend.Channel) []string {
	t.Helper()
	ctx := context.Background()
	var missing []string
	if got, err := b.Channel(ctx, c.Token); err != nil || got.DeviceID != c.DeviceID {
		missing = append(missing, fmt.Sprintf("Channel: %v", err))
	}
	if got, _, err := b.Target(ctx, c.Token); err != nil || got.App != c.App {
		missing = append(missing, fmt.Sprintf("Target: %v", err))
	}
	chans, err := b.Channels(ctx, c.DeviceID)
	if err != nil || !slices.ContainsFunc(chans, func(o backend.Channel) bool { return o.Token == c.Token }) {
		missing = append(missing, fmt.Sprintf("Channels of %s: %v, %v", c.DeviceID, chans, err))
	}
	return missing
}

// TestSweepFinishesAnInterruptedPutChannel: a PutChannel that died
// between writing the channel's record and entering it in its device's
// index left a channel that Channel and Target find but Channels does not
// (the engine's Open made another channel for the app, Bind failed), and
// that counted in Stats for as long as its device lived. The sweep enters
// it in the index when the app's place there is free (no index key, no
// entry for the app, or an entry whose channel is gone), and removes it,
// with its queue, when another live channel holds the place (the create it
// was part of lost, or was refused). A record younger than the grace is
// left for a later pass.
func TestSweepFinishesAnInterruptedPutChannel(t *testing.T) {
	s := runTestServer(t)
	ctx := context.Background()
	fake := clock.NewFake(time.Unix(1_000_000_000, 0))
	b := openSwept(t, s, "halfput", "n1", fake)
	ch := func(dev, app string) backend.Channel {
		return backend.Channel{Token: dev + "." + app + ".half", DeviceID: dev, App: app, Name: "n", CreatedAt: time.Now()}
	}
	// No index key: the device's first channel.
	deviceWithChannels(t, b, "first")
	first := ch("first", "app1")
	halfPut(t, b, first)
	// An index key without the app.
	deviceWithChannels(t, b, "second", "app0")
	second := ch("second", "app1")
	halfPut(t, b, second)
	// An entry whose channel is gone.
	deviceWithChannels(t, b, "stale")
	if _, err := b.index.create(ctx, token("stale"), []byte(`{"app1":"gone-token"}`), 0); err != nil {
		t.Fatal(err)
	}
	stale := ch("stale", "app1")
	halfPut(t, b, stale)
	// Another live channel holds the place: the record lost.
	_, liveChans := deviceWithChannels(t, b, "taken", "app1")
	lost := ch("taken", "app1")
	halfPut(t, b, lost)
	appendNote(t, b, "taken", lost.Token)

	adopted := []backend.Channel{first, second, stale}
	for _, c := range adopted {
		if len(foundEverywhere(t, b, c)) == 0 {
			t.Fatalf("channel %s is found everywhere before the sweep: the test reproduces nothing", c.Token)
		}
	}
	fake.Advance(sweepGrace - time.Second) // passes while the records are young
	for _, c := range adopted {
		if chans, _ := b.Channels(ctx, c.DeviceID); slices.ContainsFunc(chans, func(o backend.Channel) bool { return o.Token == c.Token }) {
			t.Fatalf("a pass entered channel %s in its index while younger than the grace", c.Token)
		}
	}
	fake.Advance(time.Second)
	for _, c := range adopted {
		if missing := foundEverywhere(t, b, c); len(missing) != 0 {
			t.Errorf("after the sweep, channel %s is not found by: %v", c.Token, missing)
		}
	}
	if _, err := b.Channel(ctx, lost.Token); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("the channel that lost its app's place: %v; want it removed", err)
	}
	if got, err := b.Channels(ctx, "taken"); err != nil || len(got) != 1 || got[0].Token != liveChans[0].Token {
		t.Errorf("Channels of the device whose place was taken = %v, %v; want the live channel alone", got, err)
	}
	if ns, err := b.Pending(ctx, "taken", time.Now()); err != nil || len(ns) != 1 || ns[0].Channel != liveChans[0].Token {
		t.Errorf("Pending of that device: %v, %v; want the live channel's notification alone", ns, err)
	}
	// The engine opens the app's channel again, as a device whose open
	// failed does: it gets the channel the sweep entered.
	if _, err := b.PutChannel(ctx, backend.Channel{Token: "another", DeviceID: "first", App: "app1"}); !errors.Is(err, backend.ErrExists) {
		t.Errorf("another channel for an app whose channel the sweep entered: %v; want ErrExists", err)
	}
	st, err := b.Stats(ctx)
	if err != nil || st.Channels != 5 {
		t.Errorf("Stats = %+v, %v; want 5 channels (3 entered, 2 made whole)", st, err)
	}
}
