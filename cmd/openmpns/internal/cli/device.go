package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

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

func defaultStateDir() string {
	if dir, err := os.UserConfigDir(); err == nil {
		return filepath.Join(dir, "openmpns", "device")
	}
	return ".openmpns-device"
}

func runDevice(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "device", "--app APP [--server URL] [--channel NAME] [--service NAME] [--state DIR] [--toast] [--tile] [--foreground | --not-running] [--handoff URL]")
	srvURL := fs.String("server", "http://127.0.0.1:8080", "OpenMPNS server base URL; several, comma-separated (the nodes of a cluster), are tried in turn when the connection is lost")
	app := fs.String("app", "", "app id whose channel to open, e.g. com.example.news (required)")
	chName := fs.String("channel", "main", "channel name (HttpNotificationChannel name)")
	service := fs.String("service", "", "service name for an authenticated channel")
	state := fs.String("state", defaultStateDir(), "state directory: device identity, channels, recent notification ids")
	toast := fs.Bool("toast", false, "bind the channel to toast (BindToShellToast)")
	tile := fs.Bool("tile", false, "bind the channel to tile (BindToShellTile)")
	domains := fs.String("domains", "", "comma-separated remote image domains allowed on tiles (with --tile)")
	fg := fs.Bool("foreground", false, "the app is in the foreground: toasts go to the app, not the shell")
	notRunning := fs.Bool("not-running", false, "the app is not running: raw notifications are dropped")
	power := fs.String("power", "normal", "power level: normal, low (raw only) or critically_low (nothing)")
	handoff := fs.String("handoff", "", "POST the Channel URI as JSON to this cloud service URL whenever it is new or changed")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *app == "" {
		fmt.Fprintln(e.stderr, "openmpns device: --app is required")
		fs.Usage()
		return errUsage
	}
	if *fg && *notRunning {
		return errors.New("--foreground and --not-running contradict each other")
	}
	out := &jsonLines{w: e.stdout}
	var dev *device.Device
	var hoWG sync.WaitGroup
	hctx, hcancel := context.WithCancel(ctx)
	defer func() { hcancel(); hoWG.Wait() }()
	onURI := func(a, ch, uri string) {
		out.emit(map[string]any{"event": "channel_uri", "app": a, "channel": ch, "uri": uri})
		if *handoff == "" {
			return
		}
		rec := device.HandoffRecord{DeviceID: dev.ID(), App: a, Channel: ch, URI: uri}
		hoWG.Add(1)
		go func() {
			defer hoWG.Done()
			h := &device.Handoff{URL: *handoff}
			status, err := h.Send(hctx, rec, func(n, status int, err error) {
				if err != nil {
					out.emit(map[string]any{"event": "handoff", "url": *handoff, "attempt": n, "status": status, "error": err.Error()})
				}
			})
			ev := map[string]any{"event": "handoff", "url": *handoff, "app": a, "uri": uri, "status": status}
			if err != nil {
				ev["error"] = err.Error()
			}
			out.emit(ev)
		}()
	}
	h := device.Handlers{
		ChannelURIUpdated: onURI,
		ConnectionStatusChanged: func(s device.ConnectionStatus) {
			out.emit(map[string]any{"event": "connection", "status": string(s)})
		},
		Error: func(err *device.ChannelError) {
			out.emit(map[string]any{"event": "error", "type": string(err.Type), "app": err.App, "message": err.Message})
		},
		ShellToast: func(m device.Meta, t *payload.Toast) { out.emit(toastEvent(m, t, false)) },
		AppToast:   func(m device.Meta, t *payload.Toast) { out.emit(toastEvent(m, t, true)) },
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
		Raw: func(m device.Meta, b []byte) {
			out.emit(map[string]any{"event": "raw", "app": m.App, "id": m.ID, "data_base64": base64.StdEncoding.EncodeToString(b), "latency_ms": latencyMS(m)})
		},
		RawDropped: func(m device.Meta) {
			out.emit(map[string]any{"event": "raw_dropped", "app": m.App, "id": m.ID, "reason": "the app is not running"})
		},
	}
	var err error
	dev, err = device.New(device.Config{Servers: splitList(*srvURL), StateDir: *state, Handlers: h})
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
	if err := ch.Open(ctx); err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
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
	return nil
}

func latencyMS(m device.Meta) float64 {
	return float64(m.ReceivedAt.Sub(m.AcceptedAt).Microseconds()) / 1000
}

func toastEvent(m device.Meta, t *payload.Toast, fg bool) map[string]any {
	return map[string]any{"event": "toast", "app": m.App, "id": m.ID, "text1": t.Text1, "text2": t.Text2,
		"param": t.Param, "sound": t.Sound, "silent": t.Silent, "foreground": fg, "latency_ms": latencyMS(m)}
}
