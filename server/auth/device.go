package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// DeviceAudience and DeviceIssuer name device identity tokens. They do not
// depend on the server's origin, so a server that moves keeps its devices;
// they differ from access tokens' (the origin), so neither kind is ever
// accepted as the other. The server's own key is what makes them its own.
const (
	DeviceAudience = "urn:openmpns:device"
	DeviceIssuer   = "urn:openmpns:server"
)

// ErrBadDeviceToken is returned for a device identity token that does not
// verify or does not name the device that presents it.
var ErrBadDeviceToken = errors.New("auth: bad device identity token")

// IssueDeviceToken returns the identity token of a new device: a JWT signed
// with the server's key (EdDSA), sub = the device id, aud = DeviceAudience,
// iss = DeviceIssuer, iat = now and a random jti; it does not expire. The device
// presents it at every hello. Rotating the server key (RotateKey)
// invalidates every device identity: devices then register again.
func (i *Issuer) IssueDeviceToken(deviceID string, now time.Time) (string, error) {
	jti := make([]byte, 16)
	rand.Read(jti)
	c := jwt.RegisteredClaims{
		Issuer:   DeviceIssuer,
		Subject:  deviceID,
		Audience: jwt.ClaimStrings{DeviceAudience},
		IssuedAt: jwt.NewNumericDate(now.Truncate(time.Second)),
		ID:       base64.RawURLEncoding.EncodeToString(jti),
	}
	key, kid := i.current()
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	t.Header["kid"] = kid
	t.Header["typ"] = "device+jwt"
	s, err := t.SignedString(key)
	if err != nil {
		return "", fmt.Errorf("auth: sign device token: %w", err)
	}
	return s, nil
}

// VerifyDeviceToken checks a device identity token presented by deviceID:
// EdDSA only, signed by the server's current key, iss = DeviceIssuer, aud =
// DeviceAudience, sub = deviceID.
func (i *Issuer) VerifyDeviceToken(token, deviceID string) error {
	if len(token) > MaxTokenBytes {
		return fmt.Errorf("%w: too long", ErrBadDeviceToken)
	}
	key, kid := i.current()
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{AlgEdDSA}),
		jwt.WithIssuer(DeviceIssuer),
		jwt.WithAudience(DeviceAudience),
	)
	var c jwt.RegisteredClaims
	_, err := p.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		if k, _ := t.Header["kid"].(string); k != kid {
			return nil, errors.New("signed with another key")
		}
		if typ, _ := t.Header["typ"].(string); typ != "device+jwt" {
			return nil, errors.New("not a device token")
		}
		return key.Public().(ed25519.PublicKey), nil
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadDeviceToken, err)
	}
	if c.Subject != deviceID {
		return fmt.Errorf("%w: it names another device", ErrBadDeviceToken)
	}
	return nil
}
