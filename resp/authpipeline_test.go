package resp

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/internal/logging/logtest"
)

// TestAuthWritesAfterTokenDeletedMidPipeline: a pipeline's read waits for
// its read index, and the token is resolved again once it has it; when
// the token was deleted meanwhile, the read answers NOAUTH, and so must
// the writes queued after it, batched or checked (SET … XX reads, then
// proposes): before the fix the connection, its token gone, counted as
// one of no access control at the check before proposing (mayPropose),
// and on the leader, which has no one to check a write again, the writes
// of the deleted token were applied.
func TestAuthWritesAfterTokenDeletedMidPipeline(t *testing.T) {
	t.Parallel()
	log := logtest.ForTest(t)
	node := openTestNode(t, log, prometheus.NewRegistry())
	b := &revokingBackend{Node: node}
	srv, err := New(Config{Auth: nodeAuth{node}}, b, log)
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTest(t, srv)
	if err := node.PutRole(ctx(), fsm.Role{Name: "api", Rules: []fsm.Rule{{Prefix: "/services/", Read: true, Write: true}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := node.Put(ctx(), fsm.Put{Key: "/services/a", Value: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		write func(p redis.Pipeliner) redis.Cmder
		key   string // what the write would have written
	}{
		{"batched SET", func(p redis.Pipeliner) redis.Cmder { return p.Set(ctx(), "services/b", "planted", 0) }, "/services/b"},
		{"checked SET XX", func(p redis.Pipeliner) redis.Cmder { return p.SetXX(ctx(), "services/a", "planted", 0) }, "/services/a"},
	} {
		tok, secret, err := node.CreateToken(ctx(), "gone", []string{"api"})
		if err != nil {
			t.Fatal(err)
		}
		conn := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1}).Conn()
		if err := conn.Do(ctx(), "AUTH", secret).Err(); err != nil {
			t.Fatal(err)
		}
		hook := func() {
			if err := node.DeleteToken(ctx(), tok.ID); err != nil {
				t.Error(err)
			}
		}
		b.hook.Store(&hook)
		before := node.FSM().State().Revision()
		var get *redis.StringCmd
		var write redis.Cmder
		_, _ = conn.Pipelined(ctx(), func(p redis.Pipeliner) error {
			get = p.Get(ctx(), "services/a")
			write = tc.write(p)
			return nil
		})
		wantErr(t, get.Err(), "NOAUTH Authentication required.")
		wantErr(t, write.Err(), "NOAUTH Authentication required.")
		st := node.FSM().State()
		if kv, ok := st.Get(tc.key); ok && string(kv.Value) == "planted" {
			t.Errorf("%s: the deleted token's write was applied", tc.name)
		}
		if after := st.Revision(); after != before {
			t.Errorf("%s: the revision moved from %d to %d", tc.name, before, after)
		}
		conn.Close()
	}
}
