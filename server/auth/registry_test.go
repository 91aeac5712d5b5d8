package auth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	clientIDRe = regexp.MustCompile(`^svc_[0-9a-f]{32}$`)
	secretRe   = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)
	kidRe      = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)
)

func TestAddCredentials(t *testing.T) {
	f := newFixture(t)
	c := f.weather
	if c.Service != "weather" || !clientIDRe.MatchString(c.ClientID) || !secretRe.MatchString(c.ClientSecret) {
		t.Fatalf("credentials %+v", c)
	}
	if b, _ := base64.RawURLEncoding.DecodeString(c.ClientSecret); len(b) != 32 {
		t.Errorf("secret of %d bytes", len(b))
	}
	js, _ := json.Marshal(c)
	for _, k := range []string{`"service":"weather"`, `"client_id":"svc_`, `"client_secret":"`} {
		if !strings.Contains(string(js), k) {
			t.Errorf("JSON %s lacks %s", js, k)
		}
	}
	if f.weather.ClientID == f.news.ClientID || f.weather.ClientSecret == f.news.ClientSecret {
		t.Error("two services share credentials")
	}
	if _, err := f.reg.Add("weather"); !errors.Is(err, ErrServiceExists) {
		t.Errorf("Add twice: %v", err)
	}
	// The store keeps only the secret's SHA-256.
	svcs, _ := f.st.Services()
	for _, s := range svcs {
		js, _ := json.Marshal(s)
		if strings.Contains(string(js), f.weather.ClientSecret) || strings.Contains(string(js), f.news.ClientSecret) {
			t.Fatalf("store holds a secret: %s", js)
		}
		if s.Name == "weather" {
			h := sha256.Sum256([]byte(f.weather.ClientSecret))
			if !bytes.Equal(s.SecretHash, h[:]) {
				t.Error("stored hash is not SHA-256 of the secret")
			}
			if !s.Created.Equal(f.now) || !s.Rotated.Equal(f.now) || s.Generation != 0 {
				t.Errorf("times/generation: %+v", s)
			}
		}
	}
}

func TestServiceNames(t *testing.T) {
	reg, _ := NewRegistry(NewMemStore(), nil)
	for _, ok := range []string{"a", "weather.contoso.com", strings.Repeat("s", 64), `{"q"}!~`, "svc_x", "https://x"} {
		if _, err := reg.Add(ok); err != nil {
			t.Errorf("Add(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", strings.Repeat("s", 65), "my service", "tab\tname", "new\nline", "caf\u00e9", "\x7f", " lead"} {
		if _, err := reg.Add(bad); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Add(%q): %v", bad, err)
		}
	}
}

func TestCheckSecretAndRotate(t *testing.T) {
	f := newFixture(t)
	if svc, err := f.reg.CheckSecret(f.weather.ClientID, f.weather.ClientSecret); err != nil || svc.Name != "weather" {
		t.Fatalf("CheckSecret = %q, %v", svc.Name, err)
	}
	refusals := []struct {
		id, secret string
		want       error
	}{
		{f.weather.ClientID, f.news.ClientSecret, ErrWrongSecret},
		{f.weather.ClientID, "", ErrWrongSecret},
		{f.weather.ClientID, f.weather.ClientSecret + "x", ErrWrongSecret},
		{"svc_00000000000000000000000000000000", f.weather.ClientSecret, ErrUnknownClient},
		{"weather", f.weather.ClientSecret, ErrUnknownClient},
		{"", "", ErrUnknownClient},
	}
	for _, r := range refusals {
		svc, err := f.reg.CheckSecret(r.id, r.secret)
		if svc.Name != "" || !errors.Is(err, r.want) || !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("CheckSecret(%q, %q) = %q, %v; want %v", r.id, r.secret, svc.Name, err, r.want)
		}
	}

	f.now = f.now.Add(time.Hour)
	c2, err := f.reg.RotateSecret("weather")
	if err != nil {
		t.Fatal(err)
	}
	if c2.ClientID != f.weather.ClientID || c2.ClientSecret == f.weather.ClientSecret || !secretRe.MatchString(c2.ClientSecret) {
		t.Fatalf("rotated credentials %+v", c2)
	}
	if _, err := f.reg.CheckSecret(f.weather.ClientID, f.weather.ClientSecret); !errors.Is(err, ErrWrongSecret) {
		t.Errorf("old secret after rotation: %v", err)
	}
	if svc, err := f.reg.CheckSecret(c2.ClientID, c2.ClientSecret); err != nil || svc.Name != "weather" {
		t.Errorf("new secret: %q, %v", svc.Name, err)
	}
	s, _ := f.reg.Lookup("weather")
	if s.Generation != 1 || !s.Rotated.Equal(f.now) || s.Created.Equal(f.now) || len(s.Keys) != 2 {
		t.Errorf("after rotation: %+v", s)
	}
	if _, err := f.reg.RotateSecret("nobody"); !errors.Is(err, ErrNoSuchService) {
		t.Errorf("RotateSecret(nobody): %v", err)
	}
	// news is untouched.
	if _, err := f.reg.CheckSecret(f.news.ClientID, f.news.ClientSecret); err != nil {
		t.Error(err)
	}
}

