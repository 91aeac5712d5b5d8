// Package apps reads the manifest of the apps installed on the emulated
// phone: their names, icons and default tiles, and how each uses push
// notifications (its channel, whether it wants toasts, the remote image
// domains it binds its tile with, and the cloud service it hands its Channel
// URI to).
//
// # Manifest
//
// A manifest is a JSON file:
//
//	{
//	  "apps": [
//	    {
//	      "id": "com.example.news",         required, unique; printable ASCII, no spaces and no "#", at most 128 bytes
//	      "name": "News",                   required; the name under the icon and in toasts
//	      "assets": "news",                 optional; the app's own directory, relative to the manifest's
//	                                        (see Files): its paths below are relative to it
//	      "icon": "icons/news.png",         required; a PNG of the app's files
//	      "accent": "crimson",              optional; an accent name (see accent.Names) or "#RRGGBB"
//	      "lock_icon": "lock/news.png",     optional; a 38×38 PNG, white on transparent: the app can show
//	                                        its count and text on the lock screen (LockIconSize)
//	      "tile": {                         the app's primary tile, as pinned
//	        "template": "FlipTile",         FlipTile, CycleTile, IconicTile, or "" (or "WP7.5") for the WP7.5 tile
//	        "size": "medium",               small, medium (the default) or wide
//	        "fields": {                     default element values, checked as a tile payload of that template
//	          "Title": "News",              defaults to name when absent; "" shows no title
//	          "BackgroundImage": "images/news.png"
//	        }
//	      },
//	      "service": "news",                optional; the service name the channel is opened with
//	      "channel": "main",                optional; the channel name, "main" by default
//	      "toast": true,                    the app binds its channel to toasts (and asks the user first)
//	      "image_domains": ["example.com"], remote image hosts the tile binding allows (subdomains included);
//	                                        "host:port" allows that port only; "{backend}" is the demo
//	                                        backend's host and port
//	      "backend": "{backend}/handoff",   optional; http(s) URL the Channel URI is POSTed to
//	      "handoff_secret": "…"             optional; sent with the handoff, which the backend checks
//	                                        (16 to 256 bytes of printable ASCII; needs a backend)
//	    }
//	  ]
//	}
//
// Unknown fields are refused, and field names are case-sensitive. Image
// paths in tile fields follow tile.AppPath: paths in the app's files, with
// or without a leading slash; a default tile cannot name a remote image,
// because a phone pins a tile from the files the app ships.
// In backend, the placeholder {backend} (at the start of the URL) stands for
// the base URL of the demo cloud service the emulator runs; see
// App.BackendURL.
//
// # Push
//
// An app uses push notifications when it names a backend or a service,
// wants toasts, or lists image domains (Push). Such an app opens its
// channel on first launch, binds it to its tile with its image domains,
// binds it to toasts when toast is true, and POSTs the Channel URI to its
// backend when it has one. Other apps only sit on the start screen.
//
// # Files
//
// Each app reads its own files, and no other app's, through App.FS: a tile
// update's relative image is read from it too, so a sender can show the
// app's images and nothing else of the manifest's directory (another app's
// images, or for a manifest in the home directory the user's pictures).
//
//   - An app with "assets" owns that directory (a directory inside the
//     manifest's, not the manifest's own): App.FS is it, and its icon,
//     lock_icon and tile images are paths in it ("icons/news.png" is
//     "news/icons/news.png" of the manifest's directory), as a Windows
//     Phone app's are in its package. No two apps' assets directories may be
//     the same or one inside the other. On disk (Load), a symbolic link
//     inside the directory is followed only when it leads to a place
//     inside it: a tile update names any path in the directory, and a link
//     to, say, the user's pictures would let it show those
//     (ErrLinkOutside). The directory itself may be a link, as may the
//     directories above it: the manifest names them.
//   - An app without one owns only the files its entry names: its icon,
//     lock_icon and default tile images, at their paths relative to the
//     manifest's directory. A tile update can show those and no other
//     file.
//
// The manifest's directory is read through an fs.FS (Manifest.FS), so a
// manifest on disk (Load) and the embedded default (Default) work alike.
// Validation reads every icon and default tile image once, so that a typo
// shows when the emulator starts rather than as a blank tile.
package apps

import (
	"errors"
	"image/color"
	"io/fs"
	"maps"
	"net"
	"net/url"
	"strings"

	"github.com/openmpns/openmpns/emulator/accent"
	"github.com/openmpns/openmpns/shared/payload"
)

// DefaultChannel is the channel name of an app whose manifest names none.
const DefaultChannel = "main"

// BackendPlaceholder is replaced by the demo cloud service's base URL in an
// app's backend (App.BackendURL).
const BackendPlaceholder = "{backend}"

