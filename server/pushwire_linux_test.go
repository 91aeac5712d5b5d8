package server

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// rawAnswer sends raw (with {TOKEN} made the channel's token) on a new
// connection and returns the head of the answer as it came on the wire.
func (ft *frontTarget) rawAnswer(t *testing.T, raw string) string {
	t.Helper()
	c := ft.dial(t)
	if _, err := io.WriteString(c, strings.ReplaceAll(raw, "{TOKEN}", ft.tok)); err != nil {
		t.Fatal(err)
	}
	var wire bytes.Buffer
	resp, err := http.ReadResponse(bufio.NewReader(io.TeeReader(c, &wire)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatal(err)
	}
	head, _, _ := strings.Cut(wire.String(), "\r\n\r\n")
	return head
}

// The MPNS answer headers go out spelled as MPNS spelled them
// (X-NotificationStatus, not Go's canonical X-Notificationstatus), from
// the push front as from net/http: published sender libraries (the PHP
// class most MPNS tutorials copied) look the answer's headers up by their
// exact name, and found nothing in the canonical spelling.
func TestMPNSAnswerHeadersKeepTheirSpelling(t *testing.T) {
	for _, netHTTP := range []bool{false, true} {
		ft := newFrontTarget(t, netHTTP, nil)
		for _, c := range []struct {
			name, raw string
			lines     []string
		}{
			{"received", push("X-WindowsPhone-Target: toast\r\nX-MessageID: 6f1c0c2e-0000-4000-8000-000000000001\r\n", frontToast), []string{
				"X-NotificationStatus: Received", "X-SubscriptionStatus: Active", "X-DeviceConnectionStatus: TempDisconnected",
				"X-MessageID: 6f1c0c2e-0000-4000-8000-000000000001",
			}},
			{"suppressed", push("X-WindowsPhone-Target: token\r\nX-MessageID: m-2\r\n",
				`<wp:Notification xmlns:wp="WPNotification"><wp:Tile><wp:Count>1</wp:Count></wp:Tile></wp:Notification>`), []string{
				"X-NotificationStatus: Suppressed", "X-SubscriptionStatus: Active", "X-DeviceConnectionStatus: TempDisconnected", "X-MessageID: m-2",
			}},
			{"no such channel", strings.ReplaceAll(push("X-MessageID: m-3\r\n", "x"), "{TOKEN}", strings.Repeat("A", 27)), []string{
				"HTTP/1.1 404 Not Found", "X-NotificationStatus: Dropped", "X-SubscriptionStatus: Expired", "X-MessageID: m-3",
			}},
			{"bad request", push("X-WindowsPhone-Target: toast\r\nX-MessageID: m-4\r\n", "<nope"), []string{
				"HTTP/1.1 400 Bad Request", "X-MessageID: m-4",
			}},
		} {
			head := ft.rawAnswer(t, c.raw)
			lines := strings.Split(head, "\r\n")
			for _, want := range c.lines {
				if !slices.Contains(lines, want) {
					t.Errorf("net/http %v, %s: the answer has no line %q:\n%s", netHTTP, c.name, want, head)
				}
			}
		}
	}
}
