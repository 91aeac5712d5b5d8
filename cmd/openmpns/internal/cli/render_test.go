package cli

import (
	"bytes"
	"context"
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
