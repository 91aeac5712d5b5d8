package images_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/openmpns/openmpns/emulator/images"
)

// localService is a service on loopback that a sender must not reach
// through the phone; it counts the requests it gets.
func localService(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write(encodePNG(t, 4, 4)) // even an image must not come through
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func hostPort(u string) string { return strings.TrimPrefix(u, "http://") }

// TestSenderCannotAimThePhoneAtLocalServices plays a sender who knows a
// Channel URI of an app that allows images from its backend on loopback
// (as the demo's Photos app does) and names other local services in tile
// updates: another port of the allowed address, and host names that
// resolve to loopback. None of them may get a request.
func TestSenderCannotAimThePhoneAtLocalServices(t *testing.T) {
	backend := newServer(t, nil) // the app's own image server on 127.0.0.1
	victim, hits := localService(t)
	_, victimPort, _ := strings.Cut(hostPort(victim.URL), ":")
	_, backendPort, _ := strings.Cut(hostPort(backend.URL), ":")
	appDomains := []string{hostPort(backend.URL)} // "127.0.0.1:PORT", as {backend} resolves

	tests := []struct {
		name    string
		ref     string
		domains []string
		want    error
	}{
		{"another port of the allowed address", victim.URL + "/admin", appDomains, images.ErrDomainNotAllowed},
		{"a name that resolves to loopback", "http://localhost:" + victimPort + "/admin", []string{"localhost"}, images.ErrAddressNotAllowed},
		{"a name whose address is allowed only on another port", "http://localhost:" + victimPort + "/admin", []string{"localhost", hostPort(backend.URL)}, images.ErrAddressNotAllowed},
		{"a subdomain entry that resolves to loopback", "http://localhost:" + victimPort + "/admin", []string{"*.localhost", "localhost:" + victimPort}, images.ErrAddressNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := images.NewLoader(images.Config{CacheEntries: -1})
			_, err := l.Fetch(context.Background(), tt.ref, tt.domains, nil)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Fetch %s with %q: %v, want %v", tt.ref, tt.domains, err, tt.want)
			}
			t.Logf("error: %v", err)
		})
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the local service got %d requests through the phone", n)
	}

	// The demo keeps working: the entry names the address and port.
	l := images.NewLoader(images.Config{CacheEntries: -1})
	if _, err := l.Fetch(context.Background(), backend.URL+"/img.png", appDomains, nil); err != nil {
		t.Fatalf("the app's own loopback backend: %v", err)
	}
	// So does a name for it, when the address it resolves to is allowed
	// literally with its port.
	if _, err := l.Fetch(context.Background(), "http://localhost:"+backendPort+"/img.png", []string{"localhost:" + backendPort, "127.0.0.1:" + backendPort, "[::1]:" + backendPort}, nil); err != nil {
		t.Fatalf("localhost with its address allowed: %v", err)
	}
}

// TestDialGuardWithCallersClient: a Config.Client with an http.Transport
// of the caller's gets the same guard.
func TestDialGuardWithCallersClient(t *testing.T) {
	victim, hits := localService(t)
	_, port, _ := strings.Cut(hostPort(victim.URL), ":")
	l := images.NewLoader(images.Config{Client: &http.Client{Transport: &http.Transport{}}})
	if _, err := l.Fetch(context.Background(), "http://localhost:"+port+"/x", []string{"localhost"}, nil); !errors.Is(err, images.ErrAddressNotAllowed) {
		t.Fatalf("err %v, want ErrAddressNotAllowed", err)
	}
	if hits.Load() != 0 {
		t.Fatal("the local service was reached")
	}
}

