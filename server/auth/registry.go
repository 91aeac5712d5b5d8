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
	"maps"
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
// through to a Store. It is safe for concurrent use; changes are rare and
// serialised (each holds the lock through its Store write, so a change the
// Store refuses is not made in memory either). It assumes it is the only
// writer of the Store while it lives (changes made to the Store behind its
// back are seen after Reload).
type Registry struct {
	st  Store
	now func() time.Time

	// wmu orders the writers: each change and each Reload (which reads
	// the store, then swaps what it read in) holds it throughout, so that
	// a reload never puts back what a change made meanwhile replaced. The
	// readers (verifying a token, checking a secret) take only mu.
	wmu      sync.Mutex
	mu       sync.RWMutex
	byName   map[string]*entry
	byClient map[string]*entry
	keyOwner map[string]string // kid → service name
}

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
		pub, alg, err := parsePKIX(k.PKIX)
		if errors.Is(err, errSmallOrder) {
			// Stored before such keys were refused: it verifies nothing,
			// and stays listed so that the operator can remove it.
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", k.ID, err)
		}
		kid, err := Thumbprint(pub)
		if err != nil || kid != k.ID || alg != k.Alg {
			return nil, fmt.Errorf("key %s: damaged record (id or alg does not match the key)", k.ID)
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
// only now). It fails with ErrServiceExists if the name is taken.
func (r *Registry) Add(name string) (Credentials, error) {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	if err := ValidName(name); err != nil {
		return Credentials{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byName[name] != nil {
		return Credentials{}, fmt.Errorf("%w: %q", ErrServiceExists, name)
	}
	id := newClientID()
	for r.byClient[id] != nil {
		id = newClientID()
	}
	secret, hash := newSecret()
	now := r.now().UTC()
	s := Service{Name: name, ClientID: id, SecretHash: hash, Created: now, Rotated: now}
	if err := r.st.PutService(s); err != nil {
		return Credentials{}, err
	}
	e := &entry{svc: s, keys: map[string]parsedKey{}}
	r.byName[name], r.byClient[id] = e, e
	return Credentials{Service: name, ClientID: id, ClientSecret: secret}, nil
}

// Remove unregisters a service: its secret, keys, access tokens and client
// certificate stop working at once. Channels opened for it stay (and accept
// nothing until a service of that name is added again).
func (r *Registry) Remove(name string) error {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.byName[name]
	if e == nil {
		return fmt.Errorf("%w: %q", ErrNoSuchService, name)
	}
	if err := r.st.DeleteService(name); err != nil {
		return err
	}
	delete(r.byName, name)
	delete(r.byClient, e.svc.ClientID)
	for kid := range e.keys {
		delete(r.keyOwner, kid)
	}
	return nil
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
// and the client_id are unchanged.
func (r *Registry) RotateSecret(name string) (Credentials, error) {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.byName[name]
	if e == nil {
		return Credentials{}, fmt.Errorf("%w: %q", ErrNoSuchService, name)
	}
	secret, hash := newSecret()
	s := e.svc.clone()
	s.SecretHash = hash
	s.Generation++
	s.Rotated = r.now().UTC()
	if err := r.st.PutService(s); err != nil {
		return Credentials{}, err
	}
	e.svc = s
	return Credentials{Service: name, ClientID: s.ClientID, ClientSecret: secret}, nil
}

// AddKey registers a public key (one PEM "PUBLIC KEY" block, PKIX, P-256
// ECDSA for ES256 or Ed25519 for EdDSA) the service signs its own tokens
// with, and returns its key id (RFC 7638 thumbprint). A key may belong to
// one service only.
func (r *Registry) AddKey(name string, pemBytes []byte) (string, error) {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	pub, alg, der, err := parsePublicKeyPEM(pemBytes)
	if err != nil {
		return "", err
	}
	kid, err := Thumbprint(pub)
	if err != nil {
		return "", err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.byName[name]
	if e == nil {
		return "", fmt.Errorf("%w: %q", ErrNoSuchService, name)
	}
	if owner, ok := r.keyOwner[kid]; ok {
		return "", fmt.Errorf("%w: key %s belongs to service %q", ErrKeyExists, kid, owner)
	}
	if len(e.svc.Keys) >= MaxKeys {
		return "", fmt.Errorf("%w: %q has %d", ErrTooManyKeys, name, MaxKeys)
	}
	s := e.svc.clone()
	s.Keys = append(s.Keys, Key{ID: kid, Alg: alg, PKIX: der, Added: r.now().UTC()})
	if err := r.st.PutService(s); err != nil {
		return "", err
	}
	e.svc = s
	keys := maps.Clone(e.keys) // copy on write: snapshots share the old map
	keys[kid] = parsedKey{alg: alg, pub: pub}
	e.keys = keys
	r.keyOwner[kid] = name
	return kid, nil
}

// RemoveKey unregisters a key; tokens signed with it stop working at once.
func (r *Registry) RemoveKey(name, kid string) error {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.byName[name]
	if e == nil {
		return fmt.Errorf("%w: %q", ErrNoSuchService, name)
	}
	// The record's list, not e.keys: a stored key that no longer loads
	// (of small order) is listed there only, to be removed.
	if !slices.ContainsFunc(e.svc.Keys, func(k Key) bool { return k.ID == kid }) {
		return fmt.Errorf("%w: %q has no key %q", ErrNoSuchKey, name, kid)
	}
	s := e.svc.clone()
	s.Keys = slices.DeleteFunc(s.Keys, func(k Key) bool { return k.ID == kid })
	if err := r.st.PutService(s); err != nil {
		return err
	}
	e.svc = s
	keys := maps.Clone(e.keys)
	delete(keys, kid)
	e.keys = keys
	delete(r.keyOwner, kid)
	return nil
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
