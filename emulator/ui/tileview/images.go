package tileview

import (
	"errors"
	"fmt"
	"io/fs"

	"fyne.io/fyne/v2"

	"github.com/openmpns/openmpns/emulator/tile"
)

// ImageSource resolves the image references found in tile payloads
// (BackgroundImage, CycleImage3, IconImage, ...) to image data.
//
// A Tile calls Image from its renderer, on the UI goroutine, so it must
// return at once, without touching the network: a remote image that is not
// at hand fails (wrapping ErrRemoteImage), and whoever fetches it calls
// Tile.ReloadImages (through fyne.Do) once it arrived. A Tile remembers
// what each reference resolved to until then, and shows its flat
// background where Image fails.
type ImageSource interface {
	Image(ref string) (fyne.Resource, error)
}

// PixelScale, when set, tells every tile how many pixels its canvas has per
// logical unit (0: not known), so that tiles hand fyne their images scaled
// to exactly the pixels they are drawn on, and fyne never scales them in
// software (it does whenever it makes an image's texture again, which a
// resize does: at every step of a flip, and when one ends). The emulator's
// window sets it once, before showing tiles, from fyne's GL driver, which
// knows the canvas of each object; fyne's test driver does not (it answers
// with its last window's), and a tile drawn by `openmpns render` on a canvas
// of its own leaves it unset: fyne then scales the decoded image as before.
var PixelScale func(fyne.CanvasObject) float32

// ErrRemoteImage is returned by FSImages for http(s) references, which it
// does not fetch.
var ErrRemoteImage = errors.New("tileview: remote image not available from this source")

// FSImages is an ImageSource that reads the images an app ships with from a
// file system holding the app's files, at the path tile.AppPath gives.
// Remote references (tile.IsRemote) fail with ErrRemoteImage.
type FSImages struct {
	FS fs.FS
}

var _ ImageSource = FSImages{}

// Image reads ref from the file system.
func (s FSImages) Image(ref string) (fyne.Resource, error) {
	if s.FS == nil {
		return nil, fmt.Errorf("tile: image %q: no app file system", ref)
	}
	if tile.IsRemote(ref) {
		return nil, fmt.Errorf("image %q: %w", ref, ErrRemoteImage)
	}
	p, err := tile.AppPath(ref)
	if err != nil {
		return nil, err
	}
	data, err := fs.ReadFile(s.FS, p)
	if err != nil {
		return nil, fmt.Errorf("tile: image %q: %w", ref, err)
	}
	return fyne.NewStaticResource(p, data), nil
}
