package payload

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// The parser reads the body token by token with encoding/xml's Decoder in
// strict mode, using RawToken and its own namespace resolution so that an
// undeclared prefix is an error rather than a name space of its own. The
// rules it applies are in the package documentation.

const (
	xmlnsPrefix = "xmlns"
	xmlPrefix   = "xml"
	xmlURL      = "http://www.w3.org/XML/1998/namespace"
	versionV2   = "2.0"
	// maxAttrs bounds the attributes (namespace declarations included) of
	// one element, which keeps the duplicate check cheap.
	maxAttrs = 32
)

var errCharset = errors.New("non-UTF-8 charset")

type binding struct {
	prefix string // "" for the default namespace
	uri    string
	depth  int
}

type parser struct {
	d       *xml.Decoder
	ns      []binding
	depth   int
	charset string
	started bool // a token other than white space was read
}

// ParseToast parses a toast payload: a Notification root in the
// WPNotification namespace (under any prefix or as the default namespace;
// Version="2.0" or no Version) holding exactly one Toast, whose children
// are Text1, Text2, Param and Sound (each at most once; Sound may carry
// Silent="true" or "false"). Text1 and Text2 must not both be empty. Element
// text is trimmed of surrounding white space. Any other input is refused
// with an *Error; the package documentation lists the parser's rules.
func ParseToast(b []byte) (*Toast, error) {
	p, err := newParser(b)
	if err != nil {
		return nil, err
	}
	var toast *Toast
	err = p.document(KindToast, func(se xml.StartElement) error {
		var err error
		toast, err = p.toast(se)
		return err
	})
	if err != nil {
		return nil, err
	}
	return toast, nil
}

// ParseTile parses a tile payload: a Notification root in the
// WPNotification namespace (under any prefix or as the default namespace;
// Version="2.0" or no Version) holding exactly one Tile. The Tile may carry
// Id or ID (both only if equal) and a Template attribute (absent = the WP7.5
// tile, else FlipTile, CycleTile or IconicTile); its children must be
// elements of that template (see Elements), each at most once. An element
// with Action="Clear" goes to Cleared (its text is ignored); others go to
// Fields with their text trimmed of surrounding white space. Count must be
// a whole number 0..99 and BackgroundColor #AARRGGBB. Fields is never nil
// in the result. Any other input is refused with an *Error.
func ParseTile(b []byte) (*Tile, error) {
	p, err := newParser(b)
	if err != nil {
		return nil, err
	}
	var tile *Tile
	err = p.document(KindTile, func(se xml.StartElement) error {
		var err error
		tile, err = p.tile(se)
		return err
	})
	if err != nil {
		return nil, err
	}
	return tile, nil
}

func newParser(b []byte) (*parser, error) {
	b = bytes.TrimPrefix(b, []byte("\xEF\xBB\xBF"))
	if len(b) == 0 {
		return nil, &Error{Reason: "empty body: expected a <wp:Notification xmlns:wp=\"WPNotification\"> document"}
	}
	if !utf8.Valid(b) {
		off := 0
		for off < len(b) {
			r, size := utf8.DecodeRune(b[off:])
			if r == utf8.RuneError && size == 1 {
				break
			}
			off += size
		}
		return nil, &Error{Reason: fmt.Sprintf("body is not valid UTF-8 (bad byte at offset %d)", off)}
	}
	if err := checkCharRefs(b); err != nil {
		return nil, err
	}
	p := &parser{d: xml.NewDecoder(bytes.NewReader(b))}
	p.d.Strict = true
	p.d.CharsetReader = func(charset string, _ io.Reader) (io.Reader, error) {
		p.charset = charset
		return nil, errCharset
	}
	return p, nil
}

