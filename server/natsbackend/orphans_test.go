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
// several passes), and passes of two nodes started at once both succeed
// (one of them skipped while the other holds the sweep), the leftovers
// removed once.
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

// fillDirect writes n devices, each with a channel, its index key and a
// presence record, straight into the buckets (one write each, in device
// order in every bucket), and removes the device record of every tenth
// (the first step of an interrupted DeleteDevice): those leave a channel,
// an index key and a presence record each. It returns how many devices
// were so deleted.
func fillDirect(t *testing.T, b *Backend, n int) (deleted int) {
	t.Helper()
	ctx := context.Background()
	put := func(k *kv, key string, v any) {
		val, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.put(ctx, key, val); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		dev := fmt.Sprint("dev", i)
		put(b.devices, token(dev), backend.Device{ID: dev})
		tok := dev + ".app"
		put(b.channels, token(tok), backend.Channel{Token: tok, DeviceID: dev, App: "app"})
		put(b.index, token(dev), channelIndex{"app": tok})
		put(b.presence, token(dev), map[string]any{})
	}
	for i := 0; i < n; i += 10 {
		if err := b.devices.del(ctx, token(fmt.Sprint("dev", i)), 0); err != nil {
			t.Fatal(err)
		}
		deleted++
	}
	return deleted
}

// TestSweepSharedByTheNodes: the nodes of a service share the sweep
// through its record in the counters bucket: each pass goes on where the
// previous pass of any node stopped. Each node swept every record on its
// own before (N nodes read each record N times a cycle); now a cycle
// reads each record once whatever the number of nodes, and with 3 nodes
// whose passes fall apart a cycle takes a third of the minutes. The
// leftovers are removed once. It logs the figures of docs/benchmarks.md.
func TestSweepSharedByTheNodes(t *testing.T) {
	s := runTestServer(t)
	const devices, batch = 300, 64
	records := 3 * devices // channels, index keys, presence records
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprint(n, " nodes"), func(t *testing.T) {
			fake := clock.NewFake(time.Unix(1_000_000_000, 0))
			prefix := fmt.Sprint("share", n)
			var nodes []*Backend
			for i := range n {
				b := openSwept(t, s, prefix, fmt.Sprint("n", i), fake)
				b.sweep.batch = batch
				b.sweep.grace = 0 // the records are young: no age guard here
				nodes = append(nodes, b)
			}
			deleted := fillDirect(t, nodes[0], devices)
			scanned := func() (total int64, each []int64) {
				for _, b := range nodes {
					each = append(each, b.sweep.scanned.Load())
					total += b.sweep.scanned.Load()
				}
				return total, each
			}
			// Minute by minute, until the nodes together have read every
			// record once: a cycle.
			minutes := 0
			for total, _ := scanned(); total < int64(records); total, _ = scanned() {
				if minutes > records/batch {
					t.Fatalf("%d nodes read %d records in %d minutes", n, total, minutes)
				}
				fake.Advance(time.Duration(min(minutes, 1)) * sweepEvery)
				minutes++
			}
			total, each := scanned()
			var removed, skipped int64
			for _, b := range nodes {
				removed += b.sweep.removed.Load()
				skipped += b.sweep.skipped.Load()
				if n > 1 && b.sweep.scanned.Load() >= int64(records) {
					t.Errorf("node %s read %d records in a cycle of %d: every record, as if alone", b.cfg.NodeID, b.sweep.scanned.Load(), records)
				}
			}
			t.Logf("%d node(s), %d records (%d devices), batch %d a bucket: every record read after %d passes in %d minutes; records read by each node %v (total %d); %d removed, %d passes skipped",
				n, records, devices, batch, int64(minutes*n)-skipped, minutes, each, total, removed, skipped)
			if want := (records + 3*batch - 1) / (3 * batch); minutes != (want+n-1)/n {
				t.Errorf("%d nodes took %d minutes for a cycle; want %d (%d passes, %d a minute)", n, minutes, (want+n-1)/n, want, n)
			}
			// Each leftover device's channel is removed (and its index key
			// with it: the index bucket's pass covers the same devices
			// after the channels'), then its presence record: 2 removals
			// each, each by one node.
			if removed != int64(2*deleted) {
				t.Errorf("the nodes removed %d records; want %d (2 for each of %d deleted devices)", removed, 2*deleted, deleted)
			}
			st, err := nodes[0].Stats(context.Background())
			if err != nil || st.Channels != devices-deleted || st.Devices != devices-deleted {
				t.Errorf("Stats = %+v, %v; want %d devices and channels", st, err, devices-deleted)
			}
		})
	}
}

