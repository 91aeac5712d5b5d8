package device

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// HandoffKeyFile is the file in a state directory that holds a device's
// handoff key: 64 hex digits and a newline, mode 0600.
const HandoffKeyFile = "handoff.key"

// handoffKeyLen is the length of a handoff key in bytes.
const handoffKeyLen = 32

// HandoffKey is a device's secret for its handoffs. It proves to an app's
// cloud service that a later handoff for the same device and app comes
// from the same device: each app gets its own device key from it
// (DeviceKey), so that one app's backend cannot pose as the device to
// another's.
type HandoffKey []byte

// NewHandoffKey returns a new random handoff key, for a device whose state
// is not kept: it lasts as long as the caller holds it.
func NewHandoffKey() (HandoffKey, error) {
	key := make(HandoffKey, handoffKeyLen)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("device: handoff key: %w", err)
	}
	return key, nil
}

// LoadHandoffKey reads the handoff key kept in dir (HandoffKeyFile),
// making one the first time: 32 random bytes in a file of mode 0600, dir
// made 0700 if missing. With dir "" it returns a new key that is not kept.
//
// A damaged file is an error, not replaced: a new key would make every
// backend that holds this device refuse its handoffs (409) until it
// forgets the device, which the user should decide.
func LoadHandoffKey(dir string) (HandoffKey, error) {
	if dir == "" {
		return NewHandoffKey()
	}
	path := filepath.Join(dir, HandoffKeyFile)
	b, err := os.ReadFile(path)
	if err == nil {
		key, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(key) != handoffKeyLen {
			return nil, fmt.Errorf("device: %s is not a handoff key (64 hex digits): delete it to make a new one, and the apps' backends will refuse this device's next handoffs until they forget it", path)
		}
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("device: handoff key: %w", err)
	}
	key, err := NewHandoffKey()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("device: handoff key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("device: handoff key: %w", err)
	}
	_, err = f.WriteString(hex.EncodeToString(key) + "\n")
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("device: handoff key: %w", err)
	}
	return key, nil
}

// DeviceKey is the device key to send with app's handoffs from the device
// deviceID (HandoffRecord.DeviceKey): an HMAC-SHA256 of the device id and
// app id under k, hex-encoded. It is the same at every handoff of that
// device and app, and tells nothing about k or about the device key of
// another app.
func (k HandoffKey) DeviceKey(deviceID, app string) string {
	m := hmac.New(sha256.New, k)
	m.Write([]byte("openmpns handoff\x00" + deviceID + "\x00" + app))
	return hex.EncodeToString(m.Sum(nil))
}
