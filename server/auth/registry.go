package auth

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// MaxNameLen is the longest service name (the wire protocol's limit).
const MaxNameLen = 64

// MaxKeys is how many public keys one service may register.
const MaxKeys = 16

// ClientIDPrefix starts every client_id.
const ClientIDPrefix = "svc_"

// Service is a registered service as stored.
type Service struct {
	// Name is the service name apps give when they open a channel, and the
	// CommonName of the service's client certificate.
	Name string `json:"name"`
	// ClientID identifies the service at POST /accesstoken and is the iss of
	// its self-signed tokens: "svc_" and 32 hex digits (128 random bits).
	ClientID string `json:"client_id"`
	// SecretHash is the SHA-256 of the client_secret. List leaves it empty.
	SecretHash []byte `json:"secret_hash,omitempty"`
	// Generation counts secret rotations; access tokens carry the generation
	// they were issued under and die with it.
	Generation uint64 `json:"generation"`
	// Keys are the public keys the service signs its own tokens with.
	Keys []Key `json:"keys,omitempty"`
	// Created is when the service was added; Rotated when its secret was
	// last set (Created, at first).
	Created time.Time `json:"created"`
	Rotated time.Time `json:"rotated"`
}

// Key is a registered public key.
type Key struct {
	// ID is the key id ("kid" header of tokens signed with it): the RFC 7638
	// JWK thumbprint of the key, see Thumbprint.
	ID string `json:"kid"`
	// Alg is AlgES256 or AlgEdDSA, fixed by the key's type.
	Alg string `json:"alg"`
	// PKIX is the DER SubjectPublicKeyInfo.
	PKIX []byte `json:"pkix"`
	// Added is when the key was registered.
	Added time.Time `json:"added"`
}