func writeFile(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// png16 is a real 16-bit RGBA PNG of w×h pixels in one colour: a few KB
// that decode to w×h×8 bytes.
func png16(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewNRGBA64(image.Rect(0, 0, w, h))
	c := color.NRGBA64{R: 0x1234, G: 0x5678, B: 0x9abc, A: 0xffff}
	for y := range h {
		for x := range w {
			img.SetNRGBA64(x, y, c)
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestLocalImagesHaveTheLimitsOfRemoteOnes names files an app ships (real
// files on disk) in tile updates: each limit a download has must hold for
// them too, by content, not by name.
func TestLocalImagesHaveTheLimitsOfRemoteOnes(t *testing.T) {
	dir := t.TempDir()
	ok := encodePNG(t, 32, 16)
	writeFile(t, dir, "ok.png", ok)
	writeFile(t, dir, "ok.jpg", encodeJPEG(t))
	writeFile(t, dir, "notes.txt", []byte("not an image at all\n"))
	writeFile(t, dir, "text.png", []byte("a text file named .png\n"))
	writeFile(t, dir, "anim.gif", encodeGIF(t))
	writeFile(t, dir, "big.png", padded(ok, maxBytes+1))
	writeFile(t, dir, "bomb.png", hugePNG())
	deep := png16(t, 2048, 2048) // at the pixel limit, 32 MiB decoded
	if len(deep) > maxBytes {
		t.Fatalf("the 16-bit PNG is %d bytes; the test wants it under the byte limit", len(deep))
	}
	writeFile(t, dir, "deep.png", deep)
	writeFile(t, dir, "shallow16.png", png16(t, 1024, 1024)) // 8 MiB decoded: fine
	if err := os.Mkdir(filepath.Join(dir, "dir.png"), 0o755); err != nil {
		t.Fatal(err)
	}
	local := os.DirFS(dir)

	tests := []struct {
		ref  string
		want error // nil: accepted
	}{
		{"ok.png", nil},
		{"/ok.jpg", nil},
		{"shallow16.png", nil},
		{"notes.txt", images.ErrNotImage},
		{"text.png", images.ErrNotImage},
		{"anim.gif", images.ErrNotImage},
		{"dir.png", images.ErrNotImage},
		{"big.png", images.ErrTooLarge},
		{"bomb.png", images.ErrTooLarge},
		{"deep.png", images.ErrTooLarge},
	}
	l := images.NewLoader(images.Config{})
	src := l.Source(local, nil)
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			for name, read := range map[string]func() error{
				"Fetch":  func() error { _, err := l.Fetch(context.Background(), tt.ref, nil, local); return err },
				"Source": func() error { _, err := src.Image(tt.ref); return err },
			} {
				err := read()
				if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
					t.Errorf("%s: %v, want %v", name, err, tt.want)
				}
			}
		})
	}
}

// TestDecodedSizeCountsDepth: a 16-bit PNG within the byte and pixel
// limits is refused for the memory it takes decoded, remote as local.
func TestDecodedSizeCountsDepth(t *testing.T) {
	deep := png16(t, 2048, 2048)
	srv := newServer(t, map[string]http.HandlerFunc{"/deep.png": bytesHandler(deep, true)})
	_, err := images.NewLoader(images.Config{}).Fetch(context.Background(), srv.URL+"/deep.png", []string{"127.0.0.1"}, nil)
	if !errors.Is(err, images.ErrTooLarge) {
		t.Fatalf("err %v, want ErrTooLarge", err)
	}
	t.Logf("error: %v", err)
}

// TestProgressiveJPEGBombs: a JPEG of a few kilobytes that passes the byte
// and pixel limits is refused when it has more scans than an encoder
// writes (each one decodes the whole image again), or when the
// coefficients a progressive decode keeps for every block would take more
// than the decoded-size limit; a modest progressive JPEG is accepted.
func TestProgressiveJPEGBombs(t *testing.T) {
	small := images.ProgressiveJPEG(64, 9)
	if _, _, err := image.Decode(bytes.NewReader(small)); err != nil {
		t.Fatalf("the builder's JPEG does not decode: %v", err)
	}
	tests := []struct {
		name string
		data []byte
		want error // nil: accepted
		says string
	}{
		{"progressive, 64×64, 10 scans", small, nil, ""},
		{"progressive, 1024×1024, 64 scans", images.ProgressiveJPEG(1024, 63), nil, ""},
		{"progressive, 512×512, 1,000 scans", images.ProgressiveJPEG(512, 999), images.ErrTooLarge, "scans"},
		{"progressive, 64×64, 65 scans", images.ProgressiveJPEG(64, 64), images.ErrTooLarge, "scans"},
		// Go's decoder skips "\xff\x00" between segments as extraneous:
		// a walker that took it for a marker would read "\xff\xc2" as a
		// length and skip the frame and every scan behind it.
		{"1,000 scans behind a stray FF 00", hideBehindFF00(images.ProgressiveJPEG(512, 999)), images.ErrTooLarge, "scans"},
		{"progressive, 2048×2048, 2 scans", images.ProgressiveJPEG(2048, 1), images.ErrTooLarge, "bytes decoded"},
	}
	dir := t.TempDir()
	for i, tt := range tests {
		if len(tt.data) > maxBytes {
			t.Fatalf("%s: %d bytes, over the byte limit the test means to pass", tt.name, len(tt.data))
		}
		writeFile(t, dir, fmt.Sprintf("p%d.jpg", i), tt.data)
	}
	routes := map[string]http.HandlerFunc{}
	for i, tt := range tests[2:] {
		routes[fmt.Sprintf("/p%d.jpg", i+2)] = bytesHandler(tt.data, true)
	}
	srv := newServer(t, routes)
	l := images.NewLoader(images.Config{CacheEntries: -1})
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := l.Fetch(context.Background(), fmt.Sprintf("p%d.jpg", i), nil, os.DirFS(dir))
			if tt.want == nil && err != nil || tt.want != nil && (!errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.says)) {
				t.Fatalf("local: %v, want %v (%q)", err, tt.want, tt.says)
			}
			if i >= 2 {
				_, err := l.Fetch(context.Background(), srv.URL+fmt.Sprintf("/p%d.jpg", i), []string{"127.0.0.1"}, nil)
				if !errors.Is(err, tt.want) {
					t.Fatalf("remote: %v, want %v", err, tt.want)
				}
			}
		})
	}
}

// hideBehindFF00 puts "\xff\x00" between a JPEG's start of image and its
// first segment, which Go's decoder skips.
func hideBehindFF00(jpg []byte) []byte {
	return append([]byte{0xFF, 0xD8, 0xFF, 0x00}, jpg[2:]...)
}
