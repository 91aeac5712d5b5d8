package images

import (
	"container/list"

	"fyne.io/fyne/v2"
)

// lru is a least-recently-used cache of downloaded images, bounded in count
// and bytes. It is not safe for concurrent use: the Loader guards it.
type lru struct {
	maxEntries int
	maxBytes   int64
	bytes      int64
	order      *list.List // of *cached, most recently used first
	byURL      map[string]*list.Element
}

// cached is one downloaded image.
type cached struct {
	url   string
	res   fyne.Resource
	size  int64
	hosts []endpoint // every host and port the download went through (redirects)
}

func newLRU(maxEntries int, maxBytes int64) *lru {
	return &lru{maxEntries: maxEntries, maxBytes: maxBytes, order: list.New(), byURL: map[string]*list.Element{}}
}

// get returns the entry for url and marks it used.
func (c *lru) get(url string) (*cached, bool) {
	e, ok := c.byURL[url]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*cached), true
}

// add stores v, evicting the least recently used entries to stay within the
// bounds. An entry larger than maxBytes is not stored.
func (c *lru) add(v *cached) {
	if c.maxEntries <= 0 || v.size > c.maxBytes {
		return
	}
	if e, ok := c.byURL[v.url]; ok {
		c.remove(e)
	}
	c.byURL[v.url] = c.order.PushFront(v)
	c.bytes += v.size
	for c.order.Len() > c.maxEntries || c.bytes > c.maxBytes {
		c.remove(c.order.Back())
	}
}

func (c *lru) remove(e *list.Element) {
	v := c.order.Remove(e).(*cached)
	delete(c.byURL, v.url)
	c.bytes -= v.size
}

// len returns the number of entries and their total size.
func (c *lru) len() (n int, bytes int64) { return c.order.Len(), c.bytes }
