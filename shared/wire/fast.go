package wire

import (
	"encoding/base64"
	"math"
	"strconv"
)

// The hand-written encoder and decoder below cover what the hot path
// carries (notify and ack frames, and every other frame whose strings are
// printable ASCII) in a fraction of encoding/json's time and allocations.
// Each one either produces exactly what encoding/json would, or declines,
// and Encode and Decode then use encoding/json: FuzzFastMatchesJSON holds
// them to that.

// appendFrame appends the JSON of f, byte for byte what Encode's
// encoding/json writes, or reports false when a string member holds
// something other than printable ASCII (escapes beyond \" and \\ are left
// to encoding/json).
func appendFrame(b []byte, f *Frame) ([]byte, bool) {
	ok := true
	str := func(name, v string, always bool) {
		if v == "" && !always {
			return
		}
		b = append(b, ',', '"')
		b = append(b, name...)
		b = append(b, '"', ':')
		b, ok = appendString(b, v, ok)
	}
	num := func(name string, v int64) {
		if v == 0 {
			return
		}
		b = append(b, ',', '"')
		b = append(b, name...)
		b = append(b, '"', ':')
		b = strconv.AppendInt(b, v, 10)
	}
	unum := func(name string, v uint64) {
		if v == 0 {
			return
		}
		b = append(b, ',', '"')
		b = append(b, name...)
		b = append(b, '"', ':')
		b = strconv.AppendUint(b, v, 10)
	}
	list := func(name string, v []string) {
		if len(v) == 0 {
			return
		}
		b = append(b, ',', '"')
		b = append(b, name...)
		b = append(b, '"', ':', '[')
		for i, s := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b, ok = appendString(b, s, ok)
		}
		b = append(b, ']')
	}
	flag := func(name string, v bool) {
		if v {
			b = append(b, ',', '"')
			b = append(b, name...)
			b = append(b, `":true`...)
		}
	}
	b = append(b, `{"type":`...)
	b, ok = appendString(b, f.Type, ok)
	unum("id", f.ID)
	unum("re", f.Re)
	num("version", int64(f.Version))
	str("device_id", f.DeviceID, false)
	str("device_token", f.DeviceToken, false)
	str("client", f.Client, false)
	num("heartbeat_ms", f.Heartbeat)
	str("app", f.App, false)
	str("channel", f.Channel, false)
	str("service", f.Service, false)
	str("uri", f.URI, false)
	str("target", f.Target, false)
	list("domains", f.Domains)
	flag("toast", f.Toast)
	flag("tile", f.Tile)
	str("power", f.Power, false)
	str("nid", f.NID, false)
	str("kind", f.Kind, false)
	num("class", int64(f.Class))
	str("message_id", f.MessageID, false)
	if len(f.Payload) > 0 {
		b = append(b, `,"payload":"`...)
		b = base64.StdEncoding.AppendEncode(b, f.Payload)
		b = append(b, '"')
	}
	num("accepted_at", f.AcceptedAt)
	list("nids", f.NIDs)
	str("code", f.Code, false)
	str("message", f.Message, false)
	b = append(b, '}')
	return b, ok
}

// AppendAck appends the JSON of an ack frame of nids to b, byte for byte
// what Encode writes for Frame{Type: TypeAck, NIDs: nids}, without
// allocating beyond b's growth (a device acks every notification). It
// reports false when an id holds something other than printable ASCII:
// Encode it then.
func AppendAck(b []byte, nids []string) ([]byte, bool) {
	b = append(b, `{"type":"ack"`...)
	ok := true
	if len(nids) > 0 {
		b = append(b, `,"nids":[`...)
		for i, s := range nids {
			if i > 0 {
				b = append(b, ',')
			}
			b, ok = appendString(b, s, ok)
		}
		b = append(b, ']')
	}
	return append(b, '}'), ok
}

// appendString appends s quoted; ok turns false (and stays false) when s
// holds a byte outside printable ASCII.
func appendString(b []byte, s string, ok bool) ([]byte, bool) {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			ok = false
			continue
		}
		if c == '"' || c == '\\' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', c)
			start = i + 1
		}
	}
	b = append(b, s[start:]...)
	return append(b, '"'), ok
}

