// Package device is the phone side of OpenMPNS: the push client that holds
// one WebSocket to the server for all of a device's apps, and, on top of it,
// Channel, shaped like Windows Phone's HttpNotificationChannel.
//
// A Device connects in the background, reconnects with exponential backoff
// and jitter, keeps its identity and channels in a state directory, drops
// duplicate notifications by id, and acknowledges a notification only after
// its handler returned. Events are delivered one at a time, in order, on a
// goroutine of the Device's own: handlers may call any method, including
// blocking ones. A Device is safe for concurrent use; Close stops every
// goroutine it started.
package device

import (
	"time"

	"github.com/openmpns/openmpns/shared/payload"
)

// ConnectionStatus is the state of the push connection, as the phone's
// ChannelConnectionStatus.
type ConnectionStatus string

// Connection states.
const (
	Connected    ConnectionStatus = "connected"
	Disconnected ConnectionStatus = "disconnected"
)

// PowerLevel is the phone's battery state as the push client reports it.
type PowerLevel string

// Power levels: normal gets everything, low gets raw only, critically low nothing.
const (
	PowerNormal        PowerLevel = "normal"
	PowerLow           PowerLevel = "low"
	PowerCriticallyLow PowerLevel = "critically_low"
)

// ErrorType is the type of a NotificationChannelError (the reference's error types).
type ErrorType string

// Error types raised through Handlers.Error.
const (
	ErrChannelOpenFailed       ErrorType = "ChannelOpenFailed"
	ErrPayloadFormat           ErrorType = "PayloadFormatError"
	ErrMessageBadContent       ErrorType = "MessageBadContent"
	ErrNotificationRateTooHigh ErrorType = "NotificationRateTooHigh"
	ErrPowerLevelChanged       ErrorType = "PowerLevelChanged"
	ErrUnknown                 ErrorType = "Unknown"
)

// ChannelError is what ErrorOccurred carries.
type ChannelError struct {
	Type    ErrorType
	App     string
	Message string
}

func (e *ChannelError) Error() string { return string(e.Type) + ": " + e.Message }

// Meta describes a delivered notification.
type Meta struct {
	// ID is the server's notification id (unique; duplicates are dropped).
	ID        string
	App       string
	Channel   string
	Class     int
	MessageID string
	// AcceptedAt is when the server accepted the push.
	AcceptedAt time.Time
	// ReceivedAt is when the device received it.
	ReceivedAt time.Time
}

// Handlers receive a device's events. Any may be nil. They run one at a time,
// in order, on the device's event goroutine; a notification is acknowledged
// to the server once its handler has returned.
type Handlers struct {
	// ChannelURIUpdated: a channel got its Channel URI, or a new one.
	ChannelURIUpdated func(app, channel, uri string)
	// ConnectionStatusChanged: the push connection went up or down.
	ConnectionStatusChanged func(ConnectionStatus)
	// Error: a NotificationChannelError for an app (App "" for the device).
	Error func(*ChannelError)
	// ShellToast: a toast the shell shows (the app is not in the foreground).
	ShellToast func(Meta, *payload.Toast)
	// AppToast: a toast for an app in the foreground (ShellToastNotificationReceived).
	AppToast func(Meta, *payload.Toast)
	// Tile: a tile update the shell applies. domains are the channel's
	// allowed remote image domains.
	Tile func(m Meta, t *payload.Tile, domains []string)
	// Raw: raw data for a running app (HttpNotificationReceived).
	Raw func(Meta, []byte)
	// RawDropped: raw data that arrived while the app was not running.
	RawDropped func(Meta)
	// Duplicate: a notification delivered again (after a reconnect or a
	// server restart) that the device had already handled; it is acked and
	// dropped, the app never sees it. For fleets that count redeliveries.
	Duplicate func(Meta)
}
