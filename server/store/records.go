// Package store is the embedded backend of the push engine (see
// server/backend): one process, one bbolt file. Bolt is the durable log, a
// group-commit loop over bbolt; Embedded keeps the live index in memory
// (devices, channels, per-device queues, presence, counters) and writes
// through to Bolt.
package store

import "github.com/openmpns/openmpns/server/backend"

// The records are the backend's.
type (
	Device       = backend.Device
	Channel      = backend.Channel
	Notification = backend.Notification
)

// ParseID is the inverse of Notification.ID.
func ParseID(id string) (uint64, error) { return backend.ParseID(id) }
