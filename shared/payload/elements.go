package payload

import (
	"fmt"
	"strconv"
	"strings"
)

// Toast element names, as they appear in the XML.
const (
	Text1 = "Text1"
	Text2 = "Text2"
	Param = "Param"
	Sound = "Sound"
)

// Attribute names, as they appear in the XML.
const (
	// AttrVersion is the optional Version attribute of Notification; the
	// only accepted value is "2.0".
	AttrVersion = "Version"
	// AttrTemplate is the Template attribute of Tile.
	AttrTemplate = "Template"
	// AttrID is the secondary tile attribute as libraries write it; AttrIDUpper
	// is the spelling of older documentation. Both are accepted.
	AttrID      = "Id"
	AttrIDUpper = "ID"
	// AttrAction is the attribute of a tile element that resets it
	// (Action="Clear").
	AttrAction = "Action"
	// AttrSilent is the attribute of the toast Sound element that mutes it.
	AttrSilent = "Silent"
)

// ActionClear is the only accepted value of the Action attribute.
const ActionClear = "Clear"

// MaxCycleImages is the number of cycle images a CycleTile carries
// (CycleImage1 .. CycleImage9).
const MaxCycleImages = 9

// MaxCount is the largest tile Count; 0 hides the badge.
const MaxCount = 99

var (
	elementsDefault = []string{
		BackgroundImage, Count, Title, BackBackgroundImage, BackTitle, BackContent,
	}
	elementsFlip = []string{
		SmallBackgroundImage, WideBackgroundImage, WideBackBackgroundImage, WideBackContent,
		BackgroundImage, Count, Title, BackBackgroundImage, BackTitle, BackContent,
	}
	elementsCycle = []string{
		SmallBackgroundImage,
		"CycleImage1", "CycleImage2", "CycleImage3", "CycleImage4", "CycleImage5",
		"CycleImage6", "CycleImage7", "CycleImage8", "CycleImage9",
		Count, Title,
	}
	elementsIconic = []string{
		SmallIconImage, IconImage, WideContent1, WideContent2, WideContent3,
		Count, Title, BackgroundColor,
	}
	toastElements = []string{Text1, Text2, Param, Sound}
)

// templateInfo is the per-template lookup table used by the parser,
// Validate and Encode.
type templateInfo struct {
	names []string       // canonical order
	index map[string]int // name -> position in names
}

func newTemplateInfo(names []string) *templateInfo {
	ti := &templateInfo{names: names, index: make(map[string]int, len(names))}
	for i, n := range names {
		ti.index[n] = i
	}
	return ti
}

var (
	infoDefault = newTemplateInfo(elementsDefault)
	infoFlip    = newTemplateInfo(elementsFlip)
	infoCycle   = newTemplateInfo(elementsCycle)
	infoIconic  = newTemplateInfo(elementsIconic)
)

// info returns the lookup table of t, nil for an unknown template.
func info(t Template) *templateInfo {
	switch t {
	case TemplateDefault:
		return infoDefault
	case TemplateFlip:
		return infoFlip
	case TemplateCycle:
		return infoCycle
	case TemplateIconic:
		return infoIconic
	}
	return nil
}

// Elements returns the element names template t allows, in canonical order
// (the order Encode writes them). It returns nil for an unknown template.
// The slice is a fresh copy the caller may modify.
func Elements(t Template) []string {
	ti := info(t)
	if ti == nil {
		return nil
	}
	return append([]string(nil), ti.names...)
}

// ParseTemplate is the inverse of Template.String: it accepts "FlipTile",
// "CycleTile", "IconicTile", and "WP7.5" or "" for TemplateDefault.
func ParseTemplate(s string) (Template, error) {
	switch s {
	case "", "WP7.5":
		return TemplateDefault, nil
	case string(TemplateFlip), string(TemplateCycle), string(TemplateIconic):
		return Template(s), nil
	}
	return "", fmt.Errorf("payload: unknown template %q (want FlipTile, CycleTile, IconicTile or WP7.5)", s)
}

// unknownTemplate is the error for a Template attribute (or Tile.Template)
// that names no template.
func unknownTemplate(s string) *Error {
	return &Error{
		Element: "Tile/@" + AttrTemplate,
		Reason:  fmt.Sprintf("unknown template %s (want FlipTile, CycleTile or IconicTile)", quote(s)),
	}
}

// tileName is how messages name a template: "a FlipTile tile", "a WP7.5
// tile (no Template attribute)".
func tileName(t Template) string {
	if t == TemplateDefault {
		return "a WP7.5 tile (no Template attribute)"
	}
	return "a " + string(t) + " tile"
}

// cycleImageNumber reports n for a name "CycleImage<n>" (n all digits).
func cycleImageNumber(name string) (n int, ok bool) {
	rest, found := strings.CutPrefix(name, "CycleImage")
	if !found || rest == "" || len(rest) > 6 {
		return 0, false
	}
	for i := 0; i < len(rest); i++ {
		if rest[i] < '0' || rest[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil
}

// notAllowed explains why element name is not an element of template t.
func notAllowed(t Template, name string) *Error {
	ti := info(t)
	allowed := strings.Join(ti.names, ", ")
	e := &Error{Element: name}
	if n, ok := cycleImageNumber(name); ok && (n < 1 || n > MaxCycleImages) {
		if t == TemplateCycle {
			e.Reason = fmt.Sprintf("CycleTile has at most %d cycle images (CycleImage1..CycleImage%d)", MaxCycleImages, MaxCycleImages)
		} else {
			e.Reason = fmt.Sprintf("%s is not an element of %s; cycle images (CycleImage1..CycleImage%d) belong to CycleTile (allowed here: %s)", name, tileName(t), MaxCycleImages, allowed)
		}
		return e
	}
	for _, n := range ti.names {
		if strings.EqualFold(n, name) {
			e.Reason = fmt.Sprintf("element names are case-sensitive: write %s, not %s", n, name)
			return e
		}
	}
	if t == TemplateDefault {
		if _, ok := infoFlip.index[name]; ok {
			e.Reason = fmt.Sprintf("%s is not an element of %s: add Template=\"FlipTile\" (and Version=\"2.0\") to use it (allowed here: %s)", name, tileName(t), allowed)
			return e
		}
	}
	var owners []string
	for _, tt := range []Template{TemplateFlip, TemplateCycle, TemplateIconic} {
		if _, ok := info(tt).index[name]; ok {
			owners = append(owners, string(tt))
		}
	}
	if len(owners) > 0 {
		e.Reason = fmt.Sprintf("%s is not an element of %s; it belongs to %s (allowed here: %s)", name, tileName(t), strings.Join(owners, " and "), allowed)
		return e
	}
	e.Reason = fmt.Sprintf("unknown element %s in %s (allowed: %s)", name, tileName(t), allowed)
	return e
}

// unknownToastElement explains why name is not a toast element.
func unknownToastElement(name string) *Error {
	for _, n := range toastElements {
		if strings.EqualFold(n, name) {
			return &Error{Element: name, Reason: fmt.Sprintf("element names are case-sensitive: write %s, not %s", n, name)}
		}
	}
	return &Error{Element: name, Reason: fmt.Sprintf("unknown toast element %s (allowed: Text1, Text2, Param, Sound)", name)}
}

// quote is strconv.Quote for messages, shortened to keep errors readable
// when a hostile value is huge.
func quote(s string) string {
	const max = 64
	if len(s) <= max {
		return strconv.Quote(s)
	}
	cut := max
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + fmt.Sprintf("... (%d bytes)", len(s))
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
