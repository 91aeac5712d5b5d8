package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// The notification log's on-disk format (see Log). A segment file is a
// sequence of records, each one group commit:
//
//	length  uint32, little endian: the size of body
//	crc     uint32, little endian: CRC-32C of length and body, chained: the
//	        CRC of the record before (the segment's seed for the first) is
//	        the initial value
//	body    entries, one after the other
//
// An entry is a kind byte, then for entryPut the notification's Seq
// (uvarint), a uvarint length and the notification's JSON, and for entryRemove a uvarint count and that many
// uvarint Seqs. The first record that does not check (short, a length out of
// bounds, a CRC that does not match, an entry that does not parse) ends the
// segment: what follows was never acknowledged (a torn write, or the zeros of
// the preallocated space). The chain makes a stale but intact record left
// past the end by an earlier failed write unreadable as a continuation.

const (
	recordHeader = 8
	// maxRecord bounds a record's body; a larger length is damage, and a
	// larger body is never written.
	maxRecord = 256 << 20
	// copyChunk is the size from which the notifications a compaction
	// copies go on in another record.
	copyChunk = 4 << 20

	entryPut    byte = 1
	entryRemove byte = 2
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// segmentSeed is the CRC that the first record of segment id chains from.
func segmentSeed(id uint64) uint32 {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], id)
	return crc32.Checksum(b[:], castagnoli)
}

// entry is one change in a record: a notification stored (put: its Seq and
// JSON) or notifications removed (seqs).
type entry struct {
	kind byte
	seq  uint64 // put
	data []byte // put: the notification's JSON
	seqs []uint64
}

// appendPut adds a put entry (the notification seq, as JSON) to a record body.
func appendPut(body []byte, seq uint64, data []byte) []byte {
	body = append(body, entryPut)
	body = binary.AppendUvarint(body, seq)
	body = binary.AppendUvarint(body, uint64(len(data)))
	return append(body, data...)
}

// appendRemove adds a remove entry to a record body.
func appendRemove(body []byte, seqs []uint64) []byte {
	body = append(body, entryRemove)
	body = binary.AppendUvarint(body, uint64(len(seqs)))
	for _, s := range seqs {
		body = binary.AppendUvarint(body, s)
	}
	return body
}

// appendRecord frames body as a record chained from prev, appends it to dst
// and returns the record's CRC (the next record's prev).
func appendRecord(dst []byte, prev uint32, body []byte) ([]byte, uint32) {
	var h [recordHeader]byte
	binary.LittleEndian.PutUint32(h[:4], uint32(len(body)))
	crc := crc32.Update(prev, castagnoli, h[:4])
	crc = crc32.Update(crc, castagnoli, body)
	binary.LittleEndian.PutUint32(h[4:], crc)
	dst = append(dst, h[:]...)
	return append(dst, body...), crc
}

var errBadEntry = errors.New("bad entry")

// parseBody splits a record body into its entries.
func parseBody(body []byte) ([]entry, error) {
	var out []entry
	for len(body) > 0 {
		kind := body[0]
		body = body[1:]
		var seq uint64
		if kind == entryPut {
			s, k := binary.Uvarint(body)
			if k <= 0 {
				return nil, fmt.Errorf("%w: put seq", errBadEntry)
			}
			seq, body = s, body[k:]
		}
		n, k := binary.Uvarint(body)
		if k <= 0 {
			return nil, fmt.Errorf("%w: length", errBadEntry)
		}
		body = body[k:]
		switch kind {
		case entryPut:
			if n > uint64(len(body)) {
				return nil, fmt.Errorf("%w: put of %d bytes, %d left", errBadEntry, n, len(body))
			}
			out = append(out, entry{kind: entryPut, seq: seq, data: body[:n:n]})
			body = body[n:]
		case entryRemove:
			if n > uint64(len(body)) { // each Seq takes a byte at least
				return nil, fmt.Errorf("%w: %d removals, %d bytes left", errBadEntry, n, len(body))
			}
			seqs := make([]uint64, 0, n)
			for range n {
				s, k := binary.Uvarint(body)
				if k <= 0 {
					return nil, fmt.Errorf("%w: removed seq", errBadEntry)
				}
				seqs = append(seqs, s)
				body = body[k:]
			}
			out = append(out, entry{kind: entryRemove, seqs: seqs})
		default:
			return nil, fmt.Errorf("%w: kind %d", errBadEntry, kind)
		}
	}
	return out, nil
}

// parseSegment reads the records of a segment chained from seed, calling fn
// with each record's entries in order. It returns the length of the valid
// prefix (where the next record goes) and the last record's CRC. It never
// fails: the first record that does not check ends the segment.
func parseSegment(data []byte, seed uint32, fn func([]entry)) (valid int, crc uint32) {
	crc = seed
	for {
		rest := data[valid:]
		if len(rest) < recordHeader {
			return valid, crc
		}
		n := binary.LittleEndian.Uint32(rest[:4])
		if n == 0 || n > maxRecord || uint64(n) > uint64(len(rest)-recordHeader) {
			return valid, crc
		}
		c := crc32.Update(crc, castagnoli, rest[:4])
		c = crc32.Update(c, castagnoli, rest[recordHeader:recordHeader+n])
		if c != binary.LittleEndian.Uint32(rest[4:8]) {
			return valid, crc
		}
		entries, err := parseBody(rest[recordHeader : recordHeader+n])
		if err != nil {
			return valid, crc
		}
		fn(entries)
		valid += recordHeader + int(n)
		crc = c
	}
}
