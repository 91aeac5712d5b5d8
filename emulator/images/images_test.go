package images_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/openmpns/openmpns/emulator/images"
	"github.com/openmpns/openmpns/emulator/ui/tileview"
)

const maxBytes = images.DefaultMaxBytes

func encodePNG(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func encodeJPEG(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, image.NewGray(image.Rect(0, 0, 64, 32)), nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func encodeGIF(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	img := image.NewPaletted(image.Rect(0, 0, 8, 8), color.Palette{color.Black, color.White})
	if err := gif.Encode(&buf, img, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// padded returns a copy of data grown to n bytes with zeros; PNG and JPEG
// decoders stop at their end marker, so it still decodes.
func padded(data []byte, n int) []byte {
	out := make([]byte, n)
	copy(out, data)
	return out
}

// hugePNG is a PNG whose header claims 100000×100000 pixels: a few dozen
// bytes that would decode to 40 GB.
func hugePNG() []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		binary.Write(&b, binary.BigEndian, uint32(len(data)))
		crc := crc32.NewIEEE()
		crc.Write([]byte(typ))
		crc.Write(data)
		b.WriteString(typ)
		b.Write(data)
		binary.Write(&b, binary.BigEndian, crc.Sum32())
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], 100000)
	binary.BigEndian.PutUint32(ihdr[4:], 100000)
	ihdr[8], ihdr[9] = 8, 6 // 8-bit RGBA
	chunk("IHDR", ihdr)
	chunk("IEND", nil)
	return b.Bytes()
}

// server is a loopback image server that counts the requests per path.
type server struct {
	*httptest.Server
	mu     sync.Mutex
	counts map[string]int
}

func (s *server) count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[path]
}

func (s *server) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.counts {
		n += c
	}
	return n
}

// newServer serves routes (path to handler) on 127.0.0.1, plus the fixed
// images every test uses.
func newServer(t *testing.T, routes map[string]http.HandlerFunc) *server {
	t.Helper()
	s := &server{counts: map[string]int{}}
	pngData := encodePNG(t, 32, 16)
	fixed := map[string]http.HandlerFunc{
		"/img.png":  bytesHandler(pngData, true),
		"/img2.png": bytesHandler(encodePNG(t, 16, 16), true),
		"/img3.png": bytesHandler(encodePNG(t, 8, 8), true),
		"/big.png":  bytesHandler(padded(pngData, 40<<10), true),
	}
	mux := http.NewServeMux()
	for _, m := range []map[string]http.HandlerFunc{fixed, routes} {
		for path, h := range m {
			mux.HandleFunc(path, h)
		}
	}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.counts[r.URL.Path]++
		s.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		// Unblock handlers still waiting for a client that gave up.
		s.CloseClientConnections()
		s.Close()
	})
	return s
}

// bytesHandler serves data, with a Content-Length if withLength, and
// otherwise chunked.
func bytesHandler(data []byte, withLength bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if withLength {
			w.Header().Set("Content-Length", strconv.Itoa(len(data)))
			w.Write(data)
			return
		}
		half := len(data) / 2
		w.Write(data[:half])
		w.(http.Flusher).Flush() // headers go out without a Content-Length
		w.Write(data[half:])
	}
}

