// Package images loads the images of live tiles the way a Windows Phone does:
// a relative path is an image the app ships with, read from the app's files;
// an http or https URL is downloaded, but only from the domains the app
// passed to BindToShellTile (and the ports they name), within 60 seconds.
// Either way an image is at most 80 KB, a PNG or JPEG by its content, and
// at most 2048×2048 pixels and 16 MiB decoded (counted at the image's real
// depth: a 16-bit RGBA pixel is 8 bytes). Otherwise the tile keeps its
// default image and the app's channel raises MessageBadContent; the typed
// errors of this package let the emulator tell which happened.
//
// # What a sender can make the phone fetch
//
// A tile update names its images, so whoever knows a Channel URI chooses
// the URLs the phone GETs, within the app's allowed domains. A download
// connects only to public addresses: when it dials, the address the name
// resolved to is refused if it is loopback, private, link-local or another
// non-public range (see publicAddr), unless an entry of the app's domains
// names that address literally ("127.0.0.1:8090", as the demo's Photos
// app allows its backend). No proxy is used, since a proxy would resolve
// names where the phone cannot check them; connections are not reused
// across downloads.
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
	"image/color"
	_ "image/jpeg" // decoders for the formats a tile accepts
	_ "image/png"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
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
	// DefaultMaxDecodedBytes bounds the memory an image takes decoded,
	// width × height × its bytes per pixel at its real depth (8 for 16-bit
	// RGBA): 2048×2048 pixels of 8-bit RGBA.
	DefaultMaxDecodedBytes = DefaultMaxPixels * 4
	// DefaultCacheEntries and DefaultCacheBytes bound the cache of
	// downloaded images.
	DefaultCacheEntries = 128
	DefaultCacheBytes   = 8 << 20
	// DefaultMaxRedirects is how many redirects a download follows.
	DefaultMaxRedirects = 5
	// DefaultMaxDownloads and DefaultMaxWaiting bound the downloads at
	// once: 8 run and 64 wait, for tile updates of up to 11 images each
	// (a cycle tile's nine and its two other sizes).
	DefaultMaxDownloads = 8
	DefaultMaxWaiting   = 64
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
	// ErrAddressNotAllowed is a download whose host resolved to a
	// loopback, private, link-local or other non-public address that no
	// allowed domain names literally.
	ErrAddressNotAllowed = errors.New("images: address is not public and no allowed domain names it")
	// ErrBusy is a download refused because Config.MaxDownloads run and
	// Config.MaxWaiting wait already.
	ErrBusy = errors.New("images: too many downloads at once")
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
	// MaxDecodedBytes is the most memory an image may take decoded (width
	// × height × bytes per pixel at its depth); 0 means
	// DefaultMaxDecodedBytes.
	MaxDecodedBytes int64
	// CacheEntries and CacheBytes bound the cache; 0 means the default, a
	// negative CacheEntries disables the cache.
	CacheEntries int
	CacheBytes   int64
	// MaxRedirects is how many redirects to follow; 0 means
	// DefaultMaxRedirects, a negative value follows none.
	MaxRedirects int
	// MaxDownloads is how many downloads run at once (each holds a
	// connection), and MaxWaiting how many more wait for one of them to
	// end; a download past both fails with ErrBusy at once. 0 means
	// DefaultMaxDownloads and DefaultMaxWaiting. A sender may name a dozen
	// images per tile update and send hundreds of updates: without them,
	// each would hold a connection (and a descriptor) for up to Timeout.
	MaxDownloads int
	MaxWaiting   int
	// Client makes the requests; nil means a client of its own on a clone
	// of http.DefaultTransport. The Loader uses a copy whose CheckRedirect
	// it replaces, to check the domain of every redirect; when its
	// Transport is nil or an *http.Transport, the copy's is a clone whose
	// dialer refuses non-public addresses (see the package doc), without
	// proxy or reused connections. Another RoundTripper is trusted to make
	// those checks itself.
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
	if c.MaxDecodedBytes <= 0 {
		c.MaxDecodedBytes = DefaultMaxDecodedBytes
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
	if c.MaxDownloads <= 0 {
		c.MaxDownloads = DefaultMaxDownloads
	}
	if c.MaxWaiting <= 0 {
		c.MaxWaiting = DefaultMaxWaiting
	}
	return c
}

