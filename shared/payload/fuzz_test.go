package payload

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// addSeeds adds every testdata/<prefix>*.xml as a seed.
func addSeeds(f *testing.F, prefix string) {
	files, err := filepath.Glob(filepath.Join("testdata", prefix+"*.xml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// checkRejection checks that a refusal is a *Error with a reason.
func checkRejection(t *testing.T, err error) {
	var pe *Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *Error", err, err)
	}
	if pe.Reason == "" {
		t.Fatalf("error without a reason: %#v", pe)
	}
}

// FuzzParseToast checks that ParseToast never panics, refuses only with
// *Error, and that whatever it accepts validates and round-trips: parsing
// the encoding gives an equal toast, whose encoding is identical.
func FuzzParseToast(f *testing.F) {
	addSeeds(f, "toast")
	f.Add([]byte(`<x:Notification xmlns:x="WPNotification"><x:Toast><x:Text1> a&#xD; </x:Text1></x:Toast></x:Notification>`))
	f.Fuzz(func(t *testing.T, in []byte) {
		toast, err := ParseToast(in)
		if err != nil {
			checkRejection(t, err)
			return
		}
		if err := toast.Validate(); err != nil {
			t.Fatalf("accepted toast %+v does not validate: %v", toast, err)
		}
		enc := toast.Encode()
		again, err := ParseToast(enc)
		if err != nil {
			t.Fatalf("encoding of accepted toast %+v does not parse: %v\n%s", toast, err, enc)
		}
		if *again != *toast {
			t.Fatalf("round trip changed the toast:\n got %+v\nwant %+v\n%s", again, toast, enc)
		}
		if enc2 := again.Encode(); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", enc, enc2)
		}
		if _, err := ParseTile(enc); err == nil || !strings.Contains(err.Error(), "but found Toast") {
			t.Fatalf("ParseTile of a toast: %v", err)
		}
	})
}

// FuzzParseTile is FuzzParseToast for tiles.
func FuzzParseTile(f *testing.F) {
	addSeeds(f, "tile")
	f.Add([]byte(`<Notification xmlns="WPNotification"><Tile Template="IconicTile"><BackgroundColor>#FF00ff00</BackgroundColor><Count Action="Clear"/></Tile></Notification>`))
	f.Fuzz(func(t *testing.T, in []byte) {
		tile, err := ParseTile(in)
		if err != nil {
			checkRejection(t, err)
			return
		}
		if tile.Fields == nil {
			t.Fatal("ParseTile returned nil Fields")
		}
		if err := tile.Validate(); err != nil {
			t.Fatalf("accepted tile %+v does not validate: %v", tile, err)
		}
		enc := tile.Encode()
		again, err := ParseTile(enc)
		if err != nil {
			t.Fatalf("encoding of accepted tile %+v does not parse: %v\n%s", tile, err, enc)
		}
		if !again.Equal(tile) {
			t.Fatalf("round trip changed the tile:\n got %+v\nwant %+v\n%s", again, tile, enc)
		}
		if enc2 := again.Encode(); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", enc, enc2)
		}
	})
}