// checkCharRefs refuses character references to surrogates (&#xD800; to
// &#xDFFF;), which are not XML characters but which encoding/xml silently
// turns into U+FFFD. It looks at every "&#" of the body, so the same
// sequence inside a comment or CDATA section is refused too; that costs
// nothing real senders write. Other illegal references are left to the
// decoder, which refuses them.
func checkCharRefs(b []byte) *Error {
	for {
		i := bytes.Index(b, []byte("&#"))
		if i < 0 {
			return nil
		}
		b = b[i+2:]
		base := 10
		if len(b) > 0 && b[0] == 'x' {
			base, b = 16, b[1:]
		}
		n, j := 0, 0
		for ; j < len(b); j++ {
			c := b[j]
			var d int
			switch {
			case '0' <= c && c <= '9':
				d = int(c - '0')
			case base == 16 && 'a' <= c && c <= 'f':
				d = int(c-'a') + 10
			case base == 16 && 'A' <= c && c <= 'F':
				d = int(c-'A') + 10
			default:
				d = -1
			}
			if d < 0 {
				break
			}
			if n <= 0x10FFFF {
				n = n*base + d
			}
		}
		if j < len(b) && b[j] == ';' && n >= 0xD800 && n <= 0xDFFF {
			return &Error{Reason: fmt.Sprintf("character reference to U+%04X (a surrogate) is not an XML character", n)}
		}
	}
}

// token returns the next raw token, io.EOF at the end of the input, or an
// *Error. It refuses directives and misplaced XML declarations.
func (p *parser) token() (xml.Token, error) {
	tok, err := p.d.RawToken()
	if err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		if errors.Is(err, errCharset) {
			return nil, &Error{Reason: fmt.Sprintf("the XML declaration says encoding=%s; MPNS payloads must be UTF-8", quote(p.charset))}
		}
		var se *xml.SyntaxError
		if errors.As(err, &se) {
			return nil, &Error{Reason: fmt.Sprintf("malformed XML on line %d: %s", se.Line, se.Msg)}
		}
		return nil, &Error{Reason: "malformed XML: " + strings.TrimPrefix(err.Error(), "xml: ")}
	}
	switch t := tok.(type) {
	case xml.Directive:
		word, _, _ := strings.Cut(string(t), " ")
		if len(word) > 16 {
			word = word[:16]
		}
		return nil, &Error{Reason: fmt.Sprintf("<!%s ...> declarations are not allowed: no DOCTYPE, DTD or entity definitions", word)}
	case xml.ProcInst:
		if strings.EqualFold(t.Target, "xml") {
			if t.Target != "xml" {
				return nil, &Error{Reason: fmt.Sprintf("processing instruction target %s is reserved", quote(t.Target))}
			}
			if p.started {
				return nil, &Error{Reason: "the XML declaration <?xml ...?> may only appear at the start of the document"}
			}
		}
		p.started = true
	case xml.CharData:
		if !isAllSpace(t) {
			p.started = true
		}
	default:
		p.started = true
	}
	return tok, nil
}

// document reads the prolog, the Notification root, its single child
// (handing a child of the wanted kind to body, which must consume it), the
// root's end and the epilogue.
func (p *parser) document(want Kind, body func(xml.StartElement) error) error {
	// Prolog.
	var root xml.StartElement
prolog:
	for {
		tok, err := p.token()
		if err == io.EOF {
			return &Error{Reason: "no root element: expected <wp:Notification xmlns:wp=\"WPNotification\">"}
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			root = t
			break prolog
		case xml.CharData:
			if !isAllSpace(t) {
				return &Error{Reason: "text before the root element"}
			}
		case xml.EndElement:
			return &Error{Reason: fmt.Sprintf("malformed XML: </%s> without a start tag", rawName(t.Name))}
		}
	}

	// Root.
	if root.Name.Local != "Notification" {
		return &Error{Element: root.Name.Local, Reason: fmt.Sprintf("the root element must be Notification, found %s", rawName(root.Name))}
	}
	local, err := p.open(root)
	if err != nil {
		return err
	}
	err = p.attrs(local, root, []string{AttrVersion}, func(name, value string) error {
		if value != versionV2 {
			return &Error{Element: local + "/@" + name, Reason: fmt.Sprintf("Version=%s is not supported: write Version=\"2.0\" or leave it out", quote(value))}
		}
		return nil
	})
	if err != nil {
		return err
	}
	children := 0
	err = p.children(root.Name, local, func(se xml.StartElement, child string) error {
		children++
		if children > 1 {
			return &Error{Element: local, Reason: fmt.Sprintf("Notification must hold exactly one Toast or Tile; found a second element %s", child)}
		}
		switch {
		case want == KindToast && child == "Toast", want == KindTile && child == "Tile":
			return body(se)
		case want == KindToast:
			return &Error{Element: local, Reason: "expected a Toast (X-WindowsPhone-Target: toast) but found " + child}
		default:
			return &Error{Element: local, Reason: "expected a Tile (X-WindowsPhone-Target: token) but found " + child}
		}
	})
	if err != nil {
		return err
	}
	if children == 0 {
		if want == KindToast {
			return &Error{Element: local, Reason: "Notification is empty: expected a Toast"}
		}
		return &Error{Element: local, Reason: "Notification is empty: expected a Tile"}
	}

	// Epilogue.
	for {
		tok, err := p.token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.Comment, xml.ProcInst:
		case xml.CharData:
			if !isAllSpace(t) {
				return &Error{Reason: "trailing content after the end of the Notification element"}
			}
		default:
			return &Error{Reason: "trailing content after the end of the Notification element"}
		}
	}
}

