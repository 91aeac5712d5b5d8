package posixlocale

import "testing"

func TestIsPOSIX(t *testing.T) {
	for v, want := range map[string]bool{"C": true, "POSIX": true, "C.UTF-8": true, "": false, "en_US.UTF-8": false, "de_DE": false, "Ca": false} {
		if isPOSIX(v) != want {
			t.Errorf("%q: %v", v, !want)
		}
	}
}
