package test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/openmpns/openmpns/server"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHealthAndMetrics(t *testing.T) {
	srv := startServer(t, server.Config{})
	if code, body := get(t, srv.URL()+"/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Fatalf("healthz: %d %q", code, body)
	}
	p := newPhone(t, srv.URL(), "")
	uri := p.openChannel(t, "com.example.metrics", "", true, false).ChannelURI()
	post(t, "POST", uri, toastT, "", "", toastXML("a", "b", ""))
	p.rec.waitN(t, 1, "shelltoast")
	post(t, "POST", uri, tileT, "", "", []byte("<bad"))
	waitFor(t, func() bool {
		_, m := get(t, srv.URL()+"/metrics")
		return strings.Contains(m, `openmpns_notifications_delivered_total{kind="toast"} 1`)
	})
	_, m := get(t, srv.URL()+"/metrics")
	for _, want := range []string{
		"openmpns_device_connections 1",
		"openmpns_channels 1",
		`openmpns_notifications_total{kind="toast",status="Received"} 1`,
		`openmpns_notifications_total{kind="tile",status="400"} 1`,
		"openmpns_delivery_latency_seconds_count 1",
		"openmpns_queue_depth 0",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
