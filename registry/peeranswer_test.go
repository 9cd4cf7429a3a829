package registry

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rosterhq/roster/fsm"
	"google.golang.org/protobuf/encoding/protowire"
)

// TestForwardedAnswerOverTheFrameLimit: a txn through a follower whose
// answer (the previous values of the keys it overwrites) is larger than
// the forwarding channel's frames fails alone, as of unknown outcome,
// with the leader saying why, and the channel stays usable. The leader
// used to send the frame anyway and the follower dropped the connection,
// failing every request on it with a bare "frame over the limit".
func TestForwardedAnswerOverTheFrameLimit(t *testing.T) {
	const maxValue = 64 << 10 // frames: 4 × 64 KiB + 4 MiB
	tc := startCluster(t, 2, clusterOpts{cfg: func(_ int, c *Config) { c.MaxValue = maxValue }})
	l := tc.leader()
	f := tc.followers(l)[0]
	big := bytes.Repeat([]byte("v"), maxValue)
	const keys = 72 // 4.5 MiB of previous values
	var ops []fsm.Command
	for i := range keys {
		k := fmt.Sprintf("/big/%02d", i)
		if _, err := l.Put(ctxT(t, 20*time.Second), fsm.Put{Key: k, Value: big}); err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
		ops = append(ops, fsm.Put{Key: k, Value: []byte("x")})
	}
	_, err := f.Txn(ctxT(t, 20*time.Second), ops)
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "answer of") {
		t.Fatalf("txn through the follower: %v, want ErrTimeout saying the answer is over the limit", err)
	}
	// It was carried out: every key holds the new value.
	st, err := f.Read(ctxT(t, 20*time.Second), false)
	if err != nil {
		t.Fatal(err)
	}
	for i := range keys {
		k := fmt.Sprintf("/big/%02d", i)
		if kv, ok := st.Get(k); !ok || string(kv.Value) != "x" {
			t.Fatalf("%s after the txn: %v %v", k, kv, ok)
		}
	}
	// A smaller answer through the same follower is fine.
	res, err := f.Txn(ctxT(t, 20*time.Second), ops[:2])
	if err != nil || len(res.Ops) != 2 {
		t.Fatalf("small txn through the follower: %+v %v", res, err)
	}
}

// TestForwardedUndecodableRefusedClearly is what a follower of this
// version meets when it forwards a Txn holding an fsm.Check to a leader
// too old to know the operation: the leader cannot decode the command
// and refuses it having proposed nothing. Here the leader is of this
// version and the Txn holds an operation it does not know (field 16, as
// a Check's 15 is to an older leader): alone and in a batch, the
// follower gets an invalid-argument error saying the leader runs an
// older version and nothing was written, and the state is unchanged.
func TestForwardedUndecodableRefusedClearly(t *testing.T) {
	tc := startCluster(t, 2, clusterOpts{})
	l := tc.leader()
	f := tc.followers(l)[0]
	ctx := ctxT(t, 20*time.Second)
	if _, err := l.Put(ctx, fsm.Put{Key: "/k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	before := l.fsm.State().Revision()
	put := fsm.Encode(fsm.Put{Key: "/w", Value: []byte("w")})[2:]
	unknownOp := protowire.AppendBytes(protowire.AppendTag(nil, 16, protowire.BytesType), []byte("\x0a\x02/k"))
	txn := append([]byte{1, 10}, unknownOp...)
	txn = protowire.AppendBytes(protowire.AppendTag(txn, 4, protowire.BytesType), put)
	if _, err := fsm.Decode(txn); !errors.Is(err, fsm.ErrDecode) {
		t.Fatalf("the test's txn decodes: %v", err)
	}
	for _, req := range []struct {
		kind    byte
		payload []byte
	}{{kindPropose, txn}, {kindBatch, encodeBatch([][]byte{txn})}} {
		_, self, err := f.onLeader(ctx, req.kind, req.payload)
		if self {
			t.Fatal("the follower leads")
		}
		if !errors.Is(err, fsm.ErrInvalidArgument) || !errors.Is(err, ErrLeaderTooOld) || !strings.Contains(err.Error(), "older version") ||
			!strings.Contains(err.Error(), "nothing was written") {
			t.Fatalf("kind %d: %v, want an invalid argument naming an older leader", req.kind, err)
		}
	}
	if st := l.fsm.State(); st.Revision() != before {
		t.Fatalf("the refused txn changed the state: revision %d, was %d", st.Revision(), before)
	}
	// Any other invalid argument is answered as it was.
	if _, err := f.Txn(ctx, []fsm.Command{fsm.Put{Key: "/a"}, fsm.Put{Key: "/a"}}); err == nil || strings.Contains(err.Error(), "older version") || errors.Is(err, ErrLeaderTooOld) {
		t.Fatalf("a txn naming a key twice: %v", err)
	}
}
