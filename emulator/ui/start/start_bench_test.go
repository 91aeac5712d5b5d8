package start

import (
	"fmt"
	"testing"

	"fyne.io/fyne/v2/test"

	"github.com/openmpns/openmpns/emulator/tile"
	"github.com/openmpns/openmpns/emulator/ui/handset"
	"github.com/openmpns/openmpns/emulator/ui/internal/phonetest"
	"github.com/openmpns/openmpns/emulator/ui/internal/uitest"
	"github.com/openmpns/openmpns/emulator/ui/tileview"
)

// thirtyTiles is a start screen of 30 live tiles: the sample mix repeated.
func thirtyTiles() []Pinned {
	var tiles []Pinned
	for len(tiles) < 30 {
		for _, p := range sampleTiles() {
			if len(tiles) == 30 {
				break
			}
			p.Key = fmt.Sprintf("%s-%d", p.Key, len(tiles))
			tiles = append(tiles, p)
		}
	}
	return tiles
}

// BenchmarkStartScreen30Tiles measures a frame of a start screen with 30
// live tiles, one of which flips: the flip (which redraws that tile) and a
// full software render of the phone's canvas, 512×928 pixels. That render
// is the worst case: fyne's software painter rescales every tile image on
// every frame, where the GL driver keeps them as textures. The sub-benchmarks
// without "render" measure the start screen's own work.
func BenchmarkStartScreen30Tiles(b *testing.B) {
	uitest.App(b, true)
	s := NewStartScreen()
	tiles := thirtyTiles()
	s.SetTiles(tiles)
	w := uitest.Window(b, handset.NewPhone(s), phonetest.Size)
	c := w.Canvas()
	var flippers []*tileview.Tile
	for _, p := range tiles {
		if p.Tile.HasBack() {
			flippers = append(flippers, p.Tile)
		}
	}
	objects := float64(len(test.LaidOutObjects(c.Content())))
	b.Run("flip+render", func(b *testing.B) {
		i := 0
		for b.Loop() {
			flippers[i%len(flippers)].Flip()
			c.Capture()
			i++
		}
		b.ReportMetric(objects, "objects")
	})
	b.Run("flip", func(b *testing.B) {
		i := 0
		for b.Loop() {
			flippers[i%len(flippers)].Flip()
			i++
		}
	})
	b.Run("update+render", func(b *testing.B) {
		i := 0
		for b.Loop() {
			s.Tile(tiles[i%len(tiles)].Key).Refresh()
			c.Capture()
			i++
		}
	})
	b.Run("resize", func(b *testing.B) {
		key := tiles[0].Key
		sizes := []tile.Size{tile.Small, tile.Wide, tile.Medium}
		i := 0
		for b.Loop() {
			s.SetTileSize(key, sizes[i%3])
			i++
		}
	})
}
