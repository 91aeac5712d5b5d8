package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Token lifetimes.
const (
	// AccessTokenTTL is the lifetime of access tokens the server issues
	// (expires_in 86400, as WNS).
	AccessTokenTTL = 24 * time.Hour
	// MaxTokenLifetime is the longest a token may be valid: exp at most this
	// far after now and after iat.
	MaxTokenLifetime = 24 * time.Hour
	// Leeway is the clock skew allowed for nbf and iat (and for exp's
	// distance from now in self-signed tokens). exp itself gets none.
	Leeway = 30 * time.Second
)

// ServerKey is the server's access-token signing key as stored.
type ServerKey struct {
	// ID is the key's RFC 7638 thumbprint, the kid of the tokens it signs.
	ID string `json:"kid"`
	// Seed is the Ed25519 private key seed (32 bytes).
	Seed []byte `json:"seed"`
	// Created is when the key was generated.
	Created time.Time `json:"created"`
}

func (k ServerKey) clone() ServerKey { k.Seed = slices.Clone(k.Seed); return k }

// tokenClaims are the claims of both kinds of token.
type tokenClaims struct {
	jwt.RegisteredClaims
	// ClientID (RFC 9068) is set in access tokens: the client_id the token
	// was issued to, so that a service removed and added again (new
	// client_id) does not inherit old tokens.
	ClientID string `json:"client_id,omitempty"`
	// Gen is set in access tokens: the service's secret generation.
	Gen uint64 `json:"gen,omitempty"`
}

// GetNotBefore hides nbf from the JWT library's validator, which would give
// it the same leeway as exp; the Verifier checks nbf itself, with Leeway.
func (c *tokenClaims) GetNotBefore() (*jwt.NumericDate, error) { return nil, nil }

// Issuer signs the server's access tokens with its Ed25519 key (alg EdDSA),
// generated on first use and kept in the Store. It is safe for concurrent use.
type Issuer struct {
	st     Store
	reg    *Registry
	origin string

	// rotMu orders RotateKey and Reload, each a store operation and then
	// use: two at once could leave the key in use other than the stored
	// one, whose tokens a restart would refuse.
	rotMu sync.Mutex
	mu    sync.RWMutex
	key   ed25519.PrivateKey
	kid   string
}

// NewIssuer loads the server's signing key from st, or generates and stores
// one. origin is the server's public origin (e.g. https://push.example.com):
// the iss and aud of its access tokens and the aud every token must name.
// now dates a generated key (nil: time.Now).
func NewIssuer(st Store, reg *Registry, origin string, now func() time.Time) (*Issuer, error) {
	o, err := NormalizeOrigin(origin)
	if err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	i := &Issuer{st: st, reg: reg, origin: o}
	k, ok, err := st.ServerKey()
	if err != nil {
		return nil, err
	}
	if !ok {
		kc, shared := st.(KeyCreator)
		if !shared {
			return i, i.RotateKey(now())
		}
		// Servers sharing the store may start together: the first key
		// stored is everyone's.
		if k, err = newServerKey(now()); err == nil {
			k, err = kc.CreateServerKey(k)
		}
		if err != nil {
			return nil, err
		}
	}
	return i, i.use(k)
}

// KeyCreator is a Store that several servers share (a cluster's): it
// stores the server key only if there is none yet, so that servers starting
// together agree on one key.
type KeyCreator interface {
	// CreateServerKey stores k unless a key is stored already, and returns
	// the stored key (k, or the one that was there).
	CreateServerKey(k ServerKey) (ServerKey, error)
}

// use makes k the signing key, after checking it.
func (i *Issuer) use(k ServerKey) error {
	if len(k.Seed) != ed25519.SeedSize {
		return fmt.Errorf("auth: stored server key: seed of %d bytes", len(k.Seed))
	}
	priv := ed25519.NewKeyFromSeed(k.Seed)
	kid, err := Thumbprint(priv.Public())
	if err != nil || kid != k.ID {
		return fmt.Errorf("auth: stored server key: key id does not match the key")
	}
	i.mu.Lock()
	i.key, i.kid = priv, kid
	i.mu.Unlock()
	return nil
}

