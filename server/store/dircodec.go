package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// How devices and channels are kept in the data file. Files written before
// this codec hold JSON (a record starting with '{'), which is still read;
// records are written in the compact form below, about half the size, so
// the file, and the pages of it the server maps, are about half as large
// (issue 10: memory per idle connection).
//
// A compact record is the version byte dirV1, then its fields in order,
// each string or byte slice as a uvarint length and its bytes, each time
// as a varint of Unix seconds and a uvarint of nanoseconds. The record's
// key (a device's ID, a channel's Token) is not repeated in it.
//
//	device:  TokenHash, CreatedAt, LastSeen, Power
//	channel: DeviceID, App, Name, Service, URI, a flags byte (1 Toast,
//	         2 Tile), a uvarint count of Domains and each domain, CreatedAt
//
// A server from before this codec cannot read a file this one wrote.
const dirV1 = 1

var errDirRecord = errors.New("damaged record")

func encodeDevice(d Device) []byte {
	b := make([]byte, 0, 1+len(d.TokenHash)+len(d.Power)+2*binary.MaxVarintLen64+2*(binary.MaxVarintLen64+5))
	b = append(b, dirV1)
	b = appendBytes(b, d.TokenHash)
	b = appendTime(b, d.CreatedAt)
	b = appendTime(b, d.LastSeen)
	return appendBytes(b, []byte(d.Power))
}

func decodeDevice(id string, v []byte) (Device, error) {
	if len(v) > 0 && v[0] == '{' {
		var d Device
		err := json.Unmarshal(v, &d)
		d.ID = id // the key is the record's name, whatever the JSON says
		return d, err
	}
	r := dirReader{v: v}
	if r.byte() != dirV1 {
		return Device{}, fmt.Errorf("%w: unknown version", errDirRecord)
	}
	d := Device{ID: id}
	if h := r.bytes(); len(h) > 0 {
		d.TokenHash = append([]byte(nil), h...)
	}
	d.CreatedAt = r.time()
	d.LastSeen = r.time()
	d.Power = string(r.bytes())
	return d, r.done()
}

func encodeChannel(c Channel) []byte {
	n := 1 + len(c.DeviceID) + len(c.App) + len(c.Name) + len(c.Service) + len(c.URI) + 1 + 8*binary.MaxVarintLen64
	for _, d := range c.Domains {
		n += binary.MaxVarintLen64 + len(d)
	}
	b := make([]byte, 0, n)
	b = append(b, dirV1)
	for _, s := range []string{c.DeviceID, c.App, c.Name, c.Service, c.URI} {
		b = appendBytes(b, []byte(s))
	}
	var flags byte
	if c.Toast {
		flags |= 1
	}
	if c.Tile {
		flags |= 2
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(len(c.Domains)))
	for _, d := range c.Domains {
		b = appendBytes(b, []byte(d))
	}
	return appendTime(b, c.CreatedAt)
}

func decodeChannel(token string, v []byte) (Channel, error) {
	if len(v) > 0 && v[0] == '{' {
		var c Channel
		err := json.Unmarshal(v, &c)
		c.Token = token // the key is the record's name, whatever the JSON says
		return c, err
	}
	r := dirReader{v: v}
	if r.byte() != dirV1 {
		return Channel{}, fmt.Errorf("%w: unknown version", errDirRecord)
	}
	c := Channel{Token: token}
	c.DeviceID = string(r.bytes())
	c.App = string(r.bytes())
	c.Name = string(r.bytes())
	c.Service = string(r.bytes())
	c.URI = string(r.bytes())
	flags := r.byte()
	c.Toast, c.Tile = flags&1 != 0, flags&2 != 0
	if n := r.uvarint(); n > 0 && n <= uint64(len(r.v)) { // each domain takes a byte at least
		c.Domains = make([]string, 0, n)
		for range n {
			c.Domains = append(c.Domains, string(r.bytes()))
		}
	} else if n > 0 {
		r.err = errDirRecord
	}
	c.CreatedAt = r.time()
	return c, r.done()
}

func appendBytes(b, s []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendTime(b []byte, t time.Time) []byte {
	return binary.AppendUvarint(binary.AppendVarint(b, t.Unix()), uint64(t.Nanosecond()))
}

// dirReader reads a compact record; the first thing that does not parse
// sets err, and everything after reads as zero.
type dirReader struct {
	v   []byte
	err error
}

func (r *dirReader) byte() byte {
	if r.err != nil || len(r.v) == 0 {
		r.err = errDirRecord
		return 0
	}
	c := r.v[0]
	r.v = r.v[1:]
	return c
}

func (r *dirReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	x, n := binary.Uvarint(r.v)
	if n <= 0 {
		r.err = errDirRecord
		return 0
	}
	r.v = r.v[n:]
	return x
}

func (r *dirReader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.v)) {
		r.err = errDirRecord
		return nil
	}
	s := r.v[:n]
	r.v = r.v[n:]
	return s
}

func (r *dirReader) time() time.Time {
	if r.err != nil {
		return time.Time{}
	}
	sec, n := binary.Varint(r.v)
	if n <= 0 {
		r.err = errDirRecord
		return time.Time{}
	}
	r.v = r.v[n:]
	nsec := r.uvarint()
	if nsec >= 1e9 {
		r.err = errDirRecord
	}
	if r.err != nil {
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec))
}

// done reports the record's first error, or that bytes were left over.
func (r *dirReader) done() error {
	if r.err == nil && len(r.v) > 0 {
		r.err = fmt.Errorf("%w: %d bytes left over", errDirRecord, len(r.v))
	}
	return r.err
}
