package wire

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"unsafe"
)

// str builds a JSON string literal of n copies of s (s must need no escaping).
func str(s string, n int) string { return `"` + strings.Repeat(s, n) + `"` }

// nids builds a JSON array of n distinct notification ids.
func nids(n int) string {
	var b strings.Builder
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"` + strings.Repeat("f", 1+i%16) + `"`)
	}
	b.WriteByte(']')
	return b.String()
}

// domains builds a JSON array of n distinct valid domains.
func domains(n int) string {
	var b strings.Builder
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"img` + strings.Repeat("x", i) + `.example.com"`)
	}
	b.WriteByte(']')
	return b.String()
}

type decodeCase struct {
	name string
	in   string
	// err is a substring of the expected error; "" means the frame is valid.
	err string
}

var decodeCases = []decodeCase{
	// Not a frame at all.
	{"empty input", ``, "decode frame"},
	{"not JSON", `hello`, "decode frame"},
	{"JSON array", `[{"type":"hello","version":1}]`, "decode frame"},
	{"JSON string", `"hello"`, "decode frame"},
	{"JSON null", `null`, "no type"},
	{"empty object", `{}`, "no type"},
	{"trailing garbage", `{"type":"hello","version":1} x`, "decode frame"},
	{"two objects", `{"type":"hello","version":1}{"type":"hello","version":1}`, "decode frame"},
	{"truncated", `{"type":"hello","version":1`, "decode frame"},
	{"type not a string", `{"type":1}`, "decode frame"},
	{"unknown type", `{"type":"subscribe","id":1}`, "unknown frame type"},
	{"type is case-sensitive", `{"type":"HELLO","version":1}`, "unknown frame type"},
	{"negative id", `{"type":"power","id":-1,"power":"low"}`, "decode frame"},
	{"fractional id", `{"type":"power","id":1.5,"power":"low"}`, "decode frame"},
	{"exponent id", `{"type":"power","id":1e3,"power":"low"}`, "decode frame"},
	{"id as string", `{"type":"power","id":"1","power":"low"}`, "decode frame"},
	{"id over uint64", `{"type":"power","id":18446744073709551616,"power":"low"}`, "decode frame"},
	{"bad base64 payload", `{"type":"notify","payload":"!!!"}`, "decode frame"},
	{"nids not an array", `{"type":"ack","nids":"a"}`, "decode frame"},
	{"too large", `{"type":"hello","version":1,"client":` + str("x", MaxFrameBytes) + `}`, "too large"},
	{"exactly MaxFrameBytes", `{"type":"hello","version":1}` + strings.Repeat(" ", MaxFrameBytes-len(`{"type":"hello","version":1}`)), ""},
	// Lenient on what encoding/json is lenient on.
	{"unknown members ignored", `{"type":"hello","version":1,"future":{"x":[1,2,3]}}`, ""},
	{"member names match case-insensitively", `{"Type":"hello","VERSION":1}`, ""},
	{"whitespace", " \n\t{ \"type\" : \"hello\" , \"version\" : 1 }\r\n", ""},
	{"null member", `{"type":"hello","version":1,"device_id":null,"device_token":null}`, ""},

	// hello
	{"hello new device", `{"type":"hello","version":1}`, ""},
	{"hello with client and id", `{"type":"hello","id":7,"version":1,"client":"acme/1.0"}`, ""},
	{"hello known device", `{"type":"hello","version":1,"device_id":"d4a2cb3faa6f9b8e4e8ee469418f303f","device_token":"79cFff1C3WGeSFllvOvPLEn95J007TTFVKu6Qx9S58c"}`, ""},
	{"hello credentials at the limits", `{"type":"hello","version":1,"device_id":` + str("a", MaxIDStringLen) + `,"device_token":` + str("t", 4*MaxIDStringLen) + `}`, ""},
	{"hello without version", `{"type":"hello"}`, "unsupported protocol version 0"},
	{"hello version 2", `{"type":"hello","version":2}`, "unsupported protocol version 2"},
	{"hello version as string", `{"type":"hello","version":"1"}`, "decode frame"},
	{"hello id without token", `{"type":"hello","version":1,"device_id":"abc"}`, "go together"},
	{"hello token without id", `{"type":"hello","version":1,"device_token":"abc"}`, "go together"},
	{"hello device_id too long", `{"type":"hello","version":1,"device_id":` + str("a", MaxIDStringLen+1) + `,"device_token":"t"}`, "too long"},
	{"hello device_token too long", `{"type":"hello","version":1,"device_id":"a","device_token":` + str("t", 4*MaxIDStringLen+1) + `}`, "too long"},

	// open
	{"open", `{"type":"open","id":1,"app":"contoso.weather","channel":"main"}`, ""},
	{"open with service", `{"type":"open","id":1,"app":"contoso.weather","channel":"main","service":"weather.contoso.com"}`, ""},
	{"open at the limits", `{"type":"open","id":18446744073709551615,"app":` + str("a", MaxAppLen) + `,"channel":` + str("c", MaxNameLen) + `,"service":` + str("s", MaxNameLen) + `}`, ""},
	{"open printable punctuation", `{"type":"open","id":1,"app":"{A1B2}!~","channel":"<main>","service":"\"q\""}`, ""},
	{"open without id", `{"type":"open","app":"a","channel":"main"}`, "id is required"},
	{"open id 0", `{"type":"open","id":0,"app":"a","channel":"main"}`, "id is required"},
	{"open without app", `{"type":"open","id":1,"channel":"main"}`, "app must be 1 to 128 bytes"},
	{"open app too long", `{"type":"open","id":1,"app":` + str("a", MaxAppLen+1) + `,"channel":"main"}`, "app must be 1 to 128 bytes"},
	{"open app with space", `{"type":"open","id":1,"app":"my app","channel":"main"}`, "printable ASCII"},
	{"open app non-ASCII", `{"type":"open","id":1,"app":"caf\u00e9","channel":"main"}`, "printable ASCII"},
	{"open app control char", `{"type":"open","id":1,"app":"a\tb","channel":"main"}`, "printable ASCII"},
	{"open app DEL", "{\"type\":\"open\",\"id\":1,\"app\":\"a\x7f\",\"channel\":\"main\"}", "printable ASCII"},
	{"open without channel", `{"type":"open","id":1,"app":"a"}`, "channel name"},
	{"open channel too long", `{"type":"open","id":1,"app":"a","channel":` + str("c", MaxNameLen+1) + `}`, "channel name"},
	{"open channel with space", `{"type":"open","id":1,"app":"a","channel":"my channel"}`, "channel name"},
	{"open service too long", `{"type":"open","id":1,"app":"a","channel":"c","service":` + str("s", MaxNameLen+1) + `}`, "service name"},
	{"open service with space", `{"type":"open","id":1,"app":"a","channel":"c","service":"my service"}`, "service name"},

	// close
	{"close", `{"type":"close","id":3,"app":"contoso.weather"}`, ""},
	{"close without id", `{"type":"close","app":"contoso.weather"}`, "id is required"},
	{"close without app", `{"type":"close","id":3}`, "app must be"},
	{"close app with space", `{"type":"close","id":3,"app":"a b"}`, "printable ASCII"},

	// bind / unbind
	{"bind toast", `{"type":"bind","id":4,"app":"a","target":"toast"}`, ""},
	{"bind tile", `{"type":"bind","id":5,"app":"a","target":"tile"}`, ""},
	{"bind tile with domains", `{"type":"bind","id":5,"app":"a","target":"tile","domains":["img.contoso.com","https://cdn.contoso.com/"]}`, ""},
	{"bind tile 16 domains", `{"type":"bind","id":5,"app":"a","target":"tile","domains":` + domains(MaxDomains) + `}`, ""},
	{"bind tile 253-byte domain", `{"type":"bind","id":5,"app":"a","target":"tile","domains":[` + str("d", 253) + `]}`, ""},
	{"bind toast with domains", `{"type":"bind","id":4,"app":"a","target":"toast","domains":["x.com"]}`, ""},
	{"unbind toast", `{"type":"unbind","id":6,"app":"a","target":"toast"}`, ""},
	{"unbind tile", `{"type":"unbind","id":6,"app":"a","target":"tile"}`, ""},
	{"bind without id", `{"type":"bind","app":"a","target":"toast"}`, "id is required"},
	{"bind without app", `{"type":"bind","id":4,"target":"toast"}`, "app must be"},
	{"bind without target", `{"type":"bind","id":4,"app":"a"}`, "target must be"},
	{"bind target capitalised", `{"type":"bind","id":4,"app":"a","target":"Toast"}`, "target must be"},
	{"bind target raw", `{"type":"bind","id":4,"app":"a","target":"raw"}`, "target must be"},
	{"unbind without target", `{"type":"unbind","id":4,"app":"a"}`, "target must be"},
	{"bind 17 domains", `{"type":"bind","id":5,"app":"a","target":"tile","domains":` + domains(MaxDomains+1) + `}`, "at most 16"},
	{"bind empty domain", `{"type":"bind","id":5,"app":"a","target":"tile","domains":[""]}`, "bad domain"},
	{"bind 254-byte domain", `{"type":"bind","id":5,"app":"a","target":"tile","domains":[` + str("d", 254) + `]}`, "bad domain"},
	{"bind domain with space", `{"type":"bind","id":5,"app":"a","target":"tile","domains":["a b.com"]}`, "bad domain"},
	{"bind domain not a string", `{"type":"bind","id":5,"app":"a","target":"tile","domains":[1]}`, "decode frame"},

	// power
	{"power normal", `{"type":"power","id":1,"power":"normal"}`, ""},
	{"power low", `{"type":"power","id":1,"power":"low"}`, ""},
	{"power critically_low", `{"type":"power","id":1,"power":"critically_low"}`, ""},
	{"power without id", `{"type":"power","power":"low"}`, "id is required"},
	{"power without level", `{"type":"power","id":1}`, "power must be"},
	{"power capitalised", `{"type":"power","id":1,"power":"Low"}`, "power must be"},
	{"power critical", `{"type":"power","id":1,"power":"critical"}`, "power must be"},

	// ack
	{"ack one", `{"type":"ack","nids":["18ec47b1fee4768c"]}`, ""},
	{"ack with an id", `{"type":"ack","id":9,"nids":["18ec47b1fee4768c"]}`, ""},
	{"ack 1024 ids", `{"type":"ack","nids":` + nids(MaxAckIDs) + `}`, ""},
	{"ack unparsable id", `{"type":"ack","nids":["not-hex"]}`, ""},
	{"ack 128-byte id", `{"type":"ack","nids":[` + str("f", MaxIDStringLen) + `]}`, ""},
	{"ack 1025 ids", `{"type":"ack","nids":` + nids(MaxAckIDs+1) + `}`, "nids must hold 1 to 1024"},
	{"ack without nids", `{"type":"ack"}`, "nids must hold"},
	{"ack empty nids", `{"type":"ack","nids":[]}`, "nids must hold"},
	{"ack empty id", `{"type":"ack","nids":[""]}`, "bad notification id"},
	{"ack 129-byte id", `{"type":"ack","nids":[` + str("f", MaxIDStringLen+1) + `]}`, "bad notification id"},

	// Server frames: Decode checks nothing beyond the JSON.
	{"welcome", `{"type":"welcome","version":1,"device_id":"d","device_token":"t","heartbeat_ms":30000}`, ""},
	{"welcome bare", `{"type":"welcome"}`, ""},
	{"opened", `{"type":"opened","re":2,"app":"a","channel":"main","uri":"https://push.example.com/push/ISB_psUFSMApqr2PWlRZQLG_IqE","domains":["x"],"toast":true,"tile":true}`, ""},
	{"opened bare", `{"type":"opened"}`, ""},
	{"ok", `{"type":"ok","re":1}`, ""},
	{"error", `{"type":"error","re":4,"code":"not_found","message":"no channel for this app"}`, ""},
	{"error without re", `{"type":"error","code":"unauthorized","message":"x"}`, ""},
	{"notify", `{"type":"notify","app":"a","channel":"ISB_psUFSMApqr2PWlRZQLG_IqE","nid":"18ec47b1fee4768d","kind":"raw","class":3,"message_id":"m","payload":"aGVsbG8gcmF3","accepted_at":1795889181246664319}`, ""},
	{"notify bare", `{"type":"notify"}`, ""},
	{"goaway", `{"type":"goaway","code":"shutting_down","message":"server shutting down"}`, ""},
}

