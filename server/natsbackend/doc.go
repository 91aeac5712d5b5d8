// Package natsbackend is backend.Backend on NATS JetStream: several nodes
// of the push service share one NATS cluster, which holds all their state.
// Open connects a node; every node of one service uses the same Prefix
// (default "openmpns", written <p> below), Replicas and QueueTTL.
//
// It needs nats-server 2.11 or later (per-message TTLs, batched direct
// gets, the expected last sequence of a subject filter); Open checks.
//
// # What lives where
//
// Stream <p>_queue holds every queued notification, one message each, JSON
// (backend.Notification without its Seq), on subject
//
//	<p>.q.<device>.<channel>.n            toast and raw notifications
//	<p>.q.<device>.<channel>.t.<tile id>  tile updates, one subject per tile
//
// A notification's Seq is its stream sequence: assigned by the stream
// leader, increasing, never reused (not even after deletes or restarts; only
// deleting the stream itself starts it again). MaxAge is QueueTTL; a
// notification expiring earlier carries Nats-TTL (whole seconds, at least
// one), so NATS removes it about when it expires. Until then Pending and the
// limit skip it by its ExpiresAt (header Openmpns-Expires), so expiry is
// exact; Sweep has nothing to do and returns 0. The stream allows rollups
// and direct gets. There is no consumer per device: reads are direct gets.
//
// Key-value buckets, laid out as NATS KV lays them out (stream KV_<bucket>,
// subjects $KV.<bucket>.<key>, one message per key, a key's revision is
// its stream sequence) so that "nats kv" can read them, but created by this
// package with reads from the stream leader (AllowDirect off: a write
// acknowledged on one node is seen by the next read on every node, which a
// replica that lags would not guarantee), deletes allowed and per-message
// TTLs:
//
//	<p>_devices        device id -> backend.Device (JSON); Rev = revision
//	<p>_channels       token -> backend.Channel (JSON); Rev = revision
//	<p>_channel_index  device id -> {app: token}, the device's channels
//	<p>_presence       device id -> {node, connected, since}; claim = revision
//	<p>_counters       counter key -> {n, until}, with Nats-TTL; sweep -> the sweep's place and holder
//	<p>_auth           svc.<name> -> auth.Service (revision = auth.Store's), server_key -> auth.ServerKey
//
// Keys and subject tokens are ids as they are when made of letters,
// digits, '-' and '_', else '=' and their base64url form (app ids with dots
// or braces, tile ids with slashes).
//
// Creates, updates and deletes are revision-checked by the stream
// (Nats-Expected-Last-Subject-Sequence): a create expects no message, an
// update the record's Rev. A delete writes a purge marker with the check,
// then deletes the marker's message, so a bucket's message count is its
// number of keys (Stats counts messages). In the auth bucket the marker of
// a removed service stays (for a minute, Nats-TTL), so that the services
// watch (WatchServices) delivers it; a watch that is interrupted, or a
// node whose connection comes back, reloads the whole registry, which
// also covers a removal whose marker is already gone. A service record
// that gains a public key is written only if no other service holds the
// key, with the stream's expected last sequence as well (nothing stored
// in the auth stream since the registry was read). A node follows one
// incarnation of the auth stream (watch.go, authFollow): one deleted and
// made again, or restored, is started over with.
//
// # Channels of a device and their uniqueness
//
// PutChannel reads the device, writes the channel under its token (create),
// enters it in the device's index record (revision-checked
// read-modify-write), then reads the device again. If the index already
// names a channel for the app whose record exists, the new record is
// deleted again: ErrExists. Two concurrent creates for one
// (device, app) on any nodes leave exactly one. Channels reads the index
// (one key) and each channel it names: no scan of all channels, no
// consumer (a KV watch, as kv.ListKeysFiltered uses, would create an
// ephemeral consumer per call, an operation of the cluster's meta leader).
// An index entry whose record is gone (a delete interrupted before its
// last step) is skipped, and replaced by the app's next channel.
//
// # Leftovers of interrupted deletes
//
// DeleteDevice is several writes (the device's record first, then its
// channels, its queue, its index key, its presence); a node that dies
// between them leaves records whose device is gone. The nodes sweep them
// (orphans.go): at Open and every minute, a node's pass takes the key
// "sweep" of the counters bucket (a revision-checked write naming the
// node; a node whose tick finds it held by another's pass skips), reads up
// to 256 records of each of the channels, index and presence buckets from
// their stream leaders, going on where the previous pass of any node
// stopped, and removes, revision-checked, each whose device record is
// absent and that the stream stored two minutes ago or more (by the
// stream's clock), with the queues of the channels removed; then it writes
// where it stopped and gives the key back. So a cycle reads each record
// once, however many nodes there are. A pass renews its hold as it goes; a
// hold not renewed for a minute (by the stream's clock: a node that died
// or stalled) is taken over by the next node to tick, and the stalled pass
// stops at its next renewal. Two passes at once, or a DeleteDevice running
// meanwhile, do each removal once. A record is read before its device, and
// PutChannel reads the device before it writes anything: so the sweep
// never removes a channel for want of a device that exists and existed
// when the channel was made. A PutChannel interrupted between the channel's
// record and its index entry left a channel that Channels did not list;
// the sweep enters such a record (two minutes old or more, its device
// present) in its device's index when no live channel holds the app's
// entry, and removes it (it lost the create) when one does.
//
// # Limit and tile replacement, atomically
//
// Append reads the channel's messages (one batched direct get on
// <p>.q.<device>.<channel>.>, from the nearest replica), counts those not
// expired, leaving out the tile update it replaces, refuses with
// ErrQueueFull at the limit, else publishes with
// Nats-Expected-Last-Subject-Sequence-Subject <p>.q.<device>.<channel>.> and
// Nats-Expected-Last-Subject-Sequence the last sequence it read. The stream
// leader stores the message only if no message was stored on the channel's
// subjects since (and none is being stored: on a replicated stream a second
// check on the same filter is refused while the first is in flight), else
// Append reads again. A read from a lagging replica can only make the
// check fail, or over-count a notification removed meanwhile; it can never
// let a publish exceed the limit, and a read that counts the channel full
// is confirmed by the stream leader before Append refuses: its count of
// messages on each of the channel's subjects (one stream info request); if
// one differs, Append reads the channel from the leader. A tile update carries Nats-Rollup: sub,
// so the stream drops the previous update of the same tile in the same
// write, and Appended.Replaced is that update's sequence, from the read the
// check vouched for. Per-subject limits (MaxMsgsPerSubject with
// DiscardNewPerSubject) were not used: the limit is an argument of Append,
// a channel spans several subjects, and NATS's own expiry lags ExpiresAt.
//
// Each node keeps a view of the channels it appends to (views.go): what
// its last read of the channel found, plus what it appended since, minus
// what was removed since as far as it was told. Append counts from the
// view and publishes with the view's last sequence; only a failed check (a
// notification stored by another node, or a removal the view missed), a
// count at the limit, or a channel without a view costs a read. A view can
// only over-count, and an over-count is read again before Append refuses,
// so views change what Append costs, never what it decides. In steady
// state Append is one publish acknowledged by a quorum; Durable has
// yielded when Append returns. An Append that times out may still have
// been stored: the notification then arrives although the sender got 503
// (at least once).
//
// # Pending, Remove, DeleteChannel
//
// Pending asks the stream leader for the device's last sequence, reads the
// device's messages from the nearest replica (batched direct gets of 256),
// then asks the leader for its count of messages on each of the device's
// subjects (one stream info request); if that replica does not have the
// last sequence yet, or a count differs (a removal the replica has not
// applied yet), it reads from the leader instead, one message per request.
// So what an Append on any node returned is in the next Pending, and what
// a Remove returned is not (queue.go says why and what a count can miss).
//
// Remove deletes at once the notifications this node appended, read with
// Pending or was handed for the device (it knows they are the device's);
// any other sequence is read from the leader first and deleted only if it
// is on the device's subjects (a device cannot remove another's
// notifications). The deletes of one call are sent together. The node
// that appended a removed notification (a hand says who) is told on its
// node subject, so that its view of the channel drops it.
//
// DeleteChannel deletes the record (revision-checked), then purges the
// channel's subjects, then its index entry; a notification appended by an
// engine that read the channel before the delete stays until it expires.
//
// # Caches
//
// Target, which the engine calls for every push, reads the channel and
// its device from a cache on the node; so does Hand for presence. A node
// that writes a channel, device or presence record updates its own cache
// and publishes the write on <p>.all, which every node subscribes to. A
// node receives <p>.all and its own <p>.node.<id> on one Go channel, in
// the order each sender sent them, so a write is applied on a node before
// any hand the writer sent after it. A write may still be missed (a node
// that dies between its write and its broadcast, messages lost with a
// broken connection or a full channel): entries are read again after
// cacheTTL (5 minutes), and a node drops its caches when its connection comes
// back or a subscription falls behind. Channel, Device, Channels, Presence
// and every read-modify-write read from the stream leaders, as before.
//
// # Router
//
// Claim writes the device's presence record {node, connected: true,
// since} revision-checked; its revision is the claim, greater than every
// claim before. If the record it replaced was connected, that node (this
// one too) is told TakenOver. Release writes {connected: false} only if
// the record's revision is still the claim, then sets the device's
// LastSeen (a revision-checked update of the device). Hand sends the
// notification to the holding node as a core NATS message on
// <p>.node.<node id>, which each node subscribes to at Open (at most once:
// a lost hand waits in the queue for the device's next Pending). A hand
// for this node goes to its Inbox directly. Node ids must be unique among
// running nodes.
//
// Hand finds the holder in the node's presence cache when that says the
// device is connected; the message then asks for a check: a node that no
// longer holds the device (its own claims and the takeovers it was told
// of say so) reads the presence record from the leader and passes the
// notification on, once. A node that still thinks it holds the device
// while a takeover is on its way delivers to the old connection; the
// engine hands what that connection held again when the takeover arrives.
// A device the cache says is offline, or does not know, is looked up at
// the leader, as a device may have connected a moment ago.
//
// Every node writes a heartbeat (node.<id> in the counters bucket, every
// NodeTTL/4); a device Connected to a node whose last beat the stream
// stored more than NodeTTL ago (by the stream leader's clock) reads as
// offline, and nothing is handed to it. A node whose beat succeeds more
// than NodeTTL after its previous success (its own monotonic clock) may
// have been read as down meanwhile: it resyncs as after a reconnect
// (liveness.go).
//
// # Counters
//
// Take reads the key's record (or uses the one this node wrote last, which
// only ever under-counts), and writes it back incremented only if the
// limit is not reached, revision-checked; losers read again. It is exact
// under concurrency from any number of nodes, and refused takes write
// nothing. The record holds when it is forgotten (first take plus ttl) and
// carries a Nats-TTL to match, so NATS removes it. JetStream counters
// (Nats-Incr, server 2.12) were not used: an increment cannot be made
// conditional on the limit, so a take past it would need a compensating
// decrement, lost if the node dies between.
//
// # Errors and limits
//
// Every call is bounded by Config.RequestTimeout (or its context's earlier
// deadline). A delete (DeleteDevice, DeleteChannel) whose record is gone
// does the rest (channels, queue, index, presence) under a RequestTimeout
// of its own, whatever is left of its caller's context: the delete
// happened, and the rest cut short would report it as failed and leave
// it to the sweep (a loaded cluster spent most of 2 s on a device's
// record). Timeouts, no responders, no quorum (JetStream API 503s), a
// lost connection: backend.ErrUnavailable, wrapped. After Close:
// backend.ErrClosed. A stream whose configuration differs from this node's
// (replicas, MaxAge, subjects, ...) makes Open fail, saying what differs.
//
// Stats are the message counts of the devices, channels and queue streams
// (from their leaders); Queued includes expired notifications NATS has not
// removed yet.
package natsbackend
