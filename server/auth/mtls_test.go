package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// client issues a client certificate for cn valid from notBefore to notAfter.
func (ca *testCA) client(t *testing.T, cn string, notBefore, notAfter time.Time) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"test"}},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestMutualTLS runs a real TLS server that verifies client certificates
// against a CA (VerifyClientCertIfGiven) and answers with Authenticate's
// result.
func TestMutualTLS(t *testing.T) {
	f := newFixture(t)
	ca := newCA(t, "OpenMPNS test client CA")
	rogue := newCA(t, "rogue CA")
	now := time.Now()

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		svc, err := f.v.Authenticate(r, f.now)
		switch {
		case errors.Is(err, ErrNoCredentials):
			fmt.Fprint(w, "none")
		case errors.Is(err, ErrUnknownService):
			fmt.Fprint(w, "unknown-service")
		case errors.Is(err, ErrConflictingCredentials):
			fmt.Fprint(w, "conflict")
		case err != nil:
			fmt.Fprint(w, "error: ", err)
		default:
			fmt.Fprint(w, "service=", svc)
		}
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: ca.pool}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // expected handshake failures
	srv.StartTLS()
	defer srv.Close()

	newsTok, _, _ := f.iss.IssueToken("news", f.now)
	weatherTok, _, _ := f.iss.IssueToken("weather", f.now)
	cases := []struct {
		name    string
		cert    *tls.Certificate
		bearer  string
		want    string // response body; "" = the request must fail at the TLS layer
		tlsFail bool
	}{
		{"good certificate", ptr(ca.client(t, "weather", now.Add(-time.Hour), now.Add(time.Hour))), "", "service=weather", false},
		{"another registered service's certificate", ptr(ca.client(t, "news", now.Add(-time.Hour), now.Add(time.Hour))), "", "service=news", false},
		{"CN of no registered service", ptr(ca.client(t, "weather.evil", now.Add(-time.Hour), now.Add(time.Hour))), "", "unknown-service", false},
		{"empty CN", ptr(ca.client(t, "", now.Add(-time.Hour), now.Add(time.Hour))), "", "unknown-service", false},
		{"no certificate", nil, "", "none", false},
		{"no certificate, bearer token", nil, weatherTok, "service=weather", false},
		{"certificate and matching token", ptr(ca.client(t, "weather", now.Add(-time.Hour), now.Add(time.Hour))), weatherTok, "service=weather", false},
		{"certificate and another service's token", ptr(ca.client(t, "weather", now.Add(-time.Hour), now.Add(time.Hour))), newsTok, "conflict", false},
		{"expired certificate", ptr(ca.client(t, "weather", now.Add(-48*time.Hour), now.Add(-time.Hour))), "", "", true},
		{"certificate not yet valid", ptr(ca.client(t, "weather", now.Add(time.Hour), now.Add(48*time.Hour))), "", "", true},
		{"certificate of another CA", ptr(rogue.client(t, "weather", now.Add(-time.Hour), now.Add(time.Hour))), "", "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := srv.Client().Transport.(*http.Transport).Clone()
			tr.TLSClientConfig.Certificates = nil
			if c.cert != nil {
				// Always send it, even when the server's list of
				// acceptable CAs does not name its issuer.
				tr.TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
					return c.cert, nil
				}
			}
			defer tr.CloseIdleConnections()
			req, _ := http.NewRequest("POST", srv.URL+"/push/x", strings.NewReader("<x/>"))
			if c.bearer != "" {
				req.Header.Set("Authorization", "Bearer "+c.bearer)
			}
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if c.tlsFail {
				if err == nil {
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					t.Fatalf("the TLS layer let the certificate through; handler said %q", body)
				}
				t.Logf("refused by TLS: %v", err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != c.want {
				t.Errorf("got %q, want %q", body, c.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestUnverifiedCertificateRefused: a TLS layer that requests but does not
// verify certificates (RequestClientCert) must not let a certificate's CN
// through, nor silently fall back to no credentials.
func TestUnverifiedCertificateRefused(t *testing.T) {
	f := newFixture(t)
	ca := newCA(t, "ca")
	cert := ca.client(t, "weather", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	leaf, _ := x509.ParseCertificate(cert.Certificate[0])
	r := httptest.NewRequest("POST", "/push/x", nil)
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}
	if _, err := f.v.Authenticate(r, f.now); !errors.Is(err, ErrUnverifiedCertificate) || !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("unverified certificate: %v", err)
	}
	r.TLS.VerifiedChains = [][]*x509.Certificate{{leaf, ca.cert}}
	if svc, err := f.v.Authenticate(r, f.now); err != nil || svc != "weather" {
		t.Errorf("verified: %q %v", svc, err)
	}
	// A TLS connection without a client certificate: no credentials.
	r.TLS = &tls.ConnectionState{}
	if _, err := f.v.Authenticate(r, f.now); !errors.Is(err, ErrNoCredentials) {
		t.Errorf("TLS without certificate: %v", err)
	}
	// The service of a certificate is checked against the registry at each request.
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}, VerifiedChains: [][]*x509.Certificate{{leaf, ca.cert}}}
	f.reg.Remove("weather")
	if _, err := f.v.Authenticate(r, f.now); !errors.Is(err, ErrUnknownService) {
		t.Errorf("certificate of a removed service: %v", err)
	}
}
