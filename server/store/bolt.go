package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/openmpns/openmpns/server/backend"
)

var (
	bucketDevices  = []byte("devices")
	bucketChannels = []byte("channels")
	bucketQueue    = []byte("queue")
	bucketMeta     = []byte("meta")
	keySchema      = []byte("schema")
)

const schemaVersion = "1"

// Bolt is the embedded store: one bbolt file, written through a single
// group-commit loop so that concurrent writers share one fsync. Every write
// method returns only once its change is durable on disk.
type Bolt struct {
	db   *bolt.DB
	ops  chan *op
	done chan struct{}

	mu     sync.RWMutex // guards closed against submit
	closed bool
}

type op struct {
	apply func(tx *bolt.Tx) error
	err   chan error
	// after, if set, learns the outcome (with n) before err yields it.
	after func(n *Notification, err error)
	// A Log.EnqueueThen notification (seq) is written unless it was removed
	// first: state goes from opQueued to opApplied when the commit loop
	// writes it, or to opCancelled when RemoveLater comes first.
	seq   uint64
	state atomic.Int32

	// For the notification log (Log): what the op asks (opPut, opRemove,
	// opFunc) and its arguments.
	kind    int
	n       *Notification // opPut: the notification (encoded by the commit loop)
	replace uint64        // opPut: the Seq it replaces, or 0
	seqs    []uint64      // opRemove
	fn      func()        // opFunc
	// at is when an opPut was submitted, when the log lingers: its group's
	// linger is counted from its first op's.
	at time.Time
	// waiting: the op is in Log.pend; live: it is counted in
	// Log.pendLive; hurried: Log.Hurry asked for it (its group does not
	// linger). All three are guarded by Log.pmu.
	waiting, live, hurried bool
}

const (
	opQueued int32 = iota
	opApplied
	opCancelled
)

// finish reports the op's outcome.
func (o *op) finish(err error) {
	if o.after != nil {
		o.after(o.n, err)
	}
	o.err <- err
}

var errClosed = fmt.Errorf("store: %w", backend.ErrClosed)

// maxGroup bounds how many writes share one transaction.
const maxGroup = 512

// OpenBolt opens (or creates) the store file at path. A file that exists but
// cannot be read as an OpenMPNS store is an error, never replaced: the
// server refuses to start rather than start empty over its data. Every page
// of an existing file is checked before it is used.
func OpenBolt(path string) (*Bolt, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("store: create data directory: %w", err)
	}
	fi, statErr := os.Stat(path)
	existed := statErr == nil
	if existed && !fi.Mode().IsRegular() {
		return nil, damaged(path, fmt.Errorf("not a regular file (%s)", fi.Mode().Type()))
	}
	if existed {
		// bbolt reads pages while it opens (the freelist): past the end of
		// a truncated file that is a SIGBUS, not an error.
		if err := checkSize(path); err != nil {
			return nil, damaged(path, err)
		}
	}
	db, err := openDB(path)
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("store: open %s: %w: another openmpns server is using this data directory; stop it first or use another --data", path, err)
	}
	if err != nil {
		return nil, damaged(path, err)
	}
	if existed {
		if err := check(db, path); err != nil {
			db.Close()
			return nil, damaged(path, err)
		}
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketDevices, bucketChannels, bucketQueue, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		switch v := meta.Get(keySchema); {
		case v == nil:
			return meta.Put(keySchema, []byte(schemaVersion))
		case string(v) != schemaVersion:
			return fmt.Errorf("schema version %q, this server reads %q", v, schemaVersion)
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: initialise %s: %w", path, err)
	}
	b := &Bolt{db: db, ops: make(chan *op, maxGroup), done: make(chan struct{})}
	go b.commitLoop()
	return b, nil
}

// damaged is the refusal to use a data file that cannot be read: it names
// the file and says what the operator can do.
func damaged(path string, err error) error {
	return fmt.Errorf("store: data file %s is damaged or unreadable: %w; "+
		"the server will not start with an empty store in its place (that would silently drop every device, channel and queued notification): "+
		"restore the file from a backup, or move it away to start with an empty store (devices then register again and get new Channel URIs)", path, err)
}

