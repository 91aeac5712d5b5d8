package server

import (
	"net/http"
	"net/netip"
	"strconv"
	"testing"
	"time"
)

// from is a request from remote with the given headers (name, value, ...).
func from(remote string, hdr ...string) *http.Request {
	r := &http.Request{RemoteAddr: remote, Header: http.Header{}}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	return r
}

func TestConnectionLimitPerAddress(t *testing.T) {
	cfg := &Config{MaxConnsPerIP: 2}
	g := newGateway(cfg, nil, nil)
	a1, ok1 := g.admit(from("192.0.2.7:5000"))
	_, ok2 := g.admit(from("192.0.2.7:5001"))
	_, ok3 := g.admit(from("192.0.2.7:5002"))
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("admits: %v %v %v, want true true false", ok1, ok2, ok3)
	}
	if _, ok := g.admit(from("198.51.100.1:1")); !ok {
		t.Fatal("another address was refused")
	}
	g.release(a1)
	if _, ok := g.admit(from("192.0.2.7:5003")); !ok {
		t.Fatal("a released slot was not reusable")
	}
	for i := 0; i < 10; i++ {
		if _, ok := g.admit(from("127.0.0.1:9")); !ok {
			t.Fatal("loopback is limited")
		}
		if _, ok := g.admit(from("[::1]:9")); !ok {
			t.Fatal("IPv6 loopback is limited")
		}
	}
	// One IPv6 /64 is one address.
	_, ok1 = g.admit(from("[2001:db8:1:2::1]:1"))
	_, ok2 = g.admit(from("[2001:db8:1:2:ffff::9]:1"))
	_, ok3 = g.admit(from("[2001:db8:1:2:abcd::7]:1"))
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("admits from one /64: %v %v %v, want true true false", ok1, ok2, ok3)
	}
	if _, ok := g.admit(from("[2001:db8:1:3::1]:1")); !ok {
		t.Fatal("another /64 was refused")
	}
	g.cfg.LimitLoopback = true
	_, ok1 = g.admit(from("127.0.0.1:9"))
	_, ok2 = g.admit(from("127.0.0.1:9"))
	_, ok3 = g.admit(from("127.0.0.1:9"))
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("LimitLoopback: admits %v %v %v, want true true false", ok1, ok2, ok3)
	}
	g.cfg.MaxConnsPerIP = -1
	for i := 0; i < 10; i++ {
		if _, ok := g.admit(from("203.0.113.9:1")); !ok {
			t.Fatal("a negative limit still limits")
		}
	}
}

// The client address comes from a forwarding header only when the peer is
// a trusted proxy, and is the rightmost hop that is not a trusted proxy:
// what the client wrote itself, left of it, is not believed.
func TestClientAddrBehindTrustedProxies(t *testing.T) {
	proxies, err := ParseTrustedProxies("127.0.0.1, 10.0.0.0/8", "::1")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		r      *http.Request
		header string
		want   string
	}{
		{"no proxy configured", from("127.0.0.1:1", "X-Forwarded-For", "198.51.100.1"), "", "127.0.0.1"},
		{"untrusted peer's header ignored", from("203.0.113.5:1", "X-Forwarded-For", "198.51.100.1"), "X-Forwarded-For", "203.0.113.5"},
		{"trusted peer", from("127.0.0.1:1", "X-Forwarded-For", "198.51.100.1"), "X-Forwarded-For", "198.51.100.1"},
		{"spoofed hops left of the real one", from("127.0.0.1:1", "X-Forwarded-For", "1.2.3.4, 5.6.7.8, 198.51.100.1"), "X-Forwarded-For", "198.51.100.1"},
		{"chain of trusted proxies", from("127.0.0.1:1", "X-Forwarded-For", "198.51.100.1, 10.1.2.3"), "X-Forwarded-For", "198.51.100.1"},
		{"several header lines", from("127.0.0.1:1", "X-Forwarded-For", "9.9.9.9", "X-Forwarded-For", "198.51.100.2"), "X-Forwarded-For", "198.51.100.2"},
		{"no header: the proxy itself", from("127.0.0.1:1"), "X-Forwarded-For", "127.0.0.1"},
		{"garbage hop: the last believed", from("127.0.0.1:1", "X-Forwarded-For", "not-an-ip"), "X-Forwarded-For", "127.0.0.1"},
		{"other header not read", from("127.0.0.1:1", "Forwarded", "for=198.51.100.1"), "X-Forwarded-For", "127.0.0.1"},
		{"Forwarded", from("[::1]:1", "Forwarded", `for=1.1.1.1, for="[2001:db8::7]:4711";proto=https`), "Forwarded", "2001:db8::7"},
		{"Forwarded ignores X-Forwarded-For", from("[::1]:1", "X-Forwarded-For", "198.51.100.1"), "Forwarded", "::1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ps := proxies
			if c.header == "" {
				ps, c.header = nil, "X-Forwarded-For"
			}
			got, ok := clientAddr(c.r, ps, c.header)
			if !ok || got != netip.MustParseAddr(c.want) {
				t.Fatalf("clientAddr = %v, %v; want %s", got, ok, c.want)
			}
		})
	}
	if _, err := ParseTrustedProxies("10.0.0.0/33"); err == nil {
		t.Fatal("a bad prefix was accepted")
	}
}

