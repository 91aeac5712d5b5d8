package images

import (
	"fmt"
	"io/fs"
	"slices"

	"fyne.io/fyne/v2"

	"github.com/openmpns/openmpns/emulator/tile"
	"github.com/openmpns/openmpns/emulator/ui/tileview"
)

// ErrNotFetched is what a Source returns for a remote image that is not in
// the Loader's cache (not downloaded yet, refused, or evicted). It wraps
// tileview.ErrRemoteImage: the tile shows its flat colour there.
var ErrNotFetched = fmt.Errorf("images: remote image not downloaded: %w", tileview.ErrRemoteImage)

// Source is the tileview.ImageSource of one app's tiles. It only reads: a
// relative reference from the app's files, a remote one from the Loader's
// cache. It never downloads and decides nothing about remote images.
//
// Each piece of remote-image state has one owner. The phone model
// (emulator/phone) decides: it fetches a tile update's remote images
// through Loader.Fetch with the domains the app bound its tile with, clears
// an element whose image is refused and raises MessageBadContent, and
// reports when an image arrived; the shell then calls the tile widget's
// ReloadImages, whose resolved references are only a memo until then. The
// Loader owns the bytes.
type Source struct {
	loader  *Loader
	local   fs.FS
	domains []string
}

var _ tileview.ImageSource = (*Source)(nil)

// Source returns a tileview.ImageSource for one app: local holds the app's
// files (relative references), domains are the remote image domains its
// tile binding allows (a cached download through another host is not
// returned).
func (l *Loader) Source(local fs.FS, domains []string) *Source {
	return &Source{loader: l, local: local, domains: slices.Clone(domains)}
}

// Image resolves ref without blocking: from the app's files, with the
// limits of a download (Loader.Local), or from the
// Loader's cache for a remote ref (ErrNotFetched when it is not there).
func (s *Source) Image(ref string) (fyne.Resource, error) {
	if !tile.IsRemote(ref) {
		return s.loader.Local(s.local, ref)
	}
	if res, ok := s.loader.Cached(ref, s.domains); ok {
		return res, nil
	}
	return nil, fmt.Errorf("%w: %s", ErrNotFetched, ref)
}
