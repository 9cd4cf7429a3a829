package fsm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unsafe"

	"github.com/rosterhq/roster/lease"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/encoding/protowire"
)

// bbolt layout: one bucket per record kind (records.go) plus meta. The
// applied index, revision and lease clock live in meta and are written in
// the same transaction as the records they describe: the file is always
// the state as of exactly its applied index.
var (
	bucketMeta = []byte("meta")

	metaApplied  = []byte("applied_index")
	metaRevision = []byte("revision")
	metaClock    = []byte("lease_clock")
	metaFormat   = []byte("format")
	metaMaxLease = []byte("max_lease_id")
)

// storeFormat 2 added the journal (journal.go). A format 1 file is a
// format 2 file with an empty journal and is upgraded on open; a binary
// that knows only format 1 refuses a format 2 file rather than load it
// without its journal.
const storeFormat = 2

// initialMmapSize is mapped up front (address space, not memory): bbolt
// remaps when the file outgrows its mapping, and a remap waits for every
// read transaction, so a snapshot being streamed would stall the apply
// path. Below this size the file grows without a remap (etcd does the same).
//
// The freelist is a map (not bbolt's default array, which every commit
// copies and shifts): with the array, even an empty tick cost grew with the
// size of the store. It is written with each commit rather than rebuilt on
// open (NoFreelistSync): rebuilding walks every page of the file, 0.7 s of
// CPU for a million keys on a restart, while checkpoints are few (at most
// one per checkpoint interval) and the freelist they write is small.
const initialMmapSize = 4 << 30

func openDB(path string, noSync bool) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second, FreelistType: bolt.FreelistMapType, InitialMmapSize: initialMmapSize})
	if err != nil {
		return nil, fmt.Errorf("fsm: open %s: %w", path, err)
	}
	db.NoSync = noSync
	// A file with every bucket and this format is opened without a write:
	// Restore checks a received snapshot this way after syncing it, and
	// renames into place exactly the bytes it synced.
	var ready bool
	err = db.View(func(tx *bolt.Tx) error {
		var err error
		ready, err = initialized(tx)
		return err
	})
	if err == nil && !ready {
		err = db.Update(func(tx *bolt.Tx) error {
			if _, err := tx.CreateBucketIfNotExists(bucketMeta); err != nil {
				return err
			}
			for _, k := range kinds {
				if _, err := tx.CreateBucketIfNotExists(k.bucket); err != nil {
					return err
				}
			}
			if _, err := tx.CreateBucketIfNotExists(bucketJournal); err != nil {
				return err
			}
			return tx.Bucket(bucketMeta).Put(metaFormat, u64(storeFormat))
		})
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("fsm: init %s: %w", path, err)
	}
	return db, nil
}

// initialized reports whether tx has every bucket and this store format;
// a format this build does not know is an error.
func initialized(tx *bolt.Tx) (bool, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return false, nil
	}
	v := meta.Get(metaFormat)
	if v != nil && (len(v) != 8 || binary.BigEndian.Uint64(v) < 1 || binary.BigEndian.Uint64(v) > storeFormat) {
		return false, fmt.Errorf("unsupported store format %x", v)
	}
	if v == nil || binary.BigEndian.Uint64(v) != storeFormat || tx.Bucket(bucketJournal) == nil {
		return false, nil
	}
	for _, k := range kinds {
		if tx.Bucket(k.bucket) == nil {
			return false, nil
		}
	}
	return true, nil
}

// loadState rebuilds the in-memory state from bbolt: the buckets with the
// journal laid over them. It also returns the journal's size, from which
// the next appends continue. (The overlay itself points into bbolt's map
// and does not outlive the transaction.)
func loadState(db *bolt.DB) (*State, int, error) {
	l := &loader{s: newState(), leases: lease.NewBuilder()}
	journalBytes := 0
	err := db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return errors.New("missing meta bucket")
		}
		l.s.applied = getU64(meta.Get(metaApplied))
		l.s.revision = int64(getU64(meta.Get(metaRevision)))
		l.s.clock = int64(getU64(meta.Get(metaClock)))
		l.s.maxLeaseID = int64(getU64(meta.Get(metaMaxLease)))
		o, err := readJournal(tx)
		if err != nil {
			return err
		}
		journalBytes = o.bytes
		// Leases before keys: a key's lease must exist to attach it.
		for _, k := range []recordKind{kindLease, kindKV, kindMember, kindAuth} {
			spec := &kinds[k]
			b := tx.Bucket(spec.bucket)
			if b == nil {
				return fmt.Errorf("missing %s bucket", spec.bucket)
			}
			if err := o.forEach(b, k, func(k, v []byte) error { return spec.load(l, k, v) }); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("fsm: load state: %w", err)
	}
	l.s.leases = l.leases.Table()
	l.s.auth.admins = l.s.auth.adminTokens()
	return l.s, journalBytes, nil
}

