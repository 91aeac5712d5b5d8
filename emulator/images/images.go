// Package images loads the images of live tiles the way a Windows Phone does:
// a relative path is an image the app ships with, read from the app's files;
// an http or https URL is downloaded, but only from the domains the app
// passed to BindToShellTile, at most 80 KB, within 60 seconds, and only if
// it is a PNG or JPEG. Otherwise the tile keeps its default image and the
// app's channel raises MessageBadContent; the typed errors of this package
// let the emulator tell which happened.
//
// Loader fetches and caches; Source adapts it to tileview.ImageSource for
// one app, reading local images from the app's files and remote ones from
// the cache (the phone model fetches them; see Source).
//
// # Concurrency
//
// A Loader and a Source are safe for concurrent use. Concurrent fetches of
// one URL (with the same allowed domains) make one request. A download runs
// on its own goroutine, bounded by Config.Timeout whatever the callers do: a
// caller whose context ends stops waiting at once, while the download goes
// on to fill the cache.
package images

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // decoders for the formats a tile accepts
	_ "image/png"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"fyne.io/fyne/v2"

	"github.com/openmpns/openmpns/emulator/tile"
	"github.com/openmpns/openmpns/emulator/ui/tileview"
)

// Defaults for Config.
const (
	// DefaultTimeout bounds one download: a phone gives up on a tile image
	// after 60 seconds.
	DefaultTimeout = 60 * time.Second
	// DefaultMaxBytes is the largest remote tile image a phone accepts:
	// 80 KB (81920 bytes).
	DefaultMaxBytes = 80 << 10
	// DefaultMaxPixels bounds the decoded size of an image (width × height),
	// so that a small, highly compressed file cannot claim gigabytes. Tile
	// images are at most 691×336.
	DefaultMaxPixels = 2048 * 2048
	// DefaultCacheEntries and DefaultCacheBytes bound the cache of
	// downloaded images.
	DefaultCacheEntries = 128
	DefaultCacheBytes   = 8 << 20
	// DefaultMaxRedirects is how many redirects a download follows.
	DefaultMaxRedirects = 5
	// UserAgent is sent with every download.
	UserAgent = "OpenMPNS-Emulator (Windows Phone tile image loader)"
)

// Errors a fetch fails with; test them with errors.Is. All of them mean the
// phone would keep the tile's default image and raise MessageBadContent.
// A fetch may also fail with a wrapped network error (connection refused,
// TLS) or, when the caller's context ends, with the context's error.
var (
	// ErrDomainNotAllowed is a remote image whose host (or the host of a
	// redirect) is not in the app's allowed domains.
	ErrDomainNotAllowed = errors.New("images: host is not in the app's allowed image domains")
	// ErrTooLarge is an image over the byte limit (by its Content-Length or
	// by what the server sent) or over the pixel limit.
	ErrTooLarge = errors.New("images: image too large")
	// ErrNotImage is a download that does not decode as a PNG or JPEG.
	ErrNotImage = errors.New("images: not a PNG or JPEG image")
	// ErrTimeout is a download that did not finish within Config.Timeout.
	ErrTimeout = errors.New("images: download timed out")
	// ErrBadStatus is a server that answered with another status than 200.
	ErrBadStatus = errors.New("images: server did not answer 200 OK")
	// ErrBadURL is a remote reference that is not a usable http(s) URL.
	ErrBadURL = errors.New("images: bad image URL")
)

// Config configures a Loader. The zero value gives the phone's limits.
type Config struct {
	// Timeout bounds each download, from connecting to the last byte;
	// 0 means DefaultTimeout.
	Timeout time.Duration
	// MaxBytes is the largest image accepted; 0 means DefaultMaxBytes.
	MaxBytes int64
	// MaxPixels is the largest width × height accepted; 0 means
	// DefaultMaxPixels.
	MaxPixels int
	// CacheEntries and CacheBytes bound the cache; 0 means the default, a
	// negative CacheEntries disables the cache.
	CacheEntries int
	CacheBytes   int64
	// MaxRedirects is how many redirects to follow; 0 means
	// DefaultMaxRedirects, a negative value follows none.
	MaxRedirects int
	// Client makes the requests; nil means a client of its own on a clone
	// of http.DefaultTransport. The Loader uses a copy whose CheckRedirect
	// it replaces, to check the domain of every redirect.
	Client *http.Client
}

