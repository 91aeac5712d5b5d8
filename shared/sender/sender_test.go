package sender

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openmpns/openmpns/shared/payload"
)

// received is what the test server saw of one request.
type received struct {
	method string
	path   string
	header http.Header
	body   []byte
}

// reply is what the test server answers.
type reply struct {
	status int
	header map[string]string
	body   string
}

// fakeService is a loopback MPNS endpoint answering with the next reply and
// recording each request.
type fakeService struct {
	*httptest.Server
	mu    sync.Mutex
	reqs  []received
	reply reply
	conns atomic.Int32
}

func newFakeService(t *testing.T) *fakeService {
	f := &fakeService{}
	f.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, received{r.Method, r.URL.RequestURI(), r.Header.Clone(), body})
		rep := f.reply
		f.mu.Unlock()
		for k, v := range rep.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(rep.status)
		io.WriteString(w, rep.body)
	}))
	f.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			f.conns.Add(1)
		}
	}
	f.Start()
	t.Cleanup(f.Close)
	return f
}

func (f *fakeService) set(r reply) {
	f.mu.Lock()
	f.reply = r
	f.mu.Unlock()
}

func (f *fakeService) last(t *testing.T) received {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) == 0 {
		t.Fatal("no request received")
	}
	return f.reqs[len(f.reqs)-1]
}

func TestClassFor(t *testing.T) {
	want := map[payload.Kind][3]int{
		payload.KindTile:  {1, 11, 21},
		payload.KindToast: {2, 12, 22},
		payload.KindRaw:   {3, 13, 23},
	}
	for kind, classes := range want {
		for iv, class := range classes {
			if got := ClassFor(kind, Interval(iv)); got != class {
				t.Errorf("ClassFor(%v, %v) = %d, want %d", kind, Interval(iv), got, class)
			}
		}
	}
	for _, bad := range []struct {
		kind payload.Kind
		iv   Interval
	}{{0, Immediate}, {payload.KindRaw + 1, Immediate}, {payload.KindToast, -1}, {payload.KindToast, 3}} {
		if got := ClassFor(bad.kind, bad.iv); got != 0 {
			t.Errorf("ClassFor(%v, %v) = %d, want 0", bad.kind, bad.iv, got)
		}
	}
	if Immediate.String() != "immediate" || Within450.String() != "450s" || Within900.String() != "900s" {
		t.Error("Interval.String")
	}
}

