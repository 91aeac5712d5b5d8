package server

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxLimiterKeys bounds the source addresses a keyedLimiter remembers, so
// that an attacker spreading over many addresses cannot grow its map
// without limit.
const maxLimiterKeys = 65536

// keyedLimiter is a token bucket per source address. Its map is bounded:
// when it is full, the buckets that have filled up again (which are as
// good as new) are forgotten, and if that frees less than a sixteenth of
// it, arbitrary ones are until a sixteenth is free: an attacker with more
// addresses than maxLimiterKeys gains a fresh burst per forgotten address,
// which the server's total caps (MaxDevices, MaxTotalChannels) still
// bound. Freeing a sixteenth at a time keeps the scan of the map to one
// per sixteenth of it new addresses: freeing one would scan the whole map,
// under the lock every hello takes, for each new address of an attacker
// who owns many (an IPv6 /48 holds 65,536 /64s).
type keyedLimiter struct {
	every rate.Limit
	burst int
	max   int

	mu     sync.Mutex
	m      map[string]*rate.Limiter
	sweeps int // evict's scans of the map (tests)
}

// newKeyedLimiter returns a limiter of perMinute events per minute with
// bursts of burst per key; nil (no limit) when perMinute is negative.
func newKeyedLimiter(perMinute float64, burst int) *keyedLimiter {
	if perMinute < 0 {
		return nil
	}
	return &keyedLimiter{every: rate.Limit(perMinute / 60), burst: max(burst, 1), max: maxLimiterKeys,
		m: make(map[string]*rate.Limiter)}
}

// allow takes one event for key at now. When refused, wait is how long
// until the next event would be allowed.
func (k *keyedLimiter) allow(key string, now time.Time) (ok bool, wait time.Duration) {
	if k == nil || key == "" {
		return true, 0
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	l := k.m[key]
	if l == nil {
		if len(k.m) >= k.max {
			k.evict(now)
		}
		l = rate.NewLimiter(k.every, k.burst)
		k.m[key] = l
	}
	r := l.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Hour // cannot happen: burst >= 1
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// evict forgets the full buckets, then arbitrary ones until a sixteenth
// of the map (at least one key) is free. k.mu is held.
func (k *keyedLimiter) evict(now time.Time) {
	k.sweeps++
	for key, l := range k.m {
		if l.TokensAt(now) >= float64(k.burst) {
			delete(k.m, key)
		}
	}
	keep := k.max - max(k.max/16, 1)
	for key := range k.m {
		if len(k.m) <= keep {
			return
		}
		delete(k.m, key)
	}
}

// size is how many keys the limiter remembers (tests).
func (k *keyedLimiter) size() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.m)
}

// limitKey is the key of an address in the per-address limits: an IPv4
// address itself, an IPv6 address's /64 (one subscriber usually has a
// whole /64, so counting its addresses apart would multiply the limits by
// 2^64).
func limitKey(a netip.Addr) string {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// ParseTrustedProxies reads a list of addresses and CIDR prefixes
// (comma-separated or given one by one) for Config.TrustedProxies.
func ParseTrustedProxies(items ...string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range items {
		for _, s := range strings.Split(item, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			if strings.Contains(s, "/") {
				p, err := netip.ParsePrefix(s)
				if err != nil {
					return nil, fmt.Errorf("trusted proxy %q: %w", s, err)
				}
				out = append(out, p.Masked())
				continue
			}
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q: want an address or a CIDR prefix: %w", s, err)
			}
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return out, nil
}

// trusted reports whether a is one of the trusted proxies.
func trusted(a netip.Addr, proxies []netip.Prefix) bool {
	a = a.Unmap()
	for _, p := range proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientAddr is the address a request comes from, for the per-address
// limits. The peer's address, unless the peer is a trusted proxy: then the
// forwarding header (X-Forwarded-For, or Forwarded) is read from the right
// (the hop the nearest proxy added) and the first hop that is not itself
// a trusted proxy is the client ("rightmost untrusted"). Hops left of it
// were written by the client and are not believed. A hop that does not
// parse ends the walk: the last address believed is used. ok is false when
// the peer's address cannot be read.
func clientAddr(r *http.Request, proxies []netip.Prefix, header string) (a netip.Addr, ok bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err = netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	a = a.Unmap().WithZone("")
	if len(proxies) == 0 || !trusted(a, proxies) {
		return a, true
	}
	var hops []string
	if strings.EqualFold(header, "Forwarded") {
		hops = forwardedFor(r.Header.Values("Forwarded"))
	} else {
		for _, v := range r.Header.Values(header) {
			hops = append(hops, strings.Split(v, ",")...)
		}
	}
	for i := len(hops) - 1; i >= 0; i-- {
		h, ok := parseHop(hops[i])
		if !ok {
			break
		}
		a = h
		if !trusted(h, proxies) {
			break
		}
	}
	return a, true
}

// forwardedFor returns the for= parameters of Forwarded header values
// (RFC 7239), in order; an element without one gives "".
func forwardedFor(values []string) []string {
	var out []string
	for _, v := range values {
		for _, elem := range strings.Split(v, ",") {
			f := ""
			for _, pair := range strings.Split(elem, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if ok && strings.EqualFold(k, "for") {
					f = val
				}
			}
			out = append(out, f)
		}
	}
	return out
}

// parseHop reads one hop of a forwarding header: an address, maybe quoted,
// maybe bracketed, maybe with a port.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.Trim(strings.TrimSpace(s), `"`)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil {
			return a.Unmap().WithZone(""), true
		}
	}
	return netip.Addr{}, false
}

// rateLimited is a refusal by a per-address rate limit.
type rateLimited struct {
	what string        // "new devices", "channel opens"
	wait time.Duration // until the next one is allowed
}

func (e *rateLimited) Error() string {
	return fmt.Sprintf("too many %s from this address; retry in %v", e.what, e.wait.Round(time.Second)+time.Second)
}
