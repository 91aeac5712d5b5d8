package store

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// jsonOf is encoding/json's encoding of n (without its HTML escaping,
// which appendNoteJSON does not do: both read back the same).
func jsonOf(t testing.TB, n *Notification) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(n); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func checkNoteJSON(t testing.TB, n *Notification) {
	t.Helper()
	got := appendNoteJSON(nil, n)
	if want := jsonOf(t, n); !bytes.Equal(got, want) {
		t.Fatalf("appendNoteJSON:\n got %s\nwant %s", got, want)
	}
	var back Notification
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatalf("read back %s: %v", got, err)
	}
}

// The log's own encoder writes what encoding/json writes.
func TestNoteJSONIsEncodingJSONs(t *testing.T) {
	at := time.Date(2026, 12, 6, 12, 0, 0, 123456789, time.UTC)
	east := time.FixedZone("east", 5*3600+1800)
	for name, n := range map[string]*Notification{
		"raw":                     testNote(7),
		"empty":                   {},
		"nil payload, zero times": {Seq: 1, DeviceID: "d", Kind: "raw"},
		"tile": {Seq: 1<<64 - 1, DeviceID: "dev", Channel: "tok-_", App: "com.example.app", Kind: "tile", Class: 21,
			MessageID: "id", TileID: "/Page.xaml?a=1&b=<2>", Payload: []byte("<tile/>"), AcceptedAt: at, DeliverAt: at.Add(450 * time.Second), ExpiresAt: at.Add(24 * time.Hour)},
		"escapes": {Seq: 2, App: "quote\" back\\ nl\n cr\r tab\t nul\x00 us\x1f del\x7f", MessageID: "bad \xff\xfe utf8 \u2028\u2029 é 日本 🎉",
			Payload: []byte{}, AcceptedAt: at.In(east), DeliverAt: at.Truncate(time.Second), ExpiresAt: at.Local()},
		"negative class": {Class: -3, AcceptedAt: time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), ExpiresAt: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)},
	} {
		t.Run(name, func(t *testing.T) { checkNoteJSON(t, n) })
	}
	if err := checkNoteTimes(&Notification{ExpiresAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}); err == nil {
		t.Fatal("a year past 9999 passed")
	}
}

func FuzzNoteJSON(f *testing.F) {
	f.Add(uint64(1), "d", "t", "a", "raw", 3, "m", "", []byte("x"), int64(0), int64(0))
	f.Add(uint64(1<<63), "\xff", "\"\\", "\x00\u2028", "tile", -1, "<&>", "é", []byte(nil), int64(-1e18), int64(1e18))
	f.Fuzz(func(t *testing.T, seq uint64, dev, ch, app, kind string, class int, msg, tile string, p []byte, a, e int64) {
		n := &Notification{Seq: seq, DeviceID: dev, Channel: ch, App: app, Kind: kind, Class: class, MessageID: msg, TileID: tile,
			Payload: p, AcceptedAt: time.Unix(0, a).UTC(), DeliverAt: time.Unix(0, a), ExpiresAt: time.Unix(0, e).In(time.FixedZone("z", -7*3600))}
		checkNoteJSON(t, n)
	})
}

// BenchmarkNoteJSON compares the log's encoder with encoding/json on a raw
// 64-byte notification.
func BenchmarkNoteJSON(b *testing.B) {
	n := testNote(1)
	n.MessageID = "0123456789abcdef"
	b.Run("appendNoteJSON", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = appendNoteJSON(buf[:0], n)
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(n); err != nil {
				b.Fatal(err)
			}
		}
	})
}
