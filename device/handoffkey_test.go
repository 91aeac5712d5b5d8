package device

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestHandoffKeyIsKeptPrivateAndStable: the key that makes the device keys
// of a device's handoffs survives a restart (so a backend keeps taking the
// device's new Channel URIs), is readable by the user alone, differs
// between devices, and gives each app a device key of its own.
func TestHandoffKeyIsKeptPrivateAndStable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	k1, err := LoadHandoffKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, HandoffKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("%s is %v, want 0600", HandoffKeyFile, st.Mode().Perm())
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("the state directory made for the key: %v, %v; want 0700", st.Mode().Perm(), err)
	}
	k2, err := LoadHandoffKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if k1.DeviceKey("d", "a") != k2.DeviceKey("d", "a") {
		t.Error("the device key changed across a restart")
	}
	other, err := LoadHandoffKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if k1.DeviceKey("d", "a") == other.DeviceKey("d", "a") {
		t.Error("two devices share a device key")
	}
	if k1.DeviceKey("d", "a") == k1.DeviceKey("d", "b") {
		t.Error("two apps share a device key: one app's backend could pose as the device to the other's")
	}
	if k1.DeviceKey("d", "a") == k1.DeviceKey("e", "a") {
		t.Error("two device ids share a device key under one handoff key")
	}
	if err := os.WriteFile(filepath.Join(dir, HandoffKeyFile), []byte("zz\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadHandoffKey(dir); err == nil {
		t.Error("a damaged key file was taken")
	}
}

// TestHandoffKeyInMemory: without a state directory every key is new, and
// nothing is written.
func TestHandoffKeyInMemory(t *testing.T) {
	a, err := LoadHandoffKey("")
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewHandoffKey()
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 32 || len(b) != 32 || a.DeviceKey("d", "a") == b.DeviceKey("d", "a") {
		t.Errorf("in-memory keys %x and %x", a, b)
	}
}

// TestDeviceKeyIsFixed pins the derivation (the emulator's phones used it
// before it moved here): a backend holds the keys of devices handed off by
// earlier versions, and they must keep matching.
func TestDeviceKeyIsFixed(t *testing.T) {
	k := make(HandoffKey, 32)
	for i := range k {
		k[i] = byte(i)
	}
	const want = "f8cbc0648c83b4ddb1f1b24959d0663065a464baed2085091ea9ac401f54c767"
	if got := k.DeviceKey("device-1", "com.openmpns.news"); got != want {
		t.Errorf("DeviceKey = %s, want %s", got, want)
	}
}

// TestHandoffKeyFileLeftEmptyIsMadeAgain: a key file left empty (an
// earlier version created it before writing it, and crashed in between)
// holds no key anyone used: the next start makes one, instead of failing
// at every start; the file is written whole, mode 0600, with nothing left
// beside it.
func TestHandoffKeyFileLeftEmptyIsMadeAgain(t *testing.T) {
	for _, empty := range []string{"", "\n"} {
		dir := t.TempDir()
		path := filepath.Join(dir, HandoffKeyFile)
		if err := os.WriteFile(path, []byte(empty), 0o600); err != nil {
			t.Fatal(err)
		}
		k1, err := LoadHandoffKey(dir)
		if err != nil {
			t.Fatalf("a key file left empty by a crash during its creation (%q): %v", empty, err)
		}
		k2, err := LoadHandoffKey(dir)
		if err != nil || !bytes.Equal(k1, k2) {
			t.Fatalf("the key made in place of an empty file did not last: %x, then %x, %v", k1, k2, err)
		}
		checkKeyFileAlone(t, dir)
	}
}

// TestHandoffKeyFirstStartsAtOnceAgree: starts that make the key at the
// same time (four on a new directory; two on a file left empty) all
// succeed and all get the key the file keeps: none sees another's file
// half-written, none writes over a key another returned.
func TestHandoffKeyFirstStartsAtOnceAgree(t *testing.T) {
	for _, c := range []struct {
		name   string
		starts int
		empty  bool
	}{{"new", 4, false}, {"empty", 2, true}} {
		t.Run(c.name, func(t *testing.T) {
			for round := 0; round < 50; round++ {
				dir := t.TempDir()
				if c.empty {
					if err := os.WriteFile(filepath.Join(dir, HandoffKeyFile), nil, 0o600); err != nil {
						t.Fatal(err)
					}
				}
				keys := make([]HandoffKey, c.starts)
				errs := make([]error, c.starts)
				var wg sync.WaitGroup
				for i := range c.starts {
					wg.Add(1)
					go func() { defer wg.Done(); keys[i], errs[i] = LoadHandoffKey(dir) }()
				}
				wg.Wait()
				kept, err := LoadHandoffKey(dir)
				if err != nil {
					t.Fatal(err)
				}
				for i := range c.starts {
					if errs[i] != nil {
						t.Fatalf("round %d: start %d of %d at once: %v", round, i, c.starts, errs[i])
					}
					if !bytes.Equal(keys[i], kept) {
						t.Fatalf("round %d: start %d got key %x, the file keeps %x", round, i, keys[i], kept)
					}
				}
				checkKeyFileAlone(t, dir)
			}
		})
	}
}

// checkKeyFileAlone checks that dir holds the key file, mode 0600, and
// nothing else (no temporary file left behind).
func checkKeyFileAlone(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != HandoffKeyFile {
		t.Fatalf("the state directory holds %v, want %s alone", entries, HandoffKeyFile)
	}
	st, err := os.Stat(filepath.Join(dir, HandoffKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("%s is %v, want 0600", HandoffKeyFile, st.Mode().Perm())
	}
}
