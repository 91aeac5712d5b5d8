package tileview

import (
	"bytes"
	"container/list"
	"hash/fnv"
	"image"
	"image/draw"
	"sync"

	xdraw "golang.org/x/image/draw"

	// The formats tile images come in.
	_ "image/gif"
	_ "image/jpeg"
	_ "image/png"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
)

// FaceCacheBytes bounds the memory of decoded tile images kept by all tiles
// together: about 70 medium (336×336) faces, or 35 wide ones.
const FaceCacheBytes = 32 << 20

// faces holds the decoded images of every tile. A flip swaps a tile's
// image between its front and back, and a cycle tile steps through up to
// nine: with a canvas.Image holding a Resource, fyne decodes the PNG again
// at every swap. Tiles draw decoded images from here instead, held as
// *image.RGBA: fyne's GL painter uploads those as they are, and converts
// any other kind each time it makes the image's texture (every step of a
// flip, see Tile).
var faces = newFaceCache(FaceCacheBytes)

// faceKey identifies an image by its content, so that tiles showing the same
// image (the same asset, or the same remote URL) share one decoded copy.
type faceKey struct {
	name string
	size int
	sum  uint64
}

func keyOf(res fyne.Resource) faceKey {
	b := res.Content()
	h := fnv.New64a()
	h.Write(b)
	return faceKey{name: res.Name(), size: len(b), sum: h.Sum64()}
}

// faceCache is a least-recently-used cache of decoded images, bounded by
// their pixel memory. It is safe for concurrent use.
type faceCache struct {
	mu    sync.Mutex
	limit int
	used  int
	lru   *list.List // of *faceEntry, most recent first
	byKey map[entryKey]*list.Element

	decodes int // images decoded, for tests
	scales  int // images scaled to a size, for tests
}

// entryKey is an image as decoded (w and h 0), or drawn on exactly w×h
// pixels the way fill draws it there (see scaled).
type entryKey struct {
	face faceKey
	w, h int
	fill canvas.ImageFill
}

type faceEntry struct {
	key    entryKey
	img    *image.RGBA // nil: not a raster image (SVG) or undecodable
	opaque bool        // every pixel of img is opaque
	bytes  int
}

func newFaceCache(limit int) *faceCache {
	return &faceCache{limit: limit, lru: list.New(), byKey: map[entryKey]*list.Element{}}
}

// get returns res decoded (premultiplied, from the origin) and whether it
// is opaque, decoding it on a miss; nil when res is not a raster image
// fyne could scale on the GPU (an SVG, which fyne rasterises at each size,
// or data that does not decode).
func (c *faceCache) get(key faceKey, res fyne.Resource) (*image.RGBA, bool) {
	k := entryKey{face: key}
	if fe := c.lookup(k); fe != nil {
		return fe.img, fe.opaque
	}

	// Decode outside the lock: another tile may decode the same image at
	// the same time, which wastes work but is correct.
	e := &faceEntry{key: k, bytes: 64}
	if img, _, err := image.Decode(bytes.NewReader(res.Content())); err == nil {
		b := img.Bounds()
		rgba, ok := img.(*image.RGBA)
		if !ok || b.Min != (image.Point{}) {
			rgba = image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
			draw.Draw(rgba, rgba.Rect, img, b.Min, draw.Src)
		}
		e.img, e.opaque = rgba, rgba.Opaque()
		e.bytes += len(rgba.Pix)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	c.decodes++
	return c.keepLocked(e)
}

// lookup returns the entry of k, now the most recently used, or nil.
func (c *faceCache) lookup(k entryKey) *faceEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byKey[k]
	if !ok {
		return nil
	}
	c.lru.MoveToFront(e)
	return e.Value.(*faceEntry)
}

// keepLocked adds e unless an entry of its key came meanwhile (which it
// returns instead), evicting the least recently used past the limit; an
// entry larger than the limit is returned without being kept. c.mu is held.
func (c *faceCache) keepLocked(e *faceEntry) (*image.RGBA, bool) {
	if old, ok := c.byKey[e.key]; ok {
		c.lru.MoveToFront(old)
		fe := old.Value.(*faceEntry)
		return fe.img, fe.opaque
	}
	if e.bytes > c.limit {
		return e.img, e.opaque // too large to keep
	}
	c.byKey[e.key] = c.lru.PushFront(e)
	c.used += e.bytes
	for c.used > c.limit {
		last := c.lru.Back()
		old := last.Value.(*faceEntry)
		c.lru.Remove(last)
		delete(c.byKey, old.key)
		c.used -= old.bytes
	}
	return e.img, e.opaque
}

// len returns the number of images held and their memory.
func (c *faceCache) len() (n, bytes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len(), c.used
}

// scaled returns res decoded and drawn on exactly w×h pixels as fill would
// draw it there (ImageFillStretch; ImageFillCover: the middle of the image
// cut to that shape; ImageFillContain: the whole image centred, transparent
// around it), scaled once with CatmullRom as fyne would, and whether it is
// opaque; nil when res is not a raster image (see get) or the size is empty.
func (c *faceCache) scaled(key faceKey, res fyne.Resource, w, h int, fill canvas.ImageFill) (*image.RGBA, bool) {
	if w <= 0 || h <= 0 {
		return nil, false
	}
	k := entryKey{face: key, w: w, h: h, fill: fill}
	if fe := c.lookup(k); fe != nil {
		return fe.img, fe.opaque
	}
	src, _ := c.get(key, res)
	if src == nil {
		return nil, false
	}
	from, to := src.Bounds(), image.Rect(0, 0, w, h)
	switch fill {
	case canvas.ImageFillCover:
		from = fitRect(from, w, h)
	case canvas.ImageFillContain:
		to = fitRect(to, from.Dx(), from.Dy())
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	xdraw.CatmullRom.Scale(dst, to, src, from, xdraw.Src, nil)
	e := &faceEntry{key: k, img: dst, opaque: dst.Opaque(), bytes: 64 + len(dst.Pix)}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.scales++
	return c.keepLocked(e)
}

// fitRect is the largest part of b, centred, with the shape of w×h.
func fitRect(b image.Rectangle, w, h int) image.Rectangle {
	bw, bh := b.Dx(), b.Dy()
	if bw*h > bh*w { // wider than w×h: cut the sides
		cw := max(1, bh*w/h)
		x := b.Min.X + (bw-cw)/2
		return image.Rect(x, b.Min.Y, x+cw, b.Max.Y)
	}
	ch := max(1, bw*h/w)
	y := b.Min.Y + (bh-ch)/2
	return image.Rect(b.Min.X, y, b.Max.X, y+ch)
}
