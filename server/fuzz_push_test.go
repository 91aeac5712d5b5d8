package server

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/openmpns/openmpns/server/store"
	"github.com/openmpns/openmpns/shared/payload"
	"github.com/openmpns/openmpns/shared/wire"
)

// documentedStatuses are the answers of the push API (docs/protocol.md §10,
// docs/server.md): nothing else may come out of the handler.
var documentedStatuses = []int{200, 400, 401, 403, 404, 405, 406, 412, 503}

// pushFuzzTarget is a real server (loopback listener, bbolt file in a
// temporary directory) with one device that has a toast channel and a tile
// channel, and the server's own HTTP handler.
type pushFuzzTarget struct {
	srv               *Server
	h                 http.Handler
	toastTok, tileTok string
}

// newPushFuzzTarget starts a server with a device and its two channels.
// Its queues hold 16 notifications: the fuzz target reads the whole
// notification log twice per push (queued), and with queues of 200 a run
// of 50,000 pushes in make test took 160–190 s. With 16, the pushes reach
// QueueFull as surely and the log stays a tenth the size: 78 s.
func newPushFuzzTarget(f testing.TB) *pushFuzzTarget {
	srv := startServer(f, Config{DailyQuota: -1, QueueLimit: 16})
	dev, _, err := srv.eng.Authenticate("", "")
	if err != nil {
		f.Fatal(err)
	}
	tg := &pushFuzzTarget{srv: srv, h: srv.Handler()}
	for _, c := range []struct {
		app, target string
		tok         *string
	}{{"com.example.toast", wire.BindToast, &tg.toastTok}, {"com.example.tile", wire.BindTile, &tg.tileTok}} {
		ch, err := srv.eng.Open(dev, c.app, "main", "", nil)
		if err != nil {
			f.Fatal(err)
		}
		if _, err := srv.eng.Bind(dev, c.app, c.target, true, nil); err != nil {
			f.Fatal(err)
		}
		*c.tok = ch.Token
	}
	return tg
}

// queued is the number of notifications in the store, and the queue-depth
// gauge, which must agree with it.
func (tg *pushFuzzTarget) queued(t *testing.T) int {
	t.Helper()
	q, err := tg.srv.be.(*store.Embedded).Log().Queued()
	if err != nil {
		t.Fatal(err)
	}
	var m dto.Metric
	if err := tg.srv.met.queueDepth.Write(&m); err != nil {
		t.Fatal(err)
	}
	if g := int(m.GetGauge().GetValue()); g != len(q) {
		t.Fatalf("queue depth gauge %d, store holds %d", g, len(q))
	}
	return len(q)
}

// rawRequest writes the request a sender would send. A requestTarget of ""
// or "@tile" is the Channel URI path of the toast or the tile channel.
// Headers with an empty value are left out; extra is added as raw header
// lines; Content-Length is added unless extra frames the body itself.
func (tg *pushFuzzTarget) rawRequest(method, requestTarget, target, class, msgID, extra string, body []byte) []byte {
	switch requestTarget {
	case "":
		requestTarget = PushPath + tg.toastTok
	case "@tile":
		requestTarget = PushPath + tg.tileTok
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: push.example.com\r\nContent-Type: text/xml\r\n", method, requestTarget)
	for _, h := range [][2]string{{HeaderTarget, target}, {HeaderClass, class}, {HeaderMessageID, msgID}} {
		if h[1] != "" {
			fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
		}
	}
	if extra != "" {
		b.WriteString(extra)
		if !strings.HasSuffix(extra, "\r\n") {
			b.WriteString("\r\n")
		}
	}
	if lx := strings.ToLower(extra); !strings.Contains(lx, "content-length") && !strings.Contains(lx, "transfer-encoding") {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}

// answerHeader is an answer's header as a sender's HTTP client reads it
// (names made canonical, so that Get finds them). It fails the test when
// one of the MPNS headers is not spelled as MPNS spelled it: the handler
// puts them in the map under that spelling, which is how they go out.
func answerHeader(t testing.TB, h http.Header) http.Header {
	t.Helper()
	for _, k := range []string{HeaderNotificationStatus, HeaderSubscriptionStatus, HeaderConnectionStatus, HeaderMessageID} {
		if c := http.CanonicalHeaderKey(k); c != k && h[c] != nil {
			t.Fatalf("the answer spells %s as %s", k, c)
		}
	}
	out := make(http.Header, len(h))
	for k, vs := range h {
		for _, v := range vs {
			out.Add(k, v)
		}
	}
	return out
}

// TestPushFuzzTargetAnswers checks the fuzz target's harness: a valid
// toast and tile are Received, a PUT is 405, a bad URI 400.
func TestPushFuzzTargetAnswers(t *testing.T) {
	tg := newPushFuzzTarget(t)
	toast := (&payload.Toast{Text1: "Hi"}).Encode()
	for _, c := range []struct {
		method, uri, target string
		body                []byte
		status              int
		notif               string
	}{
		{"POST", "", "toast", toast, 200, "Received"},
		{"POST", "@tile", "token", []byte(`<wp:Notification xmlns:wp="WPNotification"><wp:Tile><wp:Count>1</wp:Count></wp:Tile></wp:Notification>`), 200, "Received"},
		{"PUT", "", "toast", toast, 405, ""},
		{"POST", "/push/short", "toast", toast, 400, ""},
	} {
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(tg.rawRequest(c.method, c.uri, c.target, "", "", "", c.body))))
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		tg.h.ServeHTTP(rec, req)
		hd := answerHeader(t, rec.Header())
		if rec.Code != c.status || hd.Get(HeaderNotificationStatus) != c.notif {
			t.Errorf("%s %s: %d %q (%s)", c.method, c.uri, rec.Code, hd.Get(HeaderNotificationStatus), hd.Get(HeaderError))
		}
	}
	if n := tg.queued(t); n != 2 {
		t.Fatalf("%d queued, want 2", n)
	}
}