// TestSend sends one request per row of the MPNS response table and checks
// the exact headers the service received and the Response parsed from its
// answer.
func TestSend(t *testing.T) {
	svc := newFakeService(t)
	toast, err := NewToast(svc.URL+"/push/abc?x=1", &payload.Toast{Text1: "Hi", Text2: "there"}, Immediate)
	if err != nil {
		t.Fatal(err)
	}
	tile, err := NewTile(svc.URL+"/push/abc", &payload.Tile{Template: payload.TemplateFlip, Fields: map[string]string{payload.Count: "3"}}, Within450)
	if err != nil {
		t.Fatal(err)
	}
	raw := NewRaw(svc.URL+"/push/abc", []byte{0, 1, 2, 0xff}, Within900)

	tests := []struct {
		name       string
		req        Request
		wantHeader map[string]string // every header the service must see (besides Accept-Encoding)
		reply      reply
		want       Response
		advice     Advice
		delivered  bool
		retryable  bool
		stop       bool
		retryAfter time.Duration
	}{
		{
			name: "200 Received Connected (toast)",
			req:  withID(toast, "0c5b1c2e-7d3a-4e5f-9a6b-1c2d3e4f5a6b"),
			wantHeader: map[string]string{
				"Content-Type": "text/xml", "X-Windowsphone-Target": "toast", "X-Notificationclass": "2",
				"X-Messageid": "0c5b1c2e-7d3a-4e5f-9a6b-1c2d3e4f5a6b",
			},
			reply: reply{200, map[string]string{
				HeaderNotificationStatus: "Received", HeaderSubscriptionStatus: "Active", HeaderDeviceConnectionStatus: "Connected",
				HeaderMessageID: "0c5b1c2e-7d3a-4e5f-9a6b-1c2d3e4f5a6b",
			}, ""},
			want:   Response{StatusCode: 200, NotificationStatus: "Received", SubscriptionStatus: "Active", DeviceConnectionStatus: "Connected", MessageID: "0c5b1c2e-7d3a-4e5f-9a6b-1c2d3e4f5a6b"},
			advice: AdviceDone, delivered: true,
		},
		{
			name:       "200 Received TempDisconnected (tile)",
			req:        tile,
			wantHeader: map[string]string{"Content-Type": "text/xml", "X-Windowsphone-Target": "token", "X-Notificationclass": "11"},
			reply:      reply{200, map[string]string{HeaderNotificationStatus: "Received", HeaderSubscriptionStatus: "Active", HeaderDeviceConnectionStatus: "TempDisconnected"}, ""},
			want:       Response{StatusCode: 200, NotificationStatus: "Received", SubscriptionStatus: "Active", DeviceConnectionStatus: "TempDisconnected"},
			advice:     AdviceDone, delivered: true,
		},
		{
			name:       "200 QueueFull (raw)",
			req:        raw,
			wantHeader: map[string]string{"Content-Type": "application/octet-stream", "X-Notificationclass": "23"},
			reply:      reply{200, map[string]string{HeaderNotificationStatus: "QueueFull", HeaderSubscriptionStatus: "Active", HeaderDeviceConnectionStatus: "Connected"}, ""},
			want:       Response{StatusCode: 200, NotificationStatus: "QueueFull", SubscriptionStatus: "Active", DeviceConnectionStatus: "Connected"},
			advice:     AdviceBackoff, retryable: true,
		},
		{
			name:       "200 Suppressed",
			req:        toast,
			wantHeader: map[string]string{"Content-Type": "text/xml", "X-Windowsphone-Target": "toast", "X-Notificationclass": "2"},
			reply:      reply{200, map[string]string{HeaderNotificationStatus: "Suppressed", HeaderSubscriptionStatus: "Active", HeaderDeviceConnectionStatus: "TempDisconnected"}, ""},
			want:       Response{StatusCode: 200, NotificationStatus: "Suppressed", SubscriptionStatus: "Active", DeviceConnectionStatus: "TempDisconnected"},
			advice:     AdviceDone,
		},
		{
			name:       "400 with reason, no class",
			req:        Request{URI: svc.URL + "/push/abc", Kind: payload.KindTile, Body: []byte("<bad/>")},
			wantHeader: map[string]string{"Content-Type": "text/xml", "X-Windowsphone-Target": "token"},
			reply:      reply{400, map[string]string{HeaderError: "invalid payload: the root element must be Notification, found bad"}, "invalid payload\n"},
			want:       Response{StatusCode: 400, Reason: "invalid payload: the root element must be Notification, found bad"},
			advice:     AdviceFix,
		},
		{
			name: "401 with extra headers",
			req: Request{URI: svc.URL + "/push/abc", Kind: payload.KindToast, Class: 2, Body: toast.Body,
				Header: http.Header{"Authorization": {"Bearer t0k3n"}, "x-windowsphone-target": {"Toast"}}},
			wantHeader: map[string]string{"Content-Type": "text/xml", "X-Windowsphone-Target": "Toast", "X-Notificationclass": "2", "Authorization": "Bearer t0k3n"},
			reply:      reply{401, map[string]string{HeaderError: "sender not authorised for this channel"}, ""},
			want:       Response{StatusCode: 401, Reason: "sender not authorised for this channel"},
			advice:     AdviceFix,
		},
		{
			name:       "404 Dropped Expired",
			req:        toast,
			wantHeader: map[string]string{"Content-Type": "text/xml", "X-Windowsphone-Target": "toast", "X-Notificationclass": "2"},
			reply:      reply{404, map[string]string{HeaderNotificationStatus: "Dropped", HeaderSubscriptionStatus: "Expired"}, ""},
			want:       Response{StatusCode: 404, NotificationStatus: "Dropped", SubscriptionStatus: "Expired"},
			advice:     AdviceStop, stop: true,
		},
		{
			name:       "405",
			req:        raw,
			wantHeader: map[string]string{"Content-Type": "application/octet-stream", "X-Notificationclass": "23"},
			reply:      reply{405, map[string]string{"Allow": "POST"}, ""},
			want:       Response{StatusCode: 405},
			advice:     AdviceFix,
		},
		{
			name:       "406 Dropped Active",
			req:        toast,
			wantHeader: map[string]string{"Content-Type": "text/xml", "X-Windowsphone-Target": "toast", "X-Notificationclass": "2"},
			reply:      reply{406, map[string]string{HeaderNotificationStatus: "Dropped", HeaderSubscriptionStatus: "Active"}, ""},
			want:       Response{StatusCode: 406, NotificationStatus: "Dropped", SubscriptionStatus: "Active"},
			advice:     AdviceRetryHourly, retryable: true, retryAfter: time.Hour,
		},
		{
			name:       "412 Dropped Inactive",
			req:        tile,
			wantHeader: map[string]string{"Content-Type": "text/xml", "X-Windowsphone-Target": "token", "X-Notificationclass": "11"},
			reply:      reply{412, map[string]string{HeaderNotificationStatus: "Dropped", HeaderDeviceConnectionStatus: "Inactive"}, ""},
			want:       Response{StatusCode: 412, NotificationStatus: "Dropped", DeviceConnectionStatus: "Inactive"},
			advice:     AdviceRetryHourly, retryable: true, retryAfter: time.Hour,
		},
		{
			name:       "503 Retry-After",
			req:        withID(raw, "m-1"),
			wantHeader: map[string]string{"Content-Type": "application/octet-stream", "X-Notificationclass": "23", "X-Messageid": "m-1"},
			reply:      reply{503, map[string]string{HeaderError: "the server is shutting down; retry with backoff", "Retry-After": "120", HeaderMessageID: "m-1"}, ""},
			want:       Response{StatusCode: 503, Reason: "the server is shutting down; retry with backoff", MessageID: "m-1", RetryAfterHeader: "120"},
			advice:     AdviceBackoff, retryable: true, retryAfter: 2 * time.Minute,
		},
	}
	var c Client
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			svc.set(tc.reply)
			resp, err := c.Send(context.Background(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			got := svc.last(t)
			if got.method != http.MethodPost {
				t.Errorf("method %s", got.method)
			}
			wantPath := strings.TrimPrefix(tc.req.URI, svc.URL)
			if got.path != wantPath {
				t.Errorf("path %q, want %q", got.path, wantPath)
			}
			if string(got.body) != string(tc.req.Body) {
				t.Errorf("body %q, want %q", got.body, tc.req.Body)
			}
			want := map[string]string{"User-Agent": DefaultUserAgent, "Accept-Encoding": "gzip"}
			for k, v := range tc.wantHeader {
				want[http.CanonicalHeaderKey(k)] = v
			}
			if len(tc.req.Body) > 0 {
				want["Content-Length"] = strconv.Itoa(len(tc.req.Body))
			}
			gotH := map[string]string{}
			for k, vs := range got.header {
				gotH[k] = strings.Join(vs, ",")
			}
			if !reflect.DeepEqual(gotH, want) {
				t.Errorf("request headers:\n got %v\nwant %v", sorted(gotH), sorted(want))
			}
			if *resp != tc.want {
				t.Errorf("response:\n got %+v\nwant %+v", *resp, tc.want)
			}
			if a := resp.Advice(); a != tc.advice {
				t.Errorf("Advice = %v, want %v", a, tc.advice)
			}
			if resp.Delivered() != tc.delivered || resp.Retryable() != tc.retryable || resp.ShouldStop() != tc.stop {
				t.Errorf("Delivered/Retryable/ShouldStop = %v/%v/%v, want %v/%v/%v",
					resp.Delivered(), resp.Retryable(), resp.ShouldStop(), tc.delivered, tc.retryable, tc.stop)
			}
			if d := resp.RetryAfter(); d != tc.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", d, tc.retryAfter)
			}
		})
	}
}

