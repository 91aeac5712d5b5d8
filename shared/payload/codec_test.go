package payload

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the parser's output")

// parseAny parses a testdata file by its name: toast*.xml as a toast,
// tile*.xml as a tile. It returns the canonical encoding.
func parseAny(t *testing.T, name string, in []byte) (canon []byte, roundTrip func([]byte) error) {
	t.Helper()
	switch {
	case strings.HasPrefix(name, "toast"):
		toast, err := ParseToast(in)
		if err != nil {
			t.Fatalf("ParseToast: %v", err)
		}
		if err := toast.Validate(); err != nil {
			t.Fatalf("parsed toast does not validate: %v", err)
		}
		return toast.Encode(), func(b []byte) error {
			again, err := ParseToast(b)
			if err != nil {
				return err
			}
			if *again != *toast {
				t.Errorf("round trip: got %+v, want %+v", again, toast)
			}
			return nil
		}
	case strings.HasPrefix(name, "tile"):
		tile, err := ParseTile(in)
		if err != nil {
			t.Fatalf("ParseTile: %v", err)
		}
		if err := tile.Validate(); err != nil {
			t.Fatalf("parsed tile does not validate: %v", err)
		}
		return tile.Encode(), func(b []byte) error {
			again, err := ParseTile(b)
			if err != nil {
				return err
			}
			if !again.Equal(tile) || !reflect.DeepEqual(again, tile) {
				t.Errorf("round trip: got %+v, want %+v", again, tile)
			}
			return nil
		}
	}
	t.Fatalf("testdata file %s: name must start with toast or tile", name)
	return nil, nil
}

// TestGolden parses every testdata/*.xml (written as real senders write
// them) and compares the canonical encoding with testdata/*.golden. Run
// with -update to rewrite the golden files.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/*.xml")
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".xml")
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			got, roundTrip := parseAny(t, name, in)
			golden := strings.TrimSuffix(file, ".xml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("canonical output differs from %s\n got: %s\nwant: %s", golden, got, want)
			}
			if err := roundTrip(want); err != nil {
				t.Errorf("golden output does not parse: %v", err)
			}
			// The canonical form is a fixed point.
			again, _ := parseAny(t, name, want)
			if !bytes.Equal(again, want) {
				t.Errorf("encoding the golden output again differs:\n got: %s\nwant: %s", again, want)
			}
		})
	}
}

