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

// claimSuffix names, after HandoffKeyFile, the claim to replace a key file
// an earlier version left (see LoadHandoffKey).
const claimSuffix = ".new"

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
// one's wins and the others read it.
//
// An earlier version created the file and then wrote the key into it: a
// crash in between left it empty, or holding the first digits of a key,
// with no newline, or (after a power failure, on a file system that kept
// its size but not its data) holding as many NUL bytes as it was written. Such a file held a key nobody used (that version
// returned the key only once it was written and synced), and is replaced,
// once, by whichever start claims its replacement first: a start that
// finds it writes a key to a temporary file and links it to the claim
// (HandoffKeyFile + ".new"), which only one start can make. The start that
// made the claim, or any start that finds the claim there, renames a link
// to the claim's key over the file, if the file still is one left by an
// earlier version; the claim is removed only once the file holds a key. So all
// starts at once get the claim's key, however many, whatever the order of
// their steps; a start that crashed holding the claim leaves a whole key
// there, which the next start puts in place. A claim still there when a
// start finds the file holding a key (a start crashed after it put the
// claim's key in place) is one no start will use: that start removes it.
//
// A damaged file is an error, not replaced: a new key would make every
// backend that holds this device refuse its handoffs (409) until it
// forgets the device, which the user should decide.
//
// Processes that run a device on a state directory should not share it
// (openmpns device and fleet lock it); LoadHandoffKey does not rely on a
// lock, for callers that do not hold one and systems without locks.
func LoadHandoffKey(dir string) (HandoffKey, error) {
	if dir == "" {
		return NewHandoffKey()
	}
	return loadHandoffKey(dir, osKeyFS{})
}

// loadHandoffKey is LoadHandoffKey on fsys.
func loadHandoffKey(dir string, fsys keyFS) (HandoffKey, error) {
	path := filepath.Join(dir, HandoffKeyFile)
	// Each turn returns, or finds that another start changed the file
	// meanwhile and reads it again: two turns are enough but for another
	// program changing the file.
	for range 8 {
		key, leftover, err := readHandoffKey(fsys, path)
		if key != nil {
			// A claim left once the file holds a key (a start that
			// crashed between putting the claim's key in place and
			// removing the claim): no start uses it any more (see
			// replaceLeftoverKey), and it would keep the key under a
			// second name after the file is deleted to make a new one.
			fsys.remove(path + claimSuffix)
		}
		if err != nil || key != nil {
			return key, err
		}
		if leftover {
			key, err = replaceLeftoverKey(fsys, dir, path)
		} else {
			key, err = linkNewKey(fsys, dir, path)
		}
		if err != nil || key != nil {
			return key, err
		}
	}
	return nil, fmt.Errorf("device: handoff key: %s keeps changing: is another program making it?", path)
}

// readHandoffKey reads the key at path: the key; or nil and whether the
// file is one an earlier version left when it crashed while making it
// (empty, zeros, or some hex digits with no newline; nil, false: there is no
// file); or an error for a file that cannot be read or is not a key.
func readHandoffKey(fsys keyFS, path string) (HandoffKey, bool, error) {
	b, err := fsys.readFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("device: handoff key: %w", err)
	}
	if leftoverKey(b) {
		return nil, true, nil
	}
	key, err := parseHandoffKey(b)
	if err != nil {
		return nil, false, fmt.Errorf("device: %s is not a handoff key (64 hex digits): delete it to make a new one, and the apps' backends will refuse this device's next handoffs until they forget it", path)
	}
	return key, false, nil
}

// parseHandoffKey parses a key file's content.
func parseHandoffKey(b []byte) (HandoffKey, error) {
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("device: handoff key: %w", err)
	}
	if len(key) != handoffKeyLen {
		return nil, fmt.Errorf("device: handoff key: %d bytes, want %d", len(key), handoffKeyLen)
	}
	return key, nil
}

