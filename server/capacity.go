package server

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
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
//
// Reading it costs a few atomic loads (it is on the push path): when the
// view is stale, one caller reads the backend while the others go on
// with the stale view.
type usage struct {
	be  backend.Backend
	clk clock.Clock

	at                atomic.Int64 // when the sizes were read (Unix ns); 0: never
	reading           atomic.Bool  // a caller is reading the backend
	devices, channels atomic.Int64
	bytes             atomic.Int64
	first             sync.Mutex // the first read, which every caller waits for
}

// current returns the sizes, reading them again when they are older than
// usageRefresh.
func (u *usage) current(ctx context.Context) (backend.Stats, error) {
	now := u.clk.Now().UnixNano()
	at := u.at.Load()
	switch {
	case at == 0:
		u.first.Lock()
		if u.at.Load() == 0 {
			if err := u.read(ctx, now); err != nil {
				u.first.Unlock()
				return backend.Stats{}, err
			}
		}
		u.first.Unlock()
	case (now-at >= int64(usageRefresh) || now < at) && u.reading.CompareAndSwap(false, true):
		// A failed read keeps the last view until the backend answers.
		_ = u.read(ctx, now)
		u.reading.Store(false)
	}
	return backend.Stats{Devices: int(u.devices.Load()), Channels: int(u.channels.Load()), QueuedBytes: u.bytes.Load()}, nil
}

// read takes the backend's sizes.
func (u *usage) read(ctx context.Context, now int64) error {
	st, err := u.be.Stats(ctx)
	if err != nil {
		return err
	}
	u.devices.Store(int64(st.Devices))
	u.channels.Store(int64(st.Channels))
	u.bytes.Store(st.QueuedBytes)
	u.at.Store(max(now, 1))
	return nil
}

// add counts what this node created since the last read.
func (u *usage) add(devices, channels int, bytes int64) {
	u.devices.Add(int64(devices))
	u.channels.Add(int64(channels))
	u.bytes.Add(bytes)
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
