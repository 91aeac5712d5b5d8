package natsbackend

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/openmpns/openmpns/server/auth"
	"github.com/openmpns/openmpns/server/backend"
	"github.com/openmpns/openmpns/shared/clock"
)

// Backend is one node of the service on NATS JetStream. It is safe for
// concurrent use; Close releases it.
type Backend struct {
	cfg Config
	log *slog.Logger
	nc  *nats.Conn
	js  jetstream.JetStream

	// Streams and buckets (see the package doc).
	queue    jetstream.Stream
	queueSt  string // queue stream name
	qPre     string // <prefix>.q.
	devices  *kv
	channels *kv
	index    *kv // device -> {app: token}
	presence *kv
	counters *kv
	authKV   *kv

	nodeSubj string // <prefix>.node.<node id>
	allSubj  string // <prefix>.all: to every node
	nodeSub  *nats.Subscription
	allSub   *nats.Subscription
	nodeCh   chan *nats.Msg // what both subscriptions receive, in order
	loopDone chan struct{}  // closed when nodeLoop returns
	inbox    atomic.Pointer[inboxBox]

	views   *queueViews  // what this node knows of channels' queues (views.go)
	counted countedCache // counters this node wrote (counters.go)
	held    sync.Map     // device id -> claim (uint64): connections this node holds
	// background counts goroutines passing notifications on; Close
	// waits for them.
	background sync.WaitGroup

	// The reply mux of batched direct gets.
	mux      *nats.Subscription
	muxPre   string // _INBOX.<nuid>.
	muxMu    sync.Mutex
	muxChans map[string]chan *nats.Msg
	muxNext  uint64

	live  liveness    // the heartbeat of nodes (liveness.go)
	sweep sweeper     // the sweep of what interrupted deletes left (orphans.go)
	clk   clock.Clock // Config.Clock, or the system clock
	// watches are the running services watches (watch.go): a reconnect
	// pokes each, so that it reloads the registry; a new auth stream
	// makes each begin again.
	watchMu sync.Mutex
	watches map[*servicesWatch]struct{}
	// authFollow is the auth stream this node follows and what its
	// services watches delivered of it: the auth store's reads wait until
	// the stream leader has stored that (authStore.caughtUp).
	authFollow authFollow
	// authAdv is the subscription to NATS's advisories of the auth
	// stream's creation and restore.
	authAdv *nats.Subscription
	reqs    requestCounters
	// testAfterIndex, set by tests only, runs in PutChannel between the
	// index entry and the second read of the device.
	testAfterIndex func(backend.Channel)
	// testReplicaRead, set by tests only, replaces what a direct get of
	// the queue read (a lagging replica's answer).
	testReplicaRead func(filter string, read []directMsg) []directMsg

	closed    atomic.Bool
	closeOnce sync.Once
	connDone  chan struct{} // closed when the connection is closed
}

type inboxBox struct{ backend.Inbox }

var _ backend.Backend = (*Backend)(nil)

// nodeChanSize bounds the messages to this node waiting to be handled;
// past it NATS drops them and reports a slow consumer (see Open).
const nodeChanSize = 1 << 16

// JetStream API error codes the backend branches on.
const (
	codeWrongLastSeq         = 10071
	codeWrongLastSeqConstant = 10164
	codeNoMessageFound       = 10037
	codeSequenceNotFound     = 10043
	codeStreamOffline        = 10118
	codeNoSuitablePeers      = 10005
)

