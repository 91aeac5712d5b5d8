package tile

import (
	"maps"
	"reflect"
	"testing"

	"github.com/openmpns/openmpns/shared/payload"
)

func TestStateApply(t *testing.T) {
	defaults := map[string]string{
		payload.Title:           "My App",
		payload.BackgroundImage: "/Assets/Tiles/Medium.png",
		payload.IconImage:       "/Assets/Tiles/Icon.png",
	}
	tests := []struct {
		name     string
		start    payload.Template
		updates  []payload.Tile
		wantTmpl payload.Template
		want     map[string]string
	}{
		{
			name:     "fresh tile has the template's defaults",
			start:    payload.TemplateFlip,
			wantTmpl: payload.TemplateFlip,
			want:     map[string]string{payload.Title: "My App", payload.BackgroundImage: "/Assets/Tiles/Medium.png"},
		},
		{
			name:  "set fields overwrite and add",
			start: payload.TemplateFlip,
			updates: []payload.Tile{{Template: payload.TemplateFlip, Fields: map[string]string{
				payload.Title: "Inbox", payload.Count: "3", payload.BackContent: "hi",
			}}},
			wantTmpl: payload.TemplateFlip,
			want: map[string]string{
				payload.Title: "Inbox", payload.Count: "3", payload.BackContent: "hi",
				payload.BackgroundImage: "/Assets/Tiles/Medium.png",
			},
		},
		{
			name:  "later updates keep earlier fields",
			start: payload.TemplateFlip,
			updates: []payload.Tile{
				{Template: payload.TemplateFlip, Fields: map[string]string{payload.Count: "3"}},
				{Template: payload.TemplateFlip, Fields: map[string]string{payload.BackTitle: "back"}},
			},
			wantTmpl: payload.TemplateFlip,
			want: map[string]string{
				payload.Title: "My App", payload.Count: "3", payload.BackTitle: "back",
				payload.BackgroundImage: "/Assets/Tiles/Medium.png",
			},
		},
		{
			name:  "cleared field with a default goes back to it",
			start: payload.TemplateFlip,
			updates: []payload.Tile{
				{Template: payload.TemplateFlip, Fields: map[string]string{payload.Title: "Inbox"}},
				{Template: payload.TemplateFlip, Cleared: []string{payload.Title}},
			},
			wantTmpl: payload.TemplateFlip,
			want:     map[string]string{payload.Title: "My App", payload.BackgroundImage: "/Assets/Tiles/Medium.png"},
		},
		{
			name:  "cleared field without a default is removed",
			start: payload.TemplateFlip,
			updates: []payload.Tile{
				{Template: payload.TemplateFlip, Fields: map[string]string{payload.Count: "9", payload.BackContent: "x"}},
				{Template: payload.TemplateFlip, Cleared: []string{payload.Count, payload.BackContent}},
			},
			wantTmpl: payload.TemplateFlip,
			want:     map[string]string{payload.Title: "My App", payload.BackgroundImage: "/Assets/Tiles/Medium.png"},
		},
		{
			name:  "set and clear in one update",
			start: payload.TemplateFlip,
			updates: []payload.Tile{{Template: payload.TemplateFlip,
				Fields:  map[string]string{payload.Count: "1"},
				Cleared: []string{payload.BackgroundImage},
			}},
			wantTmpl: payload.TemplateFlip,
			want:     map[string]string{payload.Title: "My App", payload.Count: "1", payload.BackgroundImage: "/Assets/Tiles/Medium.png"},
		},
		{
			name:  "elements the template does not define are ignored",
			start: payload.TemplateFlip,
			updates: []payload.Tile{{Template: payload.TemplateFlip, Fields: map[string]string{
				payload.IconImage: "/i.png", payload.CycleImage(1): "/c.png", payload.Count: "2",
			}}},
			wantTmpl: payload.TemplateFlip,
			want:     map[string]string{payload.Title: "My App", payload.Count: "2", payload.BackgroundImage: "/Assets/Tiles/Medium.png"},
		},
		{
			name:  "WP7.5 update to a flip tile keeps it a flip tile",
			start: payload.TemplateFlip,
			updates: []payload.Tile{
				{Template: payload.TemplateFlip, Fields: map[string]string{payload.WideBackContent: "wide"}},
				{Template: payload.TemplateDefault, Fields: map[string]string{payload.BackTitle: "legacy"}},
			},
			wantTmpl: payload.TemplateFlip,
			want: map[string]string{
				payload.Title: "My App", payload.BackgroundImage: "/Assets/Tiles/Medium.png",
				payload.WideBackContent: "wide", payload.BackTitle: "legacy",
			},
		},
		{
			name:  "flip update to a WP7.5 tile makes it a flip tile",
			start: payload.TemplateDefault,
			updates: []payload.Tile{
				{Template: payload.TemplateDefault, Fields: map[string]string{payload.BackContent: "kept"}},
				{Template: payload.TemplateFlip, Fields: map[string]string{payload.WideBackContent: "wide"}},
			},
			wantTmpl: payload.TemplateFlip,
			want: map[string]string{
				payload.Title: "My App", payload.BackgroundImage: "/Assets/Tiles/Medium.png",
				payload.BackContent: "kept", payload.WideBackContent: "wide",
			},
		},
		{
			name:  "switch to iconic keeps title and count, drops images, adds iconic defaults",
			start: payload.TemplateFlip,
			updates: []payload.Tile{
				{Template: payload.TemplateFlip, Fields: map[string]string{payload.Title: "Inbox", payload.Count: "4", payload.BackContent: "x"}},
				{Template: payload.TemplateIconic, Fields: map[string]string{payload.WideContent1: "hello"}},
			},
			wantTmpl: payload.TemplateIconic,
			want: map[string]string{
				payload.Title: "Inbox", payload.Count: "4", payload.WideContent1: "hello",
				payload.IconImage: "/Assets/Tiles/Icon.png",
			},
		},
		{
			name:  "switch to cycle keeps the small background image",
			start: payload.TemplateFlip,
			updates: []payload.Tile{
				{Template: payload.TemplateFlip, Fields: map[string]string{payload.SmallBackgroundImage: "/s.png"}},
				{Template: payload.TemplateCycle, Fields: map[string]string{payload.CycleImage(1): "/1.png"}},
			},
			wantTmpl: payload.TemplateCycle,
			want: map[string]string{
				payload.Title: "My App", payload.SmallBackgroundImage: "/s.png", payload.CycleImage(1): "/1.png",
			},
		},
		{
			name:     "nil update changes nothing",
			start:    payload.TemplateCycle,
			updates:  []payload.Tile{},
			wantTmpl: payload.TemplateCycle,
			want:     map[string]string{payload.Title: "My App"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewState("/Page.xaml?id=1", tt.start, defaults)
			s.Apply(nil)
			for i := range tt.updates {
				s.Apply(&tt.updates[i])
			}
			if s.Template != tt.wantTmpl {
				t.Errorf("Template = %v, want %v", s.Template, tt.wantTmpl)
			}
			if !maps.Equal(s.Fields, tt.want) {
				t.Errorf("Fields = %v\nwant     %v", s.Fields, tt.want)
			}
			if s.ID != "/Page.xaml?id=1" {
				t.Errorf("ID = %q, changed by Apply", s.ID)
			}
		})
	}
}