func withID(r Request, id string) Request {
	r.MessageID = id
	return r
}

func sorted(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+": "+v)
	}
	sort.Strings(out)
	return out
}

// TestConnectionReuse checks that Send drains response bodies so that
// sequential sends share one keep-alive connection.
func TestConnectionReuse(t *testing.T) {
	svc := newFakeService(t)
	svc.set(reply{400, map[string]string{HeaderError: "no"}, strings.Repeat("x", 10<<10)})
	c := &Client{HTTP: &http.Client{Transport: &http.Transport{}}}
	t.Cleanup(c.HTTP.CloseIdleConnections)
	for i := 0; i < 20; i++ {
		if _, err := c.Send(context.Background(), NewRaw(svc.URL+"/push/x", []byte("hi"), Immediate)); err != nil {
			t.Fatal(err)
		}
	}
	if n := svc.conns.Load(); n != 1 {
		t.Errorf("%d connections for 20 sequential sends, want 1", n)
	}

	// A body beyond the drain limit costs a connection but still works.
	svc.set(reply{200, map[string]string{HeaderNotificationStatus: StatusReceived}, strings.Repeat("x", 1<<20)})
	for i := 0; i < 3; i++ {
		resp, err := c.Send(context.Background(), NewRaw(svc.URL+"/push/x", []byte("hi"), Immediate))
		if err != nil || !resp.Delivered() {
			t.Fatalf("big body: %v, %v", resp, err)
		}
	}
}

