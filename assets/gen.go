//go:build ignore

// Gen draws the PNGs of the built-in apps, each in its own directory
// (apps/NAME: icons/, images/ and lock/), with the standard library alone: white glyphs on a transparent background for the app icons
// and the iconic tiles, and flat illustrated scenes for the news and photos
// tiles. Run it from this directory (go generate ./assets does): it
// overwrites the files, and draws the same bytes every time.
package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"log"
	"math"
	"os"
	"path/filepath"
)

func main() {
	glyphs := map[string]shape{
		"news": news, "photos": photos, "mail": mail,
		"settings": settings, "calendar": calendar, "music": music,
	}
	for name, g := range glyphs {
		write("apps/"+name+"/icons/"+name+".png", glyph(96, g))
	}
	// Iconic tile icons keep about a fifth of their box free on each side.
	for _, name := range []string{"mail", "settings", "calendar", "music"} {
		write("apps/"+name+"/images/"+name+"_icon.png", glyph(202, scaled(glyphs[name], 0.8)))
		write("apps/"+name+"/images/"+name+"_icon_small.png", glyph(110, scaled(glyphs[name], 0.8)))
	}
	// Lock screen icons: 38×38, white on transparent, the glyph filling
	// most of the box (Microsoft's "Lock screen notifications for Windows
	// Phone 8").
	for _, name := range []string{"news", "photos", "mail", "calendar"} {
		write("apps/"+name+"/lock/"+name+".png", glyph(38, scaled(glyphs[name], 0.95)))
	}
	write("apps/news/images/news_small.png", paint(159, 159, city))
	write("apps/news/images/news_medium.png", paint(336, 336, city))
	write("apps/news/images/news_wide.png", paint(691, 336, city))
	write("apps/news/images/news_back.png", paint(336, 336, paper))
	write("apps/news/images/news_back_wide.png", paint(691, 336, paper))
	write("apps/photos/images/photos_small.png", paint(159, 159, lake))
	for i, sc := range []scene{lake, dunes, hills, night} {
		write(fmt.Sprintf("apps/photos/images/photo%d.png", i+1), paint(691, 336, sc))
	}
}

func write(name string, img image.Image) {
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&buf, img); err != nil {
		log.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
	log.Printf("%s: %d bytes", name, buf.Len())
}

// A shape reports whether a point of the unit square (y down) is inside.
type shape func(x, y float64) bool

// glyph draws s in white on transparent, size×size, 4×4 samples a pixel.
func glyph(size int, s shape) *image.NRGBA {
	const n = 4
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	for py := 0; py < size; py++ {
		for px := 0; px < size; px++ {
			in := 0
			for sy := 0; sy < n; sy++ {
				for sx := 0; sx < n; sx++ {
					x := (float64(px) + (float64(sx)+0.5)/n) / float64(size)
					y := (float64(py) + (float64(sy)+0.5)/n) / float64(size)
					if s(x, y) {
						in++
					}
				}
			}
			if in > 0 {
				img.SetNRGBA(px, py, color.NRGBA{255, 255, 255, uint8(in * 255 / (n * n))})
			}
		}
	}
	return img
}

func scaled(s shape, k float64) shape {
	return func(x, y float64) bool { return s(0.5+(x-0.5)/k, 0.5+(y-0.5)/k) }
}

func union(ss ...shape) shape {
	return func(x, y float64) bool {
		for _, s := range ss {
			if s(x, y) {
				return true
			}
		}
		return false
	}
}

func minus(a, b shape) shape { return func(x, y float64) bool { return a(x, y) && !b(x, y) } }

func circle(cx, cy, r float64) shape {
	return func(x, y float64) bool { return math.Hypot(x-cx, y-cy) <= r }
}

// rrect is a rectangle with corners rounded by r.
func rrect(x0, y0, x1, y1, r float64) shape {
	return func(x, y float64) bool {
		if x < x0 || x > x1 || y < y0 || y > y1 {
			return false
		}
		dx := math.Max(0, math.Max(x0+r-x, x-(x1-r)))
		dy := math.Max(0, math.Max(y0+r-y, y-(y1-r)))
		return dx*dx+dy*dy <= r*r
	}
}

// frame is the outline of rrect, w thick.
func frame(x0, y0, x1, y1, r, w float64) shape {
	return minus(rrect(x0, y0, x1, y1, r), rrect(x0+w, y0+w, x1-w, y1-w, math.Max(0, r-w)))
}

