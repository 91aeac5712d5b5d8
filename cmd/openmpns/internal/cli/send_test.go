package cli

import (
	"strings"
	"testing"
)

// send exits 0 only when the service accepted the notification: 200
// Received, or 200 Suppressed (accepted, then dropped by the phone's
// settings, a normal outcome). 200 QueueFull ("retry with backoff") exited
// 0 as if it had been accepted.
func TestSendQueueFullIsAFailure(t *testing.T) {
	status := func(s string) func() string { return func() string { return s } }
	for _, c := range []struct {
		code       int
		status     string
		exit       int
		want, told string
	}{
		{200, "QueueFull", 1, "X-NotificationStatus: QueueFull", "openmpns send: the service answered 200 QueueFull, not Received: retry with backoff\n"},
		{200, "", 1, "HTTP 200", "openmpns send: the service answered 200 without an X-NotificationStatus: not an MPNS answer\n"},
		{412, "Dropped", 1, "HTTP 412", "openmpns send: the service answered 412 (retry in an hour)\n"},
		{200, "Received", 0, "X-NotificationStatus: Received", ""},
		{200, "Suppressed", 0, "X-NotificationStatus: Suppressed", ""},
	} {
		code, out, stderr := run(t, "send", "raw", "--uri", answering(t, c.code, status(c.status)), "--data", "x")
		if code != c.exit || !strings.Contains(out, c.want) || (c.told != "" && !strings.HasSuffix(stderr, c.told)) {
			t.Errorf("%d %s: exit %d, want %d and %q\n%s%s", c.code, c.status, code, c.exit, c.told, out, stderr)
		}
	}
}