// Open connects to NATS, creates the streams and buckets of the service
// unless they exist (checking that existing ones match this node's
// configuration) and subscribes to this node's subject. It fails with an
// error saying what to do when NATS cannot be reached, has no JetStream,
// or holds streams configured differently.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	b := &Backend{cfg: cfg, log: cfg.Logger.With("node", cfg.NodeID), connDone: make(chan struct{}),
		muxChans: map[string]chan *nats.Msg{}, nodeCh: make(chan *nats.Msg, nodeChanSize),
		loopDone: make(chan struct{}), views: newQueueViews(cfg.NodeID), watches: map[*servicesWatch]struct{}{},
		clk: cfg.Clock}
	opts := []nats.Option{
		nats.Name("openmpns " + cfg.NodeID),
		nats.Timeout(cfg.RequestTimeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ClosedHandler(func(*nats.Conn) { close(b.connDone) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if b.closed.Load() {
				return // Close ends the connection: nothing was lost
			}
			b.log.Warn("natsbackend: disconnected from NATS", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			b.log.Info("natsbackend: reconnected to NATS", "url", nc.ConnectedUrlRedacted())
			// Hands sent to this node while it was away are lost, and so
			// may be updates of cached records.
			b.resync()
			// So may be changes to the registry of senders: a removal
			// leaves no message a resumed watch would deliver once its
			// marker is gone (watch.go).
			b.pokeWatches()
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			if errors.Is(err, nats.ErrSlowConsumer) {
				// Messages to this node were dropped: hands (the queue
				// has them) and cache updates (forget the caches).
				b.resync()
			}
			b.log.Error("natsbackend: NATS error", "subject", subj, "err", err)
		}),
	}
	if cfg.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	if cfg.TLS != nil {
		opts = append(opts, nats.Secure(cfg.TLS))
	}
	nc, err := nats.Connect(strings.Join(cfg.URLs, ","), opts...)
	if err != nil {
		return nil, fmt.Errorf("natsbackend: cannot reach NATS at %s (check the URLs, that the servers run and that this host may connect to them): %w: %w",
			redact(cfg.URLs), backend.ErrUnavailable, err)
	}
	b.nc = nc
	// A cluster that is starting (or electing leaders) answers late or
	// not at all for a while: retry what may pass until ctx ends.
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 4*time.Second) {
		err = b.setup(ctx)
		if err == nil || !errors.Is(err, backend.ErrUnavailable) || ctx.Err() != nil {
			break
		}
		b.log.Warn("natsbackend: waiting for JetStream", "err", err, "retry_in", wait)
		b.unsubscribe()
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	if err == nil {
		err = b.startHeartbeat(ctx)
	}
	if err == nil {
		b.startSweeper()
	}
	if err != nil {
		b.closed.Store(true)
		nc.Close()
		select {
		case <-b.connDone:
		case <-time.After(b.cfg.RequestTimeout):
		}
		return nil, err
	}
	go b.nodeLoop()
	b.log.Info("natsbackend: open", "url", nc.ConnectedUrlRedacted(), "prefix", cfg.Prefix,
		"replicas", b.cfg.Replicas, "queue_ttl", cfg.QueueTTL)
	return b, nil
}

// resync makes this node catch up with what it may have missed (hands
// sent to it, updates of the records it caches): after a reconnect, a
// slow consumer's dropped messages, a lapse of its heartbeat. Its caches
// start afresh and its devices read their queues again (Inbox.Resync).
func (b *Backend) resync() {
	b.clearCaches()
	if in := b.inbox.Load(); in != nil {
		go in.Resync()
	}
}

// redact drops passwords from URLs for messages.
func redact(urls []string) string {
	out := make([]string, len(urls))
	for i, s := range urls {
		if u, err := url.Parse(s); err == nil {
			out[i] = u.Redacted()
		} else {
			out[i] = s
		}
	}
	return strings.Join(out, ",")
}

// unsubscribe drops what a failed setup subscribed.
func (b *Backend) unsubscribe() {
	for _, sub := range []**nats.Subscription{&b.nodeSub, &b.allSub, &b.mux, &b.authAdv} {
		if *sub != nil {
			(*sub).Unsubscribe()
			*sub = nil
		}
	}
}

// minServer is the oldest nats-server with what the backend uses:
// per-message TTLs, batched direct gets and the expected last sequence of
// a subject filter.
const minServer = "2.11.0"

func (b *Backend) setup(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 4*b.cfg.RequestTimeout)
	defer cancel()
	if v := b.nc.ConnectedServerVersion(); !versionAtLeast(v, minServer) {
		return fmt.Errorf("natsbackend: the NATS server at %s runs %s; the backend needs nats-server %s or later (per-message TTLs, batched direct gets)",
			b.nc.ConnectedUrlRedacted(), v, minServer)
	}
	js, err := jetstream.New(b.nc, jetstream.WithDefaultTimeout(b.cfg.RequestTimeout))
	if err != nil {
		return fmt.Errorf("natsbackend: jetstream: %w", err)
	}
	b.js = js
	if _, err := js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("natsbackend: JetStream is not available on %s (enable JetStream on the servers and for this account): %w",
			b.nc.ConnectedUrlRedacted(), b.classify(err))
	}
	p := b.cfg.Prefix
	b.queueSt = p + "_queue"
	b.qPre = p + ".q."
	if b.cfg.Replicas == 0 {
		b.cfg.Replicas, err = b.defaultReplicas(ctx)
		if err != nil {
			return err
		}
	}
	if b.cfg.QueueTTL == 0 {
		b.cfg.QueueTTL = DefaultQueueTTL
		if s, err := b.js.Stream(ctx, b.queueSt); err == nil {
			b.cfg.QueueTTL = s.CachedInfo().Config.MaxAge
		}
	}
	queueCfg := jetstream.StreamConfig{
		Name:        b.queueSt,
		Description: "OpenMPNS queued notifications: " + p + ".q.<device>.<channel>.(n|t.<tile>)",
		Subjects:    []string{p + ".q.>"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    b.cfg.Replicas,
		MaxAge:      b.cfg.QueueTTL,
		MaxMsgs:     -1, MaxBytes: -1, MaxMsgSize: -1, MaxConsumers: -1, MaxMsgsPerSubject: -1,
		Discard:     jetstream.DiscardOld,
		AllowRollup: true,
		AllowDirect: true,
		AllowMsgTTL: true,
		Duplicates:  time.Minute,
	}
	if b.queue, err = b.ensureStream(ctx, queueCfg); err != nil {
		return err
	}
	for _, k := range []struct {
		kv   **kv
		name string
	}{
		{&b.devices, "devices"}, {&b.channels, "channels"}, {&b.index, "channel_index"},
		{&b.presence, "presence"}, {&b.counters, "counters"}, {&b.authKV, "auth"},
	} {
		bucket := p + "_" + k.name
		st, err := b.ensureStream(ctx, kvStreamConfig(bucket, b.cfg.Replicas))
		if err != nil {
			return err
		}
		*k.kv = &kv{b: b, bucket: bucket, stream: st, pre: "$KV." + bucket + "."}
	}
	// The auth stream as it is now is the one followed (watch.go).
	b.followAuth(b.authKV.stream.CachedInfo())
	b.channels.cache = newRecordCache(decodeChannel)
	b.devices.cache = newRecordCache(decodeDevice)
	b.presence.cache = newRecordCache(decodePresence)
	if err := b.waitLeaders(ctx); err != nil {
		return err
	}
	b.nodeSubj = p + ".node." + token(b.cfg.NodeID)
	b.allSubj = p + ".all"
	if b.nodeSub, err = b.nc.ChanSubscribe(b.nodeSubj, b.nodeCh); err != nil {
		return fmt.Errorf("natsbackend: subscribe %s: %w", b.nodeSubj, err)
	}
	if b.allSub, err = b.nc.ChanSubscribe(b.allSubj, b.nodeCh); err != nil {
		return fmt.Errorf("natsbackend: subscribe %s: %w", b.allSubj, err)
	}

	// A stream deleted and made again, or restored, numbers its messages
	// afresh: NATS announces it, and the node starts over with it
	// (authFollow). Where this account may not hear advisories, the
	// stream's creation time tells the node at its next read.
	advisories := "$JS.EVENT.ADVISORY.STREAM.*." + b.authKV.name()
	if b.authAdv, err = b.nc.Subscribe(advisories, func(m *nats.Msg) {
		if kind := strings.Split(m.Subject, ".")[4]; kind == "CREATED" || kind == "RESTORE_COMPLETE" {
			b.authStreamMadeAgain(m)
		}
	}); err != nil {
		return fmt.Errorf("natsbackend: subscribe %s: %w", advisories, err)
	}

	b.muxPre = b.nc.NewInbox() + "."
	if b.mux, err = b.nc.Subscribe(b.muxPre+"*", b.onReply); err != nil {
		return fmt.Errorf("natsbackend: subscribe replies: %w", err)
	}
	// The subscriptions are in place on the server before Open returns.
	if err := b.nc.FlushWithContext(ctx); err != nil {
		return fmt.Errorf("natsbackend: flush: %w", b.classify(err))
	}
	return nil
}

