package auth

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"filippo.io/edwards25519"
	"github.com/golang-jwt/jwt/v5"
)

// smallOrderKeys are Ed25519 public keys of small order: the identity, the
// point of order 2, one of order 8, and a non-canonical encoding of the
// identity (y = p + 1).
var smallOrderKeys = map[string]string{
	"identity":                "0100000000000000000000000000000000000000000000000000000000000000",
	"order 2":                 "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"order 8":                 "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
	"identity, non-canonical": "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
}

// forgeWithoutKey makes the token anyone can make for a small-order key:
// R the identity, S = 0.
func forgeWithoutKey(f *fixture, iss, kid string) string {
	claims := jwt.MapClaims{"iss": iss, "aud": testOrigin, "exp": f.now.Add(time.Hour).Unix()}
	hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"EdDSA","kid":"` + kid + `","typ":"JWT"}`))
	body, _ := json.Marshal(claims)
	sig := make([]byte, ed25519.SignatureSize)
	sig[0] = 1
	return hdr + "." + base64.RawURLEncoding.EncodeToString(body) + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// A key of small order is refused: against it crypto/ed25519 accepts a
// signature made without any private key.
func TestSmallOrderEd25519KeysAreRefused(t *testing.T) {
	f := newFixture(t)
	for name, h := range smallOrderKeys {
		pub, _ := hex.DecodeString(h)
		// The premise: against the identity the forgery verifies for any
		// message (against the others, for one message in 2 to 8 the
		// forger tries).
		if strings.HasPrefix(name, "identity") && !ed25519.Verify(pub, []byte("anything"), append([]byte{1}, make([]byte, 63)...)) {
			t.Fatalf("%s: crypto/ed25519 refuses the forgery; the test's premise is gone", name)
		}
		if _, err := f.reg.AddKey("news", pemOf(t, ed25519.PublicKey(pub))); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("AddKey(%s) = %v, want ErrInvalidKey", name, err)
		}
	}
	// A good key still goes in.
	pub, _, _ := ed25519.GenerateKey(nil)
	if _, err := f.reg.AddKey("news", pemOf(t, pub)); err != nil {
		t.Fatal(err)
	}
}

// offCurveKey returns 32 bytes that are no point of the curve (any 32
// bytes were taken as an Ed25519 key before keys were checked).
func offCurveKey(t *testing.T) []byte {
	t.Helper()
	for y := byte(2); y < 255; y++ {
		k := make([]byte, ed25519.PublicKeySize)
		k[0] = y
		if _, err := new(edwards25519.Point).SetBytes(k); err != nil {
			return k
		}
	}
	t.Fatal("no off-curve encoding found")
	return nil
}

// A key stored before today's checks refused it (of small order, or off
// the curve) does not stop the registry from loading, so a removal made
// elsewhere is still heard; it verifies nothing, stays listed (so that it
// can be removed), and the service's other keys go on working.
func TestAStoredRefusedKeyVerifiesNothing(t *testing.T) {
	small, _ := hex.DecodeString(smallOrderKeys["identity"])
	for name, pub := range map[string][]byte{"small order": small, "off the curve": offCurveKey(t)} {
		t.Run(name, func(t *testing.T) { testAStoredRefusedKey(t, pub) })
	}
}

func testAStoredRefusedKey(t *testing.T, pub []byte) {
	f := newFixture(t)
	der, err := x509.MarshalPKIXPublicKey(ed25519.PublicKey(pub))
	if err != nil {
		t.Fatal(err)
	}
	kid, err := Thumbprint(ed25519.PublicKey(pub))
	if err != nil {
		t.Fatal(err)
	}
	svc, _, _ := f.reg.snapshot("news")
	svc.Keys = append(svc.Keys, Key{ID: kid, Alg: AlgEdDSA, PKIX: der, Added: f.now})
	putService(t, f.st, svc)
	// Another writer (a node, the tool) removes weather meanwhile.
	other, err := NewRegistry(f.st, nil)
	if err != nil {
		t.Fatalf("a registry reading the stored key: %v", err)
	}
	if err := other.Remove("weather"); err != nil {
		t.Fatal(err)
	}
	if err := f.reg.Reload(); err != nil {
		t.Fatalf("Reload with the stored key: %v", err)
	}
	if _, err := f.reg.CheckSecret(f.weather.ClientID, f.weather.ClientSecret); err == nil {
		t.Fatal("the removal made elsewhere was not heard: weather's secret still works")
	}
	if _, err := f.v.VerifyToken(forgeWithoutKey(f, f.news.ClientID, kid), f.now); err == nil {
		t.Fatal("a token forged for the stored key authenticates")
	}
	if svc, _, _ := f.reg.snapshot("news"); len(svc.Keys) != 2 {
		t.Fatalf("news lists %d keys, want 2 (its own and the refused one, to remove)", len(svc.Keys))
	}
	good := sign(t, jwt.SigningMethodEdDSA, f.newsEd, f.newsK, jwt.MapClaims{"iss": f.news.ClientID, "aud": testOrigin, "exp": f.now.Add(time.Hour).Unix()})
	if svc, err := f.v.VerifyToken(good, f.now); err != nil || svc != "news" {
		t.Fatalf("news's own key: %q, %v", svc, err)
	}
	if err := f.reg.RemoveKey("news", kid); err != nil {
		t.Fatalf("RemoveKey(the refused key): %v", err)
	}
}
