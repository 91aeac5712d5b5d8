package fleet

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openmpns/openmpns/device"
)

// TestOutOfOrderPerAppAndClass: a delivery counts as out of order when it
// was accepted before the last one delivered of the same app and class,
// and only then.
func TestOutOfOrderPerAppAndClass(t *testing.T) {
	f := &Fleet{appIdx: map[string]int{"a": 0, "b": 1}}
	m := &member{f: f, counts: make([]atomic.Int32, 2*kinds)}
	for i, d := range []struct {
		app   string
		class int
		at    int64
		late  bool
	}{
		{"a", 2, 10, false},
		{"a", 2, 5, true},   // before a/2's 10
		{"a", 12, 5, false}, // another class
		{"b", 2, 7, false},  // another app
		{"a", 2, 11, false},
		{"a", 2, 10, true},
		{"b", 2, 7, false}, // accepted at the same time: not before
		{"a", 12, 4, true},
	} {
		before := f.order.Load()
		m.received(device.Meta{ID: strconv.Itoa(i), App: d.app, Class: d.class, AcceptedAt: time.Unix(0, d.at), ReceivedAt: time.Unix(0, 20)}, Toast)
		if late := f.order.Load() > before; late != d.late {
			t.Errorf("delivery %d (%s, class %d, accepted at %d): out of order %v, want %v", i, d.app, d.class, d.at, late, d.late)
		}
	}
}
