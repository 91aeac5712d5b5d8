package natsbackend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/openmpns/openmpns/server/backend"
)

// dirErr maps an error of a kv call to the backend's sentinels.
func (b *Backend) dirErr(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errNoKey):
		return fmt.Errorf("natsbackend: %s: %w", what, backend.ErrNotFound)
	case errors.Is(err, errKeyExists):
		return fmt.Errorf("natsbackend: %s: %w", what, backend.ErrExists)
	case errors.Is(err, errRevMismatch):
		return fmt.Errorf("natsbackend: %s: %w", what, backend.ErrConflict)
	}
	return fmt.Errorf("natsbackend: %s: %w", what, b.classify(err))
}

// PutDevice implements backend.Directory.
func (b *Backend) PutDevice(ctx context.Context, d backend.Device) (backend.Device, error) {
	ctx, cancel, err := b.op(ctx)
	defer cancel()
	if err != nil {
		return d, err
	}
	if d.ID == "" {
		return d, errors.New("natsbackend: put device: empty id")
	}
	val, err := json.Marshal(d)
	if err != nil {
		return d, fmt.Errorf("natsbackend: encode device: %w", err)
	}
	var rev uint64
	if d.Rev == 0 {
		rev, err = b.devices.create(ctx, token(d.ID), val, 0)
	} else {
		rev, err = b.devices.update(ctx, token(d.ID), val, d.Rev, 0)
	}
	if err != nil {
		return d, b.dirErr("put device "+d.ID, err)
	}
	d.Rev = rev
	return d, nil
}

// Device implements backend.Directory.
func (b *Backend) Device(ctx context.Context, id string) (backend.Device, error) {
	ctx, cancel, err := b.op(ctx)
	defer cancel()
	if err != nil {
		return backend.Device{}, err
	}
	return b.device(ctx, id)
}

func (b *Backend) device(ctx context.Context, id string) (backend.Device, error) {
	var d backend.Device
	e, err := b.devices.get(ctx, token(id))
	if err != nil {
		return d, b.dirErr("device "+id, err)
	}
	if err := json.Unmarshal(e.val, &d); err != nil {
		return d, fmt.Errorf("natsbackend: decode device %s: %w", id, err)
	}
	d.Rev = e.rev
	return d, nil
}

// PutChannel implements backend.Directory. A new channel is written first
// under its token, then entered in its device's index (app -> token) with a
// revision check; if the index already names a live channel for the app,
// the new record is deleted again and the call fails with ErrExists. So two
// concurrent creates for one (device, app), on any nodes, leave one. A
// channel of a device that does not exist (or is deleted meanwhile) is not
// kept: ErrNotFound. The device is read twice: before anything is written
// (so that a channel never exists before its device does, which the sweep
// of leftovers relies on, see orphans.go) and after the index entry is
// written (so that no channel outlives its device).
func (b *Backend) PutChannel(ctx context.Context, c backend.Channel) (backend.Channel, error) {
	ctx, cancel, err := b.op(ctx)
	defer cancel()
	if err != nil {
		return c, err
	}
	if c.Token == "" || c.DeviceID == "" {
		return c, errors.New("natsbackend: put channel: empty token or device id")
	}
	val, err := json.Marshal(c)
	if err != nil {
		return c, fmt.Errorf("natsbackend: encode channel: %w", err)
	}
	what := "put channel " + c.Token
	if c.Rev != 0 {
		rev, err := b.channels.update(ctx, token(c.Token), val, c.Rev, 0)
		if err != nil {
			return c, b.dirErr(what, err)
		}
		c.Rev = rev
		return c, nil
	}
	// The device first: a channel the sweep reads (orphans.go) was made
	// after its device existed, so a sweep that then finds the device
	// absent knows it was deleted since. Written first and checked only
	// after, a channel made for a device being created at that moment
	// could be read by a sweep, found deviceless and removed, and then
	// confirmed here once the device arrived.
	if _, err := b.device(ctx, c.DeviceID); err != nil {
		return c, err // "natsbackend: device …: not found", or why it could not be read
	}
	rev, err := b.channels.create(ctx, token(c.Token), val, 0)
	if err != nil {
		return c, b.dirErr(what, err)
	}
	if err := b.indexAdd(ctx, c); err != nil {
		b.unmake(ctx, c, rev, false)
		return c, b.dirErr(what, err)
	}
	if b.testAfterIndex != nil {
		b.testAfterIndex(c)
	}
	// The device is read after the index entry is written: DeleteDevice
	// removes the device's record before it reads the index, so either
	// the device is still here and its delete will find this channel, or
	// it is gone and the channel goes too (no channel outlives its device).
	if _, err := b.device(ctx, c.DeviceID); err != nil {
		b.unmake(ctx, c, rev, true)
		return c, err // "natsbackend: device …: not found", or why it could not be read
	}
	c.Rev = rev
	return c, nil
}

