package auth

import (
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzVerifyToken: no bearer string makes the verifier panic, every refusal
// is an ErrInvalidCredentials, and an accepted token names a registered
// service. The seed corpus in testdata/fuzz/FuzzVerifyToken holds malformed
// and hostile tokens; valid tokens of this run's keys are added here.
func FuzzVerifyToken(f *testing.F) {
	fx := newFixture(f)
	f.Add(fx.accessToken(f))
	f.Add(sign(f, jwt.SigningMethodES256, fx.esKey, fx.esKid, fx.selfClaims()))
	f.Add(sign(f, jwt.SigningMethodEdDSA, fx.edKey, fx.edKid, fx.selfClaims()))
	f.Add(sign(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, fx.edKid, fx.selfClaims()))
	f.Add(sign(f, jwt.SigningMethodHS256, pemOf(f, fx.edKey.Public()), fx.edKid, fx.selfClaims()))
	f.Fuzz(func(t *testing.T, tok string) {
		svc, err := fx.v.VerifyToken(tok, fx.now)
		if err != nil {
			if svc != "" || !errors.Is(err, ErrInvalidCredentials) {
				t.Fatalf("refusal %q, %v is not an ErrInvalidCredentials", svc, err)
			}
			var ce *CredentialError
			if !errors.As(err, &ce) || ce.Reason == nil {
				t.Fatalf("refusal without a reason: %v", err)
			}
			_ = Challenge(err)
		} else if _, ok := fx.reg.Lookup(svc); !ok {
			t.Fatalf("accepted as unregistered service %q", svc)
		}
		r := httptest.NewRequest("POST", "/push/x", nil)
		r.Header["Authorization"] = []string{"Bearer " + tok}
		svc2, err2 := fx.v.Authenticate(r, fx.now.Add(time.Second))
		if err2 == nil {
			if _, ok := fx.reg.Lookup(svc2); !ok {
				t.Fatalf("Authenticate accepted unregistered %q", svc2)
			}
		} else if !errors.Is(err2, ErrInvalidCredentials) && !errors.Is(err2, ErrNoCredentials) {
			t.Fatalf("Authenticate: %v", err2)
		}
	})
}
