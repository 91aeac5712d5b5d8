package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzVerifyDeviceToken: no (token, device id) pair makes the device
// identity check panic; every refusal is an ErrBadDeviceToken; a token is
// accepted only for the device it was issued to, and only with the signed
// header and claims the server issued (the fuzzer cannot forge an Ed25519
// signature; at most it can re-spell the signature's base64); and no token
// is both a device identity and a sender credential. The seed corpus in
// testdata/fuzz/FuzzVerifyDeviceToken holds malformed and hostile tokens;
// this run's genuine tokens are added here.
func FuzzVerifyDeviceToken(f *testing.F) {
	fx := newFixture(f)
	issued := map[string]string{} // device id -> signed part of its token
	for _, dev := range []string{"dev-1", "0123456789abcdef0123456789abcdef"} {
		tok, err := fx.iss.IssueDeviceToken(dev, fx.now)
		if err != nil {
			f.Fatal(err)
		}
		issued[dev] = tok[:strings.LastIndexByte(tok, '.')+1]
		f.Add(tok, dev)
		f.Add(tok, dev+"x")
		parts := strings.Split(tok, ".")
		f.Add(parts[0]+"."+parts[1]+"x."+parts[2], dev)
		f.Add(parts[0]+"."+parts[1]+".", dev)
	}
	access := fx.accessToken(f)
	f.Add(access, "weather")
	_, foreign, _ := ed25519.GenerateKey(rand.Reader)
	for _, m := range []jwt.SigningMethod{jwt.SigningMethodEdDSA, jwt.SigningMethodNone} {
		var key any = foreign
		if m == jwt.SigningMethodNone {
			key = jwt.UnsafeAllowNoneSignatureType
		}
		t := jwt.NewWithClaims(m, jwt.RegisteredClaims{Issuer: DeviceIssuer, Subject: "dev-1", Audience: jwt.ClaimStrings{DeviceAudience}})
		t.Header["kid"] = fx.iss.KeyID()
		t.Header["typ"] = "device+jwt"
		s, err := t.SignedString(key)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(s, "dev-1")
	}
	f.Fuzz(func(t *testing.T, tok, dev string) {
		err := fx.iss.VerifyDeviceToken(tok, dev)
		if err != nil {
			if !errors.Is(err, ErrBadDeviceToken) {
				t.Fatalf("refusal %v is not an ErrBadDeviceToken", err)
			}
			if err.Error() == "" {
				t.Fatal("refusal without a reason")
			}
		} else {
			signed, ok := issued[dev]
			if !ok || !strings.HasPrefix(tok, signed) {
				t.Fatalf("accepted %q for device %q, which was never issued it", tok, dev)
			}
			if _, err := fx.v.VerifyToken(tok, fx.now); err == nil {
				t.Fatalf("device token %q also accepted as a sender credential", tok)
			}
		}
		if svc, err := fx.v.VerifyToken(tok, fx.now); err == nil {
			if fx.iss.VerifyDeviceToken(tok, svc) == nil {
				t.Fatalf("sender credential %q also accepted as a device identity", tok)
			}
		}
	})
}
