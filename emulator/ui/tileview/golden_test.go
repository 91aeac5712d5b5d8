package tileview_test

import (
	"image"
	"os"
	"testing"

	"fyne.io/fyne/v2/test"

	"github.com/openmpns/openmpns/emulator/accent"
	"github.com/openmpns/openmpns/emulator/internal/golden"
	"github.com/openmpns/openmpns/emulator/render"
	"github.com/openmpns/openmpns/emulator/tile"
	"github.com/openmpns/openmpns/emulator/ui/tileview"
	"github.com/openmpns/openmpns/shared/payload"
)

var assets = tileview.FSImages{FS: os.DirFS("testdata")}

func state(tmpl payload.Template, fields map[string]string) *tile.State {
	s := tile.NewState("", tmpl, nil)
	s.Apply(&payload.Tile{Template: tmpl, Fields: fields})
	return s
}

var (
	flipFields = map[string]string{
		payload.Title:                   "Mail",
		payload.Count:                   "7",
		payload.BackgroundImage:         "/assets/front.png",
		payload.SmallBackgroundImage:    "/assets/front_small.png",
		payload.WideBackgroundImage:     "/assets/front_wide.png",
		payload.BackTitle:               "alice@example.org",
		payload.BackContent:             "Lunch at noon? The new place on 5th",
		payload.BackBackgroundImage:     "/assets/back.png",
		payload.WideBackContent:         "Lunch at noon? The new place on 5th street has a patio",
		payload.WideBackBackgroundImage: "/assets/back_wide.png",
	}
	wp75Fields = map[string]string{
		payload.Title:               "Weather",
		payload.Count:               "3",
		payload.BackgroundImage:     "/assets/front.png",
		payload.BackTitle:           "Seattle",
		payload.BackContent:         "Rain, 12°C, wind 20 km/h from the south",
		payload.BackBackgroundImage: "",
	}
	cycleFields = map[string]string{
		payload.Title:                "Photos",
		payload.Count:                "12",
		payload.SmallBackgroundImage: "/assets/front_small.png",
		payload.CycleImage(1):        "/assets/cycle1.png",
		payload.CycleImage(2):        "/assets/cycle2.png",
	}
	iconicFields = map[string]string{
		payload.Title:          "Messaging",
		payload.Count:          "5",
		payload.IconImage:      "/assets/icon.png",
		payload.SmallIconImage: "/assets/icon_small.png",
		payload.WideContent1:   "Alice Smith",
		payload.WideContent2:   "Are we still on for tonight?",
		payload.WideContent3:   "Bob: see you there",
	}
)

func TestGoldenTiles(t *testing.T) {
	test.NewTempApp(t)
	type tc struct {
		name   string
		state  *tile.State
		size   tile.Size
		back   bool
		accent string
		cycle  int
	}
	var cases []tc
	for _, tmpl := range []struct {
		name   string
		tmpl   payload.Template
		fields map[string]string
		backs  bool
	}{
		{"wp75", payload.TemplateDefault, wp75Fields, true},
		{"flip", payload.TemplateFlip, flipFields, true},
		{"cycle", payload.TemplateCycle, cycleFields, false},
		{"iconic", payload.TemplateIconic, iconicFields, false},
	} {
		for _, size := range []tile.Size{tile.Small, tile.Medium, tile.Wide} {
			if !tile.Allows(tmpl.tmpl, size) {
				continue // a WP7.5 tile is never wide
			}
			cases = append(cases, tc{name: tmpl.name + "_" + size.String() + "_front", state: state(tmpl.tmpl, tmpl.fields), size: size})
			if tmpl.backs && size != tile.Small {
				cases = append(cases, tc{name: tmpl.name + "_" + size.String() + "_back", state: state(tmpl.tmpl, tmpl.fields), size: size, back: true})
			}
		}
	}
	cleared := state(payload.TemplateFlip, flipFields)
	cleared.Apply(&payload.Tile{Template: payload.TemplateFlip, Cleared: []string{payload.Title, payload.Count}})
	cases = append(cases,
		tc{name: "flip_medium_count99", state: state(payload.TemplateFlip, map[string]string{payload.Title: "Overflowing title that is far too long", payload.Count: "250"}), size: tile.Medium, accent: "crimson"},
		tc{name: "flip_medium_cleared", state: cleared, size: tile.Medium},
		tc{name: "flip_medium_missing_image", state: state(payload.TemplateFlip, map[string]string{payload.Title: "No image", payload.BackgroundImage: "/assets/nope.png"}), size: tile.Medium, accent: "lime"},
		tc{name: "cycle_medium_second", state: state(payload.TemplateCycle, cycleFields), size: tile.Medium, cycle: 1},
		tc{name: "iconic_medium_nocount", state: state(payload.TemplateIconic, map[string]string{payload.Title: "Messaging", payload.IconImage: "/assets/icon.png"}), size: tile.Medium},
		tc{name: "iconic_wide_nocontent_color", state: state(payload.TemplateIconic, map[string]string{payload.Title: "Messaging", payload.Count: "42", payload.IconImage: "/assets/icon.png", payload.BackgroundColor: "#FF825A2C"}), size: tile.Wide},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := []render.Option{render.WithImages(assets), render.WithCycleImage(c.cycle)}
			if c.accent != "" {
				a, _ := accent.Lookup(c.accent)
				opts = append(opts, render.WithAccent(a))
			}
			img := render.Tile(c.state, c.size, c.back, 1, opts...)
			w, h := c.size.Pixels()
			if got := img.Bounds().Size(); got != image.Pt(w, h) {
				t.Errorf("image is %v, want %dx%d", got, w, h)
			}
			golden.Assert(t, c.name+".png", img)
		})
	}
}

// profiles are the screens the goldens are drawn for: the four Windows
// Phone 8 screens, and the three smaller ones with "show more tiles".
func profiles() []tile.Profile {
	ps := tile.Profiles()
	for _, p := range tile.Profiles()[:3] {
		ps = append(ps, p.MoreTiles(true))
	}
	return ps
}

// profileName names a profile in a golden's file name.
func profileName(p tile.Profile) string {
	if p.Columns == 6 && p != tile.HD1080 {
		return p.Name + "_more"
	}
	return p.Name
}

// TestGoldenProfiles draws a flip tile at each size on each screen, at
// the pixels it covers there (tile.Profile.TilePixels).
func TestGoldenProfiles(t *testing.T) {
	test.NewTempApp(t)
	for _, p := range profiles() {
		for _, size := range []tile.Size{tile.Small, tile.Medium, tile.Wide} {
			name := "profile_" + profileName(p) + "_" + size.String()
			t.Run(name, func(t *testing.T) {
				img := render.Tile(state(payload.TemplateFlip, flipFields), size, false, 1, render.WithImages(assets), render.WithProfile(p))
				w, h := p.TilePixels(size)
				if got := img.Bounds().Size(); got != image.Pt(w, h) {
					t.Errorf("image is %v, want %dx%d", got, w, h)
				}
				golden.Assert(t, name+".png", img)
			})
		}
	}
}
