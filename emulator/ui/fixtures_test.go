package ui

import (
	"os"
	"time"

	"github.com/openmpns/openmpns/emulator/tile"
	"github.com/openmpns/openmpns/emulator/ui/tileview"
	"github.com/openmpns/openmpns/shared/payload"
)

var testImages = tileview.FSImages{FS: os.DirFS("testdata")}

// testTime is the fixed clock of the golden images.
var testTime = time.Date(2013, 10, 21, 12, 38, 5, 0, time.UTC)

func newTestTile(tmpl payload.Template, size tile.Size, fields map[string]string) *tileview.Tile {
	s := tile.NewState("", tmpl, nil)
	s.Apply(&payload.Tile{Template: tmpl, Fields: fields})
	t := tileview.New(s, size)
	t.SetImages(testImages)
	return t
}

// sampleTiles is a realistic start screen: flip, cycle and iconic tiles of
// all three sizes, with and without images and counts.
func sampleTiles() []Pinned {
	return []Pinned{
		{"mail", newTestTile(payload.TemplateFlip, tile.Medium, map[string]string{
			payload.Title: "Mail", payload.Count: "7", payload.BackgroundImage: "/assets/front.png",
			payload.BackTitle: "alice@example.org", payload.BackContent: "Lunch at noon?",
		})},
		{"messaging", newTestTile(payload.TemplateIconic, tile.Medium, map[string]string{
			payload.Title: "Messaging", payload.Count: "5", payload.IconImage: "/assets/icon.png", payload.SmallIconImage: "/assets/icon_small.png",
		})},
		{"photos", newTestTile(payload.TemplateCycle, tile.Wide, map[string]string{
			payload.Title: "Photos", payload.CycleImage(1): "/assets/cycle1.png", payload.CycleImage(2): "/assets/cycle2.png",
		})},
		{"phone", newTestTile(payload.TemplateIconic, tile.Small, map[string]string{
			payload.Count: "2", payload.SmallIconImage: "/assets/icon_small.png",
		})},
		{"store", newTestTile(payload.TemplateFlip, tile.Small, map[string]string{payload.Title: "Store"})},
		{"games", newTestTile(payload.TemplateIconic, tile.Small, map[string]string{
			payload.SmallIconImage: "/assets/icon_small.png", payload.BackgroundColor: "#FF008A00",
		})},
		{"music", newTestTile(payload.TemplateFlip, tile.Small, map[string]string{
			payload.SmallBackgroundImage: "/assets/front_small.png",
		})},
		{"news", newTestTile(payload.TemplateFlip, tile.Medium, map[string]string{
			payload.Title: "News", payload.Count: "12", payload.BackTitle: "Top story",
			payload.BackContent: "Push service back online after maintenance",
		})},
		{"weather", newTestTile(payload.TemplateFlip, tile.Wide, map[string]string{
			payload.Title: "Weather", payload.WideBackgroundImage: "/assets/front_wide.png",
			payload.BackTitle: "Seattle", payload.WideBackContent: "Rain, 12°C, wind 20 km/h from the south",
			payload.WideBackBackgroundImage: "/assets/back_wide.png",
		})},
	}
}
