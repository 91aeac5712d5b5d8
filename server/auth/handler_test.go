package auth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

type tokenReply struct {
	status  int
	header  http.Header
	ok      TokenResponse
	refusal TokenError
}

func postToken(t *testing.T, h http.Handler, method, target, ctype, body string, basic *[2]string) tokenReply {
	t.Helper()
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	if ctype != "" {
		r.Header.Set("Content-Type", ctype)
	}
	if basic != nil {
		r.SetBasicAuth(basic[0], basic[1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	rep := tokenReply{status: w.Code, header: w.Header()}
	if w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q", w.Header().Get("Cache-Control"))
	}
	if w.Code == http.StatusOK {
		if err := json.Unmarshal(w.Body.Bytes(), &rep.ok); err != nil {
			t.Fatalf("body %q: %v", w.Body, err)
		}
	} else if err := json.Unmarshal(w.Body.Bytes(), &rep.refusal); err != nil {
		t.Fatalf("body %q: %v", w.Body, err)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	return rep
}

const form = "application/x-www-form-urlencoded"

func credsForm(c Credentials) string {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ClientID}, "client_secret": {c.ClientSecret}}.Encode()
}

func TestTokenHandlerIssues(t *testing.T) {
	f := newFixture(t)
	h := NewTokenHandler(f.reg, f.iss, func() time.Time { return f.now })
	check := func(name string, rep tokenReply, want string) {
		t.Helper()
		if rep.status != http.StatusOK || rep.ok.TokenType != "bearer" || rep.ok.ExpiresIn != 86400 || rep.ok.AccessToken == "" {
			t.Fatalf("%s: %d %+v %+v", name, rep.status, rep.ok, rep.refusal)
		}
		if svc, err := f.v.VerifyToken(rep.ok.AccessToken, f.now); err != nil || svc != want {
			t.Errorf("%s: token verifies as %q, %v", name, svc, err)
		}
		if rep.header.Get("Pragma") != "no-cache" {
			t.Errorf("%s: Pragma %q", name, rep.header.Get("Pragma"))
		}
	}
	check("form", postToken(t, h, "POST", TokenPath, form, credsForm(f.weather), nil), "weather")
	check("form with charset", postToken(t, h, "POST", TokenPath, form+"; charset=utf-8", credsForm(f.news), nil), "news")
	check("basic", postToken(t, h, "POST", TokenPath, form, "grant_type=client_credentials", &[2]string{f.weather.ClientID, f.weather.ClientSecret}), "weather")
	check("basic, form-encoded credentials", postToken(t, h, "POST", TokenPath, form, "grant_type=client_credentials",
		&[2]string{url.QueryEscape(f.news.ClientID), url.QueryEscape(f.news.ClientSecret)}), "news")
	// The JSON has exactly the WNS fields.
	w := httptest.NewRecorder()
	r := httptest.NewRequest("POST", TokenPath, strings.NewReader(credsForm(f.weather)))
	r.Header.Set("Content-Type", form)
	h.ServeHTTP(w, r)
	var m map[string]any
	json.Unmarshal(w.Body.Bytes(), &m)
	if len(m) != 3 || m["token_type"] != "bearer" || m["expires_in"] != 86400.0 {
		t.Errorf("JSON %s", w.Body)
	}
}

func TestTokenHandlerRefuses(t *testing.T) {
	f := newFixture(t)
	h := NewTokenHandler(f.reg, f.iss, func() time.Time { return f.now })
	wrong := f.weather
	wrong.ClientSecret = f.news.ClientSecret
	big := credsForm(f.weather) + "&pad=" + strings.Repeat("x", MaxTokenRequestBytes)
	cases := []struct {
		name         string
		method       string
		target       string
		ctype        string
		body         string
		basic        *[2]string
		status       int
		err          string
		wwwBasicAuth bool
	}{
		{"GET", "GET", TokenPath, "", "", nil, 405, "invalid_request", false},
		{"PUT", "PUT", TokenPath, form, credsForm(f.weather), nil, 405, "invalid_request", false},
		{"wrong secret", "POST", TokenPath, form, credsForm(wrong), nil, 401, "invalid_client", false},
		{"unknown client", "POST", TokenPath, form, credsForm(Credentials{ClientID: "svc_nope", ClientSecret: f.weather.ClientSecret}), nil, 401, "invalid_client", false},
		{"no credentials", "POST", TokenPath, form, "grant_type=client_credentials", nil, 401, "invalid_client", false},
		{"no secret", "POST", TokenPath, form, "grant_type=client_credentials&client_id=" + f.weather.ClientID, nil, 401, "invalid_client", false},
		{"basic, wrong secret", "POST", TokenPath, form, "grant_type=client_credentials", &[2]string{f.weather.ClientID, "x"}, 401, "invalid_client", true},
		{"unsupported grant", "POST", TokenPath, form, strings.Replace(credsForm(f.weather), "client_credentials", "password", 1), nil, 400, "unsupported_grant_type", false},
		{"authorization_code grant", "POST", TokenPath, form, strings.Replace(credsForm(f.weather), "client_credentials", "authorization_code", 1), nil, 400, "unsupported_grant_type", false},
		{"no grant_type", "POST", TokenPath, form, "client_id=" + f.weather.ClientID + "&client_secret=" + f.weather.ClientSecret, nil, 400, "invalid_request", false},
		{"JSON body", "POST", TokenPath, "application/json", `{"grant_type":"client_credentials"}`, nil, 400, "invalid_request", false},
		{"no Content-Type", "POST", TokenPath, "", credsForm(f.weather), nil, 400, "invalid_request", false},
		{"repeated parameter", "POST", TokenPath, form, credsForm(f.weather) + "&client_secret=x", nil, 400, "invalid_request", false},
		{"secret in the URL", "POST", TokenPath + "?client_secret=" + f.weather.ClientSecret, form, "grant_type=client_credentials&client_id=" + f.weather.ClientID, nil, 400, "invalid_request", false},
		{"basic and body", "POST", TokenPath, form, credsForm(f.weather), &[2]string{f.weather.ClientID, f.weather.ClientSecret}, 400, "invalid_request", false},
		{"body too large", "POST", TokenPath, form, big, nil, 400, "invalid_request", false},
		{"malformed body", "POST", TokenPath, form, "grant_type=%zz", nil, 400, "invalid_request", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rep := postToken(t, h, c.method, c.target, c.ctype, c.body, c.basic)
			if rep.status != c.status || rep.refusal.Error != c.err {
				t.Fatalf("%d %+v; want %d %s", rep.status, rep.refusal, c.status, c.err)
			}
			if c.status == 405 && rep.header.Get("Allow") != "POST" {
				t.Errorf("Allow = %q", rep.header.Get("Allow"))
			}
			if got := rep.header.Get("WWW-Authenticate") != ""; got != c.wwwBasicAuth {
				t.Errorf("WWW-Authenticate = %q", rep.header.Get("WWW-Authenticate"))
			}
		})
	}
	// A bearer Authorization header is not a client authentication method here.
	r := httptest.NewRequest("POST", TokenPath, strings.NewReader(credsForm(f.weather)))
	r.Header.Set("Content-Type", form)
	r.Header.Set("Authorization", "Bearer x")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 400 {
		t.Errorf("Bearer on /accesstoken: %d", w.Code)
	}
}

