package natsbackend

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/openmpns/openmpns/server/auth"
)

// registryOn is a Registry on node b's auth store, loaded now.
func registryOn(t *testing.T, b *Backend) *auth.Registry {
	t.Helper()
	r, err := auth.NewRegistry(b.Services(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func publicKeyPEM(t *testing.T) []byte {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// TestRegistryWritesKeepConcurrentChanges: the registry of senders is
// shared by every node and every `openmpns service --nats` run, each
// holding a copy that may be behind (its watch's latency; a tool run's
// whole lifetime). A change through one is applied to the stored record,
// revision-checked by the stream, never written from a stale copy: two
// Adds of one name leave the first's credentials working, and a rotation
// through another node keeps the key node a added.
func TestRegistryWritesKeepConcurrentChanges(t *testing.T) {
	nodes, _ := openNodes(t, 2)
	t.Run("AddTwice", func(t *testing.T) {
		ra, rb := registryOn(t, nodes[0]), registryOn(t, nodes[1])
		ca, errA := ra.Add("news")
		_, errB := rb.Add("news") // another operator, at the same time, through the other node
		if errA != nil {
			t.Fatal(errA)
		}
		if !errors.Is(errB, auth.ErrServiceExists) {
			t.Fatalf("the second Add of one name: %v, want ErrServiceExists", errB)
		}
		if _, err := registryOn(t, nodes[0]).CheckSecret(ca.ClientID, ca.ClientSecret); err != nil {
			t.Fatalf("the credentials the first Add printed no longer work: %v", err)
		}
	})
	t.Run("KeyKeptByARotation", func(t *testing.T) {
		ra := registryOn(t, nodes[0])
		if _, err := ra.Add("weather"); err != nil {
			t.Fatal(err)
		}
		rb := registryOn(t, nodes[1])
		kid, err := ra.AddKey("weather", publicKeyPEM(t))
		if err != nil {
			t.Fatal(err)
		}
		// Node b, before its watch reloaded the key node a stored.
		if _, err := rb.RotateSecret("weather"); err != nil {
			t.Fatal(err)
		}
		if s, _ := registryOn(t, nodes[0]).Lookup("weather"); len(s.Keys) != 1 || s.Keys[0].ID != kid {
			t.Fatalf("AddKey %s succeeded, then a rotation through another node wrote the record without it: keys now %v", kid, s.Keys)
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		ra := registryOn(t, nodes[0])
		if _, err := ra.Add("sports"); err != nil {
			t.Fatal(err)
		}
		rb := registryOn(t, nodes[1])
		const n = 4
		var wg sync.WaitGroup
		for i := range n {
			r, p := []*auth.Registry{ra, rb}[i%2], publicKeyPEM(t)
			wg.Add(2)
			go func() {
				defer wg.Done()
				if _, err := r.AddKey("sports", p); err != nil {
					t.Errorf("AddKey: %v", err)
				}
			}()
			go func() {
				defer wg.Done()
				if _, err := r.RotateSecret("sports"); err != nil {
					t.Errorf("RotateSecret: %v", err)
				}
			}()
		}
		wg.Wait()
		if s, _ := registryOn(t, nodes[0]).Lookup("sports"); len(s.Keys) != n || s.Generation != n {
			t.Fatalf("after %d AddKeys and %d rotations through two nodes at once: %d keys, generation %d", n, n, len(s.Keys), s.Generation)
		}
	})
}

// TestRegistryRotationStaysDone: a secret rotated through node a (a leaked
// secret revoked) does not come back when node b, not yet reloaded, adds a
// key: b's change is applied to the stored record, which has the new
// secret's hash.
func TestRegistryRotationStaysDone(t *testing.T) {
	nodes, _ := openNodes(t, 2)
	ra := registryOn(t, nodes[0])
	leaked, err := ra.Add("news")
	if err != nil {
		t.Fatal(err)
	}
	rb := registryOn(t, nodes[1])
	if _, err := ra.RotateSecret("news"); err != nil {
		t.Fatal(err)
	}
	if _, err := rb.AddKey("news", publicKeyPEM(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := registryOn(t, nodes[0]).CheckSecret(leaked.ClientID, leaked.ClientSecret); err == nil {
		t.Fatal("the secret rotated away through node a is valid again after node b added a key")
	}
	if _, err := rb.CheckSecret(leaked.ClientID, leaked.ClientSecret); err == nil {
		t.Fatal("node b, which wrote the record with the new secret, still accepts the one rotated away")
	}
	// A service removed through node a is not brought back by node b.
	if err := ra.Remove("news"); err != nil {
		t.Fatal(err)
	}
	if _, err := rb.RotateSecret("news"); !errors.Is(err, auth.ErrNoSuchService) {
		t.Fatalf("RotateSecret through node b of a service removed through node a: %v, want ErrNoSuchService", err)
	}
	if _, ok := registryOn(t, nodes[0]).Lookup("news"); ok {
		t.Fatal("a change through node b brought back a service removed through node a")
	}
}

// keyHolders names the services whose stored records hold key kid.
func keyHolders(t *testing.T, b *Backend, kid string) []string {
	t.Helper()
	svcs, err := b.Services().Services()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range svcs {
		for _, k := range s.Keys {
			if k.ID == kid {
				names = append(names, s.Name)
			}
		}
	}
	return names
}

// TestAKeyBelongsToOneServiceAcrossNodes: a public key registered to two
// services at once, through two nodes, each of whose registries has not
// heard of the other's write, goes to one only. Each node checked only
// its own copy of the registry, and both writes went in: the key then
// signed tokens for both services. The store now writes a record that
// gains a key only if the whole registry is as it read it (the stream's
// expected last sequence), so of two such writes one is made and the
// other reads again and is refused. A key removed from its service can
// then go to the other.
func TestAKeyBelongsToOneServiceAcrossNodes(t *testing.T) {
	nodes, _ := openNodes(t, 2)
	ra, rb := registryOn(t, nodes[0]), registryOn(t, nodes[1])
	if _, err := ra.Add("alpha"); err != nil {
		t.Fatal(err)
	}
	if _, err := rb.Add("beta"); err != nil {
		t.Fatal(err)
	}
	regs := []*auth.Registry{ra, rb}
	names := []string{"alpha", "beta"}
	const rounds = 20
	for round := range rounds {
		key := publicKeyPEM(t)
		var kids [2]string
		var errs [2]error
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				kids[i], errs[i] = regs[i].AddKey(names[i], key)
			}()
		}
		close(start)
		wg.Wait()
		won := -1
		for i, err := range errs {
			switch {
			case err == nil:
				if won >= 0 {
					t.Fatalf("round %d: the key was added to both %s and %s", round, names[0], names[1])
				}
				won = i
			case !errors.Is(err, auth.ErrKeyExists):
				t.Fatalf("round %d: AddKey %s: %v, want ErrKeyExists", round, names[i], err)
			case !strings.Contains(err.Error(), "belongs to service"):
				t.Fatalf("round %d: AddKey %s: %q does not say which service holds the key", round, names[i], err)
			}
		}
		if won < 0 {
			t.Fatalf("round %d: both AddKeys refused: %v", round, errs)
		}
		kid := kids[won]
		if got := keyHolders(t, nodes[0], kid); !slices.Equal(got, names[won:won+1]) {
			t.Fatalf("round %d: key %s is stored on %v, want [%s]", round, kid, got, names[won])
		}
		// Removed from the winner (through the other node), the key goes
		// to the other service (through the winner's node).
		lost := 1 - won
		if err := regs[lost].RemoveKey(names[won], kid); err != nil {
			t.Fatalf("round %d: RemoveKey: %v", round, err)
		}
		if _, err := regs[won].AddKey(names[lost], key); err != nil {
			t.Fatalf("round %d: AddKey of a key removed from %s to %s: %v", round, names[won], names[lost], err)
		}
		if got := keyHolders(t, nodes[1], kid); !slices.Equal(got, names[lost:lost+1]) {
			t.Fatalf("round %d: key %s is stored on %v, want [%s]", round, kid, got, names[lost])
		}
		if err := regs[won].RemoveKey(names[lost], kid); err != nil {
			t.Fatalf("round %d: RemoveKey: %v", round, err)
		}
	}
	// A service created with keys (a tool may) is checked the same way.
	kid, err := ra.AddKey("alpha", publicKeyPEM(t))
	if err != nil {
		t.Fatal(err)
	}
	alpha, _ := ra.Lookup("alpha")
	st := nodes[1].Services()
	err = st.CreateService(auth.Service{Name: "gamma", ClientID: "svc_3", Keys: alpha.Keys})
	if !errors.Is(err, auth.ErrKeyExists) {
		t.Fatalf("CreateService with a key alpha holds: %v, want ErrKeyExists", err)
	}
	if got := keyHolders(t, nodes[1], kid); !slices.Equal(got, []string{"alpha"}) {
		t.Fatalf("key %s is stored on %v, want [alpha]", kid, got)
	}
	if err := st.CreateService(auth.Service{Name: "gamma", ClientID: "svc_3"}); err != nil {
		t.Fatal(err)
	}
}
