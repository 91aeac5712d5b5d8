package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const testOrigin = "https://push.example.com"

// fixture is a registry with two services: "weather" (an ES256 and an
// Ed25519 key registered) and "news" (an Ed25519 key).
type fixture struct {
	st      *MemStore
	reg     *Registry
	iss     *Issuer
	v       *Verifier
	now     time.Time
	weather Credentials
	news    Credentials

	esKey  *ecdsa.PrivateKey // weather's ES256 key
	esKid  string
	edKey  ed25519.PrivateKey // weather's Ed25519 key
	edKid  string
	newsEd ed25519.PrivateKey // news's Ed25519 key
	newsK  string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{st: NewMemStore(), now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	clock := func() time.Time { return f.now }
	var err error
	if f.reg, err = NewRegistry(f.st, clock); err != nil {
		t.Fatal(err)
	}
	if f.iss, err = NewIssuer(f.st, f.reg, testOrigin, clock); err != nil {
		t.Fatal(err)
	}
	f.v = NewVerifier(f.reg, f.iss)
	if f.weather, err = f.reg.Add("weather"); err != nil {
		t.Fatal(err)
	}
	if f.news, err = f.reg.Add("news"); err != nil {
		t.Fatal(err)
	}
	f.esKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, f.edKey, _ = ed25519.GenerateKey(rand.Reader)
	_, f.newsEd, _ = ed25519.GenerateKey(rand.Reader)
	if f.esKid, err = f.reg.AddKey("weather", pemOf(t, f.esKey.Public())); err != nil {
		t.Fatal(err)
	}
	if f.edKid, err = f.reg.AddKey("weather", pemOf(t, f.edKey.Public())); err != nil {
		t.Fatal(err)
	}
	if f.newsK, err = f.reg.AddKey("news", pemOf(t, f.newsEd.Public())); err != nil {
		t.Fatal(err)
	}
	return f
}

func pemOf(t testing.TB, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// sign makes a token with the given method, key, kid header ("" for none) and claims.
func sign(t testing.TB, m jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// selfClaims are valid claims of a token weather signs itself.
func (f *fixture) selfClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"iss": f.weather.ClientID,
		"aud": testOrigin,
		"iat": f.now.Unix(),
		"exp": f.now.Add(10 * time.Minute).Unix(),
	}
}

// accessToken issues weather an access token now.
func (f *fixture) accessToken(t testing.TB) string {
	t.Helper()
	tok, _, err := f.iss.IssueToken("weather", f.now)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

var (
	signingES256 = jwt.SigningMethodES256
	signingEdDSA = jwt.SigningMethodEdDSA
)

// putService stores s whatever the store holds under its name (a record
// planted by a test, not a Registry's change).
func putService(t testing.TB, st Store, s Service) {
	t.Helper()
	_, rev, ok, err := st.Service(s.Name)
	if err == nil {
		if ok {
			err = st.UpdateService(s, rev)
		} else {
			err = st.CreateService(s)
		}
	}
	if err != nil {
		t.Fatalf("store service %q: %v", s.Name, err)
	}
}

// deleteService removes the named service whatever its revision.
func deleteService(t testing.TB, st Store, name string) {
	t.Helper()
	_, rev, ok, err := st.Service(name)
	if err == nil && ok {
		err = st.DeleteService(name, rev)
	}
	if err != nil {
		t.Fatalf("delete service %q: %v", name, err)
	}
}
