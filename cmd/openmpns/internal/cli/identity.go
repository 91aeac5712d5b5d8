package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/openmpns/openmpns/server"
	"github.com/openmpns/openmpns/server/backend"
	"github.com/openmpns/openmpns/server/store"
)

const identitySynopsis = "revoke DEVICE_ID | rotate-key  [--data DIR | --admin SOCKET | --nats URLS] [--json]"

// identityAdmin is what the identity command does to device identities:
// through a running server's admin socket, or on the stored state itself
// (a stopped server's data file, a cluster's NATS).
type identityAdmin interface {
	Revoke(ctx context.Context, id string) (server.RevokedDevice, error)
	RotateKey(ctx context.Context) (server.KeyRotation, error)
}

// runIdentity revokes device identities: one device (revoke), or every
// device at once by rotating the server's signing key (rotate-key).
func runIdentity(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "identity", identitySynopsis)
	data := fs.String("data", server.DefaultDataDir, "the server's data directory")
	sock := fs.String("admin", "", "a running server's admin socket (default: "+server.AdminSocketFile+" in --data)")
	asJSON := fs.Bool("json", false, "print JSON")
	var nf natsFlags
	nf.add(fs, false)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: openmpns identity %s\n\n", identitySynopsis)
		fmt.Fprint(w, `Revokes device identities (the signed tokens devices present at every hello).

  revoke DEVICE_ID  deletes the device with its channels and queued notifications:
                    its connection is closed, its token refused, pushes to its
                    Channel URIs get 404 Dropped/Expired. The phone registers
                    again as a new device; its apps get new Channel URIs.
  rotate-key        replaces the server's signing key: every device token (and
                    every service access token) signed with the old key stops
                    working, devices registered before are deleted with their
                    channels (404 from then on), connected devices are closed
                    and register again; services fetch new access tokens.

A running server takes these on its admin socket; a stopped one's data file is
changed directly; --nats works on a cluster's state, whose nodes follow at once.

Flags:
`)
		printFlags(fs)
	}
	verb, operands, err := parseVerb(e, fs, identitySynopsis, []verb{{"revoke", []string{"DEVICE_ID"}}, {"rotate-key", nil}}, args)
	if err != nil {
		return err
	}
	admin, done, err := openIdentityAdmin(ctx, e, *data, *sock, &nf)
	if err != nil {
		return err
	}
	defer done()
	switch verb {
	case "revoke":
		r, err := admin.Revoke(ctx, operands[0])
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(e.stdout).Encode(r)
		}
		fmt.Fprintf(e.stdout, "revoked device %s: deleted with its %d channels (pushes to them now get 404); the phone registers again as a new device\n", r.Device, r.Channels)
	case "rotate-key":
		k, err := admin.RotateKey(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(e.stdout).Encode(k)
		}
		fmt.Fprintf(e.stdout, "rotated the server key: new key %s; %d devices registered before were deleted with their channels (they register again); services must fetch new access tokens\n", k.KeyID, k.Devices)
	}
	return nil
}

// openIdentityAdmin reaches the device directory as openServiceAdmin does:
// NATS with --nats, else a running server's admin socket, else the data
// file of a stopped server.
func openIdentityAdmin(ctx context.Context, e *env, data, sock string, nf *natsFlags) (identityAdmin, func(), error) {
	if nf.set() {
		log, _ := newLogger(e.stderr, "warn", "text")
		octx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		be, err := nf.open(octx, log, 0)
		if err != nil {
			return nil, nil, err
		}
		fmt.Fprintf(e.stderr, "openmpns identity: the service's state in NATS at %s\n", nf.urls)
		return backendIdentity{be}, func() { be.Close() }, nil
	}
	if sock == "" {
		sock = filepath.Join(data, server.AdminSocketFile)
	}
	if c, err := net.DialTimeout("unix", sock, time.Second); err == nil {
		c.Close()
		fmt.Fprintf(e.stderr, "openmpns identity: talking to the running server on %s\n", sock)
		return socketIdentity{newSocketAdmin(sock)}, func() {}, nil
	}
	if fi, err := os.Stat(data); err != nil || !fi.IsDir() {
		return nil, nil, fmt.Errorf("no data directory %s: give the server's --data (or a running server's --admin socket)", data)
	}
	be, err := store.Open(filepath.Join(data, server.DBFile), store.Options{})
	if err != nil {
		return nil, nil, fmt.Errorf("%w\n(a running server holds the data file but its admin socket %s does not answer)", err, sock)
	}
	fmt.Fprintf(e.stderr, "openmpns identity: no server answers on %s; changing the data file in %s\n", sock, data)
	return backendIdentity{be}, func() { be.Close() }, nil
}

// backendIdentity is identityAdmin on a backend opened by this process.
type backendIdentity struct{ be backend.Backend }

func (b backendIdentity) Revoke(ctx context.Context, id string) (server.RevokedDevice, error) {
	n, err := server.RevokeDevice(ctx, b.be, id, time.Now())
	return server.RevokedDevice{Device: id, Channels: n}, err
}

func (b backendIdentity) RotateKey(ctx context.Context) (server.KeyRotation, error) {
	return server.RotateServerKey(ctx, b.be, time.Now)
}

// socketIdentity is identityAdmin through a running server's admin socket.
type socketIdentity struct{ a socketAdmin }

func (s socketIdentity) Revoke(_ context.Context, id string) (r server.RevokedDevice, err error) {
	err = s.a.call("DELETE", "/v1/devices/"+url.PathEscape(id), "", nil, &r)
	return r, err
}

func (s socketIdentity) RotateKey(context.Context) (k server.KeyRotation, err error) {
	err = s.a.call("POST", "/v1/server-key/rotate", "", nil, &k)
	return k, err
}
