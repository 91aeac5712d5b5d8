package tileview

import (
	"bytes"
	"container/list"
	"hash/fnv"
	"image"
	"image/draw"
	"sync"

	// The formats tile images come in.
	_ "image/gif"
	_ "image/jpeg"
	_ "image/png"

	"fyne.io/fyne/v2"
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
	byKey map[faceKey]*list.Element

	decodes int // images decoded, for tests
}

type faceEntry struct {
	key    faceKey
	img    *image.RGBA // nil: not a raster image (SVG) or undecodable
	opaque bool        // every pixel of img is opaque
	bytes  int
}

func newFaceCache(limit int) *faceCache {
	return &faceCache{limit: limit, lru: list.New(), byKey: map[faceKey]*list.Element{}}
}

// get returns res decoded (premultiplied, from the origin) and whether it
// is opaque, decoding it on a miss; nil when res is not a raster image
// fyne could scale on the GPU (an SVG, which fyne rasterises at each size,
// or data that does not decode).
func (c *faceCache) get(key faceKey, res fyne.Resource) (*image.RGBA, bool) {
	c.mu.Lock()
	if e, ok := c.byKey[key]; ok {
		c.lru.MoveToFront(e)
		fe := e.Value.(*faceEntry)
		c.mu.Unlock()
		return fe.img, fe.opaque
	}
	c.mu.Unlock()

	// Decode outside the lock: another tile may decode the same image at
	// the same time, which wastes work but is correct.
	e := &faceEntry{key: key, bytes: 64}
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
	if old, ok := c.byKey[key]; ok {
		c.lru.MoveToFront(old)
		fe := old.Value.(*faceEntry)
		return fe.img, fe.opaque
	}
	if e.bytes > c.limit {
		return e.img, e.opaque // too large to keep
	}
	c.byKey[key] = c.lru.PushFront(e)
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
