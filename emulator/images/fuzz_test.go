package images

import (
	"bytes"
	"image"
	"image/jpeg"
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

// FuzzJPEGLayout: jpegLayout never panics, stops counting scans soon past
// maxJPEGScans, and accepts every JPEG Go's decoder decodes (it may only
// refuse what could not be decoded anyway).
func FuzzJPEGLayout(f *testing.F) {
	var baseline bytes.Buffer
	if err := jpeg.Encode(&baseline, image.NewGray(image.Rect(0, 0, 24, 16)), nil); err != nil {
		f.Fatal(err)
	}
	f.Add(baseline.Bytes())
	f.Add(progressiveJPEGForFuzz())
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xD9})
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _, scans, err := jpegLayout(data)
		if scans > maxJPEGScans+1 {
			t.Fatalf("counted %d scans, past %d", scans, maxJPEGScans+1)
		}
		if _, derr := jpeg.Decode(bytes.NewReader(data)); derr == nil && err != nil {
			t.Fatalf("Go decodes it, jpegLayout refuses it: %v", err)
		}
	})
}

// progressiveJPEGForFuzz is a 16×16 greyscale progressive JPEG of three
// scans (the seed of FuzzJPEGLayout; fetchguard_test.go builds larger
// ones).
func progressiveJPEGForFuzz() []byte {
	return []byte{
		0xFF, 0xD8,
		0xFF, 0xC2, 0, 11, 8, 0, 16, 0, 16, 1, 1, 0x11, 0,
		0xFF, 0xDB, 0, 67, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
		1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
		0xFF, 0xC4, 0, 40, 0x00, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xE0,
		0xFF, 0xDA, 0, 8, 1, 1, 0x00, 0, 0, 0, 0x0F,
		0xFF, 0xDA, 0, 8, 1, 1, 0x00, 1, 63, 0, 0x7F, 0xFF, 0x00,
		0xFF, 0xDA, 0, 8, 1, 1, 0x00, 1, 63, 0, 0x7F, 0xFF, 0x00,
		0xFF, 0xD9,
	}
}
