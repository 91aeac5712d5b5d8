package auth

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// Store persists services and the server's token-signing key. Every method
// must be safe for concurrent use; a write must be durable when it returns
// nil. Values are passed and returned by value; implementations must not
// retain or share the slices inside them (the Registry never mutates what
// it gave).
//
// Several writers may share one Store (the nodes of a cluster and the
// `openmpns service` tool on NATS; two Registries in one process), so its
// service writes are conditional: a service is created only if its name is
// free, and replaced or deleted only if it is still as it was read (its
// revision, returned with each read, is unchanged). A writer whose
// condition fails reads the service again and applies its change to what
// it finds (the Registry does, a bounded number of times), so no change
// made elsewhere between its read and its write is lost: a key added
// through one writer is not dropped by a rotation through another, and a
// secret rotated away does not come back with another writer's copy.
type Store interface {
	// Service returns the named service and its revision, a number that
	// changes whenever the stored service does; ok is false if there is
	// none.
	Service(name string) (s Service, rev uint64, ok bool, err error)
	// Services returns every service, in any order.
	Services() ([]Service, error)
	// CreateService stores s if no service is named s.Name, else fails
	// with ErrServiceExists.
	CreateService(s Service) error
	// UpdateService replaces the service s.Name if its revision is still
	// rev; else it fails with ErrRevisionMismatch (it changed since it was
	// read) or ErrNoSuchService (it is gone).
	UpdateService(s Service, rev uint64) error
	// DeleteService removes the named service if its revision is still
	// rev; else it fails with ErrRevisionMismatch or ErrNoSuchService.
	DeleteService(name string, rev uint64) error
	// ServerKey returns the server's signing key; ok is false if none was stored yet.
	ServerKey() (k ServerKey, ok bool, err error)
	// PutServerKey stores (replaces) the server's signing key.
	PutServerKey(k ServerKey) error
}

// MemStore is a Store in memory, for tests and throwaway servers.
type MemStore struct {
	mu       sync.Mutex
	services map[string]memService
	rev      uint64 // the last revision given
	key      *ServerKey
}

type memService struct {
	s   Service
	rev uint64
}

var _ Store = (*MemStore)(nil)

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{services: map[string]memService{}} }

// Service implements Store. Revisions are drawn from one counter, never
// reused.
func (m *MemStore) Service(name string) (Service, uint64, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.services[name]
	if !ok {
		return Service{}, 0, false, nil
	}
	return r.s.clone(), r.rev, true, nil
}

// put stores s under a new revision; the caller holds mu.
func (m *MemStore) put(s Service) {
	m.rev++
	m.services[s.Name] = memService{s: s.clone(), rev: m.rev}
}

// check reports why name at rev may not be written; the caller holds mu.
func (m *MemStore) check(name string, rev uint64) error {
	r, ok := m.services[name]
	switch {
	case !ok:
		return fmt.Errorf("%w: %q", ErrNoSuchService, name)
	case r.rev != rev:
		return fmt.Errorf("%w: %q", ErrRevisionMismatch, name)
	}
	return nil
}

// CreateService implements Store.
func (m *MemStore) CreateService(s Service) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.services[s.Name]; ok {
		return fmt.Errorf("%w: %q", ErrServiceExists, s.Name)
	}
	m.put(s)
	return nil
}

// UpdateService implements Store.
func (m *MemStore) UpdateService(s Service, rev uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(s.Name, rev); err != nil {
		return err
	}
	m.put(s)
	return nil
}

// DeleteService implements Store.
func (m *MemStore) DeleteService(name string, rev uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(name, rev); err != nil {
		return err
	}
	delete(m.services, name)
	return nil
}

// Services implements Store; the result is sorted by name.
func (m *MemStore) Services() ([]Service, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Service, 0, len(m.services))
	for _, r := range m.services {
		out = append(out, r.s.clone())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// ServerKey implements Store.
func (m *MemStore) ServerKey() (ServerKey, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.key == nil {
		return ServerKey{}, false, nil
	}
	return m.key.clone(), true, nil
}

// PutServerKey implements Store.
func (m *MemStore) PutServerKey(k ServerKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := k.clone()
	m.key = &c
	return nil
}

// Bucket layout of BoltStore: bucket "auth" holds the key "server_key"
// (JSON ServerKey) and the nested bucket "services" (service name → JSON Service).
var (
	bucketAuth     = []byte("auth")
	bucketServices = []byte("services")
	keyServerKey   = []byte("server_key")
)

// BoltStore is a Store in its own bucket ("auth") of a bbolt database that
// may be shared with other users (the server's store file). It writes with
// plain bbolt transactions, which bbolt serialises with any other writer
// (such as the server store's group-commit loop); each write is durable
// (fsync) when it returns. A service's revision is a digest of its stored
// record (the first 8 bytes of its SHA-256): the record is the whole of
// the service, so a revision that matches is a record unchanged, and the
// file's layout is as before. The file holds the server's private signing
// key: keep it readable by the server only (the server store creates it
// 0600).
type BoltStore struct{ db *bolt.DB }

var _ Store = (*BoltStore)(nil)

// NewBoltStore creates the "auth" bucket in db if needed. db stays owned by
// the caller, who closes it.
func NewBoltStore(db *bolt.DB) (*BoltStore, error) {
	err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketAuth)
		if err != nil {
			return err
		}
		_, err = b.CreateBucketIfNotExists(bucketServices)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("auth: create bucket: %w", err)
	}
	return &BoltStore{db: db}, nil
}

