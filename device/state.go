package device

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/openmpns/openmpns/shared/atomicfile"
	"github.com/openmpns/openmpns/shared/wire"
)

// stateFile is the name of the state file in Config.StateDir.
const stateFile = "device.json"

// maxSeen bounds the remembered notification ids used to drop duplicates.
const maxSeen = 4096

// persisted is what a device keeps across restarts.
type persisted struct {
	DeviceID    string          `json:"device_id,omitempty"`
	DeviceToken string          `json:"device_token,omitempty"`
	Power       PowerLevel      `json:"power,omitempty"`
	Channels    []channelRecord `json:"channels,omitempty"`
	Seen        []string        `json:"seen,omitempty"`
}

type channelRecord struct {
	App     string   `json:"app"`
	Name    string   `json:"name"`
	Service string   `json:"service,omitempty"`
	URI     string   `json:"uri,omitempty"`
	Toast   bool     `json:"toast,omitempty"`
	Tile    bool     `json:"tile,omitempty"`
	Domains []string `json:"domains,omitempty"`
}

// loadState reads the state in dir. A file that is not JSON is an error;
// values in it that the server would refuse (a power level, credentials, a
// channel's app id, name or service, tile domains) are repaired (see
// repair) and logged on log, so that the device comes up.
func loadState(dir string, log *slog.Logger) (persisted, error) {
	var p persisted
	if dir == "" {
		return p, nil
	}
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return p, nil
	}
	if err != nil {
		return p, fmt.Errorf("device: read state: %w", err)
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("device: state file %s is damaged (%w); move it away to start as a new device", filepath.Join(dir, stateFile), err)
	}
	p.repair(log.With("file", filepath.Join(dir, stateFile)))
	return p, nil
}

// repair replaces the values of p that the server would refuse, which
// would fail every connect (the set-up's power report and hello) or every
// connect's restore of a channel, with safe ones, and logs each: the power
// level becomes normal; credentials that are not a pair or too long are
// forgotten (the device registers again, as when the server no longer
// knows it); a channel whose app id, name or service the server refuses,
// or that repeats an app, is dropped (its app opens it again); a tile
// binding with refused domains is unbound (its app binds it again). The
// rules are the server's own (wire.CheckApp and the others).
func (p *persisted) repair(log *slog.Logger) {
	if p.Power != "" {
		if err := wire.CheckPower(string(p.Power)); err != nil {
			log.Warn("device state: bad power level; using normal", "power", p.Power, "err", err)
			p.Power = PowerNormal
		}
	}
	if err := wire.CheckCredentials(p.DeviceID, p.DeviceToken); err != nil {
		log.Warn("device state: bad device credentials; registering as a new device (Channel URIs will change)", "err", err)
		p.DeviceID, p.DeviceToken = "", ""
	}
	kept := p.Channels[:0]
	apps := make(map[string]bool, len(p.Channels))
	for _, r := range p.Channels {
		err := errors.Join(wire.CheckApp(r.App), wire.CheckChannelName(r.Name), wire.CheckService(r.Service))
		if err == nil && apps[r.App] {
			err = errors.New("a second channel of the app")
		}
		if err != nil {
			log.Warn("device state: bad channel dropped; its app must open it again", "app", r.App, "channel", r.Name, "err", err)
			continue
		}
		apps[r.App] = true
		if err := wire.CheckDomains(r.Domains); err != nil {
			log.Warn("device state: tile binding with bad domains unbound; its app must bind it again", "app", r.App, "err", err)
			r.Tile, r.Domains = false, nil
		}
		kept = append(kept, r)
	}
	p.Channels = kept
}

// saveState writes the state atomically: a crash leaves the old or the new file.
func saveState(dir string, p *persisted) error {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("device: create state directory: %w", err)
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return fmt.Errorf("device: encode state: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, stateFile), b, 0o600); err != nil {
		return fmt.Errorf("device: write state: %w", err)
	}
	return nil
}

// seenSet remembers recent notification ids, oldest evicted first.
type seenSet struct {
	ids  map[string]struct{}
	ring []string
	next int
}

// newSeenSet returns a set holding initial. It grows as ids arrive: a
// fleet runs thousands of devices, most of which see few notifications.
func newSeenSet(initial []string) *seenSet {
	s := &seenSet{ids: make(map[string]struct{}, len(initial))}
	for _, id := range initial {
		s.add(id)
	}
	return s
}

// add records id and reports whether it was new.
func (s *seenSet) add(id string) bool {
	n := len(s.ids)
	s.ids[id] = struct{}{} // one lookup: a new id grows the map
	if len(s.ids) == n {
		return false
	}
	if len(s.ring) < maxSeen {
		s.ring = append(s.ring, id)
	} else {
		delete(s.ids, s.ring[s.next])
		s.ring[s.next] = id
		s.next = (s.next + 1) % maxSeen
	}
	return true
}

// list returns the ids oldest first.
func (s *seenSet) list() []string {
	out := make([]string, 0, len(s.ring))
	out = append(out, s.ring[s.next:]...)
	return append(out, s.ring[:s.next]...)
}