func TestFetch(t *testing.T) {
	pngData := encodePNG(t, 32, 16)
	endless := func(w http.ResponseWriter, r *http.Request) {
		chunk := padded(pngData, 4096)
		for {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			chunk = make([]byte, 4096)
		}
	}
	srv := newServer(t, map[string]http.HandlerFunc{
		"/a.jpg":         bytesHandler(encodeJPEG(t), true),
		"/exact.png":     bytesHandler(padded(pngData, maxBytes), true),
		"/exact-chunked": bytesHandler(padded(pngData, maxBytes), false),
		"/over.png":      bytesHandler(padded(pngData, maxBytes+1), true),
		"/over-chunked":  bytesHandler(padded(pngData, maxBytes+1), false),
		"/endless":       endless,
		"/page.html":     bytesHandler([]byte("<html><body>not an image</body></html>"), true),
		"/a.gif":         bytesHandler(encodeGIF(t), true),
		"/truncated.png": bytesHandler(pngData[:len(pngData)/2], true),
		"/huge.png":      bytesHandler(hugePNG(), true),
		"/gone.png":      http.NotFound,
		"/hop":           http.RedirectHandler("/img.png", http.StatusFound).ServeHTTP,
		"/hop-away": func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, localhost(t, r, "/img.png"), http.StatusFound)
		},
		"/hop-ftp":        http.RedirectHandler("ftp://127.0.0.1/x.png", http.StatusFound).ServeHTTP,
		"/hop-idn":        http.RedirectHandler("http://w%C4%B0ki.com/a.png", http.StatusFound).ServeHTTP,
		"/redirect-loop/": func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, r.URL.Path+"x", http.StatusFound) },
	})
	closed := closedAddr(t)
	local := fstest.MapFS{"Assets/a.png": {Data: pngData}}
	here := []string{"127.0.0.1"}

	tests := []struct {
		name     string
		ref      string
		domains  []string
		want     error // nil: success; errAny: any error
		requests int   // requests the server should see for the path; -1: don't check
	}{
		{"png", srv.URL + "/img.png", here, nil, 1},
		{"jpeg", srv.URL + "/a.jpg", here, nil, 1},
		{"scheme in capitals", strings.Replace(srv.URL, "http", "HTTP", 1) + "/img2.png", here, nil, 1},
		{"an entry's port must match", srv.URL + "/img3.png", []string{"example.com", "127.0.0.1:9"}, images.ErrDomainNotAllowed, 0},
		{"an entry with the port", srv.URL + "/img3.png", []string{"example.com", strings.TrimPrefix(srv.URL, "http://")}, nil, 1},
		{"exactly 80 KB", srv.URL + "/exact.png", here, nil, 1},
		{"exactly 80 KB chunked", srv.URL + "/exact-chunked", here, nil, 1},
		{"80 KB + 1 by Content-Length", srv.URL + "/over.png", here, images.ErrTooLarge, 1},
		{"80 KB + 1 chunked", srv.URL + "/over-chunked", here, images.ErrTooLarge, 1},
		{"endless body is cut off", srv.URL + "/endless", here, images.ErrTooLarge, 1},
		{"HTML", srv.URL + "/page.html", here, images.ErrNotImage, 1},
		{"GIF", srv.URL + "/a.gif", here, images.ErrNotImage, 1},
		{"truncated PNG", srv.URL + "/truncated.png", here, images.ErrNotImage, 1},
		{"decompression bomb", srv.URL + "/huge.png", here, images.ErrTooLarge, 1},
		{"not found", srv.URL + "/gone.png", here, images.ErrBadStatus, 1},
		{"redirect inside the domain", srv.URL + "/hop", here, nil, 1},
		{"redirect out of the domains", srv.URL + "/hop-away", here, images.ErrDomainNotAllowed, 1},
		{"redirect to another scheme", srv.URL + "/hop-ftp", here, images.ErrBadURL, 1},
		{"redirect to a Unicode name an ASCII entry seems to allow", srv.URL + "/hop-idn", []string{"127.0.0.1", "wiki.com"}, images.ErrDomainNotAllowed, 1},
		{"redirect loop", srv.URL + "/redirect-loop/", here, errAny, 1},
		{"domain not allowed", srv.URL + "/img.png", []string{"example.com"}, images.ErrDomainNotAllowed, 0},
		{"suffix is not a subdomain", srv.URL + "/img.png", []string{"0.0.1"}, images.ErrDomainNotAllowed, 0},
		{"no domains", srv.URL + "/img.png", nil, images.ErrDomainNotAllowed, 0},
		{"no host", "http:///img.png", here, images.ErrBadURL, -1},
		{"unparsable", "http://[::1/img.png", here, images.ErrBadURL, -1},
		{"connection refused", "http://" + closed + "/img.png", here, errAny, -1},
		{"local", "/Assets/a.png", nil, nil, -1},
		{"local missing", "/Assets/b.png", nil, fs.ErrNotExist, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := images.NewLoader(images.Config{CacheEntries: -1})
			path := pathOf(tt.ref)
			before := srv.count(path)
			res, err := l.Fetch(context.Background(), tt.ref, tt.domains, local)
			switch {
			case tt.want == nil && err != nil:
				t.Fatalf("Fetch: %v", err)
			case tt.want == nil:
				if res == nil || len(res.Content()) == 0 {
					t.Fatal("no image")
				}
			case err == nil:
				t.Fatalf("Fetch succeeded, want %v", tt.want)
			case tt.want != errAny && !errors.Is(err, tt.want):
				t.Fatalf("Fetch error %v, want %v", err, tt.want)
			}
			if tt.requests >= 0 {
				if got := srv.count(path) - before; got != tt.requests {
					t.Errorf("%d requests for %s, want %d", got, path, tt.requests)
				}
			}
			if err != nil {
				t.Logf("error: %v", err)
			}
		})
	}
}