// Reload reads the signing key from the store again: another server
// sharing it may have rotated the key.
func (i *Issuer) Reload() error {
	i.rotMu.Lock()
	defer i.rotMu.Unlock()
	k, ok, err := i.st.ServerKey()
	if err != nil || !ok {
		return err
	}
	return i.use(k)
}

// NewServerKey generates a signing key dated now, for a tool that rotates
// the key in a Store no Issuer of its own holds (a stopped server's, a
// cluster's); the servers using the Store load it with Reload.
func NewServerKey(now time.Time) (ServerKey, error) { return newServerKey(now) }

func newServerKey(now time.Time) (ServerKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return ServerKey{}, fmt.Errorf("auth: generate server key: %w", err)
	}
	kid, err := Thumbprint(pub)
	if err != nil {
		return ServerKey{}, err
	}
	return ServerKey{ID: kid, Seed: priv.Seed(), Created: now.UTC()}, nil
}

// NormalizeOrigin checks that s is an http or https origin (scheme, host,
// optional port, no path, query or user info) and returns it lower-cased
// without a trailing slash.
func NormalizeOrigin(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil || u.Opaque != "" {
		return "", fmt.Errorf("auth: origin %q: want scheme://host[:port], e.g. https://push.example.com", s)
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

// RotateKey replaces the server's signing key with a new one. Every access
// token issued before stops working at once (services get 401 and fetch a
// new one).
func (i *Issuer) RotateKey(now time.Time) error {
	i.rotMu.Lock()
	defer i.rotMu.Unlock()
	k, err := newServerKey(now)
	if err != nil {
		return err
	}
	if err := i.st.PutServerKey(k); err != nil {
		return err
	}
	return i.use(k)
}

// Origin is the server origin tokens are issued by and for.
func (i *Issuer) Origin() string { return i.origin }

// KeyID is the kid of the current signing key.
func (i *Issuer) KeyID() string {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.kid
}

// PublicKey is the current signing key's public half.
func (i *Issuer) PublicKey() ed25519.PublicKey {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.key.Public().(ed25519.PublicKey)
}

func (i *Issuer) current() (ed25519.PrivateKey, string) {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.key, i.kid
}

// IssueToken returns an access token for a registered service: a JWT signed
// with EdDSA, kid = the server key id, iss = aud = the origin, sub = the
// service name, client_id, the secret generation, iat = now, exp = now +
// AccessTokenTTL, a random jti. expiresIn is AccessTokenTTL.
func (i *Issuer) IssueToken(service string, now time.Time) (token string, expiresIn time.Duration, err error) {
	svc, _, ok := i.reg.snapshot(service)
	if !ok {
		return "", 0, fmt.Errorf("%w: %q", ErrNoSuchService, service)
	}
	return i.IssueTokenFor(svc, now)
}

// IssueTokenFor is IssueToken for the registration svc, as Registry.
// CheckSecret returned it: the token names svc's client_id and secret
// generation, not the current ones, so a token bought with a secret that
// was rotated (or a service removed and added again) since the check is
// refused like every other token of that secret.
func (i *Issuer) IssueTokenFor(svc Service, now time.Time) (token string, expiresIn time.Duration, err error) {
	jti := make([]byte, 16)
	rand.Read(jti)
	now = now.Truncate(time.Second)
	c := &tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    i.origin,
			Subject:   svc.Name,
			Audience:  jwt.ClaimStrings{i.origin},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(AccessTokenTTL)),
			ID:        base64.RawURLEncoding.EncodeToString(jti),
		},
		ClientID: svc.ClientID,
		Gen:      svc.Generation,
	}
	key, kid := i.current()
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	t.Header["kid"] = kid
	s, err := t.SignedString(key)
	if err != nil {
		return "", 0, fmt.Errorf("auth: sign access token: %w", err)
	}
	return s, AccessTokenTTL, nil
}
