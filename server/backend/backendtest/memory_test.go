package backendtest

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/openmpns/openmpns/server/auth"
	"github.com/openmpns/openmpns/server/backend"
)

// This file is a test double for the suite itself: a small in-memory
// backend whose nodes share one mutex-guarded state, so that the suite can
// be run (and seen to pass and fail) before a real implementation exists.
// It is not meant for anything else.

func TestMemoryOneNode(t *testing.T) { Run(t, openMemory(1)) }

func TestMemoryTwoNodes(t *testing.T) { Run(t, openMemory(2)) }

func openMemory(n int) Open {
	return func(t *testing.T) []backend.Backend {
		s := &memService{devices: map[string]backend.Device{}, channels: map[string]backend.Channel{},
			queue: map[uint64]*backend.Notification{}, presence: map[string]backend.Presence{},
			inboxes: map[string]backend.Inbox{}, counters: map[string]int64{}, auth: auth.NewMemStore()}
		var nodes []backend.Backend
		for i := range n {
			nodes = append(nodes, &memNode{s: s, id: fmt.Sprint("node", i)})
		}
		return nodes
	}
}

type memService struct {
	mu       sync.Mutex
	rev, seq uint64
	devices  map[string]backend.Device
	channels map[string]backend.Channel
	queue    map[uint64]*backend.Notification
	presence map[string]backend.Presence
	inboxes  map[string]backend.Inbox
	counters map[string]int64
	auth     *auth.MemStore
}

type memNode struct {
	s      *memService
	id     string
	closed bool // guarded by s.mu
}

var _ backend.Backend = (*memNode)(nil)

func (m *memNode) lock() (*memService, error) {
	m.s.mu.Lock()
	if m.closed {
		m.s.mu.Unlock()
		return nil, backend.ErrClosed
	}
	return m.s, nil
}

func (m *memNode) PutDevice(_ context.Context, d backend.Device) (backend.Device, error) {
	s, err := m.lock()
	if err != nil {
		return d, err
	}
	defer s.mu.Unlock()
	old, ok := s.devices[d.ID]
	switch {
	case d.Rev == 0 && ok:
		return d, backend.ErrExists
	case d.Rev != 0 && !ok:
		return d, backend.ErrNotFound
	case d.Rev != 0 && old.Rev != d.Rev:
		return d, backend.ErrConflict
	}
	s.rev++
	d.Rev, d.TokenHash = s.rev, slices.Clone(d.TokenHash)
	s.devices[d.ID] = d
	d.TokenHash = slices.Clone(d.TokenHash)
	return d, nil
}

func (m *memNode) Device(_ context.Context, id string) (backend.Device, error) {
	s, err := m.lock()
	if err != nil {
		return backend.Device{}, err
	}
	defer s.mu.Unlock()
	d, ok := s.devices[id]
	if !ok {
		return d, backend.ErrNotFound
	}
	d.TokenHash = slices.Clone(d.TokenHash)
	return d, nil
}

func (m *memNode) PutChannel(_ context.Context, c backend.Channel) (backend.Channel, error) {
	s, err := m.lock()
	if err != nil {
		return c, err
	}
	defer s.mu.Unlock()
	old, ok := s.channels[c.Token]
	switch {
	case c.Rev == 0 && ok:
		return c, backend.ErrExists
	case c.Rev == 0 && s.devices[c.DeviceID].ID == "":
		return c, backend.ErrNotFound
	case c.Rev == 0:
		for _, o := range s.channels {
			if o.DeviceID == c.DeviceID && o.App == c.App {
				return c, backend.ErrExists
			}
		}
	case !ok:
		return c, backend.ErrNotFound
	case old.Rev != c.Rev:
		return c, backend.ErrConflict
	}
	s.rev++
	c.Rev, c.Domains = s.rev, slices.Clone(c.Domains)
	s.channels[c.Token] = c
	c.Domains = slices.Clone(c.Domains)
	return c, nil
}

func (m *memNode) Channel(_ context.Context, token string) (backend.Channel, error) {
	s, err := m.lock()
	if err != nil {
		return backend.Channel{}, err
	}
	defer s.mu.Unlock()
	c, ok := s.channels[token]
	if !ok {
		return c, backend.ErrNotFound
	}
	c.Domains = slices.Clone(c.Domains)
	return c, nil
}

func (m *memNode) Target(ctx context.Context, token string) (backend.Channel, backend.Device, error) {
	c, err := m.Channel(ctx, token)
	if err != nil {
		return c, backend.Device{}, err
	}
	d, err := m.Device(ctx, c.DeviceID)
	d.TokenHash = nil // not a push's (backend.Directory.Target)
	return c, d, err
}

func (m *memNode) Channels(_ context.Context, dev string) ([]backend.Channel, error) {
	s, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var out []backend.Channel
	for _, c := range s.channels {
		if c.DeviceID == dev {
			c.Domains = slices.Clone(c.Domains)
			out = append(out, c)
		}
	}
	return out, nil
}

func (m *memNode) DeleteChannel(_ context.Context, c backend.Channel) error {
	s, err := m.lock()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	old, ok := s.channels[c.Token]
	if !ok {
		return backend.ErrNotFound
	}
	if old.Rev != c.Rev {
		return backend.ErrConflict
	}
	delete(s.channels, c.Token)
	for seq, n := range s.queue {
		if n.Channel == c.Token {
			delete(s.queue, seq)
		}
	}
	return nil
}

