package server

import "time"

// monoBase is the zero of monoNow's scale: a day before the package was
// loaded, so that a reading of 0 (never) is long ago, as the Unix epoch
// was. It holds a monotonic clock reading (time.Now keeps one, Add keeps
// it).
var monoBase = time.Now().Add(-24 * time.Hour)

// monoNow is now on the monotonic clock, in nanoseconds from monoBase:
// the scale of the times the server only compares with one another (a
// connection's idle time, a device's silence), which a step of the wall
// clock (NTP, a virtual machine resumed) must not move. Unix nanoseconds
// would: a step forward would close every idle connection at once, one
// back would keep the pinger from pinging, and every device would time
// out and reconnect.
func monoNow() int64 { return int64(time.Since(monoBase)) }

// monoAt is t, read from time.Now, on monoNow's scale.
func monoAt(t time.Time) int64 { return int64(t.Sub(monoBase)) }
