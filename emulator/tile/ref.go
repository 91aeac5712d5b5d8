package tile

import (
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// IsRemote reports whether the image reference ref is an http or https URL
// (the scheme in any case): an image the phone downloads, from the domains
// the app allowed, rather than one the app ships with. It is the one place
// the emulator decides it.
func IsRemote(ref string) bool {
	lower := strings.ToLower(ref)
	return strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://")
}

// AppPath turns a reference to an image the app ships with into a path in
// the app's files (an fs.FS): "/Assets/Tiles/Flip.png", "Assets\Tiles\Flip.png",
// "appdata:/Assets/Flip.png" and "isostore:/Assets/Flip.png" all name
// "Assets/Tiles/Flip.png"-style paths; a path cannot leave the app's files
// ("/../x" is "x"). A remote reference (IsRemote) or one that names no file
// is an error.
func AppPath(ref string) (string, error) {
	if IsRemote(ref) {
		return "", fmt.Errorf("tile: image %q is remote, not in the app", ref)
	}
	lower := strings.ToLower(ref)
	p := ref
	for _, scheme := range []string{"appdata:", "isostore:"} {
		if strings.HasPrefix(lower, scheme) {
			p = p[len(scheme):]
			break
		}
	}
	p = path.Clean("/" + strings.ReplaceAll(p, `\`, "/"))[1:]
	if p == "" || !fs.ValidPath(p) {
		return "", fmt.Errorf("tile: image %q: not a path inside the app", ref)
	}
	return p, nil
}
