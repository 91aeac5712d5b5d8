package payload

import "unicode/utf8"

const (
	xmlDecl     = `<?xml version="1.0" encoding="utf-8"?>`
	rootOpen    = `<wp:Notification xmlns:wp="WPNotification">`
	rootOpenV2  = `<wp:Notification xmlns:wp="WPNotification" Version="2.0">`
	rootClose   = `</wp:Notification>`
	clearSuffix = ` Action="Clear"></wp:`
)

// Encode returns t as canonical XML: the XML declaration, then
// <wp:Notification xmlns:wp="WPNotification"> (without Version) holding a
// <wp:Toast> whose non-empty elements come in the order Text1, Text2,
// Param, Sound, with no white space between elements. Sound is written
// when it is set or Silent is true, as <wp:Sound Silent="true">...</wp:Sound>
// in the latter case.
//
// Encode does not validate: call Validate first. For a valid toast,
// ParseToast(t.Encode()) equals t. Characters XML cannot carry (and
// invalid UTF-8) are written as U+FFFD.
func (t *Toast) Encode() []byte {
	b := make([]byte, 0, 160+len(t.Text1)+len(t.Text2)+len(t.Param)+len(t.Sound))
	b = append(b, xmlDecl...)
	b = append(b, rootOpen...)
	b = append(b, "<wp:Toast>"...)
	b = appendElement(b, Text1, t.Text1)
	b = appendElement(b, Text2, t.Text2)
	b = appendElement(b, Param, t.Param)
	if t.Silent {
		b = append(b, `<wp:Sound Silent="true">`...)
		b = appendText(b, t.Sound)
		b = append(b, "</wp:Sound>"...)
	} else {
		b = appendElement(b, Sound, t.Sound)
	}
	b = append(b, "</wp:Toast>"...)
	b = append(b, rootClose...)
	return b
}

// appendElement appends <wp:name>value</wp:name>, nothing when value is
// empty.
func appendElement(b []byte, name, value string) []byte {
	if value == "" {
		return b
	}
	return appendElem(b, name, value)
}

// appendElem appends <wp:name>value</wp:name>, empty value included.
func appendElem(b []byte, name, value string) []byte {
	b = append(b, "<wp:"...)
	b = append(b, name...)
	b = append(b, '>')
	b = appendText(b, value)
	b = append(b, "</wp:"...)
	b = append(b, name...)
	return append(b, '>')
}

// Encode returns t as canonical XML: the XML declaration, then
// <wp:Notification xmlns:wp="WPNotification" Version="2.0"> (Version only
// for FlipTile, CycleTile and IconicTile; the WP7.5 tile has none) holding a
// <wp:Tile> with Id (spelled so, when set) and Template (when not the WP7.5
// tile) attributes, and the elements of Fields and Cleared in the
// template's canonical order (see Elements). A cleared element is written
// <wp:Title Action="Clear"></wp:Title>; an element set to "" is written
// <wp:Title></wp:Title>. There is no white space between elements.
//
// Encode does not validate: call Validate first. Elements the template does
// not allow are left out; characters XML cannot carry (and invalid UTF-8) are
// written as U+FFFD. For a valid tile, ParseTile(t.Encode()) equals t (see
// Tile.Equal).
func (t *Tile) Encode() []byte {
	ti := info(t.Template)
	n := 200 + len(t.ID)
	for k, v := range t.Fields {
		n += 2*len(k) + len(v) + 12
	}
	b := make([]byte, 0, n+len(t.Cleared)*64)
	b = append(b, xmlDecl...)
	if t.Template == TemplateDefault {
		b = append(b, rootOpen...)
	} else {
		b = append(b, rootOpenV2...)
	}
	b = append(b, "<wp:Tile"...)
	if t.ID != "" {
		b = append(b, ` Id="`...)
		b = appendAttr(b, t.ID)
		b = append(b, '"')
	}
	if t.Template != TemplateDefault {
		b = append(b, ` Template="`...)
		b = appendAttr(b, string(t.Template))
		b = append(b, '"')
	}
	b = append(b, '>')
	if ti != nil {
		for _, name := range ti.names {
			if v, ok := t.Fields[name]; ok {
				b = appendElem(b, name, v)
				continue
			}
			for _, c := range t.Cleared {
				if c == name {
					b = append(b, "<wp:"...)
					b = append(b, name...)
					b = append(b, clearSuffix...)
					b = append(b, name...)
					b = append(b, '>')
					break
				}
			}
		}
	}
	b = append(b, "</wp:Tile>"...)
	b = append(b, rootClose...)
	return b
}

// appendText appends s escaped as element text: &, <, > and CR (which XML
// would otherwise turn into LF) are escaped.
func appendText(b []byte, s string) []byte { return appendEscaped(b, s, false) }

// appendAttr appends s escaped for a double-quoted attribute value: as for
// text, plus the double quote, tab and LF (which attribute normalisation
// would otherwise turn into spaces).
func appendAttr(b []byte, s string) []byte { return appendEscaped(b, s, true) }

func appendEscaped(b []byte, s string, attr bool) []byte {
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		var esc string
		width := 1
		if c < utf8.RuneSelf {
			switch {
			case c == '&':
				esc = "&amp;"
			case c == '<':
				esc = "&lt;"
			case c == '>':
				esc = "&gt;"
			case c == '\r':
				esc = "&#xD;"
			case attr && c == '"':
				esc = "&quot;"
			case attr && c == '\t':
				esc = "&#x9;"
			case attr && c == '\n':
				esc = "&#xA;"
			case c < 0x20 && c != '\t' && c != '\n':
				esc = "\uFFFD"
			}
		} else {
			var r rune
			r, width = utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && width == 1 || !validXMLChar(r) {
				esc = "\uFFFD"
			}
		}
		if esc != "" {
			b = append(b, s[last:i]...)
			b = append(b, esc...)
			last = i + width
		}
		i += width
	}
	return append(b, s[last:]...)
}