// Credentials are what `openmpns service add` and secret rotation print, once:
// the secret is not kept and cannot be shown again.
type Credentials struct {
	Service      string `json:"service"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

func (s Service) clone() Service {
	s.SecretHash = slices.Clone(s.SecretHash)
	s.Keys = slices.Clone(s.Keys)
	for i := range s.Keys {
		s.Keys[i].PKIX = slices.Clone(s.Keys[i].PKIX)
	}
	return s
}

// entry is a service with its keys parsed.
type entry struct {
	svc  Service
	keys map[string]parsedKey
}

type parsedKey struct {
	alg string
	pub crypto.PublicKey
}

// Registry is the set of registered services, cached in memory and written
// through to a Store. It is safe for concurrent use. Several Registries may
// share one Store (the nodes of a cluster, the `openmpns service` tool): a
// change reads the service's stored record, applies itself to that (not to
// this Registry's copy, which may be behind) and writes it revision-checked,
// reading and applying again when another writer came first (see Store), so
// no change made elsewhere is lost. A change the Store refuses is not made
// in memory either. Changes made elsewhere are served here after Reload
// (and, for a service this Registry changes, at once).
type Registry struct {
	st  Store
	now func() time.Time

	// wmu orders the writers: each change and each Reload (which reads
	// the store, then swaps what it read in) holds it throughout, so that
	// a reload never puts back what a change made meanwhile replaced. The
	// readers (verifying a token, checking a secret) take only mu, which
	// no one holds across a Store call.
	wmu      sync.Mutex
	mu       sync.RWMutex
	byName   map[string]*entry
	byClient map[string]*entry
	keyOwner map[string]string // kid → service name
}

// maxAttempts bounds how many times a change is applied to a service's
// stored record: each conflict means another writer's change went in, so
// among concurrent writers one succeeds each round.
const maxAttempts = 16

// NewRegistry loads every service from st. now is the clock for Created,
// Rotated and Added times (nil: time.Now).
func NewRegistry(st Store, now func() time.Time) (*Registry, error) {
	if now == nil {
		now = time.Now
	}
	r := &Registry{st: st, now: now}
	if err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload reads the services from the Store again.
func (r *Registry) Reload() error {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	svcs, err := r.st.Services()
	if err != nil {
		return err
	}
	byName := map[string]*entry{}
	byClient := map[string]*entry{}
	keyOwner := map[string]string{}
	for _, s := range svcs {
		e, err := newEntry(s)
		if err != nil {
			return fmt.Errorf("auth: stored service %q: %w", s.Name, err)
		}
		if byName[s.Name] != nil || byClient[s.ClientID] != nil {
			return fmt.Errorf("auth: stored service %q: duplicate name or client_id", s.Name)
		}
		byName[s.Name], byClient[s.ClientID] = e, e
		for kid := range e.keys {
			keyOwner[kid] = s.Name
		}
	}
	r.mu.Lock()
	r.byName, r.byClient, r.keyOwner = byName, byClient, keyOwner
	r.mu.Unlock()
	return nil
}

func newEntry(s Service) (*entry, error) {
	if err := ValidName(s.Name); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(s.ClientID, ClientIDPrefix) || len(s.SecretHash) != sha256.Size {
		return nil, fmt.Errorf("damaged record: bad client_id or secret hash")
	}
	e := &entry{svc: s.clone(), keys: map[string]parsedKey{}}
	for _, k := range s.Keys {
		// A stored key that today's checks refuse (stored before a check
		// came: of small order, off the curve) or that does not match its
		// id verifies nothing, and stays listed so that the operator can
		// remove it. It never fails the whole service, nor so the
		// Registry's load: that would keep a node on what it read before,
		// a removal made elsewhere never heard.
		pub, alg, err := parsePKIX(k.PKIX)
		if err != nil {
			continue
		}
		kid, err := Thumbprint(pub)
		if err != nil || kid != k.ID || alg != k.Alg {
			continue
		}
		e.keys[kid] = parsedKey{alg: alg, pub: pub}
	}
	return e, nil
}

// ValidName reports whether name can be a service name: 1 to 64 bytes of
// printable ASCII other than space (what the device protocol accepts).
func ValidName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return ErrInvalidName
	}
	for i := 0; i < len(name); i++ {
		if name[i] <= ' ' || name[i] > '~' {
			return ErrInvalidName
		}
	}
	return nil
}

func newClientID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return ClientIDPrefix + hex.EncodeToString(b)
}

// newSecret returns a client secret (32 random bytes, base64url, 43
// characters) and its SHA-256. A fast hash is enough: the secret has 256
// bits of entropy, so there is no dictionary to try.
func newSecret() (string, []byte) {
	b := make([]byte, 32)
	rand.Read(b)
	s := base64.RawURLEncoding.EncodeToString(b)
	return s, hashSecret(s)
}

func hashSecret(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// Add registers a service and returns its credentials (the secret is shown
// only now). It fails with ErrServiceExists if the name is taken (in the
// Store, by whichever writer).
func (r *Registry) Add(name string) (Credentials, error) {
	if err := ValidName(name); err != nil {
		return Credentials{}, err
	}
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.mu.RLock()
	id := newClientID()
	for r.byClient[id] != nil {
		id = newClientID()
	}
	r.mu.RUnlock()
	secret, hash := newSecret()
	now := r.now().UTC()
	s := Service{Name: name, ClientID: id, SecretHash: hash, Created: now, Rotated: now}
	if err := r.st.CreateService(s); err != nil {
		if errors.Is(err, ErrServiceExists) {
			// Added elsewhere: serve what is stored (best effort).
			if cur, _, ok, rerr := r.st.Service(name); rerr == nil && ok {
				if e, eerr := newEntry(cur); eerr == nil {
					r.install(name, e)
				}
			}
			return Credentials{}, fmt.Errorf("%w: %q", ErrServiceExists, name)
		}
		return Credentials{}, err
	}
	r.install(name, &entry{svc: s, keys: map[string]parsedKey{}})
	return Credentials{Service: name, ClientID: id, ClientSecret: secret}, nil
}

// change applies f to the stored record of the named service and writes
// what f returns (nil: delete the service) with the Store's revision
// check; when another writer came first it reads the record again and
// applies f anew, at most maxAttempts times. f may be called more than
// once, and gets a copy it may modify. What was written (or that the
// service is gone) replaces this Registry's entry; so does the record f
// refused (its error is returned), which this Registry may not have known.
// The caller holds wmu.
func (r *Registry) change(name string, f func(cur Service) (*Service, error)) (Service, error) {
	for range maxAttempts {
		cur, rev, ok, err := r.st.Service(name)
		if err != nil {
			return Service{}, err
		}
		if !ok {
			r.install(name, nil)
			return Service{}, fmt.Errorf("%w: %q", ErrNoSuchService, name)
		}
		next, err := f(cur.clone())
		if err != nil {
			if e, eerr := newEntry(cur); eerr == nil {
				r.install(name, e)
			}
			return Service{}, err
		}
		var e *entry
		if next != nil {
			// What this Registry will serve, checked before it is
			// written: a record it could not load is not stored.
			if e, err = newEntry(*next); err != nil {
				return Service{}, fmt.Errorf("auth: service %q: %w", name, err)
			}
			err = r.st.UpdateService(*next, rev)
		} else {
			err = r.st.DeleteService(name, rev)
		}
		switch {
		case errors.Is(err, ErrRevisionMismatch):
			continue // changed elsewhere since the read: apply f to what is there now
		case errors.Is(err, ErrNoSuchService):
			r.install(name, nil)
			return Service{}, fmt.Errorf("%w: %q", ErrNoSuchService, name)
		case err != nil:
			return Service{}, err
		}
		r.install(name, e)
		if next == nil {
			return cur, nil
		}
		return *next, nil
	}
	return Service{}, fmt.Errorf("auth: service %q changed elsewhere during each of %d attempts to change it: %w", name, maxAttempts, ErrRevisionMismatch)
}

// install makes e the named service's entry (nil: the service is gone),
// replacing whatever this Registry held for that name.
func (r *Registry) install(name string, e *entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old := r.byName[name]; old != nil {
		delete(r.byName, name)
		if r.byClient[old.svc.ClientID] == old {
			delete(r.byClient, old.svc.ClientID)
		}
		for kid := range old.keys {
			if r.keyOwner[kid] == name {
				delete(r.keyOwner, kid)
			}
		}
	}
	if e == nil {
		return
	}
	r.byName[name], r.byClient[e.svc.ClientID] = e, e
	for kid := range e.keys {
		r.keyOwner[kid] = name
	}
}

// Remove unregisters a service: its secret, keys, access tokens and client
// certificate stop working at once. Channels opened for it stay (and accept
// nothing until a service of that name is added again).
func (r *Registry) Remove(name string) error {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	_, err := r.change(name, func(Service) (*Service, error) { return nil, nil })
	return err
}

// List returns every service sorted by name, without secret hashes.
func (r *Registry) List() []Service {
	r.mu.RLock()
	out := make([]Service, 0, len(r.byName))
	for _, e := range r.byName {
		s := e.svc.clone()
		s.SecretHash = nil
		out = append(out, s)
	}
	r.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Lookup returns the named service (without secret hash).
func (r *Registry) Lookup(name string) (Service, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e := r.byName[name]
	if e == nil {
		return Service{}, false
	}
	s := e.svc.clone()
	s.SecretHash = nil
	return s, true
}

// RotateSecret gives the service a new client secret; the old secret and
// every access token issued under it stop working at once. Registered keys
// and the client_id are unchanged (as stored: a key added through another
// writer is kept).
func (r *Registry) RotateSecret(name string) (Credentials, error) {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	secret, hash := newSecret()
	s, err := r.change(name, func(s Service) (*Service, error) {
		s.SecretHash = hash
		s.Generation++
		s.Rotated = r.now().UTC()
		return &s, nil
	})
	if err != nil {
		return Credentials{}, err
	}
	return Credentials{Service: name, ClientID: s.ClientID, ClientSecret: secret}, nil
}

// AddKey registers a public key (one PEM "PUBLIC KEY" block, PKIX, P-256
// ECDSA for ES256 or Ed25519 for EdDSA) the service signs its own tokens
// with, and returns its key id (RFC 7638 thumbprint). A key may belong to
// one service only: checked against the service's stored record and the
// other services as this Registry last read them (a service this copy
// says holds the key is read again from the Store: the key may have been
// removed from it elsewhere). A Store shared by several writers checks the
// other services' stored records too, with its write (the NATS store
// does), so that two writers adding one key to two services at once
// cannot both succeed; the one refused gets ErrKeyExists.
func (r *Registry) AddKey(name string, pemBytes []byte) (string, error) {
	pub, alg, der, err := parsePublicKeyPEM(pemBytes)
	if err != nil {
		return "", err
	}
	kid, err := Thumbprint(pub)
	if err != nil {
		return "", err
	}
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.mu.RLock()
	owner, owned := r.keyOwner[kid]
	r.mu.RUnlock()
	if owned && owner != name {
		if err := r.refresh(owner); err != nil {
			return "", err
		}
	}
	_, err = r.change(name, func(s Service) (*Service, error) {
		if slices.ContainsFunc(s.Keys, func(k Key) bool { return k.ID == kid }) {
			return nil, fmt.Errorf("%w: key %s belongs to service %q", ErrKeyExists, kid, name)
		}
		r.mu.RLock()
		owner, owned := r.keyOwner[kid]
		r.mu.RUnlock()
		if owned && owner != name {
			return nil, fmt.Errorf("%w: key %s belongs to service %q", ErrKeyExists, kid, owner)
		}
		if len(s.Keys) >= MaxKeys {
			return nil, fmt.Errorf("%w: %q has %d", ErrTooManyKeys, name, MaxKeys)
		}
		s.Keys = append(s.Keys, Key{ID: kid, Alg: alg, PKIX: der, Added: r.now().UTC()})
		return &s, nil
	})
	if err != nil {
		return "", err
	}
	return kid, nil
}

// refresh reads the named service from the Store again and serves what
// it finds (or that it is gone). The caller holds wmu.
func (r *Registry) refresh(name string) error {
	cur, _, ok, err := r.st.Service(name)
	if err != nil {
		return err
	}
	if !ok {
		r.install(name, nil)
		return nil
	}
	e, err := newEntry(cur)
	if err != nil {
		return fmt.Errorf("auth: stored service %q: %w", name, err)
	}
	r.install(name, e)
	return nil
}

// RemoveKey unregisters a key; tokens signed with it stop working at once.
func (r *Registry) RemoveKey(name, kid string) error {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	_, err := r.change(name, func(s Service) (*Service, error) {
		// The record's list: a stored key that no longer loads (of small
		// order) is listed there only, to be removed.
		if !slices.ContainsFunc(s.Keys, func(k Key) bool { return k.ID == kid }) {
			return nil, fmt.Errorf("%w: %q has no key %q", ErrNoSuchKey, name, kid)
		}
		s.Keys = slices.DeleteFunc(s.Keys, func(k Key) bool { return k.ID == kid })
		return &s, nil
	})
	return err
}

// dummyHash is compared against when the client_id is unknown, so that both
// refusals take the same time.
var dummyHash = hashSecret("")

// CheckSecret returns the service whose client_id and client_secret these
// are, as it was when the secret was checked: a token issued for it
// (Issuer.IssueTokenFor) names that registration and secret generation, so
// that a rotation or removal right after the check revokes the token too.
// The secret's hash is compared in constant time. Errors match
// ErrInvalidCredentials and ErrUnknownClient or ErrWrongSecret.
func (r *Registry) CheckSecret(clientID, secret string) (Service, error) {
	got := hashSecret(secret)
	r.mu.RLock()
	e := r.byClient[clientID]
	want := dummyHash
	var svc Service
	if e != nil {
		svc = e.svc // replaced, never mutated: see snapshot
		want = svc.SecretHash
	}
	r.mu.RUnlock()
	ok := subtle.ConstantTimeCompare(got, want) == 1
	switch {
	case e == nil:
		return Service{}, invalid(ErrUnknownClient, nil)
	case !ok:
		return Service{}, invalid(ErrWrongSecret, nil)
	}
	return svc, nil
}

// snapshot returns the named service and its parsed keys. Neither may be
// modified (the Registry replaces, never mutates, them).
func (r *Registry) snapshot(name string) (Service, map[string]parsedKey, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e := r.byName[name]
	if e == nil {
		return Service{}, nil, false
	}
	return e.svc, e.keys, true
}

// byClientID returns the name of the service with that client_id.
func (r *Registry) byClientID(id string) (string, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e := r.byClient[id]
	if e == nil {
		return "", false
	}
	return e.svc.Name, true
}