// waitLeaders waits until every stream of the service has a leader: a
// stream just created (or a cluster just started) elects one first, and
// reads from the leader fail until then.
func (b *Backend) waitLeaders(ctx context.Context) error {
	streams := []jetstream.Stream{b.queue}
	for _, k := range []*kv{b.devices, b.channels, b.index, b.presence, b.counters, b.authKV} {
		streams = append(streams, k.stream)
	}
	for _, st := range streams {
		for wait := 10 * time.Millisecond; ; wait = min(2*wait, 500*time.Millisecond) {
			info, err := st.Info(ctx)
			if err == nil && (info.Cluster == nil || info.Cluster.Leader != "") {
				break
			}
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				name := st.CachedInfo().Config.Name
				if err == nil {
					err = errors.New("no leader elected")
				}
				return fmt.Errorf("natsbackend: stream %s has no leader (does the NATS cluster have a quorum?): %w", name, b.classify(fmt.Errorf("%w: %w", err, ctx.Err())))
			}
		}
	}
	return nil
}

// defaultReplicas is what the existing queue stream has, else 3 when the
// client knows at least 3 servers, else 1.
func (b *Backend) defaultReplicas(ctx context.Context) (int, error) {
	s, err := b.js.Stream(ctx, b.queueSt)
	if err == nil {
		return s.CachedInfo().Config.Replicas, nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, fmt.Errorf("natsbackend: look up stream %s: %w", b.queueSt, b.classify(err))
	}
	seen := map[string]bool{}
	for _, s := range b.nc.Servers() {
		if u, err := url.Parse(s); err == nil {
			seen[u.Host] = true
		}
	}
	if len(seen) >= 3 {
		return 3, nil
	}
	return 1, nil
}

