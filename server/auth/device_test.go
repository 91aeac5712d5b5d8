package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

func TestDeviceIdentityTokens(t *testing.T) {
	f := newFixture(t)
	tok, err := f.iss.IssueDeviceToken("dev-1", f.now)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.iss.VerifyDeviceToken(tok, "dev-1"); err != nil {
		t.Fatalf("own token refused: %v", err)
	}
	access, _, _ := f.iss.IssueToken("news", f.now)
	_, foreign, _ := ed25519.GenerateKey(rand.Reader)
	forged := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.RegisteredClaims{Issuer: DeviceIssuer, Subject: "dev-1",
		Audience: jwt.ClaimStrings{DeviceAudience}})
	forged.Header["kid"] = f.iss.KeyID()
	forged.Header["typ"] = "device+jwt"
	forgedTok, _ := forged.SignedString(foreign)
	none := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.RegisteredClaims{Issuer: DeviceIssuer, Subject: "dev-1",
		Audience: jwt.ClaimStrings{DeviceAudience}})
	none.Header["kid"] = f.iss.KeyID()
	none.Header["typ"] = "device+jwt"
	noneTok, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	parts := strings.Split(tok, ".")
	for name, c := range map[string]struct{ token, device string }{
		"another device's token":  {tok, "dev-2"},
		"an access token":         {access, "news"},
		"signed with another key": {forgedTok, "dev-1"},
		"alg none":                {noneTok, "dev-1"},
		"altered payload":         {parts[0] + "." + parts[1] + "x." + parts[2], "dev-1"},
		"garbage":                 {"not-a-token", "dev-1"},
		"empty":                   {"", "dev-1"},
		"oversized":               {strings.Repeat("a", MaxTokenBytes+1), "dev-1"},
	} {
		if err := f.iss.VerifyDeviceToken(c.token, c.device); !errors.Is(err, ErrBadDeviceToken) {
			t.Errorf("%s: %v, want ErrBadDeviceToken", name, err)
		}
	}
	// A device token is never an access token.
	if _, err := f.v.VerifyToken(tok, f.now); err == nil {
		t.Error("a device token was accepted as an access token")
	}
	// Rotating the server key retires every device identity.
	if err := f.iss.RotateKey(f.now); err != nil {
		t.Fatal(err)
	}
	if err := f.iss.VerifyDeviceToken(tok, "dev-1"); !errors.Is(err, ErrBadDeviceToken) {
		t.Errorf("token survived key rotation: %v", err)
	}
}