// twoSweepers opens nodes a and b of one service (prefix), each with a
// fake clock of its own (fa, fb) on which its sweep waits, no age guard
// and a batch of batchA and batchB records a bucket.
func twoSweepers(t *testing.T, prefix string, batchA, batchB int) (a, b *Backend, fa, fb *clock.Fake) {
	t.Helper()
	s := runTestServer(t)
	fa = clock.NewFake(time.Unix(1_000_000_000, 0))
	fb = clock.NewFake(time.Unix(1_000_000_000, 0))
	a = openSwept(t, s, prefix, "a", fa)
	b = openSwept(t, s, prefix, "b", fb)
	a.sweep.grace, b.sweep.grace = 0, 0
	a.sweep.batch, b.sweep.batch = batchA, batchB
	return a, b, fa, fb
}

// sweepRecord reads sweepKey as b's stream leader has it: decoded, as
// stored, and the error of either.
func sweepRecord(b *Backend) (sweepState, entry, error) {
	var st sweepState
	e, err := b.counters.get(context.Background(), sweepKey)
	if err == nil {
		err = json.Unmarshal(e.val, &st)
	}
	return st, e, err
}

// TestSweepLapsedHoldTakenOver: a node that took the sweep and died
// (its record names it, never given back) holds it for sweepLease, by the
// stream's clock: the other nodes skip their passes until then (trying
// again half a period later), and the next to tick after it takes the
// sweep over.
func TestSweepLapsedHoldTakenOver(t *testing.T) {
	s := runTestServer(t)
	ctx := context.Background()
	fake := clock.NewFake(time.Unix(1_000_000_000, 0))
	a := openSwept(t, s, "lapsed", "a", fake)
	b := openSwept(t, s, "lapsed", "b", fake)
	a.sweep.grace, b.sweep.grace = 0, 0
	d, chans := deviceWithChannels(t, a, "dev", "app")
	interruptDelete(t, a, d, chans, 1)
	val, _ := json.Marshal(sweepState{Node: "dead", Next: []uint64{0, 0, 0}})
	if _, err := a.counters.put(ctx, sweepKey, val); err != nil {
		t.Fatal(err)
	}
	fake.Advance(0) // the passes at the nodes' start
	if a.sweep.skipped.Load() != 1 || b.sweep.skipped.Load() != 1 || len(leftOf(t, a, d.ID, chans)) == 0 {
		t.Fatalf("while the dead node's hold lasts: skipped %d and %d passes, left %v; want both skipped, nothing removed",
			a.sweep.skipped.Load(), b.sweep.skipped.Load(), leftOf(t, a, d.ID, chans))
	}
	// A skipped pass is tried again half a period later (nodes started
	// together drift apart): the hold still lasts.
	fake.Advance(sweepEvery / 2)
	if a.sweep.skipped.Load() != 2 || b.sweep.skipped.Load() != 2 || len(leftOf(t, a, d.ID, chans)) == 0 {
		t.Fatalf("half a period on: skipped %d and %d passes, left %v; want both tried again and skipped",
			a.sweep.skipped.Load(), b.sweep.skipped.Load(), leftOf(t, a, d.ID, chans))
	}
	fake.Advance(sweepLease - sweepEvery/2)
	if left := leftOf(t, a, d.ID, chans); len(left) != 0 {
		t.Fatalf("once the dead node's hold lapsed, the deleted device still has: %v", left)
	}
	st, e, err := sweepRecord(a)
	if err != nil || st.Node != "" || len(st.Next) != 3 {
		t.Fatalf("the sweep record after the passes: %s, %v; want it given back, with where to go on", e.val, err)
	}
}