// TestTokenHandlerRotation: after rotation the old secret gets 401 and the
// tokens it bought stop working; the new secret works.
func TestTokenHandlerRotation(t *testing.T) {
	f := newFixture(t)
	h := NewTokenHandler(f.reg, f.iss, func() time.Time { return f.now })
	old := postToken(t, h, "POST", TokenPath, form, credsForm(f.weather), nil)
	if old.status != 200 {
		t.Fatal(old.status)
	}
	c2, err := f.reg.RotateSecret("weather")
	if err != nil {
		t.Fatal(err)
	}
	if rep := postToken(t, h, "POST", TokenPath, form, credsForm(f.weather), nil); rep.status != 401 || rep.refusal.Error != "invalid_client" {
		t.Errorf("old secret: %d %+v", rep.status, rep.refusal)
	}
	if _, err := f.v.VerifyToken(old.ok.AccessToken, f.now); err == nil {
		t.Error("token bought with the old secret still works")
	}
	rep := postToken(t, h, "POST", TokenPath, form, credsForm(c2), nil)
	if rep.status != 200 {
		t.Fatalf("new secret: %d", rep.status)
	}
	if svc, err := f.v.VerifyToken(rep.ok.AccessToken, f.now); err != nil || svc != "weather" {
		t.Errorf("new token: %q %v", svc, err)
	}
}
