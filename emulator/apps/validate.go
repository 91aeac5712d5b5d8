package apps

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // tile images may be JPEG
	"image/png"
	"io/fs"
	"net"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/openmpns/openmpns/emulator/accent"
	"github.com/openmpns/openmpns/emulator/tile"
	"github.com/openmpns/openmpns/shared/payload"
	"github.com/openmpns/openmpns/shared/wire"
)

// The wire protocol's limits, which an app's identifiers must fit.
const (
	maxAppLen  = wire.MaxAppLen
	maxNameLen = wire.MaxNameLen
	maxDomains = wire.MaxDomains
)

// Bounds of an app's handoff_secret.
const (
	minSecretLen = 16
	maxSecretLen = 256
)

// check validates a decoded app and fills in its defaults.
func (c *checker) check(index int, a *App, channelSet bool) {
	id := a.ID
	bad := func(field string, format string, args ...any) {
		c.add(index, id, field, fmt.Errorf(format, args...))
	}
	switch {
	case a.ID == "":
		bad("id", "required (for example \"com.example.news\")")
	case len(a.ID) > maxAppLen:
		id = ""
		bad("id", "is %d bytes long; at most %d are allowed", len(a.ID), maxAppLen)
	case !printable(a.ID):
		id = ""
		bad("id", "%q must be printable ASCII without spaces", a.ID)
	case strings.Contains(a.ID, "#"):
		id = ""
		bad("id", "%q must not contain \"#\": the emulator names an app's secondary tile by the app's id, \"#\" and the tile's Id, so that app \"news\"'s tile \"beta\" would be app \"news#beta\"'s", a.ID)
	}
	if strings.TrimSpace(a.Name) == "" {
		bad("name", "required: the name shown under the app's icon")
	}
	// The app's files (see the package documentation, "Files"): its
	// assets directory, or the files its entry names, collected in named
	// as they are checked.
	files := c.fsys
	var named map[string]bool
	if a.Assets != "" {
		p, sub, err := c.assetsDir(a.Assets)
		if err != nil {
			c.add(index, id, "assets", err)
			files = nil // its files cannot be checked
		} else {
			a.Assets, files = p, sub
		}
	} else {
		named = map[string]bool{}
	}
	image := func(field, ref string, check func(fs.FS, string) (string, error)) (string, bool) {
		if files == nil {
			return ref, false
		}
		p, err := check(files, ref)
		if err != nil {
			c.add(index, id, field, err)
			return ref, false
		}
		if named != nil {
			named[p] = true
		}
		return p, true
	}
	pngImage := func(fsys fs.FS, ref string) (string, error) { return c.image(fsys, ref, "png") }
	if a.Icon == "" {
		bad("icon", "required: the path of a PNG, relative to the app's assets directory or, without one, to the manifest's directory")
	} else if p, ok := image("icon", a.Icon, pngImage); ok {
		a.Icon = p
	}
	if a.LockIcon != "" {
		if p, ok := image("lock_icon", a.LockIcon, c.lockIcon); ok {
			a.LockIcon = p
		}
	}
	if a.Accent != "" {
		if _, ok := parseAccent(a.Accent); !ok {
			bad("accent", "unknown accent %q: want #RRGGBB or one of %s", a.Accent, strings.Join(accent.Names(), ", "))
		}
	}
	c.tile(index, id, a, func(field, ref string) {
		image(field, ref, func(fsys fs.FS, ref string) (string, error) { return c.image(fsys, ref, "png", "jpeg") })
	})
	switch {
	case files == nil:
	case named != nil:
		a.FS = namedFiles{fsys: c.fsys, names: named}
	default:
		a.FS = files
	}
	if a.Service != "" && (len(a.Service) > maxNameLen || !printable(a.Service)) {
		bad("service", "%q must be 1 to %d bytes of printable ASCII without spaces", a.Service, maxNameLen)
	}
	switch {
	case channelSet && (a.Channel == "" || len(a.Channel) > maxNameLen || !printable(a.Channel)):
		bad("channel", "%q must be 1 to %d bytes of printable ASCII without spaces", a.Channel, maxNameLen)
	case channelSet && !a.Push():
		bad("channel", "the app does not use push notifications: add a backend, a service, toast or image_domains, or remove channel")
	case a.Channel == "":
		a.Channel = DefaultChannel
	}
	if len(a.ImageDomains) > maxDomains {
		bad("image_domains", "lists %d domains; at most %d are allowed", len(a.ImageDomains), maxDomains)
	}
	for i, d := range a.ImageDomains {
		if err := checkDomain(d); err != nil {
			c.add(index, id, fmt.Sprintf("image_domains[%d]", i), err)
		} else {
			a.ImageDomains[i] = strings.ToLower(d)
		}
	}
	if a.Backend != "" {
		if err := checkBackend(a.Backend); err != nil {
			c.add(index, id, "backend", err)
		}
	}
	switch {
	case a.HandoffSecret == "":
	case a.Backend == "":
		bad("handoff_secret", "the app has no backend to send it to: add a backend, or remove handoff_secret")
	case len(a.HandoffSecret) < minSecretLen || len(a.HandoffSecret) > maxSecretLen || !printable(a.HandoffSecret):
		bad("handoff_secret", "must be %d to %d bytes of printable ASCII without spaces", minSecretLen, maxSecretLen)
	}
}

