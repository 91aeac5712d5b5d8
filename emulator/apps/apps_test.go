package apps_test

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/openmpns/openmpns/emulator/apps"
	"github.com/openmpns/openmpns/shared/payload"
)

func pngBytes(t testing.TB, w, h int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewNRGBA(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func jpegBytes(t testing.TB, w, h int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, image.NewGray(image.Rect(0, 0, w, h)), nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// files is the app file system the table tests parse against.
func files(t testing.TB) fstest.MapFS {
	filesOnce.Do(func() { testFiles = makeFiles(t) })
	return testFiles
}

var (
	filesOnce sync.Once
	testFiles fstest.MapFS
)

func makeFiles(t testing.TB) fstest.MapFS {
	return fstest.MapFS{
		"icons/a.png":        {Data: pngBytes(t, 96, 96)},
		"icons/b.png":        {Data: pngBytes(t, 96, 96)},
		"icons/photo.jpg":    {Data: jpegBytes(t, 96, 96)},
		"icons/notes.txt":    {Data: []byte("not an image")},
		"images/front.png":   {Data: pngBytes(t, 336, 336)},
		"images/photo.jpg":   {Data: jpegBytes(t, 691, 336)},
		"images/readme.txt":  {Data: []byte("hello")},
		"images/sub/dir.png": {Data: pngBytes(t, 10, 10)},
		"lock/a.png":         {Data: lockPNG(t, 38, color.NRGBA{255, 255, 255, 200})},
		"lock/big.png":       {Data: lockPNG(t, 48, color.NRGBA{255, 255, 255, 255})},
		"lock/red.png":       {Data: lockPNG(t, 38, color.NRGBA{255, 0, 0, 255})},
	}
}

// lockPNG is a size×size PNG, transparent but for one pixel of c.
func lockPNG(t testing.TB, size int, c color.NRGBA) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	img.SetNRGBA(size/2, size/2, c)
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// manifest wraps app objects (JSON text) in a manifest.
func manifest(appObjects ...string) []byte {
	return []byte(`{"apps": [` + strings.Join(appObjects, ",") + `]}`)
}

const minimal = `{"id": "com.example.a", "name": "A", "icon": "icons/a.png"}`

// with returns minimal with extra fields (JSON members) added.
func with(members string) string {
	return `{"id": "com.example.a", "name": "A", "icon": "icons/a.png", ` + members + `}`
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		name  string
		data  []byte
		check func(t *testing.T, a *apps.App)
	}{
		{"defaults", manifest(minimal), func(t *testing.T, a *apps.App) {
			if a.Channel != apps.DefaultChannel || a.Tile.Size != apps.SizeMedium || a.Tile.Template != payload.TemplateDefault {
				t.Errorf("channel %q, size %q, template %q; want main, medium, WP7.5", a.Channel, a.Tile.Size, a.Tile.Template)
			}
			if a.Push() {
				t.Error("an app without backend, service, toast or domains uses push")
			}
			if a.FS == nil {
				t.Error("App.FS not set")
			}
		}},
		{"full", manifest(with(`"accent": "Cobalt", "tile": {"template": "FlipTile", "size": "wide",
			"fields": {"Title": "A", "Count": "3", "BackgroundImage": "/images/front.png", "WideBackgroundImage": "images\\photo.jpg",
			"BackBackgroundImage": "appdata:/images/sub/dir.png", "BackContent": "hi"}},
			"service": "svc", "channel": "ch", "toast": true, "image_domains": ["Example.COM", "127.0.0.1", "::1", "CDN.example.com:8443", "[::1]:8090", "{backend}"],
			"backend": "{backend}/handoff/a", "handoff_secret": "0123456789abcdef"`)), func(t *testing.T, a *apps.App) {
			if a.Tile.Template != payload.TemplateFlip || a.Tile.Size != apps.SizeWide || a.Channel != "ch" || !a.Toast || !a.Push() {
				t.Errorf("got %+v", a)
			}
			if got := strings.Join(a.ImageDomains, " "); got != "example.com 127.0.0.1 ::1 cdn.example.com:8443 [::1]:8090 {backend}" {
				t.Errorf("domains %q, want lower-cased", got)
			}
			if got := strings.Join(a.ImageDomainsFor("http://127.0.0.1:8090/"), " "); got != "example.com 127.0.0.1 ::1 cdn.example.com:8443 [::1]:8090 127.0.0.1:8090" {
				t.Errorf("domains for the backend %q", got)
			}
			if got := strings.Join(a.ImageDomainsFor(""), " "); got != "example.com 127.0.0.1 ::1 cdn.example.com:8443 [::1]:8090" {
				t.Errorf("domains without a backend %q: {backend} must go", got)
			}
			if a.HandoffSecret != "0123456789abcdef" {
				t.Errorf("handoff secret %q", a.HandoffSecret)
			}
		}},
		{"WP7.5 spelled out", manifest(with(`"tile": {"template": "WP7.5"}`)), func(t *testing.T, a *apps.App) {
			if a.Tile.Template != payload.TemplateDefault {
				t.Errorf("template %q, want the WP7.5 tile", a.Tile.Template)
			}
		}},
		{"icon path cleaned", manifest(`{"id": "x", "name": "X", "icon": "./icons//a.png"}`), func(t *testing.T, a *apps.App) {
			if a.Icon != "icons/a.png" {
				t.Errorf("icon %q, want icons/a.png", a.Icon)
			}
		}},
		{"lock icon", manifest(with(`"lock_icon": "/lock/a.png"`)), func(t *testing.T, a *apps.App) {
			if a.LockIcon != "lock/a.png" {
				t.Errorf("lock icon %q, want lock/a.png", a.LockIcon)
			}
			if b, err := a.LockIconData(); err != nil || len(b) == 0 {
				t.Errorf("LockIconData: %d bytes, %v", len(b), err)
			}
		}},
		{"byte order mark", append([]byte("\xEF\xBB\xBF"), manifest(minimal)...), func(t *testing.T, a *apps.App) {}},
		{"hex accent", manifest(with(`"accent": "#0072c6"`)), func(t *testing.T, a *apps.App) {
			if c, ok := a.AccentColor(); !ok || c != (color.NRGBA{0x00, 0x72, 0xC6, 0xFF}) {
				t.Errorf("accent %v %v", c, ok)
			}
		}},
		{"service alone is push", manifest(with(`"service": "s", "channel": "c"`)), func(t *testing.T, a *apps.App) {
			if !a.Push() {
				t.Error("Push() = false")
			}
		}},
		{"iconic tile", manifest(with(`"tile": {"template": "IconicTile", "size": "small", "fields": {"IconImage": "images/front.png", "BackgroundColor": "#FF112233"}}`)), func(t *testing.T, a *apps.App) {}},
		{"cycle tile", manifest(with(`"tile": {"template": "CycleTile", "fields": {"CycleImage1": "images/front.png", "CycleImage9": "images/photo.jpg"}}`)), func(t *testing.T, a *apps.App) {}},
		{"empty image field", manifest(with(`"tile": {"template": "FlipTile", "fields": {"BackgroundImage": ""}}`)), func(t *testing.T, a *apps.App) {}},
		{"files named", manifest(with(`"lock_icon": "lock/a.png", "tile": {"template": "FlipTile", "fields": {"BackgroundImage": "/images/front.png", "BackBackgroundImage": "images\\sub\\dir.png"}}`)), func(t *testing.T, a *apps.App) {
			// Without an assets directory the app owns what its entry names.
			for _, name := range []string{"icons/a.png", "lock/a.png", "images/front.png", "images/sub/dir.png"} {
				if _, err := fs.ReadFile(a.FS, name); err != nil {
					t.Errorf("the app's own %s: %v", name, err)
				}
			}
			for _, name := range []string{"icons/b.png", "images/photo.jpg", "lock/red.png", "images", "."} {
				if _, err := fs.ReadFile(a.FS, name); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("%s, which the entry does not name: %v; want fs.ErrNotExist", name, err)
				}
			}
		}},
		{"assets directory", manifest(`{"id": "x", "name": "X", "assets": "\\images/", "icon": "sub/dir.png", "tile": {"template": "FlipTile", "fields": {"BackgroundImage": "/front.png"}}}`), func(t *testing.T, a *apps.App) {
			if a.Assets != "images" || a.Icon != "sub/dir.png" {
				t.Errorf("assets %q, icon %q; want images, sub/dir.png", a.Assets, a.Icon)
			}
			// The app owns its directory, named in its entry or not.
			for _, name := range []string{"sub/dir.png", "front.png", "photo.jpg", "readme.txt"} {
				if _, err := fs.ReadFile(a.FS, name); err != nil {
					t.Errorf("the app's own %s: %v", name, err)
				}
			}
			if _, err := fs.ReadFile(a.FS, "icons/a.png"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("icons/a.png, outside the app's directory: %v; want fs.ErrNotExist", err)
			}
			if _, err := fs.ReadFile(a.FS, "../icons/a.png"); err == nil {
				t.Error("../icons/a.png was read")
			}
			if b, err := a.IconData(); err != nil || len(b) == 0 {
				t.Errorf("IconData: %d bytes, %v", len(b), err)
			}
		}},
		{"backend without placeholder", manifest(with(`"backend": "https://push.example.com/register?app=a"`)), func(t *testing.T, a *apps.App) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := apps.Parse(tt.data, files(t))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(m.Apps) != 1 {
				t.Fatalf("%d apps, want 1", len(m.Apps))
			}
			tt.check(t, &m.Apps[0])
		})
	}
}

