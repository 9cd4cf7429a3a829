package fsm_test

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"os"
	"reflect"
	"testing"

	"github.com/rosterhq/roster/fsm"
)

// FuzzDecode checks Decode never panics, fails only with ErrDecode, and
// that what it accepts survives an Encode/Decode round trip unchanged.
//
//	go test -run '^$' -fuzz=FuzzDecode ./fsm/
func FuzzDecode(f *testing.F) {
	for _, tc := range codecCases {
		f.Add(fsm.Encode(tc.cmd))
	}
	for _, b := range [][]byte{
		nil,
		{1},
		{1, 0},
		{2, 4},
		{1, 4, 0x80},
		{1, 4, 0x0a, 0x05, '/'},
		{1, 5, 0x10, 0x02},
		{1, 7, 0x09, 0, 0, 0, 0, 0, 0, 0, 0},
		{1, 3, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		[]byte("\x01\x04garbage garbage"),
	} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := fsm.Decode(b)
		if err != nil {
			if !errors.Is(err, fsm.ErrDecode) {
				t.Fatalf("Decode(%x): error %v is not ErrDecode", b, err)
			}
			if c != nil {
				t.Fatalf("Decode(%x): command %#v returned with error", b, c)
			}
			return
		}
		if c == nil {
			t.Fatalf("Decode(%x): nil command without error", b)
		}
		enc := fsm.Encode(c)
		c2, err := fsm.Decode(enc)
		if err != nil {
			t.Fatalf("Decode(Encode(%#v)) = %v (bytes %x)", c, err, enc)
		}
		if !reflect.DeepEqual(normalize(c), normalize(c2)) {
			t.Fatalf("round trip changed the command:\n first  %#v\n second %#v", c, c2)
		}
		// Encoding is canonical from then on.
		if enc2 := fsm.Encode(c2); string(enc2) != string(enc) {
			t.Fatalf("encoding not stable: %x then %x", enc, enc2)
		}
	})
}

// FuzzRestore hands Restore corrupt and truncated snapshots. Each is
// either refused with an error, leaving the previous state intact, on disk
// and still served (a write after it applies), or restored whole. With
// cut > 0 the stream is well framed (right length, right checksum) around
// a state file cut after cut bytes, and with torn its pages from the one
// holding that byte on zeroed instead: a snapshot taken from a torn state
// file. (Garbage inside a state file's pages is beyond what any check
// before opening it can catch: bbolt trusts its pages, and the frame's
// checksum is what keeps a corrupted stream from reaching it.)
//
//	go test -run '^$' -fuzz=FuzzRestore ./fsm/
func FuzzRestore(f *testing.F) {
	live := newHarness(f)
	live.must(fsm.Grant{ID: 7, TTL: 60, Name: "/svc/a"})
	live.must(fsm.Put{Key: "/svc/a/1", Value: []byte("addr"), Lease: 7})
	live.must(fsm.Put{Key: "/cfg", Value: []byte{0xff, 0}})
	live.must(fsm.SetMember{Member: fsm.Member{ID: "m1", RaftAddr: "127.0.0.1:1", HTTPAddr: "127.0.0.1:2"}})
	baseline := snapshotBytes(f, live.f)
	want := dump(live.state())

	other := newHarness(f)
	other.must(fsm.Put{Key: "/other", Value: []byte("x")})
	valid := snapshotBytes(f, other.f)
	otherDump := dump(other.state())
	body := valid[snapFrameHead : len(valid)-snapFrameSum]
	for _, s := range snapshotSeeds(valid) {
		f.Add(s, uint16(0), false)
	}
	const page = 4096 // bbolt's page size here
	for _, cut := range []int{1, page, 2 * page, 2*page + 100, len(body) / 2, len(body) - 1, len(body)} {
		f.Add([]byte(nil), uint16(cut), false)
		f.Add([]byte(nil), uint16(cut), true)
	}

	f.Cleanup(func() { live.f.Close() }) // the FSM last reopened
	f.Fuzz(func(t *testing.T, data []byte, cut uint16, torn bool) {
		live.tb = t
		if cut > 0 {
			state := append([]byte(nil), body[:min(int(cut), len(body))]...)
			if torn { // whole pages never written: zeroes from a page boundary on
				state = append(state[:len(state)/page*page], make([]byte, len(body)-len(state)/page*page)...)
			}
			data = frameSnapshot(state)
		}
		before := dump(live.state())
		err := live.f.Restore(readCloser(data))
		if _, serr := os.Stat(live.path + ".restore"); !errors.Is(serr, os.ErrNotExist) {
			t.Fatalf("a temporary restore file is left behind: %v", serr)
		}
		if err != nil {
			if errors.Is(err, fsm.ErrFailed) || live.f.Err() != nil {
				t.Fatalf("a refused snapshot stopped the state machine: %v / %v", err, live.f.Err())
			}
			sameDump(t, "after a refused snapshot", before, dump(live.state()))
		} else {
			// Only the one valid snapshot can be restored: anything else
			// accepted would be a corrupt state taken for a good one.
			got := dump(live.state())
			if got != otherDump {
				t.Fatalf("restored a state that is not the snapshot's:\n%s", diffLines(otherDump, got))
			}
		}
		// Served: a write applies, and reads back.
		live.must(fsm.Put{Key: "/fuzz/probe", Value: []byte("p")})
		if kv, ok := live.state().Get("/fuzz/probe"); !ok || string(kv.Value) != "p" {
			t.Fatalf("the probe write is not readable: %v %v", kv, ok)
		}
		live.must(fsm.Delete{Key: "/fuzz/probe"})
		if err == nil {
			// Back to the baseline for the next input, on disk too.
			if err := live.f.Restore(readCloser(baseline)); err != nil {
				t.Fatalf("restoring the baseline: %v", err)
			}
			if err := live.f.Close(); err != nil {
				t.Fatal(err)
			}
			live.f = openFSM(t, live.path)
			sameDump(t, "baseline after reopen", want, dump(live.state()))
		}
		live.idx = live.state().AppliedIndex()
	})
}

// Layout of a snapshot stream: magic, version, length; the bbolt bytes;
// their SHA-256.
const (
	snapFrameHead = 8 + 4 + 8
	snapFrameSum  = sha256.Size
)

// frameSnapshot frames body as Persist does.
func frameSnapshot(body []byte) []byte {
	out := append([]byte("RSTRSNAP"), 0, 0, 0, 1)
	out = binary.BigEndian.AppendUint64(out, uint64(len(body)))
	out = append(out, body...)
	sum := sha256.Sum256(body)
	return append(out, sum[:]...)
}

// snapshotSeeds are a valid snapshot and ways of breaking it.
func snapshotSeeds(valid []byte) [][]byte {
	n := len(valid)
	seeds := [][]byte{
		valid,
		nil,
		valid[:4],
		valid[:snapFrameHead],
		valid[:snapFrameHead+100],
		valid[:n/2],
		valid[:n-snapFrameSum],
		valid[:n-1],
		append(append([]byte(nil), valid...), 'x'),
		flip(valid, 0),             // magic
		flip(valid, 11),            // version
		flip(valid, 19),            // length
		flip(valid, snapFrameHead), // first bbolt byte
		flip(valid, n/2),           // a page
		flip(valid, n-1),           // checksum
		[]byte("RSTRSNAP garbage"),
	}
	// A length far beyond the stream.
	huge := append([]byte(nil), valid...)
	binary.BigEndian.PutUint64(huge[12:], 1<<62)
	return append(seeds, huge)
}

// flip returns a copy of b with the byte at i inverted.
func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 0xff
	return c
}
