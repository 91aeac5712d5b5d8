package demobackend

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzCheckChannelURI: whatever a handoff's uri is, an accepted one is an
// http(s) URL on the paired origin, with the path /push/ and a token of
// letters, digits, - and _, and nothing else the backend would send
// anywhere: no user, query or fragment. ParseOrigin of the server never
// panics and gives a form CheckChannelURI accepts its own URIs under.
func FuzzCheckChannelURI(f *testing.F) {
	f.Add("http://127.0.0.1:8080", "http://127.0.0.1:8080/push/abcdefghijklmnopqrstuvwxyz0")
	f.Add("https://push.example.com", "https://PUSH.example.com:443/push/x")
	f.Add("http://[::1]:8080/", "http://[::1]:8080/push/a-b_c")
	f.Add("http://127.0.0.1:8080", "http://127.0.0.1:8080/push/../metrics")
	f.Add("http://127.0.0.1:8080", "http://u@127.0.0.1:8080/push/x?y#z")
	f.Add("http://127.0.0.1:8080", "http://127.0.0.1:08080/push/%61")
	f.Add("http://127.0.0.1:80", "http://127.0.0.1/push/x")
	f.Fuzz(func(t *testing.T, server, uri string) {
		o, err := ParseOrigin(server)
		if err != nil {
			return
		}
		if o2, err := ParseOrigin(o); err != nil || o2 != o {
			t.Fatalf("ParseOrigin(%q) = %q, then %q, %v: not stable", server, o, o2, err)
		}
		if CheckChannelURI(o+"/push/tok", []string{o}) != nil {
			t.Fatalf("the server's own Channel URI %q refused", o+"/push/tok")
		}
		if CheckChannelURI(uri, []string{o}) != nil {
			return
		}
		u, err := url.Parse(uri)
		if err != nil {
			t.Fatalf("accepted unparsable %q", uri)
		}
		if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			t.Fatalf("accepted %q with a user, query or fragment", uri)
		}
		uo, ok := origin(u)
		if !ok || uo != o {
			t.Fatalf("accepted %q on %q, paired with %q", uri, uo, o)
		}
		tok, ok := strings.CutPrefix(u.EscapedPath(), pushPath)
		if !ok || tok == "" || strings.ContainsAny(tok, "/.%") {
			t.Fatalf("accepted %q: path %q", uri, u.EscapedPath())
		}
	})
}
