package server

import "time"

// The pinger pings every session once per heartbeat. Sessions are dealt
// out in turn to pingSlotCount slots, and slot k is pinged k/pingSlotCount
// of the way into each heartbeat: a session's pings are a heartbeat apart
// however often the pinger looks (and a heartbeat and a stall apart when
// the pinger was held up: pingSchedule). It looks more often as the sessions grow
// (pingEvery), so that each look pings about pingBatch of them: with 16
// looks a heartbeat, as before, 10,000 devices were pinged 625 at a time,
// a burst of writes (and of the devices' pongs) that held the
// notifications of the next 10–13 ms back, every 1.9 s
// (docs/benchmarks.md, issue 10, session 10).
const (
	pingSlotCount = 1024 // the most looks in a heartbeat
	pingMinLooks  = 16   // the fewest looks in a heartbeat
	pingBatch     = 16   // about how many sessions a look pings, at most looks
)

// pingSlots holds the sessions by slot. It is guarded by the gateway's mu.
type pingSlots struct {
	slots [pingSlotCount][]*session
	next  int // the slot of the next session: sessions are dealt out in turn
	n     int
}

// add puts s in the next slot.
func (p *pingSlots) add(s *session) {
	k := p.next % pingSlotCount
	p.next++
	s.slot, s.slotAt = uint16(k), int32(len(p.slots[k]))
	p.slots[k] = append(p.slots[k], s)
	p.n++
}

// remove takes s out of its slot, which the slot's last session fills.
func (p *pingSlots) remove(s *session) {
	slot := p.slots[s.slot]
	last := len(slot) - 1
	if s.slotAt < 0 || int(s.slotAt) > last || slot[s.slotAt] != s {
		return // not added, or removed already
	}
	moved := slot[last]
	slot[s.slotAt], moved.slotAt = moved, s.slotAt
	slot[last] = nil
	p.slots[s.slot] = slot[:last]
	s.slotAt = -1
	p.n--
	if cap(slot) > 64 && last < cap(slot)/4 { // a slot that emptied out keeps no large array
		p.slots[s.slot] = append([]*session(nil), p.slots[s.slot]...)
	}
}

// span appends to into the sessions of slots from to to-1.
func (p *pingSlots) span(from, to int, into []*session) []*session {
	for k := from; k < to; k++ {
		into = append(into, p.slots[k]...)
	}
	return into
}

// slotsDue returns how many slots are due elapsed into a heartbeat of hb:
// slot k at k/pingSlotCount of it.
func slotsDue(elapsed, hb time.Duration) int {
	if elapsed >= hb {
		return pingSlotCount
	}
	return int(int64(elapsed)*pingSlotCount/int64(hb)) + 1
}

// pingEvery returns how long the pinger waits between two looks with n
// sessions and a heartbeat of hb: a look pings about pingBatch of them,
// with pingMinLooks to pingSlotCount looks a heartbeat, and no more than
// one a millisecond.
func pingEvery(n int, hb time.Duration) time.Duration {
	looks := min(max((n+pingBatch-1)/pingBatch, pingMinLooks), pingSlotCount)
	return max(hb/time.Duration(looks), time.Millisecond)
}

// pingSchedule is which slots the pinger pings at each look. The heartbeat
// under way began at begun; done of its slots were pinged. A look that
// comes late (the pinger, or the whole machine, was held up) moves the
// schedule on by the delay instead of making up for it: catching up would
// ping the slots missed at once and, once the next heartbeat began, ping
// them again moments later, before their pongs could come, and a device
// that had answered every ping would be taken for silent (silentDevice).
type pingSchedule struct {
	hb    time.Duration
	begun time.Time
	last  time.Time     // the last look
	every time.Duration // the wait before the next look, as set after the last
	done  int
}

func newPingSchedule(now time.Time, hb time.Duration) *pingSchedule {
	return &pingSchedule{hb: hb, begun: now, last: now, every: pingEvery(0, hb)}
}

// look returns the slots to ping at the look at time at: from to to-1.
func (p *pingSchedule) look(at time.Time) (from, to int) {
	if late := at.Sub(p.last) - 2*p.every; late > 0 {
		p.begun = p.begun.Add(late)
	}
	p.last = at
	if p.done == pingSlotCount && at.Sub(p.begun) >= p.hb {
		p.begun = p.begun.Add(p.hb)
		p.done = 0
	}
	from = p.done
	p.done = max(slotsDue(at.Sub(p.begun), p.hb), p.done)
	return from, p.done
}

// wait returns how long to wait for the next look with n sessions.
func (p *pingSchedule) wait(n int) time.Duration {
	p.every = pingEvery(n, p.hb)
	return p.every
}

// silentDevice reports whether a device is to be closed for silence at now
// (monoNow): nothing from it for two heartbeats, not even an answer to the
// last ping, which went out at least half a heartbeat ago. (The second
// condition keeps a pinger that was held up itself, on a loaded machine,
// from blaming the device for the pings it did not send; the third, from
// blaming it for a pong still on its way.)
func silentDevice(now, seen, pingedAt int64, hb time.Duration) bool {
	return seen < now-2*int64(hb) && seen < pingedAt && now-pingedAt >= int64(hb/2)
}

// pingNeeded reports whether a session is to be pinged at now (monoNow):
// not when, within the last half heartbeat, it carried both a frame to the
// device (which pushes the device's read deadline out as a ping does) and
// one from it (which shows it alive as a pong does). A device under load
// is then not pinged at all: with 10,000 devices at 1,000 notifications/s,
// pings cost the server 15–25 µs and the devices 8 µs per notification
// (docs/benchmarks.md, issue 10, session 10). The device hears from the
// server at least every one and a half heartbeats (2.5 before its read
// deadline), and a device gone silent is pinged at its next slot.
func pingNeeded(now, seen, sent int64, hb time.Duration) bool {
	recent := now - int64(hb/2)
	return seen <= recent || sent <= recent
}