func rawName(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return n.Space + ":" + n.Local
}

// open enters element se: it records its namespace declarations, resolves
// its name and checks that it is in the WPNotification namespace. It
// returns the local name.
func (p *parser) open(se xml.StartElement) (string, error) {
	local := se.Name.Local
	p.depth++
	if len(se.Attr) > maxAttrs {
		return "", &Error{Element: local, Reason: fmt.Sprintf("element has %d attributes; at most %d are allowed", len(se.Attr), maxAttrs)}
	}
	for _, a := range se.Attr {
		if len(a.Value) > MaxValueLen {
			return "", &Error{Element: local + "/@" + rawName(a.Name), Reason: fmt.Sprintf("attribute value is %d bytes long; at most %d are allowed", len(a.Value), MaxValueLen)}
		}
		switch {
		case a.Name.Space == xmlnsPrefix:
			switch {
			case a.Name.Local == xmlnsPrefix:
				return "", &Error{Element: local, Reason: "the xmlns prefix cannot be declared"}
			case a.Value == "":
				return "", &Error{Element: local, Reason: fmt.Sprintf("xmlns:%s=\"\": a prefix cannot be bound to the empty namespace", a.Name.Local)}
			case (a.Name.Local == xmlPrefix) != (a.Value == xmlURL):
				return "", &Error{Element: local, Reason: "the xml prefix is reserved for " + xmlURL}
			}
			if err := p.bind(local, a.Name.Local, a.Value); err != nil {
				return "", err
			}
		case a.Name.Space == "" && a.Name.Local == xmlnsPrefix:
			if err := p.bind(local, "", a.Value); err != nil {
				return "", err
			}
		}
	}
	uri, ok := p.lookup(se.Name.Space)
	if !ok {
		return "", &Error{Element: local, Reason: fmt.Sprintf("namespace prefix %q is not declared (add xmlns:%s=\"WPNotification\")", se.Name.Space, se.Name.Space)}
	}
	if uri != Namespace {
		if uri == "" {
			return "", &Error{Element: local, Reason: fmt.Sprintf("element %s is in no namespace; it must be in the WPNotification namespace (write <wp:%s> and declare xmlns:wp=\"WPNotification\" on the root)", local, local)}
		}
		return "", &Error{Element: local, Reason: fmt.Sprintf("element %s is in namespace %s; it must be in the WPNotification namespace", local, quote(uri))}
	}
	return local, nil
}

// bind declares prefix (or the default namespace, "") on the element being
// opened, refusing a second declaration of the same prefix there.
func (p *parser) bind(local, prefix, uri string) error {
	for i := len(p.ns) - 1; i >= 0 && p.ns[i].depth == p.depth; i-- {
		if p.ns[i].prefix == prefix {
			what := "the default namespace (xmlns)"
			if prefix != "" {
				what = fmt.Sprintf("prefix %q (xmlns:%s)", prefix, prefix)
			}
			return &Error{Element: local, Reason: "duplicate declaration of " + what}
		}
	}
	p.ns = append(p.ns, binding{prefix, uri, p.depth})
	return nil
}

// close leaves the current element, checking that end closes start.
func (p *parser) close(start xml.Name, end xml.EndElement) error {
	if end.Name != start {
		return &Error{Reason: fmt.Sprintf("malformed XML: <%s> closed by </%s>", rawName(start), rawName(end.Name))}
	}
	n := len(p.ns)
	for n > 0 && p.ns[n-1].depth == p.depth {
		n--
	}
	p.ns = p.ns[:n]
	p.depth--
	return nil
}

