// Package shell is the emulator's controller: it wires the phone models
// (emulator/phone) to the views (emulator/ui), the start screens' live
// tiles to their images, the toast queues to the banners, the inspector's
// composer to the real MPNS HTTP API. A window shows one phone or several
// side by side (a Device each, with its own handset and screens) and one
// inspector that lists what every phone received. What the program starts
// (an embedded server, the phones, the window, the clock) is
// cmd/openmpns-emulator's run.
//
// Threading: the phones report changes from any goroutine; Device.Handle
// queues them and the shell applies them on fyne's UI goroutine (fyne.Do)
// under its UI lock. Everything that touches the views holds that lock:
// fyne's test driver runs fyne.Do on the calling goroutine, so the lock is
// what keeps tests race-free; under the real driver it is never contended.
package shell

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/widget"

	"github.com/openmpns/openmpns/emulator/apps"
	"github.com/openmpns/openmpns/emulator/images"
	"github.com/openmpns/openmpns/emulator/phone"
	"github.com/openmpns/openmpns/emulator/ui"
	"github.com/openmpns/openmpns/emulator/ui/controls"
	"github.com/openmpns/openmpns/emulator/ui/inspector"
	"github.com/openmpns/openmpns/shared/sender"
)

// Shell is the emulator window's controller: the phones (Devices) side by
// side and the inspector beside them.
type Shell struct {
	app    fyne.App
	clip   fyne.Clipboard
	man    *apps.Manifest
	loader *images.Loader
	ctx    context.Context
	cancel context.CancelFunc
	// bg counts the shell's own goroutines (composer sends, battery saver,
	// reset), which Close waits for.
	bg sync.WaitGroup

	// OnAddPhone, if set, is called when the user pressed "add phone"; the
	// program makes a phone and adds it with AddDevice and Attach. It runs
	// on the UI goroutine without the UI lock.
	OnAddPhone func()

	// uiMu is held while the views are touched; queue holds changes not yet
	// applied (qmu guards it).
	uiMu  sync.Mutex
	qmu   sync.Mutex
	queue []change

	// UI-goroutine state.
	devices   []*Device
	inspector *inspector.Inspector
	phones    *fyne.Container // the handsets, side by side
	addPhone  *widget.Button
	icons     map[string]fyne.Resource
	lockIcons map[string]fyne.Resource
	content   fyne.CanvasObject
}

// change is a phone's change report and the device it came from.
type change struct {
	d *Device
	c phone.Change
}