// line is a segment with round caps, w thick.
func line(ax, ay, bx, by, w float64) shape {
	return func(x, y float64) bool {
		vx, vy := bx-ax, by-ay
		t := ((x-ax)*vx + (y-ay)*vy) / (vx*vx + vy*vy)
		t = math.Max(0, math.Min(1, t))
		return math.Hypot(x-(ax+t*vx), y-(ay+t*vy)) <= w/2
	}
}

// poly is a polygon (even-odd rule) through the points x0, y0, x1, y1, ...
func poly(pts ...float64) shape {
	return func(x, y float64) bool {
		in := false
		n := len(pts) / 2
		for i, j := 0, n-1; i < n; j, i = i, i+1 {
			xi, yi, xj, yj := pts[2*i], pts[2*i+1], pts[2*j], pts[2*j+1]
			if (yi > y) != (yj > y) && x < (xj-xi)*(y-yi)/(yj-yi)+xi {
				in = !in
			}
		}
		return in
	}
}

// ellipse is centred on cx, cy, with radii rx, ry, turned by a radians.
func ellipse(cx, cy, rx, ry, a float64) shape {
	s, c := math.Sincos(a)
	return func(x, y float64) bool {
		dx, dy := x-cx, y-cy
		u, v := dx*c+dy*s, -dx*s+dy*c
		return u*u/(rx*rx)+v*v/(ry*ry) <= 1
	}
}

var news = union(
	frame(0.12, 0.2, 0.88, 0.8, 0.04, 0.05),
	rrect(0.23, 0.32, 0.46, 0.5, 0.01),
	line(0.53, 0.34, 0.76, 0.34, 0.045),
	line(0.53, 0.42, 0.76, 0.42, 0.045),
	line(0.53, 0.5, 0.76, 0.5, 0.045),
	line(0.24, 0.59, 0.76, 0.59, 0.045),
	line(0.24, 0.67, 0.62, 0.67, 0.045),
)

var photos = union(
	frame(0.12, 0.2, 0.88, 0.8, 0.04, 0.05),
	circle(0.65, 0.37, 0.07),
	poly(0.17, 0.75, 0.4, 0.43, 0.55, 0.62, 0.65, 0.5, 0.83, 0.75),
)

var mail = union(
	frame(0.12, 0.24, 0.88, 0.76, 0.03, 0.05),
	line(0.16, 0.29, 0.5, 0.55, 0.05),
	line(0.5, 0.55, 0.84, 0.29, 0.05),
)

func settings(x, y float64) bool {
	dx, dy := x-0.5, y-0.5
	r := math.Hypot(dx, dy)
	f := math.Mod(math.Atan2(dy, dx)/(2*math.Pi)*8+8.5, 1)
	outer := 0.27
	if math.Abs(f-0.5) < 0.2 {
		outer = 0.37
	}
	return r <= outer && r >= 0.12
}

var calendar = func() shape {
	parts := []shape{
		frame(0.16, 0.2, 0.84, 0.84, 0.03, 0.045),
		rrect(0.16, 0.2, 0.84, 0.34, 0.03),
		line(0.33, 0.13, 0.33, 0.25, 0.06),
		line(0.67, 0.13, 0.67, 0.25, 0.06),
	}
	for j := 0; j < 3; j++ {
		for i := 0; i < 4; i++ {
			if j == 2 && i == 3 {
				continue
			}
			x, y := 0.245+float64(i)*0.135, 0.42+float64(j)*0.13
			parts = append(parts, rrect(x, y, x+0.08, y+0.08, 0.01))
		}
	}
	return union(parts...)
}()

var music = union(
	ellipse(0.34, 0.72, 0.11, 0.075, -0.35),
	ellipse(0.69, 0.64, 0.11, 0.075, -0.35),
	line(0.425, 0.7, 0.425, 0.26, 0.05),
	line(0.775, 0.62, 0.775, 0.18, 0.05),
	poly(0.4, 0.22, 0.8, 0.14, 0.8, 0.25, 0.4, 0.33),
)

// A scene gives the colour at u, v: v runs from 0 (top) to 1 (bottom) and
// u from 0 to width/height, so that a wide image shows more of the scene
// rather than a stretched one.
type scene func(u, v float64) color.NRGBA

