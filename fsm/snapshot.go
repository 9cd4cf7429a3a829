package fsm

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
)

// A snapshot is the bbolt file framed so that Restore can prove it whole
// before bbolt maps it: bbolt trusts its file, and a truncated one can
// crash the process with SIGBUS instead of returning an error.
//
//	magic "RSTRSNAP" | version u32 | length u64 | bbolt bytes | sha256
var snapMagic = []byte("RSTRSNAP")

const snapVersion = 1

// Snapshot commits the checkpoint, then captures it with a bbolt read
// transaction; Persist streams it without holding up the apply path.
// raft calls Snapshot on the apply goroutine, so the checkpoint is the
// state as of the snapshot's index exactly; and since the checkpoint is
// durable before raft may compact the log up to that index, the log always
// holds every entry after the state file's index.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	if err := f.Checkpoint(); err != nil {
		return nil, fmt.Errorf("fsm: snapshot: %w", err)
	}
	f.dbMu.RLock()
	tx, err := f.db.Begin(false)
	f.dbMu.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("fsm: snapshot: %w", err)
	}
	if got, want := getU64(tx.Bucket(bucketMeta).Get(metaApplied)), f.cur.Load().applied; got != want {
		_ = tx.Rollback()
		return nil, fmt.Errorf("fsm: snapshot: the state file is at index %d, the state at %d", got, want)
	}
	return &snapshot{tx: tx, failpoint: f.failpoint}, nil
}

type snapshot struct {
	tx        *bolt.Tx
	once      sync.Once
	failpoint func(string)
}

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	s.failpoint(FailSnapshotPersistStart)
	if err := writeSnapshot(sink, s.tx); err != nil {
		sink.Cancel()
		return fmt.Errorf("fsm: persist snapshot: %w", err)
	}
	s.failpoint(FailSnapshotPersistWritten)
	if err := sink.Close(); err != nil {
		return err
	}
	s.failpoint(FailSnapshotPersisted)
	return nil
}

func (s *snapshot) Release() { s.once.Do(func() { _ = s.tx.Rollback() }) }

func writeSnapshot(w io.Writer, tx *bolt.Tx) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	hdr := append([]byte(nil), snapMagic...)
	hdr = binary.BigEndian.AppendUint32(hdr, snapVersion)
	hdr = binary.BigEndian.AppendUint64(hdr, uint64(tx.Size()))
	if _, err := bw.Write(hdr); err != nil {
		return err
	}
	h := sha256.New()
	n, err := tx.WriteTo(io.MultiWriter(bw, h))
	if err != nil {
		return err
	}
	if n != tx.Size() {
		return fmt.Errorf("wrote %d bytes of a %d-byte state", n, tx.Size())
	}
	if _, err := bw.Write(h.Sum(nil)); err != nil {
		return err
	}
	return bw.Flush()
}

// errBadSnapshot: the stream is not a whole snapshot of this format.
var errBadSnapshot = errors.New("not a valid snapshot")

// readSnapshot copies the bbolt bytes of a snapshot stream into path,
// synced, after checking its frame and checksum. failpoint is called once
// the bytes are written, before the sync.
func readSnapshot(r io.Reader, path string, failpoint func(string)) error {
	br := bufio.NewReaderSize(r, 1<<20)
	hdr := make([]byte, len(snapMagic)+4+8)
	if _, err := io.ReadFull(br, hdr); err != nil {
		return fmt.Errorf("%w: header: %v", errBadSnapshot, err)
	}
	if !bytes.Equal(hdr[:len(snapMagic)], snapMagic) {
		return fmt.Errorf("%w: bad magic", errBadSnapshot)
	}
	if v := binary.BigEndian.Uint32(hdr[len(snapMagic):]); v != snapVersion {
		return fmt.Errorf("%w: version %d (this build knows %d)", errBadSnapshot, v, snapVersion)
	}
	size := int64(binary.BigEndian.Uint64(hdr[len(snapMagic)+4:]))
	fh, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer fh.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(fh, h), io.LimitReader(br, size))
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("%w: truncated: %d of %d bytes", errBadSnapshot, n, size)
	}
	sum := make([]byte, sha256.Size)
	if _, err := io.ReadFull(br, sum); err != nil {
		return fmt.Errorf("%w: checksum: %v", errBadSnapshot, err)
	}
	if !bytes.Equal(sum, h.Sum(nil)) {
		return fmt.Errorf("%w: checksum mismatch", errBadSnapshot)
	}
	failpoint(FailRestoreWritten)
	if err := fh.Sync(); err != nil {
		return err
	}
	return fh.Close()
}
