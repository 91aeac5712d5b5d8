package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// send exits 0 only when the service accepted the notification: 200
// Received, or 200 Suppressed (accepted, then dropped by the phone's
// settings, a normal outcome). 200 QueueFull ("retry with backoff") exited
// 0 as if it had been accepted.
func TestSendSucceedsOnlyWhenAccepted(t *testing.T) {
	status := func(s string) func() string { return func() string { return s } }
	for _, c := range []struct {
		code       int
		status     string
		exit       int
		want, told string
	}{
		{200, "QueueFull", 1, "X-NotificationStatus: QueueFull", "openmpns send: the service answered 200 QueueFull, not Received: retry with backoff\n"},
		{200, "", 1, "HTTP 200", "openmpns send: the service answered 200 without an X-NotificationStatus: not an MPNS answer\n"},
		{412, "Dropped", 1, "HTTP 412", "openmpns send: the service answered 412 (retry in an hour)\n"},
		{200, "Received", 0, "X-NotificationStatus: Received", ""},
		{200, "Suppressed", 0, "X-NotificationStatus: Suppressed", ""},
	} {
		code, out, stderr := run(t, "send", "raw", "--uri", answering(t, c.code, status(c.status)), "--data", "x")
		if code != c.exit || !strings.Contains(out, c.want) || (c.told != "" && !strings.HasSuffix(stderr, c.told)) {
			t.Errorf("%d %s: exit %d, want %d and %q\n%s%s", c.code, c.status, code, c.exit, c.told, out, stderr)
		}
	}
}

// A body given whole (--xml, --data-file) does not go with the flags that
// build one: --text1 with --xml was dropped without a word.
func TestSendRefusesTwoBodies(t *testing.T) {
	dir := t.TempDir()
	xml, bin := filepath.Join(dir, "f.xml"), filepath.Join(dir, "f.bin")
	os.WriteFile(xml, []byte(`<?xml version="1.0" encoding="utf-8"?><wp:Notification xmlns:wp="WPNotification"><wp:Toast><wp:Text1>Hi</wp:Text1></wp:Toast></wp:Notification>`), 0o644)
	os.WriteFile(bin, []byte("raw"), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"toast", "--text1", "a", "--xml", xml}, "--text1 does not go with --xml"},
		{[]string{"tile", "--xml", xml, "--clear", "Count"}, "--clear does not go with --xml"},
		{[]string{"raw", "--data", "x", "--data-file", bin}, "--data does not go with --data-file"},
		{[]string{"raw", "--xml", xml, "--data-file", bin}, "--data-file does not go with --xml"},
	} {
		code, _, stderr := run(t, append(append([]string{"send"}, c.args...), "--uri", "http://127.0.0.1:1/push/AAAAAAAAAAAAAAAAAAAAAAAAAAA")...)
		if code != 2 || !strings.HasPrefix(stderr, "openmpns send: "+c.want) {
			t.Errorf("send %v: exit %d, %q; want 2 and %q", c.args, code, stderr, c.want)
		}
	}
}
