package auth

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MaxTokenBytes bounds the length of a bearer token.
const MaxTokenBytes = 8 << 10

// Verifier authenticates push requests. It is safe for concurrent use.
//
// Bearer tokens are accepted in two forms, told apart by their iss claim:
//
//   - access tokens issued by this server (Issuer): iss = the origin, alg
//     EdDSA, kid = the server key id, sub = a registered service, client_id
//     and secret generation still current (rotating the secret or removing
//     the service revokes them), iat present;
//   - self-signed tokens: iss = the service's client_id (not its name: a
//     client_id can never be mistaken for the origin, and it is what the
//     service already uses at /accesstoken), kid = one of its registered key
//     ids, alg = the algorithm of that key (ES256 for P-256, EdDSA for
//     Ed25519), sub absent or equal to iss (RFC 7523 style).
//
// For both: aud must name the origin, exp is required, in the future (no
// leeway) and at most MaxTokenLifetime (+Leeway) ahead of now and at most
// MaxTokenLifetime after iat; nbf and iat may not be more than Leeway in the
// future. The key is always chosen by iss and kid and the alg header must
// match it: "none", HMAC and RSA tokens are refused before any key is looked
// up. jti is not tracked (tokens are reusable until they expire, as WNS's).
type Verifier struct {
	reg    *Registry
	iss    *Issuer
	origin string
}

// NewVerifier returns a Verifier for the services of reg and the access
// tokens of iss; iss.Origin is the audience every token must name.
func NewVerifier(reg *Registry, iss *Issuer) *Verifier {
	return &Verifier{reg: reg, iss: iss, origin: iss.Origin()}
}

// Authenticate returns the service a push request proves to come from.
//
//   - A TLS connection with a verified client certificate (the TLS server
//     must use ClientCAs and VerifyClientCertIfGiven or stricter, so the
//     chain and the expiry are checked by crypto/tls): the leaf's subject
//     CommonName must be a registered service, and it is the answer. A
//     certificate without a verified chain is refused
//     (ErrUnverifiedCertificate), never ignored.
//   - Otherwise (or in addition) "Authorization: Bearer <jwt>", see
//     VerifyToken. With both a certificate and a token, they must name the
//     same service.
//   - Neither: ErrNoCredentials.
//
// Every other failure matches ErrInvalidCredentials. Both are 401s.
// Authenticate does not know the channel: the caller compares the returned
// service with the channel's and answers 403 if they differ (401 when the
// request carries a client certificate: MPNS's answer to a certificate for
// another service name).
func (v *Verifier) Authenticate(r *http.Request, now time.Time) (string, error) {
	authz := r.Header.Values("Authorization")
	certSvc := ""
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		if len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
			return "", invalid(ErrUnverifiedCertificate, nil)
		}
		svc, err := v.VerifyCertificate(r.TLS.VerifiedChains[0][0])
		if err != nil {
			return "", err
		}
		if len(authz) == 0 {
			return svc, nil
		}
		certSvc = svc
	}
	if len(authz) == 0 {
		return "", ErrNoCredentials
	}
	if len(authz) > 1 {
		return "", invalid(ErrUnsupportedScheme, errors.New("more than one Authorization header"))
	}
	scheme, tok, _ := strings.Cut(strings.TrimSpace(authz[0]), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", invalid(ErrUnsupportedScheme, nil)
	}
	svc, err := v.VerifyToken(strings.TrimSpace(tok), now)
	if err != nil {
		return "", err
	}
	if certSvc != "" && certSvc != svc {
		return "", invalid(ErrConflictingCredentials, fmt.Errorf("certificate for %q, token for %q", certSvc, svc))
	}
	return svc, nil
}

// VerifyCertificate returns the service a verified client certificate names
// by its subject CommonName. It does not verify the chain: pass only a leaf
// of tls.ConnectionState.VerifiedChains.
func (v *Verifier) VerifyCertificate(leaf *x509.Certificate) (string, error) {
	cn := leaf.Subject.CommonName
	if _, _, ok := v.reg.snapshot(cn); !ok {
		return "", invalid(ErrUnknownService, fmt.Errorf("client certificate CN %q", cn))
	}
	return cn, nil
}