func TestDecode(t *testing.T) {
	for _, tc := range decodeCases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Decode([]byte(tc.in))
			if tc.err == "" {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if f == nil {
					t.Fatal("Decode returned neither a frame nor an error")
				}
				if err := f.Validate(); err != nil {
					t.Fatalf("Validate of a decoded frame: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Decode accepted %.80q; want an error containing %q", tc.in, tc.err)
			}
			if f != nil {
				t.Errorf("Decode returned a frame with its error")
			}
			if !strings.Contains(err.Error(), tc.err) {
				t.Errorf("error %q does not contain %q", err, tc.err)
			}
		})
	}
}

func TestDecodeTooLarge(t *testing.T) {
	b := make([]byte, MaxFrameBytes+1)
	if _, err := Decode(b); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Decode of %d bytes: %v, want ErrTooLarge", len(b), err)
	}
}

func TestDecodeErrorUnwraps(t *testing.T) {
	_, err := Decode([]byte(`{"type":`))
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T) does not wrap a *json.SyntaxError", err, err)
	}
	_, err = Decode([]byte(`{"type":"power","id":-1}`))
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		t.Fatalf("error %v (%T) does not wrap a *json.UnmarshalTypeError", err, err)
	}
}

// TestValidate checks frames built in Go, as a client or the server does.
func TestValidate(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	cases := []struct {
		name string
		f    Frame
		ok   bool
	}{
		{"hello", Frame{Type: TypeHello, Version: ProtocolVersion}, true},
		{"hello v0", Frame{Type: TypeHello}, false},
		{"hello half credentials", Frame{Type: TypeHello, Version: 1, DeviceID: "d"}, false},
		{"open", Frame{Type: TypeOpen, ID: 1, App: "a", Channel: "c"}, true},
		{"open no id", Frame{Type: TypeOpen, App: "a", Channel: "c"}, false},
		{"open long app", Frame{Type: TypeOpen, ID: 1, App: long(MaxAppLen + 1), Channel: "c"}, false},
		{"close", Frame{Type: TypeClose, ID: 1, App: "a"}, true},
		{"bind", Frame{Type: TypeBind, ID: 1, App: "a", Target: BindTile, Domains: []string{"x.com"}}, true},
		{"bind no target", Frame{Type: TypeBind, ID: 1, App: "a"}, false},
		{"unbind", Frame{Type: TypeUnbind, ID: 1, App: "a", Target: BindToast}, true},
		{"bind too many domains", Frame{Type: TypeBind, ID: 1, App: "a", Target: BindTile, Domains: make([]string, MaxDomains+1)}, false},
		{"power", Frame{Type: TypePower, ID: 1, Power: PowerCriticallyLow}, true},
		{"power empty", Frame{Type: TypePower, ID: 1}, false},
		{"ack", Frame{Type: TypeAck, NIDs: []string{"1"}}, true},
		{"ack nil", Frame{Type: TypeAck}, false},
		{"ack too many", Frame{Type: TypeAck, NIDs: make([]string, MaxAckIDs+1)}, false},
		{"welcome", Frame{Type: TypeWelcome}, true},
		{"opened", Frame{Type: TypeOpened}, true},
		{"ok", Frame{Type: TypeOK}, true},
		{"error", Frame{Type: TypeError}, true},
		{"notify", Frame{Type: TypeNotify}, true},
		{"goaway", Frame{Type: TypeGoAway}, true},
		{"no type", Frame{}, false},
		{"unknown type", Frame{Type: "nope"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.f.Validate()
			if tc.ok && err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if !tc.ok && err == nil {
				t.Fatal("Validate accepted the frame")
			}
		})
	}
}

