package images

import (
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

// FuzzAllowed: whatever the allowed entry and the URL, an allowed URL's
// host is the entry's host or a subdomain of it (never for an IP), and its
// port is the entry's when the entry names one; an address allowed by
// literalAllowed is the one the entry names.
func FuzzAllowed(f *testing.F) {
	f.Add("http://127.0.0.1:8090/a.png", "127.0.0.1:8090")
	f.Add("http://127.0.0.1:8091/a.png", "127.0.0.1:8090")
	f.Add("https://cdn.example.com/a.png", "https://example.com:443/images")
	f.Add("http://[::1]:8080/a.png", "[::1]:8080")
	f.Add("http://localhost:22/", "*.localhost")
	f.Add("http://example.com:0080/", "example.com:80")
	f.Add("http://u@10.0.0.1/", "http://x@10.0.0.1:80/")
	f.Fuzz(func(t *testing.T, ref, entry string) {
		d := parseDomain(entry)
		if Allowed(ref, []string{entry}) {
			u, err := url.Parse(ref)
			if err != nil {
				t.Fatalf("allowed unparsable %q", ref)
			}
			e := endpointOf(u)
			if e.host != d.host && !strings.HasSuffix(e.host, "."+d.host) {
				t.Fatalf("%q allowed by %q: host %q, entry %q", ref, entry, e.host, d.host)
			}
			if d.port != "" && e.port != d.port {
				t.Fatalf("%q allowed by %q: port %q, entry's %q", ref, entry, e.port, d.port)
			}
			if _, err := netip.ParseAddr(e.host); err == nil && e.host != d.host {
				t.Fatalf("IP %q allowed by %q as a subdomain", e.host, entry)
			}
		}
		if a, err := netip.ParseAddr(strings.Trim(ref, "[]")); err == nil && literalAllowed(a, "80", []string{entry}) {
			ip, err := netip.ParseAddr(d.host)
			if err != nil || ip.Unmap().WithZone("") != a.Unmap().WithZone("") {
				t.Fatalf("address %v allowed by %q", a, entry)
			}
		}
	})
}
