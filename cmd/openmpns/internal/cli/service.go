package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/openmpns/openmpns/server"
	"github.com/openmpns/openmpns/server/auth"
	"github.com/openmpns/openmpns/server/store"
)

const serviceSynopsis = "add NAME | list | remove NAME | rotate-secret NAME | add-key NAME KEY.pem | remove-key NAME KID  [--data DIR | --admin SOCKET | --nats URLS] [--json]"

// serviceAdmin is what the service command does to the registry of
// senders: through a running server's admin socket, or on the stored
// registry itself when no server runs.
type serviceAdmin interface {
	Add(name string) (auth.Credentials, error)
	List() ([]server.AdminService, error)
	Remove(name string) error
	RotateSecret(name string) (auth.Credentials, error)
	AddKey(name string, pem []byte) (string, error)
	RemoveKey(name, kid string) error
}

// runService manages the authenticated senders. A running server takes the
// commands on its admin socket (in its data directory), with no restart;
// with no server running they change the data file.
func runService(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "service", serviceSynopsis)
	data := fs.String("data", server.DefaultDataDir, "the server's data directory")
	sock := fs.String("admin", "", "a running server's admin socket (default: "+server.AdminSocketFile+" in --data)")
	asJSON := fs.Bool("json", false, "print JSON")
	var nf natsFlags
	nf.add(fs, false)
	verb, operands, err := parseVerb(e, fs, serviceSynopsis, []verb{{"add", []string{"NAME"}}, {"list", nil}, {"remove", []string{"NAME"}},
		{"rotate-secret", []string{"NAME"}}, {"add-key", []string{"NAME", "KEY.pem"}}, {"remove-key", []string{"NAME", "KID"}}}, args)
	if err != nil {
		return err
	}
	admin, done, err := openServiceAdmin(ctx, e, *data, *sock, &nf)
	if err != nil {
		return err
	}
	defer done()
	printCreds := func(c auth.Credentials, what string) error {
		if *asJSON {
			return json.NewEncoder(e.stdout).Encode(c)
		}
		fmt.Fprintf(e.stdout, "%s service %q\nclient_id:     %s\nclient_secret: %s\n", what, c.Service, c.ClientID, c.ClientSecret)
		fmt.Fprintln(e.stderr, "Keep the secret now: the server stores only its hash.")
		return nil
	}
	switch verb {
	case "add":
		c, err := admin.Add(operands[0])
		if err != nil {
			return err
		}
		return printCreds(c, "added")
	case "rotate-secret":
		c, err := admin.RotateSecret(operands[0])
		if err != nil {
			return err
		}
		return printCreds(c, "new secret for")
	case "remove":
		if err := admin.Remove(operands[0]); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "removed service %q\n", operands[0])
	case "add-key":
		pemBytes, err := os.ReadFile(operands[1])
		if err != nil {
			return err
		}
		kid, err := admin.AddKey(operands[0], pemBytes)
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(e.stdout).Encode(map[string]string{"service": operands[0], "kid": kid})
		}
		fmt.Fprintf(e.stdout, "added key %s to service %q (use it as the JWT kid header)\n", kid, operands[0])
	case "remove-key":
		if err := admin.RemoveKey(operands[0], operands[1]); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "removed key %s from service %q\n", operands[1], operands[0])
	case "list":
		rows, err := admin.List()
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(e.stdout).Encode(rows)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SERVICE\tCLIENT ID\tKEYS\tCREATED")
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", r.Service, r.ClientID, len(r.Keys), r.Created)
		}
		return tw.Flush()
	}
	return nil
}

// openServiceAdmin reaches the registry: a running server's admin socket
// if one answers, else the data file (which must be in an existing
// directory: a mistyped --data is an error, not a new empty store).
func openServiceAdmin(ctx context.Context, e *env, data, sock string, nf *natsFlags) (serviceAdmin, func(), error) {
	if nf.set() {
		// The cluster's registry, in NATS: every node follows it at once.
		log, _ := newLogger(e.stderr, "warn", "text")
		octx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		be, err := nf.open(octx, log, 0)
		if err != nil {
			return nil, nil, err
		}
		reg, err := auth.NewRegistry(be.Services(), time.Now)
		if err != nil {
			be.Close()
			return nil, nil, err
		}
		fmt.Fprintf(e.stderr, "openmpns service: the service registry in NATS at %s\n", nf.urls)
		return registryAdmin{reg}, func() { be.Close() }, nil
	}
	if sock == "" {
		sock = filepath.Join(data, server.AdminSocketFile)
	}
	if c, err := net.DialTimeout("unix", sock, time.Second); err == nil {
		c.Close()
		fmt.Fprintf(e.stderr, "openmpns service: talking to the running server on %s\n", sock)
		return newSocketAdmin(sock), func() {}, nil
	}
	if fi, err := os.Stat(data); err != nil || !fi.IsDir() {
		return nil, nil, fmt.Errorf("no data directory %s: give the server's --data (or a running server's --admin socket)", data)
	}
	st, err := store.OpenBolt(filepath.Join(data, server.DBFile))
	if err != nil {
		return nil, nil, fmt.Errorf("%w\n(a running server holds the data file but its admin socket %s does not answer)", err, sock)
	}
	ast, err := auth.NewBoltStore(st.DB())
	if err == nil {
		var reg *auth.Registry
		if reg, err = auth.NewRegistry(ast, time.Now); err == nil {
			return registryAdmin{reg}, func() { st.Close() }, nil
		}
	}
	st.Close()
	return nil, nil, err
}

// registryAdmin is serviceAdmin on a registry in this process.
type registryAdmin struct{ *auth.Registry }

func (r registryAdmin) List() ([]server.AdminService, error) {
	return server.ListServices(r.Registry), nil
}

// socketAdmin is serviceAdmin through a running server's admin socket.
type socketAdmin struct{ c *http.Client }

func newSocketAdmin(path string) socketAdmin {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", path)
	}}
	return socketAdmin{&http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// call sends a request to the admin API and decodes a JSON answer into out.
func (a socketAdmin) call(method, path, ctype string, body []byte, out any) error {
	req, err := http.NewRequest(method, "http://admin"+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := a.c.Do(req)
	if err != nil {
		return fmt.Errorf("admin socket: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&e)
		return fmt.Errorf("the server refused: %s", e.Error)
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out)
}

func (a socketAdmin) Add(name string) (c auth.Credentials, err error) {
	b, _ := json.Marshal(map[string]string{"name": name})
	err = a.call("POST", "/v1/services", "application/json", b, &c)
	return c, err
}

func (a socketAdmin) List() (rows []server.AdminService, err error) {
	err = a.call("GET", "/v1/services", "", nil, &rows)
	return rows, err
}

func (a socketAdmin) Remove(name string) error {
	return a.call("DELETE", "/v1/services/"+url.PathEscape(name), "", nil, nil)
}

func (a socketAdmin) RotateSecret(name string) (c auth.Credentials, err error) {
	err = a.call("POST", "/v1/services/"+url.PathEscape(name)+"/rotate-secret", "", nil, &c)
	return c, err
}

func (a socketAdmin) AddKey(name string, pem []byte) (string, error) {
	var out struct {
		Kid string `json:"kid"`
	}
	err := a.call("POST", "/v1/services/"+url.PathEscape(name)+"/keys", "application/x-pem-file", pem, &out)
	return out.Kid, err
}

func (a socketAdmin) RemoveKey(name, kid string) error {
	return a.call("DELETE", "/v1/services/"+url.PathEscape(name)+"/keys/"+url.PathEscape(kid), "", nil, nil)
}
