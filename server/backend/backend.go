// Package backend declares where the push engine keeps its state: devices
// and channels (Directory), the per-device queues of notifications (Queue),
// which node holds each device's connection and how a notification is handed
// to it (Router), and cluster-wide counters such as the daily quota
// (Counters). The engine in package server talks only to these interfaces;
// it never knows which implementation it runs on.
//
// Two implementations sit beside each other: server/store, the embedded
// default (one process, one bbolt file), and server/natsbackend, several
// nodes sharing a NATS JetStream cluster. Package backend/backendtest is
// the conformance suite both pass.
//
// # Concurrency contract
//
// Every method is safe for concurrent use by any number of goroutines, on
// any number of nodes sharing the backend. Records are values: a method never
// keeps or changes a record (or a slice inside it) it was given, and a caller
// may keep what it got back, but must not change a *Notification it got back
// or handed in.
//
// Writes of devices and channels are revision-checked: a record read from the
// backend carries its Rev; writing it back succeeds only if nobody wrote it
// since (else ErrConflict), and Rev 0 means "create" (ErrExists if it is
// there). A successful write is durable when it returns.
//
// The queue assigns the order: Append gives a notification its Seq, greater
// than every Seq the backend handed out before, on any node and across
// restarts, even when a clock steps back. A Seq is never reused. Append
// returns as soon as the order is fixed and the limits are checked; the
// notification is durable once Appended.Durable yields nil. A notification
// may be delivered before it is durable; Remove after its delivery is applied
// after the Append it removes.
//
// Remove need not be durable when it returns: after a crash a removed
// notification may come back, and is delivered again (devices drop ids they
// have seen). A notification past its ExpiresAt is never returned by Pending
// nor counted against a limit, and is removed eventually.
//
// Hand is best effort: the notification is already in the queue, so a hand
// that is lost costs only latency: if the node died or the device moved,
// the device gets it from Pending when it connects again; if the node's
// connection to the backend broke, the backend calls Inbox.Resync once it
// is back, and the node's devices read their queues again.
//
// Errors: the sentinel errors below, wrapped with context; ErrUnavailable
// (wrapped) whenever the backend cannot answer now but may later (no quorum,
// connection lost), so the engine answers 503 and never 200.
package backend

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/openmpns/openmpns/server/auth"
)

// Sentinel errors; implementations wrap them.
var (
	// ErrNotFound: no such device or channel.
	ErrNotFound = errors.New("backend: not found")
	// ErrExists: a create found the record there already (or, for a
	// channel, the device's app already has one).
	ErrExists = errors.New("backend: already exists")
	// ErrConflict: a revision-checked write found a newer revision.
	ErrConflict = errors.New("backend: revision conflict")
	// ErrQueueFull: the channel holds as many notifications as its limit.
	ErrQueueFull = errors.New("backend: queue full")
	// ErrUnavailable: the backend cannot answer now (no quorum, no
	// connection); retry later.
	ErrUnavailable = errors.New("backend: unavailable")
	// ErrClosed: the backend was closed.
	ErrClosed = errors.New("backend: closed")
)

// Device is a phone known to the service.
type Device struct {
	ID string `json:"id"`
	// TokenHash is the SHA-256 of the secret the device presents at hello.
	TokenHash []byte    `json:"token_hash"`
	CreatedAt time.Time `json:"created_at"`
	// LastSeen is when the device was last connected: set by the Router
	// when a device disconnects, so it survives restarts.
	LastSeen time.Time `json:"last_seen"`
	// Power is the last power level the device reported (wire.Power*).
	Power string `json:"power,omitempty"`
	// Rev is the record's revision (0: not stored yet); not serialised.
	Rev uint64 `json:"-"`
}

