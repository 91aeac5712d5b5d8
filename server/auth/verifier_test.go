package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestAccessTokenAccepted(t *testing.T) {
	f := newFixture(t)
	tok, ttl, err := f.iss.IssueToken("weather", f.now)
	if err != nil {
		t.Fatal(err)
	}
	if ttl != 24*time.Hour {
		t.Errorf("expiresIn = %v", ttl)
	}
	parts := strings.Split(tok, ".")
	var hdr, claims map[string]any
	for i, v := range []*map[string]any{&hdr, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatal(err)
		}
	}
	if hdr["alg"] != "EdDSA" || hdr["kid"] != f.iss.KeyID() {
		t.Errorf("header = %v", hdr)
	}
	if claims["iss"] != testOrigin || claims["sub"] != "weather" || claims["client_id"] != f.weather.ClientID {
		t.Errorf("claims = %v", claims)
	}
	if aud, _ := claims["aud"].([]any); len(aud) != 1 || aud[0] != testOrigin {
		t.Errorf("aud = %v", claims["aud"])
	}
	if claims["exp"].(float64)-claims["iat"].(float64) != 86400 || claims["iat"].(float64) != float64(f.now.Unix()) {
		t.Errorf("iat/exp = %v/%v", claims["iat"], claims["exp"])
	}
	if jti, _ := claims["jti"].(string); len(jti) < 16 {
		t.Errorf("jti = %q", jti)
	}
	for _, at := range []time.Duration{0, time.Hour, 24*time.Hour - time.Second} {
		if svc, err := f.v.VerifyToken(tok, f.now.Add(at)); err != nil || svc != "weather" {
			t.Errorf("at +%v: %q, %v", at, svc, err)
		}
	}
	if _, _, err := f.iss.IssueToken("nobody", f.now); !errors.Is(err, ErrNoSuchService) {
		t.Errorf("IssueToken(nobody): %v", err)
	}
}

func TestSelfSignedAccepted(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name   string
		m      jwt.SigningMethod
		key    any
		kid    string
		change func(jwt.MapClaims)
	}{
		{"ES256", jwt.SigningMethodES256, f.esKey, f.esKid, nil},
		{"EdDSA", jwt.SigningMethodEdDSA, f.edKey, f.edKid, nil},
		{"no iat", jwt.SigningMethodES256, f.esKey, f.esKid, func(c jwt.MapClaims) { delete(c, "iat") }},
		{"sub = client_id", jwt.SigningMethodEdDSA, f.edKey, f.edKid, func(c jwt.MapClaims) { c["sub"] = f.weather.ClientID }},
		{"aud array with others", jwt.SigningMethodEdDSA, f.edKey, f.edKid, func(c jwt.MapClaims) { c["aud"] = []string{"https://x.example", testOrigin} }},
		{"exactly 24 h", jwt.SigningMethodEdDSA, f.edKey, f.edKid, func(c jwt.MapClaims) { c["exp"] = f.now.Add(24 * time.Hour).Unix() }},
		{"iat and nbf 20 s ahead (skew)", jwt.SigningMethodEdDSA, f.edKey, f.edKid, func(c jwt.MapClaims) {
			c["iat"], c["nbf"] = f.now.Add(20*time.Second).Unix(), f.now.Add(20*time.Second).Unix()
		}},
		{"news signs its own", jwt.SigningMethodEdDSA, f.newsEd, f.newsK, func(c jwt.MapClaims) { c["iss"] = f.news.ClientID }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			claims := f.selfClaims()
			if c.change != nil {
				c.change(claims)
			}
			want := "weather"
			if claims["iss"] == f.news.ClientID {
				want = "news"
			}
			svc, err := f.v.VerifyToken(sign(t, c.m, c.key, c.kid, claims), f.now)
			if err != nil || svc != want {
				t.Fatalf("got %q, %v; want %q", svc, err, want)
			}
		})
	}
}

