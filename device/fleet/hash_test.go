package fleet

import (
	"hash/fnv"
	"testing"
)

// TestFNV64aMatchesHashFNV: the fleet's allocation-free FNV-1a gives
// hash/fnv's New64a sums.
func TestFNV64aMatchesHashFNV(t *testing.T) {
	for _, s := range []string{"", "a", "18ec47b1fee4768c", "0123456789abcdef0123456789abcdef", "\xff\x00é"} {
		h := fnv.New64a()
		h.Write([]byte(s))
		if got, want := fnv64a(s), h.Sum64(); got != want {
			t.Errorf("fnv64a(%q) = %#x, want %#x", s, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { fnv64a("18ec47b1fee4768c") }); n != 0 {
		t.Errorf("fnv64a allocates %v times", n)
	}
}
