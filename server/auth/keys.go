package auth

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"

	"filippo.io/edwards25519"
)

// Signing algorithms (JWS "alg" values) accepted in bearer tokens.
const (
	AlgES256 = "ES256" // ECDSA P-256 with SHA-256
	AlgEdDSA = "EdDSA" // Ed25519
)

// parsePublicKeyPEM reads exactly one PEM "PUBLIC KEY" block (PKIX) holding
// a P-256 ECDSA or Ed25519 key and returns the key, its algorithm and DER.
func parsePublicKeyPEM(pemBytes []byte) (crypto.PublicKey, string, []byte, error) {
	block, rest := pem.Decode(pemBytes)
	if block == nil {
		return nil, "", nil, fmt.Errorf("%w: no PEM block found", ErrInvalidKey)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, "", nil, fmt.Errorf("%w: more than one PEM block", ErrInvalidKey)
	}
	switch block.Type {
	case "PUBLIC KEY":
	case "PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY", "OPENSSH PRIVATE KEY":
		return nil, "", nil, fmt.Errorf("%w: this is a private key; register the public key only and keep the private key with the service", ErrInvalidKey)
	default:
		return nil, "", nil, fmt.Errorf("%w: PEM block type %q, want \"PUBLIC KEY\"", ErrInvalidKey, block.Type)
	}
	pub, alg, err := parsePKIX(block.Bytes)
	if err != nil {
		return nil, "", nil, err
	}
	return pub, alg, block.Bytes, nil
}

// parsePKIX parses a DER SubjectPublicKeyInfo holding a key this package accepts.
func parsePKIX(der []byte) (crypto.PublicKey, string, error) {
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, "", fmt.Errorf("%w: ECDSA curve %s, want P-256 (ES256)", ErrInvalidKey, k.Curve.Params().Name)
		}
		return k, AlgES256, nil
	case ed25519.PublicKey:
		if err := checkEd25519(k); err != nil {
			return nil, "", err
		}
		return k, AlgEdDSA, nil
	}
	return nil, "", fmt.Errorf("%w: key type %T", ErrInvalidKey, pub)
}

// checkEd25519 refuses a public key that is not a point of the curve, and
// one of small order (the identity and the seven others of order 2, 4 or
// 8, in any encoding): against such a key crypto/ed25519 accepts a
// signature made without any private key (R the identity, S = 0), so
// whoever registered it would let anyone sign as the service.
func checkEd25519(k ed25519.PublicKey) error {
	p, err := new(edwards25519.Point).SetBytes(k)
	if err != nil {
		return fmt.Errorf("%w: Ed25519 key is not a point of the curve", ErrInvalidKey)
	}
	if p.MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) == 1 {
		return errSmallOrder
	}
	return nil
}

var errSmallOrder = fmt.Errorf("%w: Ed25519 key of small order (signatures against it can be made without a private key)", ErrInvalidKey)

// Thumbprint returns the RFC 7638 JWK thumbprint (SHA-256, base64url without
// padding, 43 characters) of a P-256 ECDSA or Ed25519 public key (RFC 8037
// §2 for the OKP form). It is the key id ("kid") of registered keys and of
// the server's own signing key, so a service can compute the kid of its key
// with any JOSE library.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	var members string
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return "", fmt.Errorf("%w: curve is not P-256", ErrInvalidKey)
		}
		ek, err := k.ECDH()
		if err != nil {
			return "", fmt.Errorf("%w: %v", ErrInvalidKey, err)
		}
		pt := ek.Bytes() // 0x04 || X || Y, 32 bytes each
		members = `{"crv":"P-256","kty":"EC","x":"` + b64(pt[1:33]) + `","y":"` + b64(pt[33:65]) + `"}`
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return "", fmt.Errorf("%w: Ed25519 key of %d bytes", ErrInvalidKey, len(k))
		}
		members = `{"crv":"Ed25519","kty":"OKP","x":"` + b64(k) + `"}`
	default:
		return "", fmt.Errorf("%w: key type %T", ErrInvalidKey, pub)
	}
	sum := sha256.Sum256([]byte(members))
	return b64(sum[:]), nil
}