func TestListLookupRemove(t *testing.T) {
	f := newFixture(t)
	l := f.reg.List()
	if len(l) != 2 || l[0].Name != "news" || l[1].Name != "weather" {
		t.Fatalf("List = %+v", l)
	}
	for _, s := range l {
		if s.SecretHash != nil {
			t.Error("List exposes the secret hash")
		}
		js, _ := json.Marshal(s)
		if strings.Contains(string(js), "secret") {
			t.Errorf("List JSON %s", js)
		}
	}
	if len(l[1].Keys) != 2 || l[1].Keys[0].ID != f.esKid || l[1].Keys[0].Alg != AlgES256 || l[1].Keys[1].Alg != AlgEdDSA {
		t.Errorf("weather keys %+v", l[1].Keys)
	}
	// List returns copies.
	l[1].Keys[0].ID = "changed"
	if s, _ := f.reg.Lookup("weather"); s.Keys[0].ID != f.esKid {
		t.Error("List shares memory with the registry")
	}
	if err := f.reg.Remove("weather"); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.reg.Lookup("weather"); ok {
		t.Error("still there")
	}
	if _, err := f.reg.CheckSecret(f.weather.ClientID, f.weather.ClientSecret); !errors.Is(err, ErrUnknownClient) {
		t.Errorf("secret of removed service: %v", err)
	}
	if err := f.reg.Remove("weather"); !errors.Is(err, ErrNoSuchService) {
		t.Errorf("Remove twice: %v", err)
	}
	// Its keys are free to register again, and the name too (new client_id).
	if _, err := f.reg.Add("weather"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.reg.AddKey("weather", pemOf(t, f.edKey.Public())); err != nil {
		t.Errorf("re-adding a removed service's key: %v", err)
	}
	if svcs, _ := f.st.Services(); len(svcs) != 2 {
		t.Errorf("store has %d services", len(svcs))
	}
}

func TestAddKey(t *testing.T) {
	f := newFixture(t)
	if !kidRe.MatchString(f.esKid) || !kidRe.MatchString(f.edKid) || f.esKid == f.edKid {
		t.Fatalf("kids %q %q", f.esKid, f.edKid)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	privDER, _ := x509.MarshalPKCS8PrivateKey(ed)
	two := append(pemOf(t, ed.Public()), pemOf(t, f.esKey.Public())...)
	derOnly, _ := x509.MarshalPKIXPublicKey(ed.Public())
	bad := []struct {
		name    string
		service string
		pem     []byte
		want    error
	}{
		{"same key again", "weather", pemOf(t, f.esKey.Public()), ErrKeyExists},
		{"another service's key", "weather", pemOf(t, f.newsEd.Public()), ErrKeyExists},
		{"P-384", "weather", pemOf(t, p384.Public()), ErrInvalidKey},
		{"RSA", "weather", pemOf(t, rsaKey.Public()), ErrInvalidKey},
		{"private key", "weather", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), ErrInvalidKey},
		{"certificate block", "weather", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: derOnly}), ErrInvalidKey},
		{"two blocks", "weather", two, ErrInvalidKey},
		{"DER without PEM", "weather", derOnly, ErrInvalidKey},
		{"garbage in the block", "weather", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("nope")}), ErrInvalidKey},
		{"empty", "weather", nil, ErrInvalidKey},
		{"unknown service", "nobody", pemOf(t, ed.Public()), ErrNoSuchService},
	}
	for _, c := range bad {
		if _, err := f.reg.AddKey(c.service, c.pem); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if !strings.Contains(fmt.Sprint(func() error { _, err := f.reg.AddKey("weather", bad[4].pem); return err }()), "private key") {
		t.Error("private key refusal does not say so")
	}
	// Trailing whitespace after the block is fine.
	kid, err := f.reg.AddKey("news", append(pemOf(t, ed.Public()), "\n\n  "...))
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := Thumbprint(ed.Public()); kid != want {
		t.Errorf("kid %q, want thumbprint %q", kid, want)
	}
	if err := f.reg.RemoveKey("news", "nope"); !errors.Is(err, ErrNoSuchKey) {
		t.Errorf("RemoveKey(nope): %v", err)
	}
	if err := f.reg.RemoveKey("news", f.esKid); !errors.Is(err, ErrNoSuchKey) {
		t.Errorf("RemoveKey of weather's key on news: %v", err)
	}
	if err := f.reg.RemoveKey("nobody", kid); !errors.Is(err, ErrNoSuchService) {
		t.Errorf("RemoveKey(nobody): %v", err)
	}
	if err := f.reg.RemoveKey("news", kid); err != nil {
		t.Fatal(err)
	}
	if s, _ := f.reg.Lookup("news"); len(s.Keys) != 1 {
		t.Errorf("news keys after removal: %+v", s.Keys)
	}
	// MaxKeys.
	for i := 1; i < MaxKeys; i++ {
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		if _, err := f.reg.AddKey("news", pemOf(t, k.Public())); err != nil {
			t.Fatal(err)
		}
	}
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := f.reg.AddKey("news", pemOf(t, k.Public())); !errors.Is(err, ErrTooManyKeys) {
		t.Errorf("key %d: %v", MaxKeys+1, err)
	}
}

