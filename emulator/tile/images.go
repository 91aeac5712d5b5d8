package tile

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"fyne.io/fyne/v2"
)

// ImageSource resolves the image references found in tile payloads
// (BackgroundImage, CycleImage3, IconImage, ...) to image data.
//
// A Tile calls Image from its renderer, on the UI goroutine, so it must
// return quickly: a source of remote images fetches them in the background
// (bounded in size and time, from the domains the app allowed), returns an
// error until the image is there, and then calls Tile.ReloadImages through
// fyne.Do. A Tile shows its flat background where Image fails.
type ImageSource interface {
	Image(ref string) (fyne.Resource, error)
}

// ErrRemoteImage is returned by FSImages for http(s) references, which it
// does not fetch.
var ErrRemoteImage = errors.New("tile: remote image not available from this source")

// FSImages is an ImageSource that reads the images an app ships with from a
// file system holding the app's files. References are app paths, with or
// without a leading slash ("/Assets/Tiles/Flip.png", "Assets\Tiles\Flip.png");
// "appdata:" and "isostore:" URIs are read with the scheme removed. Paths
// cannot leave the file system ("/../x" is "x"). Remote (http and https)
// references fail with ErrRemoteImage.
type FSImages struct {
	FS fs.FS
}

var _ ImageSource = FSImages{}

// Image reads ref from the file system.
func (s FSImages) Image(ref string) (fyne.Resource, error) {
	if s.FS == nil {
		return nil, fmt.Errorf("tile: image %q: no app file system", ref)
	}
	lower := strings.ToLower(ref)
	if strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://") {
		return nil, fmt.Errorf("image %q: %w", ref, ErrRemoteImage)
	}
	p := ref
	for _, scheme := range []string{"appdata:", "isostore:"} {
		if strings.HasPrefix(lower, scheme) {
			p = p[len(scheme):]
			break
		}
	}
	p = path.Clean("/" + strings.ReplaceAll(p, `\`, "/"))[1:]
	if p == "" || !fs.ValidPath(p) {
		return nil, fmt.Errorf("tile: image %q: not a path inside the app", ref)
	}
	data, err := fs.ReadFile(s.FS, p)
	if err != nil {
		return nil, fmt.Errorf("tile: image %q: %w", ref, err)
	}
	return fyne.NewStaticResource(p, data), nil
}
