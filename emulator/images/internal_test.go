package images

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"fyne.io/fyne/v2"
)

// TestConcurrentFetchesShareADownload starts many fetches of one URL while
// the server holds the first request, with the cache off: only the shared
// download can spare the other requests.
func TestConcurrentFetchesShareADownload(t *testing.T) {
	var img bytes.Buffer
	if err := png.Encode(&img, image.NewGray(image.Rect(0, 0, 4, 4))); err != nil {
		t.Fatal(err)
	}
	var requests atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		w.Write(img.Bytes())
	}))
	defer srv.Close()

	const n = 16
	joined := make(chan struct{}, n)
	l := NewLoader(Config{CacheEntries: -1})
	l.joined = func() { joined <- struct{}{} }

	var wg sync.WaitGroup
	res := make([]fyne.Resource, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			res[i], errs[i] = l.Fetch(context.Background(), srv.URL+"/a.png", []string{"127.0.0.1"}, nil)
		})
	}
	for range n - 1 {
		<-joined
	}
	close(release)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || res[i] == nil || !bytes.Equal(res[i].Content(), img.Bytes()) {
			t.Errorf("fetch %d: %v", i, errs[i])
		}
	}
	if got := requests.Load(); got != 1 {
		t.Errorf("%d requests, want 1", got)
	}
	if len(l.calls) != 0 {
		t.Errorf("%d downloads still registered", len(l.calls))
	}
}

// TestFlightKey checks that fetches share a download only with the same
// allowed domains, in any order or spelling.
func TestFlightKey(t *testing.T) {
	a := flightKey("http://x/a.png", []string{"x", "Y.com"})
	if b := flightKey("http://x/a.png", []string{"http://y.com/", "x", "x"}); a != b {
		t.Errorf("%q != %q", a, b)
	}
	if b := flightKey("http://x/a.png", []string{"x"}); a == b {
		t.Error("different domains share a key")
	}
}

func TestLRU(t *testing.T) {
	res := func(name string, size int) *cached {
		return &cached{url: name, res: fyne.NewStaticResource(name, make([]byte, size)), size: int64(size)}
	}
	c := newLRU(3, 100)
	c.add(res("a", 10))
	c.add(res("b", 10))
	c.add(res("c", 10))
	c.get("a") // b is now the oldest
	c.add(res("d", 10))
	if _, ok := c.get("b"); ok {
		t.Error("b not evicted by count")
	}
	for _, k := range []string{"a", "c", "d"} {
		if _, ok := c.get(k); !ok {
			t.Errorf("%s evicted", k)
		}
	}
	c.add(res("e", 90)) // 10+10+10+90 > 100: a, c go (oldest first)... until it fits
	if n, size := c.len(); size > 100 || n != 2 {
		t.Errorf("len = %d, %d bytes", n, size)
	}
	c.add(res("f", 101))
	if _, ok := c.get("f"); ok {
		t.Error("an entry over the byte bound was stored")
	}
	c.add(res("e", 5)) // replacing keeps the accounting right
	if n, size := c.len(); n != 2 || size != 15 {
		t.Errorf("after replace: len = %d, %d bytes; want 2, 15", n, size)
	}
}

// TestDownloadsAreBounded: past MaxDownloads the downloads wait, past
// MaxWaiting more a fetch fails at once with ErrBusy; the server never
// sees more than MaxDownloads requests at once, and every download that
// waited ends with its image.
func TestDownloadsAreBounded(t *testing.T) {
	var img bytes.Buffer
	if err := png.Encode(&img, image.NewGray(image.Rect(0, 0, 4, 4))); err != nil {
		t.Fatal(err)
	}
	var now, most atomic.Int32
	arrived := make(chan struct{}, 16)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := now.Add(1)
		defer now.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		w.Write(img.Bytes())
	}))
	defer srv.Close()
	defer func() { // before srv.Close, which waits for the handlers
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	l := NewLoader(Config{CacheEntries: -1, MaxDownloads: 3, MaxWaiting: 5})
	here := []string{"127.0.0.1"}
	gone, cancel := context.WithCancel(context.Background())
	cancel() // the fetches return at once; their downloads go on
	for i := range 8 {
		if _, err := l.Fetch(gone, fmt.Sprintf("%s/%d.png", srv.URL, i), here, nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("fetch %d: %v", i, err)
		}
	}
	for range 3 {
		<-arrived
	}
	if _, err := l.Fetch(context.Background(), srv.URL+"/8.png", here, nil); !errors.Is(err, ErrBusy) {
		t.Fatalf("a ninth download: %v, want ErrBusy", err)
	}
	close(release)
	for i := range 8 { // joins each download, or finds it done
		if _, err := l.Fetch(context.Background(), fmt.Sprintf("%s/%d.png", srv.URL, i), here, nil); err != nil {
			t.Fatalf("download %d after the release: %v", i, err)
		}
	}
	if m := most.Load(); m > 3 {
		t.Fatalf("%d requests at once, want at most 3", m)
	}
}
