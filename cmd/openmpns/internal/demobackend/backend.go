// Package demobackend is the cloud service of the demo apps: it takes the
// Channel URI handoffs of the emulated phones and pushes realistic toasts and
// tile updates to them through the MPNS HTTP API, as a 2013 news, photo or
// mail service did. It also serves the images its tiles point to.
package demobackend

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/openmpns/openmpns/shared/payload"
	"github.com/openmpns/openmpns/shared/sender"
)

// Registration is one app's latest Channel URI on one device. Its JSON
// form (GET /registrations) leaves out the Channel URI, a capability.
type Registration struct {
	DeviceID string `json:"device_id"`
	App      string `json:"app"`
	Channel  string `json:"channel"`
	// URI is the Channel URI; it is never listed.
	URI string `json:"-"`
	// Kind is which script feeds it: news, photos or mail.
	Kind string `json:"kind"`
	// Sent counts pushes; LastStatus is the last answer as "200 Received/Active/Connected".
	Sent int `json:"sent"`
	// Failures counts pushes in a row that could not reach the service.
	Failures   int       `json:"failures,omitempty"`
	LastStatus string    `json:"last_status,omitempty"`
	Updated    time.Time `json:"updated"`
}

// Defaults and limits of the handoff endpoint.
const (
	// DefaultMaxRegistrations is how many (device, app) registrations the
	// backend holds when Backend.MaxRegistrations is 0.
	DefaultMaxRegistrations = 256
	// MaxHandoffBytes is the largest handoff body accepted.
	MaxHandoffBytes = 4 << 10
	// maxFieldLen bounds device_id, app, channel, secret and device_key.
	maxFieldLen = 256
)

// Backend is the demo cloud service.
type Backend struct {
	// Images, if set, is served under /images/ for the photo tiles.
	Images fs.FS
	// Base is the backend's own origin (http://host:port), used in image URLs.
	Base   string
	Sender *sender.Client
	Log    *slog.Logger
	// Out receives one human-readable line per handoff and push; may be nil.
	Out io.Writer
	// PushServers are the origins of the push servers the backend pairs
	// with, as ParseOrigin returns them ("http://127.0.0.1:8080"): a
	// handoff's Channel URI must be on one of them, so that nobody can
	// make the backend POST anywhere else. None refuses every handoff.
	PushServers []string
	// Secrets maps an app id to its handoff secret (the manifest's
	// handoff_secret): a handoff must carry its app's secret. An app
	// without one cannot hand off.
	Secrets map[string]string
	// MaxRegistrations caps the registrations held; 0 means
	// DefaultMaxRegistrations.
	MaxRegistrations int

	mu   sync.Mutex
	regs map[string]*Registration // by device + "/" + app
	// pins holds the SHA-256 of the device key each device's app first
	// handed off with, by regs' key: a later handoff must present the same
	// key. A pin outlives its registration: once one is forgotten (its
	// push service unreachable), a stranger who learned the device id
	// must not take its place and lock the phone out (a 409 to the phone's
	// next handoff). pinOrder is their order of creation; past four times
	// the registrations' cap the oldest not held are forgotten.
	pins     map[string][sha256.Size]byte
	pinOrder []string
	step     int
	outMu    sync.Mutex
}

// maxFailures is how many rounds in a row a registration may fail to reach
// its push service before it is forgotten.
const maxFailures = 3

// Kinds are the scripts the backend knows, matched against the handoff path
// (/handoff/news) or, failing that, the app id.
var Kinds = []string{"news", "photos", "mail"}

// Handler serves POST /handoff[/kind], GET /registrations and GET /images/.
func (b *Backend) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/handoff", b.handoff)
	mux.HandleFunc("/handoff/", b.handoff)
	mux.HandleFunc("/registrations", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(b.Registrations())
	})
	if b.Images != nil {
		mux.Handle("/images/", http.StripPrefix("/images/", http.FileServerFS(b.Images)))
	}
	return mux
}

// handoffRequest is the body of POST /handoff (device.HandoffRecord).
type handoffRequest struct {
	DeviceID  string `json:"device_id"`
	App       string `json:"app"`
	Channel   string `json:"channel"`
	URI       string `json:"uri"`
	Secret    string `json:"secret"`
	DeviceKey string `json:"device_key"`
}

