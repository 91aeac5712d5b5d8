package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/shared/payload"
)

// jsonLines writes one JSON object per line, safely from many goroutines.
type jsonLines struct {
	mu sync.Mutex
	w  io.Writer
}

func (j *jsonLines) emit(v map[string]any) {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(fmt.Sprintf(`{"event":"error","type":"Unknown","message":%q}`, err.Error()))
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.w.Write(append(b, '\n'))
}

// defaultStateDir is where `openmpns device` keeps app's device state
// unless --state says otherwise: one directory per app, so that devices
// started for two apps are two phones with identities of their own.
func defaultStateDir(app string) string {
	base := ".openmpns-device"
	if dir, err := os.UserConfigDir(); err == nil {
		base = filepath.Join(dir, "openmpns", "device")
	}
	if app == "" {
		return base
	}
	return filepath.Join(base, url.PathEscape(app))
}

func runDevice(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "device", "--app APP [--server URL] [--channel NAME] [--service NAME] [--state DIR] [--toast] [--tile] [--foreground | --not-running] [--handoff URL [--handoff-secret S | --handoff-manifest FILE]] [--log-level L]")
	srvURL := fs.String("server", "http://127.0.0.1:8080", "OpenMPNS server base URL; several, comma-separated (the nodes of a cluster), are tried in turn when the connection is lost")
	app := fs.String("app", "", "app id whose channel to open, e.g. com.example.news (required)")
	chName := fs.String("channel", "main", "channel name (HttpNotificationChannel name)")
	service := fs.String("service", "", "service name for an authenticated channel")
	state := fs.String("state", "", "state directory: device identity, channels, recent notification ids; one device at a time uses it (default: per app, "+defaultStateDir("APP")+")")
	toast := fs.Bool("toast", false, "bind the channel to toast (BindToShellToast)")
	tile := fs.Bool("tile", false, "bind the channel to tile (BindToShellTile)")
	domains := fs.String("domains", "", "comma-separated remote image domains allowed on tiles (with --tile)")
	fg := fs.Bool("foreground", false, "the app is in the foreground: toasts go to the app, not the shell")
	notRunning := fs.Bool("not-running", false, "the app is not running: raw notifications are dropped")
	power := fs.String("power", "normal", "power level: normal, low (raw only) or critically_low (nothing)")
	hf := addHandoffFlags(fs, "the app")
	logLevel := fs.String("log-level", "warn", "log level on stderr: debug, info, warn, error")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *app == "" {
		fmt.Fprintln(e.stderr, "openmpns device: --app is required")
		fs.Usage()
		return errUsage
	}
	if *fg && *notRunning {
		return badUsage("--foreground and --not-running contradict each other")
	}
	switch device.PowerLevel(*power) {
	case device.PowerNormal, device.PowerLow, device.PowerCriticallyLow:
	default:
		// Before anything is made: the state directory, a connection.
		return badUsage("--power %q: want normal, low or critically_low", *power)
	}
	log, err := newLogger(e.stderr, *logLevel, "text")
	if err != nil {
		return &usageError{err}
	}
	ho, err := hf.plan([]string{*app})
	if err != nil {
		return err
	}
	if *state == "" {
		*state = defaultStateDir(*app)
	}
	unlock, err := lockStateDir(*state, "device")
	if err != nil {
		return err
	}
	defer unlock()
	// The device key of every handoff comes from the handoff key kept with
	// the device's state, as the emulator's phones keep theirs.
	var hkey device.HandoffKey
	keyFile := filepath.Join(*state, device.HandoffKeyFile)
	if ho.url != "" {
		if hkey, err = device.LoadHandoffKey(*state); err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "openmpns device: %s\n", ho.describe("a device key from "+keyFile))
	}
	out := &jsonLines{w: e.stdout}
	var dev *device.Device
	var hoWG sync.WaitGroup
	hctx, hcancel := context.WithCancel(ctx)
	defer func() { hcancel(); hoWG.Wait() }()
	// handOff posts uri to the app's cloud service, once per URI in this
	// run: at start (a backend may have forgotten the device, as the demo
	// backend does when it restarts) and whenever it changes, as the
	// emulator's phones do.
	var hoMu sync.Mutex
	handedOff := map[string]string{} // app → the URI last handed off
	handOff := func(a, ch, uri string) {
		if ho.url == "" || uri == "" {
			return
		}
		hoMu.Lock()
		done := handedOff[a] == uri
		handedOff[a] = uri
		hoMu.Unlock()
		if done {
			return
		}
		rec := device.HandoffRecord{DeviceID: dev.ID(), App: a, Channel: ch, URI: uri,
			Secret: ho.secrets[a], DeviceKey: hkey.DeviceKey(dev.ID(), a)}
		hoWG.Add(1)
		go func() {
			defer hoWG.Done()
			h := &device.Handoff{URL: ho.url}
			status, err := h.Send(hctx, rec, func(n, status int, err error) {
				if err != nil {
					out.emit(map[string]any{"event": "handoff", "url": ho.url, "attempt": n, "status": status, "error": err.Error()})
				}
			})
			ev := map[string]any{"event": "handoff", "url": ho.url, "app": a, "uri": uri, "status": status}
			switch {
			case err == nil:
				fmt.Fprintf(e.stderr, "openmpns device: %s took %s's Channel URI (%d)\n", ho.url, a, status)
			case hctx.Err() != nil:
				ev["error"] = err.Error()
			default:
				ev["error"] = err.Error()
				msg := err.Error()
				if hint := ho.refusalHint(err, keyFile); hint != "" {
					msg += "; " + hint
				}
				fmt.Fprintf(e.stderr, "openmpns device: %s: %s\n", a, msg)
			}
			out.emit(ev)
		}()
	}
	onURI := func(a, ch, uri string) {
		out.emit(map[string]any{"event": "channel_uri", "app": a, "channel": ch, "uri": uri})
		handOff(a, ch, uri)
	}
	emitError := func(err *device.ChannelError) {
		out.emit(map[string]any{"event": "error", "type": string(err.Type), "app": err.App, "message": err.Message})
	}
	// The device's own events (the connection, device-level errors) and
	// the shell's (toasts it shows, tiles); the app's are on its channel.
	// The Channel URI is watched here too: a channel saved from an earlier
	// run is re-opened as soon as the device connects, which may be before
	// the app has found it and set its events.
	failures := 0
	h := device.Handlers{
		ChannelURIUpdated: onURI,
		ConnectionStatusChanged: func(s device.ConnectionStatus) {
			if s == device.Connected {
				failures = 0
			}
			out.emit(map[string]any{"event": "connection", "status": string(s)})
		},
		ConnectFailed: func(err error, retryIn time.Duration) {
			failures++
			out.emit(map[string]any{"event": "connect_failed", "attempt": failures, "error": err.Error(), "retry_in_ms": retryIn.Milliseconds()})
			if failures == 1 || failures&(failures-1) == 0 {
				fmt.Fprintf(e.stderr, "openmpns device: cannot reach %s (%s); retrying in %v\n", *srvURL, trimPrefix(err.Error(), "device"), retryIn.Round(time.Millisecond))
			}
		},
		Error: func(err *device.ChannelError) {
			if err.App == "" {
				emitError(err)
			}
		},
		ShellToast: func(m device.Meta, t *payload.Toast) { out.emit(toastEvent(m, t, false)) },
		Tile: func(m device.Meta, t *payload.Tile, _ []string) {
			fields := t.Fields
			if fields == nil {
				fields = map[string]string{}
			}
			cleared := t.Cleared
			if cleared == nil {
				cleared = []string{}
			}
			out.emit(map[string]any{"event": "tile", "app": m.App, "id": m.ID, "tile_id": t.ID, "template": t.Template.String(),
				"fields": fields, "cleared": cleared, "latency_ms": latencyMS(m)})
		},
		RawDropped: func(m device.Meta) {
			out.emit(map[string]any{"event": "raw_dropped", "app": m.App, "id": m.ID, "reason": "the app is not running"})
		},
	}
	dev, err = device.New(device.Config{Servers: splitList(*srvURL), StateDir: *state, Handlers: h, Logger: log})
	if err != nil {
		return err
	}
	defer dev.Close()
	dev.SetAppState(*app, device.AppState{Running: !*notRunning, Foreground: *fg})
	fmt.Fprintf(e.stderr, "openmpns device: state in %s, connecting to %s\n", *state, *srvURL)
	if p := device.PowerLevel(*power); p != device.PowerNormal || dev.PowerLevel() != device.PowerNormal {
		if err := dev.SetPowerLevel(ctx, p); err != nil {
			return err
		}
	}
	ch := dev.Find(*app, *chName)
	if ch == nil {
		ch = dev.NewChannel(*app, *chName, *service)
	}
	// The app's events, as an app gets them from its HttpNotificationChannel.
	ch.SetEvents(device.ChannelEvents{
		HTTPNotificationReceived: func(m device.Meta, b []byte) {
			out.emit(map[string]any{"event": "raw", "app": m.App, "id": m.ID, "data_base64": base64.StdEncoding.EncodeToString(b), "latency_ms": latencyMS(m)})
		},
		ShellToastNotificationReceived: func(m device.Meta, t *payload.Toast) { out.emit(toastEvent(m, t, true)) },
		ErrorOccurred:                  emitError,
	})
	if err := ch.Open(ctx); err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	handOff(*app, *chName, ch.ChannelURI())
	if *toast != ch.IsShellToastBound() {
		if *toast {
			err = ch.BindToShellToast(ctx)
		} else {
			err = ch.UnbindToShellToast(ctx)
		}
		if err != nil {
			return err
		}
	}
	var doms []string
	if *domains != "" {
		doms = strings.Split(*domains, ",")
	}
	if *tile {
		err = ch.BindToShellTile(ctx, doms...)
	} else if ch.IsShellTileBound() {
		err = ch.UnbindToShellTile(ctx)
	}
	if err != nil {
		return err
	}
	out.emit(map[string]any{"event": "ready", "app": *app, "channel": *chName, "uri": ch.ChannelURI(),
		"toast": ch.IsShellToastBound(), "tile": ch.IsShellTileBound(), "domains": ch.Domains()})
	fmt.Fprintf(e.stderr, "openmpns device: %s listening on %s (toast %v, tile %v); Ctrl-C to stop\n", *app, ch.ChannelURI(), *toast, *tile)
	<-ctx.Done()
	runtime.KeepAlive(ch) // the device holds the app's object weakly: its events stop once it is collected
	return nil
}

func latencyMS(m device.Meta) float64 {
	return float64(m.ReceivedAt.Sub(m.AcceptedAt).Microseconds()) / 1000
}

func toastEvent(m device.Meta, t *payload.Toast, fg bool) map[string]any {
	return map[string]any{"event": "toast", "app": m.App, "id": m.ID, "text1": t.Text1, "text2": t.Text2,
		"param": t.Param, "sound": t.Sound, "silent": t.Silent, "foreground": fg, "latency_ms": latencyMS(m)}
}
