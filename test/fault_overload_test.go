package test

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/server"
)

// metric returns the value of an unlabelled metric of srv.
func metric(t *testing.T, srv *server.Server, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + srv.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestFaultOverload: senders pushing as fast as 64 connections allow, far
// beyond what the store commits, get 503 (MaxPendingPushes are waiting to
// be stored) or QueueFull (a channel holds QueueLimit), never an error or
// a hang; the queue stays within channels × QueueLimit and the pending
// pushes within MaxPendingPushes; once the load drops the server accepts
// again by itself and everything it answered Received is delivered once.
func TestFaultOverload(t *testing.T) {
	const (
		queueLimit = 10
		maxPending = 2
		phones     = 4
		workers    = 64
		pushes     = 800
	)
	srv := startServer(t, server.Config{QueueLimit: queueLimit, MaxPendingPushes: maxPending, DailyQuota: -1})
	var ps []*phone
	var uris []string
	for i := range phones {
		p := newPhone(t, srv.URL(), "")
		uris = append(uris, p.openChannel(t, fmt.Sprint("com.example.load", i), "", true, false).ChannelURI())
		p.SetOnline(false) // nothing drains during the flood: queues fill
		ps = append(ps, p)
	}
	var mu sync.Mutex
	answers := map[string]int{}
	received := map[int]map[string]bool{}
	for i := range phones {
		received[i] = map[string]bool{}
	}
	var wg sync.WaitGroup
	next := make(chan int)
	var maxQueue, maxPend float64
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				dev := i % phones
				id := fmt.Sprint("load-", i)
				a := post(t, "POST", uris[dev], toastT, "", id, toastXML(id, "", ""))
				mu.Lock()
				answers[fmt.Sprint(a.code, " ", a.notif)]++
				if a.code == 200 && a.notif == "Received" {
					received[dev][id] = true
				}
				mu.Unlock()
			}
		}()
	}
	for i := range pushes {
		next <- i
		if i%200 == 0 {
			maxQueue = max(maxQueue, metric(t, srv, "openmpns_queue_depth"))
			maxPend = max(maxPend, metric(t, srv, "openmpns_pushes_pending"))
		}
	}
	close(next)
	wg.Wait()
	t.Logf("answers under overload: %v", answers)
	for k := range answers {
		if k != "200 Received" && k != "200 QueueFull" && k != "503 " {
			t.Errorf("answer %q under overload: want Received, QueueFull or 503", k)
		}
	}
	if answers["503 "] == 0 && answers["200 QueueFull"] == 0 {
		t.Errorf("overload was not refused: %v", answers)
	}
	if q := metric(t, srv, "openmpns_queue_depth"); q > phones*queueLimit || maxQueue > phones*queueLimit {
		t.Errorf("queue depth %v (max seen %v) beyond channels × QueueLimit = %d", q, maxQueue, phones*queueLimit)
	}
	if maxPend > maxPending {
		t.Errorf("pending pushes reached %v, bound %d", maxPend, maxPending)
	}
	if o := metric(t, srv, "openmpns_pushes_overload_total"); o != float64(answers["503 "]) {
		t.Errorf("overload counter %v, 503 answers %d", o, answers["503 "])
	}
	// The load drops: devices drain their queues, and the server accepts
	// again without any intervention.
	for i, p := range ps {
		p.SetAppState(fmt.Sprint("com.example.load", i), device.AppState{Running: true})
		p.SetOnline(true)
	}
	for i, p := range ps {
		got := p.rec.waitN(t, len(received[i]), "shelltoast")
		seen := map[string]bool{}
		for _, e := range got {
			if seen[e.meta.MessageID] || !received[i][e.meta.MessageID] {
				t.Fatalf("device %d: %s arrived twice or was not Received", i, e.meta.MessageID)
			}
			seen[e.meta.MessageID] = true
		}
	}
	// Acks follow the handlers; the queue empties once they are applied.
	for try := 0; metric(t, srv, "openmpns_queue_depth") > 0; try++ {
		if try == 10000 {
			t.Fatalf("the queues never drained: depth %v", metric(t, srv, "openmpns_queue_depth"))
		}
	}
	for i := range ps {
		if a := post(t, "POST", uris[i], toastT, "", "after", toastXML("after", "", "")); !a.is(200, "Received", "Active", "Connected") {
			t.Fatalf("device %d after the load dropped: %+v", i, a)
		}
	}
	// Connections the flood dialled and never used would hold the
	// server's shutdown for its grace period.
	http.DefaultClient.CloseIdleConnections()
}