// Members of Frame, as bits of the decoder's "seen" set.
const (
	mType = 1 << iota
	mID
	mRe
	mVersion
	mDeviceID
	mDeviceToken
	mClient
	mHeartbeat
	mApp
	mChannel
	mService
	mURI
	mTarget
	mDomains
	mToast
	mTile
	mPower
	mNID
	mKind
	mClass
	mMessageID
	mPayload
	mAcceptedAt
	mNIDs
	mCode
	mMessage
)

// decodeFast parses b into f, a zero Frame, when b is a JSON object whose
// members all have Frame's exact names, appear once, and hold plain values
// (strings of printable ASCII without escapes, integers, true or false,
// arrays of such strings), with nothing after the object. It reports false
// otherwise (f then holds partial values), and Decode uses encoding/json.
func decodeFast(b []byte, f *Frame) bool { return decodeFastReusing(b, f, &noFrame) }

// noFrame is the zero Frame, whose strings decodeFast has to reuse.
var noFrame Frame

// decodeFastReusing is decodeFast, with a string member that equals the
// same member of prev taking prev's string rather than a copy of its own.
func decodeFastReusing(b []byte, f, prev *Frame) bool {
	p := fastParser{b: b}
	if !p.byte('{') {
		return false
	}
	var seen uint32
	if p.peek() == '}' {
		p.i++
		return p.end()
	}
	for {
		key, ok := p.raw()
		if !ok || !p.byte(':') {
			return false
		}
		var bit uint32
		switch string(key) { // compiled without a copy
		case "type":
			bit = mType
			f.Type, ok = p.word()
		case "id":
			bit = mID
			f.ID, ok = p.uint()
		case "re":
			bit = mRe
			f.Re, ok = p.uint()
		case "version":
			bit = mVersion
			var v int64
			v, ok = p.int(strconv.IntSize)
			f.Version = int(v)
		case "device_id":
			bit = mDeviceID
			f.DeviceID, ok = p.strVal(prev.DeviceID)
		case "device_token":
			bit = mDeviceToken
			f.DeviceToken, ok = p.strVal(prev.DeviceToken)
		case "client":
			bit = mClient
			f.Client, ok = p.strVal(prev.Client)
		case "heartbeat_ms":
			bit = mHeartbeat
			f.Heartbeat, ok = p.int(64)
		case "app":
			bit = mApp
			f.App, ok = p.strVal(prev.App)
		case "channel":
			bit = mChannel
			f.Channel, ok = p.strVal(prev.Channel)
		case "service":
			bit = mService
			f.Service, ok = p.strVal(prev.Service)
		case "uri":
			bit = mURI
			f.URI, ok = p.strVal(prev.URI)
		case "target":
			bit = mTarget
			f.Target, ok = p.strVal(prev.Target)
		case "domains":
			bit = mDomains
			f.Domains, ok = p.strList()
		case "toast":
			bit = mToast
			f.Toast, ok = p.bool()
		case "tile":
			bit = mTile
			f.Tile, ok = p.bool()
		case "power":
			bit = mPower
			f.Power, ok = p.strVal(prev.Power)
		case "nid":
			bit = mNID
			f.NID, ok = p.str() // new in every notification: no reuse to look for
		case "kind":
			bit = mKind
			f.Kind, ok = p.word()
		case "class":
			bit = mClass
			var v int64
			v, ok = p.int(strconv.IntSize)
			f.Class = int(v)
		case "message_id":
			bit = mMessageID
			f.MessageID, ok = p.str() // likewise
		case "payload":
			bit = mPayload
			var s []byte
			if s, ok = p.raw(); ok {
				f.Payload = make([]byte, base64.StdEncoding.DecodedLen(len(s)))
				n, err := base64.StdEncoding.Decode(f.Payload, s)
				f.Payload, ok = f.Payload[:n], err == nil
			}
		case "accepted_at":
			bit = mAcceptedAt
			f.AcceptedAt, ok = p.int(64)
		case "nids":
			bit = mNIDs
			f.NIDs, ok = p.strList()
		case "code":
			bit = mCode
			f.Code, ok = p.strVal(prev.Code)
		case "message":
			bit = mMessage
			f.Message, ok = p.strVal(prev.Message)
		default:
			return false
		}
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		switch p.next() {
		case ',':
		case '}':
			return p.end()
		default:
			return false
		}
	}
}

