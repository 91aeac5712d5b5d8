package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func openBolt(t *testing.T, path string) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// storeContract runs the Store contract against st.
func storeContract(t *testing.T, st Store) {
	if svcs, err := st.Services(); err != nil || len(svcs) != 0 {
		t.Fatalf("empty store: %v, %v", svcs, err)
	}
	if _, ok, err := st.ServerKey(); ok || err != nil {
		t.Fatalf("empty store has a server key: %v %v", ok, err)
	}
	if _, _, ok, err := st.Service("b"); ok || err != nil {
		t.Fatalf("empty store has service b: %v %v", ok, err)
	}
	s := Service{Name: "b", ClientID: "svc_b", SecretHash: []byte("h"), Keys: []Key{{ID: "k", Alg: AlgEdDSA, PKIX: []byte{1, 2}}}}
	if err := st.CreateService(s); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateService(Service{Name: "a", ClientID: "svc_a"}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateService(Service{Name: "b", ClientID: "svc_other"}); !errors.Is(err, ErrServiceExists) {
		t.Fatalf("CreateService of a name taken: %v, want ErrServiceExists", err)
	}
	s.Keys[0].PKIX[0] = 9 // the store must not share the caller's memory
	got, rev, ok, err := st.Service("b")
	if err != nil || !ok || got.ClientID != "svc_b" || got.Keys[0].PKIX[0] != 1 {
		t.Fatalf("Service(b) = %+v %v %v", got, ok, err)
	}
	s.Generation = 3
	if err := st.UpdateService(s, rev); err != nil {
		t.Fatal(err)
	}
	_, rev2, _, err := st.Service("b")
	if err != nil || rev2 == rev {
		t.Fatalf("revision after an update: %d (before %d), %v; want another", rev2, rev, err)
	}
	stale := s
	stale.Generation = 1
	if err := st.UpdateService(stale, rev); !errors.Is(err, ErrRevisionMismatch) {
		t.Fatalf("UpdateService with the revision before the last update: %v, want ErrRevisionMismatch", err)
	}
	if err := st.UpdateService(Service{Name: "absent", ClientID: "svc_x"}, rev2); !errors.Is(err, ErrNoSuchService) {
		t.Fatalf("UpdateService of an absent service: %v, want ErrNoSuchService", err)
	}
	all, err := st.Services()
	if err != nil || len(all) != 2 {
		t.Fatalf("Services = %v, %v", all, err)
	}
	byName := map[string]Service{all[0].Name: all[0], all[1].Name: all[1]}
	if b := byName["b"]; b.Generation != 3 || b.Keys[0].PKIX[0] != 9 || string(b.SecretHash) != "h" {
		t.Errorf("b = %+v", b)
	}
	_, aRev, _, _ := st.Service("a")
	if err := st.UpdateService(Service{Name: "a", ClientID: "svc_a", Generation: 1}, aRev); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteService("a", aRev); !errors.Is(err, ErrRevisionMismatch) {
		t.Fatalf("DeleteService with the revision before the last update: %v, want ErrRevisionMismatch", err)
	}
	_, aRev, _, _ = st.Service("a")
	if err := st.DeleteService("a", aRev); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteService("a", aRev); !errors.Is(err, ErrNoSuchService) {
		t.Errorf("deleting an absent service: %v, want ErrNoSuchService", err)
	}
	if got, _ := st.Services(); len(got) != 1 || got[0].Name != "b" {
		t.Errorf("after delete: %+v", got)
	}
	if err := st.CreateService(Service{Name: "a", ClientID: "svc_a2"}); err != nil {
		t.Errorf("CreateService of a name deleted: %v", err)
	}
	k := ServerKey{ID: "kid", Seed: []byte("0123456789abcdef0123456789abcdef"), Created: time.Unix(5, 0).UTC()}
	if err := st.PutServerKey(k); err != nil {
		t.Fatal(err)
	}
	if k2, ok, err := st.ServerKey(); !ok || err != nil || k2.ID != "kid" || string(k2.Seed) != string(k.Seed) || !k2.Created.Equal(k.Created) {
		t.Errorf("ServerKey = %+v %v %v", k2, ok, err)
	}
}

func TestMemStoreContract(t *testing.T) { storeContract(t, NewMemStore()) }

func TestBoltStoreContract(t *testing.T) {
	db := openBolt(t, filepath.Join(t.TempDir(), "s.db"))
	defer db.Close()
	st, err := NewBoltStore(db)
	if err != nil {
		t.Fatal(err)
	}
	storeContract(t, st)
}

// TestBoltStorePersists runs a registry, an issuer and a verifier on a real
// bbolt file shared with another bucket, closes it, opens it again and checks
// that everything survived.
func TestBoltStorePersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "openmpns.db")
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }

	db := openBolt(t, path)
	// Someone else's bucket in the same file stays untouched.
	if err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("devices"))
		if err != nil {
			return err
		}
		return b.Put([]byte("d1"), []byte("x"))
	}); err != nil {
		t.Fatal(err)
	}
	st, err := NewBoltStore(db)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := NewRegistry(st, clock)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := NewIssuer(st, reg, testOrigin, clock)
	if err != nil {
		t.Fatal(err)
	}
	weather, err := reg.Add("weather")
	if err != nil {
		t.Fatal(err)
	}
	gone, _ := reg.Add("gone")
	_ = gone
	if err := reg.Remove("gone"); err != nil {
		t.Fatal(err)
	}
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	kid, err := reg.AddKey("weather", pemOf(t, edKey.Public()))
	if err != nil {
		t.Fatal(err)
	}
	weather, err = reg.RotateSecret("weather")
	if err != nil {
		t.Fatal(err)
	}
	access, _, err := iss.IssueToken("weather", now)
	if err != nil {
		t.Fatal(err)
	}
	serverKid := iss.KeyID()
	// NewBoltStore again on the same db is harmless.
	if _, err := NewBoltStore(db); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openBolt(t, path)
	defer db.Close()
	st, err = NewBoltStore(db)
	if err != nil {
		t.Fatal(err)
	}
	reg, err = NewRegistry(st, clock)
	if err != nil {
		t.Fatal(err)
	}
	iss, err = NewIssuer(st, reg, testOrigin, clock)
	if err != nil {
		t.Fatal(err)
	}
	v := NewVerifier(reg, iss)
	if iss.KeyID() != serverKid {
		t.Error("the server key was regenerated")
	}
	if l := reg.List(); len(l) != 1 || l[0].Name != "weather" || len(l[0].Keys) != 1 || l[0].Keys[0].ID != kid || l[0].Generation != 1 {
		t.Errorf("List after reopen: %+v", l)
	}
	if svc, err := reg.CheckSecret(weather.ClientID, weather.ClientSecret); err != nil || svc.Name != "weather" {
		t.Errorf("CheckSecret after reopen: %q %v", svc.Name, err)
	}
	if svc, err := v.VerifyToken(access, now.Add(time.Hour)); err != nil || svc != "weather" {
		t.Errorf("access token after reopen: %q %v", svc, err)
	}
	self := sign(t, signingEdDSA, edKey, kid, map[string]any{"iss": weather.ClientID, "aud": testOrigin, "exp": now.Add(time.Minute).Unix()})
	if svc, err := v.VerifyToken(self, now); err != nil || svc != "weather" {
		t.Errorf("self-signed after reopen: %q %v", svc, err)
	}
	if err := db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket([]byte("devices")).Get([]byte("d1")); string(v) != "x" {
			return errors.New("other bucket changed")
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
}

