package backendtest

import (
	"bytes"
	"errors"
	"maps"
	"slices"
	"sort"
	"sync"
	"testing"

	"github.com/openmpns/openmpns/server/backend"
)

var directoryTests = []test{
	{"DeviceCreateAndRead", testDeviceCreateAndRead},
	{"DeviceCreateTaken", testDeviceCreateTaken},
	{"DeviceUpdateRevisionChecked", testDeviceUpdate},
	{"DeviceUpdateGone", testDeviceUpdateGone},
	{"DeviceIsAValue", testDeviceIsAValue},
	{"DeviceConcurrentCreate", testDeviceConcurrentCreate},
	{"ChannelCreateAndRead", testChannelCreateAndRead},
	{"ChannelTokenTaken", testChannelTokenTaken},
	{"ChannelAppUnique", testChannelAppUnique},
	{"ChannelAppUniqueConcurrent", testChannelAppUniqueConcurrent},
	{"ChannelOfNoDevice", testChannelOfNoDevice},
	{"ChannelRacingItsDevicesDelete", testChannelRacingItsDevicesDelete},
	{"ChannelUpdateRevisionChecked", testChannelUpdate},
	{"ChannelsOfDevice", testChannelsOfDevice},
	{"DeleteChannel", testDeleteChannel},
	{"DeleteChannelDropsItsQueue", testDeleteChannelDropsQueue},
	{"TargetFollowsWrites", testTargetFollowsWrites},
	{"DeleteDevice", testDeleteDevice},
	{"ScanDevices", testScanDevices},
}

// target reads Target on node i and checks what it found.
func (h *harness) target(t *testing.T, i int, what string, tok string, wantCh backend.Channel, wantDev backend.Device) {
	t.Helper()
	c, d, err := h.node(i).Target(h.ctx, tok)
	if err != nil {
		t.Fatalf("%s: node %d: Target: %v", what, i, err)
	}
	sameChannel(t, what+": channel", c, wantCh)
	if d.TokenHash != nil {
		t.Errorf("%s: node %d: Target's device has a TokenHash (%d bytes); a push never reads it", what, i, len(d.TokenHash))
	}
	wantDev.TokenHash = nil
	sameDevice(t, what+": device", d, wantDev)
}

// testTargetFollowsWrites: Target sees a record written on another node
// once that node's later hand has arrived, and a write through its own
// node at once; a deleted channel is not found.
func testTargetFollowsWrites(t *testing.T, h *harness) {
	d := h.device(t, 0)
	c := h.channel(t, 0, d.ID, "app.target")
	h.target(t, 1, "created on node 0", c.Token, c, d)
	h.target(t, 0, "created here", c.Token, c, d)

	d.Power = "critical"
	d, err := h.node(0).PutDevice(h.ctx, d)
	if err != nil {
		t.Fatalf("PutDevice: %v", err)
	}
	h.target(t, 0, "updated here", c.Token, c, d)
	h.barrier(t, 1)
	h.target(t, 1, "updated on node 0", c.Token, c, d)

	c.Toast = false
	if c, err = h.node(1).PutChannel(h.ctx, c); err != nil {
		t.Fatalf("PutChannel: %v", err)
	}
	h.target(t, 1, "channel updated here", c.Token, c, d)
	h.barrier(t, 0)
	h.target(t, 0, "channel updated on node 1", c.Token, c, d)

	if err := h.node(0).DeleteChannel(h.ctx, c); err != nil {
		t.Fatalf("DeleteChannel: %v", err)
	}
	if _, _, err := h.node(0).Target(h.ctx, c.Token); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("deleted here: Target err %v, want ErrNotFound", err)
	}
	h.barrier(t, 1)
	if _, _, err := h.node(1).Target(h.ctx, c.Token); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("deleted on node 0: node 1: Target err %v, want ErrNotFound", err)
	}
	if _, _, err := h.node(1).Target(h.ctx, h.name("none")); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("unknown token: Target err %v, want ErrNotFound", err)
	}
}

func sameDevice(t *testing.T, what string, got, want backend.Device) {
	t.Helper()
	if got.ID != want.ID || !bytes.Equal(got.TokenHash, want.TokenHash) || !got.CreatedAt.Equal(want.CreatedAt) ||
		!got.LastSeen.Equal(want.LastSeen) || got.Power != want.Power || got.Rev != want.Rev {
		t.Fatalf("%s: got %+v, want %+v", what, got, want)
	}
}

