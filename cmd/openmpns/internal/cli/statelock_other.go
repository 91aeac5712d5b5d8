//go:build !unix

package cli

// lockStateDir does not lock on this system: run one device per state
// directory, one fleet per state directory (see statelock_unix.go).
func lockStateDir(dir, who string) (unlock func(), err error) { return func() {}, nil }
