package client

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
	"github.com/rosterhq/roster/internal/testutil"
)

// TestSingleMember runs the round trips of every call against one real
// member: correct types in, correct types and typed errors out.
func TestSingleMember(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a rosterd process")
	}
	cl := cluster.Start(t, 1, "-tick", "100ms", "-watch-history", "40")
	c, tt := newTestClient(t, cl.Endpoints())

	t.Run("KV", func(t *testing.T) { testKV(t, c) })
	t.Run("Prefix", func(t *testing.T) { testPrefix(t, c) })
	t.Run("CAS", func(t *testing.T) { testCAS(t, c) })
	t.Run("Incr", func(t *testing.T) { testIncr(t, c) })
	t.Run("Leases", func(t *testing.T) { testLeases(t, c) })
	t.Run("Cluster", func(t *testing.T) { testClusterCalls(t, c, cl) })
	t.Run("KeepAliveRevoked", func(t *testing.T) { testKeepAliveRevoked(t, c) })
	t.Run("KeepAliveEnds", func(t *testing.T) { testKeepAliveEnds(t, cl) })
	t.Run("KeepAliveBatched", func(t *testing.T) { testKeepAliveBatched(t, cl) })
	t.Run("Watch", func(t *testing.T) { testWatch(t, c) })
	t.Run("WatchCompacted", func(t *testing.T) { testWatchCompacted(t, c) })
	t.Run("WatchLargeValues", func(t *testing.T) { testWatchLargeValues(t, c) })
	t.Run("RegistrarReregisters", func(t *testing.T) { testRegistrarReregisters(t, cl) })
	t.Run("RegistrationCloseFromHandler", func(t *testing.T) { testRegistrationCloseFromHandler(t, cl) })
	t.Run("RegistrationCloseRacesTheHandler", func(t *testing.T) { testRegistrationCloseRacesTheHandler(t, cl) })
	t.Run("Membership", func(t *testing.T) { testMembership(t, c, cl) })
	_ = tt
}

func testKV(t *testing.T, c *Client) {
	ctx := ctxT(t, 30*time.Second)
	p1, err := c.Put(ctx, "/kv/a", []byte("hello"))
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if p1.Revision <= 0 || p1.PrevKV != nil {
		t.Fatalf("Put = %+v, want a revision and no prev", p1)
	}
	p2, err := c.Put(ctx, "/kv/a", []byte("world"), WithPrevKV())
	if err != nil {
		t.Fatalf("Put WithPrevKV: %v", err)
	}
	if p2.Revision != p1.Revision+1 || p2.PrevKV == nil || string(p2.PrevKV.Value) != "hello" || p2.PrevKV.ModRevision != p1.Revision {
		t.Fatalf("Put WithPrevKV = %+v (prev %+v), want revision %d and prev hello@%d", p2, p2.PrevKV, p1.Revision+1, p1.Revision)
	}
	g, err := c.Get(ctx, "/kv/a")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	kv := g.KVs[0]
	if len(g.KVs) != 1 || kv.Key != "/kv/a" || string(kv.Value) != "world" || kv.CreateRevision != p1.Revision ||
		kv.ModRevision != p2.Revision || kv.Version != 2 || kv.Lease != NoLease || g.Revision < p2.Revision {
		t.Fatalf("Get = %+v %+v", g, kv)
	}

	// Binary values travel as value_base64 and come back byte for byte;
	// keys with characters that need escaping in a URL survive.
	bin := []byte{0xff, 0x00, 0xfe, 'x', 0x80}
	odd := "/kv/sp ace?q=1#frag%41/ü"
	if _, err := c.Put(ctx, odd, bin); err != nil {
		t.Fatalf("Put binary: %v", err)
	}
	g, err = c.Get(ctx, odd)
	if err != nil || !bytes.Equal(g.KVs[0].Value, bin) || g.KVs[0].Key != odd {
		t.Fatalf("Get binary = %+v, %v; want %q = %x", g, err, odd, bin)
	}
	// An empty value is a value.
	if _, err := c.Put(ctx, "/kv/empty", nil); err != nil {
		t.Fatalf("Put empty: %v", err)
	}
	if g, err := c.Get(ctx, "/kv/empty"); err != nil || len(g.KVs[0].Value) != 0 {
		t.Fatalf("Get empty = %+v, %v", g, err)
	}

	// Errors are typed.
	if _, err := c.Get(ctx, "/kv/absent"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("Get absent: %v, want ErrKeyNotFound", err)
	}
	var se *StatusError
	if _, err := c.Get(ctx, "/kv/absent"); !errors.As(err, &se) || se.Status != 404 || se.Code != "not_found" {
		t.Fatalf("Get absent: %v, want a *StatusError 404 not_found", err)
	}
	if g, err := c.Get(ctx, "/kv/absent", WithCountOnly()); err != nil || g.Count != 0 {
		t.Fatalf("Get absent WithCountOnly = %+v, %v; want count 0", g, err)
	}
	if _, err := c.Put(ctx, "no-slash", nil); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("Put bad key: %v, want ErrInvalidArgument", err)
	}
	if _, err := c.Put(ctx, "/kv/x\x00y", nil); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("Put key with NUL: %v, want ErrInvalidArgument (from the server)", err)
	}
	if _, err := c.Put(ctx, "/kv/big", make([]byte, 1<<20+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Put 1 MiB + 1: %v, want ErrTooLarge", err)
	}
	if _, err := c.Put(ctx, "/kv/l", nil, WithLease(12345)); !errors.Is(err, ErrLeaseNotFound) {
		t.Fatalf("Put WithLease(unknown): %v, want ErrLeaseNotFound", err)
	}

	d, err := c.Delete(ctx, "/kv/a")
	if err != nil || d.Deleted != 1 || d.Revision <= p2.Revision {
		t.Fatalf("Delete = %+v, %v", d, err)
	}
	d, err = c.Delete(ctx, "/kv/a")
	if err != nil || d.Deleted != 0 {
		t.Fatalf("Delete absent = %+v, %v; want deleted 0", d, err)
	}
	if _, err := c.Get(ctx, "/kv/a"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}
}

