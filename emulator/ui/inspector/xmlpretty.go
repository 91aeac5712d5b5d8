package inspector

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
)

// PrettyXML indents an XML payload two spaces a level for reading, keeping
// namespace prefixes as written (wp:Toast stays wp:Toast) and elements that
// hold only text on one line. It reports false, and returns b as text, when
// b is not a well-formed XML document.
func PrettyXML(b []byte) (string, bool) {
	d := xml.NewDecoder(bytes.NewReader(b))
	var toks []xml.Token
	var open []xml.Name // RawToken does not match end tags to start tags
	elements := 0
	for {
		t, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return string(b), false
		}
		switch t := t.(type) {
		case xml.StartElement:
			open = append(open, t.Name)
			elements++
		case xml.EndElement:
			if len(open) == 0 || open[len(open)-1] != t.Name {
				return string(b), false
			}
			open = open[:len(open)-1]
		}
		toks = append(toks, xml.CopyToken(t))
	}
	if len(open) > 0 || elements == 0 {
		return string(b), false
	}
	var out strings.Builder
	depth := 0
	indent := func() { out.WriteString(strings.Repeat("  ", depth)) }
	for i := 0; i < len(toks); i++ {
		switch t := toks[i].(type) {
		case xml.ProcInst:
			indent()
			out.WriteString("<?" + t.Target + " " + string(t.Inst) + "?>\n")
		case xml.Comment:
			indent()
			out.WriteString("<!--" + string(t) + "-->\n")
		case xml.StartElement:
			indent()
			writeStart(&out, t)
			// <a/>, and <a>text</a> on one line.
			if i+1 < len(toks) {
				if e, ok := toks[i+1].(xml.EndElement); ok && e.Name == t.Name {
					out.WriteString("/>\n")
					i++
					continue
				}
			}
			out.WriteString(">")
			if i+2 < len(toks) {
				c, isText := toks[i+1].(xml.CharData)
				e, isEnd := toks[i+2].(xml.EndElement)
				if isText && isEnd && e.Name == t.Name {
					xml.EscapeText(&out, c)
					out.WriteString("</" + rawName(e.Name) + ">\n")
					i += 2
					continue
				}
			}
			out.WriteString("\n")
			depth++
		case xml.EndElement:
			depth = max(0, depth-1)
			indent()
			out.WriteString("</" + rawName(t.Name) + ">\n")
		case xml.CharData:
			if s := strings.TrimSpace(string(t)); s != "" {
				indent()
				xml.EscapeText(&out, []byte(s))
				out.WriteString("\n")
			}
		}
	}
	return strings.TrimRight(out.String(), "\n"), true
}

func rawName(n xml.Name) string {
	if n.Space != "" {
		return n.Space + ":" + n.Local
	}
	return n.Local
}

// writeStart writes a start tag without its closing ">".
func writeStart(out *strings.Builder, t xml.StartElement) {
	out.WriteString("<" + rawName(t.Name))
	for _, a := range t.Attr {
		out.WriteString(" " + rawName(a.Name) + `="`)
		xml.EscapeText(out, []byte(a.Value))
		out.WriteString(`"`)
	}
}
