package phone

import (
	"fmt"
	"slices"

	"github.com/openmpns/openmpns/emulator/tile"
	"github.com/openmpns/openmpns/shared/payload"
)

// LockStatus is one app on the lock screen: its count (quick status) or
// its text (detailed status), taken from its primary tile (see
// tile.State.LockCount and LockText).
type LockStatus struct {
	App, Name string
	Count     int
	Text      []string
}

// LockScreen is what the lock screen shows of the apps: the detailed
// status (App "" when no app is chosen or its tile shows no text) and the
// quick statuses of the chosen apps whose tiles show a count, in the
// user's order.
type LockScreen struct {
	Detailed LockStatus
	Quick    []LockStatus
}

// LockApps returns the apps the user chose for the lock screen: the
// detailed status app ("" for none) and the quick status apps. Until the
// user chooses, the defaults are the first tile.LockQuickApps apps with a
// lock icon for the quick status, and the first of them whose tile is an
// IconicTile (the template made for it: three lines of WideContent) for
// the detailed status.
func (p *Phone) LockApps() (detailed string, quick []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lockAppsLocked()
}

func (p *Phone) lockAppsLocked() (detailed string, quick []string) {
	if p.set.LockSet {
		return p.set.LockDetailed, slices.Clone(p.set.LockQuick)
	}
	for _, a := range p.cfg.Apps {
		if !a.Lock {
			continue
		}
		if len(quick) < tile.LockQuickApps {
			quick = append(quick, a.ID)
		}
		if detailed == "" && a.Template == payload.TemplateIconic {
			detailed = a.ID
		}
	}
	return detailed, quick
}

// SetLockApps records the user's choice of lock screen apps: detailed ("" for
// none) and at most tile.LockQuickApps quick, each an app with a lock icon,
// none twice.
func (p *Phone) SetLockApps(detailed string, quick []string) error {
	if len(quick) > tile.LockQuickApps {
		return fmt.Errorf("phone: %d quick status apps; the lock screen shows at most %d", len(quick), tile.LockQuickApps)
	}
	p.mu.Lock()
	check := func(app string) error {
		a := p.apps[app]
		if a == nil {
			return fmt.Errorf("phone: no app %s", app)
		}
		if !a.Lock {
			return fmt.Errorf("phone: %s has no lock screen icon (lock_icon in its manifest)", app)
		}
		return nil
	}
	var err error
	if detailed != "" {
		err = check(detailed)
	}
	for i, app := range quick {
		if err == nil {
			err = check(app)
		}
		if err == nil && slices.Contains(quick[:i], app) {
			err = fmt.Errorf("phone: %s is listed twice", app)
		}
	}
	if err != nil {
		p.mu.Unlock()
		return err
	}
	p.set.LockSet, p.set.LockDetailed, p.set.LockQuick = true, detailed, slices.Clone(quick)
	p.mu.Unlock()
	p.saveSettings()
	p.notify(Change{Kind: SettingsChanged})
	return nil
}

// LockScreen returns what the lock screen shows now.
func (p *Phone) LockScreen() LockScreen {
	p.mu.Lock()
	defer p.mu.Unlock()
	detailed, quick := p.lockAppsLocked()
	var ls LockScreen
	if ts := p.tiles[detailed]; ts != nil {
		if text := ts.st.LockText(); len(text) > 0 {
			ls.Detailed = LockStatus{App: detailed, Name: p.apps[detailed].Name, Text: text}
		}
	}
	for _, app := range quick {
		if ts := p.tiles[app]; ts != nil {
			if n := ts.st.LockCount(); n > 0 {
				ls.Quick = append(ls.Quick, LockStatus{App: app, Name: p.apps[app].Name, Count: n})
			}
		}
	}
	return ls
}
