package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

// The publisher's requests, read by net/http, carry the channel and data
// of the size asked for with the time in it; its response reader reads
// net/http's answers back to back on one connection and tells a 200 from
// an error.
func TestPublishRequestAndResponse(t *testing.T) {
	type body struct {
		Channel string          `json:"channel"`
		Data    json.RawMessage `json:"data"`
	}
	got := make(chan body, 3)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b body
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
			t.Errorf("body: %v", err)
		}
		got <- b
		if b.Channel == "ch2" {
			w.Write([]byte(`{"error":{"code":102,"message":"unknown channel"}}`))
			return
		}
		w.Write([]byte(`{"result":{}}`))
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL + "/api/publish")
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	before := time.Now().UnixNano()
	for i, want := range []bool{true, true, false} {
		ch := []string{"ch0", "ch1", "ch2"}[i]
		if _, err := c.Write(publishRequest(nil, u, ch, 64)); err != nil {
			t.Fatal(err)
		}
		ok, err := readResponse(r)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		if ok != want {
			t.Errorf("response %d: ok %v, want %v", i, ok, want)
		}
		b := <-got
		if b.Channel != ch || len(b.Data) != 64 {
			t.Errorf("request %d: channel %q, %d bytes of data %s; want %q and 64", i, b.Channel, len(b.Data), b.Data, ch)
		}
		if ts, ok := sentAt(b.Data); !ok || ts < before || ts > time.Now().UnixNano() {
			t.Errorf("request %d: time %d (%v), want one since %d", i, ts, ok, before)
		}
	}
}

// A response cut short is an error, not a success.
func TestReadResponseCutShort(t *testing.T) {
	for _, in := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}",
		"HTTP/1.1 200 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
		"HTTP/1.1 200",
	} {
		if ok, err := readResponse(bufio.NewReader(&cutReader{s: in})); err == nil || ok {
			t.Errorf("%q: ok %v, err %v; want an error", in, ok, err)
		}
	}
}

type cutReader struct{ s string }

func (c *cutReader) Read(p []byte) (int, error) {
	if c.s == "" {
		return 0, io.EOF
	}
	n := copy(p, c.s)
	c.s = c.s[n:]
	return n, nil
}

// sentAt finds the time in a push as Centrifugo sends it.
func TestSentAt(t *testing.T) {
	ts, ok := sentAt([]byte(`{"push":{"channel":"ch1","pub":{"data":{"t":1733500000123456789,"p":"xx"}}}}`))
	if !ok || ts != 1733500000123456789 {
		t.Errorf("got %d %v", ts, ok)
	}
	if _, ok := sentAt([]byte(`{"push":{"channel":"ch1","pub":{"data":{}}}}`)); ok {
		t.Error("a push without a time gave one")
	}
}
