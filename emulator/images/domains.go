package images

import (
	"net"
	"net/netip"
	"net/url"
	"strings"
)

// Allowed reports whether the host and port of the http(s) URL ref are
// allowed by domains: its host is one of them, or a subdomain of one
// ("cdn.example.com" is allowed by "example.com", "badexample.com" is
// not), and, when that entry names a port, the URL's port (80 or 443 when
// it names none) is that one. Case is ignored. An IP address matches only
// itself. Entries may be written as hosts ("example.com"), with a port
// ("127.0.0.1:8090", "[::1]:8090"), or as URLs ("http://example.com/", as
// apps pass them to BindToShellTile: a URL's port counts only when it is
// written); a leading "*." is the same as none. An internationalised
// domain is allowed in its punycode form (xn--...) only.
//
// Allowed looks at names only: a download also refuses, when it connects,
// an address that is loopback, private or link-local unless an entry
// names that address literally (see Loader).
func Allowed(ref string, domains []string) bool {
	u, err := url.Parse(ref)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	return endpointAllowed(endpointOf(u), domains)
}

// endpoint is a normalised host and port: the port is explicit in a URL's
// endpoint, and "" (any port) in a domain entry that names none.
type endpoint struct {
	host, port string
}

// endpointOf returns the endpoint a URL connects to. A host name outside
// ASCII gets no host, which no entry allows: net/http connects to its
// punycode form (xn--...), which lower-casing does not give ("wİki.com"
// lower-cases to "wiki.com" but connects to "xn--wiki-rwc.com"), so an
// internationalised name is allowed only as its xn-- form, in the entry
// and the URL alike.
func endpointOf(u *url.URL) endpoint {
	port := u.Port()
	if port == "" {
		port = defaultPort(u.Scheme)
	}
	host := u.Hostname()
	for i := 0; i < len(host); i++ {
		if host[i] >= 0x80 {
			return endpoint{port: normPort(port)}
		}
	}
	return endpoint{host: normHost(host), port: normPort(port)}
}

func defaultPort(scheme string) string {
	if strings.EqualFold(scheme, "https") {
		return "443"
	}
	return "80"
}

// endpointAllowed reports whether the endpoint e matches an entry of domains.
func endpointAllowed(e endpoint, domains []string) bool {
	if e.host == "" {
		return false
	}
	isIP := net.ParseIP(e.host) != nil
	for _, raw := range domains {
		d := parseDomain(raw)
		if d.host == "" || d.port != "" && d.port != e.port {
			continue
		}
		if e.host == d.host || !isIP && net.ParseIP(d.host) == nil && strings.HasSuffix(e.host, "."+d.host) {
			return true
		}
	}
	return false
}

// normHost lower-cases a host name and drops a trailing dot.
func normHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// normPort drops a port's leading zeros.
func normPort(p string) string {
	if t := strings.TrimLeft(p, "0"); t != "" || p == "" {
		return t
	}
	return "0"
}

// normDomain reduces an allowed-domain entry to a bare, lower-case host.
func normDomain(d string) string { return parseDomain(d).host }

// parseDomain reduces an allowed-domain entry to a lower-case host and the
// port it names ("" for none).
func parseDomain(d string) endpoint {
	d = strings.TrimSpace(d)
	if i := strings.Index(d, "://"); i >= 0 {
		d = d[i+3:]
	}
	if i := strings.IndexAny(d, "/?#"); i >= 0 {
		d = d[:i]
	}
	if i := strings.LastIndexByte(d, '@'); i >= 0 {
		d = d[i+1:]
	}
	var port string
	switch {
	case strings.HasPrefix(d, "["):
		// [IPv6] or [IPv6]:port
		if i := strings.IndexByte(d, ']'); i >= 0 {
			if rest := d[i+1:]; strings.HasPrefix(rest, ":") {
				port = rest[1:]
			}
			d = d[1:i]
		}
	case strings.Count(d, ":") == 1:
		i := strings.IndexByte(d, ':')
		d, port = d[:i], d[i+1:]
	}
	d = strings.TrimPrefix(d, "*.")
	return endpoint{host: normHost(d), port: normPort(port)}
}

// literalAllowed reports whether an entry of domains names the address a
// literally, with no port or with port.
func literalAllowed(a netip.Addr, port string, domains []string) bool {
	a = a.Unmap().WithZone("")
	for _, raw := range domains {
		d := parseDomain(raw)
		ip, err := netip.ParseAddr(d.host)
		if err != nil || ip.Unmap().WithZone("") != a {
			continue
		}
		if d.port == "" || d.port == normPort(port) {
			return true
		}
	}
	return false
}

// nonPublic are address ranges that are neither loopback, private nor
// link-local by netip's methods, yet reach no public service: "this
// network", shared address space (carrier-grade NAT), IETF protocol
// assignments, benchmarking, reserved and broadcast, and IPv6's
// discard, documentation and deprecated site-local ranges.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("100::/64"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("fec0::/10"),
}

// nat64 is the well-known NAT64 prefix, whose addresses stand for the IPv4
// address in their last 32 bits.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// publicAddr reports whether a is an address a phone may reach on the
// internet: not loopback, private (RFC 1918, fc00::/7), link-local,
// unspecified, multicast or another non-public range, also when written
// as an IPv4-mapped or NAT64 IPv6 address.
func publicAddr(a netip.Addr) bool {
	a = a.Unmap()
	if a.Is6() && nat64.Contains(a) {
		b := a.As16()
		a = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	switch {
	case !a.IsValid(), a.IsUnspecified(), a.IsLoopback(), a.IsPrivate(),
		a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast(), a.IsInterfaceLocalMulticast(), a.IsMulticast():
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}