// paint draws sc at w×h, 3×3 samples a pixel.
func paint(w, h int, sc scene) *image.NRGBA {
	const n = 3
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for py := 0; py < h; py++ {
		for px := 0; px < w; px++ {
			var r, g, b int
			for sy := 0; sy < n; sy++ {
				for sx := 0; sx < n; sx++ {
					u := (float64(px) + (float64(sx)+0.5)/n) / float64(h)
					v := (float64(py) + (float64(sy)+0.5)/n) / float64(h)
					c := sc(u, v)
					r, g, b = r+int(c.R), g+int(c.G), b+int(c.B)
				}
			}
			img.SetNRGBA(px, py, color.NRGBA{uint8(r / (n * n)), uint8(g / (n * n)), uint8(b / (n * n)), 255})
		}
	}
	return img
}

func rgb(v uint32) color.NRGBA {
	return color.NRGBA{uint8(v >> 16), uint8(v >> 8), uint8(v), 255}
}

// mix blends a into b by t in 0..1, in steps of 1/24 so that gradients
// come out as bands, which compress well and look drawn.
func mix(a, b color.NRGBA, t float64) color.NRGBA {
	t = math.Round(math.Max(0, math.Min(1, t))*24) / 24
	l := func(x, y uint8) uint8 { return uint8(float64(x) + (float64(y)-float64(x))*t + 0.5) }
	return color.NRGBA{l(a.R, b.R), l(a.G, b.G), l(a.B, b.B), 255}
}

// hash is a fixed pseudo-random value in 0..1 for an integer pair.
func hash(i, j int) float64 {
	x := uint32(i)*0x9E3779B1 ^ uint32(j)*0x85EBCA77
	x ^= x >> 15
	x *= 0x2C1B3C6D
	x ^= x >> 12
	x *= 0x297A2D39
	x ^= x >> 15
	return float64(x) / float64(math.MaxUint32)
}

// city is a skyline at dusk, for the news tiles.
func city(u, v float64) color.NRGBA {
	c := mix(rgb(0x1D2B53), rgb(0xFF8A5B), v/0.8)
	if math.Hypot(u-0.72, v-0.5) < 0.15 {
		c = rgb(0xFFD166)
	}
	// Buildings 0.09 wide, a gap of 0.015 between them.
	const step = 0.105
	i := int(math.Floor(u / step))
	x := u - float64(i)*step
	top := 1 - (0.22 + 0.45*hash(i, 1))
	if x < step-0.015 && v > top {
		c = mix(rgb(0x2B2140), rgb(0x3C2F5C), hash(i, 2))
		wx, wy := math.Mod(x-0.012, 0.026), math.Mod(v-top-0.03, 0.045)
		col, row := int((x-0.012)/0.026), int((v-top-0.03)/0.045)
		if x > 0.012 && x < step-0.03 && v > top+0.03 && wx < 0.014 && wy < 0.022 && hash(i*31+col, row) < 0.45 {
			c = rgb(0xFFD27A)
		}
	}
	if v > 0.93 {
		c = rgb(0x16121F)
	}
	return c
}

// paper is a folded newspaper on a dark ground, for the back of the news tile.
func paper(u, v float64) color.NRGBA {
	c := mix(rgb(0x23203A), rgb(0x3A3358), v)
	if u > 1.03 {
		// A second paper on wide tiles.
		u -= 1.05
	}
	if u > 0.1 && u < 0.9 && v > 0.12 && v < 0.88 {
		c = rgb(0xEDE7DA)
		switch {
		case v > 0.18 && v < 0.27 && u > 0.16 && u < 0.84:
			c = rgb(0x3A3358)
		case u > 0.16 && u < 0.47 && v > 0.33 && v < 0.58:
			c = mix(rgb(0x9CB3D9), rgb(0x5B7DB1), (v-0.33)/0.25)
		case math.Mod(v-0.33, 0.07) < 0.03 && v > 0.33 && v < 0.83 && (u > 0.52 || v > 0.6) && u > 0.16 && u < 0.84:
			c = rgb(0xA9A39A)
		}
	}
	return c
}

// ridge is the height of a mountain line at u.
func ridge(u, base, amp, freq, phase float64) float64 {
	return base - amp*(0.6*math.Sin(u*freq+phase)+0.3*math.Sin(u*freq*2.3+phase*1.7)+0.1*math.Sin(u*freq*5.1))
}