func (c Config) withDefaults() Config {
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MaxPixels <= 0 {
		c.MaxPixels = DefaultMaxPixels
	}
	if c.CacheEntries == 0 {
		c.CacheEntries = DefaultCacheEntries
	}
	if c.CacheBytes <= 0 {
		c.CacheBytes = DefaultCacheBytes
	}
	if c.MaxRedirects == 0 {
		c.MaxRedirects = DefaultMaxRedirects
	}
	return c
}

// Loader fetches tile images, local and remote, and caches the remote ones
// (least recently used first out, by URL).
type Loader struct {
	cfg    Config
	client *http.Client

	mu    sync.Mutex
	cache *lru
	calls map[string]*call // downloads in flight, by flight key

	// joined, if set (by tests), is called when a fetch joins a download in
	// flight.
	joined func()
}

// call is one download in flight, which concurrent fetches share.
type call struct {
	done chan struct{}
	res  fyne.Resource
	err  error
}

// NewLoader returns a Loader with cfg's limits.
func NewLoader(cfg Config) *Loader {
	cfg = cfg.withDefaults()
	var client http.Client
	if cfg.Client != nil {
		client = *cfg.Client
	} else {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxResponseHeaderBytes = 64 << 10
		client.Transport = t
	}
	client.CheckRedirect = checkRedirect(cfg.MaxRedirects)
	return &Loader{
		cfg:    cfg,
		client: &client,
		cache:  newLRU(cfg.CacheEntries, cfg.CacheBytes),
		calls:  map[string]*call{},
	}
}

// Fetch returns the image ref names. A relative ref is read from local as
// tileview.FSImages reads it. An http(s) ref is returned from the cache or
// downloaded, when its host is allowed by domains (see Allowed): it fails
// with ErrDomainNotAllowed, ErrTooLarge, ErrNotImage, ErrTimeout,
// ErrBadStatus or ErrBadURL, with a wrapped network error, or with ctx's
// error when ctx ends first.
func (l *Loader) Fetch(ctx context.Context, ref string, domains []string, local fs.FS) (fyne.Resource, error) {
	if !tile.IsRemote(ref) {
		return tileview.FSImages{FS: local}.Image(ref)
	}
	u, err := l.check(ref, domains)
	if err != nil {
		return nil, err
	}
	key := u.String()
	l.mu.Lock()
	if res, ok := l.cachedLocked(key, domains); ok {
		l.mu.Unlock()
		return res, nil
	}
	fk := flightKey(key, domains)
	c, ok := l.calls[fk]
	if !ok {
		c = &call{done: make(chan struct{})}
		l.calls[fk] = c
		go l.download(context.WithoutCancel(ctx), fk, key, slices.Clone(domains), c)
	} else if l.joined != nil {
		l.joined()
	}
	l.mu.Unlock()

	select {
	case <-c.done:
		return c.res, c.err
	case <-ctx.Done():
		return nil, fmt.Errorf("images: %s: %w", key, context.Cause(ctx))
	}
}

// Cached returns the downloaded image of ref, when it is in the cache and
// allowed by domains; it never downloads.
func (l *Loader) Cached(ref string, domains []string) (fyne.Resource, bool) {
	u, err := l.check(ref, domains)
	if err != nil {
		return nil, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cachedLocked(u.String(), domains)
}

// CacheLen returns the number of cached images and their size in bytes.
func (l *Loader) CacheLen() (n int, bytes int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cache.len()
}

func (l *Loader) cachedLocked(key string, domains []string) (fyne.Resource, bool) {
	v, ok := l.cache.get(key)
	if !ok {
		return nil, false
	}
	for _, h := range v.hosts {
		if !hostAllowed(h, domains) {
			return nil, false
		}
	}
	return v.res, true
}

// check parses a remote ref and checks its host against domains; it
// returns the URL in the form the cache uses as key.
func (l *Loader) check(ref string, domains []string) (*url.URL, error) {
	u, err := url.Parse(ref)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %w", ErrBadURL, ref, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return nil, fmt.Errorf("%w: %q: want an http or https URL with a host", ErrBadURL, ref)
	}
	if !hostAllowed(normHost(u.Hostname()), domains) {
		return nil, fmt.Errorf("%w: %s (allowed: %s)", ErrDomainNotAllowed, u.Hostname(), domainList(domains))
	}
	u.Host = strings.ToLower(u.Host)
	u.Fragment, u.RawFragment = "", ""
	return u, nil
}

func domainList(domains []string) string {
	if len(domains) == 0 {
		return "none"
	}
	return strings.Join(domains, ", ")
}

