package test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/internal/natstest"
	"github.com/openmpns/openmpns/internal/servertest"
	"github.com/openmpns/openmpns/server"
	"github.com/openmpns/openmpns/server/natsbackend"
	"github.com/openmpns/openmpns/shared/wire"
)

// The cluster: openmpns nodes sharing a NATS JetStream cluster of three
// servers embedded in the test process. Every node puts the same public
// URL in Channel URIs; a test POSTs a Channel URI to the node it chooses
// with via.

// publicURL is the origin every node of a test cluster puts in Channel
// URIs: a load balancer's name, which nothing here resolves.
const publicURL = "http://push.cluster.test"

// service is one OpenMPNS service in a NATS cluster: its own prefix, so
// tests sharing a NATS cluster do not meet.
type service struct {
	nats   *natstest.Cluster
	prefix string
}

func newService(t *testing.T, nc *natstest.Cluster) *service {
	b := make([]byte, 4)
	rand.Read(b)
	return &service{nats: nc, prefix: "t" + hex.EncodeToString(b)}
}

// node starts one openmpns node of the service.
func (s *service) node(t *testing.T, id string, cfg server.Config) *server.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	be, err := natsbackend.Open(ctx, natsbackend.Config{URLs: strings.Split(s.nats.URLs(), ","), Prefix: s.prefix,
		NodeID: id, QueueTTL: cfg.QueueTTL, RequestTimeout: 2 * time.Second, Logger: quietLogger()})
	if err != nil {
		t.Fatalf("node %s: %v", id, err)
	}
	cfg.Backend, cfg.PublicURL, cfg.AdminSocket = be, publicURL, "-"
	return startServer(t, cfg)
}

// via is the Channel URI uri as POSTed to node n (the load balancer's
// choice).
func via(n *server.Server, uri string) string {
	return "http://" + n.Addr() + strings.TrimPrefix(uri, publicURL)
}

func base(n *server.Server) string { return "http://" + n.Addr() }