// VerifyToken checks a bearer token (see Verifier) at time now and returns
// the service it authenticates. Errors match ErrInvalidCredentials.
func (v *Verifier) VerifyToken(token string, now time.Time) (string, error) {
	if token == "" || len(token) > MaxTokenBytes {
		return "", invalid(ErrMalformedToken, fmt.Errorf("token of %d bytes", len(token)))
	}
	var c tokenClaims
	var selfSigned string // the service of a self-signed token
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{AlgES256, AlgEdDSA}),
		jwt.WithAudience(v.origin),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithStrictDecoding(),
	)
	t, err := p.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		alg := t.Method.Alg()
		if c.Issuer == v.origin {
			key, skid := v.iss.current()
			if kid != skid {
				return nil, invalid(ErrUnknownKey, fmt.Errorf("kid %q is not the server's key", kid))
			}
			if alg != AlgEdDSA {
				return nil, invalid(ErrBadAlgorithm, fmt.Errorf("alg %s, the server's key is EdDSA", alg))
			}
			return key.Public(), nil
		}
		name, ok := v.reg.byClientID(c.Issuer)
		if !ok {
			return nil, invalid(ErrUnknownIssuer, fmt.Errorf("iss %q", c.Issuer))
		}
		_, keys, _ := v.reg.snapshot(name)
		k, ok := keys[kid]
		if !ok {
			return nil, invalid(ErrUnknownKey, fmt.Errorf("service %q has no key %q", name, kid))
		}
		if k.alg != alg {
			return nil, invalid(ErrBadAlgorithm, fmt.Errorf("alg %s, key %s is %s", alg, kid, k.alg))
		}
		selfSigned = name
		return k.pub, nil
	})
	if err != nil {
		return "", classify(err, t, &c)
	}
	exp := c.ExpiresAt.Time
	if c.NotBefore != nil && c.NotBefore.After(now.Add(Leeway)) {
		return "", invalid(ErrNotYetValid, fmt.Errorf("nbf %s is after %s", c.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339)))
	}
	if c.IssuedAt != nil {
		if c.IssuedAt.After(now.Add(Leeway)) {
			return "", invalid(ErrNotYetValid, fmt.Errorf("iat %s is after %s", c.IssuedAt.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339)))
		}
		if exp.Sub(c.IssuedAt.Time) > MaxTokenLifetime {
			return "", invalid(ErrLifetimeTooLong, fmt.Errorf("exp is %s after iat", exp.Sub(c.IssuedAt.Time)))
		}
	}
	if exp.Sub(now) > MaxTokenLifetime+Leeway {
		return "", invalid(ErrLifetimeTooLong, fmt.Errorf("exp is %s ahead", exp.Sub(now).Round(time.Second)))
	}
	if selfSigned != "" {
		if c.Subject != "" && c.Subject != c.Issuer {
			return "", invalid(ErrBadClaims, fmt.Errorf("sub %q: want absent or the client_id", c.Subject))
		}
		return selfSigned, nil
	}
	// An access token of this server.
	if c.IssuedAt == nil {
		return "", invalid(ErrBadClaims, errors.New("access token without iat"))
	}
	svc, _, ok := v.reg.snapshot(c.Subject)
	if !ok {
		return "", invalid(ErrUnknownService, fmt.Errorf("sub %q", c.Subject))
	}
	if c.ClientID != svc.ClientID || c.Gen != svc.Generation {
		return "", invalid(ErrRevoked, fmt.Errorf("service %q was re-registered or its secret rotated", svc.Name))
	}
	return svc.Name, nil
}

// classify turns a jwt/v5 parse error into a CredentialError.
func classify(err error, t *jwt.Token, c *tokenClaims) error {
	var ce *CredentialError
	if errors.As(err, &ce) { // from the key function
		return ce
	}
	if t != nil && t.Header != nil {
		if alg, _ := t.Header["alg"].(string); alg != AlgES256 && alg != AlgEdDSA {
			return invalid(ErrBadAlgorithm, fmt.Errorf("alg %q: %w", alg, err))
		}
	}
	var reason error
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		reason = ErrMalformedToken
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		reason = ErrBadAlgorithm
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		reason = ErrBadSignature
	case errors.Is(err, jwt.ErrTokenExpired) || c.ExpiresAt == nil:
		reason = ErrExpired
	case errors.Is(err, jwt.ErrTokenInvalidAudience) || len(c.Audience) == 0:
		reason = ErrWrongAudience
	default:
		reason = ErrBadClaims
	}
	return invalid(reason, err)
}

// Optional returns v as an authenticator for which a request without
// credentials is not an error: it answers "" and nil (an unauthenticated
// MPNS sender, subject to the daily quota), and otherwise what Authenticate
// answers. It fits server.Authenticator.
func (v *Verifier) Optional() OptionalVerifier { return OptionalVerifier{v} }

// OptionalVerifier is a Verifier that lets requests without credentials
// through as service "".
type OptionalVerifier struct{ v *Verifier }

// Authenticate is Verifier.Authenticate with ErrNoCredentials turned into ("", nil).
func (o OptionalVerifier) Authenticate(r *http.Request, now time.Time) (string, error) {
	svc, err := o.v.Authenticate(r, now)
	if errors.Is(err, ErrNoCredentials) {
		return "", nil
	}
	return svc, err
}
