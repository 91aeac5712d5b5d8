package server

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// A mistaken --admin that names a file is refused, and the file is left
// alone; the server still serves.
func TestAdminSocketNeverUnlinksAFile(t *testing.T) {
	dir := t.TempDir()
	precious := filepath.Join(dir, "precious")
	if err := os.WriteFile(precious, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{Listen: "127.0.0.1:0", DataDir: dir, AdminSocket: precious,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if b, err := os.ReadFile(precious); err != nil || string(b) != "data" {
		t.Fatalf("the file named by --admin: %q %v", b, err)
	}
	if srv.AdminSocket() != "" {
		t.Fatalf("admin socket %q over a file", srv.AdminSocket())
	}
}