// Tile sizes, as written in a manifest's tile.size.
const (
	SizeSmall  = "small"
	SizeMedium = "medium"
	SizeWide   = "wide"
)

// Manifest is a validated list of apps, in the order the manifest lists
// them (the order the start screen pins them in).
type Manifest struct {
	// Dir is the directory of the manifest file, "" for the embedded
	// default.
	Dir string
	// FS is the manifest's directory, every app's files and more: read
	// an app's files through its App.FS.
	FS fs.FS
	// Apps are the installed apps; ids are unique.
	Apps []App
}

// App is one installed app. Parse fills in the defaults: Channel is
// DefaultChannel when the manifest names none, Tile.Size is SizeMedium, and
// a Tile.Template written "WP7.5" is payload.TemplateDefault.
type App struct {
	// ID is the app's identifier (the product id of a real app), e.g.
	// "com.example.news": printable ASCII without spaces or "#" (the
	// emulator keys a secondary tile by the app's id, "#" and the tile's
	// Id).
	ID string `json:"id"`
	// Name is the app's display name.
	Name string `json:"name"`
	// Assets is the app's own directory, relative to the manifest's (a
	// clean path, never "."), or "" for none. With one, FS is that
	// directory and the app's paths are relative to it; without one, FS
	// holds only the files the app's entry names. See FS.
	Assets string `json:"assets,omitempty"`
	// Icon is the path of the app's PNG icon in FS.
	Icon string `json:"icon"`
	// Accent is an accent name ("cobalt") or "#RRGGBB"; "" uses the
	// user's accent. See AccentColor.
	Accent string `json:"accent,omitempty"`
	// LockIcon is the path of the app's lock screen icon in FS (the
	// DeviceLockImageURI of a Windows Phone 8 app manifest): a
	// LockIconSize×LockIconSize PNG of white pixels on transparency. An app
	// with one can be chosen in Settings to show its count (quick status)
	// and text (detailed status) on the lock screen; "" for none.
	LockIcon string `json:"lock_icon,omitempty"`
	// Tile is the app's primary tile as pinned.
	Tile Tile `json:"tile"`
	// Service is the service name the channel is opened with; may be "".
	Service string `json:"service,omitempty"`
	// Channel is the name of the app's channel.
	Channel string `json:"channel,omitempty"`
	// Toast is true when the app binds its channel to toasts; it asks the
	// user for consent on first launch.
	Toast bool `json:"toast,omitempty"`
	// ImageDomains are the hosts remote tile images may come from, passed
	// to BindToShellTile. Subdomains of a listed host are allowed too.
	ImageDomains []string `json:"image_domains,omitempty"`
	// Backend is the URL the app POSTs its Channel URI to; it may start
	// with BackendPlaceholder. See BackendURL.
	Backend string `json:"backend,omitempty"`
	// HandoffSecret is sent with every handoff (device.HandoffRecord's
	// Secret), so that the backend takes Channel URIs only from its app;
	// "" sends none. It is as secret as the manifest: every copy of the app
	// holds it, as a real app's package did.
	HandoffSecret string `json:"handoff_secret,omitempty"`

	// FS holds the app's files, and no other app's: its assets directory
	// (fs.Sub of the manifest's FS) when it has one, or else only the
	// files its entry names (its icon, lock screen icon and default tile
	// images, at their paths in the manifest's FS; any other path is
	// fs.ErrNotExist). Its icon, tile images and the relative images of
	// its tile updates are read from it.
	FS fs.FS `json:"-"`
}

// Tile is an app's default primary tile.
type Tile struct {
	// Template is the tile's template; payload.TemplateDefault is the
	// WP7.5 tile.
	Template payload.Template `json:"template"`
	// Size is SizeSmall, SizeMedium or SizeWide.
	Size string `json:"size,omitempty"`
	// Fields holds the default element values (payload.Title,
	// payload.BackgroundImage, ...), image paths relative to the app's FS.
	Fields map[string]string `json:"fields,omitempty"`
}

// App returns the app with the given id.
func (m *Manifest) App(id string) (*App, bool) {
	for i := range m.Apps {
		if m.Apps[i].ID == id {
			return &m.Apps[i], true
		}
	}
	return nil, false
}

// Push reports whether the app uses push notifications: it names a backend
// or a service, wants toasts, or lists image domains.
func (a *App) Push() bool {
	return a.Toast || a.Backend != "" || a.Service != "" || len(a.ImageDomains) > 0
}

// ChannelName returns Channel, or DefaultChannel when it is empty (an App
// not made by Parse).
func (a *App) ChannelName() string {
	if a.Channel == "" {
		return DefaultChannel
	}
	return a.Channel
}

