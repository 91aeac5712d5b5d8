package device_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/shared/clock"
)

// waitsClock is the system clock that reports every wait the device asks
// for and never lets one end during the test.
type waitsClock struct {
	clock.System
	waits chan time.Duration
}

func (c *waitsClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	c.waits <- d
	return c.System.AfterFunc(time.Hour, f)
}

// TestRetryAfterOn429: a server at its per-address connection limit answers
// the upgrade 429 with Retry-After; the device waits that long, not its own
// short backoff, and tells why.
func TestRetryAfterOn429(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		http.Error(w, "too many device connections from this address", http.StatusTooManyRequests)
	}))
	defer srv.Close()
	clk := &waitsClock{waits: make(chan time.Duration, 4)}
	type failure struct {
		err     error
		retryIn time.Duration
	}
	failed := make(chan failure, 4)
	d, err := device.New(device.Config{Server: srv.URL, Logger: quietLogger(), Clock: clk,
		MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond,
		Handlers: device.Handlers{ConnectFailed: func(err error, in time.Duration) { failed <- failure{err, in} }}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	timeout := time.After(20 * time.Second)
	select {
	case w := <-clk.waits:
		if w != 7*time.Second {
			t.Fatalf("the device waits %v after a 429 with Retry-After: 7", w)
		}
	case <-timeout:
		t.Fatal("the device never waited to reconnect")
	}
	select {
	case f := <-failed:
		if f.retryIn != 7*time.Second || !strings.Contains(f.err.Error(), "429") || !strings.Contains(f.err.Error(), "too many device connections") {
			t.Fatalf("ConnectFailed(%v, %v)", f.err, f.retryIn)
		}
	case <-timeout:
		t.Fatal("ConnectFailed was not raised")
	}
}
