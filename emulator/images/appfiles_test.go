package images_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/openmpns/openmpns/emulator/apps"
	"github.com/openmpns/openmpns/emulator/images"
)

// loadWithFiles writes a small PNG at each path under dir, and the manifest
// to dir/apps.json, then loads it.
func loadWithFiles(t *testing.T, dir, manifest string, paths ...string) *apps.Manifest {
	t.Helper()
	png := encodePNG(t, 4, 4)
	for _, name := range paths {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, png, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "apps.json"), []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := apps.Load(filepath.Join(dir, "apps.json"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestATileUpdateShowsOnlyTheFilesItsAppsEntryNames: a tile update's
// relative image is read from its app's files. An app without an assets
// directory owns the files its entry names, and nothing else of the
// manifest's directory: not another app's images, nor, for a manifest in
// the home directory (`--apps ~/apps.json`), the user's pictures.
func TestATileUpdateShowsOnlyTheFilesItsAppsEntryNames(t *testing.T) {
	dir := t.TempDir()
	m := loadWithFiles(t, dir, `{"apps":[
		{"id":"com.example.news","name":"News","icon":"news/icon.png","toast":true},
		{"id":"com.example.mail","name":"Mail","icon":"mail/icon.png","toast":true}]}`,
		"news/icon.png", "news/back.png", "mail/icon.png", "Pictures/private.png")
	news, _ := m.App("com.example.news")
	src := images.NewLoader(images.Config{}).Source(news.FS, nil)
	if _, err := src.Image("/news/icon.png"); err != nil {
		t.Errorf("News's own icon: %v", err)
	}
	for _, ref := range []string{"/Pictures/private.png", "mail/icon.png", "news/back.png", "/../Pictures/private.png", "apps.json"} {
		if _, err := src.Image(ref); err == nil {
			t.Errorf("a News tile update naming %s shows a file its entry does not name", ref)
		}
	}
}

// TestATileUpdateShowsOnlyItsAppsAssetsDirectory: an app with an assets
// directory owns that directory (its images named in the manifest or not)
// and nothing outside it; its paths are relative to it.
func TestATileUpdateShowsOnlyItsAppsAssetsDirectory(t *testing.T) {
	dir := t.TempDir()
	m := loadWithFiles(t, dir, `{"apps":[
		{"id":"com.example.news","name":"News","assets":"news","icon":"icons/news.png","toast":true},
		{"id":"com.example.mail","name":"Mail","assets":"mail","icon":"icon.png","toast":true}]}`,
		"news/icons/news.png", "news/images/back.png", "mail/icon.png", "Pictures/private.png", "icon.png")
	news, _ := m.App("com.example.news")
	src := images.NewLoader(images.Config{}).Source(news.FS, nil)
	for _, ref := range []string{"icons/news.png", "/images/back.png", `appdata:\images\back.png`} {
		if _, err := src.Image(ref); err != nil {
			t.Errorf("News's own %s: %v", ref, err)
		}
	}
	for _, ref := range []string{"/Pictures/private.png", "../mail/icon.png", "/../Pictures/private.png", "news/images/back.png", "icon.png", "../apps.json"} {
		if _, err := src.Image(ref); err == nil {
			t.Errorf("a News tile update naming %s shows a file outside News's assets directory", ref)
		}
	}
}

// TestALinkInAnAppsAssetsLeadsNowhereOutside plays a sender who names,
// in a tile update, a path of News's assets directory that is a symbolic
// link leading out of it: to the user's pictures, to a file beside the
// manifest, to another app's directory, or an absolute link. None is
// shown (each is ErrLinkOutside), while a link that stays inside the
// directory is followed, and an assets directory that is itself a link
// (the manifest names it) is read.
func TestALinkInAnAppsAssetsLeadsNowhereOutside(t *testing.T) {
	dir, home := t.TempDir(), t.TempDir()
	png := encodePNG(t, 4, 4)
	for _, p := range []string{filepath.Join(home, "Pictures", "private.png"), filepath.Join(home, "shared", "photos", "icon.png")} {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, png, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	symlink := func(target, link string) {
		t.Helper()
		if err := os.Symlink(target, filepath.Join(dir, filepath.FromSlash(link))); err != nil {
			t.Skipf("no symbolic links here: %v", err)
		}
	}
	// Written first, so that the links' directories exist.
	if err := os.MkdirAll(filepath.Join(dir, "news", "icons"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"news/icons/news.png", "mail/icon.png", "beside.png"} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(p)), png, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	symlink("icons/news.png", "news/alias.png")                              // inside: followed
	symlink(filepath.Join(home, "Pictures"), "news/pictures")                // the user's pictures
	symlink("../beside.png", "news/beside.png")                              // beside the manifest
	symlink("../mail", "news/mail")                                          // another app's files
	symlink(filepath.Join(dir, "news", "icons", "news.png"), "news/abs.png") // absolute, even to inside
	symlink(filepath.Join(home, "shared", "photos"), "photos")               // the assets directory itself
	m := loadWithFiles(t, dir, `{"apps":[
		{"id":"com.example.news","name":"News","assets":"news","icon":"icons/news.png","toast":true},
		{"id":"com.example.mail","name":"Mail","assets":"mail","icon":"icon.png","toast":true},
		{"id":"com.example.photos","name":"Photos","assets":"photos","icon":"icon.png","toast":true}]}`)
	news, _ := m.App("com.example.news")
	src := images.NewLoader(images.Config{}).Source(news.FS, nil)
	for _, ref := range []string{"icons/news.png", "/alias.png"} {
		if _, err := src.Image(ref); err != nil {
			t.Errorf("News's own %s: %v", ref, err)
		}
	}
	for _, ref := range []string{"/pictures/private.png", "/beside.png", "/mail/icon.png", "/abs.png"} {
		_, err := src.Image(ref)
		if !errors.Is(err, apps.ErrLinkOutside) {
			t.Errorf("a News tile update naming %s, a link out of its assets directory: %v, want ErrLinkOutside", ref, err)
		}
	}
	photos, _ := m.App("com.example.photos")
	if _, err := images.NewLoader(images.Config{}).Source(photos.FS, nil).Image("icon.png"); err != nil {
		t.Errorf("an assets directory that is a link: %v", err)
	}

	// The manifest naming such a link is refused when it is loaded, and
	// says why.
	if err := os.WriteFile(filepath.Join(dir, "apps.json"), []byte(`{"apps":[
		{"id":"com.example.news","name":"News","assets":"news","icon":"pictures/private.png"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := apps.Load(filepath.Join(dir, "apps.json")); !errors.Is(err, apps.ErrLinkOutside) {
		t.Errorf("a manifest whose icon is a link out of the assets directory: %v, want ErrLinkOutside", err)
	}
}