func (p *parser) lookup(prefix string) (string, bool) {
	for i := len(p.ns) - 1; i >= 0; i-- {
		if p.ns[i].prefix == prefix {
			return p.ns[i].uri, true
		}
	}
	switch prefix {
	case "":
		return "", true
	case xmlPrefix:
		return xmlURL, true
	}
	return "", false
}

// attrs checks the attributes of element local (already opened) and calls
// fn once for each attribute in known. See the rules at the top of the file.
func (p *parser) attrs(local string, se xml.StartElement, known []string, fn func(name, value string) error) error {
	var seen uint32
	for i, a := range se.Attr {
		if a.Name.Space == xmlnsPrefix || a.Name.Space == "" && a.Name.Local == xmlnsPrefix {
			continue
		}
		uri := ""
		if a.Name.Space != "" {
			var ok bool
			if uri, ok = p.lookup(a.Name.Space); !ok {
				return &Error{Element: local + "/@" + rawName(a.Name), Reason: fmt.Sprintf("namespace prefix %q is not declared", a.Name.Space)}
			}
		}
		if err := p.duplicateAttr(local, se.Attr, i, uri); err != nil {
			return err
		}
		if uri != "" && uri != Namespace {
			continue
		}
		k := slices.Index(known, a.Name.Local)
		if k < 0 {
			for _, name := range known {
				if strings.EqualFold(a.Name.Local, name) {
					return &Error{Element: local + "/@" + a.Name.Local, Reason: fmt.Sprintf("attribute names are case-sensitive: write %s, not %s", name, a.Name.Local)}
				}
			}
			continue
		}
		if seen&(1<<k) != 0 {
			return &Error{Element: local + "/@" + a.Name.Local, Reason: fmt.Sprintf("duplicate %s attribute", a.Name.Local)}
		}
		seen |= 1 << k
		if err := fn(a.Name.Local, a.Value); err != nil {
			return err
		}
	}
	return nil
}

// duplicateAttr refuses a second attribute with the name (after namespace
// resolution) of attrs[i]. Only earlier attributes are compared, so the work
// is quadratic in the number of attributes of one element, which open
// bounds by maxAttrs.
func (p *parser) duplicateAttr(local string, attrs []xml.Attr, i int, uri string) error {
	a := attrs[i]
	for _, b := range attrs[:i] {
		if b.Name.Local != a.Name.Local || b.Name.Space == xmlnsPrefix || b.Name.Space == "" && b.Name.Local == xmlnsPrefix {
			continue
		}
		buri := ""
		if b.Name.Space != "" {
			buri, _ = p.lookup(b.Name.Space)
		}
		if buri == uri {
			return &Error{Element: local + "/@" + rawName(a.Name), Reason: fmt.Sprintf("duplicate attribute %s", rawName(a.Name))}
		}
	}
	return nil
}

// children reads the content of the element start (already opened, local
// name local) up to and including its end tag. The content must be
// elements, white space, comments and processing instructions; fn is called
// for each child element after it is opened and must read the child
// through its end tag (text calls close).
func (p *parser) children(start xml.Name, local string, fn func(se xml.StartElement, local string) error) error {
	for {
		tok, err := p.token()
		if err == io.EOF {
			return &Error{Element: local, Reason: fmt.Sprintf("unexpected end of document: <%s> is not closed", rawName(start))}
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			child, err := p.open(t)
			if err != nil {
				return err
			}
			if err := fn(t, child); err != nil {
				return err
			}
		case xml.EndElement:
			return p.close(start, t)
		case xml.CharData:
			if !isAllSpace(t) {
				return &Error{Element: local, Reason: fmt.Sprintf("unexpected text %s in %s: only elements belong here", quote(trimSpace(string(t))), local)}
			}
		}
	}
}

