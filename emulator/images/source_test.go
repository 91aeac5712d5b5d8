package images_test

import (
	"context"
	"errors"
	"io/fs"
	"testing"
	"testing/fstest"

	"github.com/openmpns/openmpns/emulator/images"
	"github.com/openmpns/openmpns/emulator/ui/tileview"
)

func TestSource(t *testing.T) {
	srv := newServer(t, nil)
	l := images.NewLoader(images.Config{})
	local := fstest.MapFS{"Assets/a.png": {Data: encodePNG(t, 4, 4)}}
	s := l.Source(local, []string{"127.0.0.1"})
	ref := srv.URL + "/img.png"

	if res, err := s.Image("/Assets/a.png"); err != nil || res == nil {
		t.Fatalf("local image: %v", err)
	}
	if _, err := s.Image("/Assets/nope.png"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing local image: %v", err)
	}
	// A remote image is read from the Loader's cache only: the Source
	// starts no download.
	if _, err := s.Image(ref); !errors.Is(err, images.ErrNotFetched) || !errors.Is(err, tileview.ErrRemoteImage) {
		t.Fatalf("remote image before any fetch: %v, want ErrNotFetched", err)
	}
	if n, _ := l.CacheLen(); n != 0 {
		t.Fatalf("the Source downloaded %d images", n)
	}
	if _, err := l.Fetch(context.Background(), ref, []string{"127.0.0.1"}, nil); err != nil {
		t.Fatal(err)
	}
	if res, err := s.Image(ref); err != nil || res == nil {
		t.Fatalf("remote image after the fetch: %v", err)
	}
	// Another app's Source, whose domains do not allow the host, does not
	// get it from the cache.
	other := l.Source(local, []string{"example.com"})
	if _, err := other.Image(ref); !errors.Is(err, images.ErrNotFetched) {
		t.Fatalf("cached image through a host the app does not allow: %v", err)
	}
}
