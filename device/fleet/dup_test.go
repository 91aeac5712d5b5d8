package fleet

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/shared/sender"
)

// A push an app sees twice is a duplicate however the server numbered the
// two deliveries. The fleet checked only the server's notification id, the
// one the device's own dedupe drops repeats of, so a push delivered twice
// under two ids (a server that queued it twice) passed as two notifications
// and "no duplicates". A timed X-MessageID (openmpns load's, a scenario's
// sends) is unique to one push and is checked too; another X-MessageID is
// the sender's business (a backend may send the same one again) and is not.
func TestDuplicateUnderAnotherNotificationID(t *testing.T) {
	f := &Fleet{appIdx: map[string]int{"a": 0}}
	m := &member{f: f, counts: make([]atomic.Int32, kinds)}
	at := time.Unix(1_000_000, 0)
	timed := sender.NewTimedMessageID(at, 7)
	for i, d := range []struct {
		nid, msg string
		dup      bool
	}{
		{"n1", timed, false},
		{"n2", timed, true}, // the same push under another id
		{"n3", sender.NewTimedMessageID(at, 8), false},
		{"n4", "0f6bd9e4-3c3a-4e8e-9d6b-3a8c3c7d1a2b", false},
		{"n5", "0f6bd9e4-3c3a-4e8e-9d6b-3a8c3c7d1a2b", false}, // the backend's id again: not ours to judge
		{"n5", "", true},                                      // the same notification id
	} {
		before := f.duplicates.Load()
		m.received(device.Meta{ID: d.nid, App: "a", Class: 3, MessageID: d.msg, AcceptedAt: at, ReceivedAt: at}, Raw)
		if dup := f.duplicates.Load() > before; dup != d.dup {
			t.Errorf("delivery %d (id %s, message id %q): duplicate %v, want %v", i, d.nid, d.msg, dup, d.dup)
		}
	}
}