// TestParseValues checks what the golden files cannot show: the values
// the parser produces.
func TestParseValues(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	flip, err := ParseTile(read("tile-flip.xml"))
	if err != nil {
		t.Fatal(err)
	}
	want := &Tile{
		ID:       "/Views/Detail.xaml?city=Seattle&unit=C",
		Template: TemplateFlip,
		Fields: map[string]string{
			SmallBackgroundImage:    "/Assets/Tiles/FlipSmall.png",
			WideBackgroundImage:     "/Assets/Tiles/FlipWide.png",
			WideBackBackgroundImage: "/Assets/Tiles/FlipWideBack.png",
			WideBackContent:         "Tomorrow: sunny\nWind: 10 km/h", // CRLF normalised by XML
			BackgroundImage:         "/Assets/Tiles/FlipMedium.png",
			Count:                   "3",
			Title:                   "Flip <title>",
			BackBackgroundImage:     "/Assets/Tiles/FlipMediumBack.png",
			BackTitle:               `Back "title"`,
			BackContent:             "Back content",
		},
	}
	if !reflect.DeepEqual(flip, want) {
		t.Errorf("FlipTile:\n got %#v\nwant %#v", flip, want)
	}
	if n, ok := flip.CountValue(); !ok || n != 3 {
		t.Errorf("CountValue = %d, %v; want 3, true", n, ok)
	}

	noVersion, err := ParseTile(read("tile-flip-noversion.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := noVersion.Fields[WideBackContent]; got != "3 new messages" {
		t.Errorf("pretty-printed text not trimmed: %q", got)
	}

	upper, err := ParseTile(read("tile-secondary-id-upper.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if upper.ID != "/SecondaryTile.xaml?DefaultTitle=FromTile" || upper.Template != TemplateDefault {
		t.Errorf("ID tile: %+v", upper)
	}

	cl, err := ParseTile(read("tile-clear.xml"))
	if err != nil {
		t.Fatal(err)
	}
	wantCleared := []string{SmallBackgroundImage, WideBackContent, Count, BackBackgroundImage, BackTitle, BackContent}
	if !reflect.DeepEqual(cl.Cleared, wantCleared) {
		t.Errorf("Cleared = %v, want %v (canonical order)", cl.Cleared, wantCleared)
	}
	if _, ok := cl.CountValue(); ok {
		t.Error("cleared Count has a value")
	}
	if !reflect.DeepEqual(cl.Fields, map[string]string{WideBackgroundImage: "/Assets/wide.png", Title: "Cleared back"}) {
		t.Errorf("Fields = %v", cl.Fields)
	}

	attrs, err := ParseTile(read("tile-unknown-attrs.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(attrs.Cleared, []string{Title}) || attrs.Fields[IconImage] != "/Assets/icon.png" {
		t.Errorf("unknown attributes: %+v", attrs)
	}

	silent, err := ParseToast(read("toast-silent.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if *silent != (Toast{Text2: "Quiet update", Silent: true}) {
		t.Errorf("silent toast: %+v", silent)
	}
	bom, err := ParseToast(read("toast-bom-cdata.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if *bom != (Toast{Text1: "<b>Score</b>", Text2: "Home 2  - 1 Away", Sound: "goal.wav"}) {
		t.Errorf("BOM/CDATA toast: %+v", bom)
	}
}

func TestEncodeExact(t *testing.T) {
	tile := &Tile{Template: TemplateDefault, Fields: map[string]string{Title: "a&b"}, Cleared: []string{Count}}
	want := `<?xml version="1.0" encoding="utf-8"?><wp:Notification xmlns:wp="WPNotification"><wp:Tile><wp:Count Action="Clear"></wp:Count><wp:Title>a&amp;b</wp:Title></wp:Tile></wp:Notification>`
	if got := string(tile.Encode()); got != want {
		t.Errorf("WP7.5 tile:\n got %s\nwant %s", got, want)
	}
	tile = &Tile{ID: "/P.xaml?a=\"1\"\t", Template: TemplateIconic, Fields: map[string]string{BackgroundColor: "#FF000000"}}
	want = `<?xml version="1.0" encoding="utf-8"?><wp:Notification xmlns:wp="WPNotification" Version="2.0"><wp:Tile Id="/P.xaml?a=&quot;1&quot;&#x9;" Template="IconicTile"><wp:BackgroundColor>#FF000000</wp:BackgroundColor></wp:Tile></wp:Notification>`
	if got := string(tile.Encode()); got != want {
		t.Errorf("Iconic tile:\n got %s\nwant %s", got, want)
	}
	toast := &Toast{Text1: "x<y", Text2: "line1\r\nline2", Silent: true}
	want = `<?xml version="1.0" encoding="utf-8"?><wp:Notification xmlns:wp="WPNotification"><wp:Toast><wp:Text1>x&lt;y</wp:Text1><wp:Text2>line1&#xD;
line2</wp:Text2><wp:Sound Silent="true"></wp:Sound></wp:Toast></wp:Notification>`
	if got := string(toast.Encode()); got != want {
		t.Errorf("toast:\n got %s\nwant %s", got, want)
	}
	back, err := ParseToast(toast.Encode())
	if err != nil || *back != *toast {
		t.Errorf("toast round trip: %+v, %v", back, err)
	}
}

const (
	docHead  = `<?xml version="1.0" encoding="utf-8"?>`
	docOpen  = `<wp:Notification xmlns:wp="WPNotification">`
	docOpen2 = `<wp:Notification xmlns:wp="WPNotification" Version="2.0">`
	docClose = `</wp:Notification>`
)

func tileDoc(attrs, body string) string {
	return docHead + docOpen2 + `<wp:Tile` + attrs + `>` + body + `</wp:Tile>` + docClose
}

func toastDoc(body string) string {
	return docHead + docOpen + `<wp:Toast>` + body + `</wp:Toast>` + docClose
}

func TestReject(t *testing.T) {
	laughs := `<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<wp:Notification xmlns:wp="WPNotification"><wp:Toast><wp:Text1>&lol9;</wp:Text1></wp:Toast></wp:Notification>`
	deep := tileDoc(` Template="FlipTile"`, strings.Repeat("<wp:Title>", 10000)+strings.Repeat("</wp:Title>", 10000))
	manyAttrs := tileDoc(strings.Repeat(` a="1"`, 0)+func() string {
		var b strings.Builder
		for i := 0; i < 40; i++ {
			b.WriteString(` a` + strings.Repeat("x", i) + `="1"`)
		}
		return b.String()
	}(), "")

	tests := []struct {
		name    string
		toast   bool // ParseToast, else ParseTile
		in      string
		element string
		reason  string
	}{
		// Document level.
		{"empty body", false, "", "", "empty body"},
		{"empty toast body", true, "", "", "empty body"},
		{"only BOM", false, "\xEF\xBB\xBF", "", "empty body"},
		{"only white space", false, " \r\n\t", "", "no root element"},
		{"only declaration", false, docHead, "", "no root element"},
		{"text before root", false, "hello " + tileDoc("", ""), "", "text before the root element"},
		{"invalid UTF-8", false, tileDoc("", "<wp:Title>caf\xe9</wp:Title>"), "", "not valid UTF-8 (bad byte at offset 117)"},
		{"overlong UTF-8", true, toastDoc("<wp:Text1>\xc0\xaf</wp:Text1>"), "", "not valid UTF-8"},
		{"illegal character", true, toastDoc("<wp:Text1>a&#x1;b</wp:Text1>"), "", "illegal character code U+0001"},
		{"surrogate character reference", true, toastDoc("<wp:Text1>&#xD800;</wp:Text1>"), "", "U+D800 (a surrogate)"},
		{"decimal surrogate reference", false, tileDoc("", "<wp:Title>&#57343;</wp:Title>"), "", "U+DFFF"},
		{"padded surrogate reference", false, tileDoc("", "<wp:Title>&#x00000000000dabc;</wp:Title>"), "", "U+DABC"},
		{"NUL character reference", true, toastDoc("<wp:Text1>&#0;</wp:Text1>"), "", "illegal character code U+0000"},
		{"other encoding", false, `<?xml version="1.0" encoding="ISO-8859-1"?>` + docOpen + `<wp:Tile/>` + docClose, "", `encoding="ISO-8859-1"; MPNS payloads must be UTF-8`},
		{"XML 1.1", false, `<?xml version="1.1"?>` + docOpen + `<wp:Tile/>` + docClose, "", "only version 1.0"},
		{"late declaration", false, `<!-- c -->` + docHead + docOpen + `<wp:Tile/>` + docClose, "", "may only appear at the start"},
		{"reserved PI target", false, `<?XML version="1.0"?>` + docOpen + `<wp:Tile/>` + docClose, "", "reserved"},
		{"billion laughs", true, laughs, "", "<!DOCTYPE ...> declarations are not allowed"},
		{"DOCTYPE external", false, `<!DOCTYPE Notification SYSTEM "http://evil.example/x.dtd">` + docOpen + `<wp:Tile/>` + docClose, "", "DOCTYPE"},
		{"DOCTYPE after root", false, docOpen + `<wp:Tile/>` + docClose + `<!DOCTYPE x>`, "", "DOCTYPE"},
		{"undefined entity", true, toastDoc("<wp:Text1>&lol;</wp:Text1>"), "", "invalid character entity &lol;"},
		{"trailing garbage", false, tileDoc("", "") + "garbage", "", "trailing content after the end of the Notification element"},
		{"second root", false, tileDoc("", "") + docOpen + `<wp:Tile/>` + docClose, "", "trailing content"},
		{"stray end tag after root", false, tileDoc("", "") + "</wp:Tile>", "", "trailing content"},
		{"mismatched end tag", false, docHead + docOpen + `<wp:Tile></wp:Toast>` + docClose, "", "<wp:Tile> closed by </wp:Toast>"},
		{"unclosed root", false, docHead + docOpen + `<wp:Tile></wp:Tile>`, "Notification", "not closed"},
		{"unclosed element", false, docHead + docOpen + `<wp:Tile><wp:Title>x`, "Title", "<wp:Title> is not closed"},
		{"syntax error", false, docHead + docOpen + `<wp:Tile <>` + docClose, "", "malformed XML on line 1"},
		{"unquoted attribute", false, docHead + docOpen + `<wp:Tile Id=x/>` + docClose, "", "malformed XML"},
		{"deep nesting", false, deep, "Title", "nest at most 3 deep"},
		{"element in text", true, toastDoc("<wp:Text1>a<b>bold</b></wp:Text1>"), "Text1", "Text1 holds text only"},
		{"huge attribute", false, tileDoc(` Id="`+strings.Repeat("a", 10000)+`"`, ""), "Tile/@Id", "10000 bytes long; at most 4096"},
		{"huge unknown attribute", false, tileDoc(` x="`+strings.Repeat("a", 5000)+`"`, ""), "Tile/@x", "at most 4096"},
		{"huge text", false, tileDoc("", "<wp:Title>"+strings.Repeat("a", 5000)+"</wp:Title>"), "Title", "longer than 4096 bytes"},
		{"huge text in pieces", false, tileDoc("", "<wp:Title>"+strings.Repeat("a<!---->", 5000)+"</wp:Title>"), "Title", "longer than 4096 bytes"},
		{"too many attributes", false, manyAttrs, "Tile", "at most 32"},

		// Root and namespaces.
		{"wrong root", false, docHead + `<wp:Tile xmlns:wp="WPNotification"/>`, "Tile", "root element must be Notification, found wp:Tile"},
		{"html root", true, `<html><body/></html>`, "html", "root element must be Notification"},
		{"wrong namespace", false, `<wp:Notification xmlns:wp="http://schemas.microsoft.com/notification"><wp:Tile/></wp:Notification>`, "Notification", `namespace "http://schemas.microsoft.com/notification"`},
		{"no namespace", false, `<Notification><Tile/></Notification>`, "Notification", "in no namespace"},
		{"undeclared prefix", false, `<wp:Notification><wp:Tile/></wp:Notification>`, "Notification", `prefix "wp" is not declared`},
		{"prefix named like namespace", false, `<WPNotification:Notification><WPNotification:Tile/></WPNotification:Notification>`, "Notification", "not declared"},
		{"child without namespace", false, docHead + docOpen + `<Tile/>` + docClose, "Tile", "in no namespace"},
		{"child in other namespace", false, docHead + `<wp:Notification xmlns:wp="WPNotification" xmlns:x="urn:x"><x:Tile/></wp:Notification>`, "Tile", `namespace "urn:x"`},
		{"value element without namespace", false, tileDoc("", `<Title>x</Title>`), "Title", "in no namespace"},
		{"default namespace undone", false, `<Notification xmlns="WPNotification"><Tile xmlns=""/></Notification>`, "Tile", "in no namespace"},
		{"duplicate namespace declaration", false, `<wp:Notification xmlns:wp="WPNotification" xmlns:wp="WPNotification"><wp:Tile/></wp:Notification>`, "Notification", `duplicate declaration of prefix "wp"`},
		{"duplicate default namespace", false, `<Notification xmlns="WPNotification" xmlns="WPNotification"><Tile/></Notification>`, "Notification", "duplicate declaration of the default namespace"},
		{"empty prefix binding", false, `<wp:Notification xmlns:wp=""><wp:Tile/></wp:Notification>`, "Notification", "empty namespace"},
		{"bad Version", false, `<wp:Notification xmlns:wp="WPNotification" Version="3.0"><wp:Tile/></wp:Notification>`, "Notification/@Version", `Version="3.0" is not supported`},
		{"empty Version", true, `<wp:Notification xmlns:wp="WPNotification" Version=""><wp:Toast><wp:Text1>a</wp:Text1></wp:Toast></wp:Notification>`, "Notification/@Version", "not supported"},
		{"version lower case", false, `<wp:Notification xmlns:wp="WPNotification" version="2.0"><wp:Tile/></wp:Notification>`, "Notification/@version", "write Version, not version"},
		{"empty Notification", false, docHead + docOpen + docClose, "Notification", "expected a Tile"},
		{"empty Notification toast", true, docHead + docOpen + docClose, "Notification", "expected a Toast"},
		{"two children", false, docHead + docOpen + `<wp:Tile/><wp:Tile/>` + docClose, "Notification", "exactly one Toast or Tile"},
		{"text in Notification", false, docHead + docOpen + `hello<wp:Tile/>` + docClose, "Notification", `unexpected text "hello"`},
		{"Toast in tile", false, toastDoc("<wp:Text1>a</wp:Text1>"), "Notification", "expected a Tile (X-WindowsPhone-Target: token) but found Toast"},
		{"Tile in toast", true, tileDoc("", "<wp:Title>a</wp:Title>"), "Notification", "expected a Toast (X-WindowsPhone-Target: toast) but found Tile"},
		{"unknown kind", true, docHead + docOpen + `<wp:Raw/>` + docClose, "Notification", "expected a Toast (X-WindowsPhone-Target: toast) but found Raw"},

		// Tile attributes.
		{"unknown template", false, tileDoc(` Template="SuperTile"`, ""), "Tile/@Template", `unknown template "SuperTile" (want FlipTile, CycleTile or IconicTile)`},
		{"empty template", false, tileDoc(` Template=""`, ""), "Tile/@Template", `unknown template ""`},
		{"template wrong case", false, tileDoc(` Template="fliptile"`, ""), "Tile/@Template", `unknown template "fliptile"`},
		{"template attribute wrong case", false, tileDoc(` template="FlipTile"`, ""), "Tile/@template", "write Template, not template"},
		{"Id and ID differ", false, tileDoc(` Id="/A.xaml" ID="/B.xaml"`, ""), "Tile/@Id", `Id="/A.xaml" and ID="/B.xaml" disagree`},
		{"id lower case", false, tileDoc(` id="/A.xaml"`, ""), "Tile/@id", "case-sensitive"},
		{"duplicate attribute", false, tileDoc(` Id="/A.xaml" Id="/A.xaml"`, ""), "Tile/@Id", "duplicate attribute Id"},
		{"duplicate attribute via prefix", false, tileDoc(` Template="FlipTile"`, `<wp:Title Action="Clear" wp:Action="Clear"/>`), "Title/@Action", "duplicate Action attribute"},
		{"undeclared attribute prefix", false, tileDoc(` foo:bar="1"`, ""), "Tile/@foo:bar", `prefix "foo" is not declared`},

		// Tile elements.
		{"CycleImage10", false, tileDoc(` Template="CycleTile"`, "<wp:CycleImage10>x.png</wp:CycleImage10>"), "CycleImage10", "CycleTile has at most 9 cycle images (CycleImage1..CycleImage9)"},
		{"CycleImage0", false, tileDoc(` Template="CycleTile"`, "<wp:CycleImage0>x.png</wp:CycleImage0>"), "CycleImage0", "at most 9 cycle images"},
		{"CycleImage in FlipTile", false, tileDoc(` Template="FlipTile"`, "<wp:CycleImage1>x.png</wp:CycleImage1>"), "CycleImage1", "belongs to CycleTile"},
		{"IconImage in FlipTile", false, tileDoc(` Template="FlipTile"`, "<wp:IconImage>x.png</wp:IconImage>"), "IconImage", "not an element of a FlipTile tile; it belongs to IconicTile"},
		{"BackTitle in CycleTile", false, tileDoc(` Template="CycleTile"`, "<wp:BackTitle>x</wp:BackTitle>"), "BackTitle", "not an element of a CycleTile tile; it belongs to FlipTile"},
		{"FlipTile element in WP7.5", false, tileDoc("", "<wp:WideBackContent>x</wp:WideBackContent>"), "WideBackContent", `add Template="FlipTile"`},
		{"unknown tile element", false, tileDoc(` Template="IconicTile"`, "<wp:Colour>red</wp:Colour>"), "Colour", "unknown element Colour in a IconicTile tile"},
		{"element wrong case", false, tileDoc("", "<wp:title>x</wp:title>"), "title", "write Title, not title"},
		{"duplicate element", false, tileDoc("", "<wp:Title>a</wp:Title><wp:Title>b</wp:Title>"), "Title", "duplicate Title element"},
		{"duplicate set and clear", false, tileDoc("", `<wp:Count>1</wp:Count><wp:Count Action="Clear"/>`), "Count", "duplicate Count element"},
		{"bad Action", false, tileDoc("", `<wp:Title Action="Reset"/>`), "Title/@Action", `Action must be "Clear", got "Reset"`},
		{"Action lower case value", false, tileDoc("", `<wp:Title Action="clear"/>`), "Title/@Action", `got "clear"`},
		{"action attribute wrong case", false, tileDoc("", `<wp:Title action="Clear"/>`), "Title/@action", "write Action, not action"},
		{"text in Tile", false, tileDoc("", `hello<wp:Title>x</wp:Title>`), "Tile", `unexpected text "hello" in Tile`},
		{"Count -1", false, tileDoc("", "<wp:Count>-1</wp:Count>"), "Count", `Count must be a whole number from 0 to 99, got "-1"`},
		{"Count 100", false, tileDoc("", "<wp:Count>100</wp:Count>"), "Count", `got "100"`},
		{"Count abc", false, tileDoc("", "<wp:Count>abc</wp:Count>"), "Count", `got "abc"`},
		{"Count empty", false, tileDoc("", "<wp:Count></wp:Count>"), "Count", `got ""`},
		{"Count plus sign", false, tileDoc("", "<wp:Count>+5</wp:Count>"), "Count", `got "+5"`},
		{"Count decimal", false, tileDoc("", "<wp:Count>5.0</wp:Count>"), "Count", `got "5.0"`},
		{"Count huge", false, tileDoc("", "<wp:Count>99999999999999999999</wp:Count>"), "Count", "whole number"},
		{"BackgroundColor RGB", false, tileDoc(` Template="IconicTile"`, "<wp:BackgroundColor>#1BA1E2</wp:BackgroundColor>"), "BackgroundColor", `#AARRGGBB (8 hex digits, alpha first), got "#1BA1E2"`},
		{"BackgroundColor name", false, tileDoc(` Template="IconicTile"`, "<wp:BackgroundColor>red</wp:BackgroundColor>"), "BackgroundColor", `got "red"`},
		{"BackgroundColor not hex", false, tileDoc(` Template="IconicTile"`, "<wp:BackgroundColor>#GG1BA1E2</wp:BackgroundColor>"), "BackgroundColor", "#AARRGGBB"},

		// Toasts.
		{"toast unknown element", true, toastDoc("<wp:Text1>a</wp:Text1><wp:Text3>c</wp:Text3>"), "Text3", "unknown toast element Text3 (allowed: Text1, Text2, Param, Sound)"},
		{"toast element wrong case", true, toastDoc("<wp:text1>a</wp:text1>"), "text1", "write Text1, not text1"},
		{"toast duplicate", true, toastDoc("<wp:Text1>a</wp:Text1><wp:Text1>b</wp:Text1>"), "Text1", "duplicate Text1 element"},
		{"toast no text", true, toastDoc("<wp:Param>/P.xaml</wp:Param>"), "Toast", "needs Text1 or Text2"},
		{"toast blank text", true, toastDoc("<wp:Text1>  </wp:Text1><wp:Text2>\n</wp:Text2>"), "Toast", "needs Text1 or Text2"},
		{"toast empty", true, toastDoc(""), "Toast", "needs Text1 or Text2"},
		{"toast Silent yes", true, toastDoc(`<wp:Text1>a</wp:Text1><wp:Sound Silent="yes"/>`), "Sound/@Silent", `Silent must be "true" or "false", got "yes"`},
		{"toast Silent True", true, toastDoc(`<wp:Text1>a</wp:Text1><wp:Sound Silent="True"/>`), "Sound/@Silent", `got "True"`},
		{"toast silent attribute case", true, toastDoc(`<wp:Text1>a</wp:Text1><wp:Sound silent="true"/>`), "Sound/@silent", "write Silent, not silent"},
		{"toast Action", true, toastDoc(`<wp:Text1 Action="Clear">a</wp:Text1>`), "Text1/@Action", "tile elements only"},
		{"toast text", true, toastDoc(`hi<wp:Text1>a</wp:Text1>`), "Toast", "unexpected text"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.toast {
				var v *Toast
				v, err = ParseToast([]byte(tc.in))
				if err == nil {
					t.Fatalf("accepted: %+v", v)
				}
				if v != nil {
					t.Errorf("non-nil toast with error")
				}
			} else {
				var v *Tile
				v, err = ParseTile([]byte(tc.in))
				if err == nil {
					t.Fatalf("accepted: %+v", v)
				}
				if v != nil {
					t.Errorf("non-nil tile with error")
				}
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %v (%T) is not a *Error", err, err)
			}
			if pe.Element != tc.element {
				t.Errorf("Element = %q, want %q (error: %v)", pe.Element, tc.element, err)
			}
			if !strings.Contains(pe.Reason, tc.reason) {
				t.Errorf("Reason = %q, want it to contain %q", pe.Reason, tc.reason)
			}
			if len(pe.Reason) > 600 {
				t.Errorf("Reason is %d bytes long", len(pe.Reason))
			}
		})
	}
}

// TestAccept covers leniencies that the golden files do not.
func TestAccept(t *testing.T) {
	tiles := []struct {
		name string
		in   string
		want *Tile
	}{
		{"no Version", docHead + docOpen + `<wp:Tile Template="CycleTile"><wp:Count>1</wp:Count></wp:Tile>` + docClose,
			&Tile{Template: TemplateCycle, Fields: map[string]string{Count: "1"}}},
		{"Version on WP7.5 tile", tileDoc("", `<wp:Title>t</wp:Title>`),
			&Tile{Fields: map[string]string{Title: "t"}}},
		{"Count padded", tileDoc("", "<wp:Count>\n  05 \n</wp:Count>"),
			&Tile{Fields: map[string]string{Count: "05"}}},
		{"Count zero", tileDoc("", "<wp:Count>0</wp:Count>"),
			&Tile{Fields: map[string]string{Count: "0"}}},
		{"empty value", tileDoc("", "<wp:Title></wp:Title><wp:BackTitle/>"),
			&Tile{Fields: map[string]string{Title: "", BackTitle: ""}}},
		{"empty tile", tileDoc(` Id=""`, ""),
			&Tile{Fields: map[string]string{}}},
		{"Id and ID equal", tileDoc(` ID="/X.xaml" Id="/X.xaml"`, ""),
			&Tile{ID: "/X.xaml", Fields: map[string]string{}}},
		{"lower-case hex colour", tileDoc(` Template="IconicTile"`, "<wp:BackgroundColor>#ff1ba1e2</wp:BackgroundColor>"),
			&Tile{Template: TemplateIconic, Fields: map[string]string{BackgroundColor: "#ff1ba1e2"}}},
		{"Clear ignores invalid text", tileDoc(` Template="IconicTile"`, `<wp:Count Action="Clear">abc</wp:Count><wp:BackgroundColor Action="Clear">red</wp:BackgroundColor>`),
			&Tile{Template: TemplateIconic, Fields: map[string]string{}, Cleared: []string{Count, BackgroundColor}}},
		{"nested default namespaces", `<n:Notification xmlns:n="WPNotification"><Tile xmlns="WPNotification"><Title xmlns:n="urn:other">x</Title></Tile></n:Notification>`,
			&Tile{Fields: map[string]string{Title: "x"}}},
		{"prefix rebound inside", `<a:Notification xmlns:a="WPNotification"><b:Tile xmlns:b="WPNotification" xmlns:a="urn:x"><b:Title>x</b:Title></b:Tile></a:Notification>`,
			&Tile{Fields: map[string]string{Title: "x"}}},
		{"white space before declaration", "\n  " + tileDoc("", ""),
			&Tile{Fields: map[string]string{}}},
		{"internal white space kept", tileDoc("", "<wp:BackContent>  a\n\tb  </wp:BackContent>"),
			&Tile{Fields: map[string]string{BackContent: "a\n\tb"}}},
		{"no-break space kept", tileDoc("", "<wp:Title>\u00a0x\u00a0</wp:Title>"),
			&Tile{Fields: map[string]string{Title: "\u00a0x\u00a0"}}},
		{"char references", tileDoc("", "<wp:Title>&#x20;&#65;&#x42;&#xD;</wp:Title>"),
			&Tile{Fields: map[string]string{Title: "AB"}}},
		{"processing instruction in content", tileDoc("", "<wp:Title>a<?pi x?>b</wp:Title>"),
			&Tile{Fields: map[string]string{Title: "ab"}}},
	}
	for _, tc := range tiles {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseTile([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v\nwant %#v", got, tc.want)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
	toasts := []struct {
		name string
		in   string
		want Toast
	}{
		{"Text2 only", toastDoc("<wp:Text2>b</wp:Text2>"), Toast{Text2: "b"}},
		{"Version 2.0", `<wp:Notification xmlns:wp="WPNotification" Version="2.0"><wp:Toast><wp:Text1>a</wp:Text1></wp:Toast></wp:Notification>`, Toast{Text1: "a"}},
		{"Silent false", toastDoc(`<wp:Text1>a</wp:Text1><wp:Sound Silent="false"/>`), Toast{Text1: "a"}},
		{"Silent with file", toastDoc(`<wp:Text1>a</wp:Text1><wp:Sound Silent="true">x.wav</wp:Sound>`), Toast{Text1: "a", Sound: "x.wav", Silent: true}},
		{"prefixed Silent", toastDoc(`<wp:Text1>a</wp:Text1><wp:Sound wp:Silent="true"/>`), Toast{Text1: "a", Silent: true}},
		{"unknown attributes ignored", `<wp:Notification xmlns:wp="WPNotification" foo="bar"><wp:Toast Launch="x"><wp:Text1 Lang="en">a</wp:Text1></wp:Toast></wp:Notification>`, Toast{Text1: "a"}},
	}
	for _, tc := range toasts {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseToast([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if *got != tc.want {
				t.Errorf("got %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	ok := []*Tile{
		{},
		{Template: TemplateFlip, Fields: map[string]string{WideBackContent: "x"}, Cleared: []string{SmallBackgroundImage, Count}},
		{Template: TemplateCycle, Fields: map[string]string{CycleImage(9): "9.png"}},
		{Template: TemplateIconic, ID: " /spaces are fine in Id ", Fields: map[string]string{BackgroundColor: "#00000000", Count: "99"}},
	}
	for _, tile := range ok {
		if err := tile.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v", tile, err)
		}
		back, err := ParseTile(tile.Encode())
		if err != nil || !back.Equal(tile) {
			t.Errorf("round trip of %+v: %+v, %v", tile, back, err)
		}
	}
	bad := []struct {
		tile    *Tile
		element string
		reason  string
	}{
		{nil, "", "nil tile"},
		{&Tile{Template: "Flip"}, "Tile/@Template", `unknown template "Flip"`},
		{&Tile{Fields: map[string]string{"Foo": "x", "Bar": "y"}}, "Bar", "unknown element Bar"},
		{&Tile{Template: TemplateCycle, Fields: map[string]string{CycleImage(10): "x"}}, "CycleImage10", "at most 9 cycle images"},
		{&Tile{Fields: map[string]string{Title: " x"}}, "Title", "leading or trailing white space"},
		{&Tile{Fields: map[string]string{Title: "x\n"}}, "Title", "leading or trailing white space"},
		{&Tile{Fields: map[string]string{Title: "a\x00b"}}, "Title", "U+0000"},
		{&Tile{Fields: map[string]string{Title: "a\xffb"}}, "Title", "not valid UTF-8"},
		{&Tile{Fields: map[string]string{Title: strings.Repeat("x", MaxValueLen+1)}}, "Title", "at most 4096"},
		{&Tile{ID: "\x01"}, "Tile/@Id", "U+0001"},
		{&Tile{Fields: map[string]string{Count: "100"}}, "Count", "0 to 99"},
		{&Tile{Template: TemplateIconic, Fields: map[string]string{BackgroundColor: "#FFF"}}, "BackgroundColor", "#AARRGGBB"},
		{&Tile{Fields: map[string]string{Title: "x"}, Cleared: []string{Title}}, "Title", "both set"},
		{&Tile{Cleared: []string{Title, Title}}, "Title", "duplicate"},
		{&Tile{Cleared: []string{Title, Count}}, "Count", "canonical order"},
		{&Tile{Cleared: []string{IconImage}}, "IconImage", "belongs to IconicTile"},
	}
	for _, tc := range bad {
		err := tc.tile.Validate()
		var pe *Error
		if !errors.As(err, &pe) {
			t.Errorf("Validate(%+v) = %v, want a *Error", tc.tile, err)
			continue
		}
		if pe.Element != tc.element || !strings.Contains(pe.Reason, tc.reason) {
			t.Errorf("Validate(%+v) = %v; want element %q, reason containing %q", tc.tile, err, tc.element, tc.reason)
		}
	}

	toastBad := []struct {
		toast   *Toast
		element string
		reason  string
	}{
		{nil, "", "nil toast"},
		{&Toast{}, "Toast", "needs Text1 or Text2"},
		{&Toast{Param: "/P.xaml", Silent: true}, "Toast", "needs Text1 or Text2"},
		{&Toast{Text1: "a", Param: " /P.xaml"}, "Param", "white space"},
		{&Toast{Text1: "a", Sound: "\uFFFEx"}, "Sound", "U+FFFE"},
	}
	for _, tc := range toastBad {
		err := tc.toast.Validate()
		var pe *Error
		if !errors.As(err, &pe) || pe.Element != tc.element || !strings.Contains(pe.Reason, tc.reason) {
			t.Errorf("Validate(%+v) = %v; want element %q, reason containing %q", tc.toast, err, tc.element, tc.reason)
		}
	}
	if err := (&Toast{Text2: "b", Sound: "s.wav", Silent: true}).Validate(); err != nil {
		t.Errorf("valid toast: %v", err)
	}
}

func TestElements(t *testing.T) {
	want := map[Template][]string{
		TemplateDefault: {"BackgroundImage", "Count", "Title", "BackBackgroundImage", "BackTitle", "BackContent"},
		TemplateFlip: {"SmallBackgroundImage", "WideBackgroundImage", "WideBackBackgroundImage", "WideBackContent",
			"BackgroundImage", "Count", "Title", "BackBackgroundImage", "BackTitle", "BackContent"},
		TemplateCycle: {"SmallBackgroundImage", "CycleImage1", "CycleImage2", "CycleImage3", "CycleImage4", "CycleImage5",
			"CycleImage6", "CycleImage7", "CycleImage8", "CycleImage9", "Count", "Title"},
		TemplateIconic: {"SmallIconImage", "IconImage", "WideContent1", "WideContent2", "WideContent3", "Count", "Title", "BackgroundColor"},
	}
	for tmpl, names := range want {
		got := Elements(tmpl)
		if !reflect.DeepEqual(got, names) {
			t.Errorf("Elements(%v) = %v, want %v", tmpl, got, names)
		}
		got[0] = "changed"
		if Elements(tmpl)[0] != names[0] {
			t.Errorf("Elements(%v) shares its slice", tmpl)
		}
	}
	if Elements("Nope") != nil {
		t.Error("Elements of an unknown template is not nil")
	}
	for _, s := range []string{"", "WP7.5", "FlipTile", "CycleTile", "IconicTile"} {
		tmpl, err := ParseTemplate(s)
		if err != nil {
			t.Errorf("ParseTemplate(%q): %v", s, err)
		}
		if s != "" {
			if tmpl.String() != s {
				t.Errorf("ParseTemplate(%q).String() = %q", s, tmpl.String())
			}
		}
	}
	if _, err := ParseTemplate("fliptile"); err == nil {
		t.Error("ParseTemplate accepted fliptile")
	}
}

func TestTileHelpers(t *testing.T) {
	tile := &Tile{Template: TemplateFlip}
	tile.Set(Title, "t")
	tile.Clear(Count)
	tile.Clear(SmallBackgroundImage)
	tile.Clear(BackContent)
	tile.Clear(WideBackContent)
	tile.Clear(Title)
	want := []string{SmallBackgroundImage, WideBackContent, Count, Title, BackContent}
	if !reflect.DeepEqual(tile.Cleared, want) {
		t.Errorf("Cleared = %v, want %v", tile.Cleared, want)
	}
	if len(tile.Fields) != 0 {
		t.Errorf("Fields = %v after Clear(Title)", tile.Fields)
	}
	tile.Set(Count, "4")
	if n, ok := tile.CountValue(); !ok || n != 4 {
		t.Errorf("CountValue = %d, %v", n, ok)
	}
	want = []string{SmallBackgroundImage, WideBackContent, Title, BackContent}
	if !reflect.DeepEqual(tile.Cleared, want) {
		t.Errorf("Cleared = %v, want %v", tile.Cleared, want)
	}
	if err := tile.Validate(); err != nil {
		t.Fatal(err)
	}
	back, err := ParseTile(tile.Encode())
	if err != nil || !back.Equal(tile) {
		t.Errorf("round trip: %+v, %v", back, err)
	}
	if (&Tile{Fields: map[string]string{Count: "x"}}).Equal(&Tile{}) {
		t.Error("Equal ignores Fields")
	}
	if !(&Tile{Fields: map[string]string{}}).Equal(&Tile{}) {
		t.Error("Equal distinguishes nil and empty Fields")
	}
	var nilTile *Tile
	if _, ok := nilTile.CountValue(); ok {
		t.Error("nil CountValue")
	}
	if (&Error{Element: "Count", Reason: "r"}).Error() != "payload: Count: r" || (&Error{Reason: "r"}).Error() != "payload: r" {
		t.Error("Error.Error format")
	}
}
