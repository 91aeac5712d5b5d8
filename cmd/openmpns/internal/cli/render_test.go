package cli

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRenderRefusesWhatAPhoneCannotShow: a WP7.5 tile has no wide size,
// and a tile without wide back elements has no back at wide size.
func TestRenderRefusesWhatAPhoneCannotShow(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, xml, size string
		back            bool
		want            string
	}{
		{"wp7.5 wide", `<wp:Tile><wp:Title>Old</wp:Title></wp:Tile>`, "wide", false, "has no wide size"},
		{"medium back content at wide", `<wp:Tile Template="FlipTile"><wp:BackContent>medium</wp:BackContent></wp:Tile>`, "wide", true, "has no back at size wide"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := `<?xml version="1.0" encoding="utf-8"?><wp:Notification xmlns:wp="WPNotification">` + tt.xml + `</wp:Notification>`
			args := []string{"render", "--xml", "-", "--size", tt.size, "-o", filepath.Join(dir, "x.png")}
			if tt.back {
				args = append(args, "--back")
			}
			var so, se bytes.Buffer
			if code := RunContext(context.Background(), args, strings.NewReader(body), &so, &se); code != 1 || !strings.Contains(se.String(), tt.want) {
				t.Errorf("exit %d, stderr %q; want 1 and %q", code, se.String(), tt.want)
			}
		})
	}
}

// TestRenderProfiles draws one tile at each screen's pixels.
func TestRenderProfiles(t *testing.T) {
	dir := t.TempDir()
	body := `<?xml version="1.0" encoding="utf-8"?><wp:Notification xmlns:wp="WPNotification"><wp:Tile Template="FlipTile"><wp:Title>News</wp:Title></wp:Tile></wp:Notification>`
	tests := []struct {
		args []string
		w, h int
		what string
	}{
		{[]string{"--profile", "wvga"}, 210, 210, "WVGA 480×800"},
		{[]string{"--profile", "WXGA", "--size", "small"}, 159, 159, "WXGA 768×1280"},
		{[]string{"--profile", "720p", "--size", "wide"}, 648, 315, "720P 720×1280"},
		{[]string{"--profile", "1080p"}, 307, 307, "1080P 1080×1920"},
		{[]string{"--profile", "wvga", "--more-tiles"}, 136, 136, "WVGA 480×800, more tiles"},
		{[]string{"--profile", "wvga", "--scale", "2"}, 420, 420, "WVGA"},
	}
	for _, tt := range tests {
		out := filepath.Join(dir, "out.png")
		var so, se bytes.Buffer
		args := append([]string{"render", "--xml", "-", "-o", out}, tt.args...)
		if code := RunContext(context.Background(), args, strings.NewReader(body), &so, &se); code != 0 {
			t.Fatalf("%v: exit %d: %s", tt.args, code, se.String())
		}
		if !strings.Contains(so.String(), tt.what) {
			t.Errorf("%v: %q does not say %q", tt.args, so.String(), tt.what)
		}
		f, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if b := img.Bounds(); b.Dx() != tt.w || b.Dy() != tt.h {
			t.Errorf("%v: image %dx%d, want %dx%d", tt.args, b.Dx(), b.Dy(), tt.w, tt.h)
		}
	}
	var so, se bytes.Buffer
	if code := RunContext(context.Background(), []string{"render", "--xml", "-", "-o", filepath.Join(dir, "x.png"), "--profile", "qvga"}, strings.NewReader(body), &so, &se); code == 0 || !strings.Contains(se.String(), "unknown screen profile") {
		t.Errorf("--profile qvga: exit %d, %q", code, se.String())
	}
}

// --scale is a number from 0.1 to 4: 0 failed with "png: invalid format:
// invalid image size: 0x0", -2 rendered as if it were 2, 1000 ran out of
// memory.
func TestRenderScaleIsFromATenthToFour(t *testing.T) {
	dir := t.TempDir()
	xml := filepath.Join(dir, "t.xml")
	os.WriteFile(xml, []byte(`<?xml version="1.0" encoding="utf-8"?><wp:Notification xmlns:wp="WPNotification" Version="2.0"><wp:Tile Template="FlipTile"><wp:Title>News</wp:Title></wp:Tile></wp:Notification>`), 0o644)
	// Not 1000 here: without the bound, it runs out of memory.
	for _, s := range []string{"0", "-2", "0.05", "4.5", "NaN"} {
		code, _, stderr := run(t, "render", "--xml", xml, "-o", filepath.Join(dir, "o.png"), "--scale", s)
		if code != 2 || !strings.Contains(stderr, "openmpns render: --scale "+s+": want a number from 0.1 to 4") {
			t.Errorf("render --scale %s: exit %d, stderr %q; want 2 and a word on --scale", s, code, stderr)
		}
	}
	if code, _, stderr := run(t, "render", "--xml", xml, "-o", filepath.Join(dir, "o.png"), "--scale", "0.5"); code != 0 {
		t.Errorf("render --scale 0.5: exit %d, %s", code, stderr)
	}
}
