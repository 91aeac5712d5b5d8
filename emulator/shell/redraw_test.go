package shell

import (
	"fmt"
	"testing"

	"github.com/openmpns/openmpns/emulator/accent"
	"github.com/openmpns/openmpns/emulator/ui/start"
	"github.com/openmpns/openmpns/shared/payload"
	"github.com/openmpns/openmpns/shared/sender"
)

// drawCounts is the draw count of every tile of every phone, by
// "phone/key".
func drawCounts(sh *Shell) map[string]int {
	out := map[string]int{}
	for i, d := range sh.Devices() {
		out[fmt.Sprintf("%d/%s", i+1, start.SettingsKey)] = d.start.Tile(start.SettingsKey).Renders()
		for _, p := range d.start.Tiles() {
			out[fmt.Sprintf("%d/%s", i+1, p.Key)] = p.Tile.Renders()
		}
	}
	return out
}

// drawn lists the tiles drawn since before, with how many times.
func drawn(sh *Shell, before map[string]int) map[string]int {
	out := map[string]int{}
	for k, n := range drawCounts(sh) {
		if n != before[k] {
			out[k] = n - before[k]
		}
	}
	return out
}

// TestPushDrawsOnlyItsTile runs three phones of 30 live tiles each. A push
// to one tile of the second phone, through the server, draws that tile
// once and no other of the 93; a change of the first phone's accent draws
// the first phone's tiles (they follow its accent) and none of the
// others'.
func TestPushDrawsOnlyItsTile(t *testing.T) {
	r := threePhones(t)
	sh := r.Shell
	const app = "perf.app00"
	uris := map[int]string{}
	onUI(t, sh, "every push app bound on every phone", func() bool {
		for i, d := range sh.Devices() {
			for j := range pushApps {
				pg, _ := d.Phone().Page(fmt.Sprintf("perf.app%02d", j))
				if pg.URI == "" || !pg.TileBound {
					return false
				}
				if j == 0 {
					uris[i] = pg.URI
				}
			}
		}
		return true
	})
	var before map[string]int
	sh.Update(func() { before = drawCounts(sh) })
	if len(before) != 3*31 {
		t.Fatalf("%d tiles, want 93", len(before))
	}

	if resp := send(t)(sender.NewTile(uris[1], &payload.Tile{Template: payload.TemplateFlip,
		Fields: map[string]string{payload.Count: "9"}}, sender.Immediate)); !resp.Delivered() {
		t.Fatalf("push: %v", resp)
	}
	onUI(t, sh, "the count on phone 2's tile", func() bool {
		return sh.Devices()[1].start.Tile(app).State().Count() == 9
	})
	sh.Update(func() {
		got := drawn(sh, before)
		if len(got) != 1 || got["2/"+app] != 1 {
			t.Errorf("after a push to phone 2's %s, tiles drawn: %v; want only that tile, once", app, got)
		}
		before = drawCounts(sh)
	})

	sh.Devices()[0].Phone().SetLook(false, "lime")
	onUI(t, sh, "phone 1 in lime", func() bool { return sh.Devices()[0].look == look{dark: true, accent: accent.Lime} })
	sh.Update(func() {
		got := drawn(sh, before)
		for k, n := range got {
			if k[:2] != "1/" || n != 1 {
				t.Errorf("after phone 1's accent changed, tile %s was drawn %d times (want phone 1's tiles once each, no other)", k, n)
			}
		}
		if len(got) != 31 {
			t.Errorf("after phone 1's accent changed, %d tiles drawn, want phone 1's 31: %v", len(got), got)
		}
	})
}
