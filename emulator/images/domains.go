package images

import (
	"net"
	"net/url"
	"strings"
)

// Allowed reports whether the host of the http(s) URL ref is one of
// domains, or a subdomain of one: "cdn.example.com" is allowed by
// "example.com", "badexample.com" is not. Ports and case are ignored, on
// both sides. An IP address matches only itself. Domain entries may be
// written as hosts ("example.com"), with a port, or as URLs
// ("http://example.com/", as apps pass them to BindToShellTile); a leading
// "*." is the same as none.
func Allowed(ref string, domains []string) bool {
	u, err := url.Parse(ref)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	return hostAllowed(normHost(u.Hostname()), domains)
}

// hostAllowed reports whether the normalised host matches a domain.
func hostAllowed(host string, domains []string) bool {
	if host == "" {
		return false
	}
	isIP := net.ParseIP(host) != nil
	for _, d := range domains {
		d = normDomain(d)
		if d == "" {
			continue
		}
		if host == d || !isIP && net.ParseIP(d) == nil && strings.HasSuffix(host, "."+d) {
			return true
		}
	}
	return false
}

// normHost lower-cases a host name and drops a trailing dot.
func normHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// normDomain reduces an allowed-domain entry to a bare, lower-case host.
func normDomain(d string) string {
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
	switch {
	case strings.HasPrefix(d, "["):
		// [IPv6] or [IPv6]:port
		if i := strings.IndexByte(d, ']'); i >= 0 {
			d = d[1:i]
		}
	case strings.Count(d, ":") == 1:
		d = d[:strings.IndexByte(d, ':')]
	}
	d = strings.TrimPrefix(d, "*.")
	return normHost(d)
}
