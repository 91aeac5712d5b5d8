package tile

import (
	"strings"
	"testing"
)

func TestIsRemote(t *testing.T) {
	for ref, want := range map[string]bool{
		"http://a/b.png": true, "HTTPS://a/b.png": true, "/Assets/a.png": false,
		"isostore:/a.png": false, "ftp://a/b.png": false, "": false, "http:/a": false,
	} {
		if got := IsRemote(ref); got != want {
			t.Errorf("IsRemote(%q) = %v", ref, got)
		}
	}
}

func TestAppPath(t *testing.T) {
	tests := []struct{ ref, want, err string }{
		{"/Assets/Tiles/a.png", "Assets/Tiles/a.png", ""},
		{"Assets/Tiles/a.png", "Assets/Tiles/a.png", ""},
		{`Assets\Tiles\a.png`, "Assets/Tiles/a.png", ""},
		{"appdata:/Assets/a.png", "Assets/a.png", ""},
		{"ISOSTORE:/a.png", "a.png", ""},
		{"/../a.png", "a.png", ""},
		{"http://x/a.png", "", "remote"},
		{"", "", "not a path"},
		{"/", "", "not a path"},
	}
	for _, tt := range tests {
		got, err := AppPath(tt.ref)
		switch {
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("AppPath(%q) = %q, %v; want %q", tt.ref, got, err, tt.want)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("AppPath(%q) = %q, %v; want an error saying %q", tt.ref, got, err, tt.err)
		}
	}
}