func (m *memNode) DeleteDevice(_ context.Context, d backend.Device) error {
	s, err := m.lock()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	old, ok := s.devices[d.ID]
	if !ok {
		return backend.ErrNotFound
	}
	if old.Rev != d.Rev {
		return backend.ErrConflict
	}
	delete(s.devices, d.ID)
	delete(s.presence, d.ID)
	for tok, c := range s.channels {
		if c.DeviceID == d.ID {
			delete(s.channels, tok)
		}
	}
	for seq, n := range s.queue {
		if n.DeviceID == d.ID {
			delete(s.queue, seq)
		}
	}
	return nil
}

func (m *memNode) ScanDevices(ctx context.Context, fn func(backend.Device) bool) error {
	s, err := m.lock()
	if err != nil {
		return err
	}
	devs := make([]backend.Device, 0, len(s.devices))
	for _, d := range s.devices {
		devs = append(devs, d)
	}
	s.mu.Unlock()
	for _, d := range devs {
		if !fn(d) {
			break
		}
	}
	return ctx.Err()
}

func (m *memNode) Append(_ context.Context, n *backend.Notification, limit int) (backend.Appended, error) {
	s, err := m.lock()
	if err != nil {
		return backend.Appended{}, err
	}
	defer s.mu.Unlock()
	now := time.Now()
	var replaced uint64
	count := 0
	for seq, q := range s.queue {
		if q.Channel != n.Channel || !q.ExpiresAt.After(now) {
			continue
		}
		if n.Kind == "tile" && q.Kind == "tile" && q.TileID == n.TileID {
			replaced = seq
			continue
		}
		count++
	}
	if limit > 0 && count >= limit {
		return backend.Appended{}, backend.ErrQueueFull
	}
	delete(s.queue, replaced)
	s.seq++
	n.Seq = s.seq
	s.queue[n.Seq] = n
	done := make(chan error, 1)
	done <- nil
	return backend.Appended{Seq: n.Seq, Replaced: replaced, Durable: done}, nil
}

func (m *memNode) Remove(_ context.Context, dev string, seqs []uint64) error {
	s, err := m.lock()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	for _, seq := range seqs {
		if n, ok := s.queue[seq]; ok && n.DeviceID == dev {
			delete(s.queue, seq)
		}
	}
	return nil
}

func (m *memNode) Pending(_ context.Context, dev string, now time.Time) ([]*backend.Notification, error) {
	s, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var out []*backend.Notification
	for _, n := range s.queue {
		if n.DeviceID == dev && n.ExpiresAt.After(now) {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}

func (m *memNode) Sweep(_ context.Context, now time.Time) (int, error) {
	s, err := m.lock()
	if err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	k := 0
	for seq, n := range s.queue {
		if !n.ExpiresAt.After(now) {
			delete(s.queue, seq)
			k++
		}
	}
	return k, nil
}

func (m *memNode) Listen(in backend.Inbox) {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	m.s.inboxes[m.id] = in
}

func (m *memNode) Claim(_ context.Context, dev string, now time.Time) (uint64, error) {
	s, err := m.lock()
	if err != nil {
		return 0, err
	}
	old, had := s.presence[dev]
	s.rev++
	claim := s.rev
	s.presence[dev] = backend.Presence{Node: m.id, Connected: true, Since: now, Claim: claim}
	in := s.inboxes[old.Node]
	s.mu.Unlock()
	if had && old.Connected && in != nil {
		in.TakenOver(dev, claim)
	}
	return claim, nil
}

func (m *memNode) Release(_ context.Context, dev string, claim uint64, now time.Time) error {
	s, err := m.lock()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	p, ok := s.presence[dev]
	if !ok || p.Claim != claim {
		return nil
	}
	s.rev++
	s.presence[dev] = backend.Presence{Node: m.id, Since: now, Claim: claim}
	if d, ok := s.devices[dev]; ok {
		d.LastSeen, d.Rev = now, s.rev
		s.devices[dev] = d
	}
	return nil
}

func (m *memNode) Presence(_ context.Context, dev string) (backend.Presence, bool, error) {
	s, err := m.lock()
	if err != nil {
		return backend.Presence{}, false, err
	}
	defer s.mu.Unlock()
	p, ok := s.presence[dev]
	return p, ok, nil
}

func (m *memNode) Hand(_ context.Context, n *backend.Notification, replaced uint64) (backend.Presence, bool, error) {
	s, err := m.lock()
	if err != nil {
		return backend.Presence{}, false, err
	}
	p, ok := s.presence[n.DeviceID]
	in := s.inboxes[p.Node]
	s.mu.Unlock()
	if p.Connected && in != nil {
		in.Deliver(n.DeviceID, n, replaced)
	}
	return p, ok, nil
}

func (m *memNode) Take(_ context.Context, key string, limit int64, _ time.Duration) (bool, error) {
	s, err := m.lock()
	if err != nil {
		return false, err
	}
	defer s.mu.Unlock()
	if s.counters[key] >= limit {
		return false, nil
	}
	s.counters[key]++
	return true, nil
}

func (m *memNode) Services() auth.Store { return m.s.auth }

func (m *memNode) Stats(_ context.Context) (backend.Stats, error) {
	s, err := m.lock()
	if err != nil {
		return backend.Stats{}, err
	}
	defer s.mu.Unlock()
	st := backend.Stats{Devices: len(s.devices), Channels: len(s.channels), Queued: len(s.queue)}
	for _, n := range s.queue {
		st.QueuedBytes += int64(len(n.Payload))
	}
	return st, nil
}

func (m *memNode) Close() error {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	m.closed = true
	delete(m.s.inboxes, m.id)
	return nil
}
