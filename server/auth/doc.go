// Package auth authenticates the cloud services that push to OpenMPNS
// channels opened with a service name.
//
// A service is registered by name (the name apps pass when they open a
// channel) in a Registry and then proves who it is in one of two ways, both
// free of the unauthenticated daily quota:
//
//   - mutual TLS: a client certificate, verified by the TLS layer against the
//     configured client CA, whose subject CommonName is the service name;
//   - a JWT bearer token (Authorization: Bearer …), either an access token the
//     server issued at POST /accesstoken in exchange for the service's
//     client_id and client_secret (the WNS way, see TokenHandler and Issuer),
//     or a short-lived token the service signed itself with one of its
//     registered public keys (ES256 or EdDSA).
//
// Threat model. The network and the senders are untrusted: anyone can reach
// the push API and send any header. A sender must not be able to push as a
// service whose secret, private key or client certificate it does not hold,
// and credentials must stop working when they are rotated or removed. Tokens
// are therefore checked strictly: the algorithm is fixed by the key the token
// names (never chosen by its alg header; none and HMAC are never accepted),
// and signature, issuer, audience (the server's origin) and expiry (required,
// at most 24 h away) are all verified. Client secrets are 256-bit random
// values kept only as SHA-256 hashes and compared in constant time. The store
// (and the server's own token-signing key in it) is trusted: whoever can write
// the data directory can impersonate any service. Bearer tokens are not bound
// to the connection and carry no replay protection beyond their expiry; they
// must only travel over TLS.
//
// Authorisation is the caller's job: Verifier.Authenticate says which service
// the request proved to be (or returns ErrNoCredentials or an error matching
// ErrInvalidCredentials, both 401), and the push handler compares that name
// with the service the channel was opened for (another service: 403 for a
// bearer token, as WNS; 401 for a client certificate, as MPNS).
package auth
