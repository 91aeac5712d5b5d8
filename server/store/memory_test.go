package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// idleDevices registers n devices as the engine does for a phone with one
// app (a device, its channel opened, then bound to toast and tile, its
// connection claimed) and returns the heap the store holds for them, per
// device, after a forced collection: the in-memory index, the records'
// strings included (the engine shares the device id with it).
func idleDevices(t *testing.T, e *Embedded, n int) float64 {
	t.Helper()
	ctx := context.Background()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const workers = 32 // writes of different devices share commits
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				if err := idleDevice(ctx, e); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
}

func idleDevice(ctx context.Context, e *Embedded) error {
	b := make([]byte, 16)
	rand.Read(b)
	id := hex.EncodeToString(b)
	h := sha256.Sum256(b)
	now := time.Now()
	if _, err := e.PutDevice(ctx, Device{ID: id, TokenHash: h[:], CreatedAt: now, LastSeen: now, Power: strings.Clone("normal")}); err != nil {
		return err
	}
	b = make([]byte, 20)
	rand.Read(b)
	tok := base64.RawURLEncoding.EncodeToString(b)
	// The app's strings arrive in a frame: each device's are its own.
	c := Channel{Token: tok, DeviceID: id, App: strings.Clone("com.example.app"), Name: strings.Clone("default"),
		URI: "http://127.0.0.1:8080/push/" + tok, CreatedAt: now}
	c, err := e.PutChannel(ctx, c)
	if err != nil {
		return err
	}
	c.Toast = true
	if c, err = e.PutChannel(ctx, c); err != nil {
		return err
	}
	c.Tile = true
	if _, err = e.PutChannel(ctx, c); err != nil {
		return err
	}
	_, err = e.Claim(ctx, id, now)
	return err
}

// TestIdleDeviceMemory holds the store's share of an idle connection's
// memory (issue 10: 4 KiB per idle connection in all) to its budget. With
// STORE_HEAPPROFILE=file it writes a heap profile of every allocation
// (go tool pprof -sample_index=inuse_space -top file).
func TestIdleDeviceMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("registers 20,000 devices")
	}
	prof := os.Getenv("STORE_HEAPPROFILE")
	if prof != "" {
		defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
		runtime.MemProfileRate = 1
	}
	e, err := Open(filepath.Join(t.TempDir(), "db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	idleDevices(t, e, 1000) // the log's and the file's first allocations
	per := idleDevices(t, e, 20000)
	if prof != "" {
		writeHeapProfile(t, prof)
	}
	t.Logf("%.0f bytes of heap per idle device", per)
	// The data file's pages in use, which the server maps as it reads
	// them: part of its memory too.
	var fileBytes int64
	e.Bolt().DB().View(func(tx *bolt.Tx) error { fileBytes = tx.Size(); return nil })
	t.Logf("%.0f bytes of data file per device", float64(fileBytes)/21000)
	if per := float64(fileBytes) / 21000; per > 600 {
		t.Errorf("the data file holds %.0f bytes per idle device, more than its budget of 600 (858 with JSON records)", per)
	}
	const budget = 480 // 845 before the compact index (index.go), ~400 with it
	if per > budget {
		t.Errorf("the store holds %.0f bytes of heap per idle device, more than its budget of %d", per, budget)
	}
}

func writeHeapProfile(t *testing.T, path string) {
	runtime.GC()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		t.Fatal(err)
	}
}
