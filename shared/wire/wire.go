// Package wire defines the frames a device and an OpenMPNS server exchange
// over the device WebSocket. docs/protocol.md describes the protocol for
// people writing other clients; this package is its reference encoding.
//
// Every frame is one WebSocket text message holding one JSON object with a
// "type" member. Requests from the device carry an "id" chosen by the device;
// the server answers each with exactly one frame carrying the same id in "re":
// "opened" for open, bind and unbind, "ok" for close and power, or "error".
// hello is answered by "welcome" (which has no "re") or by an error; ack is
// not answered.
package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// ProtocolVersion is sent in hello; a server refuses versions it does not speak.
const ProtocolVersion = 1

// Subprotocol is the WebSocket subprotocol name devices should offer.
const Subprotocol = "openmpns.v1"

// MaxFrameBytes is the largest frame either side accepts. A notification
// payload is at most a few KiB; base64 and JSON overhead stay well inside.
const MaxFrameBytes = 16 << 10

// Frame types.
const (
	// Device to server.
	TypeHello  = "hello"  // first frame: identify (or ask for a new identity)
	TypeOpen   = "open"   // open (or find) the channel of an app
	TypeClose  = "close"  // close an app's channel
	TypeBind   = "bind"   // bind a channel to toast or tile
	TypeUnbind = "unbind" // unbind a channel from toast or tile
	TypePower  = "power"  // report the battery power level
	TypeAck    = "ack"    // acknowledge received notifications

	// Server to device.
	TypeWelcome = "welcome" // answer to hello
	TypeOpened  = "opened"  // answer to open, bind and unbind; with re = 0, a changed Channel URI (the server does not send that yet)
	TypeOK      = "ok"      // success answer to close and power
	TypeError   = "error"   // failure answer to a request; re = 0 when the request had no id or could not be decoded
	TypeNotify  = "notify"  // a notification for one of the device's channels
	TypeGoAway  = "goaway"  // the server is shutting down: reconnect later
)

// Binding targets for bind and unbind.
const (
	BindToast = "toast"
	BindTile  = "tile"
)

// Power levels, as reported by the device.
const (
	PowerNormal        = "normal"
	PowerLow           = "low"
	PowerCriticallyLow = "critically_low"
)

// Error codes carried in error frames.
const (
	CodeBadFrame        = "bad_frame"         // the frame could not be decoded or is invalid
	CodeUnauthorized    = "unauthorized"      // bad or missing device credentials
	CodeNotFound        = "not_found"         // no such channel for this device
	CodeChannelQuota    = "channel_quota"     // the device already has the maximum number of channels
	CodeChannelExists   = "channel_exists"    // the app already has a channel under another name
	CodeHelloRequired   = "hello_required"    // a request came before hello
	CodeUnsupported     = "unsupported"       // the device sent a server frame type (an unknown type or protocol version fails Decode: bad_frame)
	CodeInternal        = "internal"          // a server-side failure; retry later
	CodeShuttingDown    = "shutting_down"     // the server is draining
	CodeTooManyInFlight = "too_many_inflight" // reserved
	CodeRateLimited     = "rate_limited"      // too many new devices or channels from this address: back off (close 4029 follows)
	CodeServerFull      = "server_full"       // the server holds as many devices or channels as it may; retry later
)

// WebSocket close codes the server uses besides the standard ones (1000
// normal, also when the device was silent for 2 heartbeats; 1001 going away
// when it shuts down; 1003 a binary message; 1008 policy violation, also no
// hello in time; 1009 too big; 1011 internal error; 1013 try again later
// when a hello comes while the server drains).
const (
	CloseReplaced     = 4001 // another connection of the same device took over
	CloseUnauthorized = 4003 // bad device credentials, or the device was revoked (or the server key rotated)
	CloseSlowConsumer = 4008 // the device did not read in time
	CloseRateLimited  = 4029 // too many new devices or channel opens from this address: back off
)

