package proccpu

import (
	"crypto/sha256"
	"testing"
)

// Work done shows in Time, which never goes backwards.
func TestTimeCountsWork(t *testing.T) {
	t0, err := Time()
	if err != nil {
		t.Fatal(err)
	}
	if t0 < 0 {
		t.Fatalf("Time() = %v", t0)
	}
	// Hash until the kernel has counted it (its accounting is by ticks):
	// at most a few milliseconds of work; the bound only ends a loop that
	// would otherwise never stop.
	sum := sha256.Sum256(nil)
	for i := 0; i < 50_000_000; i++ {
		sum = sha256.Sum256(sum[:])
		if i%1000 != 0 {
			continue
		}
		t1, err := Time()
		if err != nil {
			t.Fatal(err)
		}
		if t1 < t0 {
			t.Fatalf("Time went backwards: %v, then %v", t0, t1)
		}
		if t1 > t0 {
			return
		}
	}
	t.Fatalf("Time stayed at %v through 50 million hashes", t0)
}
