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
// A new key is written to a temporary file in dir, synced, and linked into
// place, so that the file appears whole or not at all: a crash leaves no
// empty or partial key, and of starts racing to make the key the first
// one's wins and the others read it. An empty file (left by a crash of an
// earlier version, which created the file before writing it) is taken as
// missing: the key it was to hold was never used.
//
// A damaged file is an error, not replaced: a new key would make every
// backend that holds this device refuse its handoffs (409) until it
// forgets the device, which the user should decide.
func LoadHandoffKey(dir string) (HandoffKey, error) {
	if dir == "" {
		return NewHandoffKey()
	}
	return loadHandoffKey(dir, osKeyFS{})
}

// loadHandoffKey is LoadHandoffKey on fsys.
func loadHandoffKey(dir string, fsys keyFS) (HandoffKey, error) {
	path := filepath.Join(dir, HandoffKeyFile)
	// Each turn either returns or finds that another start changed the
	// file meanwhile; a few turns are more than two starts at once need.
	for range 8 {
		key, empty, err := readHandoffKey(fsys, path)
		if err != nil || key != nil {
			return key, err
		}
		if empty {
			if err := discardEmptyKey(fsys, dir, path); err != nil {
				return nil, err
			}
			continue
		}
		key, err = NewHandoffKey()
		if err != nil {
			return nil, err
		}
		made, err := linkNewKey(fsys, dir, path, key)
		if err != nil {
			return nil, err
		}
		if made {
			return key, nil
		}
		// Another start linked its key first: read it at the next turn.
	}
	return nil, fmt.Errorf("device: handoff key: %s keeps changing: is another program making it?", path)
}

// readHandoffKey reads the key at path: the key; or nil and whether the
// file exists but is empty (nil, false: there is none); or an error for a
// file that cannot be read or is not a key.
func readHandoffKey(fsys keyFS, path string) (HandoffKey, bool, error) {
	b, err := fsys.readFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("device: handoff key: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return nil, true, nil
	}
	key, err := hex.DecodeString(s)
	if err != nil || len(key) != handoffKeyLen {
		return nil, false, fmt.Errorf("device: %s is not a handoff key (64 hex digits): delete it to make a new one, and the apps' backends will refuse this device's next handoffs until they forget it", path)
	}
	return key, false, nil
}

// linkNewKey writes key to a temporary file in dir, syncs it, and links it
// to path unless path exists: made reports whether it did. The temporary
// file is removed either way.
func linkNewKey(fsys keyFS, dir, path string, key HandoffKey) (made bool, err error) {
	if err := fsys.mkdirAll(dir); err != nil {
		return false, fmt.Errorf("device: handoff key: %w", err)
	}
	tmp, err := fsys.writeTemp(dir, HandoffKeyFile+".*.tmp", []byte(hex.EncodeToString(key)+"\n"))
	if err != nil {
		return false, fmt.Errorf("device: handoff key: %w", err)
	}
	defer fsys.remove(tmp)
	if err := fsys.link(tmp, path); errors.Is(err, fs.ErrExist) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("device: handoff key: %w", err)
	}
	syncDir(dir)
	return true, nil
}

// discardEmptyKey takes away the empty key file at path. It is moved aside
// first and removed only if it is still empty: another start may have
// replaced it with its key meanwhile, which is then put back. (Only when a
// third start linked yet another key in between does that key stay and
// the second start's go: three starts at once on a file an earlier
// version left empty.)
func discardEmptyKey(fsys keyFS, dir, path string) error {
	aside, err := fsys.writeTemp(dir, HandoffKeyFile+".*.empty", nil)
	if err != nil {
		return fmt.Errorf("device: handoff key: %w", err)
	}
	defer fsys.remove(aside)
	if err := fsys.rename(path, aside); errors.Is(err, fs.ErrNotExist) {
		return nil // another start took it away
	} else if err != nil {
		return fmt.Errorf("device: handoff key: %w", err)
	}
	if key, _, err := readHandoffKey(fsys, aside); err != nil || key == nil {
		return nil // empty (or not a key, which a start will not have linked)
	}
	// Another start's key, linked after this one read the empty file.
	if err := fsys.link(aside, path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("device: handoff key: put back %s: %w", path, err)
	}
	return nil
}

// keyFS is the file operations of LoadHandoffKey, each one step that
// other starts' steps may come between: osKeyFS does them on the system,
// and the tests run several starts' steps in the orders they choose.
type keyFS interface {
	readFile(path string) ([]byte, error)
	// writeTemp creates a new file in dir named by pattern (as
	// os.CreateTemp), mode 0600, writes b to it, syncs and closes it.
	writeTemp(dir, pattern string, b []byte) (string, error)
	link(oldname, newname string) error
	rename(oldname, newname string) error
	remove(path string) error
	mkdirAll(dir string) error // mode 0700
}

// osKeyFS is keyFS on the system's files.
type osKeyFS struct{}

func (osKeyFS) readFile(path string) ([]byte, error) { return os.ReadFile(path) }
func (osKeyFS) link(oldname, newname string) error   { return os.Link(oldname, newname) }
func (osKeyFS) rename(oldname, newname string) error { return os.Rename(oldname, newname) }
func (osKeyFS) remove(path string) error             { return os.Remove(path) }
func (osKeyFS) mkdirAll(dir string) error            { return os.MkdirAll(dir, 0o700) }

func (osKeyFS) writeTemp(dir, pattern string, b []byte) (string, error) {
	f, err := os.CreateTemp(dir, pattern) // mode 0600
	if err != nil {
		return "", err
	}
	_, err = f.Write(b)
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// syncDir makes a new name in dir durable, where the system allows it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync() // not supported everywhere (Windows); the key file itself is synced
		d.Close()
	}
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