// Loader fetches tile images, local and remote, and caches the remote ones
// (least recently used first out, by URL).
type Loader struct {
	cfg    Config
	client *http.Client

	slots chan struct{} // one per download running (MaxDownloads)

	mu    sync.Mutex
	cache *lru
	calls map[string]*call // downloads in flight (running or waiting), by flight key

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
	}
	switch t := client.Transport.(type) {
	case nil:
		client.Transport = guarded(http.DefaultTransport.(*http.Transport).Clone())
	case *http.Transport:
		client.Transport = guarded(t.Clone())
	}
	client.CheckRedirect = checkRedirect(cfg.MaxRedirects)
	return &Loader{
		cfg:    cfg,
		client: &client,
		slots:  make(chan struct{}, cfg.MaxDownloads),
		cache:  newLRU(cfg.CacheEntries, cfg.CacheBytes),
		calls:  map[string]*call{},
	}
}

// guarded makes t dial only public addresses, or those an allowed domain
// names literally (checked on the address the name resolved to, as the
// socket connects), with no proxy and a connection per download.
func guarded(t *http.Transport) *http.Transport {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, ControlContext: controlDial}
	t.DialContext = d.DialContext
	t.DialTLSContext = nil
	t.Proxy = nil
	t.DisableKeepAlives = true
	t.MaxResponseHeaderBytes = 64 << 10
	return t
}

// controlDial runs as a download's socket connects, with the address the
// host name resolved to: it refuses an address that is not public unless
// an entry of the download's allowed domains names it literally.
func controlDial(ctx context.Context, network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrAddressNotAllowed, address, err)
	}
	if publicAddr(ap.Addr()) {
		return nil
	}
	var domains []string
	if r, _ := ctx.Value(redirectsKey{}).(*redirects); r != nil {
		domains = r.domains
	}
	if literalAllowed(ap.Addr(), strconv.Itoa(int(ap.Port())), domains) {
		return nil
	}
	return fmt.Errorf("%w: %s (allowed: %s)", ErrAddressNotAllowed, address, domainList(domains))
}