func testPrefix(t *testing.T, c *Client) {
	ctx := ctxT(t, 30*time.Second)
	var want []string
	for i := range 5 {
		k := fmt.Sprintf("/pfx/k%d", i)
		want = append(want, k)
		if _, err := c.Put(ctx, k, []byte{byte('a' + i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Put(ctx, "/pfxq", []byte("plain byte prefix")); err != nil {
		t.Fatal(err)
	}
	g, err := c.Get(ctx, "/pfx/", WithPrefix())
	if err != nil || !slices.Equal(keysOf(g.KVs), want) || g.More || g.Count != 5 || string(g.KVs[2].Value) != "c" {
		t.Fatalf("Get prefix = %+v, %v", g, err)
	}
	g, err = c.Get(ctx, "/pfx", WithPrefix(), WithCountOnly())
	if err != nil || g.Count != 6 || len(g.KVs) != 0 {
		t.Fatalf("Get /pfx count = %+v, %v; want 6 (a plain byte prefix)", g, err)
	}
	// Pages.
	var got []string
	after := ""
	for range 10 {
		page, err := c.Get(ctx, "/pfx/", WithPrefix(), WithLimit(2), WithAfter(after))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, keysOf(page.KVs)...)
		if !page.More {
			break
		}
		after = page.KVs[len(page.KVs)-1].Key
	}
	if !slices.Equal(got, want) {
		t.Fatalf("paged keys = %v, want %v", got, want)
	}
	g, err = c.Get(ctx, "/pfx/", WithPrefix(), WithKeysOnly())
	if err != nil || len(g.KVs) != 5 || g.KVs[0].Value != nil {
		t.Fatalf("Get WithKeysOnly = %+v, %v", g, err)
	}
	g, err = c.Get(ctx, "/pfx/", WithPrefix(), WithStale())
	if err != nil || len(g.KVs) != 5 {
		t.Fatalf("Get WithStale = %+v, %v", g, err)
	}
	g, err = c.Get(ctx, "/nothing/", WithPrefix())
	if err != nil || g.KVs == nil || len(g.KVs) != 0 {
		t.Fatalf("Get empty prefix = %+v, %v; want an empty list", g, err)
	}
	d, err := c.Delete(ctx, "/pfx/", WithPrefix())
	if err != nil || d.Deleted != 5 {
		t.Fatalf("Delete prefix = %+v, %v", d, err)
	}
	if g, _ := c.Get(ctx, "/pfx", WithPrefix(), WithCountOnly()); g.Count != 1 {
		t.Fatalf("after prefix delete, count = %d, want 1", g.Count)
	}
}

func testCAS(t *testing.T, c *Client) {
	ctx := ctxT(t, 30*time.Second)
	p, err := c.Create(ctx, "/cas/k", []byte("v1"))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	_, err = c.Create(ctx, "/cas/k", []byte("again"))
	var ce *CASError
	if !errors.Is(err, ErrAlreadyExists) || !errors.Is(err, ErrCASFailed) || !errors.As(err, &ce) || ce.CurrentModRevision != p.Revision {
		t.Fatalf("Create existing: %v, want ErrAlreadyExists as *CASError{%d}", err, p.Revision)
	}
	if _, err := c.Put(ctx, "/cas/k", []byte("x"), WithCreateOnly()); !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("Put WithCreateOnly existing: %v", err)
	}
	_, err = c.CompareAndSwap(ctx, "/cas/k", []byte("v2"), p.Revision-1)
	if !errors.As(err, &ce) || ce.CurrentModRevision != p.Revision || errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("CAS with a stale revision: %v, want *CASError{%d}", err, p.Revision)
	}
	var se *StatusError
	if !errors.As(err, &se) || se.Status != 409 || se.Code != "cas_failed" {
		t.Fatalf("CASError does not unwrap to the 409 StatusError: %v", err)
	}
	p2, err := c.CompareAndSwap(ctx, "/cas/k", []byte("v2"), p.Revision)
	if err != nil || p2.Revision <= p.Revision {
		t.Fatalf("CAS with the current revision: %+v, %v", p2, err)
	}
	_, err = c.CompareAndSwap(ctx, "/cas/absent", []byte("v"), 7)
	if !errors.As(err, &ce) || ce.CurrentModRevision != 0 {
		t.Fatalf("CAS on an absent key: %v, want *CASError{0}", err)
	}
	if _, err := c.Delete(ctx, "/cas/k", WithCAS(p.Revision)); !errors.Is(err, ErrCASFailed) {
		t.Fatalf("Delete WithCAS stale: %v", err)
	}
	if d, err := c.Delete(ctx, "/cas/k", WithCAS(p2.Revision)); err != nil || d.Deleted != 1 {
		t.Fatalf("Delete WithCAS current: %+v, %v", d, err)
	}
}

func testIncr(t *testing.T, c *Client) {
	ctx := ctxT(t, 30*time.Second)
	r, err := c.Incr(ctx, "/ctr", 5)
	if err != nil || r.Value != 5 || r.Revision <= 0 {
		t.Fatalf("Incr absent by 5 = %+v, %v", r, err)
	}
	r, err = c.Incr(ctx, "/ctr", -7)
	if err != nil || r.Value != -2 {
		t.Fatalf("Incr by -7 = %+v, %v", r, err)
	}
	g, err := c.Get(ctx, "/ctr")
	if err != nil || string(g.KVs[0].Value) != "-2" {
		t.Fatalf("Get counter = %+v, %v", g, err)
	}
	c.Put(ctx, "/notnum", []byte("abc"))
	if _, err := c.Incr(ctx, "/notnum", 1); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("Incr on a non-number: %v, want ErrInvalidArgument", err)
	}
}

