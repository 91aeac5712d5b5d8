package auth

import (
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"time"
)

// TokenPath is where TokenHandler is meant to be mounted.
const TokenPath = "/accesstoken"

// MaxTokenRequestBytes bounds the body of a token request.
const MaxTokenRequestBytes = 4 << 10

// TokenResponse is the JSON answer to a successful token request (RFC 6749 §5.1).
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"` // "bearer"
	ExpiresIn   int64  `json:"expires_in"` // seconds
}

// TokenError is the JSON answer to a refused token request (RFC 6749 §5.2).
type TokenError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// TokenHandler serves POST /accesstoken: the OAuth 2.0 client credentials
// grant (RFC 6749 §4.4) as WNS offered it. The request is form-encoded
// (application/x-www-form-urlencoded) with grant_type=client_credentials and
// the client's credentials either as client_id and client_secret in the body
// or as HTTP Basic authentication (not both).
//
// Answers (always JSON, with Cache-Control: no-store):
//
//	200 {"access_token":"<jwt>","token_type":"bearer","expires_in":86400}
//	400 {"error":"invalid_request"}         malformed body, wrong Content-Type,
//	                                        repeated parameter, missing grant_type,
//	                                        credentials in the URL or given twice
//	400 {"error":"unsupported_grant_type"}  grant_type is not client_credentials
//	401 {"error":"invalid_client"}          missing, unknown or wrong credentials
//	405                                     not a POST (Allow: POST)
type TokenHandler struct {
	reg *Registry
	iss *Issuer
	now func() time.Time
}

// NewTokenHandler returns the token endpoint; now is its clock (nil: time.Now).
func NewTokenHandler(reg *Registry, iss *Issuer, now func() time.Time) *TokenHandler {
	if now == nil {
		now = time.Now
	}
	return &TokenHandler{reg: reg, iss: iss, now: now}
}

func (h *TokenHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, TokenError{Error: "invalid_request", Description: "use POST"})
		return
	}
	bad := func(code, desc string) {
		writeJSON(w, http.StatusBadRequest, TokenError{Error: code, Description: desc})
	}
	q := r.URL.Query()
	if q.Has("client_secret") || q.Has("client_id") || q.Has("grant_type") {
		bad("invalid_request", "send the parameters in the form-encoded body, not in the URL")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		bad("invalid_request", "Content-Type must be application/x-www-form-urlencoded")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxTokenRequestBytes)
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			bad("invalid_request", "request body too large")
			return
		}
		bad("invalid_request", "malformed form body")
		return
	}
	form := r.PostForm
	for k, vs := range form {
		if len(vs) > 1 {
			bad("invalid_request", "parameter "+k+" given more than once")
			return
		}
	}
	switch gt := form.Get("grant_type"); gt {
	case "":
		bad("invalid_request", "grant_type is missing")
		return
	case "client_credentials":
	default:
		bad("unsupported_grant_type", "only client_credentials is supported")
		return
	}
	id, secret := form.Get("client_id"), form.Get("client_secret")
	basicID, basicSecret, basic := r.BasicAuth()
	if basic {
		if form.Has("client_id") || form.Has("client_secret") {
			bad("invalid_request", "give the client credentials once: in the body or with HTTP Basic, not both")
			return
		}
		// RFC 6749 §2.3.1: both are form-encoded before Basic encoding.
		var err1, err2 error
		id, err1 = url.QueryUnescape(basicID)
		secret, err2 = url.QueryUnescape(basicSecret)
		if err1 != nil || err2 != nil {
			bad("invalid_request", "malformed Basic credentials")
			return
		}
	} else if r.Header.Get("Authorization") != "" {
		bad("invalid_request", "the Authorization header must be HTTP Basic")
		return
	}
	unauthorized := func(desc string) {
		if basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="openmpns"`)
		}
		writeJSON(w, http.StatusUnauthorized, TokenError{Error: "invalid_client", Description: desc})
	}
	if id == "" || secret == "" {
		unauthorized("client_id and client_secret are required")
		return
	}
	svc, err := h.reg.CheckSecret(id, secret)
	if err != nil {
		unauthorized("unknown client_id or wrong client_secret")
		return
	}
	tok, ttl, err := h.iss.IssueTokenFor(svc, h.now())
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, TokenError{Error: "server_error", Description: "could not sign the token"})
		return
	}
	writeJSON(w, http.StatusOK, TokenResponse{AccessToken: tok, TokenType: "bearer", ExpiresIn: int64(ttl / time.Second)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