// TestChecksAreValidates: the exported checks, which a device applies to
// what it saves, refuse exactly what Validate refuses in those members,
// with the same text (Validate adds the frame type).
func TestChecksAreValidates(t *testing.T) {
	for _, c := range []struct {
		value string
		check func() error
		frame Frame
	}{
		{"app", func() error { return CheckApp("a b") }, Frame{Type: TypeClose, ID: 1, App: "a b"}},
		{"app", func() error { return CheckApp("") }, Frame{Type: TypeClose, ID: 1}},
		{"channel", func() error { return CheckChannelName(strings.Repeat("c", MaxNameLen+1)) }, Frame{Type: TypeOpen, ID: 1, App: "a", Channel: strings.Repeat("c", MaxNameLen+1)}},
		{"service", func() error { return CheckService("s s") }, Frame{Type: TypeOpen, ID: 1, App: "a", Channel: "c", Service: "s s"}},
		{"domains", func() error { return CheckDomains([]string{"ok.com", "bad domain.com"}) }, Frame{Type: TypeBind, ID: 1, App: "a", Target: BindTile, Domains: []string{"ok.com", "bad domain.com"}}},
		{"domains", func() error { return CheckDomains(make([]string, MaxDomains+1)) }, Frame{Type: TypeUnbind, ID: 1, App: "a", Target: BindTile, Domains: make([]string, MaxDomains+1)}},
		{"power", func() error { return CheckPower("bogus") }, Frame{Type: TypePower, ID: 1, Power: "bogus"}},
		{"credentials", func() error { return CheckCredentials("d", "") }, Frame{Type: TypeHello, Version: ProtocolVersion, DeviceID: "d"}},
	} {
		err, verr := c.check(), c.frame.Validate()
		if err == nil || verr == nil || verr.Error() != "wire: "+c.frame.Type+" frame: "+err.Error() {
			t.Errorf("%s: check %v, Validate %v", c.value, err, verr)
		}
	}
	for _, err := range []error{CheckApp("contoso.weather"), CheckChannelName("main"), CheckService(""), CheckDomains(nil),
		CheckDomains([]string{"img.contoso.com"}), CheckPower(PowerLow), CheckCredentials("", ""), CheckCredentials("d", "t")} {
		if err != nil {
			t.Errorf("a sound value refused: %v", err)
		}
	}
}

