package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// TestWriteFileReplacesWholeAndLeavesNothingBehind writes a file, replaces
// it with shorter content, and checks the content, the mode, and that no
// temporary file is left in the directory.
func TestWriteFileReplacesWholeAndLeavesNothingBehind(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	if err := WriteFile(path, []byte("a longer first content"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "short" {
		t.Fatalf("read %q, %v; want %q", b, err, "short")
	}
	if runtime.GOOS != "windows" {
		st, err := os.Stat(path)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("mode %v, %v; want 0600", st.Mode().Perm(), err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Fatalf("directory holds %v (%v); want state.json alone", entries, err)
	}
}

// TestFailedWriteLeavesTheOldFile: when the rename fails (path is a
// directory), the error says so and no temporary file stays.
func TestFailedWriteLeavesTheOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "taken")
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(path, "inside"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := WriteFile(path, []byte("new"), 0o600)
	var le *os.LinkError
	if !errors.As(err, &le) {
		t.Fatalf("WriteFile over a directory: %v; want an *os.LinkError", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Fatalf("directory holds %v (%v); want the directory alone", entries, err)
	}
	if err := WriteFile(filepath.Join(dir, "missing", "f"), nil, 0o600); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("WriteFile into a missing directory: %v; want fs.ErrNotExist", err)
	}
}
