package auth

import (
	"encoding/json"
	"fmt"
	"sort"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// Store persists services and the server's token-signing key. Every method
// must be safe for concurrent use; a Put must be durable when it returns nil.
// Values are passed and returned by value; implementations must not retain
// or share the slices inside them (the Registry never mutates what it gave).
type Store interface {
	// PutService creates or replaces the service s.Name.
	PutService(s Service) error
	// DeleteService removes a service; removing an absent one is not an error.
	DeleteService(name string) error
	// Services returns every service, in any order.
	Services() ([]Service, error)
	// ServerKey returns the server's signing key; ok is false if none was stored yet.
	ServerKey() (k ServerKey, ok bool, err error)
	// PutServerKey stores (replaces) the server's signing key.
	PutServerKey(k ServerKey) error
}

// MemStore is a Store in memory, for tests and throwaway servers.
type MemStore struct {
	mu       sync.Mutex
	services map[string]Service
	key      *ServerKey
}

var _ Store = (*MemStore)(nil)

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{services: map[string]Service{}} }

// PutService implements Store.
func (m *MemStore) PutService(s Service) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.services[s.Name] = s.clone()
	return nil
}

// DeleteService implements Store.
func (m *MemStore) DeleteService(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.services, name)
	return nil
}

// Services implements Store; the result is sorted by name.
func (m *MemStore) Services() ([]Service, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Service, 0, len(m.services))
	for _, s := range m.services {
		out = append(out, s.clone())
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
// (such as the server store's group-commit loop); each Put is durable (fsync)
// when it returns. The file holds the server's private signing key: keep it
// readable by the server only (the server store creates it 0600).
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

// PutService implements Store.
func (b *BoltStore) PutService(s Service) error {
	v, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("auth: encode service: %w", err)
	}
	err = b.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAuth).Bucket(bucketServices).Put([]byte(s.Name), v)
	})
	if err != nil {
		return fmt.Errorf("auth: store service %q: %w", s.Name, err)
	}
	return nil
}

// DeleteService implements Store.
func (b *BoltStore) DeleteService(name string) error {
	err := b.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAuth).Bucket(bucketServices).Delete([]byte(name))
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
			var s Service
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("service %q: %w", k, err)
			}
			if s.Name != string(k) {
				return fmt.Errorf("service %q: record names %q", k, s.Name)
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