// sampleFrames has one frame of every type with every member its type uses.
func sampleFrames() []*Frame {
	return []*Frame{
		{Type: TypeHello, ID: 1, Version: ProtocolVersion, DeviceID: "d4a2cb3faa6f9b8e4e8ee469418f303f", DeviceToken: "79cFff1C3WGeSFllvOvPLEn95J007TTFVKu6Qx9S58c", Client: "acme-push/2.1"},
		{Type: TypeOpen, ID: 2, App: "contoso.weather", Channel: "main", Service: "weather.contoso.com"},
		{Type: TypeClose, ID: 3, App: "contoso.weather"},
		{Type: TypeBind, ID: 4, App: "contoso.weather", Target: BindTile, Domains: []string{"img.contoso.com", "<&>"}},
		{Type: TypeUnbind, ID: 5, App: "contoso.weather", Target: BindToast},
		{Type: TypePower, ID: 6, Power: PowerLow},
		{Type: TypeAck, NIDs: []string{"18ec47b1fee4768c", "18ec47b1fee4768d"}},
		{Type: TypeWelcome, Version: ProtocolVersion, DeviceID: "d4a2cb3faa6f9b8e4e8ee469418f303f", DeviceToken: "79cFff1C3WGeSFllvOvPLEn95J007TTFVKu6Qx9S58c", Heartbeat: 30000},
		{Type: TypeOpened, Re: 2, App: "contoso.weather", Channel: "main", Service: "weather.contoso.com", URI: "https://push.example.com/push/ISB_psUFSMApqr2PWlRZQLG_IqE", Domains: []string{"img.contoso.com"}, Toast: true, Tile: true},
		{Type: TypeOK, Re: 3},
		{Type: TypeError, Re: 4, Code: CodeNotFound, Message: "no channel for this app"},
		{Type: TypeNotify, NID: "18ec47b1fee4768c", App: "contoso.weather", Channel: "ISB_psUFSMApqr2PWlRZQLG_IqE", Kind: "toast", Class: 2, MessageID: "9f3a1c2e-0000-4000-8000-000000000001", Payload: []byte("<wp:Notification/>\x00\xff"), AcceptedAt: 1795889181241979742},
		{Type: TypeGoAway, Code: CodeShuttingDown, Message: "server shutting down"},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, f := range sampleFrames() {
		t.Run(f.Type, func(t *testing.T) {
			b, err := Encode(f)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if !json.Valid(b) {
				t.Fatalf("Encode wrote invalid JSON: %s", b)
			}
			g, err := Decode(b)
			if err != nil {
				t.Fatalf("Decode(%s): %v", b, err)
			}
			if !reflect.DeepEqual(f, g) {
				t.Fatalf("round trip changed the frame:\n got %+v\nwant %+v\njson %s", g, f, b)
			}
			b2, err := Encode(g)
			if err != nil || !bytes.Equal(b, b2) {
				t.Fatalf("re-encoding differs: %s vs %s (%v)", b, b2, err)
			}
		})
	}
}

// TestEncodeExact pins the member names and order on the wire: other
// clients are written against docs/protocol.md, not against this package.
func TestEncodeExact(t *testing.T) {
	cases := []struct {
		f    Frame
		want string
	}{
		{Frame{Type: TypeHello, Version: 1}, `{"type":"hello","version":1}`},
		{Frame{Type: TypeWelcome, Version: 1, DeviceID: "d", DeviceToken: "t", Heartbeat: 30000}, `{"type":"welcome","version":1,"device_id":"d","device_token":"t","heartbeat_ms":30000}`},
		{Frame{Type: TypeOpened, Re: 2, App: "a", Channel: "c", Service: "s", URI: "u", Domains: []string{"x&y"}, Toast: true, Tile: true},
			`{"type":"opened","re":2,"app":"a","channel":"c","service":"s","uri":"u","domains":["x&y"],"toast":true,"tile":true}`},
		{Frame{Type: TypeNotify, App: "a", Channel: "tok", NID: "1f", Kind: "raw", Class: 3, MessageID: "m", Payload: []byte("hi"), AcceptedAt: 5},
			`{"type":"notify","app":"a","channel":"tok","nid":"1f","kind":"raw","class":3,"message_id":"m","payload":"aGk=","accepted_at":5}`},
		{Frame{Type: TypeAck, NIDs: []string{"1f"}}, `{"type":"ack","nids":["1f"]}`},
		{Frame{Type: TypeError, Re: 1, Code: CodeBadFrame, Message: "<b> & \"q\""}, `{"type":"error","re":1,"code":"bad_frame","message":"<b> & \"q\""}`},
		{Frame{Type: TypeBind, ID: 4, App: "a", Target: "tile", Domains: []string{"x"}}, `{"type":"bind","id":4,"app":"a","target":"tile","domains":["x"]}`},
		{Frame{Type: TypePower, ID: 1, Power: "low"}, `{"type":"power","id":1,"power":"low"}`},
	}
	for _, tc := range cases {
		b, err := Encode(&tc.f)
		if err != nil {
			t.Fatalf("Encode %s: %v", tc.f.Type, err)
		}
		if string(b) != tc.want {
			t.Errorf("Encode %s:\n got %s\nwant %s", tc.f.Type, b, tc.want)
		}
	}
}

// TestEchoedFramesFit checks that what the server echoes back from a valid
// device frame stays within MaxFrameBytes, so that the device can read it:
// the opened answer to a bind repeats the app, channel, service and domains.
func TestEchoedFramesFit(t *testing.T) {
	for _, c := range []string{"<", "&", `"`, `\`, "x"} {
		doms := make([]string, MaxDomains)
		for i := range doms {
			doms[i] = strings.Repeat(c, 253)
		}
		req := &Frame{Type: TypeBind, ID: 1<<64 - 1, App: strings.Repeat(c, MaxAppLen), Target: BindTile, Domains: doms}
		if err := req.Validate(); err != nil {
			t.Fatalf("request with %q: %v", c, err)
		}
		rb, _ := Encode(req)
		if _, err := Decode(rb); err != nil {
			t.Fatalf("request with %q does not decode: %v", c, err)
		}
		answer := &Frame{Type: TypeOpened, Re: req.ID, App: req.App, Channel: strings.Repeat(c, MaxNameLen),
			Service: strings.Repeat(c, MaxNameLen), URI: "https://" + strings.Repeat("h", 253) + "/push/ISB_psUFSMApqr2PWlRZQLG_IqE",
			Domains: doms, Toast: true, Tile: true}
		b, err := Encode(answer)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > MaxFrameBytes {
			t.Errorf("opened echoing %q is %d bytes, over MaxFrameBytes (%d)", c, len(b), MaxFrameBytes)
		}
		if _, err := Decode(b); err != nil {
			t.Errorf("opened echoing %q: %v", c, err)
		}
	}
}

// TestErrorTextBounded checks that the bad_frame error the server sends for
// a frame Decode refuses stays readable whatever the frame quoted.
func TestErrorTextBounded(t *testing.T) {
	fill := func(prefix, c, suffix string) string {
		return prefix + strings.Repeat(c, (MaxFrameBytes-len(prefix)-len(suffix))/len(c)) + suffix
	}
	inputs := []string{
		fill(`{"type":"`, "<", `"}`),
		fill(`{"type":"`, `\"`, `"}`),
		fill(`{"type":"`, `\u0001`, `"}`),
		fill(`{"type":"bind","id":1,"app":"a","target":"tile","domains":["`, "<", `"]}`),
		fill(`{"type":"bind","id":1,"app":"a","target":"tile","domains":["`, `\"`, `"]}`),
		fill(`{"type":"power","id":-`, "1", `}`),
		fill(`{"type":"power","id":1`, "0", `}`),
		fill(`{"type":"hello","version":`, "9", `}`),
	}
	for _, in := range inputs {
		if len(in) > MaxFrameBytes {
			t.Fatalf("test input is %d bytes", len(in))
		}
		_, err := Decode([]byte(in))
		if err == nil {
			t.Fatalf("Decode accepted %.60q", in)
		}
		b, _ := Encode(&Frame{Type: TypeError, Code: CodeBadFrame, Message: err.Error()})
		if len(b) > 1024 {
			t.Errorf("error frame for %.40q... is %d bytes: %.120s", in, len(b), b)
		}
	}
}

func TestClip(t *testing.T) {
	cases := []struct {
		s    string
		n    int
		want string
	}{
		{"abc", 3, "abc"},
		{"abcd", 3, "abc..."},
		{"", 0, ""},
		{"é", 1, "..."},
		{"aé", 2, "a..."},
		{"aéb", 3, "aé..."},
	}
	for _, tc := range cases {
		if got := clip(tc.s, tc.n); got != tc.want {
			t.Errorf("clip(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}

// transcriptLine matches an example frame in docs/protocol.md: a line
// "C: {...}" (device to server) or "S: {...}" (server to device).
var transcriptLine = regexp.MustCompile(`^\s*([CS]): (\{.*\})\s*$`)

// TestProtocolDocExamples checks every example frame in docs/protocol.md:
// it must use only documented members, decode, and be written exactly as
// the reference encoding writes it (member order included). A device frame
// shown as a mistake must be answered, on the next server line, by the
// error the server sends for it: bad_frame when Decode refuses it,
// unsupported for a server frame type sent by a device.
func TestProtocolDocExamples(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "protocol.md")
	fh, err := os.Open(path)
	if err != nil {
		t.Skipf("no %s: %v", path, err)
	}
	defer fh.Close()
	serverType := map[string]bool{TypeWelcome: true, TypeOpened: true, TypeOK: true, TypeError: true, TypeNotify: true, TypeGoAway: true}
	sc := bufio.NewScanner(fh)
	sc.Buffer(nil, 1<<20)
	n := 0
	wantCode, wantLine := "", 0 // the error code the next server line must carry
	for line := 1; sc.Scan(); line++ {
		m := transcriptLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		n++
		dir, js := m[1], m[2]
		var strict Frame
		dec := json.NewDecoder(strings.NewReader(js))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&strict); err != nil {
			t.Errorf("%s:%d: %v", path, line, err)
			continue
		}
		if dir == "S" && wantCode != "" {
			if strict.Type != TypeError || strict.Code != wantCode {
				t.Errorf("%s:%d: the device frame on line %d must be answered by a %s error", path, line, wantLine, wantCode)
			}
			wantCode = ""
		}
		f, err := Decode([]byte(js))
		if err != nil {
			if dir == "C" && !errors.Is(err, ErrTooLarge) {
				wantCode, wantLine = CodeBadFrame, line
				if b, _ := Encode(&strict); string(b) != js {
					t.Errorf("%s:%d: not in the reference encoding:\n doc %s\nwant %s", path, line, js, b)
				}
				continue
			}
			t.Errorf("%s:%d: %v", path, line, err)
			continue
		}
		if serverType[f.Type] && dir == "C" {
			wantCode, wantLine = CodeUnsupported, line
		} else if serverType[f.Type] != (dir == "S") {
			t.Errorf("%s:%d: a %s frame marked %s:", path, line, f.Type, dir)
		}
		b, _ := Encode(f)
		if string(b) != js {
			t.Errorf("%s:%d: not in the reference encoding:\n doc %s\nwant %s", path, line, js, b)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if wantCode != "" {
		t.Errorf("%s:%d: no server answer follows", path, wantLine)
	}
	if n == 0 {
		t.Errorf("%s has no example frames (lines \"C: {...}\" or \"S: {...}\")", path)
	}
}

// TestFastPathTaken: every sample frame (printable ASCII throughout) is
// encoded and decoded by the hand-written codec, not by the fallback.
func TestFastPathTaken(t *testing.T) {
	for _, fr := range sampleFrames() {
		b, ok := appendFrame(nil, fr)
		if !ok {
			t.Errorf("%s frame: appendFrame declined", fr.Type)
			continue
		}
		var got Frame
		if !decodeFast(b, &got) {
			t.Errorf("%s frame: decodeFast declined %s", fr.Type, b)
		}
	}
}

// TestDecodeInto: DecodeInto overwrites what the frame held (members the
// new frame lacks are zero, as Decode leaves them), and a string member
// that repeats keeps the string the frame held: decoding the same
// notification again allocates only its payload, id and message id (new
// in every notification, never looked for).
func TestDecodeInto(t *testing.T) {
	for _, first := range sampleFrames() {
		for _, next := range sampleFrames() {
			b, err := Encode(next)
			if err != nil {
				t.Fatal(err)
			}
			want, err := Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			got := *first
			if err := DecodeInto(b, &got); err != nil {
				t.Fatalf("%s over %s: %v", next.Type, first.Type, err)
			}
			if !reflect.DeepEqual(&got, want) {
				t.Errorf("%s over %s: got %+v, want %+v", next.Type, first.Type, got, *want)
			}
		}
	}
	b, err := Encode(benchNotify())
	if err != nil {
		t.Fatal(err)
	}
	var f Frame
	if err := DecodeInto(b, &f); err != nil {
		t.Fatal(err)
	}
	app := unsafe.StringData(f.App)
	if err := DecodeInto(b, &f); err != nil {
		t.Fatal(err)
	}
	if unsafe.StringData(f.App) != app {
		t.Error("the app, the same, was copied again")
	}
	if n := testing.AllocsPerRun(100, func() { DecodeInto(b, &f) }); n != 3 {
		t.Errorf("decoding the same notification again: %v allocations, want 3 (its payload, id and message id)", n)
	}
	if err := DecodeInto([]byte(`{"type":`), &f); err == nil {
		t.Error("DecodeInto accepted a truncated frame")
	}
}

// TestAppendAck: AppendAck writes what Encode writes for an ack frame,
// appending to what b holds, without allocating into a buffer large
// enough, and declines ids Encode must escape.
func TestAppendAck(t *testing.T) {
	for _, nids := range [][]string{nil, {"18ec47b1fee4768c"}, {"a", `b"\`, "c"}} {
		want, err := Encode(&Frame{Type: TypeAck, NIDs: nids})
		if err != nil {
			t.Fatal(err)
		}
		got, ok := AppendAck([]byte("x"), nids)
		if !ok || string(got) != "x"+string(want) {
			t.Errorf("AppendAck(%q) = %s, %v; want x%s", nids, got, ok, want)
		}
	}
	if _, ok := AppendAck(nil, []string{"caf\u00e9"}); ok {
		t.Error("AppendAck took an id that is not printable ASCII")
	}
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() { AppendAck(buf, []string{"18ec47b1fee4768c"}) }); n != 0 {
		t.Errorf("AppendAck allocates %v times", n)
	}
}

// TestAppendEncode: the JSON Encode returns, after what the buffer held,
// from the hand-written encoder and from encoding/json's (a string of other
// than printable ASCII), which starts again where the first gave up.
func TestAppendEncode(t *testing.T) {
	for _, f := range []*Frame{
		{Type: TypeNotify, NID: "n1", App: "com.example", Payload: []byte("hi")},
		{Type: TypeError, Code: CodeBadFrame, Message: "caf\u00e9 <\u2028>"},
		{Type: TypeOpened, Re: 3, App: "a", Domains: []string{"é.example"}},
	} {
		want, err := Encode(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, fast := appendFrame(nil, f); fast != (f.Type == TypeNotify) {
			t.Fatalf("%s: the hand-written encoder took it: %v (the test wants one frame it takes, two it declines)", f.Type, fast)
		}
		b := make([]byte, 4, 16)
		copy(b, "head")
		got, err := AppendEncode(b, f)
		if err != nil || string(got) != "head"+string(want) {
			t.Errorf("AppendEncode(%s) = %q, %v; want head%s", f.Type, got, err, want)
		}
	}
	// Into a buffer with room, a notification costs no allocation (the
	// server's write of each one).
	n := &Frame{Type: TypeNotify, NID: "18ec47b1fee4768c", App: "com.example", Channel: "main", Kind: "raw",
		MessageID: "3f1c0c2e-0001", Payload: make([]byte, 64), AcceptedAt: 1765000000000000000}
	buf := make([]byte, 0, 1024)
	if a := testing.AllocsPerRun(100, func() { AppendEncode(buf, n) }); a != 0 {
		t.Errorf("AppendEncode of a notification allocates %v times", a)
	}
}
