package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/openmpns/openmpns/server"
	"github.com/openmpns/openmpns/server/auth"
	"github.com/openmpns/openmpns/server/store"
)

const serviceSynopsis = "add NAME | list | remove NAME | rotate-secret NAME | add-key NAME KEY.pem | remove-key NAME KID  [--data DIR] [--json]"

// runService manages the authenticated senders kept in the server's data
// file. The file is locked while a server runs: stop it first; the server
// reads the services when it starts.
func runService(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "service", serviceSynopsis)
	data := fs.String("data", server.DefaultDataDir, "the server's data directory")
	asJSON := fs.Bool("json", false, "print JSON")
	if len(args) == 0 {
		fs.Usage()
		return errUsage
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		fs.SetOutput(e.stdout)
		fs.Usage()
		return nil
	}
	verb, rest := args[0], args[1:]
	// Flags may come before or after the operands.
	var operands []string
	for len(rest) > 0 {
		if err := parse(fs, rest); err != nil {
			return err
		}
		rest = fs.Args()
		if len(rest) > 0 {
			operands = append(operands, rest[0])
			rest = rest[1:]
		}
	}
	need := map[string]int{"add": 1, "list": 0, "remove": 1, "rotate-secret": 1, "add-key": 2, "remove-key": 2}
	n, known := need[verb]
	if !known || len(operands) != n {
		fmt.Fprintf(e.stderr, "openmpns service: usage: openmpns service %s\n", serviceSynopsis)
		return errUsage
	}
	st, err := store.OpenBolt(filepath.Join(*data, server.DBFile))
	if err != nil {
		return fmt.Errorf("%w\n(a running server holds the data file: stop it, run this, start it again)", err)
	}
	defer st.Close()
	ast, err := auth.NewBoltStore(st.DB())
	if err != nil {
		return err
	}
	reg, err := auth.NewRegistry(ast, time.Now)
	if err != nil {
		return err
	}
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
		c, err := reg.Add(operands[0])
		if err != nil {
			return err
		}
		return printCreds(c, "added")
	case "rotate-secret":
		c, err := reg.RotateSecret(operands[0])
		if err != nil {
			return err
		}
		return printCreds(c, "new secret for")
	case "remove":
		if err := reg.Remove(operands[0]); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "removed service %q\n", operands[0])
	case "add-key":
		pemBytes, err := os.ReadFile(operands[1])
		if err != nil {
			return err
		}
		kid, err := reg.AddKey(operands[0], pemBytes)
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(e.stdout).Encode(map[string]string{"service": operands[0], "kid": kid})
		}
		fmt.Fprintf(e.stdout, "added key %s to service %q (use it as the JWT kid header)\n", kid, operands[0])
	case "remove-key":
		if err := reg.RemoveKey(operands[0], operands[1]); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "removed key %s from service %q\n", operands[1], operands[0])
	case "list":
		list := reg.List()
		if *asJSON {
			type row struct {
				Service  string   `json:"service"`
				ClientID string   `json:"client_id"`
				Keys     []string `json:"keys"`
				Created  string   `json:"created"`
			}
			rows := make([]row, 0, len(list))
			for _, s := range list {
				r := row{Service: s.Name, ClientID: s.ClientID, Keys: []string{}, Created: s.Created.UTC().Format(time.RFC3339)}
				for _, k := range s.Keys {
					r.Keys = append(r.Keys, k.ID)
				}
				rows = append(rows, r)
			}
			return json.NewEncoder(e.stdout).Encode(rows)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SERVICE\tCLIENT ID\tKEYS\tCREATED")
		for _, s := range list {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", s.Name, s.ClientID, len(s.Keys), s.Created.UTC().Format(time.RFC3339))
		}
		return tw.Flush()
	}
	return nil
}