// unmake removes a channel that PutChannel created and must not keep: its
// record (at rev) and, when indexed, its entry in its device's index. It
// has a deadline of its own (afterCommit): the call's may be what ran out.
func (b *Backend) unmake(ctx context.Context, c backend.Channel, rev uint64, indexed bool) {
	ctx, cancel := b.afterCommit(ctx)
	defer cancel()
	// The record first: an index entry whose channel is gone is taken
	// over by the next create (indexAdd), a record no index names is not.
	if err := b.channels.del(ctx, token(c.Token), rev); err != nil {
		b.log.Error("natsbackend: remove a channel not kept", "token", c.Token, "err", err)
		return
	}
	if indexed {
		if err := b.indexRemove(ctx, c.DeviceID, c.App, c.Token); err != nil {
			b.log.Error("natsbackend: remove a channel's index entry", "token", c.Token, "device", c.DeviceID, "err", err)
		}
	}
}

// channelIndex is the value of a device's key in the index bucket.
type channelIndex map[string]string // app -> token

func (b *Backend) readIndex(ctx context.Context, dev string) (channelIndex, uint64, error) {
	idx := channelIndex{}
	e, err := b.index.get(ctx, token(dev))
	if errors.Is(err, errNoKey) {
		return idx, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	if err := json.Unmarshal(e.val, &idx); err != nil {
		return nil, 0, fmt.Errorf("decode channel index of %s: %w", dev, err)
	}
	return idx, e.rev, nil
}

func (b *Backend) writeIndex(ctx context.Context, dev string, idx channelIndex, rev uint64) error {
	val, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	key := token(dev)
	switch {
	case len(idx) == 0 && rev != 0:
		err = b.index.del(ctx, key, rev)
	case rev == 0:
		_, err = b.index.create(ctx, key, val, 0)
		if errors.Is(err, errKeyExists) {
			err = errRevMismatch
		}
	default:
		_, err = b.index.update(ctx, key, val, rev, 0)
	}
	if errors.Is(err, errNoKey) {
		err = errRevMismatch
	}
	return err
}

// maxCAS bounds the retries of a revision-checked read-modify-write that
// other writers keep beating (the call's deadline bounds them too).
const maxCAS = 64

// indexAdd enters channel c in its device's index; errKeyExists if the
// device has a live channel for c.App.
func (b *Backend) indexAdd(ctx context.Context, c backend.Channel) error {
	for range maxCAS {
		idx, rev, err := b.readIndex(ctx, c.DeviceID)
		if err != nil {
			return err
		}
		if other, ok := idx[c.App]; ok && other != c.Token {
			// An entry whose channel is gone was left by an interrupted
			// delete: take its place.
			_, err := b.channels.get(ctx, token(other))
			if err == nil {
				return errKeyExists
			}
			if !errors.Is(err, errNoKey) {
				return err
			}
		}
		idx[c.App] = c.Token
		err = b.writeIndex(ctx, c.DeviceID, idx, rev)
		if !errors.Is(err, errRevMismatch) {
			return err
		}
	}
	return fmt.Errorf("channel index of %s: %w: too many concurrent writers", c.DeviceID, context.DeadlineExceeded)
}

// indexRemove removes app from the device's index if it names tok.
func (b *Backend) indexRemove(ctx context.Context, dev, app, tok string) error {
	for range maxCAS {
		idx, rev, err := b.readIndex(ctx, dev)
		if err != nil {
			return err
		}
		if idx[app] != tok {
			return nil
		}
		delete(idx, app)
		err = b.writeIndex(ctx, dev, idx, rev)
		if !errors.Is(err, errRevMismatch) {
			return err
		}
	}
	return fmt.Errorf("channel index of %s: %w: too many concurrent writers", dev, context.DeadlineExceeded)
}

// Channel implements backend.Directory.
func (b *Backend) Channel(ctx context.Context, tok string) (backend.Channel, error) {
	ctx, cancel, err := b.op(ctx)
	defer cancel()
	if err != nil {
		return backend.Channel{}, err
	}
	c, err := b.channel(ctx, tok)
	return c, b.dirErr("channel "+tok, err)
}

func (b *Backend) channel(ctx context.Context, tok string) (backend.Channel, error) {
	var c backend.Channel
	e, err := b.channels.get(ctx, token(tok))
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(e.val, &c); err != nil {
		return c, fmt.Errorf("decode channel %s: %w", tok, err)
	}
	c.Rev = e.rev
	return c, nil
}

// Channels implements backend.Directory: the device's index, then each
// channel it names.
func (b *Backend) Channels(ctx context.Context, dev string) ([]backend.Channel, error) {
	ctx, cancel, err := b.op(ctx)
	defer cancel()
	if err != nil {
		return nil, err
	}
	idx, _, err := b.readIndex(ctx, dev)
	if err != nil {
		return nil, b.dirErr("channels of "+dev, err)
	}
	out := make([]backend.Channel, 0, len(idx))
	for _, tok := range idx {
		c, err := b.channel(ctx, tok)
		if errors.Is(err, errNoKey) {
			continue // being deleted, or left by an interrupted delete
		}
		if err != nil {
			return nil, b.dirErr("channels of "+dev, err)
		}
		if c.DeviceID == dev {
			out = append(out, c)
		}
	}
	return out, nil
}

// committedKey is the key of a context value, a func(), that afterCommit
// calls (tests: the caller's context ends just as the change is made).
type committedKey struct{}

// afterCommit is the context of what a call must do once its change is
// made: a RequestTimeout of its own, whatever is left of ctx. A delete
// whose record is gone removes the rest (channels, queue, index entries):
// the delete stands, and what the call's first steps left of its deadline
// (a loaded cluster took most of 2 s to delete a device's record) would
// fail the cleanup, report a delete that happened as failed and leave the
// rest to the sweep. It also bounds PutChannel's undoing of a create it
// must not keep (unmake) and a sweep pass's giving back of its key
// (releaseSweep).
func (b *Backend) afterCommit(ctx context.Context) (context.Context, context.CancelFunc) {
	if f, ok := ctx.Value(committedKey{}).(func()); ok {
		f()
	}
	return context.WithTimeout(context.WithoutCancel(ctx), b.cfg.RequestTimeout)
}

// DeleteChannel implements backend.Directory: the record (revision-checked),
// then the channel's queue (a purge of its subjects), then its index entry.
// A notification appended for the channel after the purge (by an engine
// that read the channel before the delete) stays until it expires.
func (b *Backend) DeleteChannel(ctx context.Context, c backend.Channel) error {
	ctx, cancel, err := b.op(ctx)
	defer cancel()
	if err != nil {
		return err
	}
	what := "delete channel " + c.Token
	stored, err := b.channel(ctx, c.Token)
	if err != nil {
		return b.dirErr(what, err)
	}
	if stored.Rev != c.Rev {
		return b.dirErr(what, errRevMismatch)
	}
	if err := b.channels.del(ctx, token(c.Token), c.Rev); err != nil {
		return b.dirErr(what, err)
	}
	ctx, cancel = b.afterCommit(ctx)
	defer cancel()
	if err := b.purgeChannel(ctx, stored.DeviceID, stored.Token); err != nil {
		return fmt.Errorf("natsbackend: %s: %w", what, b.classify(err))
	}
	if err := b.indexRemove(ctx, stored.DeviceID, stored.App, stored.Token); err != nil {
		// The channel is gone; the stale entry is skipped, and replaced
		// when the app opens a channel again.
		b.log.Warn("natsbackend: remove index entry", "token", c.Token, "err", err)
	}
	return nil
}

// DeleteDevice implements backend.Directory: the device's record
// (revision-checked, so a device seen meanwhile is kept), then its
// channels, its queue (a purge of its subjects), its index and its
// presence. What fails after the record is gone is reported; what is left
// behind then (or when the node dies midway) belongs to no device: pushes
// to its channels get 404, and the sweep of leftovers (orphans.go) removes
// it.
func (b *Backend) DeleteDevice(ctx context.Context, d backend.Device) error {
	ctx, cancel, err := b.op(ctx)
	defer cancel()
	if err != nil {
		return err
	}
	what := "delete device " + d.ID
	stored, err := b.device(ctx, d.ID)
	if err != nil {
		return err // dirErr'd by device
	}
	if stored.Rev != d.Rev {
		return b.dirErr(what, errRevMismatch)
	}
	if err := b.devices.del(ctx, token(d.ID), d.Rev); err != nil {
		return b.dirErr(what, err)
	}
	ctx, cancel = b.afterCommit(ctx)
	defer cancel()
	var errs []error
	idx, _, err := b.readIndex(ctx, d.ID)
	if err != nil {
		errs = append(errs, fmt.Errorf("read its channel index: %w", b.classify(err)))
	}
	for _, tok := range idx {
		if err := b.channels.del(ctx, token(tok), 0); err != nil && !errors.Is(err, errNoKey) {
			errs = append(errs, fmt.Errorf("delete channel %s: %w", tok, b.classify(err)))
		}
	}
	if err := b.queue.Purge(ctx, jetstream.WithPurgeSubject(b.deviceFilter(d.ID))); err != nil {
		errs = append(errs, fmt.Errorf("purge its queue: %w", b.classify(err)))
	}
	for _, k := range []*kv{b.index, b.presence} {
		if err := k.del(ctx, token(d.ID), 0); err != nil && !errors.Is(err, errNoKey) {
			errs = append(errs, fmt.Errorf("delete its %s record: %w", k.bucket, b.classify(err)))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("natsbackend: %s: the device is gone, but: %w", what, errors.Join(errs...))
	}
	return nil
}

// ScanDevices implements backend.Directory: the devices bucket read from
// its stream leader one record at a time, in stream order (each call
// bounded by RequestTimeout, not the whole scan).
func (b *Backend) ScanDevices(ctx context.Context, fn func(backend.Device) bool) error {
	seen := map[string]bool{}
	for from := uint64(0); ; {
		octx, cancel, err := b.op(ctx)
		if err != nil {
			cancel()
			return err
		}
		m, err := b.leaderGet(octx, b.devices.name(), msgGetRequest{Seq: from, NextFor: b.devices.pre + ">"})
		cancel()
		if err != nil {
			return fmt.Errorf("natsbackend: scan devices: %w", b.classify(err))
		}
		if m == nil {
			return nil
		}
		from = m.Seq + 1
		if isMarker(m.Header) {
			continue
		}
		var d backend.Device
		if err := json.Unmarshal(m.Data, &d); err != nil {
			return fmt.Errorf("natsbackend: scan devices: decode %s: %w", m.Subject, err)
		}
		if seen[d.ID] {
			continue
		}
		seen[d.ID] = true
		d.Rev = m.Seq
		if !fn(d) {
			return nil
		}
	}
}
