package store

import (
	"path/filepath"
	"testing"

	"github.com/openmpns/openmpns/server/backend"
	"github.com/openmpns/openmpns/server/backend/backendtest"
)

// The embedded backend passes the conformance suite of package backend, as
// one node.
func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) []backend.Backend {
		e, err := Open(filepath.Join(t.TempDir(), "db"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return []backend.Backend{e}
	})
}
