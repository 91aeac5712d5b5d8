package tile

import "testing"

func TestProfiles(t *testing.T) {
	tests := []struct {
		name          string
		want          Profile
		logicalHeight float32
		small, medium [2]int
		wide          [2]int
	}{
		{"wvga", WVGA, 800, [2]int{99, 99}, [2]int{210, 210}, [2]int{432, 210}},
		{"WXGA", WXGA, 800, [2]int{159, 159}, [2]int{336, 336}, [2]int{691, 336}},
		{"720p", HD720, 1280 / 1.5, [2]int{149, 149}, [2]int{315, 315}, [2]int{648, 315}},
		{"hd1080", HD1080, 1920 / 2.25, [2]int{141, 141}, [2]int{307, 307}, [2]int{639, 307}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := LookupProfile(tt.name)
			if err != nil || p != tt.want {
				t.Fatalf("LookupProfile(%q) = %+v, %v", tt.name, p, err)
			}
			if got := p.LogicalHeight(); got != tt.logicalHeight {
				t.Errorf("logical height %v, want %v", got, tt.logicalHeight)
			}
			if got := float32(p.Width) / p.Scale; got != LogicalWidth {
				t.Errorf("logical width %v, want %v", got, LogicalWidth)
			}
			for _, c := range []struct {
				size Size
				want [2]int
			}{{Small, tt.small}, {Medium, tt.medium}, {Wide, tt.wide}} {
				if w, h := p.TilePixels(c.size); w != c.want[0] || h != c.want[1] {
					t.Errorf("%v tile %dx%d pixels, want %dx%d", c.size, w, h, c.want[0], c.want[1])
				}
			}
		})
	}
	if _, err := LookupProfile("qvga"); err == nil {
		t.Error("LookupProfile(qvga) succeeded")
	}
}

// TestGrids: four columns are Microsoft's WXGA geometry in logical units;
// six fit three medium tiles where two and a gap were; both fill the same
// width, and a medium tile is two small ones and a gap.
func TestGrids(t *testing.T) {
	for _, p := range []Profile{WVGA, WVGA.MoreTiles(true), HD1080, HD1080.MoreTiles(false)} {
		g := p.Grid()
		if g.Columns != p.Columns {
			t.Errorf("%v: grid of %d columns", p, g.Columns)
		}
		if got := 2*g.Small + g.Gap; !near(got, g.Medium) {
			t.Errorf("%v: two small and a gap %v, medium %v", p, got, g.Medium)
		}
		if got := float32(g.Columns/2)*g.Medium + float32(g.Columns/2-1)*g.Gap; !near(got, 2*g.Medium+g.Gap) && g.Columns == 4 {
			t.Errorf("%v: the row is %v wide", p, got)
		}
		if g.Left()*2+g.Width() != LogicalWidth {
			t.Errorf("%v: grid not centred", p)
		}
	}
	if WVGA.MoreTiles(true).Columns != 6 || HD1080.MoreTiles(false).Columns != 6 || WXGA.MoreTiles(false).Columns != 4 {
		t.Error("MoreTiles: six columns with it, and always on 1080p")
	}
	six := HD1080.Grid()
	if got := 3*six.Medium + 2*six.Gap; !near(got, six.Width()) {
		t.Errorf("three medium tiles on six columns are %v wide, want %v", got, six.Width())
	}
	if got := WVGA.MoreTiles(true).String(); got != "WVGA 480×800, more tiles" {
		t.Errorf("String() = %q", got)
	}
}

func near(a, b float32) bool { return a-b < 0.01 && b-a < 0.01 }
