package images_test

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"testing"
	"testing/fstest"

	"github.com/openmpns/openmpns/emulator/images"
	"github.com/openmpns/openmpns/emulator/tile"
)

// report is one call of a Source's done function.
type report struct {
	ref string
	err error
}

func newSource(t *testing.T, ctx context.Context, domains []string) (*images.Source, <-chan report) {
	t.Helper()
	reports := make(chan report, 16)
	local := fstest.MapFS{"Assets/a.png": {Data: encodePNG(t, 4, 4)}}
	l := images.NewLoader(images.Config{})
	s := l.Source(ctx, local, domains, func(ref string, err error) { reports <- report{ref, err} })
	return s, reports
}

// expect waits for the next report and checks it.
func expect(t *testing.T, reports <-chan report, ref string, want error) {
	t.Helper()
	r := <-reports
	if r.ref != ref {
		t.Fatalf("report for %q, want %q", r.ref, ref)
	}
	if want == nil && r.err != nil || want != nil && !errors.Is(r.err, want) {
		t.Fatalf("report error %v, want %v", r.err, want)
	}
}

func TestSourceLocal(t *testing.T) {
	s, reports := newSource(t, context.Background(), nil)
	if res, err := s.Image("/Assets/a.png"); err != nil || res == nil {
		t.Fatalf("local image: %v", err)
	}
	if _, err := s.Image("/Assets/nope.png"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing local image: %v", err)
	}
	expect(t, reports, "/Assets/nope.png", fs.ErrNotExist)
	// Remembered: asked again, it is not reported again.
	if _, err := s.Image("/Assets/nope.png"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing local image: %v", err)
	}
	if _, err := s.Image("/Assets/a.png"); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-reports:
		t.Errorf("unexpected report %+v", r)
	default:
	}
}

func TestSourceRemote(t *testing.T) {
	srv := newServer(t, map[string]http.HandlerFunc{"/gone.png": http.NotFound})
	s, reports := newSource(t, context.Background(), []string{"127.0.0.1"})
	ref := srv.URL + "/img.png"

	_, err := s.Image(ref)
	if !errors.Is(err, images.ErrPending) || !errors.Is(err, tile.ErrRemoteImage) {
		t.Fatalf("first Image: %v, want ErrPending", err)
	}
	expect(t, reports, ref, nil)
	if res, err := s.Image(ref); err != nil || res == nil {
		t.Fatalf("Image after the download: %v", err)
	}

	gone := srv.URL + "/gone.png"
	if _, err := s.Image(gone); !errors.Is(err, images.ErrPending) {
		t.Fatalf("Image(gone): %v", err)
	}
	expect(t, reports, gone, images.ErrBadStatus)
	if _, err := s.Image(gone); !errors.Is(err, images.ErrBadStatus) {
		t.Fatalf("Image(gone) again: %v, want the remembered ErrBadStatus", err)
	}
	if n := srv.count("/gone.png"); n != 1 {
		t.Errorf("%d requests for a remembered failure, want 1", n)
	}

	// Reset: failures are tried again, downloaded images come back at once.
	s.Reset()
	if _, err := s.Image(gone); !errors.Is(err, images.ErrPending) {
		t.Fatalf("Image(gone) after Reset: %v", err)
	}
	expect(t, reports, gone, images.ErrBadStatus)
	if n := srv.count("/gone.png"); n != 2 {
		t.Errorf("%d requests after Reset, want 2", n)
	}
	if res, err := s.Image(ref); err != nil || res == nil {
		t.Fatalf("cached image after Reset: %v", err)
	}
	if n := srv.count("/img.png"); n != 1 {
		t.Errorf("%d requests for a cached image, want 1", n)
	}
}

func TestSourceRefusedAtOnce(t *testing.T) {
	srv := newServer(t, nil)
	s, reports := newSource(t, context.Background(), []string{"example.com"})
	ref := srv.URL + "/img.png"
	if _, err := s.Image(ref); !errors.Is(err, images.ErrDomainNotAllowed) {
		t.Fatalf("Image: %v, want ErrDomainNotAllowed", err)
	}
	expect(t, reports, ref, images.ErrDomainNotAllowed)
	if _, err := s.Image("http:///x.png"); !errors.Is(err, images.ErrBadURL) {
		t.Fatalf("Image: %v, want ErrBadURL", err)
	}
	expect(t, reports, "http:///x.png", images.ErrBadURL)

	// The app binds its tile again, allowing the server.
	s.SetDomains([]string{"127.0.0.1"})
	if got := s.Domains(); len(got) != 1 || got[0] != "127.0.0.1" {
		t.Errorf("Domains() = %q", got)
	}
	if _, err := s.Image(ref); !errors.Is(err, images.ErrPending) {
		t.Fatalf("Image after SetDomains: %v, want ErrPending", err)
	}
	expect(t, reports, ref, nil)
	if srv.total() != 1 {
		t.Errorf("%d requests, want 1", srv.total())
	}
}

func TestSourceContextEnded(t *testing.T) {
	srv := newServer(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s, _ := newSource(t, ctx, []string{"127.0.0.1"})
	if _, err := s.Image(srv.URL + "/img.png"); !errors.Is(err, context.Canceled) {
		t.Errorf("Image: %v, want context.Canceled", err)
	}
	if srv.total() != 0 {
		t.Error("a Source whose context ended downloaded")
	}
	if _, err := s.Image("/Assets/a.png"); err != nil {
		t.Errorf("local image after the context ended: %v", err)
	}
}
