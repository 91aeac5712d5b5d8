package images

import (
	"bytes"
	"image"
	"image/color"
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
	f.Add(ProgressiveJPEG(16, 2))
	for _, seed := range [][]byte{baseline.Bytes(), ProgressiveJPEG(16, 2)} {
		if _, err := jpeg.Decode(bytes.NewReader(seed)); err != nil {
			f.Fatalf("a seed does not decode: %v", err)
		}
	}
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xD9})
	f.Fuzz(func(t *testing.T, data []byte) {
		_, components, scans, err := jpegLayout(data)
		if scans > maxJPEGScans+1 {
			t.Fatalf("counted %d scans, past %d", scans, maxJPEGScans+1)
		}
		cfg, cerr := jpeg.DecodeConfig(bytes.NewReader(data))
		if cerr != nil || cfg.Width*cfg.Height > 1<<20 {
			return // what Go would decode at once is what is compared, at a size the fuzzer can hold
		}
		if _, derr := jpeg.Decode(bytes.NewReader(data)); derr == nil {
			if err != nil {
				t.Fatalf("Go decodes it, jpegLayout refuses it: %v", err)
			}
			want := map[color.Model]int{color.GrayModel: 1, color.YCbCrModel: 3, color.CMYKModel: 4}[cfg.ColorModel]
			if want != 0 && components != want {
				t.Fatalf("jpegLayout found %d components, Go's decoder a %v image", components, cfg.ColorModel)
			}
		}
	})
}

// ProgressiveJPEG is a valid greyscale progressive JPEG of size×size
// pixels (size a multiple of 8): a DC scan of zero differences, then scans
// of the AC coefficients that are end-of-band runs over every block, as
// many as scans asks. Each costs the decoder a pass over the whole image
// for a few bytes of file.
func ProgressiveJPEG(size, scans int) []byte {
	var b bytes.Buffer
	segment := func(marker byte, body ...byte) {
		b.Write([]byte{0xFF, marker, byte((len(body) + 2) >> 8), byte(len(body) + 2)})
		b.Write(body)
	}
	b.Write([]byte{0xFF, 0xD8})
	segment(0xDB, append([]byte{0}, bytes.Repeat([]byte{1}, 64)...)...) // quantisation: all 1
	segment(0xC2, 8, byte(size>>8), byte(size), byte(size>>8), byte(size), 1, 1, 0x11, 0)
	// Huffman tables: DC class 0 and AC class 1, one code "0" each, for a
	// zero difference and for an end-of-band run with 14 more bits.
	dc := append(append([]byte{0x00, 1}, make([]byte, 15)...), 0)
	ac := append(append([]byte{0x10, 1}, make([]byte, 15)...), 0xE0)
	segment(0xC4, append(dc, ac...)...)
	blocks := (size / 8) * (size / 8)
	segment(0xDA, 1, 1, 0x00, 0, 0, 0)
	b.Write(make([]byte, (blocks+7)/8)) // a "0" per block
	for range scans {
		segment(0xDA, 1, 1, 0x00, 1, 63, 0)
		var bits []byte // runs of 2^14 + 16383 blocks: "0" then fourteen "1"
		for covered := 0; covered < blocks; covered += 32767 {
			bits = append(bits, '0')
			bits = append(bits, bytes.Repeat([]byte{'1'}, 14)...)
		}
		for len(bits)%8 != 0 {
			bits = append(bits, '1')
		}
		for i := 0; i < len(bits); i += 8 {
			var v byte
			for _, c := range bits[i : i+8] {
				v = v<<1 | (c - '0')
			}
			b.WriteByte(v)
			if v == 0xFF {
				b.WriteByte(0) // stuffed
			}
		}
	}
	b.Write([]byte{0xFF, 0xD9})
	return b.Bytes()
}
