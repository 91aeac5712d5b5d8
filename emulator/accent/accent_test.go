package accent

import (
	"image/color"
	"testing"
)

func TestLookup(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		want   color.NRGBA
		wantOK bool
	}{
		{"lower", "cobalt", Cobalt, true},
		{"mixed case and spaces", "  Lime ", Lime, true},
		{"unknown", "chartreuse", color.NRGBA{}, false},
		{"empty", "", color.NRGBA{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Lookup(tt.in)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("Lookup(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestNames(t *testing.T) {
	names := Names()
	if len(names) != 20 {
		t.Fatalf("Names() has %d entries, want the 20 WP8 accents", len(names))
	}
	for i, n := range names {
		if _, ok := Lookup(n); !ok {
			t.Errorf("Lookup(%q) failed for a listed name", n)
		}
		if i > 0 && names[i-1] >= n {
			t.Errorf("Names() not sorted at %d: %q >= %q", i, names[i-1], n)
		}
	}
}

func TestOr(t *testing.T) {
	tests := []struct {
		name string
		in   color.Color
		want color.Color
	}{
		{"nil gives default", nil, Default},
		{"colour kept", Red, Red},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Or(tt.in); got != tt.want {
				t.Errorf("Or(%v) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}
