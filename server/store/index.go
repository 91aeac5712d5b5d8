package store

import (
	"slices"
	"strings"
	"time"
	"unique"

	"github.com/openmpns/openmpns/server/backend"
)

// The in-memory index keeps its records in compact private forms, not as
// backend.Device and backend.Channel values: an idle connection's device,
// channel and presence were the largest share of the server's memory per
// connection (issue 10, docs/benchmarks.md). What makes them compact:
//
//   - a device holds its channels (a device has a few, at most 30), so a
//     channel needs no device id and there is no separate app index;
//   - strings that many records share (app and channel names, services,
//     power levels, the Channel URI's part before the token) are interned
//     through package unique: 8 bytes each, their text kept once;
//   - a Channel URI that ends in its token (every URI the engine makes) is
//     kept as its prefix;
//   - a device's presence is in its record, not in a map of its own;
//   - times are a stamp (12 bytes of seconds and nanoseconds), not a
//     time.Time (24).
//
// Records come back out equal to what went in (time.Time.Equal for times;
// times come back in the local time zone, without a monotonic reading).

// stamp is a time.Time to the nanosecond, every time included (the zero
// time too), without its location or monotonic reading.
type stamp struct {
	sec  int64
	nsec int32
}

func toStamp(t time.Time) stamp { return stamp{t.Unix(), int32(t.Nanosecond())} }

func (s stamp) time() time.Time { return time.Unix(s.sec, int64(s.nsec)) }

// devRec is a device in the index: the key of Embedded.devices, and the
// value of Embedded.channels for each of its channels.
type devRec struct {
	id       string
	hash     string // TokenHash
	rev      uint64
	created  int64 // seconds of CreatedAt (see stamp)
	seen     int64 // seconds of LastSeen
	createdN int32
	seenN    int32
	power    unique.Handle[string]
	chans    []chanRec // in the order they were created
	// pres is the device's presence (claim 0: none); guarded by
	// Embedded.pmu, not mu.
	pres presRec
}

// chanRec is a channel in the index, held in its device's record.
type chanRec struct {
	token   string // shares its text with Embedded.channels' key
	app     unique.Handle[string]
	name    unique.Handle[string]
	service unique.Handle[string]
	// uri is the Channel URI's text before the token, or the whole URI
	// when it does not end in the token (uriWhole).
	uri      unique.Handle[string]
	domains  *[]string // nil when there are none (most channels)
	rev      uint64
	created  int64 // seconds of CreatedAt (see stamp)
	createdN int32
	toast    bool
	tile     bool
	uriWhole bool
}

func newDevRec(d Device) *devRec {
	r := &devRec{id: d.ID}
	r.set(d)
	return r
}

// set takes d's fields but its id (which never changes).
func (r *devRec) set(d Device) {
	c, s := toStamp(d.CreatedAt), toStamp(d.LastSeen)
	r.hash = string(d.TokenHash)
	r.rev = d.Rev
	r.created, r.createdN = c.sec, c.nsec
	r.seen, r.seenN = s.sec, s.nsec
	r.power = unique.Make(d.Power)
}

// device returns the record as a backend.Device (its TokenHash a copy).
func (r *devRec) device() Device {
	d := r.deviceNoHash()
	d.TokenHash = []byte(r.hash)
	return d
}

// deviceNoHash is device without the TokenHash (Directory.Target's).
func (r *devRec) deviceNoHash() Device {
	return Device{
		ID:        r.id,
		CreatedAt: stamp{r.created, r.createdN}.time(),
		LastSeen:  stamp{r.seen, r.seenN}.time(),
		Power:     r.power.Value(),
		Rev:       r.rev,
	}
}

// channel returns the device's channel with this token, nil when it has none.
func (r *devRec) channel(token string) *chanRec {
	for i := range r.chans {
		if r.chans[i].token == token {
			return &r.chans[i]
		}
	}
	return nil
}

// appChannel returns the device's channel of app, nil when it has none.
func (r *devRec) appChannel(app string) *chanRec {
	h := unique.Make(app)
	for i := range r.chans {
		if r.chans[i].app == h {
			return &r.chans[i]
		}
	}
	return nil
}

// putChannel records c (its Token already the text Embedded.channels keys
// it by): in place of the channel with its token, else added.
func (r *devRec) putChannel(c Channel) {
	if o := r.channel(c.Token); o != nil {
		*o = newChanRec(c)
		return
	}
	r.chans = append(r.chans, newChanRec(c))
}

// deleteChannel drops the channel with this token.
func (r *devRec) deleteChannel(token string) {
	for i := range r.chans {
		if r.chans[i].token == token {
			r.chans = slices.Delete(r.chans, i, i+1) // clears the freed element
			break
		}
	}
	if len(r.chans) == 0 {
		r.chans = nil
	}
}

func newChanRec(c Channel) chanRec {
	s := toStamp(c.CreatedAt)
	r := chanRec{
		token: c.Token, rev: c.Rev, created: s.sec, createdN: s.nsec, toast: c.Toast, tile: c.Tile,
		app: unique.Make(c.App), name: unique.Make(c.Name), service: unique.Make(c.Service),
	}
	if prefix, ok := strings.CutSuffix(c.URI, c.Token); ok {
		r.uri = unique.Make(prefix)
	} else {
		r.uri, r.uriWhole = unique.Make(c.URI), true
	}
	if len(c.Domains) > 0 {
		d := append([]string(nil), c.Domains...)
		r.domains = &d
	}
	return r
}

// channel returns the record as a backend.Channel of device dev (its
// Domains a copy).
func (c *chanRec) channel(dev string) Channel {
	out := Channel{
		Token: c.token, DeviceID: dev, App: c.app.Value(), Name: c.name.Value(), Service: c.service.Value(),
		URI: c.uri.Value(), Toast: c.toast, Tile: c.tile,
		CreatedAt: stamp{c.created, c.createdN}.time(), Rev: c.rev,
	}
	if !c.uriWhole {
		out.URI += c.token
	}
	if c.domains != nil {
		out.Domains = append([]string(nil), *c.domains...)
	}
	return out
}

// presRec is a device's presence: on one node, whether it is connected,
// since when, and its claim (the node is always "local"; claims start at 1).
type presRec struct {
	claim     uint64
	since     int64 // seconds (see stamp)
	sinceN    int32
	connected bool
}

func newPresRec(connected bool, since time.Time, claim uint64) presRec {
	s := toStamp(since)
	return presRec{claim: claim, since: s.sec, sinceN: s.nsec, connected: connected}
}

func (p presRec) presence() backend.Presence {
	return backend.Presence{Node: localNode, Connected: p.connected, Since: stamp{p.since, p.sinceN}.time(), Claim: p.claim}
}

// localNode is the one node's name in its presences.
const localNode = "local"