// boltRev is the revision of a stored record.
func boltRev(v []byte) uint64 {
	h := sha256.Sum256(v)
	return binary.BigEndian.Uint64(h[:8])
}

// decodeService decodes the record stored under key k.
func decodeService(k, v []byte) (Service, error) {
	var s Service
	if err := json.Unmarshal(v, &s); err != nil {
		return Service{}, fmt.Errorf("service %q: %w", k, err)
	}
	if s.Name != string(k) {
		return Service{}, fmt.Errorf("service %q: record names %q", k, s.Name)
	}
	return s, nil
}

// Service implements Store.
func (b *BoltStore) Service(name string) (Service, uint64, bool, error) {
	var s Service
	var rev uint64
	var ok bool
	err := b.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketAuth).Bucket(bucketServices).Get([]byte(name))
		if v == nil {
			return nil
		}
		var err error
		s, err = decodeService([]byte(name), v)
		rev, ok = boltRev(v), err == nil
		return err
	})
	if err != nil {
		return Service{}, 0, false, fmt.Errorf("auth: read service %q: %w", name, err)
	}
	return s, rev, ok, nil
}

// write stores s in a transaction, after check (given the stored record,
// nil if none) lets it.
func (b *BoltStore) write(s Service, what string, check func(stored []byte) error) error {
	v, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("auth: encode service: %w", err)
	}
	err = b.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketAuth).Bucket(bucketServices)
		if err := check(bk.Get([]byte(s.Name))); err != nil {
			return err
		}
		return bk.Put([]byte(s.Name), v)
	})
	if err != nil {
		return fmt.Errorf("auth: %s service %q: %w", what, s.Name, err)
	}
	return nil
}

// checkRev lets a write of a record whose revision is still rev.
func checkRev(rev uint64) func([]byte) error {
	return func(stored []byte) error {
		switch {
		case stored == nil:
			return ErrNoSuchService
		case boltRev(stored) != rev:
			return ErrRevisionMismatch
		}
		return nil
	}
}

// CreateService implements Store.
func (b *BoltStore) CreateService(s Service) error {
	return b.write(s, "create", func(stored []byte) error {
		if stored != nil {
			return ErrServiceExists
		}
		return nil
	})
}

// UpdateService implements Store.
func (b *BoltStore) UpdateService(s Service, rev uint64) error {
	return b.write(s, "update", checkRev(rev))
}

// DeleteService implements Store.
func (b *BoltStore) DeleteService(name string, rev uint64) error {
	err := b.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketAuth).Bucket(bucketServices)
		if err := checkRev(rev)(bk.Get([]byte(name))); err != nil {
			return err
		}
		return bk.Delete([]byte(name))
	})
	if err != nil {
		return fmt.Errorf("auth: delete service %q: %w", name, err)
	}
	return nil
}

// Services implements Store; the result is sorted by name.
func (b *BoltStore) Services() ([]Service, error) {
	var out []Service
	err := b.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAuth).Bucket(bucketServices).ForEach(func(k, v []byte) error {
			s, err := decodeService(k, v)
			if err != nil {
				return err
			}
			out = append(out, s)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("auth: read services: %w", err)
	}
	return out, nil
}

// ServerKey implements Store.
func (b *BoltStore) ServerKey() (ServerKey, bool, error) {
	var k ServerKey
	var ok bool
	err := b.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketAuth).Get(keyServerKey)
		if v == nil {
			return nil
		}
		ok = true
		return json.Unmarshal(v, &k)
	})
	if err != nil {
		return ServerKey{}, false, fmt.Errorf("auth: read server key: %w", err)
	}
	return k, ok, nil
}

// PutServerKey implements Store.
func (b *BoltStore) PutServerKey(k ServerKey) error {
	v, err := json.Marshal(k)
	if err != nil {
		return fmt.Errorf("auth: encode server key: %w", err)
	}
	err = b.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAuth).Put(keyServerKey, v)
	})
	if err != nil {
		return fmt.Errorf("auth: store server key: %w", err)
	}
	return nil
}

var _ KeyCreator = (*MemStore)(nil)

// CreateServerKey implements KeyCreator.
func (m *MemStore) CreateServerKey(k ServerKey) (ServerKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.key == nil {
		c := k.clone()
		m.key = &c
	}
	return m.key.clone(), nil
}