func TestSendErrors(t *testing.T) {
	var c Client
	ctx := context.Background()
	for _, r := range []Request{
		{URI: "::not a uri", Kind: payload.KindRaw},
		{URI: "/push/relative", Kind: payload.KindRaw},
		{URI: "ftp://example.com/push/x", Kind: payload.KindRaw},
		{URI: "http://example.com/push/x", Kind: 0},
	} {
		if resp, err := c.Send(ctx, r); err == nil {
			t.Errorf("Send(%+v) = %v, want an error", r, resp)
		}
	}

	// Transport failure: nothing listens. The error must not leak the
	// Channel URI's token.
	svc := newFakeService(t)
	uri := svc.URL + "/push/secret-token?q=1"
	svc.Close()
	_, err := c.Send(ctx, NewRaw(uri, []byte("x"), Immediate))
	if err == nil {
		t.Fatal("Send to a closed server succeeded")
	}
	if strings.Contains(err.Error(), "secret-token") {
		t.Errorf("error leaks the Channel URI: %v", err)
	}
	if _, err := NewToast(uri, &payload.Toast{}, Immediate); err == nil {
		t.Error("NewToast accepted an empty toast")
	}
	if _, err := NewTile(uri, &payload.Tile{Template: "Nope"}, Immediate); err == nil {
		t.Error("NewTile accepted an unknown template")
	}

	// Cancellation.
	block := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(block) })
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = c.Send(cctx, NewRaw(slow.URL+"/push/x", nil, Immediate))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Send with an expiring context: %v, want DeadlineExceeded", err)
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	svc := newFakeService(t)
	svc.set(reply{302, map[string]string{"Location": "/elsewhere"}, ""})
	var c Client
	resp, err := c.Send(context.Background(), NewRaw(svc.URL+"/push/x", []byte("x"), Immediate))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 302 || resp.Advice() != AdviceFix {
		t.Errorf("redirect: %+v, %v", resp, resp.Advice())
	}
	svc.mu.Lock()
	n := len(svc.reqs)
	svc.mu.Unlock()
	if n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestAdviceAndString(t *testing.T) {
	tests := []struct {
		r      Response
		advice Advice
		str    string
	}{
		{Response{StatusCode: 200, NotificationStatus: "Received", SubscriptionStatus: "Active", DeviceConnectionStatus: "Connected"}, AdviceDone, "200 Received/Active/Connected"},
		{Response{StatusCode: 200}, AdviceDone, "200 OK"},
		{Response{StatusCode: 412, NotificationStatus: "Dropped", DeviceConnectionStatus: "Inactive"}, AdviceRetryHourly, "412 Dropped/-/Inactive"},
		{Response{StatusCode: 400, Reason: "payload is more than the 3072-byte limit"}, AdviceFix, "400 Bad Request: payload is more than the 3072-byte limit"},
		{Response{StatusCode: 410, SubscriptionStatus: "Expired"}, AdviceStop, "410 -/Expired/-"},
		{Response{StatusCode: 429}, AdviceBackoff, "429 Too Many Requests"},
		{Response{StatusCode: 502}, AdviceBackoff, "502 Bad Gateway"},
		{Response{StatusCode: 403}, AdviceFix, "403 Forbidden"},
	}
	for _, tc := range tests {
		if a := tc.r.Advice(); a != tc.advice {
			t.Errorf("%+v: Advice = %v, want %v", tc.r, a, tc.advice)
		}
		if s := tc.r.String(); s != tc.str {
			t.Errorf("String = %q, want %q", s, tc.str)
		}
	}
	now := time.Date(2013, 5, 1, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"30": 30 * time.Second, "Wed, 01 May 2013 12:05:00 GMT": 5 * time.Minute,
		"Wed, 01 May 2013 11:00:00 GMT": 0, "999999999": 7 * 24 * time.Hour,
	} {
		if d, ok := parseRetryAfter(v, now); !ok || d != want {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v", v, d, ok, want)
		}
	}
	for _, v := range []string{"", "-1", "soon"} {
		if _, ok := parseRetryAfter(v, now); ok {
			t.Errorf("parseRetryAfter(%q) accepted", v)
		}
	}
	if (&Response{StatusCode: 400, RetryAfterHeader: "10"}).RetryAfter() != 0 {
		t.Error("RetryAfter of a non-retryable response")
	}
	if (&Response{StatusCode: 200, NotificationStatus: StatusQueueFull}).RetryAfter() != 0 {
		t.Error("RetryAfter of QueueFull without header is not 0 (backoff)")
	}
	for a := AdviceDone; a <= AdviceFix+1; a++ {
		if a.String() == "" {
			t.Errorf("Advice(%d).String() is empty", a)
		}
	}
}