// kvStreamConfig is the stream of a key-value bucket, laid out as NATS KV
// does (so the nats CLI can read it), but with reads from the stream leader
// (AllowDirect off: a write acknowledged on one node is seen by the next
// read on any node), deletes allowed (a removed key's marker is deleted
// too) and per-message TTLs (counters).
func kvStreamConfig(bucket string, replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              "KV_" + bucket,
		Description:       "OpenMPNS " + bucket,
		Subjects:          []string{"$KV." + bucket + ".>"},
		Retention:         jetstream.LimitsPolicy,
		Storage:           jetstream.FileStorage,
		Replicas:          replicas,
		MaxMsgsPerSubject: 1,
		MaxMsgs:           -1, MaxBytes: -1, MaxMsgSize: -1, MaxConsumers: -1,
		Discard:     jetstream.DiscardNew,
		AllowRollup: true,
		AllowDirect: false,
		AllowMsgTTL: true,
		Duplicates:  time.Minute,
	}
}

// ensureStream creates the stream unless it exists, and refuses one that
// exists with a configuration this node would not have created.
func (b *Backend) ensureStream(ctx context.Context, want jetstream.StreamConfig) (jetstream.Stream, error) {
	s, err := b.js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = b.js.CreateStream(ctx, want)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			// Another node created it meanwhile, with another configuration.
			s, err = b.js.Stream(ctx, want.Name)
		} else if err == nil {
			b.log.Info("natsbackend: created stream", "stream", want.Name, "replicas", want.Replicas)
		} else {
			return nil, fmt.Errorf("natsbackend: create stream %s with %d replicas (a single server or a smaller cluster needs fewer: set Replicas): %w",
				want.Name, want.Replicas, b.classify(err))
		}
	}
	if err != nil {
		return nil, fmt.Errorf("natsbackend: look up stream %s: %w", want.Name, b.classify(err))
	}
	if diff := configDiff(s.CachedInfo().Config, want); diff != "" {
		return nil, fmt.Errorf("natsbackend: stream %s exists with another configuration than this node's: %s; "+
			"start this node with the settings of the running ones (Prefix, Replicas, QueueTTL), or change the stream first (nats stream edit %s)",
			want.Name, diff, want.Name)
	}
	return s, nil
}

