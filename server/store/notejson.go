package store

import (
	"encoding/base64"
	"errors"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendNoteJSON appends n as JSON, as encoding/json would write it (the
// same fields, names and omissions; json.Unmarshal reads it back to the
// same notification), without reflection: the log encodes every
// notification it writes, in its commit loop. n's times must be valid for
// JSON (checkNoteTimes).
func appendNoteJSON(b []byte, n *Notification) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, n.Seq, 10)
	b = append(b, `,"device_id":`...)
	b = appendJSONString(b, n.DeviceID)
	b = append(b, `,"channel":`...)
	b = appendJSONString(b, n.Channel)
	b = append(b, `,"app":`...)
	b = appendJSONString(b, n.App)
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, n.Kind)
	b = append(b, `,"class":`...)
	b = strconv.AppendInt(b, int64(n.Class), 10)
	if n.MessageID != "" {
		b = append(b, `,"message_id":`...)
		b = appendJSONString(b, n.MessageID)
	}
	if n.TileID != "" {
		b = append(b, `,"tile_id":`...)
		b = appendJSONString(b, n.TileID)
	}
	b = append(b, `,"payload":`...)
	if n.Payload == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, n.Payload)
		b = append(b, '"')
	}
	b = append(b, `,"accepted_at":"`...)
	b = n.AcceptedAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","deliver_at":"`...)
	b = n.DeliverAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","expires_at":"`...)
	b = n.ExpiresAt.AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...)
}

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced by U+FFFD, as
// encoding/json does (which also escapes <, > and &; either reads back the
// same).
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, s[start:i]...)
				b = append(b, `\ufffd`...)
				i += size
				start = i
				continue
			}
			if r == '\u2028' || r == '\u2029' { // as encoding/json, for JSONP
				b = append(b, s[start:i]...)
				b = append(b, `\u202`...)
				b = append(b, "89"[r-'\u2028'])
				i += size
				start = i
				continue
			}
			i += size
			continue
		}
		if c >= 0x20 && c != '"' && c != '\\' {
			i++
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		default:
			const hex = "0123456789abcdef"
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// checkNoteTimes refuses a notification whose times JSON cannot hold
// (encoding/json's limit: years 0 to 9999), the one thing that makes its
// encoding fail.
func checkNoteTimes(n *Notification) error {
	for _, t := range []time.Time{n.AcceptedAt, n.DeliverAt, n.ExpiresAt} {
		if y := t.Year(); y < 0 || y > 9999 {
			return errors.New("a time outside the years 0 to 9999")
		}
	}
	return nil
}

// noteJSONSize estimates a notification's JSON size, for the log's bound
// on a lingering group.
func noteJSONSize(n *Notification) int { return len(n.Payload)*4/3 + 256 }
