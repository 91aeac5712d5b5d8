package demobackend

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// pushPath is the path prefix of Channel URIs (server.PushPath).
const pushPath = "/push/"

// maxTokenLen bounds the channel token of a Channel URI (the server's are
// 27 characters).
const maxTokenLen = 64

// maxURILen bounds a Channel URI.
const maxURILen = 1024

// ErrNotChannelURI is a handoff URI that is not a Channel URI of a push
// server the backend pairs with.
var ErrNotChannelURI = errors.New("not a Channel URI of the push server this backend pairs with")

// ParseOrigin reads a push server's base URL ("http://127.0.0.1:8080",
// "https://push.example.com/") and returns its origin in the form
// CheckChannelURI compares: scheme, lower-case host and explicit port
// ("https://push.example.com:443").
func ParseOrigin(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", fmt.Errorf("push server %q: %w", raw, err)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || u.Opaque != "" {
		return "", fmt.Errorf("push server %q: want an origin such as http://127.0.0.1:8080, without a path, query or user", raw)
	}
	o, ok := origin(u)
	if !ok {
		return "", fmt.Errorf("push server %q: want an http or https URL with a host", raw)
	}
	return o, nil
}

// origin returns u's scheme, host and port, the port made explicit.
func origin(u *url.URL) (string, bool) {
	scheme := strings.ToLower(u.Scheme)
	// One trailing dot names the same host (the DNS root); an empty label
	// anywhere else ("a..b", ".a", "a..") names none.
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if (scheme != "http" && scheme != "https") || !validHost(host) {
		return "", false
	}
	port := u.Port()
	if port == "" {
		if strings.HasSuffix(u.Host, ":") {
			return "", false
		}
		port = map[string]string{"http": "80", "https": "443"}[scheme]
	}
	for _, c := range port {
		if c < '0' || c > '9' {
			return "", false
		}
	}
	if port = strings.TrimLeft(port, "0"); port == "" {
		return "", false
	}
	return scheme + "://" + net.JoinHostPort(host, port), true
}

// validHost reports whether host (lower case, without the DNS root's
// trailing dot) is an IP address or a DNS name of ASCII letters, digits,
// hyphens and underscores in non-empty labels of at most 63 bytes. Anything
// else (an empty label, a byte a name cannot hold, an unencoded
// international name) names no push server this backend could match.
func validHost(host string) bool {
	if net.ParseIP(host) != nil {
		return true
	}
	if host == "" || len(host) > 253 {
		return false
	}
	for label := range strings.SplitSeq(host, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// CheckChannelURI checks that raw is a Channel URI of one of the push
// servers (origins from ParseOrigin): an http(s) URL on one of those
// origins (scheme, host and port), whose path is /push/ and a channel
// token, with no user, query or fragment. It returns an error wrapping
// ErrNotChannelURI otherwise.
func CheckChannelURI(raw string, servers []string) error {
	if len(servers) == 0 {
		return fmt.Errorf("%w: the backend pairs with no push server (--push-server)", ErrNotChannelURI)
	}
	bad := func(why string) error {
		return fmt.Errorf("%w (%s): %s", ErrNotChannelURI, strings.Join(servers, ", "), why)
	}
	if len(raw) > maxURILen {
		return bad(fmt.Sprintf("over %d bytes", maxURILen))
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad("not a URL")
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" || u.RawPath != "" {
		return bad("a Channel URI has no user, query, fragment or escapes")
	}
	o, ok := origin(u)
	if !ok {
		return bad("want an http or https URL")
	}
	found := false
	for _, s := range servers {
		found = found || s == o
	}
	if !found {
		return bad("another scheme, host or port")
	}
	token, ok := strings.CutPrefix(u.Path, pushPath)
	if !ok || token == "" || len(token) > maxTokenLen {
		return bad("the path must be " + pushPath + " and a channel token")
	}
	for _, c := range token {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return bad("the channel token has a character other than letters, digits, - and _")
		}
	}
	return nil
}
