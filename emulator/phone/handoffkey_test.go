package phone

import (
	"os"
	"path/filepath"
	"testing"
)

// TestHandoffKeyIsKeptPrivateAndStable: the key that makes the device keys
// of the phone's handoffs survives a restart (so a backend keeps taking
// the phone's new Channel URIs), is readable by the user alone, differs
// between phones, and gives each app a device key of its own.
func TestHandoffKeyIsKeptPrivateAndStable(t *testing.T) {
	dir := t.TempDir()
	k1, err := loadHandoffKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, handoffKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("%s is %v, want 0600", handoffKeyFile, st.Mode().Perm())
	}
	k2, err := loadHandoffKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if deviceKey(k1, "d", "a") != deviceKey(k2, "d", "a") {
		t.Error("the device key changed across a restart")
	}
	other, err := loadHandoffKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if deviceKey(k1, "d", "a") == deviceKey(other, "d", "a") {
		t.Error("two phones share a device key")
	}
	if deviceKey(k1, "d", "a") == deviceKey(k1, "d", "b") {
		t.Error("two apps share a device key: one app's backend could pose as the phone to the other's")
	}
	if err := os.WriteFile(filepath.Join(dir, handoffKeyFile), []byte("zz\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadHandoffKey(dir); err == nil {
		t.Error("a damaged key file was taken")
	}
}
