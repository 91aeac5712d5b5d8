package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// decodeAnySize is Decode without the MaxFrameBytes check. Encode may write
// a decoded frame longer than its input (invalid UTF-8 becomes U+FFFD, three
// bytes; U+2028 and U+2029 become \u2028, six), so a frame Decode accepted
// near the limit may re-encode over it. That is no problem on the wire: the
// server never re-encodes device frames, and what it echoes stays small
// (TestEchoedFramesFit). The round trip is checked without the limit.
func decodeAnySize(b []byte) (*Frame, error) {
	var f Frame
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, err
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

// canonical makes empty slices nil: "domains":[] and "payload":"" decode to
// empty non-nil slices, which omitempty leaves out, so they decode back as nil.
// The two mean the same on the wire.
func canonical(f *Frame) *Frame {
	g := *f
	if len(g.Domains) == 0 {
		g.Domains = nil
	}
	if len(g.Payload) == 0 {
		g.Payload = nil
	}
	if len(g.NIDs) == 0 {
		g.NIDs = nil
	}
	return &g
}

// addFrameSeeds adds the decode table's inputs and one encoded frame of
// every type to f's seeds.
func addFrameSeeds(f *testing.F) {
	f.Helper()
	for _, tc := range decodeCases {
		if len(tc.in) <= 4096 {
			f.Add([]byte(tc.in))
		}
	}
	for _, fr := range sampleFrames() {
		b, err := Encode(fr)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func FuzzDecode(f *testing.F) {
	// The seed corpus is testdata/fuzz/FuzzDecode; these add the table cases
	// and one encoded frame of every type.
	addFrameSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := Decode(b)
		if err != nil {
			if fr != nil {
				t.Fatalf("Decode returned a frame and an error %v", err)
			}
			if len(b) > MaxFrameBytes && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Decode of %d bytes: %v, want ErrTooLarge", len(b), err)
			}
			// The server sends err's text back in a bad_frame error frame;
			// the device must be able to read it.
			eb, err2 := Encode(&Frame{Type: TypeError, Code: CodeBadFrame, Message: err.Error()})
			if err2 != nil {
				t.Fatalf("encode the error frame: %v", err2)
			}
			if len(eb) > 1024 {
				t.Fatalf("error frame for a bad frame is %d bytes: %.200s", len(eb), eb)
			}
			return
		}
		if len(b) > MaxFrameBytes {
			t.Fatalf("Decode accepted %d bytes", len(b))
		}
		if err := fr.Validate(); err != nil {
			t.Fatalf("Decode returned a frame Validate refuses: %v", err)
		}
		enc, err := Encode(fr)
		if err != nil {
			t.Fatalf("Encode of a decoded frame: %v", err)
		}
		if !json.Valid(enc) {
			t.Fatalf("Encode wrote invalid JSON: %q", enc)
		}
		fr2, err := decodeAnySize(enc)
		if err != nil {
			t.Fatalf("re-decode of %q: %v", enc, err)
		}
		if len(enc) <= MaxFrameBytes {
			if _, err := Decode(enc); err != nil {
				t.Fatalf("Decode of the re-encoding: %v", err)
			}
		}
		if !reflect.DeepEqual(canonical(fr), canonical(fr2)) {
			t.Fatalf("round trip changed the frame:\n in  %q\n 1st %+v\n enc %q\n 2nd %+v", b, fr, enc, fr2)
		}
		enc2, err := Encode(fr2)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable:\n %q\n %q (%v)", enc, enc2, err)
		}
	})
}

// FuzzFastMatchesJSON holds the hand-written codec to encoding/json: when
// decodeFast accepts an input, json.Unmarshal accepts it too and fills the
// same frame; when appendFrame encodes a frame, it writes the very bytes
// encoding/json writes.
func FuzzFastMatchesJSON(f *testing.F) {
	addFrameSeeds(f)
	f.Add([]byte(` { "type" : "ack" , "nids" : [ "a" , "b\"" ] } `))
	f.Add([]byte(`{"type":"notify","payload":"","domains":[],"class":-0,"toast":false}`))
	f.Add([]byte(`{"type":"ack","Type":"hello"}`))
	f.Add([]byte(`{"type":"ack","type":"hello"}`))
	f.Add([]byte(`{"id":18446744073709551616}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast Frame
		if decodeFast(b, &fast) {
			var slow Frame
			if err := json.Unmarshal(b, &slow); err != nil {
				t.Fatalf("decodeFast accepted %q, encoding/json refuses it: %v", b, err)
			}
			if !reflect.DeepEqual(fast, slow) {
				t.Fatalf("decodeFast and encoding/json differ on %q:\n fast %+v\n json %+v", b, fast, slow)
			}
		}
		// DecodeInto over another frame decodes what Decode does.
		want, werr := Decode(b)
		into := sampleFrames()[len(b)%len(sampleFrames())]
		if err := DecodeInto(b, into); (err == nil) != (werr == nil) {
			t.Fatalf("DecodeInto and Decode disagree on %q: %v, %v", b, err, werr)
		} else if err == nil && !reflect.DeepEqual(into, want) {
			t.Fatalf("DecodeInto over another frame and Decode differ on %q:\n into   %+v\n Decode %+v", b, into, want)
		}
		var fr Frame
		if json.Unmarshal(b, &fr) != nil {
			return
		}
		if got, ok := AppendAck(nil, fr.NIDs); ok {
			if want, _ := appendFrame(nil, &Frame{Type: TypeAck, NIDs: fr.NIDs}); !bytes.Equal(got, want) {
				t.Fatalf("AppendAck and appendFrame differ:\n ack   %s\n frame %s", got, want)
			}
		} else if _, ok := appendFrame(nil, &Frame{Type: TypeAck, NIDs: fr.NIDs}); ok {
			t.Fatalf("AppendAck declines ids %q that appendFrame writes", fr.NIDs)
		}
		// AppendEncode writes after what b held what Encode returns.
		if enc, err := Encode(&fr); err == nil {
			prefix := []byte("prefix")
			got, err := AppendEncode(append(make([]byte, 0, 8), prefix...), &fr)
			if err != nil || !bytes.Equal(got, append(prefix, enc...)) {
				t.Fatalf("AppendEncode gave %q, %v; want %q", got, err, append(prefix, enc...))
			}
		}
		if got, ok := appendFrame(nil, &fr); ok {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(&fr); err != nil {
				t.Fatalf("encoding/json refuses a frame appendFrame wrote: %v", err)
			}
			if want := bytes.TrimSuffix(buf.Bytes(), []byte("\n")); !bytes.Equal(got, want) {
				t.Fatalf("appendFrame and encoding/json differ:\n fast %s\n json %s", got, want)
			}
		}
	})
}