// TestTokenRefusals covers every way a token must be refused, each with its
// precise reason. Every case gets a fresh fixture.
func TestTokenRefusals(t *testing.T) {
	otherEd := func() ed25519.PrivateKey { _, k, _ := ed25519.GenerateKey(rand.Reader); return k }
	cases := []struct {
		name   string
		token  func(t *testing.T, f *fixture) string
		want   error
		detail error // a jwt/v5 error the refusal must also match, if any
	}{
		{"forged signature on an access token", func(t *testing.T, f *fixture) string {
			tok := f.accessToken(t)
			i := strings.LastIndexByte(tok, '.')
			sig, _ := base64.RawURLEncoding.DecodeString(tok[i+1:])
			sig[0] ^= 1
			return tok[:i+1] + base64.RawURLEncoding.EncodeToString(sig)
		}, ErrBadSignature, jwt.ErrTokenSignatureInvalid},
		{"access token claims edited (sub news)", func(t *testing.T, f *fixture) string {
			p := strings.Split(f.accessToken(t), ".")
			b, _ := base64.RawURLEncoding.DecodeString(p[1])
			b = []byte(strings.Replace(string(b), `"sub":"weather"`, `"sub":"news"`, 1))
			return p[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + p[2]
		}, ErrBadSignature, jwt.ErrTokenSignatureInvalid},
		{"access token signed by another Ed25519 key with the server's kid", func(t *testing.T, f *fixture) string {
			return sign(t, jwt.SigningMethodEdDSA, otherEd(), f.iss.KeyID(), jwt.MapClaims{
				"iss": testOrigin, "aud": testOrigin, "sub": "weather", "client_id": f.weather.ClientID,
				"iat": f.now.Unix(), "exp": f.now.Add(time.Hour).Unix()})
		}, ErrBadSignature, jwt.ErrTokenSignatureInvalid},
		{"self-signed with another key under weather's kid", func(t *testing.T, f *fixture) string {
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			return sign(t, jwt.SigningMethodES256, k, f.esKid, f.selfClaims())
		}, ErrBadSignature, jwt.ErrTokenSignatureInvalid},
		{"alg none, server issuer", func(t *testing.T, f *fixture) string {
			return sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, f.iss.KeyID(), jwt.MapClaims{
				"iss": testOrigin, "aud": testOrigin, "sub": "weather", "client_id": f.weather.ClientID,
				"iat": f.now.Unix(), "exp": f.now.Add(time.Hour).Unix()})
		}, ErrBadAlgorithm, nil},
		{"alg none, self-signed", func(t *testing.T, f *fixture) string {
			return sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, f.edKid, f.selfClaims())
		}, ErrBadAlgorithm, nil},
		{"alg None (case variant) with a signature", func(t *testing.T, f *fixture) string {
			p := strings.Split(sign(t, jwt.SigningMethodEdDSA, f.edKey, f.edKid, f.selfClaims()), ".")
			h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"None","kid":"` + f.edKid + `","typ":"JWT"}`))
			return h + "." + p[1] + "." + p[2]
		}, ErrBadAlgorithm, nil},
		{"HS256 keyed with weather's public key PEM", func(t *testing.T, f *fixture) string {
			return sign(t, jwt.SigningMethodHS256, pemOf(t, f.esKey.Public()), f.esKid, f.selfClaims())
		}, ErrBadAlgorithm, nil},
		{"HS256 keyed with weather's public key DER", func(t *testing.T, f *fixture) string {
			der, _ := x509.MarshalPKIXPublicKey(f.edKey.Public())
			return sign(t, jwt.SigningMethodHS256, der, f.edKid, f.selfClaims())
		}, ErrBadAlgorithm, nil},
		{"HS256 keyed with the server's public key", func(t *testing.T, f *fixture) string {
			return sign(t, jwt.SigningMethodHS256, []byte(f.iss.PublicKey()), f.iss.KeyID(), jwt.MapClaims{
				"iss": testOrigin, "aud": testOrigin, "sub": "weather", "client_id": f.weather.ClientID,
				"iat": f.now.Unix(), "exp": f.now.Add(time.Hour).Unix()})
		}, ErrBadAlgorithm, nil},
		{"RS256", func(t *testing.T, f *fixture) string {
			k, _ := rsa.GenerateKey(rand.Reader, 2048)
			return sign(t, jwt.SigningMethodRS256, k, f.esKid, f.selfClaims())
		}, ErrBadAlgorithm, nil},
		{"ES384", func(t *testing.T, f *fixture) string {
			k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
			return sign(t, jwt.SigningMethodES384, k, f.esKid, f.selfClaims())
		}, ErrBadAlgorithm, nil},
		{"EdDSA header on the ES256 key's kid", func(t *testing.T, f *fixture) string {
			return sign(t, jwt.SigningMethodEdDSA, f.edKey, f.esKid, f.selfClaims())
		}, ErrBadAlgorithm, nil},
		{"ES256 header on the Ed25519 key's kid", func(t *testing.T, f *fixture) string {
			return sign(t, jwt.SigningMethodES256, f.esKey, f.edKid, f.selfClaims())
		}, ErrBadAlgorithm, nil},
		{"ES256 with the server's issuer", func(t *testing.T, f *fixture) string {
			return sign(t, jwt.SigningMethodES256, f.esKey, f.iss.KeyID(), jwt.MapClaims{
				"iss": testOrigin, "aud": testOrigin, "sub": "weather", "client_id": f.weather.ClientID,
				"iat": f.now.Unix(), "exp": f.now.Add(time.Hour).Unix()})
		}, ErrBadAlgorithm, nil},
		{"expired access token", func(t *testing.T, f *fixture) string {
			tok := f.accessToken(t)
			f.now = f.now.Add(24*time.Hour + time.Second)
			return tok
		}, ErrExpired, jwt.ErrTokenExpired},
		{"access token at exactly exp", func(t *testing.T, f *fixture) string {
			tok := f.accessToken(t)
			f.now = f.now.Add(24 * time.Hour)
			return tok
		}, ErrExpired, jwt.ErrTokenExpired},
		{"expired self-signed", func(t *testing.T, f *fixture) string {
			c := f.selfClaims()
			c["iat"], c["exp"] = f.now.Add(-time.Hour).Unix(), f.now.Add(-time.Second).Unix()
			return sign(t, jwt.SigningMethodES256, f.esKey, f.esKid, c)
		}, ErrExpired, jwt.ErrTokenExpired},
		{"no exp", func(t *testing.T, f *fixture) string {
			c := f.selfClaims()
			delete(c, "exp")
			return sign(t, jwt.SigningMethodEdDSA, f.edKey, f.edKid, c)
		}, ErrExpired, jwt.ErrTokenRequiredClaimMissing},
		{"wrong audience", func(t *testing.T, f *fixture) string {
			c := f.selfClaims()
			c["aud"] = "https://push.example.org"
			return sign(t, jwt.SigningMethodEdDSA, f.edKey, f.edKid, c)
		}, ErrWrongAudience, jwt.ErrTokenInvalidAudience},
		{"audience with a path", func(t *testing.T, f *fixture) string {
			c := f.selfClaims()
			c["aud"] = testOrigin + "/push/"
			return sign(t, jwt.SigningMethodEdDSA, f.edKey, f.edKid, c)
		}, ErrWrongAudience, jwt.ErrTokenInvalidAudience},
		{"no audience", func(t *testing.T, f *fixture) string {
			c := f.selfClaims()
			delete(c, "aud")
			return sign(t, jwt.SigningMethodEdDSA, f.edKey, f.edKid, c)
		}, ErrWrongAudience, nil},
		{"wrong issuer: the service name instead of the client_id", func(t *testing.T, f *fixture) string {
			c := f.selfClaims()
			c["iss"] = "weather"
			return sign(t, jwt.SigningMethodEdDSA, f.edKey, f.edKid, c)
		}, ErrUnknownIssuer, nil},
		{"wrong issuer: another server's origin", func(t *testing.T, f *fixture) string {
			other, err := NewIssuer(NewMemStore(), f.reg, "https://push.example.org", nil)
			if err != nil {
				t.Fatal(err)
			}
			tok, _, _ := other.IssueToken("weather", f.now)
			return tok
		}, ErrUnknownIssuer, nil},
		{"no issuer", func(t *testing.T, f *fixture) string {
			c := f.selfClaims()
			delete(c, "iss")
			return sign(t, jwt.SigningMethodEdDSA, f.edKey, f.edKid, c)
		}, ErrUnknownIssuer, nil},
		{"news's client_id with weather's key", func(t *testing.T, f *fixture) string {
			c := f.selfClaims()
			c["iss"] = f.news.ClientID
			return sign(t, jwt.SigningMethodEdDSA, f.edKey, f.edKid, c)
		}, ErrUnknownKey, nil},
		{"exp 25 h ahead", func(t *testing.T, f *fixture) string {
			c := f.selfClaims()
			delete(c, "iat")
			c["exp"] = f.now.Add(25 * time.Hour).Unix()
			return sign(t, jwt.SigningMethodEdDSA, f.edKey, f.edKid, c)
		}, ErrLifetimeTooLong, nil},
		{"exp 24 h 1 min ahead", func(t *testing.T, f *fixture) string {
			c := f.selfClaims()
			delete(c, "iat")
			c["exp"] = f.now.Add(24*time.Hour + time.Minute).Unix()
			return sign(t, jwt.SigningMethodEdDSA, f.edKey, f.edKid, c)
		}, ErrLifetimeTooLong, nil},
		{"exp more than 24 h after iat", func(t *testing.T, f *fixture) string {
			c := f.selfClaims()
			c["iat"], c["exp"] = f.now.Add(-2*time.Hour).Unix(), f.now.Add(22*time.Hour+time.Second).Unix()
			return sign(t, jwt.SigningMethodEdDSA, f.edKey, f.edKid, c)
		}, ErrLifetimeTooLong, nil},
		{"iat in the future", func(t *testing.T, f *fixture) string {
			c := f.selfClaims()
			c["iat"] = f.now.Add(time.Minute).Unix()
			return sign(t, jwt.SigningMethodEdDSA, f.edKey, f.edKid, c)
		}, ErrNotYetValid, nil},
		{"nbf in the future", func(t *testing.T, f *fixture) string {
			c := f.selfClaims()
			c["nbf"] = f.now.Add(time.Minute).Unix()
			return sign(t, jwt.SigningMethodEdDSA, f.edKey, f.edKid, c)
		}, ErrNotYetValid, nil},
		{"unknown kid", func(t *testing.T, f *fixture) string {
			return sign(t, jwt.SigningMethodEdDSA, f.edKey, "no-such-key", f.selfClaims())
		}, ErrUnknownKey, nil},
		{"no kid", func(t *testing.T, f *fixture) string {
			return sign(t, jwt.SigningMethodEdDSA, f.edKey, "", f.selfClaims())
		}, ErrUnknownKey, nil},
		{"news's kid in weather's token", func(t *testing.T, f *fixture) string {
			return sign(t, jwt.SigningMethodEdDSA, f.newsEd, f.newsK, f.selfClaims())
		}, ErrUnknownKey, nil},
		{"removed key", func(t *testing.T, f *fixture) string {
			tok := sign(t, jwt.SigningMethodEdDSA, f.edKey, f.edKid, f.selfClaims())
			if err := f.reg.RemoveKey("weather", f.edKid); err != nil {
				t.Fatal(err)
			}
			return tok
		}, ErrUnknownKey, nil},
		{"access token after the server key was rotated", func(t *testing.T, f *fixture) string {
			tok := f.accessToken(t)
			if err := f.iss.RotateKey(f.now); err != nil {
				t.Fatal(err)
			}
			return tok
		}, ErrUnknownKey, nil},
		{"access token after the secret was rotated", func(t *testing.T, f *fixture) string {
			tok := f.accessToken(t)
			if _, err := f.reg.RotateSecret("weather"); err != nil {
				t.Fatal(err)
			}
			return tok
		}, ErrRevoked, nil},
		{"access token after remove and add again", func(t *testing.T, f *fixture) string {
			tok := f.accessToken(t)
			if err := f.reg.Remove("weather"); err != nil {
				t.Fatal(err)
			}
			if _, err := f.reg.Add("weather"); err != nil {
				t.Fatal(err)
			}
			return tok
		}, ErrRevoked, nil},
		{"access token of a removed service", func(t *testing.T, f *fixture) string {
			tok := f.accessToken(t)
			if err := f.reg.Remove("weather"); err != nil {
				t.Fatal(err)
			}
			return tok
		}, ErrUnknownService, nil},
		{"self-signed token of a removed service", func(t *testing.T, f *fixture) string {
			tok := sign(t, jwt.SigningMethodEdDSA, f.edKey, f.edKid, f.selfClaims())
			if err := f.reg.Remove("weather"); err != nil {
				t.Fatal(err)
			}
			return tok
		}, ErrUnknownIssuer, nil},
		{"self-signed with sub of another service", func(t *testing.T, f *fixture) string {
			c := f.selfClaims()
			c["sub"] = "news"
			return sign(t, jwt.SigningMethodEdDSA, f.edKey, f.edKid, c)
		}, ErrBadClaims, nil},
		{"server-signed token without iat", func(t *testing.T, f *fixture) string {
			key, kid := f.iss.current()
			return sign(t, jwt.SigningMethodEdDSA, key, kid, jwt.MapClaims{
				"iss": testOrigin, "aud": testOrigin, "sub": "weather", "client_id": f.weather.ClientID,
				"exp": f.now.Add(time.Hour).Unix()})
		}, ErrBadClaims, nil},
		{"exp of the wrong type", func(t *testing.T, f *fixture) string {
			c := f.selfClaims()
			c["exp"] = "tomorrow"
			return sign(t, jwt.SigningMethodEdDSA, f.edKey, f.edKid, c)
		}, ErrMalformedToken, jwt.ErrTokenMalformed},
		{"not a JWT", func(*testing.T, *fixture) string { return "hello" }, ErrMalformedToken, jwt.ErrTokenMalformed},
		{"three garbage parts", func(*testing.T, *fixture) string { return "a.b.c" }, ErrMalformedToken, jwt.ErrTokenMalformed},
		{"padded base64", func(t *testing.T, f *fixture) string {
			p := strings.Split(f.accessToken(t), ".")
			return p[0] + "=." + p[1] + "." + p[2]
		}, ErrMalformedToken, jwt.ErrTokenMalformed},
		{"too long", func(t *testing.T, f *fixture) string { return strings.Repeat("a", MaxTokenBytes+1) }, ErrMalformedToken, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			tok := c.token(t, f)
			svc, err := f.v.VerifyToken(tok, f.now)
			if err == nil {
				t.Fatalf("accepted as %q", svc)
			}
			if svc != "" {
				t.Errorf("service %q returned with an error", svc)
			}
			if !errors.Is(err, ErrInvalidCredentials) || !errors.Is(err, c.want) {
				t.Fatalf("error %v; want %v", err, c.want)
			}
			if c.detail != nil && !errors.Is(err, c.detail) {
				t.Errorf("error %v does not match %v", err, c.detail)
			}
			if StatusFor(err) != http.StatusUnauthorized {
				t.Errorf("StatusFor = %d", StatusFor(err))
			}
			// The same through Authenticate.
			r := httptest.NewRequest("POST", "/push/x", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			if _, err2 := f.v.Authenticate(r, f.now); !errors.Is(err2, c.want) {
				t.Errorf("Authenticate: %v", err2)
			}
		})
	}
}

// TestAnotherServicesToken: valid credentials of another service are
// accepted as that service; it is the caller that compares with the
// channel's service and answers 403.
func TestAnotherServicesToken(t *testing.T) {
	f := newFixture(t)
	newsTok, _, err := f.iss.IssueToken("news", f.now)
	if err != nil {
		t.Fatal(err)
	}
	c := f.selfClaims()
	c["iss"] = f.news.ClientID
	newsSelf := sign(t, jwt.SigningMethodEdDSA, f.newsEd, f.newsK, c)
	const channelService = "weather"
	for _, tok := range []string{newsTok, newsSelf} {
		r := httptest.NewRequest("POST", "/push/x", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		svc, err := f.v.Authenticate(r, f.now)
		if err != nil || svc != "news" {
			t.Fatalf("Authenticate = %q, %v; want news", svc, err)
		}
		if status := pushStatus(channelService, svc, err); status != http.StatusForbidden {
			t.Errorf("status %d, want 403", status)
		}
	}
	if status := pushStatus(channelService, "weather", nil); status != http.StatusOK {
		t.Errorf("own service: %d", status)
	}
}

// pushStatus is how the push handler is meant to combine Authenticate with
// the channel's service.
func pushStatus(channelService, svc string, err error) int {
	switch {
	case errors.Is(err, ErrNoCredentials) && channelService == "":
		return http.StatusOK // unauthenticated sender, daily quota applies
	case err != nil:
		return StatusFor(err)
	case svc != channelService:
		return http.StatusForbidden
	}
	return http.StatusOK
}

func TestAuthenticateHeaders(t *testing.T) {
	f := newFixture(t)
	tok := f.accessToken(t)
	cases := []struct {
		name    string
		headers []string
		want    error
	}{
		{"none", nil, ErrNoCredentials},
		{"Bearer", []string{"Bearer " + tok}, nil},
		{"lower-case scheme, extra spaces", []string{"bearer   " + tok + " "}, nil},
		{"Basic", []string{"Basic " + base64.StdEncoding.EncodeToString([]byte(f.weather.ClientID+":"+f.weather.ClientSecret))}, ErrUnsupportedScheme},
		{"bare token", []string{tok}, ErrUnsupportedScheme},
		{"Bearer without token", []string{"Bearer"}, ErrMalformedToken},
		{"two headers", []string{"Bearer " + tok, "Bearer " + tok}, ErrUnsupportedScheme},
		{"empty header", []string{""}, ErrUnsupportedScheme},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/push/x", nil)
			for _, h := range c.headers {
				r.Header.Add("Authorization", h)
			}
			svc, err := f.v.Authenticate(r, f.now)
			if c.want == nil {
				if err != nil || svc != "weather" {
					t.Fatalf("%q, %v", svc, err)
				}
				return
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			if c.want == ErrNoCredentials && errors.Is(err, ErrInvalidCredentials) {
				t.Error("no credentials must not match ErrInvalidCredentials")
			}
		})
	}
}

func TestChallengeAndStatus(t *testing.T) {
	if got := Challenge(ErrNoCredentials); got != `Bearer realm="openmpns"` {
		t.Errorf("Challenge(no credentials) = %s", got)
	}
	got := Challenge(invalid(ErrExpired, errors.New(`with "quotes"`+"\n")))
	if got != `Bearer realm="openmpns", error="invalid_token", error_description="token expired"` {
		t.Errorf("Challenge(expired) = %s", got)
	}
	if StatusFor(ErrNoCredentials) != 401 || StatusFor(invalid(ErrBadSignature, nil)) != 401 || StatusFor(errors.New("x")) != 500 {
		t.Error("StatusFor")
	}
	e := invalid(ErrExpired, jwt.ErrTokenExpired)
	if !strings.Contains(e.Error(), "invalid credentials: token expired: token is expired") {
		t.Errorf("Error() = %s", e)
	}
}

func TestOptional(t *testing.T) {
	f := newFixture(t)
	o := f.v.Optional()
	r := httptest.NewRequest("POST", "/push/x", nil)
	if svc, err := o.Authenticate(r, f.now); svc != "" || err != nil {
		t.Errorf("no credentials: %q %v", svc, err)
	}
	r.Header.Set("Authorization", "Bearer "+f.accessToken(t))
	if svc, err := o.Authenticate(r, f.now); svc != "weather" || err != nil {
		t.Errorf("token: %q %v", svc, err)
	}
	r.Header.Set("Authorization", "Bearer x.y.z")
	if _, err := o.Authenticate(r, f.now); !errors.Is(err, ErrMalformedToken) {
		t.Errorf("bad token: %v", err)
	}
}