func TestParseInvalid(t *testing.T) {
	tests := []struct {
		name  string
		data  string
		app   string // Error.App
		index int    // Error.Index
		field string // Error.Field
		msg   string // in Error.Error()
		is    error  // errors.Is target, if any
	}{
		{"syntax error", "{\n  \"apps\": [\n    {\"id\": \"x\",}\n  ]\n}", "", 0, "", "line 3, column 16", nil},
		{"not an object", `["x"]`, "", 0, "", "must be a JSON object", nil},
		{"trailing data", string(manifest(minimal)) + ` {}`, "", 0, "", "line 1", nil},
		{"no apps", `{}`, "", 0, "apps", "lists no apps", nil},
		{"empty apps", `{"apps": []}`, "", 0, "apps", "lists no apps", nil},
		{"apps not a list", `{"apps": {"id": "x"}}`, "", 0, "apps", "must be a list of apps", nil},
		{"unknown top field", `{"apps": [` + minimal + `], "version": 2}`, "", 0, "version", "unknown field (known: apps)", nil},
		{"app not an object", `{"apps": ["com.x"]}`, "", 1, "", "must be a JSON object", nil},
		{"unknown app field", string(manifest(with(`"colour": "red"`))), "com.example.a", 1, "colour", "unknown field (known: id, name, assets, icon", nil},
		{"field case", string(manifest(`{"ID": "x", "name": "X", "icon": "icons/a.png"}`)), "", 1, "ID", `case-sensitive: write "id"`, nil},
		{"unknown tile field", string(manifest(with(`"tile": {"template": "FlipTile", "Fields": {}}`))), "com.example.a", 1, "tile.Fields", `case-sensitive: write "fields"`, nil},
		{"wrong type", string(manifest(with(`"toast": "yes"`))), "com.example.a", 1, "toast", "must be true or false, not string", nil},
		{"wrong list type", string(manifest(with(`"image_domains": "example.com"`))), "com.example.a", 1, "image_domains", "must be a list of strings", nil},
		{"wrong field type", string(manifest(with(`"tile": {"fields": {"Count": 3}}`))), "com.example.a", 1, "tile.fields.Count", "must be a string, not number", nil},
		{"missing id", string(manifest(`{"name": "X", "icon": "icons/a.png"}`)), "", 1, "id", "required", nil},
		{"id with space", string(manifest(`{"id": "com example", "name": "X", "icon": "icons/a.png"}`)), "", 1, "id", "printable ASCII without spaces", nil},
		{"id with #", string(manifest(`{"id": "com.example.news#beta", "name": "X", "icon": "icons/a.png"}`)), "", 1, "id", `must not contain "#"`, nil},
		{"id too long", string(manifest(`{"id": "` + strings.Repeat("a", 129) + `", "name": "X", "icon": "icons/a.png"}`)), "", 1, "id", "at most 128", nil},
		{"duplicate id", string(manifest(minimal, `{"id": "com.example.a", "name": "B", "icon": "icons/b.png"}`)), "com.example.a", 2, "id", "duplicate id: app #1 has it too", nil},
		{"missing name", string(manifest(`{"id": "x", "name": "  ", "icon": "icons/a.png"}`)), "x", 1, "name", "required", nil},
		{"missing icon field", string(manifest(`{"id": "x", "name": "X"}`)), "x", 1, "icon", "required", nil},
		{"lock icon too large", string(manifest(with(`"lock_icon": "lock/big.png"`))), "com.example.a", 1, "lock_icon", "48×48 pixels: a lock screen icon is 38×38", nil},
		{"lock icon in colour", string(manifest(with(`"lock_icon": "lock/red.png"`))), "com.example.a", 1, "lock_icon", "coloured pixel at 19,19", nil},
		{"lock icon missing", string(manifest(with(`"lock_icon": "lock/nope.png"`))), "com.example.a", 1, "lock_icon", "no such file", fs.ErrNotExist},
		{"lock icon not a PNG", string(manifest(with(`"lock_icon": "icons/photo.jpg"`))), "com.example.a", 1, "lock_icon", "not a PNG", nil},
		{"missing icon file", string(manifest(`{"id": "x", "name": "X", "icon": "icons/nope.png"}`)), "x", 1, "icon", `"icons/nope.png": no such file`, fs.ErrNotExist},
		{"icon outside", string(manifest(`{"id": "x", "name": "X", "icon": "../icons/a.png"}`)), "x", 1, "icon", "must stay inside the app's assets directory or, without one, the manifest's directory", nil},
		{"icon is a directory", string(manifest(`{"id": "x", "name": "X", "icon": "icons"}`)), "x", 1, "icon", "not a PNG image", nil},
		{"icon not PNG", string(manifest(`{"id": "x", "name": "X", "icon": "icons/photo.jpg"}`)), "x", 1, "icon", "not a PNG image", nil},
		{"icon text", string(manifest(`{"id": "x", "name": "X", "icon": "icons/notes.txt"}`)), "x", 1, "icon", "not a PNG image", nil},
		{"assets the manifest's directory", string(manifest(with(`"assets": "./"`))), "com.example.a", 1, "assets", "not the manifest's directory itself", nil},
		{"assets outside", string(manifest(with(`"assets": "icons/../../x"`))), "com.example.a", 1, "assets", "must stay inside the manifest's directory", nil},
		{"assets missing", string(manifest(with(`"assets": "nope"`))), "com.example.a", 1, "assets", "no such file", fs.ErrNotExist},
		{"assets a file", string(manifest(with(`"assets": "icons/a.png"`))), "com.example.a", 1, "assets", "is not a directory", nil},
		{"icon outside the assets", string(manifest(`{"id": "x", "name": "X", "assets": "images", "icon": "icons/a.png"}`)), "x", 1, "icon", "no such file", fs.ErrNotExist},
		{"tile image outside the assets", string(manifest(`{"id": "x", "name": "X", "assets": "icons", "icon": "a.png", "tile": {"template": "FlipTile", "fields": {"BackgroundImage": "images/front.png"}}}`)), "x", 1, "tile.fields.BackgroundImage", "no such file", fs.ErrNotExist},
		{"two apps' assets", string(manifest(`{"id": "a", "name": "A", "assets": "icons", "icon": "a.png"}`, `{"id": "b", "name": "B", "assets": "/icons/", "icon": "b.png"}`)), "b", 2, "assets", `"icons" overlaps app #1's assets directory "icons"`, nil},
		{"assets inside another's", string(manifest(`{"id": "a", "name": "A", "assets": "images/sub", "icon": "dir.png"}`, `{"id": "b", "name": "B", "assets": "images", "icon": "front.png"}`)), "b", 2, "assets", `"images" overlaps app #1's assets directory "images/sub"`, nil},
		{"unknown accent", string(manifest(with(`"accent": "blurple"`))), "com.example.a", 1, "accent", `unknown accent "blurple": want #RRGGBB or one of amber, brown`, nil},
		{"bad hex accent", string(manifest(with(`"accent": "#12345G"`))), "com.example.a", 1, "accent", "unknown accent", nil},
		{"ARGB accent", string(manifest(with(`"accent": "#FF112233"`))), "com.example.a", 1, "accent", "unknown accent", nil},
		{"unknown template", string(manifest(with(`"tile": {"template": "FlipTiles"}`))), "com.example.a", 1, "tile.template", `unknown template "FlipTiles"`, nil},
		{"unknown size", string(manifest(with(`"tile": {"template": "FlipTile", "size": "large"}`))), "com.example.a", 1, "tile.size", "want small, medium or wide", nil},
		{"wide WP7.5", string(manifest(with(`"tile": {"size": "wide"}`))), "com.example.a", 1, "tile.size", "cannot be wide", nil},
		{"element of another template", string(manifest(with(`"tile": {"template": "FlipTile", "fields": {"CycleImage1": "images/front.png"}}`))), "com.example.a", 1, "tile.fields.CycleImage1", "belongs to CycleTile", nil},
		{"bad count", string(manifest(with(`"tile": {"template": "FlipTile", "fields": {"Count": "lots"}}`))), "com.example.a", 1, "tile.fields.Count", "whole number from 0 to 99", nil},
		{"remote default image", string(manifest(with(`"tile": {"template": "FlipTile", "fields": {"BackgroundImage": "HTTPS://example.com/a.png"}}`))), "com.example.a", 1, "tile.fields.BackgroundImage", "not remote ones", nil},
		{"missing tile image", string(manifest(with(`"tile": {"template": "CycleTile", "fields": {"CycleImage2": "images/gone.png"}}`))), "com.example.a", 1, "tile.fields.CycleImage2", "no such file", fs.ErrNotExist},
		{"tile image not an image", string(manifest(with(`"tile": {"template": "IconicTile", "fields": {"IconImage": "images/readme.txt"}}`))), "com.example.a", 1, "tile.fields.IconImage", "not a PNG or JPEG image", nil},
		{"bad service", string(manifest(with(`"service": "my service"`))), "com.example.a", 1, "service", "printable ASCII", nil},
		{"empty channel", string(manifest(with(`"toast": true, "channel": ""`))), "com.example.a", 1, "channel", "must be 1 to 64 bytes", nil},
		{"channel without push", string(manifest(with(`"channel": "main"`))), "com.example.a", 1, "channel", "does not use push", nil},
		{"domain with scheme", string(manifest(with(`"image_domains": ["example.com", "https://cdn.example.com/"]`))), "com.example.a", 1, "image_domains[1]", `without a scheme ("cdn.example.com/")`, nil},
		{"domain with bad port", string(manifest(with(`"image_domains": ["localhost:80800"]`))), "com.example.a", 1, "image_domains[0]", "the port must be 1 to 65535", nil},
		{"domain with port 0", string(manifest(with(`"image_domains": ["127.0.0.1:0"]`))), "com.example.a", 1, "image_domains[0]", "the port must be 1 to 65535", nil},
		{"domain with empty port", string(manifest(with(`"image_domains": ["localhost:"]`))), "com.example.a", 1, "image_domains[0]", "the port must be 1 to 65535", nil},
		{"bad host with port", string(manifest(with(`"image_domains": ["exa_mple.com:80"]`))), "com.example.a", 1, "image_domains[0]", "not a host name", nil},
		{"handoff secret without backend", string(manifest(with(`"handoff_secret": "0123456789abcdef"`))), "com.example.a", 1, "handoff_secret", "no backend", nil},
		{"short handoff secret", string(manifest(with(`"backend": "{backend}/h", "handoff_secret": "short"`))), "com.example.a", 1, "handoff_secret", "16 to 256 bytes", nil},
		{"handoff secret with a space", string(manifest(with(`"backend": "{backend}/h", "handoff_secret": "0123456789 abcdef"`))), "com.example.a", 1, "handoff_secret", "printable ASCII", nil},
		{"domain with path", string(manifest(with(`"image_domains": ["example.com/img"]`))), "com.example.a", 1, "image_domains[0]", "without a path", nil},
		{"domain not a host", string(manifest(with(`"image_domains": ["exa_mple.com"]`))), "com.example.a", 1, "image_domains[0]", "not a host name", nil},
		{"empty domain", string(manifest(with(`"image_domains": [""]`))), "com.example.a", 1, "image_domains[0]", "empty domain", nil},
		{"too many domains", string(manifest(with(`"image_domains": ["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q"]`))), "com.example.a", 1, "image_domains", "at most 16", nil},
		{"backend scheme", string(manifest(with(`"backend": "ftp://example.com/x"`))), "com.example.a", 1, "backend", "want an http or https URL", nil},
		{"backend relative", string(manifest(with(`"backend": "/handoff"`))), "com.example.a", 1, "backend", "want an http or https URL", nil},
		{"backend no host", string(manifest(with(`"backend": "http:///x"`))), "com.example.a", 1, "backend", "no host", nil},
		{"backend bad URL", string(manifest(with(`"backend": "http://exa mple.com/"`))), "com.example.a", 1, "backend", "is not a URL", nil},
		{"placeholder inside", string(manifest(with(`"backend": "http://x/{backend}"`))), "com.example.a", 1, "backend", "may only start the URL", nil},
		{"placeholder twice", string(manifest(with(`"backend": "{backend}/{backend}"`))), "com.example.a", 1, "backend", "may only start the URL", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := apps.Parse([]byte(tt.data), files(t))
			if err == nil {
				t.Fatalf("Parse accepted it: %+v", m.Apps)
			}
			if m != nil {
				t.Error("Parse returned a manifest with its error")
			}
			if n := countErrors(err); n != 1 {
				t.Errorf("%d errors, want 1:\n%v", n, err)
			}
			var e *apps.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not an *apps.Error: %v", err, err)
			}
			if e.App != tt.app || e.Index != tt.index || e.Field != tt.field {
				t.Errorf("App, Index, Field = %q, %d, %q; want %q, %d, %q (%v)", e.App, e.Index, e.Field, tt.app, tt.index, tt.field, err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
		})
	}
}

