package controls

import "testing"

func TestPreview(t *testing.T) {
	tests := []struct {
		data []byte
		n    int
		want string
	}{
		{nil, 10, "(empty)"},
		{[]byte("hello\nworld"), 20, "hello world"},
		{[]byte("abcdefghij"), 5, "abcd…"},
		{[]byte{0, 1, 0xff}, 30, "00 01 ff"},
		{[]byte{0, 1, 2, 3, 4, 5}, 9, "00 01 02 …"},
		{[]byte{0xc3, 0x28}, 30, "c3 28"},
	}
	for _, tt := range tests {
		if got := Preview(tt.data, tt.n); got != tt.want {
			t.Errorf("Preview(%q, %d) = %q, want %q", tt.data, tt.n, got, tt.want)
		}
	}
}

func TestClip(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want string
	}{
		{"", 3, ""},
		{"abc", 3, "abc"},
		{"abcd", 3, "ab…"},
		{"ab cd", 4, "ab…"},
		{"héllo wörld", 6, "héllo…"},
		{"abc", 1, "…"},
	}
	for _, tt := range tests {
		if got := Clip(tt.s, tt.n); got != tt.want {
			t.Errorf("Clip(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
		}
	}
}
