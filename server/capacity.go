package server

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/openmpns/openmpns/server/backend"
	"github.com/openmpns/openmpns/shared/clock"
	"github.com/openmpns/openmpns/shared/wire"
)

// usageRefresh is how often the engine reads the backend's sizes for the
// server-wide caps; between two reads it adds what it created itself.
const usageRefresh = time.Second

// usage is the engine's view of the service's sizes, for the caps
// MaxDevices, MaxTotalChannels and MaxQueuedBytes: the backend's Stats,
// read at most once per usageRefresh, plus what this node added since.
// Deletions are seen at the next read only, so the view errs towards
// full. In a cluster another node's additions are seen at the next read:
// the caps may be passed by what the other nodes add within one second.
type usage struct {
	be  backend.Backend
	clk clock.Clock

	mu     sync.Mutex
	at     time.Time // when st was read; zero: never
	st     backend.Stats
	failed error // the last read's error, while it stands
}

// current returns the sizes, reading them again when they are older than
// usageRefresh.
func (u *usage) current(ctx context.Context) (backend.Stats, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	now := u.clk.Now()
	if u.at.IsZero() || now.Sub(u.at) >= usageRefresh || now.Before(u.at) {
		st, err := u.be.Stats(ctx)
		if err != nil {
			if u.at.IsZero() {
				return backend.Stats{}, err
			}
			return u.st, nil // the last read stands until the backend answers
		}
		u.st, u.at = st, now
	}
	return u.st, nil
}

// add counts what this node created since the last read.
func (u *usage) add(devices, channels int, bytes int64) {
	u.mu.Lock()
	u.st.Devices += devices
	u.st.Channels += channels
	u.st.QueuedBytes += bytes
	u.mu.Unlock()
}

// roomForDevice refuses a new device when the service holds MaxDevices.
func (e *Engine) roomForDevice(ctx context.Context) error {
	if e.cfg.MaxDevices < 0 {
		return nil
	}
	st, err := e.use.current(ctx)
	if err != nil {
		return fmt.Errorf("server: read the service's size: %w", err)
	}
	if st.Devices >= e.cfg.MaxDevices {
		e.met.globalFull.WithLabelValues("devices").Inc()
		return errServerFull
	}
	return nil
}

// roomForChannel refuses a new channel when the service holds
// MaxTotalChannels.
func (e *Engine) roomForChannel(ctx context.Context) error {
	if e.cfg.MaxTotalChannels < 0 {
		return nil
	}
	st, err := e.use.current(ctx)
	if err != nil {
		return fmt.Errorf("server: read the service's size: %w", err)
	}
	if st.Channels >= e.cfg.MaxTotalChannels {
		e.met.globalFull.WithLabelValues("channels").Inc()
		e.log.Warn("new channel refused: the server holds as many channels as it may (--max-total-channels)", "channels", st.Channels)
		return &channelError{code: wire.CodeServerFull,
			msg: fmt.Sprintf("the server holds %d channels, as many as it may; retry later", st.Channels)}
	}
	return nil
}

// roomForBytes reports why a push of n bytes is not queued (a QueueFull
// reason) when the service's queues hold MaxQueuedBytes; "" when there is
// room. A backend that cannot tell lets the push through: the push itself
// then meets the backend's state.
func (e *Engine) roomForBytes(ctx context.Context, n int) string {
	if e.cfg.MaxQueuedBytes < 0 {
		return ""
	}
	st, err := e.use.current(ctx)
	if err != nil {
		return ""
	}
	if st.QueuedBytes+int64(n) > e.cfg.MaxQueuedBytes {
		e.met.globalFull.WithLabelValues("queued_bytes").Inc()
		return fmt.Sprintf("the server's queues hold %d bytes, as many as they may (all channels together); retry later with exponential backoff", st.QueuedBytes)
	}
	return ""
}
