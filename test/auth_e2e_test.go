package test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/server"
	"github.com/openmpns/openmpns/shared/payload"
	"github.com/openmpns/openmpns/shared/sender"
)

// pki is a CA and what it signed, made fresh for a test.
type pki struct {
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caPEM  []byte
	serial int64
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	return &pki{ca: ca, caKey: key, caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), serial: 1}
}

// issue returns a certificate for cn valid from nb to na, as tls.Certificate and PEM files.
func (p *pki) issue(t *testing.T, cn string, server bool, nb, na time.Time) (tls.Certificate, string, string) {
	t.Helper()
	p.serial++
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(p.serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: nb, NotAfter: na, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cf, kf := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(cf, certPEM, 0o600)
	os.WriteFile(kf, keyPEM, 0o600)
	return pair, cf, kf
}

// TestAuthenticatedSenders runs a real HTTPS server with mutual TLS and JWT
// bearer tokens and checks who may push to which channel.
func TestAuthenticatedSenders(t *testing.T) {
	ca := newPKI(t)
	now := time.Now()
	_, certFile, keyFile := ca.issue(t, "127.0.0.1", true, now.Add(-time.Hour), now.Add(time.Hour))
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, ca.caPEM, 0o600)
	srv := startServer(t, server.Config{TLSCert: certFile, TLSKey: keyFile, ClientCA: caFile, DailyQuota: 2})
	if !strings.HasPrefix(srv.URL(), "https://") {
		t.Fatalf("server URL %s is not https", srv.URL())
	}
	news, err := srv.Services().Add("news")
	if err != nil {
		t.Fatal(err)
	}
	weather, _ := srv.Services().Add("weather")

	roots := x509.NewCertPool()
	roots.AddCert(ca.ca)
	// The device connects over WSS and opens a channel for the news service.
	rec := newRecorder()
	dev, err := device.New(device.Config{Server: srv.URL(), StateDir: t.TempDir(), Handlers: rec.handlers(), Logger: quietLogger(),
		MinBackoff: 5 * time.Millisecond, TLSConfig: &tls.Config{RootCAs: roots}})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	p := &phone{Device: dev, rec: rec}
	newsURI := p.openChannel(t, "com.example.news", "news", true, true).ChannelURI()
	openURI := p.openChannel(t, "com.example.open", "", true, true).ChannelURI()
	if !strings.HasPrefix(newsURI, "https://") {
		t.Fatalf("Channel URI %s is not https", newsURI)
	}

	client := func(cert *tls.Certificate) *sender.Client {
		tc := &tls.Config{RootCAs: roots}
		if cert != nil {
			tc.Certificates = []tls.Certificate{*cert}
		}
		return &sender.Client{HTTP: &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 10 * time.Second}}
	}
	toast, _ := sender.NewToast("", &payload.Toast{Text1: "hi"}, sender.Immediate)
	push := func(c *sender.Client, uri, bearer string) (*sender.Response, error) {
		r := toast
		r.URI = uri
		if bearer != "" {
			r.Header = http.Header{"Authorization": {"Bearer " + bearer}}
		}
		return c.Send(context.Background(), r)
	}
	want := func(name string, resp *sender.Response, err error, code int) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if resp.StatusCode != code {
			t.Errorf("%s: HTTP %d (%s), want %d", name, resp.StatusCode, resp.Reason, code)
		}
	}

	// Mutual TLS.
	newsCert, _, _ := ca.issue(t, "news", false, now.Add(-time.Hour), now.Add(time.Hour))
	weatherCert, _, _ := ca.issue(t, "weather", false, now.Add(-time.Hour), now.Add(time.Hour))
	expiredCert, _, _ := ca.issue(t, "news", false, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	resp, err := push(client(nil), newsURI, "")
	want("no credentials", resp, err, 401)
	for i := 0; i < 4; i++ { // authenticated: no daily quota (2 here)
		resp, err = push(client(&newsCert), newsURI, "")
		want("news certificate", resp, err, 200)
	}
	resp, err = push(client(&weatherCert), newsURI, "")
	// A certificate for another service name: MPNS's 401 (reference §4),
	// where a token for another app is WNS's 403 (below).
	want("weather certificate on a news channel", resp, err, 401)
	resp, err = push(client(&newsCert), openURI, "")
	want("news certificate on a channel without a service", resp, err, 401)
	if !strings.Contains(resp.Reason, "opened without a service") {
		t.Errorf("news certificate on a channel without a service: reason %q, want it to say the channel has no service", resp.Reason)
	}
	if _, err := push(client(&expiredCert), newsURI, ""); err == nil {
		t.Error("an expired client certificate got through the TLS handshake")
	}

	// Bearer tokens from /accesstoken.
	getToken := func(id, secret string) (int, string) {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
		resp, err := client(nil).HTTP.PostForm(srv.URL()+"/accesstoken", form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			AccessToken string `json:"access_token"`
			TokenType   string `json:"token_type"`
			ExpiresIn   int    `json:"expires_in"`
		}
		json.NewDecoder(resp.Body).Decode(&body)
		if resp.StatusCode == 200 && (body.TokenType != "bearer" || body.ExpiresIn != 86400) {
			t.Fatalf("token response %+v", body)
		}
		return resp.StatusCode, body.AccessToken
	}
	code, newsToken := getToken(news.ClientID, news.ClientSecret)
	if code != 200 || newsToken == "" {
		t.Fatalf("access token for news: %d", code)
	}
	if code, _ := getToken(news.ClientID, weather.ClientSecret); code != 401 {
		t.Fatalf("wrong secret: %d, want 401", code)
	}
	_, weatherToken := getToken(weather.ClientID, weather.ClientSecret)
	resp, err = push(client(nil), newsURI, newsToken)
	want("news token", resp, err, 200)
	resp, err = push(client(nil), newsURI, weatherToken)
	want("weather token on a news channel", resp, err, 403)
	if !strings.Contains(resp.Reason, "belongs to another service") {
		t.Errorf("weather token on a news channel: reason %q", resp.Reason)
	}
	resp, err = push(client(nil), newsURI, newsToken[:len(newsToken)-2]+"xx")
	want("forged signature", resp, err, 401)
	if !strings.Contains(resp.Reason, "invalid credentials") {
		t.Errorf("reason %q", resp.Reason)
	}

	// Unauthenticated senders keep their daily quota on open channels.
	for i, code := range []int{200, 200, 406} {
		resp, err = push(client(nil), openURI, "")
		want("unauthenticated push "+string(rune('1'+i)), resp, err, code)
	}
	rec.waitN(t, 5, "shelltoast")
}
