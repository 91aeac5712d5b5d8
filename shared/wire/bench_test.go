package wire

import (
	"fmt"
	"testing"
)

// benchNotify is a typical toast notification frame.
func benchNotify() *Frame {
	body := []byte(`<?xml version="1.0" encoding="utf-8"?><wp:Notification xmlns:wp="WPNotification"><wp:Toast>` +
		`<wp:Text1>Rain expected</wp:Text1><wp:Text2>Showers from 3 pm, take an umbrella</wp:Text2>` +
		`<wp:Param>/Forecast.xaml?city=Seattle&amp;day=today</wp:Param></wp:Toast></wp:Notification>`)
	return &Frame{Type: TypeNotify, NID: "18ec47b1fee4768c", App: "contoso.weather", Channel: "ISB_psUFSMApqr2PWlRZQLG_IqE",
		Kind: "toast", Class: 2, MessageID: "9f3a1c2e-0000-4000-8000-000000000001", Payload: body, AcceptedAt: 1795889181241979742}
}

func BenchmarkEncodeNotify(b *testing.B) {
	f := benchNotify()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(f); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeNotify(b *testing.B) {
	enc, err := Encode(benchNotify())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		f, err := Decode(enc)
		if err != nil {
			b.Fatal(err)
		}
		if f.NID == "" {
			b.Fatal("empty nid")
		}
	}
}

// BenchmarkDecodeIntoNotify: a device's reader decoding notifications of
// one channel, each with its own id and message id, into one frame.
func BenchmarkDecodeIntoNotify(b *testing.B) {
	var encs [][]byte
	for i := range 16 {
		f := benchNotify()
		f.NID = fmt.Sprintf("18ec47b1fee47%03d", i)
		f.MessageID = fmt.Sprintf("9f3a1c2e-0000-4000-8000-000000000%03d", i)
		enc, err := Encode(f)
		if err != nil {
			b.Fatal(err)
		}
		encs = append(encs, enc)
	}
	b.ReportAllocs()
	var f Frame
	i := 0
	for b.Loop() {
		if err := DecodeInto(encs[i%len(encs)], &f); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