// fastParser reads the plain JSON decodeFast accepts.
type fastParser struct {
	b []byte
	i int
}

func (p *fastParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// peek returns the next byte after white space, 0 at the end.
func (p *fastParser) peek() byte {
	p.ws()
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

// next consumes and returns the next byte after white space, 0 at the end.
func (p *fastParser) next() byte {
	c := p.peek()
	if c != 0 {
		p.i++
	}
	return c
}

func (p *fastParser) byte(c byte) bool { return p.next() == c }

// end reports whether only white space is left.
func (p *fastParser) end() bool {
	p.ws()
	return p.i == len(p.b)
}

// raw reads a string of printable ASCII without escapes and returns its
// bytes, in b.
func (p *fastParser) raw() ([]byte, bool) {
	if !p.byte('"') {
		return nil, false
	}
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		if c == '"' {
			s := p.b[start:p.i]
			p.i++
			return s, true
		}
		if c < 0x20 || c > 0x7e || c == '\\' {
			return nil, false
		}
		p.i++
	}
	return nil, false
}

// str is raw as a string.
func (p *fastParser) str() (string, bool) {
	r, ok := p.raw()
	return string(r), ok
}

// word is str that returns the common frame types and kinds without
// allocating.
func (p *fastParser) word() (string, bool) {
	r, ok := p.raw()
	switch string(r) {
	case TypeNotify:
		return TypeNotify, ok
	case TypeAck:
		return TypeAck, ok
	case TypeOpened:
		return TypeOpened, ok
	case "toast":
		return "toast", ok
	case "tile":
		return "tile", ok
	case "raw":
		return "raw", ok
	}
	return string(r), ok
}

// strVal is str for a member's value (null is left to encoding/json),
// returning old itself, with no copy, when the value equals it.
func (p *fastParser) strVal(old string) (string, bool) {
	r, ok := p.raw()
	if string(r) == old { // compared without a copy
		return old, ok
	}
	return string(r), ok
}

// digits reads an integer's digits as JSON writes them: 0, or 1-9 then
// digits, with no fraction or exponent following.
func (p *fastParser) digits() ([]byte, bool) {
	start := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	d := p.b[start:p.i]
	if len(d) == 0 || (len(d) > 1 && d[0] == '0') {
		return nil, false
	}
	if p.i < len(p.b) {
		switch p.b[p.i] {
		case '.', 'e', 'E':
			return nil, false
		}
	}
	return d, true
}

func (p *fastParser) uint() (uint64, bool) {
	p.ws()
	d, ok := p.digits()
	if !ok {
		return 0, false
	}
	return parseDigits(d)
}

// parseDigits is the value of decimal digits, false on overflow.
func parseDigits(d []byte) (uint64, bool) {
	var v uint64
	for _, c := range d {
		if v > (math.MaxUint64-9)/10 {
			return 0, false // could overflow: leave it to encoding/json
		}
		v = v*10 + uint64(c-'0')
	}
	return v, true
}

// int reads an integer that fits in a signed integer of the given bits.
func (p *fastParser) int(bits int) (int64, bool) {
	p.ws()
	neg := p.i < len(p.b) && p.b[p.i] == '-'
	if neg {
		p.i++
	}
	d, ok := p.digits()
	if !ok {
		return 0, false
	}
	u, ok := parseDigits(d)
	if !ok || u > 1<<(bits-1)-1 {
		return 0, false // out of range (or -2^(bits-1)): leave it to encoding/json
	}
	if neg {
		return -int64(u), true
	}
	return int64(u), true
}

func (p *fastParser) bool() (bool, bool) {
	p.ws()
	rest := p.b[p.i:]
	switch {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		p.i += 4
		return true, true
	case len(rest) >= 5 && string(rest[:5]) == "false":
		p.i += 5
		return false, true
	}
	return false, false
}

func (p *fastParser) strList() ([]string, bool) {
	if !p.byte('[') {
		return nil, false
	}
	l := []string{}
	if p.peek() == ']' {
		p.i++
		return l, true
	}
	for {
		s, ok := p.str()
		if !ok {
			return nil, false
		}
		l = append(l, s)
		switch p.next() {
		case ',':
		case ']':
			return l, true
		default:
			return nil, false
		}
	}
}
