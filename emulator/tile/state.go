package tile

import (
	"maps"
	"strconv"
	"strings"

	"github.com/openmpns/openmpns/shared/payload"
)

// State is the accumulated state of one live tile: its template and the value
// of every element that is currently set. Updates are merged into it with
// Apply, the way the phone merges tile notifications into a pinned tile.
//
// A State is plain data and is not safe for concurrent use: keep it on the UI
// goroutine (or guard it) once a Tile widget shows it.
type State struct {
	// ID names a secondary tile; empty is the app's primary tile.
	ID string
	// Template is the tile's current template.
	Template payload.Template
	// Fields maps element names (payload.Title, payload.Count, ...) to their
	// current value. Only elements valid for Template are kept.
	Fields map[string]string
	// Defaults holds the values the tile had when it was pinned (those of the
	// app manifest for a primary tile). An element sent with Action="Clear"
	// goes back to its default, or is removed when it has none.
	Defaults map[string]string
}

// NewState returns the state of a freshly pinned tile: template t with the
// defaults that are valid for it. defaults may be nil; it is copied.
func NewState(id string, t payload.Template, defaults map[string]string) *State {
	s := &State{ID: id, Template: t, Fields: map[string]string{}, Defaults: maps.Clone(defaults)}
	if s.Defaults == nil {
		s.Defaults = map[string]string{}
	}
	for k, v := range s.Defaults {
		if accepts(t, k) {
			s.Fields[k] = v
		}
	}
	return s
}

// Clone returns a deep copy of s.
func (s *State) Clone() *State {
	c := *s
	c.Fields = maps.Clone(s.Fields)
	c.Defaults = maps.Clone(s.Defaults)
	return &c
}

// Equal reports whether s and o hold the same tile: the same ID, template,
// fields and defaults. A nil State equals only nil. A view compares the
// state it shows with a new one to skip redrawing a tile that did not
// change.
func (s *State) Equal(o *State) bool {
	if s == nil || o == nil {
		return s == o
	}
	return s.ID == o.ID && s.Template == o.Template &&
		maps.Equal(s.Fields, o.Fields) && maps.Equal(s.Defaults, o.Defaults)
}

// Apply merges the update u into s as the phone does:
//
//   - An element in u.Fields overwrites the current value.
//   - An element in u.Cleared goes back to its value in Defaults, or is
//     removed when it has no default.
//   - Elements that u's template does not define are ignored.
//   - A WP7.5 update (payload.TemplateDefault) to a FlipTile keeps the tile a
//     FlipTile: the WP7.5 elements are a subset of FlipTile's, and a WP8
//     phone accepts legacy senders' updates for flip tiles this way.
//   - Any other template change switches the tile to u's template. The
//     elements both templates define (Title and Count always; the front and
//     back of WP7.5 and FlipTile; SmallBackgroundImage between FlipTile and
//     CycleTile) carry over, everything else is dropped, and the defaults
//     valid for the new template fill the gaps. The tile keeps no memory of
//     the old template: switching back does not restore dropped elements.
//
// Apply ignores a nil update. It does not validate values (the payload
// parser does); Count and BackgroundColor are interpreted when rendered.
func (s *State) Apply(u *payload.Tile) {
	if u == nil {
		return
	}
	if s.Fields == nil {
		s.Fields = map[string]string{}
	}
	if u.Template != s.Template && (u.Template != payload.TemplateDefault || s.Template != payload.TemplateFlip) {
		s.switchTemplate(u.Template)
	}
	for k, v := range u.Fields {
		if accepts(s.Template, k) {
			s.Fields[k] = v
		}
	}
	for _, k := range u.Cleared {
		if !accepts(s.Template, k) {
			continue
		}
		if d, ok := s.Defaults[k]; ok {
			s.Fields[k] = d
		} else {
			delete(s.Fields, k)
		}
	}
}

func (s *State) switchTemplate(t payload.Template) {
	s.Template = t
	for k := range s.Fields {
		if !accepts(t, k) {
			delete(s.Fields, k)
		}
	}
	for k, v := range s.Defaults {
		if _, set := s.Fields[k]; !set && accepts(t, k) {
			s.Fields[k] = v
		}
	}
}

// Get returns the current value of element name, "" when it is not set.
func (s *State) Get(name string) string { return s.Fields[name] }

// Count returns the count to show: the Count element clamped to
// 0..payload.MaxCount, 0 (no badge) when it is unset or not a number.
func (s *State) Count() int {
	n, err := strconv.Atoi(strings.TrimSpace(s.Fields[payload.Count]))
	if err != nil || n < 0 {
		return 0
	}
	return min(n, payload.MaxCount)
}

// CycleImages returns the set CycleImage1..CycleImage9 values
// (payload.MaxCycleImages), in order, skipping unset ones.
func (s *State) CycleImages() []string {
	var refs []string
	for n := 1; n <= payload.MaxCycleImages; n++ {
		if v := s.Fields[payload.CycleImage(n)]; v != "" {
			refs = append(refs, v)
		}
	}
	return refs
}

// HasBack reports whether the tile at size has a back face to flip to: a
// FlipTile or WP7.5 tile with at least one back element of that size set
// (BackTitle, or BackContent or BackBackgroundImage at medium,
// WideBackContent or WideBackBackgroundImage at wide). Small tiles,
// CycleTile and IconicTile never flip.
func (s *State) HasBack(size Size) bool {
	if s.Template != payload.TemplateFlip && s.Template != payload.TemplateDefault {
		return false
	}
	switch size {
	case Medium:
		return s.Fields[payload.BackTitle] != "" || s.Fields[payload.BackContent] != "" ||
			s.Fields[payload.BackBackgroundImage] != ""
	case Wide:
		return s.Fields[payload.BackTitle] != "" || s.Fields[payload.WideBackContent] != "" ||
			s.Fields[payload.WideBackBackgroundImage] != ""
	}
	return false
}

// templateElements holds, for each template, the set of elements it
// defines (payload.Elements).
var templateElements = func() map[payload.Template]map[string]bool {
	m := map[payload.Template]map[string]bool{}
	for _, t := range []payload.Template{payload.TemplateDefault, payload.TemplateFlip, payload.TemplateCycle, payload.TemplateIconic} {
		m[t] = map[string]bool{}
		for _, name := range payload.Elements(t) {
			m[t][name] = true
		}
	}
	return m
}()

// accepts reports whether template t defines element name.
func accepts(t payload.Template, name string) bool { return templateElements[t][name] }
