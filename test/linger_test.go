package test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openmpns/openmpns/server"
)

// With the commit lingering (here an hour, so that nothing is committed
// during the test), a notification its connected device acknowledges is
// answered 200 Received at the acknowledgement and never written: the
// notification log shows no record and no fdatasync. Real server, real
// device, loopback HTTP and WebSocket.
func TestAcknowledgedWithinTheLingerIsNeverWritten(t *testing.T) {
	srv := startServer(t, server.Config{CommitLinger: time.Hour})
	p := newPhone(t, srv.URL(), "")
	uri := p.openChannel(t, "com.example.linger", "", true, false).ChannelURI()
	client := &http.Client{Timeout: waitLimit} // an answer that waited for the commit would take an hour
	for i := range 3 {
		req, err := http.NewRequest("POST", uri, bytes.NewReader(toastXML("linger", "", "")))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-WindowsPhone-Target", toastT)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("push %d: %v (its answer waited for the commit?)", i, err)
		}
		resp.Body.Close()
		if st := resp.Header.Get("X-NotificationStatus"); resp.StatusCode != 200 || st != "Received" {
			t.Fatalf("push %d: %d %s", i, resp.StatusCode, st)
		}
	}
	p.rec.waitN(t, 3, "shelltoast")
	_, m := get(t, srv.URL()+"/metrics")
	for _, want := range []string{
		"openmpns_log_records_total 0",
		"openmpns_log_syncs_total 0",
		`openmpns_log_notifications_total{outcome="written"} 0`,
		`openmpns_pushes_acked_before_stored_total 3`,
	} {
		if !strings.Contains(m, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
}
