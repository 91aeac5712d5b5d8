package device

import (
	"context"
	"errors"
	"net"
	"runtime"
	"testing"

	"github.com/openmpns/openmpns/shared/rawsock"
)

// The device's dialer makes connections read and written with raw system
// calls on Linux (elsewhere the connections as they are), its own or those
// of Config.NetDial, and passes a failed dial's error on.
func TestRawDial(t *testing.T) {
	raw := runtime.GOOS == "linux"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	custom := 0
	var d net.Dialer
	for _, dial := range []func(context.Context, string, string) (net.Conn, error){
		nil,
		func(ctx context.Context, network, addr string) (net.Conn, error) {
			custom++
			return d.DialContext(ctx, network, addr)
		},
	} {
		c, err := rawDial(dial)(context.Background(), "tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if rawsock.Raw(c) != raw {
			t.Errorf("dialled %T on %s", c, runtime.GOOS)
		}
		c.Close()
	}
	if custom != 1 {
		t.Errorf("Config.NetDial called %d times, want 1", custom)
	}
	refused := errors.New("refused")
	if _, err := rawDial(func(context.Context, string, string) (net.Conn, error) { return nil, refused })(context.Background(), "tcp", "x"); err != refused {
		t.Errorf("a failed dial gave %v", err)
	}
}