// AccentColor returns the app's accent colour, and false when the app has
// none (the tile then uses the user's accent) or it is not valid.
func (a *App) AccentColor() (color.NRGBA, bool) {
	return parseAccent(a.Accent)
}

// DefaultTile returns the app's primary tile as pinned, as a tile update:
// the template and a copy of the default fields, with Title set to the
// app's name when the manifest gives none. Its ID is empty (the primary
// tile). The emulator makes the tile's state from it with
// tile.NewState("", t.Template, t.Fields).
func (a *App) DefaultTile() *payload.Tile {
	fields := maps.Clone(a.Tile.Fields)
	if fields == nil {
		fields = map[string]string{}
	}
	if _, ok := fields[payload.Title]; !ok {
		fields[payload.Title] = a.Name
	}
	return &payload.Tile{Template: a.Tile.Template, Fields: fields}
}

// BackendURL returns the URL the app POSTs its Channel URI to, with
// BackendPlaceholder replaced by backendBase (its trailing slashes
// removed). It returns "" when the app has no backend, or when the backend
// uses the placeholder and backendBase is "" (no demo service runs).
func (a *App) BackendURL(backendBase string) string {
	if !strings.Contains(a.Backend, BackendPlaceholder) {
		return a.Backend
	}
	base := strings.TrimRight(backendBase, "/")
	if base == "" {
		return ""
	}
	return strings.ReplaceAll(a.Backend, BackendPlaceholder, base)
}

// ImageDomainsFor returns ImageDomains with BackendPlaceholder replaced by
// the host and port of backendBase ("http://127.0.0.1:8090" gives
// "127.0.0.1:8090"), or left out when backendBase is "" or not a URL.
func (a *App) ImageDomainsFor(backendBase string) []string {
	out := make([]string, 0, len(a.ImageDomains))
	for _, d := range a.ImageDomains {
		if d != BackendPlaceholder {
			out = append(out, d)
			continue
		}
		hp := hostPort(backendBase)
		if hp == "" {
			continue
		}
		out = append(out, hp)
		if host, port, _ := net.SplitHostPort(hp); host == "localhost" {
			// A download reaches a loopback address only when an entry
			// names it (images.Loader): the addresses localhost
			// resolves to, on the backend's port only.
			out = append(out, net.JoinHostPort("127.0.0.1", port), net.JoinHostPort("::1", port))
		}
	}
	return out
}

// ResolveBackend replaces BackendPlaceholder in every app's ImageDomains
// (see ImageDomainsFor), so that whoever reads the manifest afterwards sees
// the domains the apps bind their tiles with.
func (m *Manifest) ResolveBackend(backendBase string) {
	for i := range m.Apps {
		m.Apps[i].ImageDomains = m.Apps[i].ImageDomainsFor(backendBase)
	}
}

// hostPort returns the lower-case host:port of an http(s) base URL, the
// port made explicit; "" when it is not one.
func hostPort(base string) string {
	u, err := url.Parse(strings.TrimSpace(base))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return ""
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// LockIconSize is the side of a lock screen icon in pixels.
const LockIconSize = 38

// LockIconData returns the bytes of the app's lock screen icon.
func (a *App) LockIconData() ([]byte, error) {
	if a.LockIcon == "" {
		return nil, &Error{App: a.ID, Field: "lock_icon", Err: errors.New("the app has no lock screen icon")}
	}
	if a.FS == nil {
		return nil, &Error{App: a.ID, Field: "lock_icon", Err: errNoFS}
	}
	data, err := fs.ReadFile(a.FS, a.LockIcon)
	if err != nil {
		return nil, &Error{App: a.ID, Field: "lock_icon", Err: err}
	}
	return data, nil
}

// IconData returns the bytes of the app's PNG icon.
func (a *App) IconData() ([]byte, error) {
	if a.FS == nil {
		return nil, &Error{App: a.ID, Field: "icon", Err: errNoFS}
	}
	data, err := fs.ReadFile(a.FS, a.Icon)
	if err != nil {
		return nil, &Error{App: a.ID, Field: "icon", Err: err}
	}
	return data, nil
}

// parseAccent reads an accent name or "#RRGGBB".
func parseAccent(s string) (color.NRGBA, bool) {
	if c, ok := accent.Lookup(s); ok {
		return c, true
	}
	if len(s) != 7 || s[0] != '#' {
		return color.NRGBA{}, false
	}
	var v [3]uint8
	for i := range v {
		hi, ok1 := hexDigit(s[1+2*i])
		lo, ok2 := hexDigit(s[2+2*i])
		if !ok1 || !ok2 {
			return color.NRGBA{}, false
		}
		v[i] = hi<<4 | lo
	}
	return color.NRGBA{R: v[0], G: v[1], B: v[2], A: 0xFF}, true
}

func hexDigit(c byte) (uint8, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
