// Package store holds the server's durable records (devices, channels and
// queued notifications) and Bolt, their embedded bbolt implementation.
//
// The server talks to a store through a small interface of its own (see
// server.Store), so another engine can replace Bolt without touching the HTTP
// or WebSocket code.
package store

import (
	"errors"
	"time"
)

// ErrNotFound is returned when a device or channel does not exist.
var ErrNotFound = errors.New("store: not found")

// Device is a phone known to the server.
type Device struct {
	ID string `json:"id"`
	// TokenHash is the SHA-256 of the secret the device presents at hello.
	TokenHash []byte    `json:"token_hash"`
	CreatedAt time.Time `json:"created_at"`
	// LastSeen is when the device was last connected (updated on connect and
	// disconnect).
	LastSeen time.Time `json:"last_seen"`
	// Power is the last power level the device reported (wire.Power*).
	Power string `json:"power,omitempty"`
}

// Channel is an app's push channel on a device.
type Channel struct {
	// Token is the random, URL-safe part of the Channel URI.
	Token    string `json:"token"`
	DeviceID string `json:"device_id"`
	App      string `json:"app"`
	Name     string `json:"name"`
	// Service is the service name the app gave when opening the channel; a
	// channel with a service accepts only authenticated senders.
	Service string `json:"service,omitempty"`
	// URI is the Channel URI handed to the app.
	URI       string    `json:"uri"`
	Toast     bool      `json:"toast,omitempty"`
	Tile      bool      `json:"tile,omitempty"`
	Domains   []string  `json:"domains,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Notification is a notification accepted for a channel and not yet
// acknowledged by its device.
type Notification struct {
	// Seq orders notifications; it is unique across the server and grows
	// across restarts. ID is its text form, sent to devices.
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
