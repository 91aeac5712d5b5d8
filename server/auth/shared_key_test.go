package auth

import (
	"testing"
	"time"
)

// Servers that share a store (a cluster) agree on one signing key, even
// when they start together, and one that rotates it is followed by the
// others on Reload.
func TestServersSharingAStoreAgreeOnTheKey(t *testing.T) {
	st := NewMemStore()
	reg, err := NewRegistry(st, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewIssuer(st, reg, "https://push.example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewIssuer(st, reg, "https://push.example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.KeyID() != b.KeyID() {
		t.Fatalf("two servers on one store hold keys %s and %s", a.KeyID(), b.KeyID())
	}
	if err := a.RotateKey(time.Now()); err != nil {
		t.Fatal(err)
	}
	if a.KeyID() == b.KeyID() {
		t.Fatal("rotation did not change the key")
	}
	if err := b.Reload(); err != nil {
		t.Fatal(err)
	}
	if a.KeyID() != b.KeyID() {
		t.Fatalf("after Reload: %s and %s", a.KeyID(), b.KeyID())
	}
}