// tile validates the app's default tile; image checks each image
// reference of its fields (reporting a problem under field).
func (c *checker) tile(index int, id string, a *App, image func(field, ref string)) {
	t := &a.Tile
	tmpl, err := payload.ParseTemplate(string(t.Template))
	if err != nil {
		c.add(index, id, "tile.template", fmt.Errorf("unknown template %q: want FlipTile, CycleTile, IconicTile, or \"\" for the WP7.5 tile", string(t.Template)))
		return
	}
	t.Template = tmpl
	switch t.Size {
	case "":
		t.Size = SizeMedium
	case SizeSmall, SizeMedium:
	case SizeWide:
		if tmpl == payload.TemplateDefault {
			c.add(index, id, "tile.size", errors.New("a WP7.5 tile (no template) cannot be wide: use FlipTile"))
		}
	default:
		c.add(index, id, "tile.size", fmt.Errorf("unknown size %q: want small, medium or wide", t.Size))
	}
	if err := (&payload.Tile{Template: tmpl, Fields: t.Fields}).Validate(); err != nil {
		var pe *payload.Error
		if errors.As(err, &pe) && pe.Element != "" {
			c.add(index, id, "tile.fields."+pe.Element, errors.New(pe.Reason))
		} else {
			c.add(index, id, "tile.fields", err)
		}
		return
	}
	for _, name := range payload.Elements(tmpl) {
		ref, ok := t.Fields[name]
		if !ok || ref == "" || !isImageElement(name) {
			continue
		}
		field := "tile.fields." + name
		if tile.IsRemote(ref) {
			c.add(index, id, field, fmt.Errorf("%q: a default tile shows images the app ships with, not remote ones: give a path relative to the app's assets directory or, without one, to the manifest's directory", ref))
			continue
		}
		image(field, ref)
	}
}

// isImageElement reports whether tile element name holds an image
// reference (BackgroundImage, IconImage, CycleImage3, ...).
func isImageElement(name string) bool {
	return strings.HasSuffix(name, "Image") || strings.HasPrefix(name, "CycleImage")
}

