package server

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/openmpns/openmpns/server/auth"
	"github.com/openmpns/openmpns/server/backend"
	"github.com/openmpns/openmpns/shared/clock"
	"github.com/openmpns/openmpns/shared/wire"
)

// maxReapBatch bounds the devices one round of the reaper deletes; the
// next round goes on.
const maxReapBatch = 10000

// reaper is the engine's timer that deletes devices Inactive for longer
// than InactiveGrace.
type reaper struct {
	mu      sync.Mutex
	timer   clock.Timer
	stopped bool
}

// reapInterval is how often the reaper runs: a quarter of the grace
// period, between 1 s and 1 h.
func (e *Engine) reapInterval() time.Duration {
	return min(max(e.cfg.InactiveGrace/4, time.Second), time.Hour)
}

func (e *Engine) startReaper() {
	if e.cfg.InactiveGrace < 0 {
		return
	}
	e.reaper.mu.Lock()
	e.reaper.timer = e.clk.AfterFunc(e.reapInterval(), e.reapTick)
	e.reaper.mu.Unlock()
}

func (e *Engine) stopReaper() {
	e.reaper.mu.Lock()
	e.reaper.stopped = true
	if e.reaper.timer != nil {
		e.reaper.timer.Stop()
	}
	e.reaper.mu.Unlock()
}

// reapTick runs one round and arms the next. In a cluster every node has
// the timer, and the node that takes the round's counter runs it.
func (e *Engine) reapTick() {
	e.reaper.mu.Lock()
	if e.reaper.stopped {
		e.reaper.mu.Unlock()
		return
	}
	e.background.Add(1) // Stop waits for a round under way
	e.reaper.mu.Unlock()
	defer e.background.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-e.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	now := e.clk.Now()
	iv := e.reapInterval()
	slot := "reap." + strconv.FormatInt(now.UnixNano()/int64(iv), 10)
	if mine, err := e.be.Take(ctx, slot, 1, 2*iv); err != nil {
		e.log.Warn("inactive devices: take the round", "err", err)
	} else if mine {
		if _, err := e.Reap(ctx, now); err != nil && ctx.Err() == nil {
			e.log.Warn("inactive devices: delete", "err", err)
		}
	}
	e.reaper.mu.Lock()
	if !e.reaper.stopped {
		e.reaper.timer = e.clk.AfterFunc(iv, e.reapTick)
	}
	e.reaper.mu.Unlock()
}

// Reap deletes the devices that have been offline for longer than
// InactiveAfter + InactiveGrace at now (Inactive for longer than the
// grace period), with their channels and queues, and says how many it
// deleted (at most maxReapBatch per call). Pushes to their channels then
// get 404 Dropped/Expired. A device connected (here or on another node)
// or seen since it was read is kept.
func (e *Engine) Reap(ctx context.Context, now time.Time) (int, error) {
	if e.cfg.InactiveGrace < 0 {
		return 0, nil
	}
	cutoff := e.cfg.InactiveAfter + e.cfg.InactiveGrace
	var cands []backend.Device
	err := e.be.ScanDevices(ctx, func(d backend.Device) bool {
		if now.Sub(d.LastSeen) >= cutoff {
			cands = append(cands, d)
		}
		return len(cands) < maxReapBatch && ctx.Err() == nil
	})
	if err != nil {
		return 0, fmt.Errorf("server: scan devices: %w", err)
	}
	n := 0
	for _, d := range cands {
		if ctx.Err() != nil {
			break
		}
		if e.conn(d.ID) != nil {
			continue
		}
		p, ok, err := e.be.Presence(ctx, d.ID)
		if err != nil {
			return n, fmt.Errorf("server: presence of %s: %w", d.ID, err)
		}
		if st, since := e.connStatus(d, p, ok, now); st != ConnInactive || now.Sub(since) < cutoff {
			continue
		}
		err = e.be.DeleteDevice(ctx, d)
		if errors.Is(err, backend.ErrConflict) || errors.Is(err, backend.ErrNotFound) {
			continue // seen (or deleted) meanwhile
		}
		if err != nil {
			return n, fmt.Errorf("server: delete inactive device %s: %w", d.ID, err)
		}
		n++
		e.met.devicesDeleted.WithLabelValues("inactive").Inc()
	}
	if n > 0 {
		e.log.Info("deleted inactive devices with their channels", "devices", n, "offline_for_more_than", cutoff)
	}
	return n, nil
}

// ErrNoSuchDevice: the device to revoke is not known.
var ErrNoSuchDevice = errors.New("no such device")

// RevokeDevice deletes device id from be with its channels and queue: its
// identity token is refused at its next hello (the device runtime then
// registers as a new device, and its apps get new Channel URIs), and
// pushes to its old channels get 404 Dropped/Expired. A node of the
// service holding its connection is told through a claim (backend.Router),
// and closes it (4001). It returns how many channels went.
func RevokeDevice(ctx context.Context, be backend.Backend, id string, now time.Time) (channels int, err error) {
	for range 8 {
		d, err := be.Device(ctx, id)
		if errors.Is(err, backend.ErrNotFound) {
			return 0, fmt.Errorf("device %q: %w", id, ErrNoSuchDevice)
		}
		if err != nil {
			return 0, fmt.Errorf("read device %s: %w", id, err)
		}
		chans, err := be.Channels(ctx, id)
		if err != nil {
			return 0, fmt.Errorf("read channels of %s: %w", id, err)
		}
		if p, ok, err := be.Presence(ctx, id); err == nil && ok && p.Connected {
			if _, err := be.Claim(ctx, id, now); err != nil {
				return 0, fmt.Errorf("close the connection of %s: %w", id, err)
			}
		}
		err = be.DeleteDevice(ctx, d)
		if errors.Is(err, backend.ErrConflict) {
			continue // the device was seen meanwhile: read it again
		}
		if errors.Is(err, backend.ErrNotFound) {
			return 0, fmt.Errorf("device %q: %w", id, ErrNoSuchDevice)
		}
		if err != nil {
			return 0, fmt.Errorf("delete device %s: %w", id, err)
		}
		return len(chans), nil
	}
	return 0, fmt.Errorf("delete device %s: it keeps changing (connecting again and again?); try again: %w", id, backend.ErrConflict)
}