// FuzzPushHandler drives the server's real HTTP handler, with its real
// engine and bbolt store, with fuzzed request lines, headers and bodies
// (parsed by net/http's own request parser, as the server does) and checks:
// no panic; the status is one the push API documents; a 200 carries MPNS
// statuses from the documented set; every answer other than 200 Received
// has a reason in X-OpenMPNS-Error, and every non-200 the same reason as its
// body; a usable X-MessageID is echoed; only POST is served; nothing is
// half-written (the store and the queue-depth gauge agree, and grow only
// with a 200 Received, by at most one); and only a body valid for its
// target is ever Received (an empty one only as raw). The seed corpus is testdata/fuzz/FuzzPushHandler.
func FuzzPushHandler(f *testing.F) {
	tg := newPushFuzzTarget(f)
	toast := (&payload.Toast{Text1: "Hi", Text2: "there", Param: "/Page.xaml?x=1"}).Encode()
	tile := []byte(`<?xml version="1.0" encoding="utf-8"?><wp:Notification xmlns:wp="WPNotification" Version="2.0"><wp:Tile Id="/Second.xaml" Template="FlipTile"><wp:Count>5</wp:Count><wp:Title>T</wp:Title></wp:Tile></wp:Notification>`)
	f.Add("POST", "", "toast", "2", "7c9a5b2e-1111-4c1d-9a1a-000000000001", "", toast)
	f.Add("POST", "@tile", "token", "11", "", "", tile)
	f.Add("POST", "", "", "3", "", "", []byte("raw \x00\xff bytes"))
	f.Add("POST", "", "Toast", "12", "", "Authorization: Bearer x.y.z", toast)
	f.Add("PUT", "", "toast", "", "m", "", toast)
	f.Add("POST", "/push/short", "toast", "", "", "", toast)
	f.Add("POST", "", "toast", "1", "", "", toast)
	f.Add("POST", "", "toast", "", "", "Transfer-Encoding: chunked", []byte("5\r\nhello\r\n0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, method, requestTarget, target, class, msgID, extra string, body []byte) {
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(tg.rawRequest(method, requestTarget, target, class, msgID, extra, body))))
		if err != nil {
			return // net/http answers what it cannot parse before any handler runs
		}
		if !strings.HasPrefix(req.URL.Path, PushPath) {
			return // not the push API
		}
		sent, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(sent))
		req.RemoteAddr = "192.0.2.1:4000"

		before := tg.queued(t)
		rec := httptest.NewRecorder()
		tg.h.ServeHTTP(rec, req)
		after := tg.queued(t)

		res := rec.Result()
		hd := answerHeader(t, res.Header)
		status, notif, reason := res.StatusCode, hd.Get(HeaderNotificationStatus), hd.Get(HeaderError)
		received := status == 200 && notif == "Received"
		if !received && after != before || received && after != before && after != before+1 {
			t.Fatalf("%d %s: the store went from %d to %d queued notifications", status, notif, before, after)
		}
		if (status == http.StatusMovedPermanently || status == http.StatusTemporaryRedirect) && path.Clean(req.URL.Path) != req.URL.Path {
			return // the mux redirects an unclean path to its clean form
		}
		if !slices.Contains(documentedStatuses, status) {
			t.Fatalf("status %d is not one the push API documents (reason %q)", status, reason)
		}
		if !received && reason == "" {
			t.Fatalf("%d %s without a reason", status, notif)
		}
		if status != 200 {
			b, _ := io.ReadAll(res.Body)
			if headerSafe(strings.TrimSuffix(string(b), "\n")) != reason {
				t.Fatalf("%d: body %q does not give the reason %q", status, b, reason)
			}
		}
		if status == 200 {
			if !slices.Contains([]string{"Received", "QueueFull", "Suppressed"}, notif) || hd.Get(HeaderSubscriptionStatus) != "Active" ||
				!slices.Contains([]string{"Connected", "TempDisconnected", "Disconnected"}, hd.Get(HeaderConnectionStatus)) {
				t.Fatalf("200 with statuses %q %q %q", notif, hd.Get(HeaderSubscriptionStatus), hd.Get(HeaderConnectionStatus))
			}
		}
		if status == 400 && (notif != "" || hd.Get(HeaderSubscriptionStatus) != "") {
			t.Fatalf("400 with MPNS statuses: %v", hd)
		}
		if id := req.Header.Get(HeaderMessageID); id != "" && len(id) <= 256 && hd.Get(HeaderMessageID) != id {
			t.Fatalf("X-MessageID %q echoed as %q", id, hd.Get(HeaderMessageID))
		}
		if req.Method != http.MethodPost && (status != 405 || hd.Get("Allow") != http.MethodPost) {
			t.Fatalf("%s answered %d (Allow %q), want 405 with Allow: POST", req.Method, status, hd.Get("Allow"))
		}
		if received {
			if len(sent) > tg.srv.cfg.MaxPayloadBytes {
				t.Fatalf("a body of %d bytes was Received", len(sent))
			}
			// An empty body is Received as raw only (a wake-up signal);
			// toasts and tiles must parse, which an empty body does not.
			switch strings.ToLower(strings.TrimSpace(req.Header.Get(HeaderTarget))) {
			case "toast":
				if _, err := payload.ParseToast(sent); err != nil {
					t.Fatalf("an invalid toast was Received: %v", err)
				}
			case "token", "tile":
				if _, err := payload.ParseTile(sent); err != nil {
					t.Fatalf("an invalid tile was Received: %v", err)
				}
			}
		}
	})
}
