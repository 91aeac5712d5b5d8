//go:build !linux

package load

import "context"

// newSleeper returns a sleeper whose sleeps end, false, when feed ends.
func newSleeper(feed context.Context) sleeper { return newTimerSleeper(feed) }