// Fetch returns the image ref names. A relative ref is read from local (see
// Local). An http(s) ref is returned from the cache or
// downloaded, when its host is allowed by domains (see Allowed): it fails
// with ErrDomainNotAllowed, ErrAddressNotAllowed, ErrTooLarge, ErrNotImage,
// ErrTimeout, ErrBadStatus or ErrBadURL, with a wrapped network error, or
// with ctx's error when ctx ends first.
func (l *Loader) Fetch(ctx context.Context, ref string, domains []string, local fs.FS) (fyne.Resource, error) {
	if !tile.IsRemote(ref) {
		return l.Local(local, ref)
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
	if !ok && len(l.calls) >= l.cfg.MaxDownloads+l.cfg.MaxWaiting {
		n := len(l.calls)
		l.mu.Unlock()
		return nil, fmt.Errorf("%w: %s: %d downloading or waiting", ErrBusy, key, n)
	}
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
		if !endpointAllowed(h, domains) {
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
	if !endpointAllowed(endpointOf(u), domains) {
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
	var res fyne.Resource
	var hosts []endpoint
	var err error
	wait := time.NewTimer(l.cfg.Timeout) // for a slot; the download's own time starts with it
	select {
	case l.slots <- struct{}{}:
		wait.Stop()
		dctx, cancel := context.WithTimeoutCause(ctx, l.cfg.Timeout, errTimeout)
		res, hosts, err = l.get(dctx, key, domains)
		cancel()
		<-l.slots
	case <-wait.C:
		err = fmt.Errorf("%w: %s: waited %s for one of %d downloads to end", ErrTimeout, key, l.cfg.Timeout, l.cfg.MaxDownloads)
	}
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
	hosts   []endpoint // hosts and ports visited, the first included
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
		if len(via) > 0 && via[len(via)-1].URL.Scheme == "https" && req.URL.Scheme == "http" {
			return fmt.Errorf("%w: redirected from https to %q, which anyone on the way could change", ErrBadURL, req.URL.Redacted())
		}
		r, _ := req.Context().Value(redirectsKey{}).(*redirects)
		if r == nil {
			return errors.New("images: redirect outside a download")
		}
		e := endpointOf(req.URL)
		if !endpointAllowed(e, r.domains) {
			return fmt.Errorf("%w: redirected to %s (allowed: %s)", ErrDomainNotAllowed, req.URL.Host, domainList(r.domains))
		}
		r.hosts = append(r.hosts, e)
		return nil
	}
}

// get downloads and checks one image. It returns the hosts it went through.
func (l *Loader) get(ctx context.Context, key string, domains []string) (fyne.Resource, []endpoint, error) {
	u, _ := url.Parse(key)
	r := &redirects{domains: domains, hosts: []endpoint{endpointOf(u)}}
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
	if errors.Is(err, ErrAddressNotAllowed) {
		return fmt.Errorf("images: get %s: %w", key, err)
	}
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

// Local reads the image ref names from local, the app's files, at the
// path tile.AppPath gives, with the limits of a download: at most MaxBytes,
// a PNG or JPEG by its content (whatever its name), within MaxPixels and
// MaxDecodedBytes. It fails with ErrTooLarge or ErrNotImage, or with the
// file system's error (fs.ErrNotExist). A remote ref fails with
// tileview.ErrRemoteImage.
func (l *Loader) Local(local fs.FS, ref string) (fyne.Resource, error) {
	if local == nil {
		return nil, fmt.Errorf("images: image %q: no app file system", ref)
	}
	if tile.IsRemote(ref) {
		return nil, fmt.Errorf("images: image %q: %w", ref, tileview.ErrRemoteImage)
	}
	p, err := tile.AppPath(ref)
	if err != nil {
		return nil, err
	}
	f, err := local.Open(p)
	if err != nil {
		return nil, fmt.Errorf("images: image %q: %w", ref, err)
	}
	defer f.Close()
	limit := l.cfg.MaxBytes
	if st, err := f.Stat(); err == nil {
		if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("%w: %q is not a regular file", ErrNotImage, ref)
		}
		if st.Size() > limit {
			return nil, fmt.Errorf("%w: %q is %d bytes; at most %d are allowed", ErrTooLarge, ref, st.Size(), limit)
		}
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("images: image %q: %w", ref, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: %q is over %d bytes", ErrTooLarge, ref, limit)
	}
	if err := l.decode(ref, data); err != nil {
		return nil, err
	}
	return fyne.NewStaticResource(p, data), nil
}

// decode checks that data, read from key, is a PNG or JPEG of acceptable
// dimensions and decoded size that decodes completely. The header alone
// decides the size, before anything is decoded.
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
	bpp := bytesPerPixel(cfg.ColorModel)
	if format == "jpeg" {
		progressive, components, scans, err := jpegLayout(data)
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrNotImage, key, err)
		}
		if scans > maxJPEGScans {
			return fmt.Errorf("%w: %s has more than %d scans (each one decodes the whole image again)", ErrTooLarge, key, maxJPEGScans)
		}
		if progressive {
			// Go's decoder keeps every block's coefficients until the
			// last scan: 64 of 4 bytes per 8×8 block of each component
			// (about: blocks padded to whole MCUs are not counted).
			bpp += 4 * int64(max(components, 1))
		}
	}
	if size := int64(cfg.Width) * int64(cfg.Height) * bpp; size > l.cfg.MaxDecodedBytes {
		return fmt.Errorf("%w: %s is %d×%d pixels of %d bytes, %d bytes decoded; at most %d are allowed", ErrTooLarge, key, cfg.Width, cfg.Height, bpp, size, l.cfg.MaxDecodedBytes)
	}
	if _, _, err := image.Decode(bytes.NewReader(data)); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrNotImage, key, err)
	}
	return nil
}

// bytesPerPixel is what a pixel of the colour model takes decoded: 8 for
// 16-bit RGBA, 2 for 16-bit grey, 1 for 8-bit grey or a palette, 3 for
// JPEG's YCbCr (at most; subsampled less), 4 otherwise.
func bytesPerPixel(m color.Model) int64 {
	switch m {
	case color.RGBA64Model, color.NRGBA64Model:
		return 8
	case color.Gray16Model, color.Alpha16Model:
		return 2
	case color.GrayModel, color.AlphaModel:
		return 1
	case color.YCbCrModel:
		return 3
	}
	if _, ok := m.(color.Palette); ok {
		return 1
	}
	return 4
}
