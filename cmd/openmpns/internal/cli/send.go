package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/openmpns/openmpns/shared/payload"
	"github.com/openmpns/openmpns/shared/sender"
)

// multiFlag collects a repeatable flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// sendSynopsis is the synopsis of `openmpns send`.
const sendSynopsis = "toast|tile|raw --uri URI [that kind's flags | --xml FILE] [--class immediate|450|900|N] [--message-id ID] [--json]"

// sendExit says what send's exit status means.
const sendExit = "Exits 0 when the service accepted it (200 Received, or 200 Suppressed: accepted, then\n" +
	"dropped by the phone's settings), 1 otherwise (200 QueueFull, 404, 406, 412, 503, ...:\n" +
	"the Advice line says what to do), 2 for a usage error."

// sendExamples are the examples of each kind's help.
var sendExamples = map[payload.Kind]string{
	payload.KindToast: `  openmpns send toast --uri URI --text1 "Breaking" --text2 "Go 2 released" --param "/Story.xaml?id=1"
  openmpns send toast --uri URI --xml toast.xml`,
	payload.KindTile: `  openmpns send tile --uri URI --template FlipTile --title News --count 3 --back-title More
  openmpns send tile --uri URI --template IconicTile --field WideContent1=Alice --clear Count
  openmpns send tile --uri URI --xml tile.xml`,
	payload.KindRaw: `  openmpns send raw --uri URI --data '{"score":3}' --class 450
  openmpns send raw --uri URI --data-file blob.bin`,
}

// sendFlags are the flags of one kind of `openmpns send`.
type sendFlags struct {
	uri, xmlFile, class, msgID string
	asJSON                     bool
	headers                    multiFlag
	// toast
	text1, text2, param, sound string
	silent                     bool
	// tile
	template, tileID, title, count, bg, backTitle, backContent string
	fields, clears                                             multiFlag
	// raw
	data, dataFile string
}

// newSendFlags defines the flags every kind has and those of kind only:
// another kind's flag is refused by the flag package.
func newSendFlags(e *env, kind payload.Kind) (*flag.FlagSet, *sendFlags) {
	name := "send " + kind.String()
	fs := newFlags(e, name, "--uri URI ...")
	var f sendFlags
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: openmpns %s --uri URI [flags]\n\nSends a %s notification to a Channel URI with the MPNS headers and prints the answer.\n%s\n\nFlags:\n", name, kind, sendExit)
		printFlags(fs)
		fmt.Fprintf(fs.Output(), "\nExamples:\n%s\n", sendExamples[kind])
	}
	fs.StringVar(&f.uri, "uri", "", "the Channel URI (required)")
	fs.StringVar(&f.xmlFile, "xml", "", "send this file as the body instead of building it from flags, which then do not go with it (- for stdin)")
	fs.StringVar(&f.class, "class", "immediate", "batching interval: immediate, 450 or 900 (or an X-NotificationClass number)")
	fs.StringVar(&f.msgID, "message-id", "auto", "X-MessageID: a value, auto (a new UUID) or none")
	fs.BoolVar(&f.asJSON, "json", false, "print the answer as one JSON object")
	fs.Var(&f.headers, "header", "extra request header 'Name: value' (repeatable), e.g. an Authorization header")
	switch kind {
	case payload.KindToast:
		fs.StringVar(&f.text1, "text1", "", "bold title (Text1)")
		fs.StringVar(&f.text2, "text2", "", "body (Text2)")
		fs.StringVar(&f.param, "param", "", "page to open when tapped, e.g. /Page.xaml?id=1")
		fs.StringVar(&f.sound, "sound", "", "sound file")
		fs.BoolVar(&f.silent, "silent", false, "no sound")
	case payload.KindTile:
		fs.StringVar(&f.template, "template", "", "FlipTile, CycleTile, IconicTile, or empty for the WP7.5 tile")
		fs.StringVar(&f.tileID, "id", "", "secondary tile id (e.g. /Detail.xaml?id=7); empty = the primary tile")
		fs.StringVar(&f.title, "title", "", "Title")
		fs.StringVar(&f.count, "count", "", "Count (0-99; 0 hides the badge)")
		fs.StringVar(&f.bg, "background-image", "", "BackgroundImage")
		fs.StringVar(&f.backTitle, "back-title", "", "BackTitle")
		fs.StringVar(&f.backContent, "back-content", "", "BackContent")
		fs.Var(&f.fields, "field", "any element as Name=Value (repeatable), e.g. --field WideContent1=Hello")
		fs.Var(&f.clears, "clear", "reset an element with Action=\"Clear\" (repeatable), e.g. --clear Count")
	case payload.KindRaw:
		fs.StringVar(&f.data, "data", "", "the bytes to send")
		fs.StringVar(&f.dataFile, "data-file", "", "send this file's bytes")
	}
	return fs, &f
}