// configDiff says how the fields the backend relies on differ.
func configDiff(have, want jetstream.StreamConfig) string {
	var d []string
	add := func(name string, h, w any) {
		if fmt.Sprint(h) != fmt.Sprint(w) {
			d = append(d, fmt.Sprintf("%s is %v there, %v here", name, h, w))
		}
	}
	add("replicas", have.Replicas, want.Replicas)
	add("max age (queue TTL)", have.MaxAge, want.MaxAge)
	add("subjects", have.Subjects, want.Subjects)
	add("storage", have.Storage, want.Storage)
	add("retention", have.Retention, want.Retention)
	unlimited := func(v int64) int64 { return max(v, 0) } // 0 and -1 are both no limit
	add("max messages per subject", unlimited(have.MaxMsgsPerSubject), unlimited(want.MaxMsgsPerSubject))
	add("allow rollup", have.AllowRollup, want.AllowRollup)
	add("deny delete", have.DenyDelete, want.DenyDelete)
	add("deny purge", have.DenyPurge, want.DenyPurge)
	add("allow direct", have.AllowDirect, want.AllowDirect)
	add("allow message TTL", have.AllowMsgTTL, want.AllowMsgTTL)
	return strings.Join(d, ", ")
}

var versionRe = regexp.MustCompile(`^v?(\d+)\.(\d+)\.(\d+)`)

// versionAtLeast reports whether version v is at least min (both x.y.z).
func versionAtLeast(v, min string) bool {
	parse := func(s string) [3]int {
		var out [3]int
		m := versionRe.FindStringSubmatch(s)
		for i := 0; m != nil && i < 3; i++ {
			out[i], _ = strconv.Atoi(m[i+1])
		}
		return out
	}
	a, b := parse(v), parse(min)
	for i := range 3 {
		if a[i] != b[i] {
			return a[i] > b[i]
		}
	}
	return true
}

// Close unsubscribes, drains the connection (finishing what was published)
// and closes it. It is safe to call more than once.
func (b *Backend) Close() error {
	var err error
	b.closeOnce.Do(func() {
		b.stopSweeper()
		b.stopHeartbeat()
		b.closed.Store(true)
		if derr := b.nc.Drain(); derr != nil {
			b.nc.Close()
		}
		select {
		case <-b.connDone:
		case <-time.After(2 * b.cfg.RequestTimeout):
			b.nc.Close()
			<-b.connDone
			err = errors.New("natsbackend: close: the connection did not drain in time; closed it")
		}
		<-b.loopDone
		b.background.Wait()
		b.log.Info("natsbackend: closed")
	})
	return err
}

// op starts a call: it refuses once closed and bounds the call by
// RequestTimeout.
func (b *Backend) op(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if b.closed.Load() {
		return ctx, func() {}, backend.ErrClosed
	}
	if d, ok := ctx.Deadline(); ok && time.Until(d) <= b.cfg.RequestTimeout {
		return ctx, func() {}, nil // bounded already, as tightly
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.RequestTimeout)
	return ctx, cancel, nil
}

// classify wraps an error of NATS: ErrClosed once the backend is closed,
// ErrUnavailable for what may pass (timeouts, no responders, no quorum, a
// lost connection), else as it is.
func (b *Backend) classify(err error) error {
	if err == nil {
		return nil
	}
	if b.closed.Load() {
		return fmt.Errorf("%w: %w", backend.ErrClosed, err)
	}
	if transient(err) {
		return fmt.Errorf("%w: %w", backend.ErrUnavailable, err)
	}
	return err
}