// TestSweepNodeStoppingHandsOver: a node that stops in the middle of a
// pass gives the sweep back, with where it stopped, before Close returns:
// another node's next pass takes it at once (not after sweepLease) and
// goes on from there.
func TestSweepNodeStoppingHandsOver(t *testing.T) {
	a, b, fa, fb := twoSweepers(t, "handover", 20, 20)
	deleted := fillDirect(t, a, 40)
	var closed chan struct{}
	var readA []string
	a.sweep.testRead = func(ctx context.Context, bucket, key string) {
		readA = append(readA, key)
		if len(readA) == 15 { // in the middle of the channels bucket
			closed = make(chan struct{})
			go func() { a.Close(); close(closed) }()
			<-ctx.Done() // Close ends the pass under way
		}
	}
	fa.Advance(0) // a's pass at its start, ended by Close
	if closed == nil {
		t.Fatalf("a's pass read %d records; want it stopped at the 15th", len(readA))
	}
	<-closed
	st, e, err := sweepRecord(b)
	if err != nil || st.Node != "" || len(st.Next) != 3 || st.Next[0] == 0 {
		t.Fatalf("the sweep record after a's Close: %s, %v; want it given back, with where a stopped", e.val, err)
	}
	var readB []string
	b.sweep.testRead = func(_ context.Context, bucket, key string) {
		if bucket == b.channels.bucket {
			readB = append(readB, key)
		}
	}
	fb.Advance(0) // b's pass at its start
	if b.sweep.skipped.Load() != 0 || len(readB) == 0 || readB[0] != readA[len(readA)-1] {
		t.Fatalf("b skipped %d passes and read channels %v; want it to go on from %s, where a stopped",
			b.sweep.skipped.Load(), readB, readA[len(readA)-1])
	}
	b.sweep.batch = sweepBatch
	fb.Advance(sweepEvery) // a whole cycle
	if got := a.sweep.removed.Load() + b.sweep.removed.Load(); got != int64(2*deleted) {
		t.Fatalf("a removed %d records and b %d; want %d between them", a.sweep.removed.Load(), b.sweep.removed.Load(), 2*deleted)
	}
}

// TestSweepTakenOverMidPass: a pass whose hold lapses (a stalled node)
// while another node takes the sweep over: both remove what they find,
// each record once (every removal is revision-checked), and the stalled
// pass stops at its next renewal without writing over the other's place.
func TestSweepTakenOverMidPass(t *testing.T) {
	ctx := context.Background()
	a, b, _, fb := twoSweepers(t, "midpass", 8, 30)
	deleted := fillDirect(t, a, 40)
	stalled := false
	a.sweep.testRead = func(context.Context, string, string) {
		if !stalled {
			stalled = true
			fb.Advance(0)          // b's first pass: a holds the sweep, b skips
			fb.Advance(sweepLease) // b's pass a lease later: a's hold lapsed
		}
	}
	_, err := a.sweepPass(ctx)
	if !errors.Is(err, errSweepTaken) {
		t.Fatalf("the stalled pass: %v; want errSweepTaken", err)
	}
	if b.sweep.skipped.Load() == 0 || b.sweep.scanned.Load() == 0 {
		t.Fatalf("b skipped %d passes and read %d records; want passes skipped (while a's hold lasted), then the sweep taken over",
			b.sweep.skipped.Load(), b.sweep.scanned.Load())
	}
	if got := a.sweep.scanned.Load(); got > 8 {
		t.Fatalf("the stalled pass read %d records; want it stopped after its first bucket's 8", got)
	}
	st, e, err := sweepRecord(b)
	if err != nil || st.Node != "" || len(st.Next) != 3 || st.Next[1] == 0 {
		t.Fatalf("the sweep record: %s, %v; want b's, given back, with where b stopped", e.val, err)
	}
	fb.Advance(sweepEvery) // b's next pass, the rest of the cycle
	if got := a.sweep.removed.Load() + b.sweep.removed.Load(); got != int64(2*deleted) {
		t.Fatalf("a removed %d records and b %d; want %d between them", a.sweep.removed.Load(), b.sweep.removed.Load(), 2*deleted)
	}
}