func TestNewStateCopiesDefaults(t *testing.T) {
	d := map[string]string{payload.Title: "A"}
	s := NewState("", payload.TemplateFlip, d)
	d[payload.Title] = "B"
	s.Fields[payload.Title] = "C"
	if s.Defaults[payload.Title] != "A" {
		t.Errorf("Defaults changed with the caller's map or Fields: %v", s.Defaults)
	}
	c := s.Clone()
	c.Fields[payload.Title] = "D"
	c.Defaults[payload.Title] = "E"
	if s.Fields[payload.Title] != "C" || s.Defaults[payload.Title] != "A" {
		t.Errorf("Clone shares maps with the original: %v %v", s.Fields, s.Defaults)
	}
	if NewState("", payload.TemplateFlip, nil).Defaults == nil {
		t.Error("nil defaults left a nil map")
	}
	var zero State
	zero.Apply(&payload.Tile{Fields: map[string]string{payload.Title: "x"}})
	if zero.Get(payload.Title) != "x" {
		t.Errorf("Apply on a zero State: Title = %q", zero.Get(payload.Title))
	}
}

func TestStateCount(t *testing.T) {
	tests := []struct {
		name string
		in   string
		set  bool
		want int
	}{
		{"unset", "", false, 0},
		{"zero hides", "0", true, 0},
		{"one", "1", true, 1},
		{"spaces", " 42 ", true, 42},
		{"max", "99", true, 99},
		{"clamped", "250", true, 99},
		{"negative", "-3", true, 0},
		{"not a number", "many", true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewState("", payload.TemplateFlip, nil)
			if tt.set {
				s.Fields[payload.Count] = tt.in
			}
			if got := s.Count(); got != tt.want {
				t.Errorf("Count() with %q = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestStateCycleImages(t *testing.T) {
	s := NewState("", payload.TemplateCycle, nil)
	s.Apply(&payload.Tile{Template: payload.TemplateCycle, Fields: map[string]string{
		payload.CycleImage(3): "/3.png", payload.CycleImage(1): "/1.png", payload.CycleImage(9): "/9.png",
	}})
	want := []string{"/1.png", "/3.png", "/9.png"}
	if got := s.CycleImages(); !reflect.DeepEqual(got, want) {
		t.Errorf("CycleImages() = %v, want %v", got, want)
	}
}

func TestStateHasBack(t *testing.T) {
	tests := []struct {
		name   string
		tmpl   payload.Template
		fields map[string]string
		size   Size
		want   bool
	}{
		{"flip front only", payload.TemplateFlip, map[string]string{payload.Title: "t"}, Medium, false},
		{"flip back title", payload.TemplateFlip, map[string]string{payload.BackTitle: "b"}, Medium, true},
		{"flip back content", payload.TemplateFlip, map[string]string{payload.BackContent: "b"}, Medium, true},
		{"flip back image", payload.TemplateFlip, map[string]string{payload.BackBackgroundImage: "/b.png"}, Medium, true},
		{"flip small never", payload.TemplateFlip, map[string]string{payload.BackTitle: "b"}, Small, false},
		{"flip wide back content", payload.TemplateFlip, map[string]string{payload.WideBackContent: "b"}, Wide, true},
		{"flip wide back image", payload.TemplateFlip, map[string]string{payload.WideBackBackgroundImage: "/b.png"}, Wide, true},
		{"flip wide content only medium", payload.TemplateFlip, map[string]string{payload.WideBackContent: "b"}, Medium, false},
		{"flip medium image only wide", payload.TemplateFlip, map[string]string{payload.BackBackgroundImage: "/b.png"}, Wide, false},
		{"wp7.5 back", payload.TemplateDefault, map[string]string{payload.BackContent: "b"}, Medium, true},
		{"flip medium content only medium", payload.TemplateFlip, map[string]string{payload.BackContent: "b"}, Wide, false},
		{"wp7.5 has no wide back", payload.TemplateDefault, map[string]string{payload.BackContent: "b"}, Wide, false},
		{"cycle never", payload.TemplateCycle, map[string]string{payload.Title: "t"}, Medium, false},
		{"iconic never", payload.TemplateIconic, map[string]string{payload.WideContent1: "t"}, Wide, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewState("", tt.tmpl, nil)
			s.Apply(&payload.Tile{Template: tt.tmpl, Fields: tt.fields})
			if got := s.HasBack(tt.size); got != tt.want {
				t.Errorf("HasBack(%v) = %v, want %v", tt.size, got, tt.want)
			}
		})
	}
}

func TestAccepts(t *testing.T) {
	tests := []struct {
		tmpl payload.Template
		name string
		want bool
	}{
		{payload.TemplateDefault, payload.BackContent, true},
		{payload.TemplateDefault, payload.WideBackContent, false},
		{payload.TemplateFlip, payload.WideBackContent, true},
		{payload.TemplateFlip, payload.CycleImage(1), false},
		{payload.TemplateCycle, payload.CycleImage(9), true},
		{payload.TemplateCycle, payload.BackgroundImage, false},
		{payload.TemplateIconic, payload.BackgroundColor, true},
		{payload.TemplateIconic, payload.SmallBackgroundImage, false},
		{payload.Template("Bogus"), payload.Title, false},
	}
	for _, tt := range tests {
		t.Run(tt.tmpl.String()+"/"+tt.name, func(t *testing.T) {
			if got := accepts(tt.tmpl, tt.name); got != tt.want {
				t.Errorf("accepts(%v, %q) = %v, want %v", tt.tmpl, tt.name, got, tt.want)
			}
		})
	}
}

func TestSize(t *testing.T) {
	tests := []struct {
		size Size
		name string
		w, h int
	}{
		{Small, "small", 159, 159},
		{Medium, "medium", 336, 336},
		{Wide, "wide", 691, 336},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.size.String() != tt.name {
				t.Errorf("String() = %q", tt.size.String())
			}
			if w, h := tt.size.Pixels(); w != tt.w || h != tt.h {
				t.Errorf("Pixels() = %d, %d", w, h)
			}
			got, err := ParseSize(tt.name)
			if err != nil || got != tt.size {
				t.Errorf("ParseSize(%q) = %v, %v", tt.name, got, err)
			}
		})
	}
	if _, err := ParseSize("huge"); err == nil {
		t.Error("ParseSize(huge) succeeded")
	}
	if got := Size(7).String(); got != "size(7)" {
		t.Errorf("Size(7).String() = %q", got)
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		name, in string
		n        int
		want     string
	}{
		{"short", "Mail", 19, "Mail"},
		{"exact", "1234567890123456789", 19, "1234567890123456789"},
		{"cut", "Overflowing title that is far too long", 19, "Overflowing title t"},
		{"cut before space", "abcdefghijklmnopqr stuvw", 19, "abcdefghijklmnopqr"},
		{"runes not bytes", "ééééééééééééééééééééé", 19, "ééééééééééééééééééé"},
		{"trimmed", "  padded  ", 19, "padded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Truncate(tt.in, tt.n); got != tt.want {
				t.Errorf("Truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
			}
		})
	}
}