// TestThumbprintRFC8037 checks the key id against RFC 8037 Appendix A.3.
func TestThumbprintRFC8037(t *testing.T) {
	x, _ := base64.RawURLEncoding.DecodeString("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
	kid, err := Thumbprint(ed25519.PublicKey(x))
	if err != nil || kid != "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k" {
		t.Fatalf("Thumbprint = %q, %v", kid, err)
	}
	// RFC 7638 members for EC, checked by recomputing from the coordinates.
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ek, _ := k.PublicKey.ECDH()
	pt := ek.Bytes()
	b64 := base64.RawURLEncoding.EncodeToString
	sum := sha256.Sum256([]byte(`{"crv":"P-256","kty":"EC","x":"` + b64(pt[1:33]) + `","y":"` + b64(pt[33:]) + `"}`))
	if kid, _ := Thumbprint(&k.PublicKey); kid != b64(sum[:]) {
		t.Errorf("EC thumbprint %q", kid)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if _, err := Thumbprint(&p384.PublicKey); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("P-384: %v", err)
	}
	if _, err := Thumbprint(ed25519.PublicKey(x[:5])); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("short Ed25519: %v", err)
	}
	if _, err := Thumbprint("x"); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("string: %v", err)
	}
}

func TestReloadFromStore(t *testing.T) {
	f := newFixture(t)
	rot, _ := f.reg.RotateSecret("news")
	reg2, err := NewRegistry(f.st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if svc, err := reg2.CheckSecret(rot.ClientID, rot.ClientSecret); err != nil || svc.Name != "news" {
		t.Errorf("reloaded CheckSecret: %q %v", svc.Name, err)
	}
	iss2, err := NewIssuer(f.st, reg2, testOrigin, nil)
	if err != nil {
		t.Fatal(err)
	}
	if iss2.KeyID() != f.iss.KeyID() {
		t.Error("server key not reloaded")
	}
	v2 := NewVerifier(reg2, iss2)
	tok := sign(t, signingES256, f.esKey, f.esKid, f.selfClaims())
	if svc, err := v2.VerifyToken(tok, f.now); err != nil || svc != "weather" {
		t.Errorf("self-signed after reload: %q %v", svc, err)
	}
	if svc, err := v2.VerifyToken(f.accessToken(t), f.now); err != nil || svc != "weather" {
		t.Errorf("access token after reload: %q %v", svc, err)
	}
	// A damaged record is an error, not silently dropped.
	bad := Service{Name: "broken", ClientID: "svc_1", SecretHash: []byte{1}}
	putService(t, f.st, bad)
	if _, err := NewRegistry(f.st, nil); err == nil {
		t.Error("damaged record accepted")
	}
	deleteService(t, f.st, "broken")
	s, _ := f.st.Services()
	s[1].Keys[0].Alg = AlgEdDSA // weather's ES256 key relabelled
	putService(t, f.st, s[1])
	// A key that does not match its record verifies nothing; it does not
	// stop the load (a node would keep what it read before).
	reg3, err := NewRegistry(f.st, nil)
	if err != nil {
		t.Fatalf("a relabelled key stopped the load: %v", err)
	}
	if _, err := NewVerifier(reg3, iss2).VerifyToken(tok, f.now); err == nil {
		t.Error("a token signed with the relabelled key was accepted")
	}
}

func TestNormalizeOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"https://push.example.com":      "https://push.example.com",
		"https://Push.Example.com/":     "https://push.example.com",
		"http://127.0.0.1:8080":         "http://127.0.0.1:8080",
		"HTTPS://push.example.com:8443": "https://push.example.com:8443",
	} {
		if got, err := NormalizeOrigin(in); err != nil || got != want {
			t.Errorf("NormalizeOrigin(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "push.example.com", "ftp://x", "https://", "https://x/push", "https://x?a=b", "https://u:p@x", "https://x#f"} {
		if _, err := NormalizeOrigin(bad); err == nil {
			t.Errorf("NormalizeOrigin(%q) accepted", bad)
		}
	}
	if _, err := NewIssuer(NewMemStore(), nil, "nope", nil); err == nil {
		t.Error("NewIssuer accepted a bad origin")
	}
}

func TestStoredServerKeyChecked(t *testing.T) {
	st := NewMemStore()
	st.PutServerKey(ServerKey{ID: "x", Seed: make([]byte, 32)})
	if _, err := NewIssuer(st, nil, testOrigin, nil); err == nil {
		t.Error("key id mismatch accepted")
	}
	st.PutServerKey(ServerKey{ID: "x", Seed: make([]byte, 5)})
	if _, err := NewIssuer(st, nil, testOrigin, nil); err == nil {
		t.Error("short seed accepted")
	}
}

// TestConcurrentUse runs registry changes, token issuing and verification
// at once (for -race).
func TestConcurrentUse(t *testing.T) {
	f := newFixture(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(3)
		go func() {
			defer wg.Done()
			name := "svc" + hex.EncodeToString([]byte{byte(i)})
			if _, err := f.reg.Add(name); err != nil {
				t.Error(err)
			}
			_, k, _ := ed25519.GenerateKey(rand.Reader)
			kid, err := f.reg.AddKey(name, pemOf(t, k.Public()))
			if err != nil {
				t.Error(err)
			}
			f.reg.RotateSecret(name)
			f.reg.RemoveKey(name, kid)
			f.reg.List()
		}()
		go func() {
			defer wg.Done()
			for range 20 {
				tok := sign(t, signingEdDSA, f.edKey, f.edKid, f.selfClaims())
				if _, err := f.v.VerifyToken(tok, f.now); err != nil {
					t.Error(err)
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range 20 {
				tok, _, err := f.iss.IssueToken("news", f.now)
				if err != nil {
					t.Error(err)
				}
				if _, err := f.v.VerifyToken(tok, f.now); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if n := len(f.reg.List()); n != 10 {
		t.Errorf("%d services", n)
	}
}