func clusterPhone(t *testing.T, nodes ...*server.Server) *phone {
	t.Helper()
	var urls []string
	for _, n := range nodes {
		urls = append(urls, base(n))
	}
	rec := newRecorder()
	d, err := device.New(device.Config{Servers: urls, StateDir: t.TempDir(), Handlers: rec.handlers(),
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return &phone{Device: d, rec: rec}
}

// TestCluster runs every cluster case on one NATS cluster (three servers
// take seconds to start), each case with a service of its own.
func TestCluster(t *testing.T) {
	nc := natstest.RunCluster(t, 3)
	t.Run("PushThroughAnotherNode", func(t *testing.T) { testPushThroughAnotherNode(t, newService(t, nc)) })
	t.Run("DeviceFailsOverKeepingItsChannel", func(t *testing.T) { testFailover(t, newService(t, nc)) })
	t.Run("SameIdentityOnTwoNodes", func(t *testing.T) { testSameIdentityOnTwoNodes(t, newService(t, nc)) })
	t.Run("QuotaAndQueueLimitAreClusterWide", func(t *testing.T) { testClusterLimits(t, newService(t, nc)) })
	t.Run("ServicesAndTokensAcrossNodes", func(t *testing.T) { testServicesAcrossNodes(t, newService(t, nc)) })
	t.Run("RevocationAndKeyRotationFromATool", func(t *testing.T) { testRevocationAcrossNodes(t, newService(t, nc)) })
	// Last: it stops NATS servers.
	t.Run("QuorumLostAndBack", func(t *testing.T) { testQuorumLost(t, newService(t, nc), nc) })
}

func testPushThroughAnotherNode(t *testing.T, s *service) {
	a, b := s.node(t, "a", server.Config{}), s.node(t, "b", server.Config{})
	p := clusterPhone(t, a)
	uri := p.openChannel(t, "com.example.news", "", true, false).ChannelURI()
	if !strings.HasPrefix(uri, publicURL+server.PushPath) {
		t.Fatalf("Channel URI %q does not use the public URL", uri)
	}
	for i, n := range []*server.Server{b, a, b} {
		if ans := post(t, "POST", via(n, uri), "toast", "", "", toastXML("Hi", string(rune('0'+i)), "")); !ans.is(200, "Received", "Active", "Connected") {
			t.Fatalf("push %d through node %s: %+v", i, n.Addr(), ans)
		}
	}
	got := p.rec.waitN(t, 3, "shelltoast")
	for i, e := range got {
		if e.toast.Text2 != string(rune('0'+i)) {
			t.Fatalf("toast %d is %q: out of order or lost", i, e.toast.Text2)
		}
	}
}

func testFailover(t *testing.T, s *service) {
	a, b := s.node(t, "a", server.Config{}), s.node(t, "b", server.Config{})
	p := clusterPhone(t, a, b)
	uri := p.openChannel(t, "com.example.news", "", true, false).ChannelURI()
	if ans := post(t, "POST", via(b, uri), "toast", "", "", toastXML("before", "", "")); ans.code != 200 {
		t.Fatalf("push before: %+v", ans)
	}
	p.rec.waitN(t, 1, "shelltoast")
	if err := a.Close(); err != nil { // the node the device holds goes away
		t.Fatal(err)
	}
	// Accepted while the device moves: delivered once it is on b.
	if ans := post(t, "POST", via(b, uri), "toast", "", "", toastXML("during", "", "")); ans.code != 200 || ans.notif != "Received" {
		t.Fatalf("push while the device moves: %+v", ans)
	}
	got := p.rec.waitN(t, 2, "shelltoast")
	if got[1].toast.Text1 != "during" {
		t.Fatalf("second toast %q", got[1].toast.Text1)
	}
	ch := p.Find("com.example.news", "main")
	if ch == nil || ch.ChannelURI() != uri {
		t.Fatalf("the channel's URI changed when the device moved: %v", ch)
	}
	if ans := post(t, "POST", via(b, uri), "toast", "", "", toastXML("after", "", "")); !ans.is(200, "Received", "Active", "Connected") {
		t.Fatalf("push after the move: %+v", ans)
	}
	p.rec.waitN(t, 3, "shelltoast")
}

func testSameIdentityOnTwoNodes(t *testing.T, s *service) {
	a, b := s.node(t, "a", server.Config{}), s.node(t, "b", server.Config{})
	dial := func(n *server.Server) *websocket.Conn {
		ws, _, err := websocket.DefaultDialer.Dial("ws://"+n.Addr()+server.GatewayPath, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.Close() })
		return ws
	}
	first := dial(a)
	servertest.SendFrame(t, first, &wire.Frame{Type: wire.TypeHello, Version: wire.ProtocolVersion})
	w := servertest.ReadFrame(t, first)
	if w.Type != wire.TypeWelcome || w.DeviceToken == "" {
		t.Fatalf("welcome: %+v", w)
	}
	// A new device is welcomed before its claim is written (so that it
	// keeps its identity whatever happens to the connection next; a known
	// device is welcomed after its claim): until a's claim is written, b's
	// could come first and make a's the newer one (a loaded machine did
	// that, 1 run in 3).
	waitFor(t, func() bool { return metric(t, a, "openmpns_device_connections") == 1 })
	second := dial(b)
	servertest.SendFrame(t, second, &wire.Frame{Type: wire.TypeHello, Version: wire.ProtocolVersion, DeviceID: w.DeviceID, DeviceToken: w.DeviceToken})
	if w2 := servertest.ReadFrame(t, second); w2.Type != wire.TypeWelcome || w2.DeviceID != w.DeviceID {
		t.Fatalf("the device's token from node a was refused at node b: %+v", w2)
	}
	if ce := closeOf(t, first); ce.Code != wire.CloseReplaced {
		t.Fatalf("the older connection on node a closed with %d, want %d", ce.Code, wire.CloseReplaced)
	}
}

func testClusterLimits(t *testing.T, s *service) {
	cfg := server.Config{DailyQuota: 3, QueueLimit: 2}
	a, b := s.node(t, "a", cfg), s.node(t, "b", cfg)
	p := clusterPhone(t, a)
	uri := p.openChannel(t, "com.example.chat", "", false, false).ChannelURI()
	p.SetOnline(false) // nothing is delivered: the queue fills
	p.rec.waitStatus(t, device.Disconnected)
	waitFor(t, func() bool { return metric(t, a, "openmpns_device_connections") == 0 })
	want := []struct {
		n     *server.Server
		code  int
		notif string
	}{{a, 200, "Received"}, {b, 200, "Received"}, {a, 200, "QueueFull"}, {b, 406, "Dropped"}}
	for i, w := range want {
		ans := post(t, "POST", via(w.n, uri), "", "", "", []byte("x"))
		if ans.code != w.code || ans.notif != w.notif {
			t.Fatalf("push %d: %+v, want %d %s", i, ans, w.code, w.notif)
		}
		if i < 3 && ans.conn != "TempDisconnected" {
			t.Fatalf("push %d: connection status %q, want TempDisconnected from every node", i, ans.conn)
		}
	}
}

func testServicesAcrossNodes(t *testing.T, s *service) {
	a, b := s.node(t, "a", server.Config{}), s.node(t, "b", server.Config{})
	creds, err := a.Services().Add("news")
	if err != nil {
		t.Fatal(err)
	}
	// Node b follows the registry in NATS: polled (bounded) until it does.
	token := func(n *server.Server) (int, string) {
		resp, err := http.PostForm(base(n)+"/accesstoken", url.Values{"grant_type": {"client_credentials"},
			"client_id": {creds.ClientID}, "client_secret": {creds.ClientSecret}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		json.NewDecoder(resp.Body).Decode(&tok)
		return resp.StatusCode, tok.AccessToken
	}
	waitFor(t, func() bool { code, _ := token(b); return code == 200 })
	code, tok := token(a)
	if code != 200 {
		t.Fatalf("token from node a: %d", code)
	}
	p := clusterPhone(t, a)
	uri := p.openChannel(t, "com.example.news", "news", true, false).ChannelURI()
	if ans := post(t, "POST", via(b, uri), "toast", "", "", toastXML("auth", "", ""), "Authorization", "Bearer "+tok); !ans.is(200, "Received", "Active", "Connected") {
		t.Fatalf("node b refused node a's token: %+v", ans)
	}
	if ans := post(t, "POST", via(b, uri), "toast", "", "", toastXML("anon", "", "")); ans.code != 401 {
		t.Fatalf("an unauthenticated push to a service channel: %+v", ans)
	}
}

func testQuorumLost(t *testing.T, s *service, nc *natstest.Cluster) {
	a := s.node(t, "a", server.Config{})
	p := clusterPhone(t, a)
	uri := p.openChannel(t, "com.example.chat", "", false, false).ChannelURI()
	if ans := post(t, "POST", via(a, uri), "", "", "", []byte("1")); ans.code != 200 {
		t.Fatalf("before: %+v", ans)
	}
	nc.Stop(1)
	nc.Stop(2)
	ans := post(t, "POST", via(a, uri), "", "", "", []byte("2"))
	if ans.code != 503 || ans.reason == "" {
		t.Fatalf("without a quorum: %+v, want 503 with a reason", ans)
	}
	if code, body := get(t, base(a)+"/healthz"); code != 503 || !strings.Contains(body, "unavailable") {
		t.Fatalf("/healthz without a quorum: %d %q", code, body)
	}
	if p.ConnectionStatus() != device.Connected {
		t.Fatal("the device lost its WebSocket when NATS lost its quorum")
	}
	nc.Start(1)
	nc.Start(2)
	nc.WaitJetStream()
	waitFor(t, func() bool { return post(t, "POST", via(a, uri), "", "", "", []byte("3")).code == 200 })
	if code, _ := get(t, base(a)+"/healthz"); code != 200 {
		t.Fatalf("/healthz after recovery: %d", code)
	}
}

// testRevocationAcrossNodes revokes a device and rotates the key as
// `openmpns identity --nats` does: on the cluster's state, from a process
// that is not a node. The node holding the device closes its connection
// (told through a claim, then by its watch of the key); the device
// registers again, and its old Channel URIs answer 404 on every node.
func testRevocationAcrossNodes(t *testing.T, s *service) {
	a, b := s.node(t, "a", server.Config{}), s.node(t, "b", server.Config{})
	p := clusterPhone(t, a)
	old := p.openChannel(t, "com.example.news", "", true, false).ChannelURI()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	tool, err := natsbackend.Open(ctx, natsbackend.Config{URLs: strings.Split(s.nats.URLs(), ","), Prefix: s.prefix,
		NodeID: "tool", RequestTimeout: 2 * time.Second, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer tool.Close()
	firstID := p.ID()
	if n, err := server.RevokeDevice(ctx, tool, firstID, time.Now()); err != nil || n != 1 {
		t.Fatalf("RevokeDevice through NATS = %d, %v", n, err)
	}
	if ans := post(t, "POST", via(b, old), "toast", "", "", toastXML("revoked", "", "")); ans.code != 404 {
		t.Fatalf("push to the revoked device through node b: %+v, want 404", ans)
	}
	waitFor(t, func() bool { return p.ID() != "" && p.ID() != firstID })
	uris := p.rec.waitN(t, 2, "uri")
	second := uris[len(uris)-1].text
	if ans := post(t, "POST", via(b, second), "toast", "", "", toastXML("again", "", "")); ans.code != 200 || ans.notif != "Received" {
		t.Fatalf("push to the re-registered device: %+v", ans)
	}
	secondID := p.ID()
	k, err := server.RotateServerKey(ctx, tool, time.Now)
	if err != nil || k.Devices != 1 {
		t.Fatalf("RotateServerKey through NATS = %+v, %v; want 1 device deleted", k, err)
	}
	if ans := post(t, "POST", via(a, second), "toast", "", "", toastXML("rotated", "", "")); ans.code != 404 {
		t.Fatalf("push to a device of before the rotation: %+v, want 404", ans)
	}
	// Node a follows the key and closes the device, which registers again.
	waitFor(t, func() bool { return p.ID() != "" && p.ID() != secondID })
	uris = p.rec.waitN(t, 3, "uri")
	if ans := post(t, "POST", via(b, uris[len(uris)-1].text), "toast", "", "", toastXML("new key", "", "")); ans.code != 200 || ans.notif != "Received" {
		t.Fatalf("push after the rotation: %+v", ans)
	}
}