func transient(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		// 503: no quorum, no leader, no resources now; 10118: stream
		// offline; 10005 for a peer offline: a stream's replicas cannot be
		// placed while a server of the cluster is away (or was late with
		// its heartbeats). Other 500s and 10005s (such as replicas a single
		// server or a smaller cluster cannot have) are configuration
		// errors.
		return apiErr.Code == 503 || apiErr.ErrorCode == codeStreamOffline ||
			apiErr.ErrorCode == codeNoSuitablePeers && strings.Contains(apiErr.Description, "peer offline")
	}
	for _, e := range []error{
		context.DeadlineExceeded, context.Canceled, nats.ErrTimeout, nats.ErrNoResponders,
		jetstream.ErrNoStreamResponse, nats.ErrConnectionClosed, nats.ErrConnectionReconnecting,
		nats.ErrConnectionDraining, nats.ErrDisconnected, nats.ErrNoServers, nats.ErrStaleConnection,
		jetstream.ErrJetStreamNotEnabled, jetstream.ErrJetStreamNotEnabledForAccount,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// apiCode is the JetStream API error code of err, or 0.
func apiCode(err error) jetstream.ErrorCode {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode
	}
	return 0
}

// wrongLastSeq reports a failed expected-last-sequence check.
func wrongLastSeq(err error) bool {
	c := apiCode(err)
	return c == codeWrongLastSeq || c == codeWrongLastSeqConstant
}

// apiResponse is the error part of every JetStream API response.
type apiResponse struct {
	Error *jetstream.APIError `json:"error,omitempty"`
}

// api sends a JetStream API request and decodes the response into resp,
// whose apiResponse's error it returns.
func (b *Backend) api(ctx context.Context, subj string, req any, resp any, errOf func() *jetstream.APIError) error {
	data, err := json.Marshal(req)
	if err != nil {
		return err
	}
	m, err := b.nc.RequestWithContext(ctx, subj, data)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(m.Data, resp); err != nil {
		return fmt.Errorf("decode %s response: %w", subj, err)
	}
	if e := errOf(); e != nil {
		return e
	}
	return nil
}

// storedMsg is a message read with the stream message get API.
type storedMsg struct {
	Subject string    `json:"subject"`
	Seq     uint64    `json:"seq"`
	Header  []byte    `json:"hdrs,omitempty"`
	Data    []byte    `json:"data,omitempty"`
	Time    time.Time `json:"time"`
}

// msgGetRequest is a request of the stream message get API.
type msgGetRequest struct {
	Seq     uint64 `json:"seq,omitempty"`
	LastFor string `json:"last_by_subj,omitempty"`
	NextFor string `json:"next_by_subj,omitempty"`
	Batch   int    `json:"batch,omitempty"`
	NoHdr   bool   `json:"no_hdr,omitempty"`
}

// leaderGet reads one message from the stream leader (not from a replica
// that may lag), or returns (nil, nil) if there is none.
func (b *Backend) leaderGet(ctx context.Context, stream string, req msgGetRequest) (*storedMsg, error) {
	b.reqs.reads.Add(1)
	var resp struct {
		apiResponse
		Message *storedMsg `json:"message,omitempty"`
	}
	err := b.api(ctx, "$JS.API.STREAM.MSG.GET."+stream, req, &resp, func() *jetstream.APIError { return resp.Error })
	if c := apiCode(err); c == codeNoMessageFound || c == codeSequenceNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if resp.Message == nil {
		return nil, fmt.Errorf("stream %s: empty message get response", stream)
	}
	return resp.Message, nil
}

// deleteMsg deletes a message by sequence; a message already gone is no
// error.
func (b *Backend) deleteMsg(ctx context.Context, stream string, seq uint64) error {
	b.reqs.deletes.Add(1)
	var resp struct {
		apiResponse
		Success bool `json:"success"`
	}
	err := b.api(ctx, "$JS.API.STREAM.MSG.DELETE."+stream, map[string]any{"seq": seq, "no_erase": true}, &resp,
		func() *jetstream.APIError { return resp.Error })
	if c := apiCode(err); c == codeNoMessageFound || c == codeSequenceNotFound {
		return nil
	}
	return err
}

// onReply dispatches a reply of a batched direct get to its caller.
func (b *Backend) onReply(m *nats.Msg) {
	id := m.Subject[len(b.muxPre):]
	b.muxMu.Lock()
	ch := b.muxChans[id]
	b.muxMu.Unlock()
	if ch == nil {
		return // its caller gave up
	}
	select {
	case ch <- m:
	default: // cannot happen: the channel holds a whole batch
		b.log.Error("natsbackend: direct get reply dropped", "subject", m.Subject)
	}
}