// The keyed limiter allows a burst, then one event per interval, per key,
// and its map stays bounded however many keys come.
func TestKeyedLimiter(t *testing.T) {
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newKeyedLimiter(60, 3) // one a second, bursts of 3
	for i := range 3 {
		if ok, _ := l.allow("a", now); !ok {
			t.Fatalf("event %d of the burst refused", i)
		}
	}
	ok, wait := l.allow("a", now)
	if ok || wait <= 0 || wait > time.Second {
		t.Fatalf("past the burst: ok %v, wait %v; want refused, wait up to 1s", ok, wait)
	}
	if ok, _ := l.allow("b", now); !ok {
		t.Fatal("another key was refused")
	}
	if ok, _ := l.allow("a", now.Add(time.Second)); !ok {
		t.Fatal("refused after the interval")
	}
	l.max = 100
	for i := range 1000 {
		l.allow(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}).String(), now)
	}
	if n := l.size(); n > 100 {
		t.Fatalf("limiter remembers %d keys, more than its bound 100", n)
	}
	// An attacker with many addresses, each of which used its bucket: the
	// map is scanned once per sixteenth of it new addresses, not once
	// for every new address.
	full := newKeyedLimiter(60, 1)
	full.max = 160
	for i := range 160 {
		full.allow("old-"+strconv.Itoa(i), now)
	}
	if full.sweeps != 0 || full.size() != 160 {
		t.Fatalf("filling the map: %d scans, %d keys", full.sweeps, full.size())
	}
	for i := range 100 {
		full.allow("new-"+strconv.Itoa(i), now)
	}
	if full.sweeps != 10 || full.size() > 160 {
		t.Fatalf("100 new addresses past the bound of 160: %d scans of the map, %d keys; want 10 (one per 10 new), at most 160", full.sweeps, full.size())
	}
	// Buckets that filled up again are forgotten first: nothing held
	// against an address is lost while such buckets remain.
	mixed := newKeyedLimiter(60, 1) // one a second
	mixed.max = 160
	for i := range 80 {
		mixed.allow("idle-"+strconv.Itoa(i), now)
	}
	later := now.Add(10 * time.Second)
	for i := range 80 {
		mixed.allow("busy-"+strconv.Itoa(i), later)
	}
	mixed.allow("new", later.Add(500*time.Millisecond))
	for i := range 80 {
		if _, ok := mixed.m["busy-"+strconv.Itoa(i)]; !ok {
			t.Fatalf("busy-%d, whose bucket is still empty, was forgotten while full ones remained", i)
		}
	}
	if n := mixed.size(); n != 81 {
		t.Fatalf("%d keys after the eviction, want the 80 busy ones and the new one", n)
	}
	if newKeyedLimiter(-1, 1) != nil {
		t.Fatal("a negative rate gave a limiter")
	}
	var none *keyedLimiter
	if ok, _ := none.allow("a", now); !ok {
		t.Fatal("no limiter refused")
	}
}
