package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/openmpns/openmpns/shared/payload"
	"github.com/openmpns/openmpns/shared/sender"
)

// multiFlag collects a repeatable flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func runSend(ctx context.Context, e *env, args []string) error {
	const synopsis = "toast|tile|raw --uri URI [payload flags | --xml FILE] [--class immediate|450|900] [--message-id ID] [--json]"
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fs := newFlags(e, "send", synopsis)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			fs.SetOutput(e.stdout)
			fs.Usage()
			sendHelp(e)
			return nil
		}
		fs.Usage()
		sendHelp(e)
		return errUsage
	}
	kind, err := payload.ParseKind(args[0])
	if err != nil {
		return fmt.Errorf("%w; usage: openmpns send %s", err, synopsis)
	}
	fs := newFlags(e, "send "+args[0], "--uri URI ...")
	uri := fs.String("uri", "", "the Channel URI (required)")
	xmlFile := fs.String("xml", "", "send this file as the body instead of building it from flags (- for stdin)")
	class := fs.String("class", "immediate", "batching interval: immediate, 450 or 900 (or a raw X-NotificationClass number)")
	msgID := fs.String("message-id", "auto", "X-MessageID: a value, auto (a new UUID) or none")
	asJSON := fs.Bool("json", false, "print the answer as one JSON object")
	var headers multiFlag
	fs.Var(&headers, "header", "extra request header 'Name: value' (repeatable), e.g. an Authorization header")
	// toast
	text1 := fs.String("text1", "", "toast: bold title (Text1)")
	text2 := fs.String("text2", "", "toast: body (Text2)")
	param := fs.String("param", "", "toast: page to open when tapped, e.g. /Page.xaml?id=1")
	sound := fs.String("sound", "", "toast: sound file")
	silent := fs.Bool("silent", false, "toast: no sound")
	// tile
	template := fs.String("template", "", "tile: FlipTile, CycleTile, IconicTile, or empty for the WP7.5 tile")
	tileID := fs.String("id", "", "tile: secondary tile id (e.g. /Detail.xaml?id=7); empty = the primary tile")
	title := fs.String("title", "", "tile: Title")
	count := fs.String("count", "", "tile: Count (0-99; 0 hides the badge)")
	bg := fs.String("background-image", "", "tile: BackgroundImage")
	backTitle := fs.String("back-title", "", "tile: BackTitle")
	backContent := fs.String("back-content", "", "tile: BackContent")
	var fields, clears multiFlag
	fs.Var(&fields, "field", "tile: any element as Name=Value (repeatable), e.g. --field WideContent1=Hello")
	fs.Var(&clears, "clear", "tile: reset an element with Action=\"Clear\" (repeatable), e.g. --clear Count")
	// raw
	data := fs.String("data", "", "raw: the bytes to send")
	dataFile := fs.String("data-file", "", "raw: send this file's bytes")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if *uri == "" {
		fmt.Fprintln(e.stderr, "openmpns send: --uri is required")
		fs.Usage()
		return errUsage
	}
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
	req := sender.Request{URI: *uri, Kind: kind, Body: body}
	if req.Class, err = parseClassFlag(*class, kind); err != nil {
		return err
	}
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
	if resp.StatusCode != 200 {
		return fmt.Errorf("the service answered %d", resp.StatusCode)
	}
	return nil
}

func sendHelp(e *env) {
	fmt.Fprintln(e.stderr, `
Examples:
  openmpns send toast --uri URI --text1 "Breaking" --text2 "Go 2 released" --param "/Story.xaml?id=1"
  openmpns send tile  --uri URI --template FlipTile --title News --count 3 --back-title More
  openmpns send tile  --uri URI --template IconicTile --field WideContent1=Alice --clear Count
  openmpns send raw   --uri URI --data '{"score":3}' --class 450
  openmpns send tile  --uri URI --xml tile.xml`)
}

func parseClassFlag(v string, k payload.Kind) (int, error) {
	if iv, err := parseInterval(v); err == nil {
		return sender.ClassFor(k, iv), nil
	}
	var n int
	if _, err := fmt.Sscan(v, &n); err != nil {
		return 0, fmt.Errorf("--class %q: want immediate, 450, 900 or a number", v)
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