// lake is mountains mirrored in a lake under a clear sky.
func lake(u, v float64) color.NRGBA {
	const shore = 0.66
	if v < shore {
		c := mix(rgb(0x5AA9E6), rgb(0xD8ECF7), v/shore)
		far := ridge(u, 0.42, 0.14, 2.2, 0.4)
		near := ridge(u, 0.55, 0.06, 4.1, 2.0)
		switch {
		case v > near:
			c = rgb(0x2E5E4E)
		case v > far && v < 0.34:
			c = rgb(0xF4F7FA)
		case v > far:
			c = mix(rgb(0x5D6D8C), rgb(0x7E8CA8), (v-far)/0.3)
		}
		return c
	}
	// The lake mirrors the land above the shore, darker.
	m := 2*shore - v
	c := mix(rgb(0x3F86C0), rgb(0x1D4F7A), (v-shore)/(1-shore))
	if near := ridge(u, 0.55, 0.06, 4.1, 2.0); m > near {
		c = rgb(0x234A3E)
	} else if far := ridge(u, 0.42, 0.14, 2.2, 0.4); m > far {
		c = rgb(0x4E5C78)
	}
	if math.Mod(v*40+math.Sin(u*9)*0.6, 3) < 0.25 {
		c = mix(c, rgb(0xFFFFFF), 0.25)
	}
	return c
}

// dunes is a desert at sunset.
func dunes(u, v float64) color.NRGBA {
	c := mix(rgb(0xF9C784), rgb(0xF26B38), v/0.6)
	if math.Hypot(u-0.6, v-0.42) < 0.1 {
		c = rgb(0xFFF1C1)
	}
	layers := []struct {
		base, amp, freq, phase float64
		lit, dark              uint32
	}{
		{0.55, 0.06, 2.5, 0.3, 0xE08E45, 0xC06A2B},
		{0.7, 0.08, 1.9, 2.1, 0xD9772F, 0xA9541F},
		{0.86, 0.07, 2.7, 4.0, 0xC4622A, 0x8C4019},
	}
	for _, l := range layers {
		top := l.base - l.amp*math.Sin(u*l.freq+l.phase)
		if v > top {
			// Lit at the crest, in shade further down.
			c = mix(rgb(l.lit), rgb(l.dark), (v-top)/0.18)
		}
	}
	return c
}

// hills is green hills, a tree and the sun.
func hills(u, v float64) color.NRGBA {
	c := mix(rgb(0x4FA3E0), rgb(0xCDE9F6), v/0.6)
	if math.Hypot(u-0.35, v-0.22) < 0.09 {
		c = rgb(0xFFF3B0)
	}
	for k, l := range []struct {
		base, amp, freq, phase float64
		col                    uint32
	}{
		{0.58, 0.07, 1.7, 0.5, 0x8CC152},
		{0.72, 0.08, 2.3, 2.4, 0x5E9E3A},
		{0.88, 0.06, 1.4, 4.2, 0x3F7A2A},
	} {
		if v > l.base-l.amp*math.Sin(u*l.freq+l.phase) {
			c = rgb(l.col)
			if k == 2 {
				c = mix(c, rgb(0x2C5A1E), (v-0.8)/0.2)
			}
		}
	}
	// A tree on the middle hill.
	const tx = 1.32
	ground := 0.72 - 0.08*math.Sin(tx*2.3+2.4)
	if math.Abs(u-tx) < 0.018 && v > ground-0.16 && v < ground+0.01 {
		c = rgb(0x5B3A1E)
	}
	if math.Hypot(u-tx, v-(ground-0.2)) < 0.085 || math.Hypot(u-tx-0.06, v-(ground-0.15)) < 0.06 {
		c = rgb(0x2F6B2A)
	}
	return c
}

// night is a crescent moon and stars over a dark ridge.
func night(u, v float64) color.NRGBA {
	c := mix(rgb(0x0B1026), rgb(0x2A2F5E), v)
	const cell = 0.045
	i, j := int(u/cell), int(v/cell)
	sx := (float64(i) + 0.2 + 0.6*hash(i, j)) * cell
	sy := (float64(j) + 0.2 + 0.6*hash(j, i+7)) * cell
	if hash(i+3, j*5) < 0.35 && math.Hypot(u-sx, v-sy) < 0.003+0.004*hash(i, j+11) {
		c = rgb(0xF5F3CE)
	}
	if math.Hypot(u-1.55, v-0.3) < 0.11 && math.Hypot(u-1.6, v-0.27) > 0.1 {
		c = rgb(0xFFF6D5)
	}
	if v > ridge(u, 0.8, 0.08, 2.8, 1.0) {
		c = rgb(0x05070F)
	}
	return c
}