func testLeases(t *testing.T, c *Client) {
	ctx := ctxT(t, 30*time.Second)
	g, err := c.Grant(ctx, 30, WithName("/svc/test"))
	if err != nil || g.ID <= 0 || g.TTL != 30 || g.Name != "/svc/test" {
		t.Fatalf("Grant = %+v, %v", g, err)
	}
	if _, err := c.Grant(ctx, 1); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("Grant ttl 1: %v, want ErrInvalidArgument", err)
	}
	if _, err := c.Grant(ctx, 10, WithID(g.ID)); !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("Grant WithID(taken): %v, want ErrAlreadyExists", err)
	}
	mine := g.ID + 1000
	g2, err := c.Grant(ctx, 10, WithID(mine))
	if err != nil || g2.ID != mine {
		t.Fatalf("Grant WithID = %+v, %v", g2, err)
	}
	if _, err := c.Put(ctx, "/lk/a", []byte("1"), WithLease(g.ID)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, "/lk/b", []byte("2"), WithLease(g.ID)); err != nil {
		t.Fatal(err)
	}
	kv, err := c.Get(ctx, "/lk/a")
	if err != nil || kv.KVs[0].Lease != g.ID {
		t.Fatalf("Get leased key = %+v, %v; want lease %v", kv, err, g.ID)
	}
	ttl, err := c.TimeToLive(ctx, g.ID, WithKeys())
	if err != nil || ttl.ID != g.ID || ttl.TTL != 30 || ttl.Remaining <= 0 || ttl.Remaining > 31 ||
		ttl.Name != "/svc/test" || !slices.Equal(ttl.Keys, []string{"/lk/a", "/lk/b"}) {
		t.Fatalf("TimeToLive = %+v, %v", ttl, err)
	}
	if ttl, err := c.TimeToLive(ctx, g.ID); err != nil || ttl.Keys != nil {
		t.Fatalf("TimeToLive without keys = %+v, %v", ttl, err)
	}
	ka, err := c.KeepAliveOnce(ctx, g.ID)
	if err != nil || ka.ID != g.ID || ka.TTL != 30 || ka.Remaining < 30 {
		t.Fatalf("KeepAliveOnce = %+v, %v", ka, err)
	}
	// Leases, whole and paged.
	all, err := c.Leases(ctx)
	if err != nil || len(all.Leases) < 2 || all.More {
		t.Fatalf("Leases = %+v, %v", all, err)
	}
	if !slices.IsSortedFunc(all.Leases, func(a, b LeaseStatus) int { return int(a.ID - b.ID) }) {
		t.Fatalf("Leases not in ID order: %+v", all.Leases)
	}
	var paged []LeaseID
	after := ""
	for range 100 {
		page, err := c.Leases(ctx, WithLimit(1), WithAfter(after))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range page.Leases {
			paged = append(paged, l.ID)
		}
		if !page.More {
			break
		}
		after = page.Leases[len(page.Leases)-1].ID.String()
	}
	if len(paged) != len(all.Leases) {
		t.Fatalf("paged leases %v, want %d", paged, len(all.Leases))
	}

	rv, err := c.Revoke(ctx, g.ID)
	if err != nil || rv.Revision <= 0 {
		t.Fatalf("Revoke = %+v, %v", rv, err)
	}
	if _, err := c.Get(ctx, "/lk/a"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("key of a revoked lease: %v, want ErrKeyNotFound", err)
	}
	if _, err := c.Revoke(ctx, g.ID); !errors.Is(err, ErrLeaseNotFound) {
		t.Fatalf("Revoke again: %v, want ErrLeaseNotFound", err)
	}
	if _, err := c.TimeToLive(ctx, g.ID); !errors.Is(err, ErrLeaseNotFound) {
		t.Fatalf("TimeToLive revoked: %v, want ErrLeaseNotFound", err)
	}
	if _, err := c.KeepAliveOnce(ctx, g.ID); !errors.Is(err, ErrLeaseNotFound) {
		t.Fatalf("KeepAliveOnce revoked: %v, want ErrLeaseNotFound", err)
	}
	c.Revoke(ctx, g2.ID)
}

