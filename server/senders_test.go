package server

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// Requests as published MPNS sender libraries wrote them, byte for byte in
// their headers (names in their own case), through the server's handler.
func TestWhatRealSendersSend(t *testing.T) {
	tg := newPushFuzzTarget(t)
	toast := `<?xml version="1.0" encoding="utf-8"?><wp:Notification xmlns:wp="WPNotification"><wp:Toast><wp:Text2>world</wp:Text2><wp:Text1>Hello</wp:Text1></wp:Toast></wp:Notification>`
	cases := []struct {
		name    string
		headers string // raw header lines, CRLF-separated
		body    string
		status  int
		notif   string
	}{
		{"python raw", "Content-Type: text/xml\r\nAccept: application/*\r\nX-NotificationClass: 3\r\nX-WindowsPhone-Target: raw", "<data>1</data>", 200, StatusReceived},
		{"java raw, lower-case names", "content-type: text/xml; charset=utf-8\r\nx-notificationclass: 3\r\nx-windowsphone-target: raw", "ping", 200, StatusReceived},
		{"raw in capitals", "X-WindowsPhone-Target: RAW", "x", 200, StatusReceived},
		{"empty raw: a wake-up signal", "Content-Type: text/xml\r\nX-NotificationClass: 3\r\nX-WindowsPhone-Target: raw", "", 200, StatusReceived},
		{"empty raw, no target header", "X-NotificationClass: 13", "", 200, StatusReceived},
		{"toast, elements in non-schema order, lower-case names", "content-type: text/xml\r\nx-windowsphone-target: toast\r\nx-notificationclass: 2", toast, 200, StatusReceived},
		{"empty toast", "X-WindowsPhone-Target: toast\r\nX-NotificationClass: 2", "", 400, ""},
		{"empty tile", "X-WindowsPhone-Target: token\r\nX-NotificationClass: 1", "", 400, ""},
		{"unknown target", "X-WindowsPhone-Target: rawish", "x", 400, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			raw := "POST " + PushPath + tg.toastTok + " HTTP/1.1\r\nHost: push.example.com\r\n" + c.headers +
				"\r\nContent-Length: " + strconv.Itoa(len(c.body)) + "\r\n\r\n" + c.body
			req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
			if err != nil {
				t.Fatal(err)
			}
			before := tg.queued(t)
			rec := httptest.NewRecorder()
			tg.h.ServeHTTP(rec, req)
			hd := answerHeader(t, rec.Header())
			if rec.Code != c.status || hd.Get(HeaderNotificationStatus) != c.notif {
				t.Fatalf("answer %d %q (%s), want %d %q", rec.Code, hd.Get(HeaderNotificationStatus),
					hd.Get(HeaderError), c.status, c.notif)
			}
			want := before
			if c.status == 200 {
				want++
			}
			if got := tg.queued(t); got != want {
				t.Fatalf("queued %d, want %d", got, want)
			}
			if c.status == 400 && (hd.Get(HeaderError) == "" || rec.Body.Len() == 0) {
				t.Fatalf("400 without a reason: %q", rec.Body.String())
			}
		})
	}
}
