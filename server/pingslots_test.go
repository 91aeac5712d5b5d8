package server

import (
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Every session is in one slot from add to remove, whatever the order of
// adds and removes; a heartbeat's slots, looked at in any steps, hold
// each once.
func TestPingSlotsHoldEachSessionOnce(t *testing.T) {
	var p pingSlots
	live := map[*session]bool{}
	var all []*session
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range 6000 {
		s := &session{slotAt: -1}
		p.add(s)
		live[s] = true
		all = append(all, s)
		if i%3 == 0 { // remove one at random, sometimes one removed already
			v := all[rnd.IntN(len(all))]
			p.remove(v)
			delete(live, v)
		}
	}
	p.remove(&session{slotAt: -1}) // never added: nothing happens
	if p.n != len(live) {
		t.Fatalf("%d sessions counted, %d live", p.n, len(live))
	}
	seen := map[*session]int{}
	var batch []*session
	for done := 0; done < pingSlotCount; {
		due := min(done+1+rnd.IntN(100), pingSlotCount)
		batch = p.span(done, due, batch[:0])
		for _, s := range batch {
			seen[s]++
		}
		done = due
	}
	if len(seen) != len(live) {
		t.Fatalf("a heartbeat pings %d sessions, want %d", len(seen), len(live))
	}
	for s, n := range seen {
		if n != 1 || !live[s] {
			t.Fatalf("a session pinged %d times (live %v)", n, live[s])
		}
	}
	for k := range p.slots { // each knows where it is
		for i, s := range p.slots[k] {
			if int(s.slot) != k || int(s.slotAt) != i {
				t.Fatalf("slot %d holds at %d a session that says %d, %d", k, i, s.slot, s.slotAt)
			}
		}
	}
}

// Slot k is due k/pingSlotCount of the way into a heartbeat, the first at
// once, all of them by its end.
func TestSlotsDue(t *testing.T) {
	hb := 30 * time.Second
	for _, c := range []struct {
		elapsed time.Duration
		want    int
	}{{0, 1}, {hb / 1024, 2}, {hb / 2, 513}, {hb - 1, 1024}, {hb, 1024}, {5 * hb, 1024}} {
		if got := slotsDue(c.elapsed, hb); got != c.want {
			t.Errorf("slotsDue(%v) = %d, want %d", c.elapsed, got, c.want)
		}
	}
}

// The pinger looks often enough for a look to ping about pingBatch
// sessions: 16 looks a heartbeat at least, 1,024 at most, one a
// millisecond at most.
func TestPingEvery(t *testing.T) {
	hb := 30 * time.Second
	for _, c := range []struct {
		n    int
		hb   time.Duration
		want time.Duration
	}{
		{0, hb, hb / 16}, {256, hb, hb / 16}, {1000, hb, hb / 63}, {10000, hb, hb / 625},
		{100000, hb, hb / 1024}, {10000, 50 * time.Millisecond, time.Millisecond},
	} {
		if got := pingEvery(c.n, c.hb); got != c.want {
			t.Errorf("pingEvery(%d, %v) = %v, want %v", c.n, c.hb, got, c.want)
		}
	}
}

// pingTimes runs a schedule on a clock of its own for beats heartbeats,
// with n sessions: next gives the time of the look after one at at (the
// pinger's wait, or a stall). It returns when each slot was pinged.
func pingTimes(hb time.Duration, n, beats int, next func(at time.Time, wait time.Duration) time.Time) [][]time.Time {
	t0 := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	p := newPingSchedule(t0, hb)
	pinged := make([][]time.Time, pingSlotCount)
	for at := t0.Add(p.every); at.Before(t0.Add(time.Duration(beats) * hb)); {
		from, to := p.look(at)
		for k := from; k < to; k++ {
			pinged[k] = append(pinged[k], at)
		}
		at = next(at, p.wait(n))
	}
	return pinged
}

// gaps returns the shortest and the longest time between two pings of a
// slot, after its first two: the first look comes a sixteenth of a
// heartbeat after the start (pingEvery with no sessions), and pings the
// slots due before it then, a little late.
func gaps(pinged [][]time.Time) (least, most time.Duration) {
	least = time.Hour
	for _, ts := range pinged {
		for i := 2; i < len(ts); i++ {
			least, most = min(least, ts[i].Sub(ts[i-1])), max(most, ts[i].Sub(ts[i-1]))
		}
	}
	return least, most
}

// Looking on time, the pinger pings every slot once a heartbeat, a
// heartbeat apart give or take a look, however many sessions there are.
func TestPingScheduleOnTime(t *testing.T) {
	const hb = 30 * time.Second
	for _, n := range []int{1, 1000, 10000, 100000} {
		pinged := pingTimes(hb, n, 6, func(at time.Time, wait time.Duration) time.Time { return at.Add(wait) })
		every := pingEvery(n, hb)
		for k, ts := range pinged {
			if len(ts) < 5 || len(ts) > 6 {
				t.Fatalf("%d sessions: slot %d pinged %d times in 6 heartbeats", n, k, len(ts))
			}
		}
		if least, most := gaps(pinged); least < hb-every || most > hb+every {
			t.Errorf("%d sessions (a look every %v): pings %v to %v apart, want %v give or take a look", n, every, least, most, hb)
		}
	}
}

// A pinger held up (a stall of a fifth of a heartbeat to three) pings no
// slot twice in quick succession: the schedule moves on by the stall, so
// a slot's pings are between a heartbeat and a heartbeat and the stall
// apart, give or take two looks. Catching up instead pinged the missed
// slots at once and again at the next heartbeat's start, and devices that
// answered every ping were closed for silence (the review's test).
func TestPingScheduleAfterAStall(t *testing.T) {
	const hb = 100 * time.Millisecond
	const n = 500
	every := pingEvery(n, hb)
	for _, stall := range []time.Duration{hb / 5, hb * 14 / 10, 3 * hb} {
		for _, stallAt := range []time.Duration{hb * 11 / 10, hb * 19 / 10} {
			t0 := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
			stalled := false
			pinged := pingTimes(hb, n, 8, func(at time.Time, wait time.Duration) time.Time {
				if !stalled && at.Sub(t0) >= stallAt {
					stalled = true
					return at.Add(stall)
				}
				return at.Add(wait)
			})
			least, most := gaps(pinged)
			if least < hb-2*every || most > hb+stall+2*every {
				t.Errorf("stall of %v at %v: pings %v to %v apart, want %v to %v", stall, stallAt, least, most, hb-2*every, hb+stall+2*every)
			}
		}
	}
}

// A device is closed for silence only when nothing came from it for two
// heartbeats, not even an answer to a ping that went out at least half a
// heartbeat ago.
func TestSilentDevice(t *testing.T) {
	const hb = 10 * time.Second
	s := int64(time.Second)
	now := 1000 * s
	for _, c := range []struct {
		name           string
		seen, pingedAt int64
		want           bool
	}{
		{"silent since before the last ping", now - 21*s, now - 10*s, true},
		{"answered the last ping", now - 9*s, now - 10*s, false},
		{"answered a ping, the pinger then held up", now - 25*s, now - 25*s - s/10, false},
		{"pinged moments ago", now - 21*s, now - s, false},
		{"never pinged", now - 30*s, 0, false},
		{"heard from lately", now - 19*s, now - 25*s, false},
	} {
		if got := silentDevice(now, c.seen, c.pingedAt, hb); got != c.want {
			t.Errorf("%s: silent %v, want %v", c.name, got, c.want)
		}
	}
}

// A slot that held many sessions keeps no large array once they are gone
// (from the review).
func TestPingSlotsShrink(t *testing.T) {
	var p pingSlots
	all := make([]*session, 300*pingSlotCount)
	for i := range all {
		all[i] = &session{slotAt: -1}
		p.add(all[i])
	}
	for _, s := range all {
		p.remove(s)
	}
	total := 0
	for k := range p.slots {
		total += cap(p.slots[k])
	}
	if p.n != 0 || total > 64*pingSlotCount {
		t.Fatalf("%d sessions counted, room for %d kept", p.n, total)
	}
}

// Sessions that end, whichever way (the device closes, the server kicks),
// leave their ping slot, with the poller and with reader goroutines (from
// the review).
func TestSessionsLeaveTheirPingSlots(t *testing.T) {
	for _, epoll := range []bool{true, false} {
		cfg := &Config{Heartbeat: time.Minute, WriteTimeout: time.Second, HelloTimeout: time.Minute,
			MaxAttaching: -1, ReaderGoroutines: !epoll, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
		g := newGateway(cfg, nil, nil)
		g.start()
		hs := httptest.NewServer(g)
		url := "ws" + strings.TrimPrefix(hs.URL, "http")
		var wss []*websocket.Conn
		pongs := make(chan struct{}, 200)
		for range 200 {
			ws, _, err := websocket.DefaultDialer.Dial(url, nil)
			if err != nil {
				t.Fatal(err)
			}
			wss = append(wss, ws)
			// A pong shows the session is up: the server reads a
			// session only once it is counted (and in its slot).
			ws.SetPongHandler(func(string) error { pongs <- struct{}{}; return nil })
			go func() {
				for {
					if _, _, err := ws.ReadMessage(); err != nil {
						return
					}
				}
			}()
			if err := ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(10*time.Second)); err != nil {
				t.Fatal(err)
			}
		}
		for range wss {
			<-pongs
		}
		g.mu.Lock()
		if n := g.pingSlots.n; n != len(wss) {
			t.Errorf("epoll %v: %d sessions in the slots, want %d", epoll, n, len(wss))
		}
		g.mu.Unlock()
		for i, ws := range wss {
			if i%2 == 0 {
				ws.Close()
			}
		}
		g.kickAll(websocket.CloseGoingAway, "bye") // waits for every session to end
		left := 0
		for k := range g.pingSlots.slots {
			left += len(g.pingSlots.slots[k])
		}
		if g.pingSlots.n != 0 || left != 0 {
			t.Errorf("epoll %v: every session ended, but the slots count %d and hold %d", epoll, g.pingSlots.n, left)
		}
		for _, ws := range wss {
			ws.Close()
		}
		hs.Close()
	}
}

// A session that carried a frame each way within the last half heartbeat
// is not pinged; one quiet either way is.
func TestPingNeeded(t *testing.T) {
	const hb = 10 * time.Second
	s := int64(time.Second)
	now := 1000 * s
	for _, c := range []struct {
		name       string
		seen, sent int64
		want       bool
	}{
		{"both ways lately", now - 2*s, now - 3*s, false},
		{"nothing sent lately", now - 2*s, now - 6*s, true},
		{"nothing heard lately", now - 6*s, now - 2*s, true},
		{"quiet", now - 30*s, now - 30*s, true},
		{"never sent to", now - s, 0, true},
	} {
		if got := pingNeeded(now, c.seen, c.sent, hb); got != c.want {
			t.Errorf("%s: ping %v, want %v", c.name, got, c.want)
		}
	}
}
