package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// sharedStores are the Stores two Registries can share in one process:
// MemStore, and a BoltStore (what `openmpns service` does on a stopped
// server's data file while another Registry of the same process has it
// open). NATS has its own tests (natsbackend).
func sharedStores(t *testing.T) map[string]func(t *testing.T) Store {
	return map[string]func(t *testing.T) Store{
		"Mem": func(*testing.T) Store { return NewMemStore() },
		"Bolt": func(t *testing.T) Store {
			db := openBolt(t, filepath.Join(t.TempDir(), "s.db"))
			t.Cleanup(func() { db.Close() })
			st, err := NewBoltStore(db)
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
	}
}

// twoRegistries returns two Registries on st, each loaded now.
func twoRegistries(t *testing.T, st Store) (a, b *Registry) {
	t.Helper()
	var err error
	if a, err = NewRegistry(st, nil); err != nil {
		t.Fatal(err)
	}
	if b, err = NewRegistry(st, nil); err != nil {
		t.Fatal(err)
	}
	return a, b
}

// fresh is a Registry loaded from st now: what a restart, or another node,
// serves.
func fresh(t *testing.T, st Store) *Registry {
	t.Helper()
	r, err := NewRegistry(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func newPEM(t *testing.T) []byte {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pemOf(t, pub)
}

// TestRegistriesSharingAStoreLoseNoChange: two Registries on one Store
// (two nodes, a node and a tool), each behind on what the other wrote,
// lose none of each other's changes: each change is applied to the stored
// record, revision-checked, and never to a copy of it that may be stale.
func TestRegistriesSharingAStoreLoseNoChange(t *testing.T) {
	for storeName, open := range sharedStores(t) {
		t.Run(storeName, func(t *testing.T) {
			t.Run("AddTwice", func(t *testing.T) {
				st := open(t)
				ra, rb := twoRegistries(t, st)
				ca, err := ra.Add("news")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := rb.Add("news"); !errors.Is(err, ErrServiceExists) {
					t.Fatalf("the second Add of one name, through another registry: %v, want ErrServiceExists", err)
				}
				if _, err := fresh(t, st).CheckSecret(ca.ClientID, ca.ClientSecret); err != nil {
					t.Fatalf("the first Add's credentials: %v", err)
				}
				if _, err := rb.CheckSecret(ca.ClientID, ca.ClientSecret); err != nil {
					t.Fatalf("the registry whose Add was refused does not serve what is stored: %v", err)
				}
			})
			t.Run("KeyKeptByARotation", func(t *testing.T) {
				st := open(t)
				rb, kid := keyAddedThroughA(t, st)
				rot, err := rb.RotateSecret("weather") // rb has not reloaded the key
				if err != nil {
					t.Fatal(err)
				}
				f := fresh(t, st)
				if s, _ := f.Lookup("weather"); len(s.Keys) != 1 || s.Keys[0].ID != kid || s.Generation != 1 {
					t.Fatalf("AddKey %s, then a rotation through another registry: keys %v, generation %d", kid, s.Keys, s.Generation)
				}
				if _, err := f.CheckSecret(rot.ClientID, rot.ClientSecret); err != nil {
					t.Fatalf("the rotated secret: %v", err)
				}
				if s, _ := rb.Lookup("weather"); len(s.Keys) != 1 {
					t.Fatalf("the rotating registry serves keys %v, not the record it wrote", s.Keys)
				}
			})
			t.Run("RotationStaysDone", func(t *testing.T) {
				st := open(t)
				ra, rb := twoRegistries(t, st)
				leaked, err := ra.Add("news")
				if err != nil {
					t.Fatal(err)
				}
				rb.Reload()
				rot, err := ra.RotateSecret("news")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := rb.AddKey("news", newPEM(t)); err != nil { // rb still holds the leaked secret's hash
					t.Fatal(err)
				}
				for name, r := range map[string]*Registry{"fresh": fresh(t, st), "the one that added the key": rb} {
					if _, err := r.CheckSecret(leaked.ClientID, leaked.ClientSecret); !errors.Is(err, ErrWrongSecret) {
						t.Fatalf("%s registry: the secret rotated away through another registry: %v, want ErrWrongSecret", name, err)
					}
					if _, err := r.CheckSecret(rot.ClientID, rot.ClientSecret); err != nil {
						t.Fatalf("%s registry: the rotated secret: %v", name, err)
					}
				}
			})
			t.Run("RemovedStaysRemoved", func(t *testing.T) {
				st := open(t)
				ra, rb := twoRegistries(t, st)
				c, err := ra.Add("news")
				if err != nil {
					t.Fatal(err)
				}
				rb.Reload()
				if err := ra.Remove("news"); err != nil {
					t.Fatal(err)
				}
				if _, err := rb.RotateSecret("news"); !errors.Is(err, ErrNoSuchService) {
					t.Fatalf("RotateSecret of a service removed through another registry: %v, want ErrNoSuchService", err)
				}
				if _, err := rb.AddKey("news", newPEM(t)); !errors.Is(err, ErrNoSuchService) {
					t.Fatalf("AddKey to a service removed through another registry: %v, want ErrNoSuchService", err)
				}
				if _, ok := fresh(t, st).Lookup("news"); ok {
					t.Fatal("a change through another registry brought a removed service back")
				}
				if _, err := rb.CheckSecret(c.ClientID, c.ClientSecret); err == nil {
					t.Fatal("the registry told the service is gone still accepts its secret")
				}
				if err := rb.Remove("news"); !errors.Is(err, ErrNoSuchService) {
					t.Fatalf("Remove of a service removed elsewhere: %v, want ErrNoSuchService", err)
				}
			})
			t.Run("KeyRemovedThroughAStaleRegistry", func(t *testing.T) {
				st := open(t)
				rb, kid := keyAddedThroughA(t, st)
				if err := rb.RemoveKey("weather", kid); err != nil { // rb never saw the key: the stored record has it
					t.Fatalf("RemoveKey of a key added through another registry: %v", err)
				}
				if s, _ := fresh(t, st).Lookup("weather"); len(s.Keys) != 0 {
					t.Fatalf("keys after RemoveKey: %v", s.Keys)
				}
			})
			t.Run("Concurrent", func(t *testing.T) {
				st := open(t)
				ra, rb := twoRegistries(t, st)
				if _, err := ra.Add("weather"); err != nil {
					t.Fatal(err)
				}
				rb.Reload()
				const keys = 12 // under MaxKeys
				var wg sync.WaitGroup
				errs := make(chan error, 2*keys)
				for i := range keys {
					r := []*Registry{ra, rb}[i%2]
					p := newPEM(t)
					wg.Add(2)
					go func() {
						defer wg.Done()
						if _, err := r.AddKey("weather", p); err != nil {
							errs <- fmt.Errorf("AddKey: %w", err)
						}
					}()
					go func() {
						defer wg.Done()
						if _, err := r.RotateSecret("weather"); err != nil {
							errs <- fmt.Errorf("RotateSecret: %w", err)
						}
					}()
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					t.Error(err)
				}
				if s, _ := fresh(t, st).Lookup("weather"); len(s.Keys) != keys || s.Generation != keys {
					t.Fatalf("after %d AddKeys and %d rotations through two registries: %d keys, generation %d", keys, keys, len(s.Keys), s.Generation)
				}
			})
		})
	}
}

// conflictingStore reports every service update as made stale by another
// writer.
type conflictingStore struct {
	*MemStore
	updates int
}

func (s *conflictingStore) UpdateService(Service, uint64) error {
	s.updates++
	return ErrRevisionMismatch
}

// TestAChangeThatAlwaysLosesGivesUp: a change that loses the revision
// check every time is tried a bounded number of times, then fails with
// ErrRevisionMismatch, changing nothing.
func TestAChangeThatAlwaysLosesGivesUp(t *testing.T) {
	st := &conflictingStore{MemStore: NewMemStore()}
	r, err := NewRegistry(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.Add("news")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.RotateSecret("news"); !errors.Is(err, ErrRevisionMismatch) {
		t.Fatalf("RotateSecret that always loses: %v, want ErrRevisionMismatch", err)
	}
	if st.updates != maxAttempts {
		t.Fatalf("%d attempts, want %d", st.updates, maxAttempts)
	}
	if _, err := r.CheckSecret(c.ClientID, c.ClientSecret); err != nil {
		t.Fatalf("the secret a failed rotation left: %v", err)
	}
}

// keyAddedThroughA makes two registries on st, adds "weather" through the
// first (the second reloads it) and then a key through the first only;
// it returns the second, which has not read the key, and the key's id.
func keyAddedThroughA(t *testing.T, st Store) (rb *Registry, kid string) {
	t.Helper()
	ra, rb := twoRegistries(t, st)
	if _, err := ra.Add("weather"); err != nil {
		t.Fatal(err)
	}
	rb.Reload()
	kid, err := ra.AddKey("weather", newPEM(t))
	if err != nil {
		t.Fatal(err)
	}
	return rb, kid
}

// TestAKeyRemovedElsewhereCanBeAddedToAnotherService: registry b read that
// service news holds a key; the key is removed from news through registry
// a, and b, not reloaded since, adds it to weather: b's copy said news held
// it and refused (ErrKeyExists) until b reloaded. b now reads news again
// before refusing, and serves what it read; a key news still holds is
// refused.
func TestAKeyRemovedElsewhereCanBeAddedToAnotherService(t *testing.T) {
	for storeName, open := range sharedStores(t) {
		t.Run(storeName, func(t *testing.T) {
			st := open(t)
			ra, rb := twoRegistries(t, st)
			for _, n := range []string{"news", "weather"} {
				if _, err := ra.Add(n); err != nil {
					t.Fatal(err)
				}
			}
			moved, kept := newPEM(t), newPEM(t)
			kid, err := ra.AddKey("news", moved)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ra.AddKey("news", kept); err != nil {
				t.Fatal(err)
			}
			if err := rb.Reload(); err != nil {
				t.Fatal(err)
			}
			if err := ra.RemoveKey("news", kid); err != nil {
				t.Fatal(err)
			}
			if _, err := rb.AddKey("weather", moved); err != nil {
				t.Fatalf("AddKey of a key removed from news through another registry: %v", err)
			}
			if s, _ := rb.Lookup("news"); len(s.Keys) != 1 {
				t.Fatalf("registry b serves news with keys %v, want the one it still holds", s.Keys)
			}
			if _, err := rb.AddKey("weather", kept); !errors.Is(err, ErrKeyExists) || !strings.Contains(err.Error(), `"news"`) {
				t.Fatalf("AddKey of a key news holds: %v, want ErrKeyExists naming news", err)
			}
		})
	}
}
