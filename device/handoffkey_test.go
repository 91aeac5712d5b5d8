package device

import (
	"bytes"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
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

// TestHandoffKeyFileLeftEmptyIsMadeAgain: a key file left empty or cut
// short (an earlier version created it before writing it, and crashed in
// between) holds no key anyone used: the next start makes one, instead of
// failing at every start; the file is written whole, mode 0600, with
// nothing left beside it. A file that is not what that version could
// leave (a newline after too few digits, other characters) is still
// refused.
func TestHandoffKeyFileLeftEmptyIsMadeAgain(t *testing.T) {
	for _, damaged := range []string{"0123abcd\n", "0123ABCD", "zz"} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, HandoffKeyFile), []byte(damaged), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadHandoffKey(dir); err == nil {
			t.Errorf("a damaged key file (%q) was replaced", damaged)
		}
	}
	for _, empty := range []string{"", "\n", "0123abcd", strings.Repeat("f", 63)} {
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

// TestHandoffKeyFileLeftZeroedIsMadeAgain: a key file an earlier version
// was writing at a power failure can come back, on a file system that
// keeps a file's size but not its data (XFS, ext4 data=writeback), as the
// bytes written turned to NUL: 65 of them (the key and its newline), or
// fewer. It holds no key anyone used, like an empty file: the next start
// makes one. NUL bytes with other characters, or more NUL bytes than a
// key file holds, are still refused.
func TestHandoffKeyFileLeftZeroedIsMadeAgain(t *testing.T) {
	for _, damaged := range []string{"\x00\x00zz", "zz\x00\x00", "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff", strings.Repeat("\x00", 66)} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, HandoffKeyFile), []byte(damaged), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadHandoffKey(dir); err == nil {
			t.Errorf("a damaged key file (%q) was replaced", damaged)
		}
	}
	for _, zeroed := range []string{strings.Repeat("\x00", 65), strings.Repeat("\x00", 10), strings.Repeat("\x00", 64) + "\n"} {
		dir := t.TempDir()
		path := filepath.Join(dir, HandoffKeyFile)
		if err := os.WriteFile(path, []byte(zeroed), 0o600); err != nil {
			t.Fatal(err)
		}
		k1, err := LoadHandoffKey(dir)
		if err != nil {
			t.Fatalf("a key file of %d NUL bytes left by a power failure during its creation: %v", len(zeroed), err)
		}
		k2, err := LoadHandoffKey(dir)
		if err != nil || !bytes.Equal(k1, k2) {
			t.Fatalf("the key made in place of a zeroed file did not last: %x, then %x, %v", k1, k2, err)
		}
		b, err := os.ReadFile(path)
		if err != nil || string(b) != hex.EncodeToString(k1)+"\n" {
			t.Errorf("the key file holds %q, %v; want the key returned", b, err)
		}
		checkKeyFileAlone(t, dir)
	}
}

// TestHandoffKeyFirstStartsAtOnceAgree: starts that make the key at the
// same time (four on a new directory; two and four on a file left empty),
// let go together, all succeed and all get the key the file keeps: none
// sees another's file half-written, none writes over a key another
// returned. (The orders in which this goes wrong seldom come up when
// starts really run at once: TestHandoffKeyStartsAtOnceAgreeInEveryOrder
// runs their steps in many orders.)
func TestHandoffKeyFirstStartsAtOnceAgree(t *testing.T) {
	for _, c := range []struct {
		name   string
		starts int
		empty  bool
	}{{"new/4", 4, false}, {"empty/2", 2, true}, {"empty/4", 4, true}} {
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
				var ready, wg sync.WaitGroup
				gate := make(chan struct{}) // closed when all starts are ready to go
				for i := range c.starts {
					ready.Add(1)
					wg.Add(1)
					go func() {
						defer wg.Done()
						ready.Done()
						<-gate
						keys[i], errs[i] = LoadHandoffKey(dir)
					}()
				}
				ready.Wait()
				close(gate)
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

// TestHandoffKeyClaimLeftByACrashIsUsed: a start that crashed after it
// claimed the replacement of a key file an earlier version left empty
// leaves its whole key in the claim: the next start puts that key in
// place (another start at the time may have returned it) and removes the
// claim.
func TestHandoffKeyClaimLeftByACrashIsUsed(t *testing.T) {
	dir := t.TempDir()
	claimed, err := NewHandoffKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, HandoffKeyFile), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, HandoffKeyFile+".new"), []byte(hex.EncodeToString(claimed)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := LoadHandoffKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k, claimed) {
		t.Fatalf("got key %x, want the claim's %x", k, claimed)
	}
	if k, err := LoadHandoffKey(dir); err != nil || !bytes.Equal(k, claimed) {
		t.Fatalf("the file keeps %x (%v), want the claim's %x", k, err, claimed)
	}
	checkKeyFileAlone(t, dir)
}

// TestHandoffKeyClaimLeftOnceInPlaceIsRemoved: a start that crashed
// after it put the claim's key in place and before it removed the claim
// leaves the claim, a second name of the key file: the next start returns
// the key the file holds and removes the claim, which no start can use
// any more (a start uses a claim only while the file is one an earlier
// version left), so that the key is not kept under a second name after
// the file is deleted to make a new one.
func TestHandoffKeyClaimLeftOnceInPlaceIsRemoved(t *testing.T) {
	dir := t.TempDir()
	key, err := LoadHandoffKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(dir, HandoffKeyFile), filepath.Join(dir, HandoffKeyFile+".new")); err != nil {
		t.Fatal(err)
	}
	if k, err := LoadHandoffKey(dir); err != nil || !bytes.Equal(k, key) {
		t.Fatalf("got key %x (%v), want the file's %x", k, err, key)
	}
	checkKeyFileAlone(t, dir)
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