// flightKey identifies a download: fetches of one URL with the same allowed
// domains share it (the domains decide which redirects it may follow).
func flightKey(key string, domains []string) string {
	ds := make([]string, 0, len(domains))
	for _, d := range domains {
		ds = append(ds, normDomain(d))
	}
	slices.Sort(ds)
	return key + "\x00" + strings.Join(slices.Compact(ds), "\x00")
}

// errTimeout is the cause of a download's context when its time is up.
var errTimeout = errors.New("download timeout")

// download runs one download for c and publishes its result.
func (l *Loader) download(ctx context.Context, fk, key string, domains []string, c *call) {
	ctx, cancel := context.WithTimeoutCause(ctx, l.cfg.Timeout, errTimeout)
	defer cancel()
	res, hosts, err := l.get(ctx, key, domains)
	l.mu.Lock()
	delete(l.calls, fk)
	if err == nil {
		l.cache.add(&cached{url: key, res: res, size: int64(len(res.Content())), hosts: hosts})
	}
	l.mu.Unlock()
	c.res, c.err = res, err
	close(c.done)
}

// redirects is what checkRedirect needs to know about a download.
type redirects struct {
	domains []string
	hosts   []string // hosts visited, the first included
}

type redirectsKey struct{}

func checkRedirect(limit int) func(*http.Request, []*http.Request) error {
	limit = max(limit, 0)
	return func(req *http.Request, via []*http.Request) error {
		if len(via) > limit {
			return fmt.Errorf("images: stopped after %d redirects", limit)
		}
		if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
			return fmt.Errorf("%w: redirected to %q", ErrBadURL, req.URL.Redacted())
		}
		r, _ := req.Context().Value(redirectsKey{}).(*redirects)
		if r == nil {
			return errors.New("images: redirect outside a download")
		}
		host := normHost(req.URL.Hostname())
		if !hostAllowed(host, r.domains) {
			return fmt.Errorf("%w: redirected to %s (allowed: %s)", ErrDomainNotAllowed, req.URL.Hostname(), domainList(r.domains))
		}
		r.hosts = append(r.hosts, host)
		return nil
	}
}

// get downloads and checks one image. It returns the hosts it went through.
func (l *Loader) get(ctx context.Context, key string, domains []string) (fyne.Resource, []string, error) {
	u, _ := url.Parse(key)
	r := &redirects{domains: domains, hosts: []string{normHost(u.Hostname())}}
	req, err := http.NewRequestWithContext(context.WithValue(ctx, redirectsKey{}, r), http.MethodGet, key, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %q: %w", ErrBadURL, key, err)
	}
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set("Accept", "image/png, image/jpeg")
	resp, err := l.client.Do(req)
	if err != nil {
		return nil, nil, l.netError(ctx, key, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("%w: %s answered %s", ErrBadStatus, key, resp.Status)
	}
	limit := l.cfg.MaxBytes
	if resp.ContentLength > limit {
		return nil, nil, fmt.Errorf("%w: %s is %d bytes (Content-Length); at most %d are allowed", ErrTooLarge, key, resp.ContentLength, limit)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, nil, l.netError(ctx, key, err)
	}
	if int64(len(data)) > limit {
		return nil, nil, fmt.Errorf("%w: %s sent more than %d bytes", ErrTooLarge, key, limit)
	}
	if err := l.decode(key, data); err != nil {
		return nil, nil, err
	}
	return fyne.NewStaticResource(key, data), r.hosts, nil
}

// netError classifies a failed request or body read.
func (l *Loader) netError(ctx context.Context, key string, err error) error {
	if errors.Is(context.Cause(ctx), errTimeout) {
		return fmt.Errorf("%w: %s did not arrive within %v", ErrTimeout, key, l.cfg.Timeout)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		// The Client's own timeout, when it has one shorter than ours.
		return fmt.Errorf("%w: %s: %w", ErrTimeout, key, err)
	}
	return fmt.Errorf("images: get %s: %w", key, err)
}

// decode checks that data, downloaded from key, is a PNG or JPEG of
// acceptable dimensions that decodes completely.
func (l *Loader) decode(key string, data []byte) error {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrNotImage, key, err)
	}
	if format != "png" && format != "jpeg" {
		return fmt.Errorf("%w: %s is %s", ErrNotImage, key, strings.ToUpper(format))
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > l.cfg.MaxPixels/cfg.Height {
		return fmt.Errorf("%w: %s is %d×%d pixels; at most %d pixels are allowed", ErrTooLarge, key, cfg.Width, cfg.Height, l.cfg.MaxPixels)
	}
	if _, _, err := image.Decode(bytes.NewReader(data)); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrNotImage, key, err)
	}
	return nil
}
