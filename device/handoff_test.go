package device

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestHandoffRefusalSaysWhy: a 4xx other than 429 is not tried again, and
// the error carries the status and the first line of the service's answer,
// cleaned of what a terminal would interpret; the secret and device key go
// in the JSON body.
func TestHandoffRefusalSaysWhy(t *testing.T) {
	var tries atomic.Int32
	var got HandoffRecord
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tries.Add(1)
		if r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("Content-Type %q", r.Header.Get("Content-Type"))
		}
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			t.Error(err)
		}
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte("the app's \x1b[31mhandoff secret\x1b[0m is required\nsecond line\n"))
	}))
	defer hs.Close()
	h := &Handoff{URL: hs.URL, MinBackoff: time.Millisecond}
	var attempts []int
	rec := HandoffRecord{DeviceID: "d", App: "a", Channel: "main", URI: "http://x/push/t", Secret: "s3cret-s3cret-s3cret", DeviceKey: "k"}
	status, err := h.Send(context.Background(), rec, func(n, status int, err error) {
		attempts = append(attempts, status)
		if err != nil {
			t.Errorf("attempt %d: transport error %v for an answer", n, err)
		}
	})
	var refused *HandoffRefusedError
	if status != 401 || !errors.As(err, &refused) || refused.Status != 401 || refused.URL != hs.URL {
		t.Fatalf("Send = %d, %v; want 401 and a *HandoffRefusedError", status, err)
	}
	if refused.Message != "the app's [31mhandoff secret[0m is required" {
		t.Errorf("message %q", refused.Message)
	}
	if tries.Load() != 1 || len(attempts) != 1 {
		t.Errorf("%d tries, %d attempts reported; a refusal is not retried", tries.Load(), len(attempts))
	}
	if got != rec {
		t.Errorf("the service got %+v, want %+v", got, rec)
	}
}

// TestHandoffRetriesTooManyRequests: a 429 is tried again, and a later 201
// is a success.
func TestHandoffRetriesTooManyRequests(t *testing.T) {
	var tries atomic.Int32
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tries.Add(1) == 1 {
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	defer hs.Close()
	h := &Handoff{URL: hs.URL, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond}
	if status, err := h.Send(context.Background(), HandoffRecord{DeviceID: "d", App: "a", URI: "u"}, nil); status != 201 || err != nil {
		t.Fatalf("Send = %d, %v after a 429", status, err)
	}
	if tries.Load() != 2 {
		t.Errorf("%d tries", tries.Load())
	}
}