// handoff takes a Channel URI. The checks run in this order, so that a
// stranger learns nothing but "refused": the request's form (POST, JSON,
// size), the app's secret, then the Channel URI, the script, the device key
// and the cap.
func (b *Backend) handoff(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST the Channel URI as JSON", http.StatusMethodNotAllowed)
		return
	}
	// Only application/json: a web page cannot send it to another origin
	// without a CORS preflight, which this backend never answers.
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		http.Error(w, "Content-Type must be application/json", http.StatusUnsupportedMediaType)
		return
	}
	var req handoffRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxHandoffBytes))
	if err := dec.Decode(&req); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			http.Error(w, fmt.Sprintf("the handoff is over %d bytes", MaxHandoffBytes), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "bad JSON: "+err.Error(), http.StatusBadRequest)
		return
	}
	if dec.More() {
		http.Error(w, "bad JSON: one object only", http.StatusBadRequest)
		return
	}
	for _, f := range []string{req.DeviceID, req.App, req.Channel, req.Secret, req.DeviceKey} {
		if len(f) > maxFieldLen {
			http.Error(w, fmt.Sprintf("a field is over %d bytes", maxFieldLen), http.StatusBadRequest)
			return
		}
	}
	if req.DeviceID == "" || req.App == "" || req.URI == "" {
		http.Error(w, "device_id, app and uri are required", http.StatusBadRequest)
		return
	}
	if !printable(req.DeviceID) || !printable(req.App) || req.Channel != "" && !printable(req.Channel) {
		http.Error(w, "device_id, app and channel must be printable ASCII without spaces", http.StatusBadRequest)
		return
	}
	if !b.secretOK(req.App, req.Secret) {
		// The same answer for an unknown app and a wrong secret.
		http.Error(w, "the app's handoff secret is required", http.StatusUnauthorized)
		return
	}
	if err := CheckChannelURI(req.URI, b.PushServers); err != nil {
		http.Error(w, err.Error(), http.StatusUnprocessableEntity)
		return
	}
	kind := kindOf(strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/handoff"), "/"), req.App)
	if kind == "" {
		http.Error(w, fmt.Sprintf("no demo script for app %q: use /handoff/news, /handoff/photos or /handoff/mail", req.App), http.StatusUnprocessableEntity)
		return
	}
	if req.DeviceKey == "" {
		http.Error(w, "device_key is required: a secret of the device, the same at every handoff", http.StatusBadRequest)
		return
	}
	keyHash := sha256.Sum256([]byte(req.DeviceKey))
	reg := &Registration{DeviceID: req.DeviceID, App: req.App, Channel: req.Channel, URI: req.URI,
		Kind: kind, Updated: time.Now()}
	key := req.DeviceID + "/" + req.App
	limit := b.MaxRegistrations
	if limit <= 0 {
		limit = DefaultMaxRegistrations
	}
	b.mu.Lock()
	if b.regs == nil {
		b.regs = map[string]*Registration{}
	}
	old := b.regs[key]
	pin, pinned := b.pins[key]
	switch {
	case pinned && subtle.ConstantTimeCompare(pin[:], keyHash[:]) != 1:
		b.mu.Unlock()
		http.Error(w, "this device's app is registered with another device key", http.StatusConflict)
		return
	case old == nil && len(b.regs) >= limit:
		b.mu.Unlock()
		w.Header().Set("Retry-After", "60")
		http.Error(w, fmt.Sprintf("the backend holds its maximum of %d registrations (--max-registrations)", limit), http.StatusServiceUnavailable)
		return
	case old != nil:
		reg.Sent = old.Sent
	}
	b.regs[key] = reg // the latest URI of the device's app wins
	if !pinned {
		b.pin(key, keyHash, limit)
	}
	b.mu.Unlock()
	b.say("handoff: %s on device %.8s (%s script)", reg.App, reg.DeviceID, reg.Kind)
	w.WriteHeader(http.StatusCreated)
}

// secretOK reports whether secret is app's handoff secret, in constant time
// for apps that have one.
func (b *Backend) secretOK(app, secret string) bool {
	want, ok := b.Secrets[app]
	if !ok || want == "" {
		return false
	}
	w, s := sha256.Sum256([]byte(want)), sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(w[:], s[:]) == 1
}

// printable reports whether s is printable ASCII without spaces, as the
// wire protocol wants ids and names (and as is safe to print).
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// pin remembers key's device key, forgetting the oldest pins past four
// times the registrations' cap. b.mu is held.
func (b *Backend) pin(key string, keyHash [sha256.Size]byte, limit int) {
	if b.pins == nil {
		b.pins = map[string][sha256.Size]byte{}
	}
	for range len(b.pinOrder) { // each pin looked at once at most
		if len(b.pins) < 4*limit {
			break
		}
		oldest := b.pinOrder[0]
		b.pinOrder = b.pinOrder[1:]
		if _, held := b.regs[oldest]; held {
			b.pinOrder = append(b.pinOrder, oldest) // a held registration keeps its pin
			continue
		}
		delete(b.pins, oldest)
	}
	b.pins[key] = keyHash
	b.pinOrder = append(b.pinOrder, key)
}

// forget deletes r, unless a newer handoff has replaced it; its device
// key stays pinned. b.mu is held.
func (b *Backend) forget(r *Registration) {
	key := r.DeviceID + "/" + r.App
	if b.regs[key] == r {
		delete(b.regs, key)
	}
}

func kindOf(path, app string) string {
	for _, k := range Kinds {
		if path == k {
			return k
		}
	}
	for _, k := range Kinds {
		if strings.Contains(strings.ToLower(app), k) {
			return k
		}
	}
	return ""
}

