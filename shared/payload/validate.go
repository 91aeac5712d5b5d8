package payload

import (
	"fmt"
	"sort"
	"unicode/utf8"
)

// MaxValueLen is the longest element text or attribute value, in bytes, the
// parser and Validate accept. It bounds the work done on hostile input; it is
// not the payload size limit (3072 bytes by default), which the server
// enforces on the whole body before parsing.
const MaxValueLen = 4096

// xmlSpace reports whether c is XML white space (space, tab, CR, LF).
func xmlSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// trimSpace removes leading and trailing XML white space, and nothing else
// (a no-break space is content).
func trimSpace(s string) string {
	i, j := 0, len(s)
	for i < j && xmlSpace(s[i]) {
		i++
	}
	for j > i && xmlSpace(s[j-1]) {
		j--
	}
	return s[i:j]
}

func isAllSpace(b []byte) bool {
	for _, c := range b {
		if !xmlSpace(c) {
			return false
		}
	}
	return true
}

// validXMLChar reports whether r may appear in an XML 1.0 document.
func validXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

// checkChars checks that s is at most MaxValueLen bytes of valid UTF-8 made
// of characters XML can carry.
func checkChars(element, s string) *Error {
	if len(s) > MaxValueLen {
		return &Error{Element: element, Reason: fmt.Sprintf("value is %d bytes long; at most %d are allowed", len(s), MaxValueLen)}
	}
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return &Error{Element: element, Reason: fmt.Sprintf("value is not valid UTF-8 (bad byte at offset %d)", i)}
			}
		}
		if !validXMLChar(r) {
			return &Error{Element: element, Reason: fmt.Sprintf("value contains %U, which XML cannot carry", r)}
		}
	}
	return nil
}

// checkText checks the text of an element as Validate sees it: checkChars
// plus no surrounding white space (the parser trims it, so such a value
// would not survive a round trip).
func checkText(element, s string) *Error {
	if err := checkChars(element, s); err != nil {
		return err
	}
	if s != "" && (xmlSpace(s[0]) || xmlSpace(s[len(s)-1])) {
		return &Error{Element: element, Reason: "value has leading or trailing white space, which parsing trims; trim it"}
	}
	return nil
}