// openDB opens the bbolt file; bbolt can panic on a damaged file.
func openDB(path string) (db *bolt.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("%v", r)
		}
	}()
	return bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
}

// boltMagic marks a bbolt meta page.
const boltMagic = 0xED0CDAED

// checkSize refuses a file shorter than a meta page of it says it is: the
// meta pages (the first two pages) hold the page size and the number of
// pages in use (bbolt's meta layout: after the 16-byte page header, magic,
// version, page size and flags as uint32, the root bucket (16 bytes), the
// freelist's page and the high-water page id as uint64, little endian on
// the machines we build for).
func checkSize(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	pageSize := int64(os.Getpagesize())
	for i := range int64(2) {
		var m [64]byte
		if _, err := f.ReadAt(m[:], i*pageSize); err != nil {
			return nil // too short for bbolt's own checks to miss
		}
		if binary.LittleEndian.Uint32(m[16:]) != boltMagic {
			continue
		}
		ps := int64(binary.LittleEndian.Uint32(m[24:]))
		if i == 0 && ps >= 512 && ps <= 1<<20 {
			pageSize = ps
		}
		if need := int64(binary.LittleEndian.Uint64(m[56:])) * ps; need > fi.Size() {
			return fmt.Errorf("truncated: the file is %d bytes, its pages need %d", fi.Size(), need)
		}
	}
	return nil
}

// check makes sure the file holds every page its meta page claims (a
// truncated file would fault on access, not fail), then walks every page
// (bbolt's consistency check).
func check(db *bolt.DB, path string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("consistency check: %v", r)
		}
	}()
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	return db.View(func(tx *bolt.Tx) error {
		if need := tx.Size(); fi.Size() < need {
			return fmt.Errorf("truncated: the file is %d bytes, its pages need %d", fi.Size(), need)
		}
		for err := range tx.Check() {
			return fmt.Errorf("consistency check: %w", err)
		}
		return nil
	})
}

// view runs a read transaction, turning a panic on a damaged page into an error.
func (b *Bolt) view(fn func(tx *bolt.Tx) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("damaged data: %v", r)
		}
	}()
	return b.db.View(fn)
}

// commitLoop runs every write. It takes all writes waiting at that moment,
// applies them in one transaction and commits once; each write gets its own
// error (a failed write does not undo the others), and a failed commit fails
// them all.
func (b *Bolt) commitLoop() {
	defer close(b.done)
	group := make([]*op, 0, maxGroup)
	errs := make([]error, 0, maxGroup)
	for first := range b.ops {
		group = append(group[:0], first)
	drain:
		for len(group) < maxGroup {
			select {
			case o, ok := <-b.ops:
				if !ok {
					break drain
				}
				group = append(group, o)
			default:
				break drain
			}
		}
		errs = errs[:0]
		err := b.db.Update(func(tx *bolt.Tx) error {
			for _, o := range group {
				// bbolt has no savepoints: an op that fails must fail
				// before it writes, so the others can still commit.
				errs = append(errs, o.apply(tx))
			}
			return nil
		})
		for i, o := range group {
			if err != nil {
				o.finish(fmt.Errorf("store: commit: %w", err))
			} else {
				o.finish(errs[i])
			}
		}
	}
}

// submit queues fn for the commit loop and returns at once; the channel
// yields fn's outcome once it is durable. Writes are applied in submission
// order. fn must check everything that can fail before it changes anything.
func (b *Bolt) submit(fn func(tx *bolt.Tx) error) <-chan error {
	return b.submitOp(&op{apply: fn, err: make(chan error, 1)})
}

// submitOp queues o for the commit loop.
func (b *Bolt) submitOp(o *op) <-chan error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		o.finish(errClosed)
		return o.err
	}
	b.ops <- o
	return o.err
}

// write submits fn and waits until it is durable.
func (b *Bolt) write(fn func(tx *bolt.Tx) error) error { return <-b.submit(fn) }

// DB returns the underlying bbolt database, for packages that keep their
// own buckets in the same file (server/auth). Their writes queue behind the
// commit loop's.
func (b *Bolt) DB() *bolt.DB { return b.db }

// Close waits for pending writes and closes the file.
func (b *Bolt) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	close(b.ops)
	b.mu.Unlock()
	<-b.done
	return b.db.Close()
}

