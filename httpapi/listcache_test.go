package httpapi

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rosterhq/roster/api"
	"github.com/rosterhq/roster/fsm"
)

// wantListing is the listing GET /v1/kv/{prefix}?prefix=true&{query} must
// answer at state, encoded from the state itself.
func wantListing(t *testing.T, state *fsm.State, prefix, query string) []byte {
	t.Helper()
	q, err := url.ParseQuery(query)
	if err != nil {
		t.Fatal(err)
	}
	limit, _ := strconv.ParseInt(q.Get("limit"), 10, 64)
	keysOnly := q.Get("keys_only") == "true"
	want := api.RangeResponse{Revision: state.Revision(), KVs: []api.KV{}}
	state.Range(prefix, q.Get("after"), func(kv *fsm.KV) bool {
		if limit > 0 && int64(len(want.KVs)) == limit {
			want.More = true
			return false
		}
		want.KVs = append(want.KVs, kvOf(kv, keysOnly))
		return true
	})
	return encodeLikeWriteJSON(t, want)
}

// TestCachedListingsFollowEveryChange: after every kind of change (put,
// overwrite, delete, prefix delete, a lease's keys going with its revoke),
// each listing, asked twice so that the second answer comes from the
// cache, is exactly the listing of the state at that moment; queries that
// differ only in limit, after or keys_only never share an answer.
func TestCachedListingsFollowEveryChange(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	leaseStr := e.grant(3600, "/svc")
	lease, _ := strconv.ParseInt(leaseStr, 10, 64)
	steps := []struct {
		name string
		ops  []fsm.Command
	}{
		{"empty", nil},
		{"puts", []fsm.Command{
			fsm.Put{Key: "/svc/a/1", Value: []byte(`{"addr":"10.0.0.1"}`)},
			fsm.Put{Key: "/svc/a/2", Value: []byte("two"), Lease: lease},
			fsm.Put{Key: "/svc/b/1", Value: []byte("\xff binary")},
		}},
		{"overwrite", []fsm.Command{fsm.Put{Key: "/svc/a/1", Value: []byte(`{"addr":"10.0.0.9"}`)}}},
		{"delete", []fsm.Command{fsm.Delete{Key: "/svc/b/1"}}},
		{"more", []fsm.Command{
			fsm.Put{Key: "/svc/a/3", Value: []byte("three"), Lease: lease},
			fsm.Put{Key: "/svc/c/1", Value: []byte("c")},
		}},
		{"revoke", nil},
		{"prefix delete", nil},
	}
	queries := []string{"", "keys_only=true", "limit=1", "limit=2", "after=/svc/a/1", "after=/svc/a/1&limit=1", "limit=1&keys_only=true"}
	for _, st := range steps {
		if st.name == "revoke" {
			e.doStr("DELETE", "/v1/leases/"+leaseStr, "").ok(t, 200, nil)
		}
		if st.name == "prefix delete" {
			e.doStr("DELETE", "/v1/kv/svc/c/?prefix=true", "").ok(t, 200, nil)
		}
		if len(st.ops) > 0 {
			res, err := e.node.Txn(ctx, st.ops)
			if err != nil || res.Err != nil {
				t.Fatalf("%s: %v %v", st.name, err, res.Err)
			}
		}
		state, err := e.node.Read(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		for _, prefix := range []string{"/svc/", "/svc/a/", "/nothing/"} {
			for _, q := range queries {
				want := wantListing(t, state, prefix, q)
				path := "/v1/kv" + prefix + "?prefix=true&" + q
				for try := 0; try < 2; try++ {
					r := e.doStr("GET", path, "").ok(t, 200, nil)
					if !bytes.Equal(r.body, want) {
						t.Fatalf("%s: GET %s (try %d):\n got %s\nwant %s", st.name, path, try, r.body, want)
					}
				}
				p, _ := url.ParseQuery(q)
				limit, _ := strconv.ParseInt(p.Get("limit"), 10, 64)
				k := listKey{prefix: prefix, after: p.Get("after"), limit: limit, keysOnly: p.Get("keys_only") == "true"}
				if _, ok := e.srv.lists.get(state.Revision(), k); !ok {
					t.Fatalf("%s: GET %s was not kept for revision %d", st.name, path, state.Revision())
				}
			}
		}
	}
}

// TestListCacheKeepsOnlyTheNewestRevision: an answer encoded at an older
// revision than the cache's (a read that lagged) is neither kept nor
// served, a newer revision replaces every entry, oversized answers are
// not kept, and the byte budget holds.
func TestListCacheKeepsOnlyTheNewestRevision(t *testing.T) {
	t.Parallel()
	var lc listCache
	k := listKey{prefix: "/a/"}
	if _, ok := lc.get(0, k); ok {
		t.Fatal("empty cache answered")
	}
	lc.put(0, k, []byte("rev0")) // an empty store is at revision 0
	if b, ok := lc.get(0, k); !ok || string(b) != "rev0" {
		t.Fatalf("revision 0: %q %v", b, ok)
	}
	lc.put(5, k, []byte("rev5"))
	if _, ok := lc.get(0, k); ok {
		t.Fatal("revision 0 still served after revision 5 came")
	}
	lc.put(4, listKey{prefix: "/b/"}, []byte("rev4"))
	if _, ok := lc.get(4, listKey{prefix: "/b/"}); ok {
		t.Fatal("an older revision's answer was kept")
	}
	if b, ok := lc.get(5, k); !ok || string(b) != "rev5" {
		t.Fatalf("revision 5 lost to an older put: %q %v", b, ok)
	}
	lc.put(5, listKey{prefix: "/big/"}, make([]byte, streamChunk+1))
	if _, ok := lc.get(5, listKey{prefix: "/big/"}); ok {
		t.Fatal("an answer over one chunk was kept")
	}
	body := make([]byte, streamChunk)
	for i := 0; i < 2*listCacheBytes/streamChunk; i++ {
		lc.put(6, listKey{prefix: fmt.Sprintf("/p%d/", i)}, body)
		if lc.bytes > listCacheBytes {
			t.Fatalf("after %d answers the cache holds %d bytes, over %d", i+1, lc.bytes, listCacheBytes)
		}
	}
}

// TestListingsUnderConcurrentWrites: listings read while writers change
// the prefix are each some state's exact listing: the revision in the
// answer names a state whose keys the answer holds, and no answer shows a
// key written after its revision (run with -race for the cache's locking).
func TestListingsUnderConcurrentWrites(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	const writes = 200
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < writes; i++ {
			if _, err := e.node.Put(ctx, fsm.Put{Key: fmt.Sprintf("/w/%04d", i), Value: []byte(strconv.Itoa(i))}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				resp := e.doStr("GET", "/v1/kv/w/?prefix=true&keys_only=true", "")
				if resp.code != 200 {
					t.Errorf("listing: %d %s", resp.code, resp.body)
					return
				}
				// Revision n is the state after the n-th write: keys 0..n-1.
				rev, err := strconv.ParseInt(resp.hdr.Get("X-Roster-Revision"), 10, 64)
				if err != nil {
					t.Errorf("revision header: %v", err)
					return
				}
				if n := int64(strings.Count(string(resp.body), `"key"`)); n != rev {
					t.Errorf("revision %d answered with %d keys: %s", rev, n, resp.body)
					return
				}
			}
		}()
	}
	wg.Wait()
}
