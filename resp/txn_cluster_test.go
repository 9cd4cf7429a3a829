package resp

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/rosterhq/roster/internal/logging/logtest"
	"github.com/rosterhq/roster/registry"
)

// serveCluster serves the Redis port in front of every member of a real
// three-member cluster and returns the addresses, the leader's first.
func serveCluster(t *testing.T) ([]*registry.Node, []string) {
	t.Helper()
	log := logtest.ForTest(t)
	nodes := openCluster(t, log, 3)
	addrs := make([]string, len(nodes))
	for i, n := range nodes {
		srv, err := New(Config{}, n, log.With("redis", i+1))
		if err != nil {
			t.Fatal(err)
		}
		addrs[i] = serveTest(t, srv)
	}
	return nodes, addrs
}

func clientOf(t *testing.T, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, PoolSize: 2})
	t.Cleanup(func() { c.Close() })
	return c
}

// TestWatchIncrementsNoLostUpdate: go-redis's optimistic-locking pattern
// (WATCH k; GET k; MULTI; SET k v+1; EXEC, again on TxFailedErr) from
// clients on the leader and on both followers of a three-member cluster
// loses no increment; and so does MULTI; INCR; INCR; EXEC without WATCH,
// whose two keys a concurrent reader always sees equal (a transaction's
// writes are seen all together or not at all).
func TestWatchIncrementsNoLostUpdate(t *testing.T) {
	t.Parallel()
	nodes, addrs := serveCluster(t)
	const clients, each = 6, 12
	var wg sync.WaitGroup
	errs := make(chan error, 2*clients+1)
	stop := make(chan struct{})
	var retries sync.Map
	for i := range clients {
		c := clientOf(t, addrs[i%len(addrs)])
		wg.Add(2)
		go func() { // WATCH + GET + TxPipelined SET
			defer wg.Done()
			for range each {
				for attempt := 0; ; attempt++ {
					err := c.Watch(ctx(), func(tx *redis.Tx) error {
						n, err := tx.Get(ctx(), "counter").Int()
						if err != nil && !errors.Is(err, redis.Nil) {
							return err
						}
						_, err = tx.TxPipelined(ctx(), func(p redis.Pipeliner) error {
							p.Set(ctx(), "counter", strconv.Itoa(n+1), 0)
							return nil
						})
						return err
					}, "counter")
					if errors.Is(err, redis.TxFailedErr) {
						retries.Store(i, attempt+1)
						continue
					}
					if err != nil {
						errs <- fmt.Errorf("client %d: %w", i, err)
						return
					}
					break
				}
			}
		}()
		go func() { // MULTI INCR x INCR y EXEC
			defer wg.Done()
			for range each {
				cmds, err := c.TxPipelined(ctx(), func(p redis.Pipeliner) error {
					p.Incr(ctx(), "x")
					p.Incr(ctx(), "y")
					return nil
				})
				if err != nil {
					errs <- fmt.Errorf("client %d, MULTI INCR: %w", i, err)
					return
				}
				if x, y := cmds[0].(*redis.IntCmd).Val(), cmds[1].(*redis.IntCmd).Val(); x != y {
					errs <- fmt.Errorf("client %d: one transaction answered x=%d y=%d", i, x, y)
					return
				}
			}
		}()
	}
	// A reader on a follower: x and y always equal.
	reader := clientOf(t, addrs[2])
	var reads int
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			v, err := reader.MGet(ctx(), "x", "y").Result()
			if err != nil {
				errs <- err
				return
			}
			if fmt.Sprint(v[0]) != fmt.Sprint(v[1]) {
				errs <- fmt.Errorf("reader saw x=%v y=%v", v[0], v[1])
				return
			}
			reads++
		}
	}()
	wg.Wait()
	close(stop)
	<-readerDone
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	c := clientOf(t, addrs[1])
	for _, k := range []string{"counter", "x", "y"} {
		if n, err := c.Get(ctx(), k).Int(); err != nil || n != clients*each {
			t.Fatalf("%s = %d (%v), want %d: an update was lost", k, n, err, clients*each)
		}
	}
	n := 0
	retries.Range(func(_, _ any) bool { n++; return true })
	t.Logf("%d reads; %d clients retried after a watched key changed", reads, n)
	if kv, ok := nodes[0].FSM().State().Get("/counter"); !ok || string(kv.Value) != strconv.Itoa(clients*each) {
		t.Fatalf("leader's /counter: %+v", kv)
	}
}

// TestExecThroughFollower: a transaction sent to a follower, with a TTL
// and a watched key, applies on the leader as one entry.
func TestExecThroughFollower(t *testing.T) {
	t.Parallel()
	nodes, addrs := serveCluster(t)
	c := clientOf(t, addrs[1])
	conn := c.Conn()
	defer conn.Close()
	for _, args := range [][]any{{"SET", "f", "0"}, {"WATCH", "f"}, {"MULTI"}} {
		if err := conn.Do(ctx(), args...).Err(); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	for _, args := range [][]any{{"SET", "f", "1", "EX", "300"}, {"SET", "g", "2"}, {"TTL", "f"}} {
		if v, err := conn.Do(ctx(), args...).Text(); err != nil || v != "QUEUED" {
			t.Fatalf("%v: %v %v", args, v, err)
		}
	}
	v, err := conn.Do(ctx(), "EXEC").Slice()
	if err != nil || len(v) != 3 || v[0] != "OK" || v[1] != "OK" || v[2] != int64(300) {
		t.Fatalf("EXEC on a follower: %v %v", v, err)
	}
	st := nodes[0].FSM().State()
	kv, ok := st.Get("/f")
	if !ok || string(kv.Value) != "1" {
		t.Fatalf("leader's /f: %+v", kv)
	}
	if l, ok := st.Lease(kv.Lease); !ok || l.TTL != 300 {
		t.Fatalf("/f's lease: %+v", l)
	}
	if g, ok := st.Get("/g"); !ok || g.ModRevision != kv.ModRevision+1 && g.ModRevision != kv.ModRevision-1 {
		t.Fatalf("/g %+v not written in the entry of /f %+v", g, kv)
	}
}
