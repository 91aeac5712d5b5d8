// Package payload holds the typed model of MPNS notification payloads (toast,
// tile and raw) and the XML codec that reads what real senders send and writes
// canonical XML.
//
// Parsing is strict about what matters (root element, namespace, templates,
// element names, value ranges) and lenient about what real senders vary
// (Version="2.0" present or not, any namespace prefix bound to
// "WPNotification", Id or ID, surrounding whitespace). Every rejection is a
// *Error that names the element or attribute at fault.
//
// # Parsing rules
//
// ParseToast and ParseTile read the body token by token (encoding/xml in
// strict mode) and do bounded, linear work whatever the input:
//
//   - The root is Notification in the WPNotification namespace, bound to any
//     prefix or as the default namespace. Its Version attribute may be
//     absent or "2.0" (for toasts and tiles of any template); any other
//     value is refused. Encode writes Version="2.0" exactly for the
//     FlipTile, CycleTile and IconicTile templates.
//   - Every element must be in the WPNotification namespace; undeclared
//     prefixes are refused.
//   - A UTF-8 byte order mark is skipped; the body must be valid UTF-8, and
//     an XML declaration, if any, must come first and must not name another
//     encoding. White space may precede it.
//   - Comments and processing instructions are ignored wherever XML allows
//     them, including after the root element; nothing else may follow it.
//   - Any <!...> declaration (DOCTYPE, ENTITY, ...) is refused, so no entity
//     is ever defined or expanded ("billion laughs" is refused at its
//     DOCTYPE): only the five predefined entities and character references
//     are understood. Character references to surrogates are refused (the
//     check looks at every "&#" in the body, CDATA and comments included).
//   - Elements nest at most three deep (Notification/Tile/Title); an element
//     inside a value element is refused.
//   - Element text and attribute values longer than MaxValueLen (4096)
//     bytes are refused, as is an element with more than 32 attributes. The
//     parser does not limit the size of the whole body: the server does.
//   - Element text (CDATA sections included, comments removed) has its
//     leading and trailing XML white space (space, tab, CR, LF) trimmed,
//     because senders pretty-print; white space inside the text is kept, as
//     is any other white space (a no-break space is content). Validate
//     refuses values with surrounding XML white space, so every valid value
//     survives Encode and Parse unchanged. Attribute values are not
//     trimmed: Template, Version, Action and Silent must match exactly.
//   - Namespace declarations are honoured anywhere. Attributes the model
//     does not know (xml:lang, IsRelative, vendor extensions, ...) are
//     ignored, on every element; but a known attribute spelled in another
//     case (template=, action=, silent=, version=, id=) is refused, since
//     ignoring it would silently change the meaning. Known attributes are
//     recognised unprefixed or with a prefix bound to WPNotification; a
//     duplicated attribute is refused.
//   - The text of an element with Action="Clear" is ignored. Action is
//     refused on toast elements.
package payload

import (
	"fmt"
	"strconv"
)

// Namespace is the XML namespace every MPNS payload root must be bound to.
const Namespace = "WPNotification"

// Kind is what a notification targets on the phone.
type Kind uint8

// The three kinds of notification. The zero value is invalid.
const (
	KindToast Kind = iota + 1
	KindTile
	KindRaw
)

// String returns "toast", "tile" or "raw".
func (k Kind) String() string {
	switch k {
	case KindToast:
		return "toast"
	case KindTile:
		return "tile"
	case KindRaw:
		return "raw"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// ParseKind is the inverse of Kind.String.
func ParseKind(s string) (Kind, error) {
	switch s {
	case "toast":
		return KindToast, nil
	case "tile":
		return KindTile, nil
	case "raw":
		return KindRaw, nil
	}
	return 0, fmt.Errorf("payload: unknown kind %q (want toast, tile or raw)", s)
}

// Toast is a toast notification: a banner with a bold title (Text1), a body
// (Text2), the page to open when tapped (Param) and a sound.
type Toast struct {
	Text1 string
	Text2 string
	Param string
	// Sound is the sound file to play; empty means the default sound.
	Sound string
	// Silent is true for <wp:Sound Silent="true"/>.
	Silent bool
}

// Template names a tile template.
type Template string

// The tile templates. TemplateDefault is the WP7.5 tile, written without a
// Template attribute; it accepts the WP7.5 subset of FlipTile's elements.
const (
	TemplateDefault Template = ""
	TemplateFlip    Template = "FlipTile"
	TemplateCycle   Template = "CycleTile"
	TemplateIconic  Template = "IconicTile"
)

// String returns the template name, "WP7.5" for the default template.
func (t Template) String() string {
	if t == TemplateDefault {
		return "WP7.5"
	}
	return string(t)
}

// Tile element names, as they appear in the XML.
const (
	BackgroundImage         = "BackgroundImage"
	Count                   = "Count"
	Title                   = "Title"
	BackBackgroundImage     = "BackBackgroundImage"
	BackTitle               = "BackTitle"
	BackContent             = "BackContent"
	SmallBackgroundImage    = "SmallBackgroundImage"
	WideBackgroundImage     = "WideBackgroundImage"
	WideBackBackgroundImage = "WideBackBackgroundImage"
	WideBackContent         = "WideBackContent"
	SmallIconImage          = "SmallIconImage"
	IconImage               = "IconImage"
	WideContent1            = "WideContent1"
	WideContent2            = "WideContent2"
	WideContent3            = "WideContent3"
	BackgroundColor         = "BackgroundColor"
)

// CycleImage returns the element name of the n-th cycle image, n in 1..9.
func CycleImage(n int) string { return "CycleImage" + strconv.Itoa(n) }

// Tile is a tile update. Fields holds the elements that set a value;
// Cleared lists the elements sent with Action="Clear". An element is in at
// most one of the two.
type Tile struct {
	// ID names a secondary tile (the Id or ID attribute, a page URI such as
	// "/Detail.xaml?id=7"). Empty means the app's primary tile.
	ID       string
	Template Template
	// Fields maps element names (Title, Count, BackgroundImage, ...) to text.
	Fields map[string]string
	// Cleared holds the element names to reset, in the template's canonical order.
	Cleared []string
}

// Error is a payload that could not be accepted. Element names the element or
// attribute at fault ("Tile/@Template", "Count", "" for the document as a
// whole); Reason says what is wrong in words a sender can act on.
type Error struct {
	Element string
	Reason  string
}

// Error returns "payload: Element: Reason", or "payload: Reason" when
// Element is empty.
func (e *Error) Error() string {
	if e.Element == "" {
		return "payload: " + e.Reason
	}
	return "payload: " + e.Element + ": " + e.Reason
}
