package cli

import (
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/emulator/apps"
)

// handoffSecretEnv is the environment variable --handoff-secret defaults
// to, which keeps the secret off the process list.
const handoffSecretEnv = "OPENMPNS_HANDOFF_SECRET"

// builtinManifest is the --handoff-manifest value naming the built-in apps
// manifest (the one the emulator and demo-backend use by default).
const builtinManifest = "builtin"

// handoffFlags are the handoff flags of openmpns device and openmpns
// fleet: where the Channel URIs go, and the apps' handoff secrets, which
// the emulator's phones take from their apps manifest.
type handoffFlags struct {
	fs                    *flag.FlagSet
	url, secret, manifest *string
}

func addHandoffFlags(fs *flag.FlagSet, what string) *handoffFlags {
	return &handoffFlags{fs: fs,
		url:      fs.String("handoff", "", what+" POSTs its Channel URIs as JSON (device_id, app, channel, uri, secret, device_key) to this cloud service URL at start and whenever they change; off by default"),
		secret:   fs.String("handoff-secret", "", "handoff secret sent with every handoff, which a backend such as openmpns demo-backend checks (default: $"+handoffSecretEnv+"; none if unset)"),
		manifest: fs.String("handoff-manifest", "", "apps manifest (JSON, as the emulator's and demo-backend's --apps) whose handoff_secret each app's handoffs carry, as the emulator's phones do; '"+builtinManifest+"' for the built-in News, Photos, Mail set (default: none)"),
	}
}

// handoffPlan is what the handoff flags asked for.
type handoffPlan struct {
	url string
	// secrets maps an app id to its handoff secret.
	secrets map[string]string
	// from says where the secrets came from, for the user; "" for none.
	from string
}

// plan checks the handoff flags against the apps that will hand off;
// withURL names the command's own flags that, as --handoff-secret and
// --handoff-manifest, go with --handoff only.
func (h *handoffFlags) plan(appIDs []string, withURL ...string) (*handoffPlan, error) {
	set := map[string]bool{}
	h.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	p := &handoffPlan{url: *h.url}
	if p.url == "" {
		for _, name := range append([]string{"handoff-secret", "handoff-manifest"}, withURL...) {
			if set[name] {
				return nil, badUsage("--%s goes with --handoff URL", name)
			}
		}
		return p, nil
	}
	if u, err := url.Parse(p.url); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, badUsage("--handoff %q: want the cloud service's http(s) URL, e.g. http://127.0.0.1:8090/handoff", p.url)
	}
	if set["handoff-secret"] && set["handoff-manifest"] {
		return nil, badUsage("--handoff-secret and --handoff-manifest: give one (the secret of every app, or each app's from a manifest)")
	}
	switch {
	case *h.manifest != "":
		var man *apps.Manifest
		var err error
		if *h.manifest == builtinManifest {
			man, err = apps.Default()
		} else {
			man, err = apps.Load(*h.manifest)
		}
		if err != nil {
			return nil, &usageError{fmt.Errorf("--handoff-manifest: %w", err)}
		}
		p.secrets = map[string]string{}
		var missing, known []string
		for _, a := range man.Apps {
			if a.HandoffSecret != "" {
				known = append(known, a.ID)
			}
		}
		for _, id := range appIDs {
			a, ok := man.App(id)
			if !ok || a.HandoffSecret == "" {
				missing = append(missing, id)
				continue
			}
			p.secrets[id] = a.HandoffSecret
		}
		if len(missing) > 0 {
			return nil, badUsage("--handoff-manifest %s: no handoff_secret for %s there (apps with one: %s)", *h.manifest, strings.Join(missing, ", "), strings.Join(known, ", "))
		}
		p.from = "--handoff-manifest " + *h.manifest
	case *h.secret != "":
		p.secrets, p.from = everyApp(appIDs, *h.secret), "--handoff-secret"
	case os.Getenv(handoffSecretEnv) != "":
		p.secrets, p.from = everyApp(appIDs, os.Getenv(handoffSecretEnv)), "$"+handoffSecretEnv
	case set["handoff-secret"]:
		return nil, badUsage("--handoff-secret is empty: give the app's handoff secret, or leave the flag out to send none")
	}
	return p, nil
}

func everyApp(appIDs []string, secret string) map[string]string {
	m := make(map[string]string, len(appIDs))
	for _, id := range appIDs {
		m[id] = secret
	}
	return m
}

// describe tells the user what the handoffs carry; keys says where the
// device keys come from.
func (p *handoffPlan) describe(keys string) string {
	secret := "without a handoff secret (a backend that wants one, such as openmpns demo-backend, refuses them: --handoff-secret or --handoff-manifest)"
	if p.from != "" {
		secret = "with the app's handoff secret from " + p.from
	}
	return fmt.Sprintf("handing off Channel URIs to %s %s and %s", p.url, secret, keys)
}

// refusalHint says what to do about a refused handoff, for the answers of
// openmpns demo-backend; "" when there is nothing to add.
func (p *handoffPlan) refusalHint(err error, keyFile string) string {
	var refused *device.HandoffRefusedError
	if !errors.As(err, &refused) {
		return ""
	}
	switch refused.Status {
	case http.StatusUnauthorized:
		if p.from == "" {
			return "the backend wants the app's handoff secret: give it with --handoff-secret (or $" + handoffSecretEnv + ") or --handoff-manifest FILE"
		}
		return "the backend did not take the handoff secret from " + p.from + ": it must be the app's handoff_secret in the backend's apps manifest"
	case http.StatusConflict:
		const after = "the backend takes a new device key once it forgets the registration (after pushes that fail, or a restart)"
		if keyFile == "" {
			return "the backend holds the device's app under another device key; " + after
		}
		return "the backend holds the device's app under another device key than the one from " + keyFile + " (was the file replaced?); " + after
	}
	return ""
}