// text reads the text content of the value element start (already opened,
// local name local) through its end tag and returns it trimmed.
func (p *parser) text(start xml.Name, local string) (string, error) {
	var buf []byte
	for {
		tok, err := p.token()
		if err == io.EOF {
			return "", &Error{Element: local, Reason: fmt.Sprintf("unexpected end of document: <%s> is not closed", rawName(start))}
		}
		if err != nil {
			return "", err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return "", &Error{Element: local, Reason: fmt.Sprintf("unexpected element <%s> inside %s: %s holds text only, and payload elements nest at most 3 deep (Notification/Tile/Title)", rawName(t.Name), local, local)}
		case xml.EndElement:
			if err := p.close(start, t); err != nil {
				return "", err
			}
			return trimSpace(string(buf)), nil
		case xml.CharData:
			if len(buf)+len(t) > MaxValueLen {
				return "", &Error{Element: local, Reason: fmt.Sprintf("text is longer than %d bytes", MaxValueLen)}
			}
			buf = append(buf, t...)
		}
	}
}

func (p *parser) toast(se xml.StartElement) (*Toast, error) {
	const local = "Toast"
	if err := p.attrs(local, se, nil, nil); err != nil {
		return nil, err
	}
	t := new(Toast)
	var seen [4]bool
	err := p.children(se.Name, local, func(ce xml.StartElement, child string) error {
		var dst *string
		var idx int
		switch child {
		case Text1:
			dst, idx = &t.Text1, 0
		case Text2:
			dst, idx = &t.Text2, 1
		case Param:
			dst, idx = &t.Param, 2
		case Sound:
			dst, idx = &t.Sound, 3
		default:
			return unknownToastElement(child)
		}
		if seen[idx] {
			return errDuplicate(child)
		}
		seen[idx] = true
		known := []string{AttrAction}
		if child == Sound {
			known = []string{AttrAction, AttrSilent}
		}
		err := p.attrs(child, ce, known, func(name, value string) error {
			if name == AttrAction {
				return &Error{Element: child + "/@" + name, Reason: "Action=\"Clear\" applies to tile elements only"}
			}
			switch value {
			case "true":
				t.Silent = true
			case "false":
			default:
				return &Error{Element: child + "/@" + name, Reason: fmt.Sprintf("Silent must be \"true\" or \"false\", got %s", quote(value))}
			}
			return nil
		})
		if err != nil {
			return err
		}
		s, err := p.text(ce.Name, child)
		*dst = s
		return err
	})
	if err != nil {
		return nil, err
	}
	if t.Text1 == "" && t.Text2 == "" {
		return nil, errEmptyToast()
	}
	return t, nil
}

func (p *parser) tile(se xml.StartElement) (*Tile, error) {
	const local = "Tile"
	t := &Tile{Fields: make(map[string]string)}
	var id, idUpper string
	var haveID, haveIDUpper bool
	err := p.attrs(local, se, []string{AttrID, AttrIDUpper, AttrTemplate}, func(name, value string) error {
		switch name {
		case AttrID:
			id, haveID = value, true
		case AttrIDUpper:
			idUpper, haveIDUpper = value, true
		case AttrTemplate:
			if info(Template(value)) == nil || value == "" {
				return unknownTemplate(value)
			}
			t.Template = Template(value)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if haveID && haveIDUpper && id != idUpper {
		return nil, &Error{Element: local + "/@" + AttrID, Reason: fmt.Sprintf("Id=%s and ID=%s disagree; write only Id", quote(id), quote(idUpper))}
	}
	t.ID = id
	if !haveID {
		t.ID = idUpper
	}
	ti := info(t.Template)
	var seen, cleared uint32
	err = p.children(se.Name, local, func(ce xml.StartElement, child string) error {
		i, ok := ti.index[child]
		if !ok {
			return notAllowed(t.Template, child)
		}
		if seen&(1<<i) != 0 {
			return errDuplicate(child)
		}
		seen |= 1 << i
		isClear := false
		err := p.attrs(child, ce, []string{AttrAction}, func(name, value string) error {
			if value != ActionClear {
				return &Error{Element: child + "/@" + name, Reason: fmt.Sprintf("Action must be \"Clear\", got %s", quote(value))}
			}
			isClear = true
			return nil
		})
		if err != nil {
			return err
		}
		s, err := p.text(ce.Name, child)
		if err != nil {
			return err
		}
		if isClear {
			cleared |= 1 << i
			return nil
		}
		if err := checkField(child, s); err != nil {
			return err
		}
		t.Fields[child] = s
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, name := range ti.names {
		if cleared&(1<<i) != 0 {
			t.Cleared = append(t.Cleared, name)
		}
	}
	return t, nil
}
