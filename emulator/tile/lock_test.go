package tile

import (
	"reflect"
	"strings"
	"testing"

	"github.com/openmpns/openmpns/shared/payload"
)

func TestLockScreenFields(t *testing.T) {
	tests := []struct {
		name      string
		tmpl      payload.Template
		fields    map[string]string
		wantText  []string
		wantCount int
	}{
		{"flip: wide back content", payload.TemplateFlip, map[string]string{
			payload.WideBackContent: "Lunch at noon? The new place on 5th street has a patio", payload.Count: "3",
			payload.BackContent: "medium only", payload.Title: "Mail"},
			[]string{"Lunch at noon? The new", "place on 5th street has a", "patio"}, 3},
		{"flip: back content is not shown", payload.TemplateFlip, map[string]string{payload.BackContent: "medium only"}, nil, 0},
		{"iconic: three lines", payload.TemplateIconic, map[string]string{
			payload.WideContent1: "Lunch with Ana", payload.WideContent2: "12:30 Harbour Café", payload.WideContent3: "Tomorrow: no events", payload.Count: "2"},
			[]string{"Lunch with Ana", "12:30 Harbour Café", "Tomorrow: no events"}, 2},
		{"iconic: a gap stays, the end goes", payload.TemplateIconic, map[string]string{
			payload.WideContent1: "one", payload.WideContent3: "three"}, []string{"one", "", "three"}, 0},
		{"iconic: a line is cut as the wide tile cuts it", payload.TemplateIconic, map[string]string{
			payload.WideContent1: strings.Repeat("W", 2900), payload.WideContent2: "a  b\nc", payload.WideContent3: "Lunch at the new place on 5th street, the one with the patio"},
			[]string{strings.Repeat("W", WideContentChars), "a b c", "Lunch at the new place on 5th street, t"}, 0},
		{"iconic: title is not text", payload.TemplateIconic, map[string]string{payload.Title: "Mail", payload.WideContent1: "  hi\nthere "}, []string{"hi there"}, 0},
		{"cycle: count only", payload.TemplateCycle, map[string]string{payload.Title: "Photos", payload.Count: "120"}, nil, 99},
		{"wp7.5: count only", payload.TemplateDefault, map[string]string{payload.BackContent: "old", payload.Count: "0"}, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewState("", tt.tmpl, nil)
			s.Apply(&payload.Tile{Template: tt.tmpl, Fields: tt.fields})
			if got := s.LockText(); !reflect.DeepEqual(got, tt.wantText) {
				t.Errorf("LockText() = %q, want %q", got, tt.wantText)
			}
			if got := s.LockCount(); got != tt.wantCount {
				t.Errorf("LockCount() = %d, want %d", got, tt.wantCount)
			}
		})
	}
}