// Channel is an app's push channel on a device.
type Channel struct {
	// Token is the random, URL-safe part of the Channel URI.
	Token    string `json:"token"`
	DeviceID string `json:"device_id"`
	App      string `json:"app"`
	Name     string `json:"name"`
	// Service is the service name the app gave when opening the channel; a
	// channel with a service accepts only that service's senders.
	Service string `json:"service,omitempty"`
	// URI is the Channel URI handed to the app when it was opened.
	URI       string    `json:"uri"`
	Toast     bool      `json:"toast,omitempty"`
	Tile      bool      `json:"tile,omitempty"`
	Domains   []string  `json:"domains,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// Rev is the record's revision (0: not stored yet); not serialised.
	Rev uint64 `json:"-"`
}

// Notification is a notification accepted for a channel and not yet
// acknowledged by its device.
type Notification struct {
	// Seq orders a device's notifications; the queue assigns it, unique
	// across the service and never reused. ID is its text form.
	Seq       uint64 `json:"seq"`
	DeviceID  string `json:"device_id"`
	Channel   string `json:"channel"` // Channel.Token
	App       string `json:"app"`
	Kind      string `json:"kind"` // toast, tile or raw
	Class     int    `json:"class"`
	MessageID string `json:"message_id,omitempty"`
	// TileID is the secondary tile id of a tile update ("" = primary).
	TileID     string    `json:"tile_id,omitempty"`
	Payload    []byte    `json:"payload"`
	AcceptedAt time.Time `json:"accepted_at"`
	// DeliverAt is when a batched notification becomes due.
	DeliverAt time.Time `json:"deliver_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// ID returns the text form of Seq, as sent to devices.
func (n *Notification) ID() string { return strconv.FormatUint(n.Seq, 16) }

// ParseID is the inverse of Notification.ID.
func ParseID(id string) (uint64, error) {
	seq, err := strconv.ParseUint(id, 16, 64)
	if err != nil {
		return 0, errors.New("backend: bad notification id " + strconv.Quote(id))
	}
	return seq, nil
}

// Directory holds devices and their channels.
type Directory interface {
	// PutDevice creates the device (d.Rev 0; ErrExists if the id is taken)
	// or replaces it (d.Rev must be the stored revision, else ErrConflict;
	// ErrNotFound if it is gone). It returns the device with its new Rev.
	PutDevice(ctx context.Context, d Device) (Device, error)
	// Device returns a device with its Rev, or ErrNotFound.
	Device(ctx context.Context, id string) (Device, error)
	// PutChannel creates the channel (c.Rev 0; ErrExists if the token is
	// taken or the device already has a channel for c.App, ErrNotFound if
	// the device does not exist) or replaces it (c.Rev must match, else
	// ErrConflict). Device, App and Token never change. It returns the
	// channel with its new Rev. No channel outlives its device: one
	// created while its device is deleted is gone with it, or refused.
	PutChannel(ctx context.Context, c Channel) (Channel, error)
	// Channel returns a channel by token with its Rev, or ErrNotFound.
	Channel(ctx context.Context, token string) (Channel, error)
	// Target returns the channel with this token and its device, as a
	// push needs them, or ErrNotFound. Unlike Channel and Device it may
	// answer from a cache on the node, so a write made through another
	// node may be seen a moment late (a backend says how late), never
	// after a notification that node handed to this one after the write
	// (Router.Hand), and a write made through this node is seen at once.
	// The device comes without its TokenHash, which a push never reads
	// (its copy was an allocation of every push).
	Target(ctx context.Context, token string) (Channel, Device, error)
	// Channels returns the device's channels, in any order.
	Channels(ctx context.Context, deviceID string) ([]Channel, error)
	// DeleteChannel removes the channel (c.Rev must match) and every
	// notification queued for it.
	DeleteChannel(ctx context.Context, c Channel) error
	// DeleteDevice removes the device (d.Rev must be the stored revision,
	// else ErrConflict; ErrNotFound if it is gone), every channel it has,
	// every notification queued for it and its presence. Pushes to its
	// channels then find no channel. A backend may leave some of the
	// channels' records behind when it fails half-way (the error says so):
	// a channel whose device is gone is treated as gone, and a later
	// DeleteDevice of the same id is not possible, so callers log it.
	DeleteDevice(ctx context.Context, d Device) error
	// ScanDevices calls fn with every device, in any order, until fn
	// returns false or the devices run out. Devices created or deleted
	// while it runs may or may not be seen; none is seen twice.
	ScanDevices(ctx context.Context, fn func(Device) bool) error
}

// Appended is the outcome of Queue.Append.
type Appended struct {
	// Seq is the notification's place in its device's queue (also set in
	// the notification).
	Seq uint64
	// Replaced is the Seq of a queued tile update this one replaced, or 0.
	Replaced uint64
	// Durable yields once, when the notification is durable (nil) or
	// cannot be made so (the notification is then not queued).
	Durable <-chan error
}

// Queue holds every device's notifications until they are acknowledged or
// expire.
type Queue interface {
	// Append queues n and sets n.Seq. A tile update replaces the queued
	// tile update of the same channel and TileID. With limit > 0, a
	// channel that already holds limit notifications (not counting the
	// one replaced) refuses n with ErrQueueFull. A backend may refuse a
	// channel deleted meanwhile with ErrNotFound.
	Append(ctx context.Context, n *Notification, limit int) (Appended, error)
	// Remove drops the device's notifications with these Seqs (delivered
	// or expired); unknown ones are ignored. It need not be durable when
	// it returns (see the package doc).
	Remove(ctx context.Context, deviceID string, seqs []uint64) error
	// Pending returns the device's queued notifications not expired at
	// now, in Seq order.
	Pending(ctx context.Context, deviceID string, now time.Time) ([]*Notification, error)
	// Sweep removes the notifications of every device that expired by
	// now and says how many it removed (0 where the backend expires them
	// by itself).
	Sweep(ctx context.Context, now time.Time) (int, error)
}

// Presence is where a device's connection is.
type Presence struct {
	// Node is the node holding the connection (when Connected) or that
	// held it last.
	Node string
	// Connected reports whether a node holds the device's connection.
	Connected bool
	// Since is when the device connected, or when it went offline.
	Since time.Time
	// Claim orders the connections of one device: a newer connection has
	// a greater claim.
	Claim uint64
}

// Inbox is the engine's side of a Router: what other nodes (or this one)
// hand to the devices this node holds.
type Inbox interface {
	// Deliver hands over a notification just appended for a device this
	// node holds; replaced is the Seq of a queued tile update it replaced,
	// or 0. It must not block.
	Deliver(deviceID string, n *Notification, replaced uint64)
	// TakenOver says the device connected elsewhere with the given claim:
	// close a connection of this node whose claim is older (4001). It must
	// not block.
	TakenOver(deviceID string, claim uint64)
	// Resync says hands to this node may have been lost (its connection to
	// the backend broke): the devices it holds read their queues again.
	// It may block; a backend calls it on a goroutine of its own.
	Resync()
}

// Router knows which node holds each device's connection and hands
// notifications to it.
type Router interface {
	// Listen sets the inbox of this node; call it once, before Claim.
	Listen(Inbox)
	// Claim records that this node now holds the device's connection and
	// returns the claim; the node holding an older claim (this one too) is
	// told through its Inbox.TakenOver. Call it without holding a lock the
	// Inbox takes: a backend may call the Inbox before Claim returns.
	Claim(ctx context.Context, deviceID string, now time.Time) (uint64, error)
	// Release records that the connection of this claim ended at now (and
	// the device's LastSeen), unless a newer claim was made since.
	Release(ctx context.Context, deviceID string, claim uint64, now time.Time) error
	// Presence returns the device's presence; ok is false when the device
	// has not connected since the backend started keeping presence (its
	// Device.LastSeen then tells when it was last seen).
	Presence(ctx context.Context, deviceID string) (p Presence, ok bool, err error)
	// Hand gives n (just appended) to the node holding the device, whose
	// Inbox.Deliver gets it; best effort (see the package doc). It returns
	// the device's presence as it found it (ok false: none recorded), which
	// the engine answers the sender with; like Directory.Target, a backend
	// may find it in a cache that sees another node's claim or release a
	// moment late (never after a later hand from that node), as long as
	// the notification still reaches the node holding the device.
	Hand(ctx context.Context, n *Notification, replaced uint64) (p Presence, ok bool, err error)
}

// Counters are counters shared by every node.
type Counters interface {
	// Take adds one to the counter key unless it has reached limit, and
	// reports whether it did. A counter is forgotten ttl after it was
	// first taken.
	Take(ctx context.Context, key string, limit int64, ttl time.Duration) (bool, error)
}

// Stats are the backend's sizes, for metrics and the server's global
// limits.
type Stats struct {
	Devices, Channels, Queued int
	// QueuedBytes is the size of the queued notifications: their payloads
	// (embedded), or the bytes the queue's stream holds (NATS, headers and
	// subjects included).
	QueuedBytes int64
}

// Backend is everything the engine keeps outside its own memory.
type Backend interface {
	Directory
	Queue
	Router
	Counters
	// Services is the store of authenticated senders and the server's
	// signing key.
	Services() auth.Store
	// Stats returns the backend's sizes (across the service).
	Stats(ctx context.Context) (Stats, error)
	// Close releases the backend; pending writes are finished first.
	Close() error
}

// InsertBySeq inserts n into q, which is in Seq order, keeping the order;
// a Seq already in q is not inserted again (added reports which).
func InsertBySeq(q []*Notification, n *Notification) (out []*Notification, added bool) {
	i, found := slices.BinarySearchFunc(q, n.Seq, func(o *Notification, s uint64) int { return cmp.Compare(o.Seq, s) })
	if found {
		return q, false
	}
	return slices.Insert(q, i, n), true
}
