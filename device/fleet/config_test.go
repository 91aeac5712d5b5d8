package fleet_test

import (
	"context"
	"testing"

	"github.com/openmpns/openmpns/device/fleet"
)

func TestFleetConfigErrors(t *testing.T) {
	for _, c := range []fleet.Config{
		{Devices: 1, Apps: []string{"a"}},
		{Servers: []string{"http://x"}, Apps: []string{"a"}},
		{Servers: []string{"http://x"}, Devices: 1},
		{Servers: []string{"ftp://x"}, Devices: 1, Apps: []string{"a"}},
		{Servers: []string{"http://x"}, Devices: 1, Apps: []string{"a"}, OptOut: 2},
		{Servers: []string{"http://x"}, Devices: 1, Apps: []string{"a", "a"}},
		{Servers: []string{"http://x"}, Devices: 1, Apps: []string{"a"}, HandoffSecrets: map[string]string{"a": "s"}},
	} {
		if f, err := fleet.Start(context.Background(), c); err == nil {
			f.Close()
			t.Errorf("accepted %+v", c)
		}
	}
}
