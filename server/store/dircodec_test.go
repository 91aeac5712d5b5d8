package store

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func sameDev(a, b Device) bool {
	return a.ID == b.ID && slices.Equal(a.TokenHash, b.TokenHash) && a.CreatedAt.Equal(b.CreatedAt) &&
		a.LastSeen.Equal(b.LastSeen) && a.Power == b.Power
}

func sameChan(a, b Channel) bool {
	return a.Token == b.Token && a.DeviceID == b.DeviceID && a.App == b.App && a.Name == b.Name &&
		a.Service == b.Service && a.URI == b.URI && a.Toast == b.Toast && a.Tile == b.Tile &&
		slices.Equal(a.Domains, b.Domains) && a.CreatedAt.Equal(b.CreatedAt)
}

var (
	codecDevices = []Device{
		{ID: "d1", TokenHash: make([]byte, 32), CreatedAt: time.Now(), LastSeen: time.Now().Add(time.Minute), Power: "normal"},
		{ID: "d2"}, // zero times, no hash
		{ID: "d3", TokenHash: []byte{1}, CreatedAt: time.Date(1200, 1, 2, 3, 4, 5, 6, time.UTC), Power: "critical"},
	}
	codecChannels = []Channel{
		{Token: "t1", DeviceID: "d1", App: "com.example.app", Name: "default", URI: "http://h:1/push/t1",
			Toast: true, Tile: true, Domains: []string{"a.example", ""}, CreatedAt: time.Now()},
		{Token: "t2", DeviceID: "d2", App: "a", Service: "svc", Tile: true},
		{Token: "t3", DeviceID: "d3", App: "b", Toast: true, CreatedAt: time.Date(9000, 1, 1, 0, 0, 0, 999999999, time.UTC)},
	}
)

// Devices and channels come back from the data file as they went in, from
// the compact form and from the JSON of files written before it.
func TestDirRecordsRoundTrip(t *testing.T) {
	for _, d := range codecDevices {
		j, _ := json.Marshal(d)
		for name, v := range map[string][]byte{"compact": encodeDevice(d), "json": j} {
			got, err := decodeDevice(d.ID, v)
			if err != nil || !sameDev(got, d) {
				t.Fatalf("%s device: got %+v, %v; want %+v", name, got, err, d)
			}
		}
		if c, j := len(encodeDevice(d)), len(j); c*2 > j {
			t.Errorf("device %s: compact record %d bytes, JSON %d: not half", d.ID, c, j)
		}
	}
	for _, c := range codecChannels {
		j, _ := json.Marshal(c)
		for name, v := range map[string][]byte{"compact": encodeChannel(c), "json": j} {
			got, err := decodeChannel(c.Token, v)
			if err != nil || !sameChan(got, c) {
				t.Fatalf("%s channel: got %+v, %v; want %+v", name, got, err, c)
			}
		}
	}
}

// A damaged compact record is refused, never read as another one.
func TestDirRecordsDamaged(t *testing.T) {
	for _, d := range codecDevices {
		v := encodeDevice(d)
		for n := range len(v) {
			if _, err := decodeDevice(d.ID, v[:n]); err == nil {
				t.Fatalf("device %s cut to %d of %d bytes: no error", d.ID, n, len(v))
			}
		}
		if _, err := decodeDevice(d.ID, append(v, 0)); err == nil {
			t.Fatalf("device %s with a byte more: no error", d.ID)
		}
	}
	for _, c := range codecChannels {
		v := encodeChannel(c)
		for n := range len(v) {
			if _, err := decodeChannel(c.Token, v[:n]); err == nil {
				t.Fatalf("channel %s cut to %d of %d bytes: no error", c.Token, n, len(v))
			}
		}
	}
	if _, err := decodeChannel("t", []byte{2}); err == nil {
		t.Fatal("an unknown version: no error")
	}
}

// A data file written before the compact form (JSON records) opens, and
// what is written to it afterwards is compact.
func TestDataFileOfJSONRecordsOpens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	e, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, d := range codecDevices {
			v, _ := json.Marshal(d)
			if err := tx.Bucket(bucketDevices).Put([]byte(d.ID), v); err != nil {
				return err
			}
		}
		for _, c := range codecChannels {
			v, _ := json.Marshal(c)
			if err := tx.Bucket(bucketChannels).Put([]byte(c.Token), v); err != nil {
				return err
			}
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	e, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range codecDevices {
		got, err := e.Device(ctx, want.ID)
		if err != nil || !sameDev(got, want) {
			t.Fatalf("device from JSON: got %+v, %v; want %+v", got, err, want)
		}
	}
	for _, want := range codecChannels {
		got, err := e.Channel(ctx, want.Token)
		if err != nil || !sameChan(got, want) {
			t.Fatalf("channel from JSON: got %+v, %v; want %+v", got, err, want)
		}
	}
	d, _ := e.Device(ctx, "d2")
	d.Power = "low"
	if _, err := e.PutDevice(ctx, d); err != nil {
		t.Fatal(err)
	}
	e.Close()
	e, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if got, err := e.Device(ctx, "d2"); err != nil || got.Power != "low" {
		t.Fatalf("rewritten device: got %+v, %v", got, err)
	}
	err = e.Bolt().DB().View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketDevices).Get([]byte("d2")); len(v) == 0 || v[0] != dirV1 {
			t.Errorf("a device written now is not compact: %q", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// FuzzDirRecord feeds the data file's record decoders whatever bytes a
// damaged or hostile file could hold: they never panic, and whatever
// decodes encodes and decodes again to the same record.
func FuzzDirRecord(f *testing.F) {
	for _, d := range codecDevices {
		f.Add(true, encodeDevice(d))
		j, _ := json.Marshal(d)
		f.Add(true, j)
	}
	for _, c := range codecChannels {
		f.Add(false, encodeChannel(c))
	}
	f.Add(false, []byte{dirV1, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01})
	f.Fuzz(func(t *testing.T, device bool, v []byte) {
		if device {
			d, err := decodeDevice("k", v)
			if err != nil {
				return
			}
			again, err := decodeDevice("k", encodeDevice(d))
			if err != nil || !sameDev(d, again) {
				t.Fatalf("device %+v came back as %+v (%v)", d, again, err)
			}
			return
		}
		c, err := decodeChannel("k", v)
		if err != nil {
			return
		}
		again, err := decodeChannel("k", encodeChannel(c))
		if err != nil || !sameChan(c, again) {
			t.Fatalf("channel %+v came back as %+v (%v)", c, again, err)
		}
	})
}
