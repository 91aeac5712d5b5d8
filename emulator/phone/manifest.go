package phone

import (
	"github.com/openmpns/openmpns/emulator/apps"
	"github.com/openmpns/openmpns/emulator/tile"
)

// FromManifest turns a manifest's apps into the phone's, with backend
// placeholders resolved against backendBase ("" leaves such apps without a
// handoff).
func FromManifest(m *apps.Manifest, backendBase string) []App {
	out := make([]App, 0, len(m.Apps))
	for i := range m.Apps {
		a := &m.Apps[i]
		pa := App{ID: a.ID, Name: a.Name, Service: a.Service, WantsToast: a.Toast,
			Domains: a.ImageDomainsFor(backendBase), Handoff: a.BackendURL(backendBase), HandoffSecret: a.HandoffSecret, TileSize: tile.Medium, Lock: a.LockIcon != ""}
		if a.Push() {
			pa.Channel = a.ChannelName()
		}
		dt := a.DefaultTile()
		pa.Template, pa.TileDefaults = dt.Template, dt.Fields
		if s, err := tile.ParseSize(a.Tile.Size); err == nil && a.Tile.Size != "" {
			pa.TileSize = s
		}
		out = append(out, pa)
	}
	return out
}
