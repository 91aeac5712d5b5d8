package server

import (
	"strings"
	"testing"
	"time"
)

// A negative time or limit that means nothing is refused, named as its
// flag names it: --heartbeat -1s started a server that closed every device
// right after its hello, with nothing in the log to say why.
func TestConfigRefusesNegativeValues(t *testing.T) {
	for _, c := range []struct {
		set  func(*Config)
		want string
	}{
		{func(c *Config) { c.Heartbeat = -time.Second }, "heartbeat -1s: must not be negative"},
		{func(c *Config) { c.WriteTimeout = -time.Second }, "write-timeout -1s: must not be negative"},
		{func(c *Config) { c.QueueTTL = -time.Second }, "queue-ttl -1s: must not be negative"},
		{func(c *Config) { c.TempDisconnected = -time.Second }, "temp-disconnected -1s: must not be negative"},
		{func(c *Config) { c.HelloTimeout = -time.Second }, "hello-timeout -1s: must not be negative"},
		{func(c *Config) { c.QueueLimit = -1 }, "queue-limit -1: must not be negative"},
		{func(c *Config) { c.NewDeviceBurst = -2 }, "new-device-burst -2: must not be negative"},
	} {
		cfg := Config{DataDir: t.TempDir()}
		c.set(&cfg)
		if err := cfg.Normalize(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want %q, got %v", c.want, err)
		}
	}
	// Where a negative value means "no limit" or "never", it is taken.
	cfg := Config{DataDir: t.TempDir(), DailyQuota: -1, MaxAttaching: -1, MaxConnsPerIP: -1, MaxDevices: -1, MaxTotalChannels: -1,
		MaxQueuedBytes: -1, InactiveGrace: -1, CommitLinger: -1, MaxPendingPushes: -1, NewDevicesPerMinute: -1, ChannelOpensPerMinute: -1}
	if err := cfg.Normalize(); err != nil {
		t.Errorf("no limits: %v", err)
	}
}