// TestBoltStoreConcurrentWriters: registry writes from many goroutines while
// another writer uses the same db (as the server store's commit loop does).
func TestBoltStoreConcurrentWriters(t *testing.T) {
	db := openBolt(t, filepath.Join(t.TempDir(), "c.db"))
	defer db.Close()
	st, err := NewBoltStore(db)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := NewRegistry(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("s%02d", i)
			if _, err := reg.Add(name); err != nil {
				t.Error(err)
			}
			if _, err := reg.RotateSecret(name); err != nil {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			db.Update(func(tx *bolt.Tx) error {
				b, err := tx.CreateBucketIfNotExists([]byte("other"))
				if err != nil {
					return err
				}
				return b.Put([]byte{byte(i)}, []byte("v"))
			})
		}()
	}
	wg.Wait()
	svcs, err := st.Services()
	if err != nil || len(svcs) != 16 {
		t.Fatalf("%d services, %v", len(svcs), err)
	}
	for _, s := range svcs {
		if s.Generation != 1 {
			t.Errorf("%s generation %d", s.Name, s.Generation)
		}
	}
}

// TestBoltStoreDamaged: a record that is not JSON is an error.
func TestBoltStoreDamaged(t *testing.T) {
	db := openBolt(t, filepath.Join(t.TempDir(), "d.db"))
	defer db.Close()
	st, _ := NewBoltStore(db)
	db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAuth).Bucket(bucketServices).Put([]byte("x"), []byte("{"))
	})
	if _, err := st.Services(); err == nil {
		t.Error("damaged record read")
	}
	if _, err := NewRegistry(st, nil); err == nil {
		t.Error("registry loaded a damaged store")
	}
	db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAuth).Bucket(bucketServices).Put([]byte("x"), []byte(`{"name":"y"}`))
	})
	if _, err := st.Services(); err == nil {
		t.Error("record under the wrong key read")
	}
}