func testClusterCalls(t *testing.T, c *Client, cl *cluster.Cluster) {
	ctx := ctxT(t, 30*time.Second)
	info, err := c.Cluster(ctx)
	if err != nil || info.Leader == nil || info.Leader.ID != cl.Members[0].ID || len(info.Members) != 1 ||
		!info.Members[0].Voter || info.Members[0].HTTPAddr != cl.Members[0].HTTP || info.Term == 0 {
		t.Fatalf("Cluster = %+v, %v", info, err)
	}
	s, err := c.Snapshot(ctx)
	if err != nil || s.Index == 0 {
		t.Fatalf("Snapshot = %+v, %v", s, err)
	}
}

func testMembership(t *testing.T, c *Client, cl *cluster.Cluster) {
	ctx := ctxT(t, 60*time.Second)
	m := cl.Add()
	m.Start("-bootstrap=false")
	cl.WaitServing(30*time.Second, m)
	added, err := c.MemberAdd(ctx, Member{ID: m.ID, RaftAddr: m.Raft, HTTPAddr: m.HTTP, Voter: true})
	if err != nil || added.ID != m.ID || !added.Voter {
		t.Fatalf("MemberAdd = %+v, %v", added, err)
	}
	cl.WaitVoters(30*time.Second, 2)
	if err := c.MemberRemove(ctx, m.ID); err != nil {
		t.Fatalf("MemberRemove: %v", err)
	}
	testutil.Eventually(t, 30*time.Second, "one member left", func() bool {
		info, err := c.Cluster(ctx)
		return err == nil && len(info.Members) == 1
	})
	m.Kill()
	if err := c.MemberRemove(ctx, "a/b"); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("MemberRemove bad id: %v", err)
	}
}