var errAny = errors.New("any error")

func pathOf(ref string) string {
	if i := strings.Index(ref, "://"); i >= 0 {
		ref = ref[i+3:]
		if j := strings.IndexByte(ref, '/'); j >= 0 {
			return ref[j:]
		}
	}
	return ref
}

// localhost is the URL of path on the server that received r, named
// "localhost" rather than 127.0.0.1.
func localhost(t *testing.T, r *http.Request, path string) string {
	_, port, err := net.SplitHostPort(r.Host)
	if err != nil {
		t.Error(err)
	}
	return "http://localhost:" + port + path
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestFetchResource(t *testing.T) {
	want := encodePNG(t, 32, 16)
	srv := newServer(t, nil)
	res, err := images.NewLoader(images.Config{}).Fetch(context.Background(), srv.URL+"/img.png#frag", []string{"127.0.0.1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Name() != srv.URL+"/img.png" || !bytes.Equal(res.Content(), want) {
		t.Errorf("resource %q, %d bytes; want %q, %d bytes", res.Name(), len(res.Content()), srv.URL+"/img.png", len(want))
	}
}

// blocking returns a handler that blocks until the test ends (or the client
// goes away), after sending headers when headersFirst. Each request is
// announced on arrived, if not nil.
func blocking(t *testing.T, headersFirst bool, arrived chan<- struct{}) http.HandlerFunc {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	return func(w http.ResponseWriter, r *http.Request) {
		if headersFirst {
			w.Header().Set("Content-Length", "100")
			w.WriteHeader(http.StatusOK)
			w.Write([]byte("\x89PNG"))
			w.(http.Flusher).Flush()
		}
		if arrived != nil {
			arrived <- struct{}{}
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}
}

func TestFetchTimeout(t *testing.T) {
	srv := newServer(t, map[string]http.HandlerFunc{
		"/no-answer":     blocking(t, false, nil),
		"/stalled-body":  blocking(t, true, nil),
		"/client-answer": blocking(t, false, nil),
	})
	here := []string{"127.0.0.1"}
	tests := []struct {
		name string
		path string
		cfg  images.Config
	}{
		{"no answer", "/no-answer", images.Config{Timeout: 50 * time.Millisecond}},
		{"stalled body", "/stalled-body", images.Config{Timeout: 50 * time.Millisecond}},
		{"client timeout", "/client-answer", images.Config{Client: &http.Client{Timeout: 50 * time.Millisecond}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := images.NewLoader(tt.cfg).Fetch(context.Background(), srv.URL+tt.path, here, nil)
			if !errors.Is(err, images.ErrTimeout) {
				t.Fatalf("Fetch error %v, want ErrTimeout", err)
			}
			t.Logf("error: %v", err)
		})
	}
}

func TestFetchCallerGivesUp(t *testing.T) {
	arrived := make(chan struct{}, 1)
	srv := newServer(t, map[string]http.HandlerFunc{"/slow": blocking(t, false, arrived)})
	l := images.NewLoader(images.Config{Timeout: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := l.Fetch(ctx, srv.URL+"/slow", []string{"127.0.0.1"}, nil)
		errc <- err
	}()
	<-arrived
	cancel()
	err := <-errc
	if !errors.Is(err, context.Canceled) || errors.Is(err, images.ErrTimeout) {
		t.Errorf("Fetch error %v, want context.Canceled", err)
	}
}

func TestCache(t *testing.T) {
	srv := newServer(t, nil)
	here := []string{"127.0.0.1"}
	ctx := context.Background()
	fetch := func(t *testing.T, l *images.Loader, path string, domains []string) error {
		t.Helper()
		_, err := l.Fetch(ctx, srv.URL+path, domains, nil)
		return err
	}

	t.Run("hit does not refetch", func(t *testing.T) {
		l := images.NewLoader(images.Config{})
		before := srv.count("/img.png")
		for range 3 {
			if err := fetch(t, l, "/img.png", here); err != nil {
				t.Fatal(err)
			}
		}
		if got := srv.count("/img.png") - before; got != 1 {
			t.Errorf("%d requests, want 1", got)
		}
		if _, ok := l.Cached(srv.URL+"/img.png", here); !ok {
			t.Error("Cached: not there")
		}
		if n, size := l.CacheLen(); n != 1 || size == 0 {
			t.Errorf("CacheLen = %d, %d", n, size)
		}
	})

	t.Run("hit still checks the domains", func(t *testing.T) {
		l := images.NewLoader(images.Config{})
		if err := fetch(t, l, "/img.png", here); err != nil {
			t.Fatal(err)
		}
		before := srv.total()
		if err := fetch(t, l, "/img.png", []string{"example.com"}); !errors.Is(err, images.ErrDomainNotAllowed) {
			t.Errorf("err %v, want ErrDomainNotAllowed", err)
		}
		if _, ok := l.Cached(srv.URL+"/img.png", nil); ok {
			t.Error("Cached ignores the domains")
		}
		if srv.total() != before {
			t.Error("a refused fetch made a request")
		}
	})

	t.Run("least recently used goes first", func(t *testing.T) {
		l := images.NewLoader(images.Config{CacheEntries: 2})
		before := srv.total()
		for _, p := range []string{"/img.png", "/img2.png", "/img.png", "/img3.png", "/img.png", "/img2.png"} {
			if err := fetch(t, l, p, here); err != nil {
				t.Fatal(err)
			}
		}
		// img, img2 fetched; img hit; img3 evicts img2; img hit; img2 again.
		if got := srv.total() - before; got != 4 {
			t.Errorf("%d requests, want 4", got)
		}
	})

	t.Run("byte bound", func(t *testing.T) {
		l := images.NewLoader(images.Config{CacheBytes: 30 << 10})
		before := srv.total()
		for range 2 {
			if err := fetch(t, l, "/big.png", here); err != nil {
				t.Fatal(err)
			}
		}
		if got := srv.total() - before; got != 2 {
			t.Errorf("%d requests, want 2: a 40 KB image does not fit a 30 KB cache", got)
		}
	})

	t.Run("disabled", func(t *testing.T) {
		l := images.NewLoader(images.Config{CacheEntries: -1})
		before := srv.total()
		for range 2 {
			if err := fetch(t, l, "/img.png", here); err != nil {
				t.Fatal(err)
			}
		}
		if got := srv.total() - before; got != 2 {
			t.Errorf("%d requests, want 2", got)
		}
	})

	t.Run("failures are not cached", func(t *testing.T) {
		l := images.NewLoader(images.Config{})
		before := srv.total()
		for range 2 {
			if err := fetch(t, l, "/nothing-here.png", here); !errors.Is(err, images.ErrBadStatus) {
				t.Fatalf("err %v", err)
			}
		}
		if got := srv.total() - before; got != 2 {
			t.Errorf("%d requests, want 2", got)
		}
	})
}

func TestCacheRemembersRedirects(t *testing.T) {
	srv := newServer(t, map[string]http.HandlerFunc{
		"/hop-away": func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, localhost(t, r, "/img.png"), http.StatusFound)
		},
	})
	l := images.NewLoader(images.Config{})
	ctx := context.Background()
	if _, err := l.Fetch(ctx, srv.URL+"/hop-away", []string{"127.0.0.1", "localhost"}, nil); err != nil {
		t.Fatal(err)
	}
	// The image came from localhost: an app that allows only 127.0.0.1
	// does not get it from the cache.
	if _, ok := l.Cached(srv.URL+"/hop-away", []string{"127.0.0.1"}); ok {
		t.Error("cached image served past a redirect the domains do not allow")
	}
	if _, err := l.Fetch(ctx, srv.URL+"/hop-away", []string{"127.0.0.1"}, nil); !errors.Is(err, images.ErrDomainNotAllowed) {
		t.Errorf("err %v, want ErrDomainNotAllowed", err)
	}
	if _, ok := l.Cached(srv.URL+"/hop-away", []string{"localhost", "127.0.0.1"}); !ok {
		t.Error("not cached for the domains that fetched it")
	}
}

func TestAllowed(t *testing.T) {
	tests := []struct {
		ref     string
		domains []string
		want    bool
	}{
		{"http://example.com/a.png", []string{"example.com"}, true},
		{"https://EXAMPLE.com:8443/a.png", []string{"Example.COM"}, true},
		{"http://cdn.images.example.com/a.png", []string{"example.com"}, true},
		{"http://example.com./a.png", []string{"example.com"}, true},
		{"http://badexample.com/a.png", []string{"example.com"}, false},
		{"http://example.com.evil.org/a.png", []string{"example.com"}, false},
		{"http://example.com/a.png", []string{"cdn.example.com"}, false},
		{"http://example.com/a.png", []string{"http://example.com/"}, true},
		{"http://a.example.com/a.png", []string{"https://example.com:443/images"}, false},
		{"https://a.example.com/a.png", []string{"https://example.com:443/images"}, true},
		{"http://a.example.com/a.png", []string{"https://example.com/images"}, true},
		{"http://a.example.com/a.png", []string{"*.example.com"}, true},
		{"http://example.com/a.png", []string{"example.com:8080"}, false},
		{"http://example.com:8080/a.png", []string{"example.com:8080"}, true},
		{"http://cdn.example.com:8080/a.png", []string{"example.com:8080"}, true},
		{"http://example.com:80/a.png", []string{"example.com:0080"}, true},
		{"http://127.0.0.1:8091/a.png", []string{"127.0.0.1:8090"}, false},
		{"http://127.0.0.1:8080/a.png", []string{"127.0.0.1"}, true},
		{"http://10.127.0.0.1/a.png", []string{"127.0.0.1"}, false},
		{"http://1.2.3.4/a.png", []string{"2.3.4"}, false},
		{"http://[::1]:80/a.png", []string{"::1"}, true},
		{"http://[::1]/a.png", []string{"[::1]:8080"}, false},
		{"http://[::1]:8080/a.png", []string{"[::1]:8080"}, true},
		{"http://user@example.com/a.png", []string{"example.com"}, true},
		{"http://example.com/a.png", nil, false},
		{"http://example.com/a.png", []string{"", " "}, false},
		{"ftp://example.com/a.png", []string{"example.com"}, false},
		{"/Assets/a.png", []string{"example.com"}, false},
		{"http://[::1/a.png", []string{"::1"}, false},
		// net/http connects to a Unicode name's punycode form, which
		// lower-casing does not give: "wİki.com" is xn--wiki-rwc.com.
		{"http://w\u0130ki.com/a.png", []string{"wiki.com"}, false},
		{"http://w%C4%B0ki.com/a.png", []string{"wiki.com"}, false},
		{"http://b\u00fccher.example/a.png", []string{"b\u00fccher.example"}, false},
		{"http://xn--bcher-kva.example/a.png", []string{"xn--bcher-kva.example"}, true},
	}
	for _, tt := range tests {
		if got := images.Allowed(tt.ref, tt.domains); got != tt.want {
			t.Errorf("Allowed(%q, %q) = %v, want %v", tt.ref, tt.domains, got, tt.want)
		}
	}
}

func TestErrNotFetchedIsRemoteImage(t *testing.T) {
	if !errors.Is(images.ErrNotFetched, tileview.ErrRemoteImage) {
		t.Error("ErrNotFetched does not wrap tileview.ErrRemoteImage")
	}
}

// A redirect from https to plain http is refused: the image would come
// over a connection anyone on the way could change.
func TestRedirectFromHTTPSToHTTP(t *testing.T) {
	plain := newServer(t, nil)
	tls := httptest.NewTLSServer(http.RedirectHandler(plain.URL+"/img.png", http.StatusFound))
	t.Cleanup(tls.Close)
	l := images.NewLoader(images.Config{CacheEntries: -1, Client: tls.Client()})
	_, err := l.Fetch(context.Background(), tls.URL+"/hop", []string{"127.0.0.1"}, nil)
	if !errors.Is(err, images.ErrBadURL) || !strings.Contains(err.Error(), "from https") {
		t.Fatalf("Fetch: %v, want ErrBadURL for the downgrade", err)
	}
	if n := plain.count("/img.png"); n != 0 {
		t.Fatalf("%d requests reached the plain server", n)
	}
	// The same redirect from plain http is followed.
	hop := newServer(t, map[string]http.HandlerFunc{"/hop": http.RedirectHandler(plain.URL+"/img.png", http.StatusFound).ServeHTTP})
	if _, err := l.Fetch(context.Background(), hop.URL+"/hop", []string{"127.0.0.1"}, nil); err != nil {
		t.Fatalf("http to http: %v", err)
	}
}

func TestRedirectLimit(t *testing.T) {
	srv := newServer(t, map[string]http.HandlerFunc{
		"/hop": http.RedirectHandler("/img.png", http.StatusFound).ServeHTTP,
	})
	tests := []struct {
		name      string
		redirects int
		ok        bool
	}{
		{"default follows", 0, true},
		{"one", 1, true},
		{"none", -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := images.NewLoader(images.Config{MaxRedirects: tt.redirects, CacheEntries: -1})
			_, err := l.Fetch(context.Background(), srv.URL+"/hop", []string{"127.0.0.1"}, nil)
			if (err == nil) != tt.ok {
				t.Errorf("Fetch error %v, want success %v", err, tt.ok)
			}
		})
	}
}