// Frame is the union of every frame. Only the members that a type uses are set;
// the rest are omitted from the JSON.
type Frame struct {
	Type string `json:"type"`
	// ID is the device's request id; Re echoes it in the answer.
	ID uint64 `json:"id,omitempty"`
	Re uint64 `json:"re,omitempty"`

	// hello / welcome
	Version     int    `json:"version,omitempty"`
	DeviceID    string `json:"device_id,omitempty"`
	DeviceToken string `json:"device_token,omitempty"`
	Client      string `json:"client,omitempty"`
	// Heartbeat is the ping interval the server uses, in milliseconds (welcome).
	Heartbeat int64 `json:"heartbeat_ms,omitempty"`

	// open / opened / close / bind / unbind / notify
	App string `json:"app,omitempty"`
	// Channel is the channel name in open and opened, but the channel token
	// (the last path segment of the Channel URI) in notify.
	Channel string `json:"channel,omitempty"`
	Service string `json:"service,omitempty"`
	URI     string `json:"uri,omitempty"`
	Target  string `json:"target,omitempty"` // bind/unbind: "toast" or "tile"
	// Domains is the allowed remote image domains of a tile binding.
	Domains []string `json:"domains,omitempty"`
	// Toast and Tile report the channel's bindings in opened.
	Toast bool `json:"toast,omitempty"`
	Tile  bool `json:"tile,omitempty"`

	// power
	Power string `json:"power,omitempty"`

	// notify
	NID        string `json:"nid,omitempty"`  // notification id, unique per server
	Kind       string `json:"kind,omitempty"` // toast, tile or raw
	Class      int    `json:"class,omitempty"`
	MessageID  string `json:"message_id,omitempty"` // the sender's X-MessageID
	Payload    []byte `json:"payload,omitempty"`    // the body as the sender sent it (base64 in JSON)
	AcceptedAt int64  `json:"accepted_at,omitempty"`

	// ack
	NIDs []string `json:"nids,omitempty"`

	// error / goaway
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// ErrTooLarge is returned by Decode for frames over MaxFrameBytes.
var ErrTooLarge = errors.New("wire: frame too large")

// Encode returns the JSON of f.
//
// It does not apply encoding/json's HTML escaping: that writes each of < > &
// as six bytes (\u003c), so a server echoing what a device sent (an opened
// frame repeating 16 allowed domains of 253 such characters) could answer
// with a frame over MaxFrameBytes, which the device then refuses to read.
// Without it, every string member a device may send comes back at most twice
// its size (" and \ are escaped, control characters are not printable).
func Encode(f *Frame) ([]byte, error) {
	if b, ok := appendFrame(make([]byte, 0, encodedSizeHint(f)), f); ok {
		return b, nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(f); err != nil {
		return nil, fmt.Errorf("wire: encode %s frame: %w", clip(f.Type, maxQuoted), err)
	}
	b := buf.Bytes()
	return b[:len(b)-1], nil // Encoder.Encode ends the value with a newline
}

// AppendEncode appends the JSON of f, as Encode returns it, to b: a
// writer that frames what it sends in a buffer of its own encodes into it,
// without an array for the JSON alone.
func AppendEncode(b []byte, f *Frame) ([]byte, error) {
	n := len(b)
	if out, ok := appendFrame(b, f); ok {
		return out, nil
	}
	// appendFrame declined part-way, having written past b's end only.
	enc, err := Encode(f)
	if err != nil {
		return b, err
	}
	return append(b[:n], enc...), nil
}

// encodedSizeHint is about the size of f's JSON, for one allocation.
func encodedSizeHint(f *Frame) int {
	return 160 + len(f.App) + len(f.Channel) + len(f.URI) + len(f.MessageID) + len(f.Message) +
		len(f.DeviceToken) + len(f.Payload)*4/3 + 24*len(f.NIDs) + 32*len(f.Domains)
}

// decodeError is a JSON error whose text is bounded: the server sends the
// text of a decode error back in an error frame, and encoding/json quotes
// the offending literal (a number of 16 KiB, say) in some of its errors.
type decodeError struct{ err error }

func (e *decodeError) Error() string { return "wire: decode frame: " + clip(e.err.Error(), 200) }
func (e *decodeError) Unwrap() error { return e.err }

// maxQuoted bounds a device-supplied string quoted in an error message.
const maxQuoted = 64

// clip returns s cut to at most n bytes (at a rune boundary) plus "...".
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// Decode parses one frame and checks that it is well formed for its type.
// It never panics, whatever the input.
func Decode(b []byte) (*Frame, error) {
	f := new(Frame)
	if err := decodeInto(b, f, &noFrame); err != nil {
		return nil, err
	}
	return f, nil
}

// DecodeInto is Decode into f, whatever f held: it holds the frame when
// DecodeInto returns nil, and nothing of use otherwise. A string member
// that equals the one f held takes that string, with no copy: a reader
// that decodes every frame into the same Frame allocates nothing for the
// members that repeat (a device's app and channel in each notification).
func DecodeInto(b []byte, f *Frame) error {
	prev := *f
	*f = Frame{}
	return decodeInto(b, f, &prev)
}

// decodeInto decodes b into f, a zero Frame, reusing prev's strings.
func decodeInto(b []byte, f, prev *Frame) error {
	if len(b) > MaxFrameBytes {
		return ErrTooLarge
	}
	if !decodeFastReusing(b, f, prev) {
		*f = Frame{}
		if err := json.Unmarshal(b, f); err != nil {
			return &decodeError{err}
		}
	}
	return f.Validate()
}

// Limits on the identifiers a device may send.
const (
	MaxNameLen     = 64 // channel and service names
	MaxAppLen      = 128
	MaxDomains     = 16
	MaxAckIDs      = 1024
	MaxIDStringLen = 128
)

// Validate reports whether f has what its type requires. The checks of
// the values a device keeps (app id, channel and service names, tile
// domains, power level, credentials) are also exported one by one
// (CheckApp and the others below), so that a device can check what it saves
// with the rules the server applies to what it receives.
func (f *Frame) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("wire: %s frame: %s", f.Type, fmt.Sprintf(format, a...))
	}
	check := func(err error) error {
		if err != nil {
			return fmt.Errorf("wire: %s frame: %w", f.Type, err)
		}
		return nil
	}
	needID := func() error {
		if f.ID == 0 {
			return bad("id is required")
		}
		return nil
	}
	needApp := func() error {
		if err := needID(); err != nil {
			return err
		}
		return check(CheckApp(f.App))
	}
	switch f.Type {
	case TypeHello:
		if f.Version != ProtocolVersion {
			return bad("unsupported protocol version %d (this server speaks %d)", f.Version, ProtocolVersion)
		}
		return check(CheckCredentials(f.DeviceID, f.DeviceToken))
	case TypeOpen:
		if err := needApp(); err != nil {
			return err
		}
		if err := check(CheckChannelName(f.Channel)); err != nil {
			return err
		}
		return check(CheckService(f.Service))
	case TypeClose:
		return needApp()
	case TypeBind, TypeUnbind:
		if err := needApp(); err != nil {
			return err
		}
		if f.Target != BindToast && f.Target != BindTile {
			return bad("target must be %q or %q", BindToast, BindTile)
		}
		return check(CheckDomains(f.Domains))
	case TypePower:
		if err := needID(); err != nil {
			return err
		}
		return check(CheckPower(f.Power))
	case TypeAck:
		if len(f.NIDs) == 0 || len(f.NIDs) > MaxAckIDs {
			return bad("nids must hold 1 to %d ids", MaxAckIDs)
		}
		for _, id := range f.NIDs {
			if id == "" || len(id) > MaxIDStringLen {
				return bad("bad notification id")
			}
		}
	case TypeWelcome, TypeOpened, TypeOK, TypeError, TypeNotify, TypeGoAway:
		// Server frames: a client trusts its server; nothing to check here
		// beyond what the client reads.
	case "":
		return fmt.Errorf("wire: frame has no type")
	default:
		return fmt.Errorf("wire: unknown frame type %q", clip(f.Type, maxQuoted))
	}
	return nil
}

