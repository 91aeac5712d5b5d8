package cli

import (
	"io/fs"

	"github.com/openmpns/openmpns/assets"
)

func init() {
	// The demo backend serves the shipped photos, so the Photos app's cycle
	// tile exercises remote images from an allowed domain.
	if sub, err := fs.Sub(assets.FS, "apps/photos/images"); err == nil {
		demoImages = sub
	}
}
