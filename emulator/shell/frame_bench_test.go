package shell

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"fyne.io/fyne/v2"

	"github.com/openmpns/openmpns/emulator/apps"
	"github.com/openmpns/openmpns/emulator/phone"
	"github.com/openmpns/openmpns/emulator/ui/start"
	"github.com/openmpns/openmpns/shared/payload"
)

// thirtyApps is a manifest of 30 apps made from the built-in assets: flip
// tiles with front and back images (medium and wide), text-only flip
// tiles, cycle tiles of four photos, iconic tiles with counts, small tiles
// (the mix of docs/emulator.md's Performance section). The first pushApps
// use push (a remote image domain), so that a test can push to them.
func thirtyApps(t testing.TB) *apps.Manifest {
	t.Helper()
	type kind struct {
		template, size string
		fields         map[string]string
	}
	kinds := []kind{
		{"FlipTile", "medium", map[string]string{"BackgroundImage": "news/images/news_medium.png", "BackBackgroundImage": "news/images/news_back.png", "BackTitle": "Top story", "BackContent": "Push service back online", "Count": "3"}},
		{"FlipTile", "wide", map[string]string{"WideBackgroundImage": "news/images/news_wide.png", "WideBackBackgroundImage": "news/images/news_back_wide.png", "BackTitle": "Seattle", "WideBackContent": "Rain, 12°C, wind 20 km/h"}},
		{"CycleTile", "medium", map[string]string{"CycleImage1": "photos/images/photo1.png", "CycleImage2": "photos/images/photo2.png", "CycleImage3": "photos/images/photo3.png", "CycleImage4": "photos/images/photo4.png"}},
		{"FlipTile", "small", map[string]string{"SmallBackgroundImage": "news/images/news_small.png", "BackTitle": "x"}},
		{"IconicTile", "medium", map[string]string{"IconImage": "mail/images/mail_icon.png", "SmallIconImage": "mail/images/mail_icon_small.png", "Count": "7", "WideContent1": "alice: lunch?"}},
		{"FlipTile", "medium", map[string]string{"BackTitle": "Back", "BackContent": "Text only flip tile, no images", "Count": "12"}},
	}
	var list []map[string]any
	for i := range 30 {
		k := kinds[i%len(kinds)]
		f := map[string]string{"Title": fmt.Sprintf("Tile %d", i+1)}
		for n, v := range k.fields {
			f[n] = v
		}
		a := map[string]any{"id": fmt.Sprintf("perf.app%02d", i), "name": fmt.Sprintf("App %d", i+1),
			"icon": "news/icons/news.png", "tile": map[string]any{"template": k.template, "size": k.size, "fields": f}}
		if i < pushApps {
			a["image_domains"] = []string{"images.example.com"}
		}
		list = append(list, a)
	}
	data, err := json.Marshal(map[string]any{"apps": list})
	if err != nil {
		t.Fatal(err)
	}
	man, err := apps.Parse(data, os.DirFS("../../assets/apps"))
	if err != nil {
		t.Fatal(err)
	}
	return man
}

// pushApps is how many of thirtyApps' apps open a push channel.
const pushApps = 3

// threePhones is a window of three phones with thirtyApps' 30 live tiles
// each, laid out at the size the emulator opens at.
func threePhones(t testing.TB) *rig {
	t.Helper()
	r := newRigWith(t, thirtyApps(t), nil, "")
	r.addPhone()
	r.addPhone()
	onUI(t, r.Shell, "30 tiles on each of three phones", func() bool {
		for _, d := range r.Shell.Devices() {
			if len(d.start.Tiles()) != 30 {
				return false
			}
		}
		return true
	})
	r.Shell.Update(func() { r.Window.Resize(r.Shell.WindowSize()) })
	return r
}

// frames steps the tiles' flip animations from a virtual clock, one
// frame at a time, as fyne's animation loop would at 60 frames a second.
type frames struct {
	now     time.Time
	running []running
}

type running struct {
	a     *fyne.Animation
	start time.Time
}

// attach makes every tile of every phone of sh hand its flips to f.
func (f *frames) attach(sh *Shell) {
	for _, d := range sh.Devices() {
		for _, p := range d.start.Tiles() {
			p.Tile.Animate = func(a *fyne.Animation) { f.running = append(f.running, running{a, f.now}) }
		}
	}
}

// step moves the clock one frame on and ticks every running animation.
func (f *frames) step(sh *Shell) {
	f.now = f.now.Add(time.Second / 60)
	sh.Tick(f.now)
	kept := f.running[:0]
	for _, r := range f.running {
		p := float32(f.now.Sub(r.start)) / float32(r.a.Duration)
		if p >= 1 {
			r.a.Tick(1)
			continue
		}
		if r.a.Curve != nil {
			p = r.a.Curve(p)
		}
		r.a.Tick(p)
		kept = append(kept, r)
	}
	f.running = kept
}

// BenchmarkTick3Phones30Tiles measures the emulator's own work for a
// window of three phones with 30 live tiles each, on fyne's test driver
// (no painting: what the GL driver then draws is measured by
// --frame-stats, see docs/benchmarks.md):
//
//   - frame: one animation frame (1/60 s of a virtual clock): the shell's
//     tick (which starts the flips and cycle steps that are due) and a
//     tick of every running flip, in steady state (tiles flip every
//     start.FlipEvery, 600 ms each, staggered).
//   - update: one tile update (a push that changed a tile's count) on one
//     phone, as the shell applies it.
//   - update-same: a tile update that changes nothing the tile shows.
//   - settings: a settings change on one phone (the controller refreshes
//     that phone's screens and tiles).
func BenchmarkTick3Phones30Tiles(b *testing.B) {
	r := threePhones(b)
	sh := r.Shell
	f := &frames{now: time.Now()}
	sh.Update(func() { f.attach(sh) })
	// Warm up: one flip period, so that every tile has its turn and the
	// flips overlap as they will.
	sh.Update(func() {
		for range int(start.FlipEvery / (time.Second / 60)) {
			f.step(sh)
		}
	})
	b.Run("frame", func(b *testing.B) {
		flips := 0
		for b.Loop() {
			sh.Update(func() { f.step(sh) })
			flips += len(f.running)
		}
		b.ReportMetric(float64(flips)/float64(b.N), "flipping/frame")
	})

	d := sh.Devices()[1]
	key := d.start.Tiles()[0].Key
	tl, _ := d.Phone().TileByKey(key)
	states := make([]phone.Tile, 2)
	for i := range states {
		states[i] = tl
		states[i].State = tl.State.Clone()
		states[i].State.Apply(&payload.Tile{Template: tl.State.Template, Fields: map[string]string{payload.Count: strconv.Itoa(i + 1)}})
	}
	b.Run("update", func(b *testing.B) {
		i := 0
		for b.Loop() {
			sh.Update(func() {
				d.showTile(states[i%2])
				d.refreshLock()
			})
			i++
		}
	})
	b.Run("update-same", func(b *testing.B) {
		for b.Loop() {
			sh.Update(func() {
				d.showTile(states[0])
				d.refreshLock()
			})
		}
	})
	b.Run("settings", func(b *testing.B) {
		for b.Loop() {
			sh.Update(func() { d.apply(phone.Change{Kind: phone.SettingsChanged}) })
		}
	})
}
