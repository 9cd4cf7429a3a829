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
				if _, ok := e.srv.lists.get(e.node.History(), state.Revision(), k); !ok {
					t.Fatalf("%s: GET %s was not kept for revision %d", st.name, path, state.Revision())
				}
			}
		}
	}
}

// TestListingsOutliveWritesElsewhere: a kept listing keeps serving while
// writes land outside its prefix (its revision moves, the same answer
// bytes are reused), and stops at the first write under it; an answer
// further behind than listRevalidate, or asked for at an older revision
// than it holds for, is made again.
func TestListingsOutliveWritesElsewhere(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	put := func(key, value string) {
		t.Helper()
		if _, err := e.node.Put(ctx, fsm.Put{Key: key, Value: []byte(value)}); err != nil {
			t.Fatal(err)
		}
	}
	list := func() []byte {
		t.Helper()
		r := e.doStr("GET", "/v1/kv/a/?prefix=true", "").ok(t, 200, nil)
		state, err := e.node.Read(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		if want := wantListing(t, state, "/a/", ""); !bytes.Equal(r.body, want) {
			t.Fatalf("listing:\n got %s\nwant %s", r.body, want)
		}
		if n := r.hdr.Get("Content-Length"); n != strconv.Itoa(len(r.body)) {
			t.Fatalf("Content-Length %q for %d bytes", n, len(r.body))
		}
		return r.body
	}
	k := listKey{prefix: "/a/"}
	kept := func() *listEntry {
		t.Helper()
		e.srv.lists.mu.Lock()
		defer e.srv.lists.mu.Unlock()
		ent := e.srv.lists.entries[k]
		if ent == nil {
			t.Fatal("no answer kept for /a/")
		}
		return ent
	}
	put("/a/1", "one")
	put("/b/1", "elsewhere")
	list()
	first := kept()
	firstRest := &first.rest[0]
	for i := 0; i < 5; i++ {
		put(fmt.Sprintf("/b/%d", i), "more elsewhere")
	}
	list()
	if ent := kept(); &ent.rest[0] != firstRest || ent.rev != e.storeRevision() {
		t.Fatalf("after writes elsewhere the answer was made again (rev %d, store %d)", ent.rev, e.storeRevision())
	}
	put("/a/2", "two") // under the prefix: the kept answer no longer holds
	if !bytes.Contains(list(), []byte(`"/a/2"`)) {
		t.Fatal("new key missing")
	}
	second := kept()
	if &second.rest[0] == firstRest {
		t.Fatal("the answer from before the write under /a/ was served")
	}
	secondRest := &second.rest[0]
	for i := 0; i < listRevalidate+1; i++ {
		put("/b/x", strconv.Itoa(i))
	}
	list()
	if ent := kept(); &ent.rest[0] == secondRest {
		t.Fatalf("an answer %d revisions behind was checked, not made again", listRevalidate+1)
	}
	if _, ok := e.srv.lists.get(e.node.History(), kept().rev-1, k); ok {
		t.Fatal("an answer was served for a revision older than it holds for")
	}
}

// TestListCacheBounds: oversized answers are not kept, and the byte
// budget holds however many distinct listings are asked for.
func TestListCacheBounds(t *testing.T) {
	t.Parallel()
	var lc listCache
	body := func(rev int64, n int) []byte {
		b := strconv.AppendInt([]byte(revisionHead), rev, 10)
		return append(b, make([]byte, n-len(b))...)
	}
	lc.put(5, listKey{prefix: "/big/"}, body(5, streamChunk+1))
	if len(lc.entries) != 0 {
		t.Fatal("an answer over one chunk was kept")
	}
	lc.put(5, listKey{prefix: "/odd/"}, []byte(`{"revision":4,"kvs":[]}`))
	if len(lc.entries) != 0 {
		t.Fatal("an answer of another revision than said was kept")
	}
	for i := 0; i < 2*listCacheBytes/streamChunk; i++ {
		lc.put(6, listKey{prefix: fmt.Sprintf("/p%d/", i)}, body(6, streamChunk))
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
