//go:build linux

package chaostest

import (
	"os"
	"strconv"
	"testing"
)

func TestMain(m *testing.M) { Main(m) }

// long reports whether the long variants run (make chaos sets
// OPENMPNS_CHAOS=long); the short ones run in make test.
func long() bool { return os.Getenv("OPENMPNS_CHAOS") == "long" }

func envInt(name string) int {
	v, _ := strconv.Atoi(os.Getenv(name))
	return v
}