// directMsg is a message of a batched direct get.
type directMsg struct {
	Subject string
	Seq     uint64
	Header  nats.Header
	Data    []byte
}

const directBatch = 256

// directGet reads every message of the stream on filter, in sequence
// order, from the nearest replica (batched direct get, nats-server 2.11+).
// A replica may lag the leader a little: callers that need the latest
// state check what they read (see confirmRead).
func (b *Backend) directGet(ctx context.Context, stream, filter string) ([]directMsg, error) {
	ch := make(chan *nats.Msg, directBatch+8)
	b.muxMu.Lock()
	b.muxNext++
	id := strconv.FormatUint(b.muxNext, 36)
	b.muxChans[id] = ch
	b.muxMu.Unlock()
	defer func() {
		b.muxMu.Lock()
		delete(b.muxChans, id)
		b.muxMu.Unlock()
	}()
	var out []directMsg
	from := uint64(0)
	for {
		// The end-of-batch reply is a batch's last: the next page may use
		// the same reply subject.
		req, _ := json.Marshal(msgGetRequest{Seq: from, NextFor: filter, Batch: directBatch})
		b.reqs.directGets.Add(1)
		if err := b.nc.PublishRequest("$JS.API.DIRECT.GET."+stream, b.muxPre+id, req); err != nil {
			return nil, err
		}
		more := false
	read:
		for {
			var m *nats.Msg
			select {
			case m = <-ch:
			case <-ctx.Done():
				return nil, fmt.Errorf("direct get %s: %w", filter, ctx.Err())
			}
			switch status := m.Header.Get("Status"); status {
			case "":
				seq, err := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
				if err != nil {
					return nil, fmt.Errorf("direct get %s: bad sequence %q", filter, m.Header.Get("Nats-Sequence"))
				}
				out = append(out, directMsg{Subject: m.Header.Get("Nats-Subject"), Seq: seq, Header: m.Header, Data: m.Data})
				from = seq + 1
			case "404":
				break read
			case "204":
				np, _ := strconv.ParseUint(m.Header.Get("Nats-Num-Pending"), 10, 64)
				more = np > 0
				break read
			case "503":
				return nil, fmt.Errorf("direct get %s: %w", filter, nats.ErrNoResponders)
			default:
				return nil, fmt.Errorf("direct get %s: status %s %s", filter, status, m.Header.Get("Description"))
			}
		}
		if !more {
			return out, nil
		}
	}
}

// token makes s a single subject token (and KV key): s itself if it is
// made of letters, digits, '-' and '_' only, else '=' and its unpadded
// base64url form. Distinct strings give distinct tokens.
func token(s string) string {
	if plain(s) {
		return s
	}
	return "=" + base64.RawURLEncoding.EncodeToString([]byte(s))
}

// plain reports whether s is made of letters, digits, '-' and '_' only
// (a loop: a regular expression cost 6 % of a node's CPU on the push path).
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return s != ""
}

// Services implements backend.Backend.
func (b *Backend) Services() auth.Store { return authStore{b} }

// Stats implements backend.Backend: message counts of the streams, from
// their leaders. Queued counts expired notifications NATS has not removed
// yet (it removes them within about a second of their expiry).
func (b *Backend) Stats(ctx context.Context) (backend.Stats, error) {
	ctx, cancel, err := b.op(ctx)
	defer cancel()
	if err != nil {
		return backend.Stats{}, err
	}
	var st backend.Stats
	for _, c := range []struct {
		s jetstream.Stream
		n *int
	}{{b.devices.stream, &st.Devices}, {b.channels.stream, &st.Channels}, {b.queue, &st.Queued}} {
		info, err := c.s.Info(ctx)
		if err != nil {
			return backend.Stats{}, fmt.Errorf("natsbackend: stats: %w", b.classify(err))
		}
		*c.n = int(info.State.Msgs)
		if c.s == b.queue {
			st.QueuedBytes = int64(info.State.Bytes)
		}
	}
	return st, nil
}
