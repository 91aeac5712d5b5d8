// Package assets holds the files the emulator ships with: the default apps
// manifest (apps/apps.json) and each app's own directory (apps/news,
// apps/photos, ...: its assets, which hold its icon under icons/, its tile
// images under images/ and its lock screen icon under lock/). The
// emulator/apps package reads them through FS.
//
// The PNGs are drawn by gen.go; run `go generate ./assets` to draw them
// again after changing it.
package assets

import "embed"

//go:generate go run gen.go

// FS holds the directory apps: the default manifest apps/apps.json and the
// files it names, relative to apps/.
//
//go:embed apps
var FS embed.FS