// image checks that ref names an image of one of the formats in fsys (the
// app's files), the way tile.AppPath reads it (a leading slash, backslashes
// and an "appdata:" or "isostore:" scheme are accepted), except that it
// must not climb out with "..". It returns the path in fsys.
func (c *checker) image(fsys fs.FS, ref string, formats ...string) (string, error) {
	p := ref
	lower := strings.ToLower(p)
	for _, scheme := range []string{"appdata:", "isostore:"} {
		if strings.HasPrefix(lower, scheme) {
			p = p[len(scheme):]
			break
		}
	}
	p = strings.TrimLeft(strings.ReplaceAll(p, `\`, "/"), "/")
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." {
			return "", fmt.Errorf("%q: must stay inside the app's assets directory or, without one, the manifest's directory", ref)
		}
	}
	p = path.Clean(p)
	if p == "." || !fs.ValidPath(p) {
		return "", fmt.Errorf("%q: not a file path", ref)
	}
	f, err := fsys.Open(p)
	if err != nil {
		return "", fmt.Errorf("%q: %w", ref, unwrapPath(err))
	}
	defer f.Close()
	var format string
	if len(formats) == 1 && formats[0] == "png" {
		_, err = png.DecodeConfig(f)
		format = "png"
	} else {
		_, format, err = image.DecodeConfig(f)
	}
	if err != nil || !slices.Contains(formats, format) {
		return "", fmt.Errorf("%q: not a %s image", ref, formatNames(formats))
	}
	return p, nil
}

// lockIcon checks a lock screen icon: a PNG of LockIconSize×LockIconSize
// pixels, every one white or transparent (Windows Phone tints nothing: it
// draws the icon as it is, over any background), in fsys (the app's
// files). It returns the path in fsys.
func (c *checker) lockIcon(fsys fs.FS, ref string) (string, error) {
	p, err := c.image(fsys, ref, "png")
	if err != nil {
		return "", err
	}
	f, err := fsys.Open(p)
	if err != nil {
		return "", fmt.Errorf("%q: %w", ref, unwrapPath(err))
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		return "", fmt.Errorf("%q: not a PNG image", ref)
	}
	b := img.Bounds()
	if b.Dx() != LockIconSize || b.Dy() != LockIconSize {
		return "", fmt.Errorf("%q is %d×%d pixels: a lock screen icon is %d×%d", ref, b.Dx(), b.Dy(), LockIconSize, LockIconSize)
	}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			px := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			if px.A != 0 && (px.R != 0xFF || px.G != 0xFF || px.B != 0xFF) {
				return "", fmt.Errorf("%q has a coloured pixel at %d,%d (%v): a lock screen icon is white on transparent", ref, x-b.Min.X, y-b.Min.Y, px)
			}
		}
	}
	return p, nil
}

// formatNames is "PNG" or "PNG or JPEG".
func formatNames(formats []string) string {
	names := make([]string, len(formats))
	for i, f := range formats {
		names[i] = strings.ToUpper(f)
	}
	return strings.Join(names, " or ")
}

// unwrapPath drops the *fs.PathError around err, whose path would repeat
// the reference; the cause (fs.ErrNotExist, ...) stays wrapped.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		if errors.Is(pe.Err, fs.ErrNotExist) {
			return fmt.Errorf("no such file: %w", fs.ErrNotExist)
		}
		return pe.Err
	}
	return err
}

// checkDomain checks an image_domains entry: a host name or IP address,
// with a port or not ("cdn.example.com", "127.0.0.1:8090", "[::1]:8090"),
// or BackendPlaceholder (the demo backend's host and port).
func checkDomain(d string) error {
	switch {
	case d == "":
		return errors.New("empty domain")
	case d == BackendPlaceholder:
		return nil
	case strings.Contains(d, "://"):
		return fmt.Errorf("%q: write the host alone, without a scheme (%q)", d, d[strings.Index(d, "://")+3:])
	case strings.ContainsAny(d, "/?#"):
		return fmt.Errorf("%q: write the host alone, without a path", d)
	case net.ParseIP(d) != nil:
		return nil
	case strings.Contains(d, ":"):
		host, port, err := net.SplitHostPort(d)
		if err != nil {
			return fmt.Errorf("%q: write a host, or host:port ([IPv6]:port)", d)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || port[0] == '0' {
			return fmt.Errorf("%q: the port must be 1 to 65535", d)
		}
		if net.ParseIP(host) != nil {
			return nil
		}
		if strings.Contains(host, ":") {
			return fmt.Errorf("%q is not a host name", d)
		}
		return checkHostName(host)
	}
	return checkHostName(d)
}

// checkHostName checks a DNS host name.
func checkHostName(d string) error {
	if len(d) > 253 {
		return fmt.Errorf("domain is %d bytes long; at most 253 are allowed", len(d))
	}
	for _, label := range strings.Split(strings.ToLower(d), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%q is not a host name", d)
		}
		for i := 0; i < len(label); i++ {
			if ch := label[i]; !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '-') {
				return fmt.Errorf("%q is not a host name", d)
			}
		}
	}
	return nil
}

// checkBackend checks a backend URL.
func checkBackend(b string) error {
	if n := strings.Count(b, BackendPlaceholder); n > 1 || n == 1 && !strings.HasPrefix(b, BackendPlaceholder) {
		return fmt.Errorf("%q: %s may only start the URL, once (as in \"%s/handoff\")", b, BackendPlaceholder, BackendPlaceholder)
	}
	u, err := url.Parse(strings.Replace(b, BackendPlaceholder, "http://backend.invalid", 1))
	if err != nil {
		return fmt.Errorf("%q is not a URL", b)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q: want an http or https URL, or one starting with %s", b, BackendPlaceholder)
	}
	if u.Host == "" {
		return fmt.Errorf("%q: the URL has no host", b)
	}
	return nil
}

// usableID reports whether id can name an app in messages: an id check
// accepts.
func usableID(id string) bool {
	return printable(id) && len(id) <= maxAppLen && !strings.Contains(id, "#")
}

// printable reports whether s is non-empty printable ASCII without spaces,
// as the wire protocol wants app ids and channel names.
func printable(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
