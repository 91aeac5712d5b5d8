package cli

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// channelsFile writes a channels file of one channel at uri.
func channelsFile(t *testing.T, uri string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "channels.csv")
	if err := os.WriteFile(file, []byte("device,device_id,app,channel,uri,toast\n0,d0,a,main,"+uri+",true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// answering is a push server that answers every push with status and the
// notification status next() gives.
func answering(t *testing.T, status int, next func() string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-NotificationStatus", next())
		w.Header().Set("X-SubscriptionStatus", "Active")
		w.Header().Set("X-DeviceConnectionStatus", "Connected")
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/push/AAAAAAAAAAAAAAAAAAAAAAAAAAA"
}

// A load run in which not one notification was accepted (the server is
// down, the channels are gone, every queue is full) exits 1 with the
// reason in one line; it used to exit 0. One in which some were accepted
// exits 0 and says how many were not.
func TestLoadFailsWhenNothingIsAccepted(t *testing.T) {
	always := func(s string) func() string { return func() string { return s } }
	for _, c := range []struct {
		name, uri, want string
	}{
		{"refused", "http://127.0.0.1:1/push/AAAAAAAAAAAAAAAAAAAAAAAAAAA", "no notification was accepted: 5 of 5 not accepted: connection refused (5)"},
		{"expired", answering(t, http.StatusNotFound, always("Dropped")), "no notification was accepted: 5 of 5 not accepted: answered 404 Dropped (5)"},
		{"queue full", answering(t, http.StatusOK, always("QueueFull")), "no notification was accepted: 5 of 5 not accepted: answered 200 QueueFull (5)"},
	} {
		code, out, stderr := run(t, "load", "--channels", channelsFile(t, c.uri), "--concurrency", "1", "--count", "5", "--mix", "raw=1")
		if code != 1 || !strings.Contains(stderr, "openmpns load: "+c.want+"\n") {
			t.Errorf("%s: exit %d, want 1 and %q\n%s%s", c.name, code, c.want, out, stderr)
		}
	}
	// Suppressed is accepted: the phone's settings dropped it.
	if code, _, stderr := run(t, "load", "--channels", channelsFile(t, answering(t, http.StatusOK, always("Suppressed"))), "--concurrency", "1", "--count", "2", "--mix", "toast=1"); code != 0 {
		t.Errorf("all suppressed: exit %d\n%s", code, stderr)
	}
	var n atomic.Int64
	half := answering(t, http.StatusOK, func() string {
		if n.Add(1)%2 == 0 {
			return "QueueFull"
		}
		return "Received"
	})
	code, _, stderr := run(t, "load", "--channels", channelsFile(t, half), "--concurrency", "1", "--count", "6", "--mix", "raw=1")
	if code != 0 || !strings.Contains(stderr, "load: 3 of 6 not accepted: answered 200 QueueFull (3)\n") {
		t.Errorf("half accepted: exit %d, want 0 and a line on the 3 not accepted\n%s", code, stderr)
	}
}