// loader fills a fresh State from stored records, in each bucket's key
// order: the trees are bulk-loaded (full nodes, no search per insert).
type loader struct {
	s      *State
	leases *lease.Builder
}

func (l *loader) kv(k, v []byte) error {
	kv, err := decodeKV(k, v)
	if err != nil {
		return err
	}
	l.s.kv.Load(kv)
	if kv.Lease != 0 {
		l.leases.Attach(kv.Lease, kv.Key)
	}
	return nil
}

func (l *loader) lease(k, v []byte) error {
	ls, err := decodeLease(k, v)
	if err != nil {
		return err
	}
	l.leases.Lease(ls)
	// Stores written before max_lease_id existed: the live leases are the
	// best floor they can offer.
	l.s.maxLeaseID = max(l.s.maxLeaseID, ls.ID)
	return nil
}

func (l *loader) member(k, v []byte) error {
	c, err := Decode(v)
	if err != nil {
		return err
	}
	m, ok := c.(SetMember)
	if !ok || m.Member.ID != string(k) {
		return fmt.Errorf("member %q: unexpected record %T", k, c)
	}
	l.s.members = append(l.s.members, m.Member) // bbolt iterates in key (ID) order
	return nil
}

// writeCheckpoint writes the meta values of s with, in one transaction,
// either the journal value journal (when not nil) or the records of c as
// found in s, in place. With clear set it merges: the records the journal
// holds are written in place too (added to c), and the journal emptied.
func writeCheckpoint(db *bolt.DB, s *State, c *changeSet, journal []byte, clear bool) error {
	return db.Update(func(tx *bolt.Tx) error {
		var err error
		switch {
		case journal != nil:
			err = appendJournal(tx, journal)
		case clear:
			if err = addJournalKeys(tx, c); err == nil {
				if err = writeRecords(tx, s, c); err == nil {
					err = clearJournal(tx)
				}
			}
		default:
			err = writeRecords(tx, s, c)
		}
		if err != nil {
			return err
		}
		meta := tx.Bucket(bucketMeta)
		if err := meta.Put(metaApplied, u64(s.applied)); err != nil {
			return err
		}
		if err := meta.Put(metaRevision, u64(uint64(s.revision))); err != nil {
			return err
		}
		if err := meta.Put(metaMaxLease, u64(uint64(s.maxLeaseID))); err != nil {
			return err
		}
		return meta.Put(metaClock, u64(uint64(s.clock)))
	})
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func getU64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// A stored KV: varints create, mod, version, lease, then the value bytes.
func appendKV(b []byte, kv *KV) []byte {
	b = protowire.AppendVarint(b, uint64(kv.CreateRevision))
	b = protowire.AppendVarint(b, uint64(kv.ModRevision))
	b = protowire.AppendVarint(b, uint64(kv.Version))
	b = protowire.AppendVarint(b, uint64(kv.Lease))
	return append(b, kv.Value...)
}

func decodeKV(k, v []byte) (*KV, error) {
	var f [4]int64 // create, mod, version, lease
	for i := range f {
		x, n := protowire.ConsumeVarint(v)
		if n < 0 {
			return nil, fmt.Errorf("key %q: corrupt record", k)
		}
		f[i] = int64(x)
		v = v[n:]
	}
	// Key and value share one allocation (both are immutable): a load of
	// a million keys makes a million fewer objects.
	buf := make([]byte, len(k)+len(v))
	copy(buf, k)
	copy(buf[len(k):], v)
	kv := &KV{CreateRevision: f[0], ModRevision: f[1], Version: f[2], Lease: f[3]}
	if len(k) > 0 {
		kv.Key = unsafe.String(&buf[0], len(k))
	}
	kv.Value = buf[len(k):len(buf):len(buf)]
	return kv, nil
}

// A stored lease: varints ttl, deadline, then the name.
func appendLease(b []byte, l *lease.Lease) []byte {
	b = protowire.AppendVarint(b, uint64(l.TTL))
	b = protowire.AppendVarint(b, uint64(l.Deadline))
	return append(b, l.Name...)
}

func decodeLease(k, v []byte) (*lease.Lease, error) {
	if len(k) != 8 {
		return nil, fmt.Errorf("corrupt lease key %x", k)
	}
	l := &lease.Lease{ID: int64(binary.BigEndian.Uint64(k))}
	for _, dst := range []*int64{&l.TTL, &l.Deadline} {
		x, n := protowire.ConsumeVarint(v)
		if n < 0 {
			return nil, fmt.Errorf("lease %d: corrupt record", l.ID)
		}
		*dst = int64(x)
		v = v[n:]
	}
	l.Name = string(v)
	return l, nil
}
