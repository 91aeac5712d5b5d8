package auth

import (
	"errors"
	"net/http"
	"strings"
)

// Errors of Verifier.Authenticate and Registry.CheckSecret. ErrNoCredentials
// and every error matching ErrInvalidCredentials should be answered 401.
var (
	// ErrNoCredentials: the request carries neither a verified client
	// certificate nor an Authorization header.
	ErrNoCredentials = errors.New("auth: no credentials")
	// ErrInvalidCredentials is matched (errors.Is) by every refusal of
	// credentials that were presented; the error also matches one of the
	// reasons below and, where the JWT library found the fault, its error.
	ErrInvalidCredentials = errors.New("auth: invalid credentials")
)

// Reasons for ErrInvalidCredentials. An error returned by the Verifier or by
// CheckSecret matches exactly one of them.
var (
	// ErrUnsupportedScheme: an Authorization header that is not "Bearer <token>".
	ErrUnsupportedScheme = errors.New("authorization scheme is not Bearer")
	// ErrMalformedToken: not a compact JWS with JSON header and claims.
	ErrMalformedToken = errors.New("malformed token")
	// ErrBadAlgorithm: alg is not ES256 or EdDSA, or not the algorithm of the key the token names.
	ErrBadAlgorithm = errors.New("signing algorithm not accepted")
	// ErrBadSignature: the signature does not verify with the named key.
	ErrBadSignature = errors.New("signature does not verify")
	// ErrUnknownIssuer: iss is neither this server's origin nor a registered client_id.
	ErrUnknownIssuer = errors.New("unknown issuer")
	// ErrUnknownKey: kid names no key of the issuer.
	ErrUnknownKey = errors.New("unknown key id")
	// ErrWrongAudience: aud does not name this server's origin.
	ErrWrongAudience = errors.New("token is not for this server")
	// ErrExpired: exp is missing or not in the future.
	ErrExpired = errors.New("token expired")
	// ErrNotYetValid: nbf or iat is in the future (beyond the leeway).
	ErrNotYetValid = errors.New("token not valid yet")
	// ErrLifetimeTooLong: exp is more than 24 h after now or after iat.
	ErrLifetimeTooLong = errors.New("token lifetime exceeds 24 h")
	// ErrBadClaims: another claim is missing or wrong (sub, client_id, a claim of the wrong JSON type).
	ErrBadClaims = errors.New("invalid token claims")
	// ErrRevoked: the token was issued before the service's secret was rotated,
	// or for a service since removed and registered again.
	ErrRevoked = errors.New("token revoked (secret rotated or service registered again)")
	// ErrUnknownService: the certificate's CommonName or the token's subject
	// names no registered service (also: a removed one).
	ErrUnknownService = errors.New("unknown service")
	// ErrUnverifiedCertificate: the TLS connection has a client certificate
	// but no verified chain (the TLS layer is not configured to verify it).
	ErrUnverifiedCertificate = errors.New("client certificate not verified")
	// ErrConflictingCredentials: a client certificate and a bearer token name different services.
	ErrConflictingCredentials = errors.New("client certificate and bearer token name different services")
	// ErrUnknownClient: CheckSecret was given a client_id that is not registered.
	ErrUnknownClient = errors.New("unknown client_id")
	// ErrWrongSecret: CheckSecret was given the wrong client_secret (or one rotated away).
	ErrWrongSecret = errors.New("wrong client_secret")
)

// CredentialError is a refusal of presented credentials. It matches
// ErrInvalidCredentials, its Reason (one of the Err* reasons above) and its
// Detail (e.g. a jwt/v5 error such as jwt.ErrTokenExpired), if any.
type CredentialError struct {
	Reason error
	Detail error
}

func (e *CredentialError) Error() string {
	s := ErrInvalidCredentials.Error() + ": " + e.Reason.Error()
	if e.Detail != nil {
		s += ": " + e.Detail.Error()
	}
	return s
}

// Unwrap returns ErrInvalidCredentials, the reason and the detail.
func (e *CredentialError) Unwrap() []error {
	errs := []error{ErrInvalidCredentials, e.Reason}
	if e.Detail != nil {
		errs = append(errs, e.Detail)
	}
	return errs
}

func invalid(reason, detail error) error { return &CredentialError{Reason: reason, Detail: detail} }

// Registry errors.
var (
	// ErrInvalidName: a service name must be 1 to 64 printable ASCII bytes, no spaces.
	ErrInvalidName = errors.New("auth: service name must be 1 to 64 printable ASCII characters without spaces")
	// ErrServiceExists: Add of a name already registered.
	ErrServiceExists = errors.New("auth: service already registered")
	// ErrNoSuchService: the named service is not registered.
	ErrNoSuchService = errors.New("auth: no such service")
	// ErrInvalidKey: AddKey was given something other than one PEM "PUBLIC KEY"
	// block holding a P-256 ECDSA or Ed25519 key.
	ErrInvalidKey = errors.New("auth: not a P-256 ECDSA or Ed25519 public key in PEM (PKIX, \"PUBLIC KEY\") form")
	// ErrKeyExists: the key is already registered (for this or another service).
	ErrKeyExists = errors.New("auth: key already registered")
	// ErrNoSuchKey: RemoveKey of a key id the service does not have.
	ErrNoSuchKey = errors.New("auth: no such key")
	// ErrTooManyKeys: a service may register at most MaxKeys keys.
	ErrTooManyKeys = errors.New("auth: too many keys for one service")
	// ErrRevisionMismatch: a Store refused to replace or delete a service
	// that changed since it was read (another writer came first). The
	// Registry reads it again and applies its change anew; it returns this
	// error only when its change lost every one of its attempts.
	ErrRevisionMismatch = errors.New("auth: service changed since it was read")
)

// Challenge returns the WWW-Authenticate header value to send with a 401
// answer to err (RFC 6750 §3): the bare scheme for ErrNoCredentials,
// error="invalid_token" otherwise.
func Challenge(err error) string {
	if err == nil || errors.Is(err, ErrNoCredentials) {
		return `Bearer realm="openmpns"`
	}
	var ce *CredentialError
	desc := "invalid credentials"
	if errors.As(err, &ce) {
		desc = ce.Reason.Error()
	}
	desc = strings.Map(func(r rune) rune {
		if r < ' ' || r > '~' || r == '"' || r == '\\' {
			return ' '
		}
		return r
	}, desc)
	return `Bearer realm="openmpns", error="invalid_token", error_description="` + desc + `"`
}

// StatusFor maps an Authenticate error to its HTTP status: 401 for missing
// or invalid credentials, 500 for anything else (none is expected).
func StatusFor(err error) int {
	if errors.Is(err, ErrNoCredentials) || errors.Is(err, ErrInvalidCredentials) {
		return http.StatusUnauthorized
	}
	return http.StatusInternalServerError
}