// CheckApp reports whether app is an app id a request may carry (open,
// close, bind, unbind): 1 to MaxAppLen printable bytes.
func CheckApp(app string) error {
	if app == "" || len(app) > MaxAppLen {
		return fmt.Errorf("app must be 1 to %d bytes", MaxAppLen)
	}
	if !printable(app) {
		return errors.New("app must be printable ASCII without spaces")
	}
	return nil
}

// CheckChannelName reports whether name is a channel name open may carry:
// 1 to MaxNameLen printable bytes.
func CheckChannelName(name string) error {
	if name == "" || len(name) > MaxNameLen || !printable(name) {
		return fmt.Errorf("channel name must be 1 to %d printable bytes", MaxNameLen)
	}
	return nil
}

// CheckService reports whether service is a service name open may carry:
// at most MaxNameLen printable bytes, "" for none.
func CheckService(service string) error {
	if len(service) > MaxNameLen || (service != "" && !printable(service)) {
		return fmt.Errorf("service name must be at most %d printable bytes", MaxNameLen)
	}
	return nil
}

// CheckDomains reports whether domains may be a tile binding's allowed
// remote image domains (bind, unbind): at most MaxDomains, each 1 to 253
// printable bytes.
func CheckDomains(domains []string) error {
	if len(domains) > MaxDomains {
		return fmt.Errorf("at most %d allowed domains", MaxDomains)
	}
	for _, d := range domains {
		if d == "" || len(d) > 253 || !printable(d) {
			return fmt.Errorf("bad domain %q", clip(d, maxQuoted))
		}
	}
	return nil
}

// CheckPower reports whether p is a power level (PowerNormal, PowerLow,
// PowerCriticallyLow).
func CheckPower(p string) error {
	switch p {
	case PowerNormal, PowerLow, PowerCriticallyLow:
		return nil
	}
	return fmt.Errorf("power must be %q, %q or %q", PowerNormal, PowerLow, PowerCriticallyLow)
}

// CheckCredentials reports whether a device id and token may go in hello:
// both or neither, at most MaxIDStringLen and 4 × MaxIDStringLen bytes.
func CheckCredentials(deviceID, token string) error {
	if len(deviceID) > MaxIDStringLen || len(token) > 4*MaxIDStringLen {
		return errors.New("device credentials too long")
	}
	if (deviceID == "") != (token == "") {
		return errors.New("device_id and device_token go together")
	}
	return nil
}

// printable reports whether s is non-space printable ASCII.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