// PutDevice creates or replaces a device.
func (b *Bolt) PutDevice(d Device) error {
	v := encodeDevice(d) // dircodec.go
	return b.write(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDevices).Put([]byte(d.ID), v)
	})
}

// Devices returns every device.
func (b *Bolt) Devices() ([]Device, error) {
	var out []Device
	err := b.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDevices).ForEach(func(k, v []byte) error {
			d, err := decodeDevice(string(k), v)
			if err != nil {
				return fmt.Errorf("device %q: %w", k, err)
			}
			out = append(out, d)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: read devices: %w", err)
	}
	return out, nil
}

// PutChannel creates or replaces a channel.
func (b *Bolt) PutChannel(c Channel) error {
	v := encodeChannel(c) // dircodec.go
	return b.write(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketChannels).Put([]byte(c.Token), v)
	})
}

// Channels returns every channel.
func (b *Bolt) Channels() ([]Channel, error) {
	var out []Channel
	err := b.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketChannels).ForEach(func(k, v []byte) error {
			c, err := decodeChannel(string(k), v)
			if err != nil {
				return fmt.Errorf("channel %q: %w", k, err)
			}
			out = append(out, c)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: read channels: %w", err)
	}
	return out, nil
}

// DeleteChannel removes a channel (its notifications are in the Log).
func (b *Bolt) DeleteChannel(token string) error {
	return b.write(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketChannels).Delete([]byte(token))
	})
}

// DeleteDevice deletes a device and its channels in one transaction (their
// notifications are in the Log).
func (b *Bolt) DeleteDevice(id string, tokens []string) error {
	return b.write(func(tx *bolt.Tx) error {
		chans := tx.Bucket(bucketChannels)
		for _, t := range tokens {
			if err := chans.Delete([]byte(t)); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketDevices).Delete([]byte(id))
	})
}

func seqKey(seq uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, seq)
	return k
}

// Remove deletes delivered or expired notifications and returns once that
// is durable.
func (b *Bolt) Remove(seqs []uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	return b.write(func(tx *bolt.Tx) error { return deleteSeqs(tx, seqs) })
}

func deleteSeqs(tx *bolt.Tx, seqs []uint64) error {
	q := tx.Bucket(bucketQueue)
	for _, seq := range seqs {
		if err := q.Delete(seqKey(seq)); err != nil {
			return err
		}
	}
	return nil
}

// Queued returns every queued notification in Seq order.
func (b *Bolt) Queued() ([]*Notification, error) {
	var out []*Notification
	err := b.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketQueue).ForEach(func(k, v []byte) error {
			n := new(Notification)
			if err := json.Unmarshal(v, n); err != nil {
				return fmt.Errorf("notification %x: %w", k, err)
			}
			if !bytes.Equal(k, seqKey(n.Seq)) {
				return fmt.Errorf("notification %x: key does not match seq %d", k, n.Seq)
			}
			out = append(out, n)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: read queue: %w", err)
	}
	return out, nil
}

var keySeqReserved = []byte("seq_reserved")

// SeqReserved returns the highest notification Seq reserved so far (0 if
// none was ever reserved: a file from before the reservation).
func (b *Bolt) SeqReserved() (uint64, error) {
	var v uint64
	err := b.view(func(tx *bolt.Tx) error {
		if raw := tx.Bucket(bucketMeta).Get(keySeqReserved); len(raw) == 8 {
			v = binary.BigEndian.Uint64(raw)
		}
		return nil
	})
	return v, err
}

// ReserveSeq durably records that Seqs up to upTo may have been handed out,
// so that none of them is handed out again after a restart.
func (b *Bolt) ReserveSeq(upTo uint64) error {
	return b.write(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySeqReserved, seqKey(upTo))
	})
}

// Hold stops the commit loop until release is called: writes submitted
// meanwhile wait (and are not durable). For tests that need a moment when
// nothing is written, and for taking a consistent copy of the file.
func (b *Bolt) Hold() (release func()) {
	held := make(chan struct{})
	stop := make(chan struct{})
	b.submit(func(*bolt.Tx) error {
		close(held)
		<-stop
		return nil
	})
	<-held
	var once sync.Once
	return func() { once.Do(func() { close(stop) }) }
}
