package images

import (
	"context"
	"fmt"
	"io/fs"
	"slices"
	"sync"

	"fyne.io/fyne/v2"

	"github.com/openmpns/openmpns/emulator/tile"
)

// maxSourceRefs bounds the outcomes a Source remembers; past it, it forgets
// the settled ones.
const maxSourceRefs = 256

// Source is the tile.ImageSource of one app's tiles, following that
// interface's contract: Image never blocks on the network.
//
//   - A relative reference is read from the app's files at once.
//   - A remote reference already in the Loader's cache is returned at once.
//   - A remote reference whose host the app's domains do not allow (or that
//     is not a usable URL) fails at once.
//   - Any other remote reference starts a download in the background and
//     fails with ErrPending (which wraps tile.ErrRemoteImage) until it ends.
//
// When a download ends, or a reference fails, the Source calls its done
// function with the reference and the error (nil on success) from a
// goroutine of its own: the emulator then calls Tile.ReloadImages through
// fyne.Do on success, so that the tile asks again and gets the image, and
// on failure keeps the default image and raises MessageBadContent.
//
// A Source remembers each reference's outcome, so a failed image is neither
// fetched nor reported again until Reset (call it when a new tile
// notification arrives, to try its images afresh) or SetDomains.
type Source struct {
	loader *Loader
	ctx    context.Context
	local  fs.FS
	done   func(ref string, err error)

	mu      sync.Mutex
	domains []string
	refs    map[string]*outcome
	gen     uint64 // bumped by Reset: downloads of older generations are dropped
}

var _ tile.ImageSource = (*Source)(nil)

// outcome is what a Source knows of one reference.
type outcome struct {
	res     fyne.Resource
	err     error
	pending bool
}

// Source returns a tile.ImageSource for one app: local holds the app's files
// (relative references), domains are the remote image domains its tile
// binding allows (nil allows none), and done, if not nil, is told of every
// finished download and every failure, from another goroutine. ctx bounds
// the background downloads: once it ends, the Source starts no more and
// reports nothing.
func (l *Loader) Source(ctx context.Context, local fs.FS, domains []string, done func(ref string, err error)) *Source {
	if ctx == nil {
		ctx = context.Background()
	}
	return &Source{
		loader:  l,
		ctx:     ctx,
		local:   local,
		done:    done,
		domains: slices.Clone(domains),
		refs:    map[string]*outcome{},
	}
}

// Image resolves ref without blocking; see Source.
func (s *Source) Image(ref string) (fyne.Resource, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o, ok := s.refs[ref]; ok {
		if o.pending {
			return nil, fmt.Errorf("%w: %s", ErrPending, ref)
		}
		return o.res, o.err
	}
	if !IsRemote(ref) {
		res, err := tile.FSImages{FS: s.local}.Image(ref)
		s.settle(ref, res, err)
		return res, err
	}
	if res, ok := s.loader.Cached(ref, s.domains); ok {
		s.settle(ref, res, nil)
		return res, nil
	}
	if _, err := s.loader.check(ref, s.domains); err != nil {
		s.settle(ref, nil, err)
		return nil, err
	}
	if s.ctx.Err() != nil {
		return nil, fmt.Errorf("images: %s: %w", ref, context.Cause(s.ctx))
	}
	s.remember(ref, &outcome{pending: true})
	go s.fetch(ref, slices.Clone(s.domains), s.gen)
	return nil, fmt.Errorf("%w: %s", ErrPending, ref)
}

// fetch downloads ref in the background and reports the outcome, unless
// the Source was reset or its context ended meanwhile.
func (s *Source) fetch(ref string, domains []string, gen uint64) {
	res, err := s.loader.Fetch(s.ctx, ref, domains, nil)
	if s.ctx.Err() != nil {
		return
	}
	s.mu.Lock()
	if s.gen != gen {
		s.mu.Unlock()
		return
	}
	s.refs[ref] = &outcome{res: res, err: err}
	s.mu.Unlock()
	if s.done != nil {
		s.done(ref, err)
	}
}

// settle remembers a reference resolved at once, and reports a failure.
// s.mu is held.
func (s *Source) settle(ref string, res fyne.Resource, err error) {
	s.remember(ref, &outcome{res: res, err: err})
	if err != nil && s.done != nil {
		go s.done(ref, err)
	}
}

// remember stores o for ref, first forgetting the settled outcomes when
// there are too many. s.mu is held.
func (s *Source) remember(ref string, o *outcome) {
	if len(s.refs) >= maxSourceRefs {
		for k, v := range s.refs {
			if !v.pending {
				delete(s.refs, k)
			}
		}
	}
	s.refs[ref] = o
}

// Reset forgets every outcome, so that failed references are tried again
// (downloaded images come back from the Loader's cache). Downloads under
// way finish, but are neither remembered nor reported.
func (s *Source) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	clear(s.refs)
}

// SetDomains replaces the allowed remote image domains (the app bound its
// tile again) and resets the Source.
func (s *Source) SetDomains(domains []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.domains = slices.Clone(domains)
	s.gen++
	clear(s.refs)
}

// Domains returns the allowed remote image domains.
func (s *Source) Domains() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.domains)
}