// failingStore fails every write while fail is set.
type failingStore struct {
	*MemStore
	fail bool
}

var errDisk = errors.New("disk full")

func (s *failingStore) CreateService(v Service) error {
	if s.fail {
		return errDisk
	}
	return s.MemStore.CreateService(v)
}

func (s *failingStore) UpdateService(v Service, rev uint64) error {
	if s.fail {
		return errDisk
	}
	return s.MemStore.UpdateService(v, rev)
}

func (s *failingStore) DeleteService(name string, rev uint64) error {
	if s.fail {
		return errDisk
	}
	return s.MemStore.DeleteService(name, rev)
}

func (s *failingStore) PutServerKey(k ServerKey) error {
	if s.fail {
		return errDisk
	}
	return s.MemStore.PutServerKey(k)
}

func (s *failingStore) CreateServerKey(k ServerKey) (ServerKey, error) {
	if s.fail {
		return ServerKey{}, errDisk
	}
	return s.MemStore.CreateServerKey(k)
}

// TestStoreFailureLeavesRegistryUnchanged: a change the store refused is not
// made in memory either.
func TestStoreFailureLeavesRegistryUnchanged(t *testing.T) {
	st := &failingStore{MemStore: NewMemStore()}
	reg, _ := NewRegistry(st, nil)
	c, err := reg.Add("weather")
	if err != nil {
		t.Fatal(err)
	}
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	kid, _ := reg.AddKey("weather", pemOf(t, k.Public()))
	st.fail = true
	if _, err := reg.Add("news"); !errors.Is(err, errDisk) {
		t.Errorf("Add: %v", err)
	}
	if _, err := reg.RotateSecret("weather"); !errors.Is(err, errDisk) {
		t.Errorf("RotateSecret: %v", err)
	}
	_, k2, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := reg.AddKey("weather", pemOf(t, k2.Public())); !errors.Is(err, errDisk) {
		t.Errorf("AddKey: %v", err)
	}
	if err := reg.RemoveKey("weather", kid); !errors.Is(err, errDisk) {
		t.Errorf("RemoveKey: %v", err)
	}
	if err := reg.Remove("weather"); !errors.Is(err, errDisk) {
		t.Errorf("Remove: %v", err)
	}
	if _, err := NewIssuer(st, reg, testOrigin, nil); !errors.Is(err, errDisk) {
		t.Errorf("NewIssuer with no key and a failing store: %v", err)
	}
	l := reg.List()
	if len(l) != 1 || l[0].Name != "weather" || len(l[0].Keys) != 1 || l[0].Generation != 0 {
		t.Errorf("registry changed: %+v", l)
	}
	if _, err := reg.CheckSecret(c.ClientID, c.ClientSecret); err != nil {
		t.Errorf("secret changed: %v", err)
	}
	// What the registry holds is what a restart would load.
	st.fail = false
	reg2, _ := NewRegistry(st, nil)
	if l2 := reg2.List(); len(l2) != 1 || len(l2[0].Keys) != 1 {
		t.Errorf("store: %+v", l2)
	}
}