// otherKindsFlag refuses, with a hint, a flag that belongs to another kind
// of notification (--text1 on a raw).
func otherKindsFlag(e *env, kind payload.Kind, fs *flag.FlagSet, args []string) error {
	for _, a := range args {
		if a == "--" || !strings.HasPrefix(a, "-") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if fs.Lookup(name) != nil {
			continue
		}
		for _, k := range []payload.Kind{payload.KindToast, payload.KindTile, payload.KindRaw} {
			if k == kind {
				continue
			}
			if other, _ := newSendFlags(e, k); other.Lookup(name) != nil {
				return badUsage("--%s is a flag of send %s, not of send %s (openmpns send %s --help lists its flags)", name, k, kind, kind)
			}
		}
	}
	return nil
}

// bodyFlags are the flags that make the body of a send; --xml (and for a
// raw --data-file) gives the whole body instead.
var bodyFlags = []string{"text1", "text2", "param", "sound", "silent",
	"template", "id", "title", "count", "background-image", "back-title", "back-content", "field", "clear", "data"}

// oneBody refuses flags that would each make the body: --text1 with --xml
// was dropped without a word.
func oneBody(fs *flag.FlagSet) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, whole := range []string{"xml", "data-file"} {
		if !set[whole] {
			continue
		}
		for _, name := range bodyFlags {
			if set[name] {
				return badUsage("--%s does not go with --%s: the file is the whole body (put it in the file, or leave --%s out)", name, whole, whole)
			}
		}
	}
	if set["xml"] && set["data-file"] {
		return badUsage("--data-file does not go with --xml: give one file")
	}
	return nil
}

// sendUsage is the help of `openmpns send` without a kind.
func sendUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: openmpns send %s\n\nSends a notification to a Channel URI with the MPNS headers and prints the answer.\nEach kind has its own flags: openmpns send toast --help, send tile --help, send raw --help.\n%s\n\nExamples:\n", sendSynopsis, sendExit)
	for _, k := range []payload.Kind{payload.KindToast, payload.KindTile, payload.KindRaw} {
		fmt.Fprintln(w, sendExamples[k])
	}
}

