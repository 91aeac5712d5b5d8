package cli

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openmpns/openmpns/device/fleet"
)

// asMainEnv makes the test binary act as the openmpns program, so that the
// fleet can start worker processes of "itself" in tests.
const asMainEnv = "OPENMPNS_CLI_AS_MAIN"

// unreadableReportEnv makes a fleet worker of the test binary write, as
// its final report, one the main process cannot read: a latency histogram
// whose count is above what its buckets hold (what a snapshot taken while
// a notification was recorded held before the histogram was fixed).
const unreadableReportEnv = "OPENMPNS_CLI_TEST_UNREADABLE_REPORT"

func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) == "1" {
		if os.Getenv(unreadableReportEnv) == "1" && slices.Contains(os.Args[1:], "--worker") {
			io.Copy(io.Discard, os.Stdin) // until the main process stops it
			fmt.Println(`{"report":{"devices":1,"latency_histogram":{"count":2,"buckets":[[1,1]]}}}`)
			os.Exit(0)
		}
		os.Exit(Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// A worker whose final report cannot be read fails the run with the
// reason, instead of the run's report silently lacking its figures
// (TestFleetHandsOffToDemoBackend's 4 of 8 handoffs).
func TestFleetSaysWhyAWorkersReportIsMissing(t *testing.T) {
	fleetWorkers(t)
	t.Setenv(unreadableReportEnv, "1")
	code, out, stderr := run(t, "fleet", "--server", "http://127.0.0.1:1", "--devices", "2", "--per-process", "1", "--apps", "a",
		"--duration", "100ms", "--progress", "50ms")
	if code != 1 || !strings.Contains(stderr, "no report (exit status 0); a line it wrote could not be read: ") ||
		!strings.Contains(stderr, "histogram: buckets hold 1 samples, count says 2") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	if first, _, _ := strings.Cut(out, "\n"); strings.Join(strings.Fields(first), " ") != "devices 0" {
		t.Errorf("the report counts devices it has no report of:\n%s", out)
	}
}

func TestParseShare(t *testing.T) {
	for in, want := range map[string]float64{"0": 0, "0.25": 0.25, "10%": 0.1, "5%/min": 0.05, "100%": 1} {
		if got, err := parseShare(in); err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "x", "-1", "101%", "2"} {
		if _, err := parseShare(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	if n := defaultSourceAddrs([]string{"http://127.0.0.1:1", "http://127.0.0.1:2"}, 100000); n != 3 {
		t.Errorf("source addresses for 50,000 per server: %d", n)
	}
	if n := defaultSourceAddrs([]string{"http://example.com"}, 100000); n != 1 {
		t.Errorf("source addresses for a remote server: %d", n)
	}
}

// fleetWorkers makes this test binary the worker processes of the fleets
// the test starts (see workerEnv).
func fleetWorkers(t *testing.T) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(workerEnv, exe)
	t.Setenv(asMainEnv, "1")
}

// A sharded fleet as a user runs it: 70 devices in 3 worker processes
// write their Channel URIs to a CSV file as they appear; `openmpns load`
// sends one raw to each from that file; the fleet stops at
// --until-received and its merged report counts exactly.
func TestShardedFleetAndLoad(t *testing.T) {
	fleetWorkers(t)
	srv := start(t, "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--log-level", "warn")
	line := srv.next(t, "openmpns server on ")
	base := "http://" + strings.Fields(strings.TrimPrefix(line, "openmpns server on "))[0]

	dir := t.TempDir()
	chFile, repFile := filepath.Join(dir, "channels.csv"), filepath.Join(dir, "report.json")
	const devices, apps = 70, 2
	fl := start(t, "fleet", "--server", base, "--devices", "70", "--per-process", "30", "--apps", "a,b",
		"--connect-rate", "0", "--opt-out", "50%", "--channels-out", chFile, "--report", repFile,
		"--until-received", "140", "--progress", "50ms", "--min-backoff", "10ms")
	// The channels file fills as the devices register.
	var rows [][]string
	deadline := time.Now().Add(60 * time.Second)
	for len(rows) < devices*apps+1 {
		if time.Now().After(deadline) {
			t.Fatalf("channels file has %d rows; stderr: %s", len(rows), fl.stderr.String())
		}
		b, _ := os.ReadFile(chFile)
		rows, _ = csv.NewReader(bytes.NewReader(b)).ReadAll()
		time.Sleep(20 * time.Millisecond) // polling a file another process writes
	}
	if strings.Join(rows[0], ",") != "device,device_id,app,channel,uri,toast,replaces" {
		t.Fatalf("header %v", rows[0])
	}
	if fi, err := os.Stat(chFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("channels file mode %v (%v): Channel URIs are capabilities, want 0600", fi.Mode(), err)
	}
	var out, errb syncBuffer
	if code := RunContext(context.Background(), []string{"load", "--channels", chFile, "--concurrency", "4",
		"--count", "140", "--mix", "raw=1", "--raw-size", "64", "--cpuprofile", filepath.Join(dir, "load.pprof"),
		"--report", filepath.Join(dir, "load.json")}, nil, &out, &errb); code != 0 {
		t.Fatalf("load exit %d: %s", code, errb.String())
	}
	if fi, err := os.Stat(filepath.Join(dir, "load.pprof")); err != nil || fi.Size() == 0 {
		t.Fatalf("--cpuprofile wrote no profile: %v", err)
	}
	if !strings.Contains(out.String(), "200 Received") {
		t.Fatalf("load output: %s", out.String())
	}
	select {
	case code := <-fl.code:
		fl.code <- code // for the cleanup
		if code != 0 {
			t.Fatalf("fleet exit %d: %s", code, fl.stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("fleet did not stop at --until-received; stderr: %s", fl.stderr.String())
	}
	b, err := os.ReadFile(repFile)
	if err != nil {
		t.Fatal(err)
	}
	var r fleet.Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if r.Devices != devices || r.Registered != devices || r.Channels != devices*apps || r.Shards != 3 {
		t.Fatalf("report: devices %d registered %d channels %d shards %d", r.Devices, r.Registered, r.Channels, r.Shards)
	}
	if r.Notifications["raw"] != 140 || r.Total() != 140 || r.Duplicates != 0 || r.OutOfOrder != 0 || r.Latency.Count != 140 {
		t.Fatalf("report: %v, duplicates %d, out of order %d, latency samples %d", r.Notifications, r.Duplicates, r.OutOfOrder, r.Latency.Count)
	}
	t.Logf("fleet stderr:\n%s", fl.stderr.String())
	if !strings.Contains(fl.stderr.String(), "in 3 worker processes") || !strings.Contains(fl.stderr.String(), "registered") {
		t.Fatalf("no progress shown: %s", fl.stderr.String())
	}
	var lr loadReport
	b, _ = os.ReadFile(filepath.Join(dir, "load.json"))
	if err := json.Unmarshal(b, &lr); err != nil || lr.Load.Sent != 140 || lr.Load.Received != 140 {
		t.Fatalf("load report %s: %v", b, err)
	}
}

// `openmpns load --fleet` runs its own devices and reports end to end.
func TestLoadWithItsOwnFleet(t *testing.T) {
	srv := start(t, "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--log-level", "warn")
	line := srv.next(t, "openmpns server on ")
	base := "http://" + strings.Fields(strings.TrimPrefix(line, "openmpns server on "))[0]
	rep := filepath.Join(t.TempDir(), "r.json")
	var out, errb syncBuffer
	if code := RunContext(context.Background(), []string{"load", "--fleet", "20", "--server", base, "--rate", "500",
		"--count", "100", "--report", rep}, nil, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var lr loadReport
	b, _ := os.ReadFile(rep)
	if err := json.Unmarshal(b, &lr); err != nil || lr.Fleet == nil {
		t.Fatalf("report %s: %v", b, err)
	}
	if lr.Load.Sent != 100 || lr.Fleet.Total() != lr.Load.Received || lr.Fleet.Latency.Count != uint64(lr.Load.Received) {
		t.Fatalf("sent %d, accepted %d, devices got %d", lr.Load.Sent, lr.Load.Received, lr.Fleet.Total())
	}
	if !strings.Contains(out.String(), "end to end") {
		t.Fatalf("output: %s", out.String())
	}
}

// A scenario from the command line: exit 1 on a failed expectation, with
// the JUnit file written either way.
func TestFleetScenarioCommand(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(good, []byte("name: ok\ndevices: 3\napps: [a]\nphases:\n  - connect: {}\n  - send: {kind: raw, count: 2}\n  - expect: {raws: 2}\n"), 0o644)
	os.WriteFile(bad, []byte("name: bad\ndevices: 3\napps: [a]\nphases:\n  - connect: {}\n  - expect: {raws: 1, within: 10ms}\n"), 0o644)
	for _, c := range []struct {
		file string
		code int
		want string
	}{{good, 0, "PASS  3 expect"}, {bad, 1, "FAIL  2 expect"}} {
		junit := filepath.Join(dir, filepath.Base(c.file)+".xml")
		var out, errb syncBuffer
		code := RunContext(context.Background(), []string{"fleet", "--scenario", c.file, "--junit", junit}, nil, &out, &errb)
		if code != c.code || !strings.Contains(out.String(), c.want) {
			t.Fatalf("%s: exit %d\n%s\n%s", c.file, code, out.String(), errb.String())
		}
		if b, err := os.ReadFile(junit); err != nil || !strings.Contains(string(b), "<testsuite") {
			t.Fatalf("junit %s: %v", b, err)
		}
	}
}

// A restart phase restarts the embedded server on the same address: the
// devices come back by themselves with their Channel URIs, and what is sent
// afterwards arrives, once.
func TestFleetScenarioRestartsEmbeddedServer(t *testing.T) {
	file := filepath.Join(t.TempDir(), "restart.yaml")
	src := "name: restart\ndevices: 3\napps: [a]\nphases:\n  - connect: {}\n  - send: {kind: raw, count: 1}\n  - expect: {raws: 1}\n" +
		"  - restart: {server: true}\n  - send: {kind: raw, count: 1}\n  - expect: {raws: 2, all_delivered: true, no_duplicates: true, within: 20s}\n"
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb syncBuffer
	code := RunContext(context.Background(), []string{"fleet", "--scenario", file}, nil, &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "PASS  4 restart the server") || !strings.Contains(out.String(), "PASS  6 expect") {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
}

func TestServePprof(t *testing.T) {
	srv := start(t, "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--log-level", "warn", "--pprof", "127.0.0.1:0")
	line := srv.next(t, "profiler on ")
	u := strings.TrimSpace(strings.TrimPrefix(line, "profiler on "))
	resp, err := http.Get(u + "heap?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), "heap profile") {
		t.Fatalf("%d %.200s", resp.StatusCode, b)
	}
}

// Numbers a fleet cannot run with are usage errors: --progress 0 panicked
// (time.NewTicker) with a Go stack; a negative --duration ran until Ctrl-C.
func TestFleetRefusesNumbersItCannotRunWith(t *testing.T) {
	for _, c := range [][]string{
		{"--progress", "0"}, {"--progress", "-1s"}, {"--duration", "-1s"}, {"--until-received", "-1"}, {"--connect-rate", "-5"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		code, _, stderr := runRecover(t, ctx, append([]string{"fleet", "--server", "http://127.0.0.1:1", "--devices", "1", "--duration", "1s"}, c...)...)
		cancel()
		if code != 2 || !strings.Contains(stderr, "openmpns fleet: "+c[0]+" ") {
			t.Errorf("fleet %v: exit %d, stderr %q; want 2 and a word on %s", c, code, stderr, c[0])
		}
	}
}

// Two fleets on one --state directory would share their devices'
// identities and knock each other off (the first ended with 0 connected):
// the second is refused, as a second device is, and so are a scenario and
// a device on that directory.
func TestFleetStateDirectoryIsLocked(t *testing.T) {
	srv := start(t, "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--log-level", "warn")
	line := srv.next(t, "openmpns server on ")
	base := "http://" + strings.Fields(strings.TrimPrefix(line, "openmpns server on "))[0]
	state := t.TempDir()
	first := start(t, "fleet", "--server", base, "--devices", "2", "--state", state, "--progress", "100ms")
	first.waitStderr(t, "2 registered")
	file := filepath.Join(t.TempDir(), "s.yaml")
	os.WriteFile(file, []byte("name: s\ndevices: 1\napps: [a]\nphases:\n  - connect: {}\n"), 0o644)
	for _, args := range [][]string{
		{"fleet", "--server", base, "--devices", "2", "--state", state, "--duration", "500ms", "--progress", "100ms"},
		{"fleet", "--scenario", file, "--server", base, "--state", state},
		{"device", "--server", base, "--app", "a", "--state", state},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		code, _, stderr := runRecover(t, ctx, args...)
		cancel()
		if code != 1 || !strings.Contains(stderr, "state directory "+state+" is in use by another openmpns fleet (process ") || !strings.Contains(stderr, "--state") {
			t.Errorf("%v on the state of a running fleet: exit %d, stderr %q", args[:2], code, stderr)
		}
	}
	if code := first.stop(t); code != 0 {
		t.Fatalf("the first fleet: exit %d: %s", code, first.stderr.String())
	}
	// Once it ended, the directory is free.
	if code, _, stderr := run(t, "fleet", "--server", base, "--devices", "2", "--state", state, "--duration", "200ms", "--progress", "100ms"); code != 0 {
		t.Fatalf("a fleet after the first: exit %d: %s", code, stderr)
	}
}

// A fleet none of whose devices ever connected (a wrong --server) tested
// nothing: it exits 1 with the reason, its report still written; it
// exited 0.
func TestFleetThatNeverConnectsFails(t *testing.T) {
	report := filepath.Join(t.TempDir(), "r.json")
	code, out, stderr := run(t, "fleet", "--server", "http://127.0.0.1:1", "--devices", "2", "--duration", "1s", "--progress", "200ms", "--report", report)
	if code != 1 || !strings.Contains(stderr, "openmpns fleet: no device ever connected to http://127.0.0.1:1; last error: connect: ") ||
		!strings.Contains(stderr, "connection refused") {
		t.Errorf("exit %d with no device ever connected:\n%s\n%s", code, out, stderr)
	}
	if _, err := os.Stat(report); err != nil {
		t.Errorf("the report: %v", err)
	}
}

// fleetIDs runs a fleet of 4 devices on state until every device has
// registered and returns each device's id by index, as its --channels-out
// file says.
func fleetIDs(t *testing.T, base, state string, extra ...string) map[string]string {
	t.Helper()
	ch := filepath.Join(t.TempDir(), "channels.csv")
	fl := start(t, append([]string{"fleet", "--server", base, "--devices", "4", "--state", state, "--channels-out", ch,
		"--progress", "50ms", "--min-backoff", "10ms"}, extra...)...)
	fl.waitStderr(t, "4 registered")
	if code := fl.stop(t); code != 0 {
		t.Fatalf("fleet %v: exit %d: %s", extra, code, fl.stderr.String())
	}
	b, err := os.ReadFile(ch)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil || len(rows) != 5 {
		t.Fatalf("channels file %q: %v", b, err)
	}
	ids := map[string]string{}
	for _, r := range rows[1:] {
		ids[r[0]] = r[1]
	}
	return ids
}

// A device's state under --state is DIR/NNNNNN whatever the sharding: a
// fleet run in worker processes kept it under DIR/shard-K/NNNNNN, so the
// same devices run with another --per-process (or grown past 15,000) were
// new phones with new Channel URIs. A directory an older fleet left in
// shard-K is moved to where the device now looks for it.
func TestFleetStateDoesNotDependOnSharding(t *testing.T) {
	fleetWorkers(t)
	srv := start(t, "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--log-level", "warn")
	line := srv.next(t, "openmpns server on ")
	base := "http://" + strings.Fields(strings.TrimPrefix(line, "openmpns server on "))[0]
	state := t.TempDir()
	first := fleetIDs(t, base, state)
	if again := fleetIDs(t, base, state, "--per-process", "2"); !maps.Equal(again, first) {
		t.Fatalf("in 2 worker processes the devices are %v; in one they were %v", again, first)
	}
	if again := fleetIDs(t, base, state); !maps.Equal(again, first) {
		t.Fatalf("in one process again the devices are %v; at first %v", again, first)
	}
	// As an older fleet in two worker processes left them.
	for i, shard := range []string{"shard-0", "shard-0", "shard-2", "shard-2"} {
		name := fmt.Sprintf("%06d", i)
		if err := os.MkdirAll(filepath.Join(state, shard), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(state, name), filepath.Join(state, shard, name)); err != nil {
			t.Fatal(err)
		}
	}
	if again := fleetIDs(t, base, state); !maps.Equal(again, first) {
		t.Fatalf("from an older fleet's shard directories the devices are %v; they were %v", again, first)
	}
	if _, err := os.Stat(filepath.Join(state, "shard-0", "000000")); !os.IsNotExist(err) {
		t.Fatalf("shard-0/000000 is still there: %v", err)
	}
}

// writeDeviceState makes dir/device.json holding content, written at t.
func writeDeviceState(t *testing.T, dir, content string, at time.Time) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "device.json")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, at, at); err != nil {
		t.Fatal(err)
	}
}

func readDeviceState(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "device.json"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A device with state both in DIR/NNNNNN and in an older fleet's
// DIR/shard-K/NNNNNN keeps the copy whose device.json was written last,
// and the other goes to DIR/replaced, said once: DIR/NNNNNN was kept
// whatever its age, and a line per device said so at every start, since
// the shard directory never emptied.
func TestFleetShardStateWrittenLastWins(t *testing.T) {
	dir := t.TempDir()
	old, recent := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	writeDeviceState(t, filepath.Join(dir, "000000"), "dir 0", old)
	writeDeviceState(t, filepath.Join(dir, "shard-0", "000000"), "shard 0", recent)
	writeDeviceState(t, filepath.Join(dir, "000001"), "dir 1", recent)
	writeDeviceState(t, filepath.Join(dir, "shard-0", "000001"), "shard 1", old)
	writeDeviceState(t, filepath.Join(dir, "shard-2", "000002"), "shard 2", old)

	var stderr bytes.Buffer
	if err := adoptShardState(&env{stderr: &stderr}, dir); err != nil {
		t.Fatal(err)
	}
	if got := stderr.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, "moved 1 devices' state") ||
		!strings.Contains(got, "2 devices had state both") || !strings.Contains(got, filepath.Join(dir, "replaced")) {
		t.Errorf("said:\n%s", got)
	}
	for sub, want := range map[string]string{
		"000000":                            "shard 0",
		"000001":                            "dir 1",
		"000002":                            "shard 2",
		filepath.Join("replaced", "000000"): "dir 0",
		filepath.Join("replaced", "shard-0", "000001"): "shard 1",
	} {
		if got := readDeviceState(t, filepath.Join(dir, sub)); got != want {
			t.Errorf("%s holds %q, want %q", sub, got, want)
		}
	}
	for _, shard := range []string{"shard-0", "shard-2"} {
		if _, err := os.Lstat(filepath.Join(dir, shard)); !os.IsNotExist(err) {
			t.Errorf("%s is still there: %v", shard, err)
		}
	}

	stderr.Reset()
	if err := adoptShardState(&env{stderr: &stderr}, dir); err != nil {
		t.Fatal(err)
	}
	if stderr.Len() != 0 {
		t.Errorf("a second start said:\n%s", stderr.String())
	}
}

// However many devices an older fleet's shard directories hold, what was
// done with them is one line.
func TestFleetShardStateSaysItInOneLine(t *testing.T) {
	dir := t.TempDir()
	at := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 1000 {
		name := fmt.Sprintf("%06d", i)
		shard := filepath.Join(dir, fmt.Sprintf("shard-%d", i/100*100))
		writeDeviceState(t, filepath.Join(shard, name), "shard", at.Add(time.Duration(i%2)*time.Hour))
		if i >= 10 {
			writeDeviceState(t, filepath.Join(dir, name), "dir", at)
		}
	}
	var stderr bytes.Buffer
	if err := adoptShardState(&env{stderr: &stderr}, dir); err != nil {
		t.Fatal(err)
	}
	if got := stderr.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, "moved 10 devices' state") ||
		!strings.Contains(got, "990 devices had state both") || !strings.Contains(got, "495 of them from") {
		t.Errorf("said:\n%s", got)
	}
	stderr.Reset()
	if err := adoptShardState(&env{stderr: &stderr}, dir); err != nil || stderr.Len() != 0 {
		t.Errorf("a second start: %v, said:\n%s", err, stderr.String())
	}
}

// A device whose state cannot be saved when the fleet stops is an error
// (exit 1, naming the device), in one process or in worker processes; the
// report is still written. The fleet exited 0 and the state was lost
// without a word.
func TestFleetSaysWhenStateIsNotSaved(t *testing.T) {
	fleetWorkers(t)
	srv := start(t, "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--log-level", "warn")
	line := srv.next(t, "openmpns server on ")
	base := "http://" + strings.Fields(strings.TrimPrefix(line, "openmpns server on "))[0]
	for _, perProcess := range []string{"15000", "2"} {
		state, report := t.TempDir(), filepath.Join(t.TempDir(), "r.json")
		fl := start(t, "fleet", "--server", base, "--devices", "4", "--state", state, "--per-process", perProcess,
			"--report", report, "--progress", "50ms", "--min-backoff", "10ms")
		fl.waitStderr(t, "4 registered")
		dir := filepath.Join(state, "000001")
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dir, []byte("not a directory"), 0o600); err != nil {
			t.Fatal(err)
		}
		code := fl.stop(t)
		if stderr := fl.stderr.String(); code != 1 || !strings.Contains(stderr, "closing 1 device(s) failed") || !strings.Contains(stderr, "device 1:") {
			t.Errorf("--per-process %s: exit %d with device 1's state unwritable:\n%s", perProcess, code, stderr)
		}
		var r fleet.Report
		if b, err := os.ReadFile(report); err != nil || json.Unmarshal(b, &r) != nil || r.Devices != 4 {
			t.Errorf("--per-process %s: report %+v: %v", perProcess, r, err)
		}
	}
}

// --log-level holds for the worker processes too: they logged at warn
// whatever the user asked, so --log-level error still printed their
// devices' warnings (and debug showed nothing of theirs).
func TestFleetWorkersLogAtTheLevelAsked(t *testing.T) {
	fleetWorkers(t)
	code, out, stderr := run(t, "fleet", "--server", "http://127.0.0.1:1", "--devices", "2", "--per-process", "1",
		"--duration", "1s", "--progress", "200ms", "--log-level", "error")
	if code != 1 || !strings.Contains(stderr, "no device ever connected") || !strings.Contains(stderr, "connection refused") {
		t.Fatalf("exit %d:\n%s\n%s", code, out, stderr)
	}
	if strings.Contains(stderr, "level=WARN") {
		t.Errorf("warnings with --log-level error:\n%s", stderr)
	}
}

// --connect-rate 0 starts every device at once, and the fleet says so; it
// said "0 connects/s", as if no device would connect.
func TestFleetSaysConnectRateZeroIsAllAtOnce(t *testing.T) {
	_, _, stderr := run(t, "fleet", "--server", "http://127.0.0.1:1", "--devices", "2", "--connect-rate", "0",
		"--duration", "100ms", "--progress", "50ms")
	if !strings.Contains(stderr, "2 devices × 1 apps against http://127.0.0.1:1, all at once") {
		t.Errorf("stderr:\n%s", stderr)
	}
}

// childWorker returns the process id of this process's fleet worker whose
// first device is first (Linux: from /proc).
func childWorker(t *testing.T, first int) int {
	t.Helper()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		stat, err := os.ReadFile(filepath.Join(d, "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, not ')'.
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) < 2 || f[1] != strconv.Itoa(os.Getpid()) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join(d, "cmdline"))
		if bytes.Contains(cmdline, []byte("\x00--worker\x00")) && bytes.Contains(cmdline, []byte("\x00--first-index\x00"+strconv.Itoa(first)+"\x00")) {
			pid, _ := strconv.Atoi(filepath.Base(d))
			return pid
		}
	}
	t.Fatalf("no worker of first device %d among this process's children", first)
	return 0
}

// A worker process that dies during the run (the OOM killer, a crash) is
// said at once, and its devices leave the live figures: its last
// progress line kept counting them as connected and registered until the
// end of the run, however long.
func TestFleetSaysWhenAWorkerDies(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("finds the worker in /proc")
	}
	fleetWorkers(t)
	srv := start(t, "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--log-level", "warn")
	line := srv.next(t, "openmpns server on ")
	base := "http://" + strings.Fields(strings.TrimPrefix(line, "openmpns server on "))[0]
	fl := start(t, "fleet", "--server", base, "--devices", "4", "--per-process", "2", "--progress", "50ms", "--min-backoff", "10ms")
	fl.waitStderr(t, "4 connected, 4 registered")
	p, err := os.FindProcess(childWorker(t, 2))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	fl.waitStderr(t, "fleet: the worker process of devices 2-3 ended during the run (signal: killed)")
	fl.waitStderr(t, "4/4 started, 2 connected, 2 registered")
	if code := fl.stop(t); code != 1 || !strings.Contains(fl.stderr.String(), "no report") {
		t.Fatalf("exit %d with a worker lost: %s", code, fl.stderr.String())
	}
}