// Registrations returns the current registrations, sorted.
func (b *Backend) Registrations() []Registration {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Registration, 0, len(b.regs))
	for _, r := range b.regs {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].DeviceID+out[i].App < out[j].DeviceID+out[j].App })
	return out
}

func (b *Backend) say(format string, a ...any) {
	if b.Out == nil {
		return
	}
	b.outMu.Lock()
	defer b.outMu.Unlock()
	fmt.Fprintf(b.Out, time.Now().Format("15:04:05 ")+format+"\n", a...)
}

// Run pushes one round every interval until ctx ends.
func (b *Backend) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			b.Round(ctx)
		}
	}
}

// Round sends every registration its next notifications and returns how
// many pushes were answered 200 Received.
func (b *Backend) Round(ctx context.Context) int {
	b.mu.Lock()
	step := b.step
	b.step++
	regs := make([]*Registration, 0, len(b.regs))
	for _, r := range b.regs {
		regs = append(regs, r)
	}
	b.mu.Unlock()
	received := 0
	for _, r := range regs {
		for _, req := range b.script(r, step) {
			req.URI = r.URI
			req.MessageID = sender.NewMessageID()
			resp, err := b.Sender.Send(ctx, req)
			if err != nil {
				b.say("push to %s on device %.8s failed: %v", r.App, r.DeviceID, err)
				b.mu.Lock()
				r.Failures++
				if r.Failures >= maxFailures {
					// The push service is gone (the phone's server moved or
					// stopped); wait for a new handoff.
					b.forget(r)
					b.say("forgetting %s on device %.8s after %d failed pushes", r.App, r.DeviceID, r.Failures)
				}
				b.mu.Unlock()
				break
			}
			status := fmt.Sprintf("%d %s/%s/%s", resp.StatusCode, resp.NotificationStatus, resp.SubscriptionStatus, resp.DeviceConnectionStatus)
			b.say("push %s %s to %s on device %.8s: %s", r.Kind, req.Kind, r.App, r.DeviceID, status)
			b.mu.Lock()
			r.Sent++
			r.Failures = 0
			r.LastStatus = status
			if resp.ShouldStop() {
				// The subscription is gone: forget it, as MPNS asks.
				b.forget(r)
			}
			b.mu.Unlock()
			if resp.Delivered() {
				received++
			}
			if resp.ShouldStop() {
				break
			}
		}
	}
	return received
}

var headlines = []struct{ title, body string }{
	{"Go 2 released", "Generics were only the beginning"},
	{"MPNS is back", "Push notifications return to the desktop"},
	{"Rain tomorrow", "Take an umbrella to the office"},
	{"Local team wins", "A last-minute goal seals the cup"},
	{"Markets calm", "Tech stocks end the week flat"},
}

var mails = []struct{ from, subject string }{
	{"Alice Smith", "Lunch at noon?"},
	{"Bob Jones", "The build is green again"},
	{"Carol White", "Slides for Monday"},
	{"Dave Brown", "Re: tile colours"},
}

// script returns the pushes of one round for a registration.
func (b *Backend) script(r *Registration, step int) []sender.Request {
	var out []sender.Request
	add := func(req sender.Request, err error) {
		if err == nil {
			out = append(out, req)
		} else {
			b.Log.Error("demo payload", "err", err)
		}
	}
	switch r.Kind {
	case "news":
		h := headlines[step%len(headlines)]
		add(sender.NewTile("", &payload.Tile{Template: payload.TemplateFlip, Fields: map[string]string{
			payload.Title: "News", payload.Count: fmt.Sprint(step%9 + 1),
			payload.BackTitle: "Top story", payload.BackContent: h.title,
			payload.WideBackContent: h.title + ": " + h.body,
		}}, sender.Immediate))
		if step%2 == 0 {
			add(sender.NewToast("", &payload.Toast{Text1: h.title, Text2: h.body, Param: fmt.Sprintf("/Story.xaml?id=%d", step)}, sender.Immediate))
		}
	case "photos":
		fields := map[string]string{payload.Title: "Photos", payload.Count: fmt.Sprint(step%5 + 1)}
		for i := 1; i <= 4; i++ {
			fields[payload.CycleImage(i)] = fmt.Sprintf("%s/images/photo%d.png", b.Base, (step+i)%4+1)
		}
		add(sender.NewTile("", &payload.Tile{Template: payload.TemplateCycle, Fields: fields}, sender.Immediate))
	case "mail":
		m := mails[step%len(mails)]
		unread := step%12 + 1
		add(sender.NewTile("", &payload.Tile{Template: payload.TemplateIconic, Fields: map[string]string{
			payload.Title: "Mail", payload.Count: fmt.Sprint(unread),
			payload.WideContent1: m.from, payload.WideContent2: m.subject, payload.WideContent3: fmt.Sprintf("%d unread", unread),
		}}, sender.Immediate))
		add(sender.NewToast("", &payload.Toast{Text1: m.from, Text2: m.subject, Param: "/Inbox.xaml"}, sender.Immediate))
	}
	return out
}