func runSend(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && isHelp(args[0]) {
			sendUsage(e.stdout)
			return nil
		}
		sendUsage(e.stderr)
		return errUsage
	}
	kind, err := payload.ParseKind(args[0])
	if err != nil {
		return badUsage("%w; usage: openmpns send %s", err, sendSynopsis)
	}
	fs, f := newSendFlags(e, kind)
	if err := otherKindsFlag(e, kind, fs, args[1:]); err != nil {
		return err
	}
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if f.uri == "" {
		fmt.Fprintf(fs.Output(), "openmpns send %s: --uri is required\n", kind)
		fs.Usage()
		return errUsage
	}
	if err := oneBody(fs); err != nil {
		return err
	}
	class, err := parseClassFlag(f.class, kind)
	if err != nil {
		return &usageError{err}
	}
	uri, xmlFile, msgID, asJSON, headers := &f.uri, &f.xmlFile, &f.msgID, &f.asJSON, f.headers
	text1, text2, param, sound, silent := &f.text1, &f.text2, &f.param, &f.sound, &f.silent
	template, tileID, title, count, bg, backTitle, backContent := &f.template, &f.tileID, &f.title, &f.count, &f.bg, &f.backTitle, &f.backContent
	fields, clears, data, dataFile := f.fields, f.clears, &f.data, &f.dataFile
	var body []byte
	switch {
	case *xmlFile == "-":
		body, err = io.ReadAll(io.LimitReader(e.stdin, 1<<20))
	case *xmlFile != "":
		body, err = os.ReadFile(*xmlFile)
	case kind == payload.KindToast:
		t := &payload.Toast{Text1: *text1, Text2: *text2, Param: *param, Sound: *sound, Silent: *silent}
		if err = t.Validate(); err == nil {
			body = t.Encode()
		}
	case kind == payload.KindTile:
		t := &payload.Tile{ID: *tileID, Template: payload.Template(*template), Fields: map[string]string{}}
		for name, v := range map[string]string{payload.Title: *title, payload.Count: *count, payload.BackgroundImage: *bg,
			payload.BackTitle: *backTitle, payload.BackContent: *backContent} {
			if v != "" {
				t.Fields[name] = v
			}
		}
		for _, f := range fields {
			name, v, ok := strings.Cut(f, "=")
			if !ok {
				return fmt.Errorf("--field %q: want Name=Value", f)
			}
			t.Fields[name] = v
		}
		t.Cleared = slices.Clone(clears)
		if order := payload.Elements(t.Template); order != nil {
			slices.SortFunc(t.Cleared, func(a, b string) int { return slices.Index(order, a) - slices.Index(order, b) })
		}
		if err = t.Validate(); err == nil {
			body = t.Encode()
		}
	case *dataFile != "":
		body, err = os.ReadFile(*dataFile)
	default:
		body = []byte(*data)
	}
	if err != nil {
		return err
	}
	req := sender.Request{URI: *uri, Kind: kind, Body: body, Class: class}
	switch *msgID {
	case "none", "":
	case "auto":
		req.MessageID = sender.NewMessageID()
	default:
		req.MessageID = *msgID
	}
	for _, h := range headers {
		name, v, ok := strings.Cut(h, ":")
		if !ok {
			return fmt.Errorf("--header %q: want 'Name: value'", h)
		}
		if req.Header == nil {
			req.Header = map[string][]string{}
		}
		req.Header.Add(strings.TrimSpace(name), strings.TrimSpace(v))
	}
	if !*asJSON {
		fmt.Fprintf(e.stderr, "sending %s (%d bytes, class %d) to %s\n", kind, len(body), req.Class, *uri)
	}
	resp, err := (&sender.Client{}).Send(ctx, req)
	if err != nil {
		return err
	}
	if *asJSON {
		b, _ := json.Marshal(map[string]any{
			"status": resp.StatusCode, "notification_status": resp.NotificationStatus,
			"subscription_status": resp.SubscriptionStatus, "device_connection_status": resp.DeviceConnectionStatus,
			"message_id": resp.MessageID, "reason": resp.Reason, "advice": resp.Advice().String(),
		})
		fmt.Fprintln(e.stdout, string(b))
	} else {
		fmt.Fprintf(e.stdout, "HTTP %d\nX-NotificationStatus: %s\nX-SubscriptionStatus: %s\nX-DeviceConnectionStatus: %s\nX-MessageID: %s\n",
			resp.StatusCode, resp.NotificationStatus, resp.SubscriptionStatus, resp.DeviceConnectionStatus, resp.MessageID)
		if resp.Reason != "" {
			fmt.Fprintf(e.stdout, "Reason: %s\n", resp.Reason)
		}
		fmt.Fprintf(e.stdout, "Advice: %s\n", resp.Advice())
	}
	switch {
	case resp.Delivered(), resp.Suppressed():
		// Suppressed: accepted, then dropped by the phone's settings (not
		// bound, opted out, saving power); resending will not change it.
		return nil
	case resp.StatusCode != 200:
		return fmt.Errorf("the service answered %d (%s)", resp.StatusCode, resp.Advice())
	case resp.NotificationStatus == "":
		return errors.New("the service answered 200 without an X-NotificationStatus: not an MPNS answer")
	}
	return fmt.Errorf("the service answered 200 %s, not Received: %s", resp.NotificationStatus, resp.Advice())
}

func parseClassFlag(v string, k payload.Kind) (int, error) {
	if iv, err := parseInterval(v); err == nil {
		return sender.ClassFor(k, iv), nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("--class %q: want immediate, 450, 900 or an X-NotificationClass number", v)
	}
	return n, nil
}

// parseInterval reads a batching interval: immediate (or empty), 450 or 900.
func parseInterval(s string) (sender.Interval, error) {
	switch s {
	case "immediate", "":
		return sender.Immediate, nil
	case "450":
		return sender.Within450, nil
	case "900":
		return sender.Within900, nil
	}
	return 0, fmt.Errorf("%q: want immediate, 450 or 900", s)
}