// leftoverKey reports whether b is what an earlier version's key file
// held when it crashed before the key was written whole (it wrote the 64
// hex digits and the newline at once, into a file it had created empty):
// nothing but blanks, or fewer than 64 hex digits and no newline; or, up
// to the 65 bytes of a key and its newline, nothing but NUL bytes (and
// blanks): a file system that keeps a file's new size but not its data
// across a power failure (XFS, ext4 with data=writeback) leaves the
// written bytes as zeros.
func leftoverKey(b []byte) bool {
	s := string(b)
	if strings.TrimSpace(s) == "" {
		return true
	}
	if len(b) <= 2*handoffKeyLen+1 && strings.TrimSpace(strings.ReplaceAll(s, "\x00", "")) == "" {
		return true
	}
	if len(s) >= 2*handoffKeyLen {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

// linkNewKey makes a key, writes it to a temporary file in dir, syncs it,
// and links it to path unless path exists: it returns the key it linked,
// or nil when another start's was there first. The temporary file is
// removed either way.
func linkNewKey(fsys keyFS, dir, path string) (HandoffKey, error) {
	key, err := NewHandoffKey()
	if err != nil {
		return nil, err
	}
	if err := fsys.mkdirAll(dir); err != nil {
		return nil, fmt.Errorf("device: handoff key: %w", err)
	}
	tmp, err := fsys.writeTemp(dir, HandoffKeyFile+".*.tmp", []byte(hex.EncodeToString(key)+"\n"))
	if err != nil {
		return nil, fmt.Errorf("device: handoff key: %w", err)
	}
	defer fsys.remove(tmp)
	if err := fsys.link(tmp, path); errors.Is(err, fs.ErrExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("device: handoff key: %w", err)
	}
	fsys.syncDir(dir)
	return key, nil
}

// replaceLeftoverKey replaces the key file at path, which an earlier
// version left (see LoadHandoffKey), with the key of the claim: this
// start's, if it makes the claim, or another start's found there. It
// returns that key, or nil when the file changed meanwhile (another start
// replaced it already) and is to be read again.
//
// Only a start that made the claim or found it, and then found the file
// still left over, puts a key in its place; the claim is removed only
// once the file holds a key. So every key put in place is the key of the
// claim the first to do so saw: a claim made after that one was removed
// finds the file holding a key, and is removed unused. For the same
// reason any start that finds the file holding a key may remove the claim
// (loadHandoffKey does): the file never goes back to a left-over one, so
// a start holding a link to the claim that found the file left over puts
// the key the file holds already, and one that takes a link after the
// claim is gone, or finds the file holding a key, puts none.
func replaceLeftoverKey(fsys keyFS, dir, path string) (HandoffKey, error) {
	claim := path + claimSuffix
	key, err := NewHandoffKey()
	if err != nil {
		return nil, err
	}
	tmp, err := fsys.writeTemp(dir, HandoffKeyFile+".*.tmp", []byte(hex.EncodeToString(key)+"\n"))
	if err != nil {
		return nil, fmt.Errorf("device: handoff key: %w", err)
	}
	defer fsys.remove(tmp)
	if err := fsys.link(tmp, claim); errors.Is(err, fs.ErrExist) {
		// Another start's claim: take its key, in the file itself (a
		// link to it, read and put in place), not a copy of whatever the
		// name holds later.
		held := tmp + ".claim"
		if err := fsys.link(claim, held); errors.Is(err, fs.ErrNotExist) {
			return nil, nil // removed: the file holds a key
		} else if err != nil {
			return nil, fmt.Errorf("device: handoff key: %w", err)
		}
		defer fsys.remove(held)
		tmp = held
		b, err := fsys.readFile(tmp)
		if err != nil {
			return nil, fmt.Errorf("device: handoff key: %w", err)
		}
		if key, err = parseHandoffKey(b); err != nil {
			return nil, fmt.Errorf("device: %s is not a handoff key: remove it: %w", claim, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("device: handoff key: %w", err)
	}
	// This start holds a link to the claim's key at tmp.
	b, err := fsys.readFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("device: handoff key: %w", err)
	}
	if err != nil || !leftoverKey(b) {
		// Replaced already (or taken away: made again at the next turn).
		// A claim that stays once the file holds a key is never used.
		fsys.remove(claim)
		return nil, nil
	}
	if err := fsys.rename(tmp, path); err != nil {
		return nil, fmt.Errorf("device: handoff key: %w", err)
	}
	fsys.syncDir(dir)
	fsys.remove(claim)
	return key, nil
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
	// syncDir makes the names made in dir durable, where the system
	// allows it.
	syncDir(dir string)
}

// osKeyFS is keyFS on the system's files.
type osKeyFS struct{}

func (osKeyFS) readFile(path string) ([]byte, error) { return os.ReadFile(path) }
func (osKeyFS) link(oldname, newname string) error   { return os.Link(oldname, newname) }
func (osKeyFS) rename(oldname, newname string) error { return os.Rename(oldname, newname) }
func (osKeyFS) remove(path string) error             { return os.Remove(path) }
func (osKeyFS) syncDir(dir string)                   { syncDir(dir) }
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
