package toast

import (
	"testing"
	"unicode/utf8"
)

func TestLine(t *testing.T) {
	tests := []struct {
		name         string
		text1, text2 string
		n            int
		want1, want2 string
	}{
		{"both fit", "Alice", "Lunch at noon?", 40, "Alice", "Lunch at noon?"},
		{"text2 cut", "Alice", "Are you coming to the meeting at three o'clock today?", 40,
			"Alice", "Are you coming to the meeting at…"},
		{"exactly full", "12345", "7890123456789012345678901234567890", 40,
			"12345", "7890123456789012345678901234567890"},
		{"one over", "12345", "78901234567890123456789012345678901", 40,
			"12345", "789012345678901234567890123456789…"},
		{"text1 fills the line", "A very long title that goes on and on and on", "body", 40,
			"A very long title that goes on and on a…", ""},
		{"text1 leaves no room for text2", "123456789012345678901234567890123456789", "body", 40,
			"123456789012345678901234567890123456789", ""},
		{"text1 only", "Reminder", "", 40, "Reminder", ""},
		{"text2 only", "", "Just a body", 40, "", "Just a body"},
		{"text2 only, long", "", "0123456789012345678901234567890123456789XYZ", 40,
			"", "012345678901234567890123456789012345678…"},
		{"white space collapses", " Alice\n", "Lunch\t at\r\nnoon? ", 40, "Alice", "Lunch at noon?"},
		{"runes not bytes", "Zoë", "ééééééééééééééééééééééééééééééééééééééééé", 20, "Zoë", "ééééééééééééééé…"},
		{"empty", "", "", 40, "", ""},
		{"no room", "a", "b", 0, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got1, got2 := Line(tt.text1, tt.text2, tt.n)
			if got1 != tt.want1 || got2 != tt.want2 {
				t.Errorf("Line(%q, %q, %d) = %q, %q; want %q, %q", tt.text1, tt.text2, tt.n, got1, got2, tt.want1, tt.want2)
			}
			n := utf8.RuneCountInString(got1) + utf8.RuneCountInString(got2)
			if got1 != "" && got2 != "" {
				n++
			}
			if n > max(tt.n, 0) {
				t.Errorf("line is %d characters, more than %d", n, tt.n)
			}
		})
	}
}