func countErrors(err error) int {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return len(j.Unwrap())
	}
	return 1
}

func TestParseReportsEveryProblem(t *testing.T) {
	data := manifest(
		`{"id": "a", "name": "", "icon": "icons/a.png", "accent": "nope"}`,
		minimal,
		`{"id": "b", "name": "B", "icon": "icons/b.png", "backend": "gopher://b"}`,
	)
	_, err := apps.Parse(data, files(t))
	if err == nil {
		t.Fatal("accepted")
	}
	want := []string{
		`apps: app "a": name: required`,
		`apps: app "a": accent: unknown accent "nope"`,
		`apps: app "b": backend: "gopher://b": want an http or https URL`,
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(lines), len(want), err)
	}
	for i := range want {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("error %d = %q, want it to start %q", i, lines[i], want[i])
		}
	}
}

func TestParseNilFS(t *testing.T) {
	if _, err := apps.Parse(manifest(minimal), nil); err == nil || !strings.Contains(err.Error(), "no file system") {
		t.Errorf("err = %v, want a missing file system refused", err)
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		e    apps.Error
		want string
	}{
		{apps.Error{File: "apps.json", App: "com.x", Index: 2, Field: "icon", Err: errors.New("boom")}, `apps: apps.json: app "com.x": icon: boom`},
		{apps.Error{Index: 3, Field: "id", Err: errors.New("required")}, `apps: app #3: id: required`},
		{apps.Error{File: "m.json", Err: errors.New("bad")}, `apps: m.json: bad`},
		{apps.Error{}, `apps: invalid`},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	for name, f := range files(t) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "apps.json")
	if err := os.WriteFile(path, manifest(minimal), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := apps.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if m.Dir != dir {
		t.Errorf("Dir = %q, want %q", m.Dir, dir)
	}
	if data, err := m.Apps[0].IconData(); err != nil || !bytes.Equal(data, files(t)["icons/a.png"].Data) {
		t.Errorf("IconData = %d bytes, %v", len(data), err)
	}

	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, manifest(`{"id": "x", "name": "X", "icon": "icons/gone.png"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = apps.Load(bad)
	var e *apps.Error
	if !errors.As(err, &e) || e.File != bad || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(bad) = %v, want an *Error naming %s", err, bad)
	}
	if _, err := apps.Load(filepath.Join(dir, "missing.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
}

func TestLoadFS(t *testing.T) {
	fsys := fstest.MapFS{
		"phone/apps.json":     {Data: manifest(minimal)},
		"phone/icons/a.png":   {Data: pngBytes(t, 8, 8)},
		"phone/big.json":      {Data: bytes.Repeat([]byte(" "), apps.MaxManifestBytes+1)},
		"phone/not-json.json": {Data: []byte("apps:\n  - id: x\n")},
	}
	m, err := apps.LoadFS(fsys, "phone/apps.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Apps[0].IconData(); err != nil {
		t.Errorf("icon not read relative to the manifest: %v", err)
	}
	if _, err := apps.LoadFS(fsys, "phone/big.json"); err == nil || !strings.Contains(err.Error(), "over 1048576 bytes") {
		t.Errorf("big manifest: %v", err)
	}
	if _, err := apps.LoadFS(fsys, "phone/not-json.json"); err == nil || !strings.Contains(err.Error(), "apps: phone/not-json.json: line 1, column 1") {
		t.Errorf("YAML manifest: %v", err)
	}
}

func TestAppMethods(t *testing.T) {
	m, err := apps.Parse(manifest(
		with(`"tile": {"template": "FlipTile", "fields": {"Count": "2"}}, "backend": "{backend}/handoff/a"`),
		`{"id": "b", "name": "B", "icon": "icons/b.png", "tile": {"template": "IconicTile", "fields": {"Title": ""}}, "backend": "http://10.0.0.2:8080/h"}`,
	), files(t))
	if err != nil {
		t.Fatal(err)
	}
	a, ok := m.App("com.example.a")
	b, ok2 := m.App("b")
	if !ok || !ok2 || a.ID != "com.example.a" || b.ID != "b" {
		t.Fatalf("App lookups failed: %v %v", ok, ok2)
	}
	if _, ok := m.App("nope"); ok {
		t.Error("App(nope) found")
	}

	tile := a.DefaultTile()
	want := &payload.Tile{Template: payload.TemplateFlip, Fields: map[string]string{"Count": "2", "Title": "A"}}
	if !tile.Equal(want) {
		t.Errorf("DefaultTile = %+v, want %+v", tile, want)
	}
	tile.Fields["Count"] = "9"
	if a.Tile.Fields["Count"] != "2" {
		t.Error("DefaultTile shares its fields with the app")
	}
	if err := tile.Validate(); err != nil {
		t.Errorf("DefaultTile is not a valid tile: %v", err)
	}
	if got := b.DefaultTile().Fields["Title"]; got != "" {
		t.Errorf("an explicit empty Title became %q", got)
	}
	if _, ok := a.AccentColor(); ok {
		t.Error("an app without an accent has one")
	}

	for _, tt := range []struct {
		app  *apps.App
		base string
		want string
	}{
		{a, "http://127.0.0.1:9000", "http://127.0.0.1:9000/handoff/a"},
		{a, "http://127.0.0.1:9000/", "http://127.0.0.1:9000/handoff/a"},
		{a, "", ""},
		{b, "http://127.0.0.1:9000", "http://10.0.0.2:8080/h"},
		{b, "", "http://10.0.0.2:8080/h"},
		{&apps.App{}, "http://x", ""},
	} {
		if got := tt.app.BackendURL(tt.base); got != tt.want {
			t.Errorf("%s.BackendURL(%q) = %q, want %q", tt.app.ID, tt.base, got, tt.want)
		}
	}

	if got := (&apps.App{}).ChannelName(); got != apps.DefaultChannel {
		t.Errorf("ChannelName() = %q", got)
	}
	if _, err := (&apps.App{ID: "x", Icon: "a.png"}).IconData(); err == nil {
		t.Error("IconData without a file system succeeded")
	}
}

// TestDefault checks the manifest the emulator ships with: the example apps
// are there and valid, and their files are small and of the right size.
func TestDefault(t *testing.T) {
	m, err := apps.Default()
	if err != nil {
		t.Fatal(err)
	}
	if m.Dir != "" || m.FS == nil {
		t.Errorf("Dir %q, FS %v", m.Dir, m.FS)
	}
	want := []struct {
		id       string
		template payload.Template
		size     string
		toast    bool
		push     bool
		backend  string
	}{
		{"com.openmpns.news", payload.TemplateFlip, apps.SizeMedium, true, true, "http://b/handoff/news"},
		{"com.openmpns.photos", payload.TemplateCycle, apps.SizeWide, false, true, "http://b/handoff/photos"},
		{"com.openmpns.mail", payload.TemplateIconic, apps.SizeMedium, true, true, "http://b/handoff/mail"},
	}
	for _, w := range want {
		a, ok := m.App(w.id)
		if !ok {
			t.Errorf("no app %s", w.id)
			continue
		}
		if a.Tile.Template != w.template || a.Tile.Size != w.size || a.Toast != w.toast || a.Push() != w.push || a.BackendURL("http://b") != w.backend {
			t.Errorf("%s: %+v", w.id, a)
		}
	}
	photos, _ := m.App("com.openmpns.photos")
	// The demo's images come from its backend's own port, and no other.
	if got := strings.Join(photos.ImageDomainsFor("http://127.0.0.1:8090"), ","); got != "127.0.0.1:8090" {
		t.Errorf("photos domains %q", got)
	}
	// A backend named localhost: the name, and the loopback addresses it
	// resolves to (which the image loader's dial guard wants named), on
	// its port only.
	if got := strings.Join(photos.ImageDomainsFor("http://LocalHost:8090"), ","); got != "localhost:8090,127.0.0.1:8090,[::1]:8090" {
		t.Errorf("photos domains with a localhost backend %q", got)
	}
	for _, a := range m.Apps {
		if a.Backend != "" && a.HandoffSecret == "" {
			t.Errorf("%s hands off without a secret", a.ID)
		}
	}
	if n := len(m.Apps); n < 6 {
		t.Errorf("%d apps, want at least 6 for a full start screen", n)
	}
	var quiet int
	for _, a := range m.Apps {
		if !a.Push() {
			quiet++
		}
		data, err := a.IconData()
		if err != nil {
			t.Errorf("%s: %v", a.ID, err)
			continue
		}
		cfg, err := png.DecodeConfig(bytes.NewReader(data))
		if err != nil || cfg.Width != 96 || cfg.Height != 96 {
			t.Errorf("%s: icon %dx%d, %v; want a 96x96 PNG", a.ID, cfg.Width, cfg.Height, err)
		}
	}
	if quiet < 2 {
		t.Errorf("%d apps without push, want at least 2", quiet)
	}

	sizes := map[string][2]int{
		"news/images/news_small.png":  {159, 159},
		"news/images/news_medium.png": {336, 336},
		"news/images/news_wide.png":   {691, 336},
		"news/images/news_back.png":   {336, 336},
		"photos/images/photo1.png":    {691, 336},
		"mail/images/mail_icon.png":   {202, 202},
	}
	found := 0
	err = fs.WalkDir(m.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".png") {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Size() > 40<<10 {
			t.Errorf("%s is %d bytes; keep shipped images under 40 KB", p, info.Size())
		}
		if want, ok := sizes[p]; ok {
			found++
			data, _ := fs.ReadFile(m.FS, p)
			cfg, err := png.DecodeConfig(bytes.NewReader(data))
			if err != nil || cfg.Width != want[0] || cfg.Height != want[1] {
				t.Errorf("%s: %dx%d, %v; want %dx%d", p, cfg.Width, cfg.Height, err, want[0], want[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found != len(sizes) {
		t.Errorf("found %d of the %d images whose size is checked", found, len(sizes))
	}
	// Each app has a directory of its own, and reads nothing outside it.
	for _, a := range m.Apps {
		if a.Assets == "" {
			t.Errorf("%s has no assets directory", a.ID)
		}
		if _, err := fs.Stat(a.FS, "../apps.json"); err == nil {
			t.Errorf("%s reads the manifest", a.ID)
		}
	}
}
