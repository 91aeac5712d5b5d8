//go:build unix

package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// lockStateDir takes an exclusive lock on dir (a file "lock" in it) for as
// long as this process runs devices there: two devices sharing one state
// directory share one identity, and the server takes the connection from
// one to give it to the other, back and forth; two fleets on one directory
// do so for every device. who ("device", "fleet") goes into the lock with
// the process id, so that the one refused can say what holds it. The lock
// goes with the process, however it ends.
func lockStateDir(dir, who string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	path := filepath.Join(dir, "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("state directory %s is in use by %s: two %ss on one state directory share their identities and knock each other off; give this one its own --state DIR",
				dir, lockHolder(string(b)), who)
		}
		return nil, fmt.Errorf("state directory: lock %s: %w", path, err)
	}
	f.Truncate(0)
	fmt.Fprintf(f, "%d %s\n", os.Getpid(), who)
	return func() { f.Close() }, nil
}

// lockHolder says who holds a lock whose file says "PID WHO" (or just PID,
// as openmpns device wrote before fleets took the lock too).
func lockHolder(content string) string {
	f := strings.Fields(content)
	switch len(f) {
	case 0:
		return "another openmpns process"
	case 1:
		return "another openmpns process (process " + f[0] + ")"
	}
	return "another openmpns " + f[1] + " (process " + f[0] + ")"
}