func sameChannel(t *testing.T, what string, got, want backend.Channel) {
	t.Helper()
	if got.Token != want.Token || got.DeviceID != want.DeviceID || got.App != want.App || got.Name != want.Name ||
		got.Service != want.Service || got.URI != want.URI || got.Toast != want.Toast || got.Tile != want.Tile ||
		!slices.Equal(got.Domains, want.Domains) || !got.CreatedAt.Equal(want.CreatedAt) || got.Rev != want.Rev {
		t.Fatalf("%s: got %+v, want %+v", what, got, want)
	}
}

func testDeviceCreateAndRead(t *testing.T, h *harness) {
	if _, err := h.node(0).Device(h.ctx, "no-such-device"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("Device(unknown): err = %v, want ErrNotFound", err)
	}
	d := h.device(t, 0)
	if d.Rev == 0 {
		t.Fatal("PutDevice returned Rev 0")
	}
	for i := range h.nodes {
		got, err := h.node(i).Device(h.ctx, d.ID)
		if err != nil {
			t.Fatalf("node %d: Device: %v", i, err)
		}
		sameDevice(t, "Device", got, d)
	}
}

func testDeviceCreateTaken(t *testing.T, h *harness) {
	d := h.device(t, 0)
	again := d
	again.Rev, again.Power = 0, "low"
	_, err := h.node(1).PutDevice(h.ctx, again)
	wantErr(t, "PutDevice(taken id, Rev 0)", err, backend.ErrExists)
	got, err := h.node(0).Device(h.ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameDevice(t, "after a refused create", got, d)
}

func testDeviceUpdate(t *testing.T, h *harness) {
	d := h.device(t, 0)
	up := d
	up.Power = "low"
	d2, err := h.node(1).PutDevice(h.ctx, up)
	if err != nil {
		t.Fatalf("PutDevice(update): %v", err)
	}
	if d2.Rev == d.Rev || d2.Rev == 0 {
		t.Fatalf("update kept Rev %d (was %d)", d2.Rev, d.Rev)
	}
	got, err := h.node(0).Device(h.ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameDevice(t, "after update", got, d2)
	// d is stale now: its write must be refused, on any node.
	for i := range h.nodes {
		stale := d
		stale.Power = "critical"
		_, err = h.node(i).PutDevice(h.ctx, stale)
		wantErr(t, "PutDevice(stale Rev)", err, backend.ErrConflict)
	}
	if got, _ := h.node(0).Device(h.ctx, d.ID); got.Power != "low" {
		t.Fatalf("a refused update changed the device: %+v", got)
	}
}

func testDeviceUpdateGone(t *testing.T, h *harness) {
	_, err := h.node(0).PutDevice(h.ctx, backend.Device{ID: h.name("dev"), Rev: 7})
	wantErr(t, "PutDevice(unknown id, Rev 7)", err, backend.ErrNotFound)
}

func testDeviceIsAValue(t *testing.T, h *harness) {
	hash := []byte("0123456789abcdef0123456789abcdef")
	d, err := h.node(0).PutDevice(h.ctx, backend.Device{ID: h.name("dev"), TokenHash: hash, CreatedAt: now()})
	if err != nil {
		t.Fatal(err)
	}
	hash[0] = 'X' // the backend must not keep the caller's slice
	got, err := h.node(0).Device(h.ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.TokenHash[0] != '0' {
		t.Fatalf("the stored device shares the caller's TokenHash: %q", got.TokenHash)
	}
	got.TokenHash[1] = 'Y' // nor hand out its own
	again, _ := h.node(0).Device(h.ctx, d.ID)
	if again.TokenHash[1] != '1' {
		t.Fatalf("Device handed out the stored TokenHash: %q", again.TokenHash)
	}
}

func testDeviceConcurrentCreate(t *testing.T, h *harness) {
	id := h.name("dev")
	const per = 4
	var wg sync.WaitGroup
	errs := make(chan error, per*len(h.nodes))
	for i := range h.nodes {
		for range per {
			wg.Go(func() {
				_, err := h.node(i).PutDevice(h.ctx, backend.Device{ID: id, CreatedAt: now()})
				errs <- err
			})
		}
	}
	wg.Wait()
	close(errs)
	won := 0
	for err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, backend.ErrExists):
			t.Errorf("concurrent create: %v, want nil or ErrExists", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d concurrent creates of one device succeeded, want 1", won)
	}
}

func testChannelCreateAndRead(t *testing.T, h *harness) {
	if _, err := h.node(0).Channel(h.ctx, "no-such-token"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("Channel(unknown): err = %v, want ErrNotFound", err)
	}
	d := h.device(t, 0)
	c := h.channel(t, 0, d.ID, "{5B04B775-356B-4AA0-AAF8-6491FFEA5630}")
	if c.Rev == 0 {
		t.Fatal("PutChannel returned Rev 0")
	}
	for i := range h.nodes {
		got, err := h.node(i).Channel(h.ctx, c.Token)
		if err != nil {
			t.Fatalf("node %d: Channel: %v", i, err)
		}
		sameChannel(t, "Channel", got, c)
	}
}

func testChannelTokenTaken(t *testing.T, h *harness) {
	d := h.device(t, 0)
	c := h.channel(t, 0, d.ID, "app.one")
	other := c
	other.Rev, other.App = 0, "app.two"
	_, err := h.node(1).PutChannel(h.ctx, other)
	wantErr(t, "PutChannel(taken token)", err, backend.ErrExists)
	chs, err := h.node(0).Channels(h.ctx, d.ID)
	if err != nil || len(chs) != 1 || chs[0].App != "app.one" {
		t.Fatalf("Channels after a refused create = %+v, %v; want only app.one", chs, err)
	}
}

func testChannelAppUnique(t *testing.T, h *harness) {
	d := h.device(t, 0)
	d2 := h.device(t, 0)
	c := h.channel(t, 0, d.ID, "com.example.app")
	_, err := h.node(1).PutChannel(h.ctx, backend.Channel{Token: h.name("tok"), DeviceID: d.ID, App: c.App, CreatedAt: now()})
	wantErr(t, "PutChannel(second channel of one app)", err, backend.ErrExists)
	// The same app on another device, and another app on this device, are fine.
	h.channel(t, 1, d2.ID, c.App)
	h.channel(t, 1, d.ID, "com.example.other")
}

func testChannelAppUniqueConcurrent(t *testing.T, h *harness) {
	d := h.device(t, 0)
	const per = 4
	var wg sync.WaitGroup
	type result struct {
		c   backend.Channel
		err error
	}
	res := make(chan result, per*len(h.nodes))
	for i := range h.nodes {
		for range per {
			wg.Go(func() {
				c, err := h.node(i).PutChannel(h.ctx, backend.Channel{Token: h.name("tok"), DeviceID: d.ID, App: "race.app", CreatedAt: now()})
				res <- result{c, err}
			})
		}
	}
	wg.Wait()
	close(res)
	var won []backend.Channel
	for r := range res {
		switch {
		case r.err == nil:
			won = append(won, r.c)
		case !errors.Is(r.err, backend.ErrExists):
			t.Errorf("concurrent create: %v, want nil or ErrExists", r.err)
		}
	}
	if len(won) != 1 {
		t.Fatalf("%d concurrent channels for one (device, app) were created, want 1", len(won))
	}
	chs, err := h.node(0).Channels(h.ctx, d.ID)
	if err != nil || len(chs) != 1 || chs[0].Token != won[0].Token {
		t.Fatalf("Channels = %+v, %v; want only the winner %s", chs, err, won[0].Token)
	}
}

// testChannelOfNoDevice: a channel of a device that does not exist is
// refused, and nothing of it is kept.
func testChannelOfNoDevice(t *testing.T, h *harness) {
	dev := h.name("dev") // never created
	tok := h.name("tok")
	_, err := h.node(0).PutChannel(h.ctx, backend.Channel{Token: tok, DeviceID: dev, App: "app", CreatedAt: now()})
	wantErr(t, "PutChannel(of no device)", err, backend.ErrNotFound)
	for i := range h.nodes {
		_, err := h.node(i).Channel(h.ctx, tok)
		wantErr(t, "Channel(refused)", err, backend.ErrNotFound)
		if chs, err := h.node(i).Channels(h.ctx, dev); len(chs) != 0 || (err != nil && !errors.Is(err, backend.ErrNotFound)) {
			t.Fatalf("node %d: Channels(no device) = %+v, %v", i, chs, err)
		}
	}
	// The device created later starts with no channel, and may open one
	// for the app.
	d, err := h.node(1).PutDevice(h.ctx, backend.Device{ID: dev, TokenHash: []byte("0123456789abcdef0123456789abcdef"), CreatedAt: now()})
	if err != nil {
		t.Fatal(err)
	}
	if chs, err := h.node(0).Channels(h.ctx, d.ID); err != nil || len(chs) != 0 {
		t.Fatalf("Channels(new device) = %+v, %v; want none", chs, err)
	}
	h.channel(t, 0, d.ID, "app")
}

// testChannelRacingItsDevicesDelete: a channel created on one node while
// another deletes its device is either refused or deleted with the
// device; it never outlives it.
func testChannelRacingItsDevicesDelete(t *testing.T, h *harness) {
	for round := range 8 {
		d := h.device(t, 0)
		tok := h.name("tok")
		var putErr, delErr error
		var wg sync.WaitGroup
		wg.Go(func() {
			_, putErr = h.node(1).PutChannel(h.ctx, backend.Channel{Token: tok, DeviceID: d.ID, App: "app", CreatedAt: now()})
		})
		wg.Go(func() { delErr = h.node(0).DeleteDevice(h.ctx, d) })
		wg.Wait()
		if delErr != nil {
			t.Fatalf("round %d: DeleteDevice: %v", round, delErr)
		}
		if putErr != nil && !errors.Is(putErr, backend.ErrNotFound) {
			t.Fatalf("round %d: PutChannel: %v, want nil or ErrNotFound", round, putErr)
		}
		for i := range h.nodes {
			if c, err := h.node(i).Channel(h.ctx, tok); !errors.Is(err, backend.ErrNotFound) {
				t.Fatalf("round %d: node %d: the channel (PutChannel: %v) outlived its device: %+v, %v", round, i, putErr, c, err)
			}
			if chs, err := h.node(i).Channels(h.ctx, d.ID); len(chs) != 0 || (err != nil && !errors.Is(err, backend.ErrNotFound)) {
				t.Fatalf("round %d: node %d: Channels(deleted device) = %+v, %v", round, i, chs, err)
			}
		}
	}
}

func testChannelUpdate(t *testing.T, h *harness) {
	d := h.device(t, 0)
	c := h.channel(t, 0, d.ID, "app")
	up := c
	up.Name, up.Toast = "renamed", false
	c2, err := h.node(1).PutChannel(h.ctx, up)
	if err != nil {
		t.Fatalf("PutChannel(update): %v", err)
	}
	if c2.Rev == c.Rev || c2.Rev == 0 {
		t.Fatalf("update kept Rev %d (was %d)", c2.Rev, c.Rev)
	}
	got, err := h.node(0).Channel(h.ctx, c.Token)
	if err != nil {
		t.Fatal(err)
	}
	sameChannel(t, "after update", got, c2)
	stale := c
	stale.Name = "stale"
	_, err = h.node(0).PutChannel(h.ctx, stale)
	wantErr(t, "PutChannel(stale Rev)", err, backend.ErrConflict)
	_, err = h.node(0).PutChannel(h.ctx, backend.Channel{Token: h.name("tok"), DeviceID: d.ID, App: "gone", Rev: 3})
	wantErr(t, "PutChannel(unknown token, Rev 3)", err, backend.ErrNotFound)
}

func tokens(chs []backend.Channel) []string {
	out := make([]string, len(chs))
	for i, c := range chs {
		out[i] = c.Token
	}
	sort.Strings(out)
	return out
}

func testChannelsOfDevice(t *testing.T, h *harness) {
	a, b, empty := h.device(t, 0), h.device(t, 0), h.device(t, 0)
	var want []string
	for i, app := range []string{"app.one", "{0F7A1E5C-3E7B-4C0F-9F05-2B0C4A8E1A11}", "app-three"} {
		want = append(want, h.channel(t, i%2, a.ID, app).Token)
	}
	cb := h.channel(t, 1, b.ID, "app.one")
	sort.Strings(want)
	for i := range h.nodes {
		chs, err := h.node(i).Channels(h.ctx, a.ID)
		if err != nil {
			t.Fatalf("Channels(a): %v", err)
		}
		if got := tokens(chs); !slices.Equal(got, want) {
			t.Fatalf("node %d: Channels(a) = %v, want %v", i, got, want)
		}
		for _, c := range chs {
			if c.DeviceID != a.ID || c.Rev == 0 {
				t.Fatalf("Channels(a) returned %+v", c)
			}
		}
		chs, err = h.node(i).Channels(h.ctx, b.ID)
		if err != nil || len(chs) != 1 {
			t.Fatalf("Channels(b) = %+v, %v; want one", chs, err)
		}
		sameChannel(t, "Channels(b)", chs[0], cb)
	}
	chs, err := h.node(0).Channels(h.ctx, empty.ID)
	if len(chs) != 0 || (err != nil && !errors.Is(err, backend.ErrNotFound)) {
		t.Fatalf("Channels(device without channels) = %+v, %v", chs, err)
	}
}

func testDeleteChannel(t *testing.T, h *harness) {
	d := h.device(t, 0)
	c := h.channel(t, 0, d.ID, "app")
	keep := h.channel(t, 0, d.ID, "app.kept")
	up := c
	up.Name = "v2"
	c2, err := h.node(0).PutChannel(h.ctx, up)
	if err != nil {
		t.Fatal(err)
	}
	err = h.node(1).DeleteChannel(h.ctx, c) // stale Rev
	wantErr(t, "DeleteChannel(stale Rev)", err, backend.ErrConflict)
	if _, err := h.node(0).Channel(h.ctx, c.Token); err != nil {
		t.Fatalf("a refused delete removed the channel: %v", err)
	}
	if err := h.node(1).DeleteChannel(h.ctx, c2); err != nil {
		t.Fatalf("DeleteChannel: %v", err)
	}
	for i := range h.nodes {
		_, err := h.node(i).Channel(h.ctx, c.Token)
		wantErr(t, "Channel(deleted)", err, backend.ErrNotFound)
		chs, err := h.node(i).Channels(h.ctx, d.ID)
		if err != nil || len(chs) != 1 || chs[0].Token != keep.Token {
			t.Fatalf("node %d: Channels after delete = %+v, %v; want only %s", i, chs, err, keep.Token)
		}
	}
	err = h.node(0).DeleteChannel(h.ctx, c2)
	wantErr(t, "DeleteChannel(deleted)", err, backend.ErrNotFound)
	// The app may open a channel again.
	again := h.channel(t, 1, d.ID, "app")
	if again.Token == c.Token {
		t.Fatal("test bug: same token")
	}
}

func testDeleteChannelDropsQueue(t *testing.T, h *harness) {
	d := h.device(t, 0)
	c := h.channel(t, 0, d.ID, "app")
	keep := h.channel(t, 0, d.ID, "app.kept")
	h.appendOK(t, 0, note(c, "toast", ""), 0)
	h.appendOK(t, 1, note(c, "tile", ""), 0)
	kept := h.appendOK(t, 1, note(keep, "raw", ""), 0)
	h.appendOK(t, 0, note(c, "raw", ""), 0)
	if err := h.node(1).DeleteChannel(h.ctx, c); err != nil {
		t.Fatalf("DeleteChannel: %v", err)
	}
	for i := range h.nodes {
		got := h.pending(t, i, d.ID, now())
		if !slices.Equal(seqs(got), []uint64{kept.Seq}) {
			t.Fatalf("node %d: Pending after DeleteChannel = %v, want [%d]", i, seqs(got), kept.Seq)
		}
	}
	// A channel of the same app starts with an empty queue and full room.
	again := h.channel(t, 0, d.ID, "app")
	h.appendOK(t, 0, note(again, "toast", ""), 1)
}

// DeleteDevice is revision-checked and takes the device's channels, queue
// and presence with it; another device keeps everything.
func testDeleteDevice(t *testing.T, h *harness) {
	d, other := h.device(t, 0), h.device(t, 0)
	c1 := h.channel(t, 0, d.ID, "app")
	c2 := h.channel(t, 1, d.ID, "app.two")
	oc := h.channel(t, 0, other.ID, "app")
	h.appendOK(t, 0, note(c1, "toast", ""), 0)
	h.appendOK(t, 1, note(c2, "raw", ""), 0)
	kept := h.appendOK(t, 0, note(oc, "raw", ""), 0)
	claim := h.claim(t, 0, d.ID, now())
	if err := h.node(0).Release(h.ctx, d.ID, claim, now()); err != nil {
		t.Fatalf("Release: %v", err)
	}
	stale := d
	cur, err := h.node(1).Device(h.ctx, d.ID) // Release wrote LastSeen: a newer Rev
	if err != nil {
		t.Fatal(err)
	}
	if cur.Rev == stale.Rev {
		stale.Rev = cur.Rev + 1000 // no write since: any other Rev is stale
	}
	err = h.node(1).DeleteDevice(h.ctx, stale)
	wantErr(t, "DeleteDevice(stale Rev)", err, backend.ErrConflict)
	if _, err := h.node(0).Device(h.ctx, d.ID); err != nil {
		t.Fatalf("a refused delete removed the device: %v", err)
	}
	if err := h.node(1).DeleteDevice(h.ctx, cur); err != nil {
		t.Fatalf("DeleteDevice: %v", err)
	}
	for i := range h.nodes {
		_, err := h.node(i).Device(h.ctx, d.ID)
		wantErr(t, "Device(deleted)", err, backend.ErrNotFound)
		for _, c := range []backend.Channel{c1, c2} {
			_, err := h.node(i).Channel(h.ctx, c.Token)
			wantErr(t, "Channel(of a deleted device)", err, backend.ErrNotFound)
		}
		if chs, err := h.node(i).Channels(h.ctx, d.ID); len(chs) != 0 || (err != nil && !errors.Is(err, backend.ErrNotFound)) {
			t.Fatalf("node %d: Channels(deleted device) = %+v, %v", i, chs, err)
		}
		if got := h.pending(t, i, d.ID, now()); len(got) != 0 {
			t.Fatalf("node %d: Pending(deleted device) = %v", i, seqs(got))
		}
		if _, ok, err := h.node(i).Presence(h.ctx, d.ID); err != nil || ok {
			t.Fatalf("node %d: Presence(deleted device) = ok %v, %v; want none", i, ok, err)
		}
		if got := h.pending(t, i, other.ID, now()); !slices.Equal(seqs(got), []uint64{kept.Seq}) {
			t.Fatalf("node %d: the other device's queue = %v, want [%d]", i, seqs(got), kept.Seq)
		}
		if _, err := h.node(i).Channel(h.ctx, oc.Token); err != nil {
			t.Fatalf("node %d: the other device's channel: %v", i, err)
		}
	}
	err = h.node(0).DeleteDevice(h.ctx, cur)
	wantErr(t, "DeleteDevice(deleted)", err, backend.ErrNotFound)
	if s := h.stats(t, 0); s.Devices != 1 || s.Channels != 1 || s.Queued != 1 {
		t.Fatalf("Stats after DeleteDevice = %+v, want 1 device, 1 channel, 1 queued", s)
	}
}

// ScanDevices sees every device once, with its Rev, and stops when asked.
func testScanDevices(t *testing.T, h *harness) {
	want := map[string]backend.Device{}
	for i := range 5 {
		d := h.device(t, i%len(h.nodes))
		want[d.ID] = d
	}
	up := want[slices.Sorted(maps.Keys(want))[0]]
	up.Power = "low"
	up, err := h.node(0).PutDevice(h.ctx, up)
	if err != nil {
		t.Fatal(err)
	}
	want[up.ID] = up
	for i := range h.nodes {
		got := map[string]backend.Device{}
		err := h.node(i).ScanDevices(h.ctx, func(d backend.Device) bool {
			if _, dup := got[d.ID]; dup {
				t.Errorf("node %d: ScanDevices gave %s twice", i, d.ID)
			}
			got[d.ID] = d
			return true
		})
		if err != nil {
			t.Fatalf("node %d: ScanDevices: %v", i, err)
		}
		if len(got) != len(want) {
			t.Fatalf("node %d: ScanDevices saw %d devices, want %d", i, len(got), len(want))
		}
		for id, w := range want {
			sameDevice(t, "scanned device", got[id], w)
			if got[id].Rev != w.Rev {
				t.Fatalf("node %d: scanned %s with Rev %d, want %d", i, id, got[id].Rev, w.Rev)
			}
		}
		n := 0
		if err := h.node(i).ScanDevices(h.ctx, func(backend.Device) bool { n++; return n < 2 }); err != nil || n != 2 {
			t.Fatalf("node %d: ScanDevices told to stop at the second device called fn %d times (%v)", i, n, err)
		}
	}
}
