package device

import (
	"os"
	"path/filepath"
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
