package shell

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/openmpns/openmpns/emulator/apps"
	"github.com/openmpns/openmpns/emulator/images"
	"github.com/openmpns/openmpns/emulator/phone"
	"github.com/openmpns/openmpns/server"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// rig is an emulator on fyne's test driver, wired as cmd/openmpns-emulator
// wires it: a real server on loopback, the built-in apps, a phone, the
// shell, its content in a window of the size the emulator opens at.
type rig struct {
	Shell  *Shell
	Dev    *Device // the first phone's
	Window fyne.Window
	// addPhone adds another phone on the same server.
	addPhone func() *Device
}

// newRig starts a rig with the built-in apps; auto answers every opt-in
// prompt (nil: ask).
func newRig(t testing.TB, auto *bool) *rig {
	t.Helper()
	man, err := apps.Default()
	if err != nil {
		t.Fatal(err)
	}
	return newRigWith(t, man, auto, "")
}

// newRigWithBackend starts a rig with the built-in apps whose {backend}
// is backend (the Photos app takes its images from there).
func newRigWithBackend(t testing.TB, auto *bool, backend string) *rig {
	t.Helper()
	man, err := apps.Default()
	if err != nil {
		t.Fatal(err)
	}
	man.ResolveBackend(backend)
	return newRigWith(t, man, auto, backend)
}

// newRigWith starts a rig with the apps of man, whose {backend} is backend.
func newRigWith(t testing.TB, man *apps.Manifest, auto *bool, backend string) *rig {
	t.Helper()
	a := test.NewApp()
	t.Cleanup(a.Quit)
	srv, err := server.New(server.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	loader := images.NewLoader(images.Config{})
	w := test.NewWindow(nil)
	sh := New(a, w.Clipboard(), man, loader)
	var phones []*phone.Phone
	add := func() *Device {
		d := sh.AddDevice(fmt.Sprintf("phone %d", len(phones)+1))
		ph, err := phone.New(phone.Config{Server: srv.URL(), StateDir: t.TempDir(), Apps: phone.FromManifest(man, backend),
			AutoConsent: auto, OnChange: d.Handle, Logger: quiet,
			Prefetch: func(ctx context.Context, ref string, domains []string) error {
				_, err := loader.Fetch(ctx, ref, domains, nil)
				return err
			}})
		if err != nil {
			t.Fatal(err)
		}
		d.Attach(ph)
		phones = append(phones, ph)
		return d
	}
	d := add()
	sh.Update(func() {
		w.SetContent(sh.Content())
		w.SetPadded(false)
		w.Resize(sh.WindowSize())
	})
	t.Cleanup(func() {
		sh.Close()
		for _, ph := range phones {
			ph.Close()
		}
		w.Close()
	})
	return &rig{Shell: sh, Dev: d, Window: w, addPhone: add}
}