// TestHandoffKeyStartsAtOnceAgreeInEveryOrder: starts that load the key
// at the same time on one state directory (three and four; the directory
// new, or holding the empty or cut-short key file an earlier version could
// leave; the claim a crashed start left, beside an empty file or a key)
// all get the key the file keeps, and leave it alone in the directory,
// whatever the order in which their file operations fall: each start's operations are steps, and a
// scheduler lets one start take its next step at a time, in an order drawn
// from a seeded random source, over many orders. Starts that really run at
// once seldom fall in the orders that matter (TestHandoffKeyFirstStartsAtOnceAgree):
// a start that found the file empty, moved aside by mistake the key another
// start had just made and returned, and found a third start's new key in
// its place when it came to put it back.
func TestHandoffKeyStartsAtOnceAgreeInEveryOrder(t *testing.T) {
	aKey := []byte(strings.Repeat("ab", handoffKeyLen) + "\n")
	for _, c := range []struct {
		name   string
		starts int
		file   []byte // nil: none
		claim  []byte // a claim a crashed start left; nil: none
	}{
		{"new/3", 3, nil, nil},
		{"empty/3", 3, []byte{}, nil},
		{"empty/4", 4, []byte{}, nil},
		{"newline/3", 3, []byte("\n"), nil},
		{"cut short/3", 3, []byte("0123456789abcdef"), nil},
		{"empty, claim left/3", 3, []byte{}, aKey},
		{"key, claim left/3", 3, aKey, aKey},
	} {
		t.Run(c.name, func(t *testing.T) {
			for seed := range uint64(150) {
				dir := t.TempDir()
				if c.file != nil {
					if err := os.WriteFile(filepath.Join(dir, HandoffKeyFile), c.file, 0o600); err != nil {
						t.Fatal(err)
					}
				}
				if c.claim != nil {
					if err := os.WriteFile(filepath.Join(dir, HandoffKeyFile+claimSuffix), c.claim, 0o600); err != nil {
						t.Fatal(err)
					}
				}
				keys, errs := loadInOrder(dir, c.starts, rand.New(rand.NewPCG(seed, 1)))
				kept, err := LoadHandoffKey(dir)
				if err != nil {
					t.Fatalf("order %d: after the starts: %v", seed, err)
				}
				for i := range c.starts {
					if errs[i] != nil {
						t.Fatalf("order %d: start %d of %d: %v", seed, i, c.starts, errs[i])
					}
					if !bytes.Equal(keys[i], kept) {
						t.Fatalf("order %d: start %d of %d got key %x, the file keeps %x (the others: %x)", seed, i, c.starts, keys[i], kept, keys)
					}
				}
				checkKeyFileAlone(t, dir)
			}
		})
	}
}

// loadInOrder runs n starts of loadHandoffKey on dir at once, their file
// operations one at a time: whenever every start that has not returned
// waits at its next operation, rnd picks the one that goes on.
func loadInOrder(dir string, n int, rnd *rand.Rand) ([]HandoffKey, []error) {
	s := &scheduler{at: make(chan int), turn: make([]chan struct{}, n)}
	keys, errs := make([]HandoffKey, n), make([]error, n)
	for i := range n {
		s.turn[i] = make(chan struct{})
		go func() {
			keys[i], errs[i] = loadHandoffKey(dir, stepFS{s: s, i: i})
			s.at <- -1 // returned
		}()
	}
	waiting := make([]bool, n) // at a step, waiting for its turn
	for moving := n; ; moving = 1 {
		// Until each start let go (all at first, then the last one) waits
		// at its next step or has returned.
		for range moving {
			if i := <-s.at; i >= 0 {
				waiting[i] = true
			}
		}
		var ready []int
		for i, w := range waiting {
			if w {
				ready = append(ready, i)
			}
		}
		if len(ready) == 0 {
			return keys, errs
		}
		i := ready[rnd.IntN(len(ready))]
		waiting[i] = false
		s.turn[i] <- struct{}{}
	}
}

// scheduler lets one start at a time take a step: a start says on at that
// it waits at a step (its index) or has returned (-1), and goes on when
// its turn channel is sent on.
type scheduler struct {
	at   chan int
	turn []chan struct{}
}

// stepFS is one start's keyFS: each operation waits for the start's turn,
// and is then done on the system's files (but for syncs, which change no
// name or content: the order of the operations is what is tested, and
// syncs would make the test long).
type stepFS struct {
	s *scheduler
	i int
}

func (f stepFS) step() {
	f.s.at <- f.i
	<-f.s.turn[f.i]
}

func (f stepFS) readFile(path string) ([]byte, error) { f.step(); return os.ReadFile(path) }
func (f stepFS) link(o, n string) error               { f.step(); return os.Link(o, n) }
func (f stepFS) rename(o, n string) error             { f.step(); return os.Rename(o, n) }
func (f stepFS) remove(path string) error             { f.step(); return os.Remove(path) }
func (f stepFS) mkdirAll(dir string) error            { f.step(); return os.MkdirAll(dir, 0o700) }
func (f stepFS) syncDir(string)                       { f.step() }

func (f stepFS) writeTemp(dir, pattern string, b []byte) (string, error) {
	f.step()
	t, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", err
	}
	_, err = t.Write(b)
	if cerr := t.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(t.Name())
		return "", err
	}
	return t.Name(), nil
}