// KeyRotation is what RotateServerKey did.
type KeyRotation struct {
	// KeyID is the new key's id (kid).
	KeyID string `json:"kid"`
	// Devices is how many devices were deleted: every device registered
	// before the rotation (their identity tokens were signed with the old
	// key).
	Devices int `json:"devices_deleted"`
}

// RotateServerKey replaces the server's signing key in be (the key of
// device identity tokens and of services' access tokens) and deletes every
// device registered before, with its channels: their tokens no longer
// verify, so they register again as new devices (new Channel URIs), and
// pushes to their old channels get 404 Dropped/Expired at once rather than
// being queued for a device that will not come back. Services' access
// tokens stop working too; services fetch new ones. Running servers
// sharing be load the new key (a cluster's nodes at once, by their watch;
// a single server through its admin socket, see Server.RotateKey).
func RotateServerKey(ctx context.Context, be backend.Backend, now func() time.Time) (KeyRotation, error) {
	k, err := auth.NewServerKey(now())
	if err != nil {
		return KeyRotation{}, err
	}
	if err := be.Services().PutServerKey(k); err != nil {
		return KeyRotation{}, fmt.Errorf("store the new server key: %w", err)
	}
	n, err := deleteDevicesBefore(ctx, be, now())
	return KeyRotation{KeyID: k.ID, Devices: n}, err
}

// deleteDevicesBefore deletes every device created before t, a few at a
// time in parallel (so that the embedded backend's writes share commits).
func deleteDevicesBefore(ctx context.Context, be backend.Backend, t time.Time) (int, error) {
	var ids []backend.Device
	if err := be.ScanDevices(ctx, func(d backend.Device) bool {
		if d.CreatedAt.Before(t) {
			ids = append(ids, d)
		}
		return ctx.Err() == nil
	}); err != nil {
		return 0, fmt.Errorf("scan devices: %w", err)
	}
	var (
		mu   sync.Mutex
		n    int
		errs []error
		wg   sync.WaitGroup
	)
	work := make(chan backend.Device)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range work {
				err := be.DeleteDevice(ctx, d)
				if errors.Is(err, backend.ErrConflict) {
					// Seen meanwhile (its connection ended): read it again.
					if d, err = be.Device(ctx, d.ID); err == nil {
						err = be.DeleteDevice(ctx, d)
					}
				}
				mu.Lock()
				switch {
				case err == nil:
					n++
				case errors.Is(err, backend.ErrNotFound):
				default:
					if len(errs) < 10 {
						errs = append(errs, fmt.Errorf("delete device %s: %w", d.ID, err))
					}
				}
				mu.Unlock()
			}
		}()
	}
	for _, d := range ids {
		if ctx.Err() != nil {
			break
		}
		work <- d
	}
	close(work)
	wg.Wait()
	return n, errors.Join(errs...)
}

// Revoke is RevokeDevice on the engine's backend; a connection of the
// device to this node is closed first with 4003 ("device revoked").
func (e *Engine) Revoke(ctx context.Context, id string) (channels int, err error) {
	if d := e.conn(id); d != nil {
		d.mu.Lock()
		c := d.conn
		d.mu.Unlock()
		c.Kick(wire.CloseUnauthorized, "device revoked")
	}
	n, err := RevokeDevice(ctx, e.be, id, e.clk.Now())
	if err == nil {
		e.met.devicesDeleted.WithLabelValues("revoked").Inc()
		e.log.Info("device revoked", "device", id, "channels_deleted", n)
	}
	return n, err
}

// RevokeDevice revokes one device (see the package function RevokeDevice);
// its connection to this server is closed with 4003.
func (s *Server) RevokeDevice(ctx context.Context, id string) (channels int, err error) {
	return s.eng.Revoke(ctx, id)
}

// RotateKey rotates the server's signing key (see the package function
// RotateServerKey): the new key is used at once, every device connected
// here is closed with 4003 (they register again), and the devices
// registered before are deleted with their channels.
func (s *Server) RotateKey(ctx context.Context) (KeyRotation, error) {
	now := s.cfg.Clock.Now
	var kid string
	if s.issuer != nil {
		if err := s.issuer.RotateKey(now()); err != nil {
			return KeyRotation{}, fmt.Errorf("rotate the server key: %w", err)
		}
		kid = s.issuer.KeyID()
	} else {
		k, err := auth.NewServerKey(now())
		if err == nil {
			err = s.be.Services().PutServerKey(k)
		}
		if err != nil {
			return KeyRotation{}, fmt.Errorf("rotate the server key: %w", err)
		}
		kid = k.ID
	}
	t := now()
	kicked := s.gw.kickSessions(wire.CloseUnauthorized, "the server key was rotated: register again")
	n, err := deleteDevicesBefore(ctx, s.be, t)
	s.met.devicesDeleted.WithLabelValues("key_rotated").Add(float64(n))
	s.log.Info("server key rotated: devices registered before it were deleted", "kid", kid, "devices_deleted", n, "connections_closed", kicked)
	return KeyRotation{KeyID: kid, Devices: n}, err
}