func TestWrap(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		width int
		want  []string
	}{
		{"empty", "", 13, nil},
		{"one line", "Lunch?", 13, []string{"Lunch?"}},
		{"words", "Lunch at noon? The new place on 5th", 13, []string{"Lunch at", "noon? The new", "place on 5th"}},
		{"overflow dropped", "one two three four five six seven eight nine ten", 13, []string{"one two three", "four five six", "seven eight"}},
		{"long word hard broken", "Supercalifragilistic", 13, []string{"Supercalifrag", "ilistic"}},
		{"line breaks kept", "a\nb\r\nc\nd", 13, []string{"a", "b", "c"}},
		{"blank line kept", "a\n\nb", 13, []string{"a", "", "b"}},
		{"spaces collapse", "  a    b  ", 13, []string{"a b"}},
		{"wide", "Lunch at noon? The new place on 5th street has a patio", 27, []string{"Lunch at noon? The new", "place on 5th street has a", "patio"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Wrap(tt.in, tt.width, BackContentLines)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Wrap(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseARGB(t *testing.T) {
	tests := []struct {
		in   string
		want uint32
		ok   bool
	}{
		{"#FF825A2C", 0xFF825A2C, true},
		{"#80112233", 0x80112233, true},
		{"112233", 0xFF112233, true},
		{" #ff00ff00 ", 0xFF00FF00, true},
		{"#12345", 0, false},
		{"#GG000000", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			c, ok := ParseARGB(tt.in)
			got := uint32(c.A)<<24 | uint32(c.R)<<16 | uint32(c.G)<<8 | uint32(c.B)
			if ok != tt.ok || (ok && got != tt.want) {
				t.Errorf("ParseARGB(%q) = %08X, %v; want %08X, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestSizesPerTemplate(t *testing.T) {
	tests := []struct {
		tmpl payload.Template
		from Size
		next Size
		wide bool
	}{
		{payload.TemplateFlip, Medium, Small, true},
		{payload.TemplateFlip, Small, Wide, true},
		{payload.TemplateFlip, Wide, Medium, true},
		{payload.TemplateCycle, Small, Wide, true},
		{payload.TemplateIconic, Small, Wide, true},
		{payload.TemplateDefault, Medium, Small, false},
		{payload.TemplateDefault, Small, Medium, false},
		{payload.TemplateDefault, Wide, Medium, false},
	}
	for _, tt := range tests {
		if got := Next(tt.tmpl, tt.from); got != tt.next {
			t.Errorf("Next(%q, %v) = %v, want %v", tt.tmpl, tt.from, got, tt.next)
		}
		if got := Allows(tt.tmpl, Wide); got != tt.wide {
			t.Errorf("Allows(%q, wide) = %v, want %v", tt.tmpl, got, tt.wide)
		}
		if !Allows(tt.tmpl, Small) || !Allows(tt.tmpl, Medium) {
			t.Errorf("Allows(%q) refuses small or medium", tt.tmpl)
		}
	}
}

func TestStateEqual(t *testing.T) {
	base := NewState("", payload.TemplateFlip, map[string]string{payload.Title: "News"})
	base.Apply(&payload.Tile{Template: payload.TemplateFlip, Fields: map[string]string{payload.Count: "3"}})
	other := func(f func(s *State)) *State { c := base.Clone(); f(c); return c }
	for _, tc := range []struct {
		name string
		o    *State
		want bool
	}{
		{"clone", base.Clone(), true},
		{"count", other(func(s *State) { s.Fields[payload.Count] = "4" }), false},
		{"field removed", other(func(s *State) { delete(s.Fields, payload.Count) }), false},
		{"template", other(func(s *State) { s.Template = payload.TemplateCycle }), false},
		{"id", other(func(s *State) { s.ID = "/a.xaml" }), false},
		{"defaults", other(func(s *State) { s.Defaults[payload.Title] = "Other" }), false},
		{"nil", nil, false},
	} {
		if got := base.Equal(tc.o); got != tc.want {
			t.Errorf("%s: Equal = %v, want %v", tc.name, got, tc.want)
		}
	}
	var none *State
	if !none.Equal(nil) {
		t.Error("nil.Equal(nil) = false")
	}
}
