// Package device is the phone side of OpenMPNS: the push client that holds
// one WebSocket to the server for all of a device's apps, and, on top of it,
// Channel, shaped like Windows Phone's HttpNotificationChannel.
//
// A Device connects in the background, reconnects with exponential backoff
// and jitter, keeps its identity and channels in a state directory, drops
// duplicate notifications by id, and acknowledges a notification only after
// its handler returned.
//
// Each Channel raises HttpNotificationChannel's events (ChannelEvents, set
// with Channel.SetEvents): ChannelURIUpdated, HTTPNotificationReceived,
// ShellToastNotificationReceived, ErrorOccurred, ConnectionStatusChanged,
// for as long as the program references the object (the device holds it
// weakly: see Channel.SetEvents) and does not dispose it.
// The shell's events (the toasts it shows, tile updates) and the device's
// own (connect failures, device-level errors) are in Config.Handlers, which
// also offers a device-level view of every channel's events.
//
// Events are delivered one at a time, in order, on a goroutine of the
// Device's own: handlers may call any method, including blocking ones and
// Close (unless Config.PromptHandlers promises they never do, for a fleet's
// sake). A Device is safe for concurrent use; Close stops every goroutine
// it started.
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

// ErrorType is the type of a ChannelError: the phone's ChannelErrorType.
type ErrorType string

// Error types, named after ChannelErrorType's members.
const (
	// ChannelOpenFailed: the server refused to open (or re-open) a channel
	// or to restore one of its saved bindings (the channel keeps the
	// server's), or no longer knows the device (App "": every channel is
	// opened again with new Channel URIs), or refuses it as a new device
	// too (App "": raised once; the device retries with backoff).
	ChannelOpenFailed ErrorType = "ChannelOpenFailed"
	// PayloadFormatError: a toast or tile payload could not be parsed.
	PayloadFormatError ErrorType = "PayloadFormatError"
	// MessageBadContent: a tile's remote image could not be used. The device
	// runtime never raises it itself; a shell that downloads tile images does.
	MessageBadContent ErrorType = "MessageBadContent"
	// NotificationRateTooHigh: reserved; the device runtime never raises it.
	NotificationRateTooHigh ErrorType = "NotificationRateTooHigh"
	// PowerLevelChanged: the device's power level changed (SetPowerLevel).
	PowerLevelChanged ErrorType = "PowerLevelChanged"
	// UnknownError: anything else, such as an error frame answering no request.
	UnknownError ErrorType = "Unknown"
)

// ErrMessageBadContent is the old name of MessageBadContent.
//
// Deprecated: use MessageBadContent; ErrorType values are not errors.
const ErrMessageBadContent = MessageBadContent

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

// Handlers receive a device's events, for every app at once. Any may be
// nil. They run one at a time, in order, on the device's event goroutine
// (or its connection's reader, see Config.PromptHandlers); a notification
// is acknowledged to the server once its handler has returned.
//
// ShellToast, Tile, RawDropped and Duplicate are the shell's: they exist
// only here. ChannelURIUpdated, ConnectionStatusChanged, Error, AppToast and
// Raw are the device-level view of the events each Channel raises too
// (ChannelEvents, as HttpNotificationChannel raises them); an app listens on
// its channel, a shell or a fleet that watches every app listens here. When
// both are set, both run: the device-level one first.
type Handlers struct {
	// ChannelURIUpdated: a channel got its Channel URI, or a new one
	// (ChannelEvents.ChannelURIUpdated of the app's channel).
	ChannelURIUpdated func(app, channel, uri string)
	// ConnectionStatusChanged: the push connection went up or down.
	ConnectionStatusChanged func(ConnectionStatus)
	// ConnectFailed: a connection attempt failed (the server cannot be
	// reached, refused the upgrade, or the set-up failed); the device tries
	// again after retryIn. For telling a user why nothing connects.
	ConnectFailed func(err error, retryIn time.Duration)
	// Error: a ChannelError for an app, or for the device (App "").
	Error func(*ChannelError)
	// ShellToast: a toast the shell shows (the app is not in the foreground).
	ShellToast func(Meta, *payload.Toast)
	// AppToast: a toast for an app in the foreground
	// (ChannelEvents.ShellToastNotificationReceived of its channel).
	AppToast func(Meta, *payload.Toast)
	// Tile: a tile update the shell applies. domains are the channel's
	// allowed remote image domains.
	Tile func(m Meta, t *payload.Tile, domains []string)
	// Raw: raw data for a running app
	// (ChannelEvents.HTTPNotificationReceived of its channel).
	Raw func(Meta, []byte)
	// RawDropped: raw data that arrived while the app was not running.
	RawDropped func(Meta)
	// Duplicate: a notification delivered again (after a reconnect or a
	// server restart) that the device had already handled; it is acked and
	// dropped, the app never sees it. For fleets that count redeliveries.
	Duplicate func(Meta)
}

// ChannelEvents are a channel's events, named after HttpNotificationChannel's.
// Any may be nil. They run on the device's event goroutine, one at a time
// and in order with every other event of the device, and may call any
// method of the channel or the device, Close included. Set them with
// Channel.SetEvents; they are raised while the program references the
// object they are set on (a handler that references its own object does
// not count).
type ChannelEvents struct {
	// ChannelURIUpdated: the channel got its Channel URI, or a new one;
	// hand it to the app's cloud service.
	ChannelURIUpdated func(uri string)
	// HTTPNotificationReceived: raw data for the app, which is running.
	HTTPNotificationReceived func(Meta, []byte)
	// ShellToastNotificationReceived: a toast that arrived while the app was
	// in the foreground, so the shell did not show it.
	ShellToastNotificationReceived func(Meta, *payload.Toast)
	// ErrorOccurred: something went wrong with this channel (see ErrorType).
	ErrorOccurred func(*ChannelError)
	// ConnectionStatusChanged: the device's push connection went up or
	// down, raised on every open channel.
	ConnectionStatusChanged func(ConnectionStatus)
}
