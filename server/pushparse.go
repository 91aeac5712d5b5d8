package server

import (
	"bytes"
	"net/http"
	"strings"
)

// The push front (pushfront.go) serves the common push itself: a whole
// HTTP/1.1 request read at once, of the one shape below. Anything else, and
// anything it is not sure of, goes to net/http as it arrived, so what a
// sender sees never depends on which of the two answered.

// frontMaxHead bounds a request head the front reads: net/http's limit
// (Server.MaxHeaderBytes) plus its slack of 4,096 bytes, so that a larger
// head reaches net/http and gets its 431.
const frontMaxHead = 16<<10 + 4096

// What parsePush makes of the bytes read.
const (
	pushIncomplete = iota // a start of a request: the rest has not arrived
	pushOther             // not a request the front serves: net/http's
	pushComplete          // a push, whole
)

// headerSpace is what parsePush makes a request's header in: the map and
// the array of its values (each value a slice of it, with no room to grow).
type headerSpace struct {
	h    http.Header
	vals []string
}

// maxReusedHeaderLines bounds the header a connection's space is kept for:
// a head of more lines (a sender may send hundreds, refused with a 400 on
// a connection kept alive) gets a space of its own, so that what a
// connection keeps between pushes stays small.
const maxReusedHeaderLines = 32

// forget drops what the space holds of the last request (its values keep
// the whole copy of its head alive, a bearer token with it), keeping the
// map's and the array's room.
func (sp *headerSpace) forget() {
	clear(sp.h)
	clear(sp.vals[:cap(sp.vals)])
}

// frontRequest is a push parsed by the front.
type frontRequest struct {
	path   string // PushPath and the token
	host   string
	header http.Header
	body   []byte // Content-Length bytes, within the bytes parsed
	close  bool   // Connection: close
}

// parsePush parses the request at the start of b: a POST to PushPath and
// a token, HTTP/1.1, a Host, a Content-Length of at most maxBody and the
// body after the head, headers of valid names and values, no
// Transfer-Encoding, Expect, Upgrade, or Connection other than
// keep-alive or close. It returns the request and its length in b with
// pushComplete; pushIncomplete when b holds a part of such a request (or
// of any request); pushOther for anything else. The request's strings are
// parts of one copy of the head; its body is b's. The header is made in sp
// when sp is not nil: a connection reuses its map and array of values from
// one push to the next, as the handler keeps nothing of a request once it
// returns (they were three allocations of every push).
func parsePush(b []byte, maxBody int, sp *headerSpace) (frontRequest, int, int) {
	var r frontRequest
	end := bytes.Index(b, crlfcrlf)
	if end < 0 {
		if len(b) >= frontMaxHead || !couldBePush(b) {
			return r, 0, pushOther
		}
		return r, 0, pushIncomplete
	}
	if end+4 > frontMaxHead {
		return r, 0, pushOther
	}
	head := b[:end+2] // each line with its CRLF
	line, rest, _ := bytes.Cut(head, crlf)
	if !pushRequestLine(line) {
		return r, 0, pushOther
	}
	length := -1 // Content-Length
	// One copy of the head holds every value, and one array every value's
	// slice (as net/textproto reads a header): with sp's map and array
	// reused, one allocation for the header, not two per line. A value
	// keeps the whole head alive; the handler copies what it keeps past
	// the request.
	hs := string(head)
	r.path = hs[len("POST ") : len(pushHead)+tokenLen] // the request line starts the head
	lines := bytes.Count(rest, crlf)
	if sp == nil || lines > maxReusedHeaderLines {
		sp = &headerSpace{} // an unusual head's space is not kept
	}
	if sp.h == nil {
		sp.h = make(http.Header, lines)
	}
	clear(sp.h)
	if cap(sp.vals) < lines {
		sp.vals = make([]string, 0, lines)
	}
	vals := sp.vals[:0]
	r.header = sp.h
	hosts := 0
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, crlf)
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !validFieldName(line[:colon]) {
			return r, 0, pushOther // also a folded line (it starts with a space)
		}
		value := trimOWS(line[colon+1:])
		if !validFieldValue(value) {
			return r, 0, pushOther
		}
		key := canonicalKey(line[:colon])
		at := cap(head) - cap(value) // value's offset in head (both slice b's array)
		v := hs[at : at+len(value)]
		switch key {
		case "Host":
			hosts++
			if !validHost(v) {
				return r, 0, pushOther
			}
			r.host = v
			continue // net/http keeps it out of Header
		case "Content-Length":
			if length >= 0 {
				return r, 0, pushOther
			}
			n, ok := contentLength(value, maxBody)
			if !ok {
				return r, 0, pushOther
			}
			length = n
		case "Transfer-Encoding", "Expect", "Upgrade", "Te", "Trailer":
			return r, 0, pushOther
		case "Connection":
			switch strings.ToLower(v) {
			case "close":
				r.close = true
			case "keep-alive":
			default:
				return r, 0, pushOther
			}
		}
		if vs, ok := r.header[key]; ok {
			r.header[key] = append(vs, v) // a repeated name: its own array
			continue
		}
		vals = append(vals, v)
		r.header[key] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	if hosts != 1 || length < 0 {
		return r, 0, pushOther
	}
	n := end + 4 + length
	if len(b) < n {
		return r, 0, pushIncomplete
	}
	r.body = b[end+4 : n]
	return r, n, pushComplete
}