// parseCount parses a Count value: ASCII digits only, 0..MaxCount.
func parseCount(s string) (int, bool) {
	if s == "" || len(s) > 8 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n <= MaxCount
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// validColor reports whether s is #AARRGGBB.
func validColor(s string) bool {
	if len(s) != 9 || s[0] != '#' {
		return false
	}
	for i := 1; i < 9; i++ {
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}

// checkField applies the per-element value rules (Count, BackgroundColor)
// to an already trimmed value.
func checkField(name, value string) *Error {
	switch name {
	case Count:
		if _, ok := parseCount(value); !ok {
			return &Error{Element: Count, Reason: fmt.Sprintf("Count must be a whole number from 0 to %d, got %s", MaxCount, quote(value))}
		}
	case BackgroundColor:
		if !validColor(value) {
			return &Error{Element: BackgroundColor, Reason: fmt.Sprintf("BackgroundColor must be a colour written #AARRGGBB (8 hex digits, alpha first), got %s", quote(value))}
		}
	}
	return nil
}

// Validate reports whether t is a toast the parser would accept, with the
// same *Error the parser would give. Text values must not have leading or
// trailing white space (the parser trims it), must be valid UTF-8 made of
// characters XML can carry, and at most MaxValueLen bytes; Text1 and Text2
// must not both be empty.
func (t *Toast) Validate() error {
	if t == nil {
		return &Error{Reason: "nil toast"}
	}
	for _, f := range [...]struct{ name, value string }{
		{Text1, t.Text1}, {Text2, t.Text2}, {Param, t.Param}, {Sound, t.Sound},
	} {
		if err := checkText(f.name, f.value); err != nil {
			return err
		}
	}
	if t.Text1 == "" && t.Text2 == "" {
		return errEmptyToast()
	}
	return nil
}

func errEmptyToast() *Error {
	return &Error{Element: "Toast", Reason: "a toast needs Text1 or Text2; both are empty or missing"}
}

// Validate reports whether t is a tile the parser would accept, with the
// same *Error the parser would give: a known Template; Fields and Cleared
// naming only elements of that template; no element in both, none cleared
// twice; Cleared in canonical order (see Elements; Tile.Clear keeps it so);
// Count a whole number 0..99; BackgroundColor #AARRGGBB; every value without
// leading or trailing white space, valid UTF-8 XML text of at most
// MaxValueLen bytes. A nil Fields map is valid.
func (t *Tile) Validate() error {
	if t == nil {
		return &Error{Reason: "nil tile"}
	}
	ti := info(t.Template)
	if ti == nil {
		return unknownTemplate(string(t.Template))
	}
	if err := checkChars("Tile/@"+AttrID, t.ID); err != nil {
		return err
	}
	if len(t.Fields) > 0 {
		var bad []string
		for name := range t.Fields {
			if _, ok := ti.index[name]; !ok {
				bad = append(bad, name)
			}
		}
		if len(bad) > 0 {
			sort.Strings(bad)
			return notAllowed(t.Template, bad[0])
		}
		for _, name := range ti.names {
			value, ok := t.Fields[name]
			if !ok {
				continue
			}
			if err := checkText(name, value); err != nil {
				return err
			}
			if err := checkField(name, value); err != nil {
				return err
			}
		}
	}
	last := -1
	for _, name := range t.Cleared {
		i, ok := ti.index[name]
		if !ok {
			return notAllowed(t.Template, name)
		}
		if _, set := t.Fields[name]; set {
			return &Error{Element: name, Reason: fmt.Sprintf("%s is both set (in Fields) and cleared (in Cleared)", name)}
		}
		if i == last {
			return errDuplicate(name)
		}
		if i < last {
			return &Error{Element: name, Reason: fmt.Sprintf("Cleared is not in canonical order: %s comes before %s (use Tile.Clear, or see Elements)", name, ti.names[last])}
		}
		last = i
	}
	return nil
}

func errDuplicate(name string) *Error {
	return &Error{Element: name, Reason: fmt.Sprintf("duplicate %s element", name)}
}

// CountValue returns the tile's Count as a number; ok is false when Count is
// not set or is not a whole number 0..99.
func (t *Tile) CountValue() (n int, ok bool) {
	if t == nil {
		return 0, false
	}
	s, set := t.Fields[Count]
	if !set {
		return 0, false
	}
	return parseCount(s)
}

// Set sets element name to value (allocating Fields if needed) and removes
// name from Cleared. It does not validate; call Validate.
func (t *Tile) Set(name, value string) {
	if t.Fields == nil {
		t.Fields = make(map[string]string)
	}
	t.Fields[name] = value
	t.Cleared = remove(t.Cleared, name)
}

// Clear marks element name to be reset (Action="Clear"), removing any value
// from Fields. It keeps Cleared in the canonical order of t.Template; a
// name the template does not know goes last (Validate will reject it).
func (t *Tile) Clear(name string) {
	delete(t.Fields, name)
	t.Cleared = remove(t.Cleared, name)
	ti := info(t.Template)
	pos := len(t.Cleared)
	if ti != nil {
		if i, ok := ti.index[name]; ok {
			for k, c := range t.Cleared {
				if j, known := ti.index[c]; !known || j > i {
					pos = k
					break
				}
			}
		}
	}
	t.Cleared = append(t.Cleared, "")
	copy(t.Cleared[pos+1:], t.Cleared[pos:])
	t.Cleared[pos] = name
}

func remove(list []string, name string) []string {
	out := list[:0]
	for _, s := range list {
		if s != name {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// Equal reports whether t and u describe the same tile update. A nil and
// an empty Fields map are equal, as are a nil and an empty Cleared.
func (t *Tile) Equal(u *Tile) bool {
	if t == nil || u == nil {
		return t == u
	}
	if t.ID != u.ID || t.Template != u.Template || len(t.Fields) != len(u.Fields) || len(t.Cleared) != len(u.Cleared) {
		return false
	}
	for k, v := range t.Fields {
		if w, ok := u.Fields[k]; !ok || w != v {
			return false
		}
	}
	for i := range t.Cleared {
		if t.Cleared[i] != u.Cleared[i] {
			return false
		}
	}
	return true
}
