package phone

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

// handoffKeyFile holds the phone's handoff key in StateDir, hex-encoded.
const handoffKeyFile = "handoff.key"

// loadHandoffKey reads the phone's handoff key from dir, making one (32
// random bytes, mode 0600) the first time. With dir "" the key lives as
// long as the phone.
//
// The key proves to an app's cloud service that a later handoff for the
// same device and app comes from the same phone: each app gets its own
// device key from it (deviceKey), so that one app's backend cannot pose as
// the phone to another's.
func loadHandoffKey(dir string) ([]byte, error) {
	if dir == "" {
		return newHandoffKey()
	}
	path := filepath.Join(dir, handoffKeyFile)
	b, err := os.ReadFile(path)
	if err == nil {
		key, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(key) != 32 {
			return nil, fmt.Errorf("phone: %s is not a handoff key (64 hex digits): delete it to make a new one, and the apps' backends will refuse this phone's next handoffs until they forget it", path)
		}
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("phone: handoff key: %w", err)
	}
	key, err := newHandoffKey()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("phone: handoff key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("phone: handoff key: %w", err)
	}
	_, err = f.WriteString(hex.EncodeToString(key) + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("phone: handoff key: %w", err)
	}
	return key, nil
}

func newHandoffKey() ([]byte, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("phone: handoff key: %w", err)
	}
	return key, nil
}

// deviceKey is the device key the phone sends with app's handoffs
// (device.HandoffRecord's DeviceKey): an HMAC of the device id and app id
// under the phone's handoff key.
func deviceKey(key []byte, deviceID, app string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("openmpns handoff\x00" + deviceID + "\x00" + app))
	return hex.EncodeToString(m.Sum(nil))
}