var (
	crlf     = []byte("\r\n")
	crlfcrlf = []byte("\r\n\r\n")
	pushHead = []byte("POST " + PushPath)
	http11   = []byte(" HTTP/1.1")
)

// couldBePush reports whether b, a start of a request, may still become a
// push the front serves.
func couldBePush(b []byte) bool {
	n := min(len(b), len(pushHead))
	return bytes.Equal(b[:n], pushHead[:n])
}

// pushRequestLine checks "POST /push/<token> HTTP/1.1".
func pushRequestLine(line []byte) bool {
	if len(line) != len(pushHead)+tokenLen+len(http11) || !bytes.HasPrefix(line, pushHead) || !bytes.HasSuffix(line, http11) {
		return false
	}
	return isTokenChars(line[len(pushHead) : len(pushHead)+tokenLen])
}

// validFieldName: a token (RFC 9110, 5.1).
func validFieldName(b []byte) bool {
	for _, c := range b {
		if !tchars[c] {
			return false
		}
	}
	return len(b) > 0
}

// tchars marks the bytes of a token (RFC 9110, 5.6.2): a table, as the
// check runs for every byte of every header name of every push.
var tchars = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", byte(c)) >= 0
	}
	return t
}()

// validFieldValue: visible characters, spaces, tabs and obs-text, no
// control characters (what net/http accepts).
func validFieldValue(b []byte) bool {
	for _, c := range b {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// validHost: a host name or address and an optional port, in a stricter
// alphabet than net/http's (anything else goes to net/http, which
// decides).
func validHost(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._:[]", c) >= 0) {
			return false
		}
	}
	return true
}

// contentLength parses a Content-Length of digits only, at most max.
func contentLength(b []byte, max int) (int, bool) {
	if len(b) == 0 || len(b) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n <= max
}

// frontKeys are the canonical forms of the header names senders use, so
// that the usual ones cost no allocation.
var frontKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{"Host", "Content-Length", "Content-Type", "Connection", "Authorization",
		"User-Agent", "Accept", "Accept-Encoding", "Transfer-Encoding", "Expect", "Upgrade", "Te", "Trailer",
		HeaderTarget, HeaderClass, HeaderMessageID, http.CanonicalHeaderKey(HeaderTarget),
		http.CanonicalHeaderKey(HeaderClass), http.CanonicalHeaderKey(HeaderMessageID)} {
		c := http.CanonicalHeaderKey(k)
		m[k] = c
		m[strings.ToLower(k)] = c
		m[c] = c
	}
	return m
}()

// canonicalKey is net/http's canonical form of a header name.
func canonicalKey(name []byte) string {
	if k, ok := frontKeys[string(name)]; ok {
		return k
	}
	return http.CanonicalHeaderKey(string(name))
}