// New builds the window's views with no phone yet: AddDevice adds one.
func New(a fyne.App, clip fyne.Clipboard, man *apps.Manifest, loader *images.Loader) *Shell {
	s := &Shell{app: a, clip: clip, man: man, loader: loader,
		icons: map[string]fyne.Resource{}, lockIcons: map[string]fyne.Resource{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	for _, ap := range man.Apps {
		if b, err := ap.IconData(); err == nil {
			s.icons[ap.ID] = fyne.NewStaticResource(ap.ID+".png", b)
		}
		if b, err := ap.LockIconData(); err == nil {
			s.lockIcons[ap.ID] = fyne.NewStaticResource(ap.ID+"-lock.png", b)
		}
	}
	s.inspector = inspector.NewInspector()
	s.inspector.OnSend = s.compose
	s.phones = container.New(&sideBySide{})
	s.addPhone = widget.NewButton("add phone", func() {
		if s.OnAddPhone != nil {
			s.OnAddPhone()
		}
	})
	// The phones take the room the inspector leaves and grow into it.
	s.content = container.NewBorder(nil, nil, nil,
		container.NewBorder(nil, container.NewHBox(layout.NewSpacer(), s.addPhone), nil, nil, s.inspector), s.phones)
	return s
}

// AddDevice adds a phone's views, named name ("phone 2"), beside the
// others; attach its phone with Device.Attach, whose Config.OnChange is
// Device.Handle. Call it on the UI goroutine without the UI lock.
func (s *Shell) AddDevice(name string) *Device {
	d := newDevice(s, name)
	s.Update(func() {
		s.devices = append(s.devices, d)
		s.phones.Add(d.themed)
	})
	return d
}

// Devices returns the phones in the window, in order.
func (s *Shell) Devices() []*Device { return s.devices }

// first is the first phone, whose theme the window takes.
func (s *Shell) first() *Device {
	if len(s.devices) == 0 {
		return nil
	}
	return s.devices[0]
}

// Content is the window's content: the phones and the inspector beside
// them.
func (s *Shell) Content() fyne.CanvasObject { return s.content }

// WindowSize is the size the window opens at: the phones at scale 1 side
// by side beside the inspector (the content's minimum is the phones at
// controls.MinScale). Call it on the UI goroutine.
func (s *Shell) WindowSize() fyne.Size {
	m := s.content.MinSize()
	var w, h float32
	for _, d := range s.devices {
		b := d.view.BodySize()
		w, h = w+b.Width, max(h, b.Height)
	}
	return fyne.NewSize(m.Width+w*(1-controls.MinScale), max(m.Height, h))
}

// enqueue queues a change of d's phone and has the UI goroutine apply it.
// Reports that arrive after Close are dropped.
func (s *Shell) enqueue(d *Device, c phone.Change) {
	if s.ctx.Err() != nil {
		return
	}
	s.qmu.Lock()
	s.queue = append(s.queue, change{d, c})
	s.qmu.Unlock()
	fyne.Do(s.drain)
}

// drain applies queued changes unless someone holds the UI lock, in which
// case that holder applies them before it lets go (see Update).
func (s *Shell) drain() {
	if !s.uiMu.TryLock() {
		return
	}
	s.drainLocked()
	s.uiMu.Unlock()
	if s.pending() {
		fyne.Do(s.drain)
	}
}

func (s *Shell) pending() bool {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	return len(s.queue) > 0
}

func (s *Shell) drainLocked() {
	for {
		s.qmu.Lock()
		if len(s.queue) == 0 {
			s.qmu.Unlock()
			return
		}
		c := s.queue[0]
		s.queue = s.queue[1:]
		s.qmu.Unlock()
		c.d.apply(c.c)
	}
}

// Update runs f with the UI lock held, then applies the changes f caused.
// Use it on the UI goroutine (inside fyne.Do from other goroutines) for
// anything that touches the views from outside an event callback (timers,
// tests).
func (s *Shell) Update(f func()) {
	func() {
		s.uiMu.Lock()
		defer s.uiMu.Unlock()
		f()
		s.drainLocked()
	}()
	// A change queued after drainLocked looked, whose drain found the lock
	// taken, would otherwise wait for the next one.
	if s.pending() {
		fyne.Do(s.drain)
	}
}

// Tick moves the clocks of the status bars and lock screens, and the live
// tiles; call it about once a second on the UI goroutine.
func (s *Shell) Tick(now time.Time) {
	for _, d := range s.devices {
		d.Tick(now)
	}
}

// Power presses the power button of the first phone (the F12 key).
func (s *Shell) Power() {
	if d := s.first(); d != nil {
		d.Power()
	}
}

// several reports whether the window shows more than one phone: the
// inspector then says which phone each notification reached, and the
// composer offers each phone and all of them.
func (s *Shell) several() bool { return len(s.devices) > 1 }

// targetID is the composer's id of an app on phone d, or on every phone
// when d is nil: "1/com.example.news", "*/com.example.news".
func (s *Shell) targetID(d *Device, app string) string {
	if d == nil {
		return "*/" + app
	}
	for i, x := range s.devices {
		if x == d {
			return strconv.Itoa(i) + "/" + app
		}
	}
	return app
}

// refreshApps offers the composer every app with a push channel: with
// several phones, on each phone and on every phone.
func (s *Shell) refreshApps() {
	d := s.first()
	if d == nil || d.Phone() == nil {
		return
	}
	var targets []ui.App
	for _, a := range d.Phone().Apps() {
		if a.Channel == "" {
			continue
		}
		if !s.several() {
			targets = append(targets, ui.App{ID: s.targetID(d, a.ID), Name: a.Name, Icon: s.icons[a.ID]})
			continue
		}
		for _, x := range s.devices {
			targets = append(targets, ui.App{ID: s.targetID(x, a.ID), Name: a.Name + " on " + x.name, Icon: s.icons[a.ID]})
		}
		targets = append(targets, ui.App{ID: s.targetID(nil, a.ID), Name: a.Name + " on every phone", Icon: s.icons[a.ID]})
	}
	s.inspector.SetApps(targets)
}

// refreshInspector lists every phone's notifications, oldest first; with
// several phones each says which phone received it ("2 · News").
func (s *Shell) refreshInspector() {
	names := map[string]string{}
	for _, a := range s.man.Apps {
		names[a.ID] = a.Name
	}
	var ns []inspector.Notification
	for _, d := range s.devices {
		p := d.Phone()
		if p == nil {
			continue
		}
		for _, e := range p.Inspector() {
			n := inspector.Notification(e)
			if name, ok := names[e.App]; ok {
				n.App = name
			}
			if s.several() {
				// The phone first: the list's app column is narrow.
				n.App = strings.TrimPrefix(d.name, "phone ") + " · " + n.App
			}
			ns = append(ns, n)
		}
	}
	if s.several() {
		sortByTime(ns)
	}
	s.inspector.SetNotifications(ns)
}

// compose sends the inspector's notification through the HTTP API, to one
// phone's app or to that app on every phone.
func (s *Shell) compose(r inspector.ComposeRequest) {
	to, app := s.devices, r.App
	if i, a, ok := strings.Cut(r.App, "/"); ok {
		app = a
		if n, err := strconv.Atoi(i); err == nil && n >= 0 && n < len(s.devices) {
			to = s.devices[n : n+1]
		}
	}
	var phones []*phone.Phone
	var names []string
	for _, d := range to {
		if p := d.Phone(); p != nil {
			phones, names = append(phones, p), append(names, d.name)
		}
	}
	req := sender.Request{Kind: r.Kind, Class: r.Class(), MessageID: r.MessageID, Body: r.Body()}
	s.bg.Go(func() {
		ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
		defer cancel()
		var results []result
		for i, p := range phones {
			resp, err := p.Compose(ctx, app, req)
			results = append(results, result{names[i], resp, err})
		}
		fyne.Do(func() { s.Update(func() { s.showResults(results) }) })
	})
}

// result is the answer to one phone's send.
type result struct {
	phone string
	resp  *sender.Response
	err   error
}

// showResults shows the service's answer; with several phones, each
// phone's status line and the headers of the last.
func (s *Shell) showResults(rs []result) {
	if len(rs) == 0 {
		s.inspector.SetResult("not sent: no phone", nil)
		return
	}
	var lines []string
	var h map[string]string
	for _, r := range rs {
		line, headers := describe(r.resp, r.err)
		if len(rs) > 1 {
			line = r.phone + ": " + line
		}
		lines = append(lines, line)
		if headers != nil {
			h = headers
		}
	}
	s.inspector.SetResult(strings.Join(lines, "\n"), h)
}

// describe is the status line and headers of a response.
func describe(resp *sender.Response, err error) (string, map[string]string) {
	if err != nil {
		return "not sent: " + err.Error(), nil
	}
	h := map[string]string{}
	for k, v := range map[string]string{
		"X-NotificationStatus":     resp.NotificationStatus,
		"X-SubscriptionStatus":     resp.SubscriptionStatus,
		"X-DeviceConnectionStatus": resp.DeviceConnectionStatus,
		"X-MessageID":              resp.MessageID,
		"X-OpenMPNS-Error":         resp.Reason,
	} {
		if v != "" {
			h[k] = v
		}
	}
	return fmt.Sprintf("HTTP %d %s", resp.StatusCode, resp.NotificationStatus), h
}

// Halt makes the shell drop the phones' change reports from now on, as
// Close does, without waiting: call it when the window's event loop stops.
func (s *Shell) Halt() { s.cancel() }

// Close stops the shell's background work (image fetches, toast timers,
// composer sends) and waits for its goroutines; changes reported after it
// are dropped. Call it after the window's event loop has ended.
func (s *Shell) Close() {
	s.cancel()
	s.bg.Wait()
	// A drain that started before cancel finishes before Close returns.
	s.uiMu.Lock()
	defer s.uiMu.Unlock()
	for _, d := range s.devices {
		d.stop()
	}
}
