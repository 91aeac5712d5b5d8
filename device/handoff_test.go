package device

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openmpns/openmpns/shared/clock"
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

// TestHandoffFollowsOnlyRedirectsThatKeepThePOST: a redirect that would
// resend the handoff as a GET without its body (301, 302, 303: net/http
// follows them so) is a failed handoff, not a success from the GET's 200,
// and is not tried again; 307 and 308, which keep the POST and its body,
// are followed; a redirect from https to http, which would send the
// secret in the clear, is not.
func TestHandoffFollowsOnlyRedirectsThatKeepThePOST(t *testing.T) {
	rec := HandoffRecord{DeviceID: "d", App: "a", Channel: "main", URI: "http://x/push/t", Secret: "s3cret-s3cret-s3cret"}
	for _, code := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			var redirected, posted atomic.Int32
			var got HandoffRecord
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case r.URL.Path == "/register":
					redirected.Add(1)
					http.Redirect(w, r, "/register/", code)
				case r.Method == http.MethodPost:
					posted.Add(1)
					if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
						t.Error(err)
					}
					w.WriteHeader(http.StatusCreated)
				default:
					w.Write([]byte("<html>register here</html>")) // a GET: some page
				}
			}))
			defer hs.Close()
			h := &Handoff{URL: hs.URL + "/register", MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond}
			status, err := h.Send(context.Background(), rec, nil)
			if code == http.StatusTemporaryRedirect || code == http.StatusPermanentRedirect {
				if err != nil || status != http.StatusCreated || posted.Load() != 1 || got != rec {
					t.Fatalf("Send = %d, %v; the service got %d POSTs with %+v; want 201 and the record", status, err, posted.Load(), got)
				}
				return
			}
			if err == nil {
				t.Fatalf("Send reported success (status %d) but the service never received the record (%d POSTs): the redirected POST became a GET", status, posted.Load())
			}
			if status != code || posted.Load() != 0 || !strings.Contains(err.Error(), fmt.Sprint(code)) || !strings.Contains(err.Error(), "/register/") {
				t.Fatalf("Send = %d, %v; %d POSTs; want %d and an error naming it and the redirect's target", status, err, posted.Load(), code)
			}
			if redirected.Load() != 1 {
				t.Errorf("the redirect was tried %d times; it would be answered the same every time", redirected.Load())
			}
		})
	}
	t.Run("https to http", func(t *testing.T) {
		var reached atomic.Int32
		plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1) }))
		defer plain.Close()
		secure := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, plain.URL+"/register", http.StatusTemporaryRedirect)
		}))
		defer secure.Close()
		h := &Handoff{URL: secure.URL + "/register", Client: secure.Client(), Attempts: 3, MinBackoff: time.Millisecond}
		status, err := h.Send(context.Background(), rec, nil)
		if err == nil || status != http.StatusTemporaryRedirect || reached.Load() != 0 || !strings.Contains(err.Error(), "in the clear") {
			t.Fatalf("Send = %d, %v, and the http service was reached %d times; want the 307 refused", status, err, reached.Load())
		}
		if secure.Client().CheckRedirect != nil {
			t.Error("Send changed the caller's client")
		}
	})
}

// TestHandoffStop: closing Stop ends the wait before the next try at once
// (the clock never moves here) with ErrHandoffStopped, but does not cut
// short a try under way, whose answer counts: the service may have taken
// the record.
func TestHandoffStop(t *testing.T) {
	var tries atomic.Int32
	arrived, answer := make(chan struct{}, 2), make(chan int)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tries.Add(1)
		arrived <- struct{}{}
		w.WriteHeader(<-answer)
	}))
	defer hs.Close()
	rec := HandoffRecord{DeviceID: "d", App: "a", URI: "u"}

	// Stopped while waiting to try again after a 503.
	stop := make(chan struct{})
	h := &Handoff{URL: hs.URL, Clock: clock.NewFake(time.Unix(0, 0)), Stop: stop}
	done := make(chan error, 1)
	go func() {
		_, err := h.Send(context.Background(), rec, func(int, int, error) { close(stop) })
		done <- err
	}()
	<-arrived
	answer <- http.StatusServiceUnavailable
	select {
	case err := <-done:
		if !errors.Is(err, ErrHandoffStopped) || tries.Load() != 1 {
			t.Fatalf("stopped while waiting: %v after %d tries; want ErrHandoffStopped after 1", err, tries.Load())
		}
	case <-time.After(30 * time.Second): // the clock never moves: without Stop, Send waits for ever
		t.Fatal("Send went on waiting to try again after Stop was closed")
	}

	// Stopped during a try that the service then takes.
	stop = make(chan struct{})
	h.Stop = stop
	status := make(chan int, 1)
	go func() {
		s, err := h.Send(context.Background(), rec, nil)
		status <- s
		done <- err
	}()
	<-arrived
	close(stop)
	answer <- http.StatusCreated
	if s, err := <-status, <-done; s != http.StatusCreated || err != nil {
		t.Fatalf("stopped during a try answered 201: %d, %v; want 201, nil", s, err)
	}

	// Stopped before the first try: none is made.
	tries.Store(0)
	if _, err := h.Send(context.Background(), rec, nil); !errors.Is(err, ErrHandoffStopped) || tries.Load() != 0 {
		t.Fatalf("stopped before: %v after %d tries", err, tries.Load())
	}
}