func TestTimedMessageID(t *testing.T) {
	at := time.Unix(1795000000, 123456789)
	id := NewTimedMessageID(at, 42)
	if len(id) != 36 || strings.Count(id, "-") != 4 {
		t.Fatalf("not UUID-shaped: %q", id)
	}
	got, ok := TimeOfMessageID(id)
	if !ok || !got.Equal(at) {
		t.Fatalf("%q: %v %v", id, got, ok)
	}
	// The format the Sprintf of the first version wrote, digit for digit.
	n := uint64(at.UnixNano())
	seq := uint64(0xabcdef0123456789)
	want := fmt.Sprintf("%08x-%04x-%04x-10ad-%012x", n>>32, (n>>16)&0xffff, n&0xffff, seq&0xffffffffffff)
	if got := NewTimedMessageID(at, seq); got != want {
		t.Fatalf("NewTimedMessageID = %q, want %q", got, want)
	}
	if got := string(AppendTimedMessageID([]byte("id: "), at, seq)); got != "id: "+want {
		t.Fatalf("AppendTimedMessageID = %q", got)
	}
	for _, other := range []string{NewMessageID(), "", "x", strings.Replace(id, "10ad", "10ae", 1), strings.Replace(id, id[:1], "g", 1)} {
		if _, ok := TimeOfMessageID(other); ok {
			t.Errorf("%q read as timed", other)
		}
	}
}
