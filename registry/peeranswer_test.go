package registry

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rosterhq/roster/fsm"
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
