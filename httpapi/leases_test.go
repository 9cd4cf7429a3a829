package httpapi

import (
	"cmp"
	"encoding/json"
	"fmt"
	"github.com/rosterhq/roster/internal/testutil"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

type leaseBody struct {
	ID        string    `json:"id"`
	TTL       int64     `json:"ttl"`
	Remaining int64     `json:"remaining"`
	Name      string    `json:"name"`
	Keys      *[]string `json:"keys"`
}

func TestGrantGetKeepAlive(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var g leaseBody
	r := e.doStr("POST", "/v1/leases", `{"ttl": 10, "name": "/esq/node-1"}`).ok(t, 201, &g)
	if g.TTL != 10 || g.Name != "/esq/node-1" || !strings.Contains(string(r.body), `"id":"`+g.ID+`"`) {
		t.Fatalf("grant answer %s", r.body)
	}
	id := g.ID

	var l leaseBody
	r = e.doStr("GET", "/v1/leases/"+id, "").ok(t, 200, &l)
	if l.ID != id || l.TTL != 10 || l.Remaining < 9 || l.Remaining > 10 || l.Name != "/esq/node-1" || l.Keys != nil {
		t.Fatalf("lease %s", r.body)
	}
	// keys=true lists the attached keys, [] when there are none.
	r = e.doStr("GET", "/v1/leases/"+id+"?keys=true", "").ok(t, 200, &l)
	if l.Keys == nil || len(*l.Keys) != 0 || !strings.Contains(string(r.body), `"keys":[]`) {
		t.Fatalf("lease with keys %s", r.body)
	}
	e.doStr("PUT", "/v1/kv/esq/node-1/b?lease="+id, "x").ok(t, 200, nil)
	e.doStr("PUT", "/v1/kv/esq/node-1/a?lease="+id, "x").ok(t, 200, nil)
	e.doStr("GET", "/v1/leases/"+id+"?keys=true&stale=true", "").ok(t, 200, &l)
	if l.Keys == nil || strings.Join(*l.Keys, ",") != "/esq/node-1/a,/esq/node-1/b" {
		t.Fatalf("keys %v", l.Keys)
	}

	var k leaseBody
	r = e.doStr("POST", "/v1/leases/"+id+"/keepalive", "").ok(t, 200, &k)
	if k.ID != id || k.TTL != 10 || k.Remaining != 10 || strings.Contains(string(r.body), "name") {
		t.Fatalf("keepalive %s", r.body)
	}
	e.doStr("POST", "/v1/leases/12345/keepalive", "").fails(t, 404, "lease_not_found")
	e.doStr("GET", "/v1/leases/12345", "").fails(t, 404, "lease_not_found")
	for _, bad := range []string{"abc", "0", "-5", "+5", "007", "1.5", "99999999999999999999"} {
		e.doStr("POST", "/v1/leases/"+bad+"/keepalive", "").fails(t, 400, "invalid_argument")
		e.doStr("GET", "/v1/leases/"+bad, "").fails(t, 400, "invalid_argument")
		e.doStr("DELETE", "/v1/leases/"+bad, "").fails(t, 400, "invalid_argument")
	}
	e.doStr("GET", "/v1/leases/"+id+"?keys=maybe", "").fails(t, 400, "invalid_argument")
}

func TestGrantExplicitID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var g leaseBody
	e.doStr("POST", "/v1/leases", `{"ttl":5,"id":"1728394857362391040"}`).ok(t, 201, &g)
	if g.ID != "1728394857362391040" || g.Name != "" {
		t.Fatalf("grant %+v", g)
	}
	// A JSON number is accepted too; "0" lets the server pick.
	e.doStr("POST", "/v1/leases", `{"ttl":5,"id":42}`).ok(t, 201, &g)
	if g.ID != "42" {
		t.Fatalf("grant %+v", g)
	}
	e.doStr("POST", "/v1/leases", `{"ttl":5,"id":"0"}`).ok(t, 201, &g)
	if g.ID == "0" || g.ID == "42" {
		t.Fatalf("grant %+v", g)
	}
	rev := e.storeRevision()
	e.doStr("POST", "/v1/leases", `{"ttl":9,"id":"42"}`).fails(t, 409, "already_exists")
	var l leaseBody
	e.doStr("GET", "/v1/leases/42", "").ok(t, 200, &l)
	if l.TTL != 5 || e.storeRevision() != rev {
		t.Fatalf("a refused grant changed the lease: %+v", l)
	}
}

func TestGrantBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rev := e.storeRevision()
	for _, body := range []string{
		``, `   `, `null`, `[]`, `{`, `{"ttl":10} x`, `{"ttl":10}{"ttl":10}`,
		`{"ttl":1}`, `{"ttl":2592001}`, `{"ttl":-10}`, `{}`,
		`{"ttl":"10"}`, `{"ttl":10.5}`, `{"ttl":1e1}`,
		`{"ttl":10,"name":"a\u0000b"}`, `{"ttl":10,"name":"` + strings.Repeat("n", 1025) + `"}`, `{"ttl":10,"name":5}`,
		`{"ttl":10,"id":"-1"}`, `{"ttl":10,"id":-1}`, `{"ttl":10,"id":"abc"}`, `{"ttl":10,"id":"01"}`,
		`{"ttl":10,"id":1.5}`, `{"ttl":10,"id":"99999999999999999999"}`, `{"ttl":10,"id":true}`,
	} {
		r := e.doStr("POST", "/v1/leases", body, "Content-Type", "application/json")
		if r.code != 400 {
			t.Errorf("grant %q: %d %s", body, r.code, r.body)
			continue
		}
		r.fails(t, 400, "invalid_argument")
	}
	if n := e.leaseCount(); n != 0 || e.storeRevision() != rev {
		t.Fatalf("bad grants left %d leases", n)
	}
	// Bounds are inclusive; unknown fields are ignored.
	e.doStr("POST", "/v1/leases", `{"ttl":2,"extra":[1,2]}`).ok(t, 201, nil)
	e.doStr("POST", "/v1/leases", `{"ttl":2592000}`).ok(t, 201, nil)
}

func TestKeepAliveBatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := e.grant(10, "/a"), e.grant(20, "/b")
	bn, _ := strconv.ParseInt(b, 10, 64)
	body := fmt.Sprintf(`{"ids":[%q, %d, "999", %q, "999"]}`, a, bn, a)
	var resp struct {
		Leases   []leaseBody `json:"leases"`
		NotFound []string    `json:"not_found"`
	}
	r := e.doStr("POST", "/v1/leases/keepalive", body).ok(t, 200, &resp)
	if len(resp.Leases) != 2 || resp.Leases[0].ID != a || resp.Leases[1].ID != b ||
		resp.Leases[0].TTL != 10 || resp.Leases[1].Remaining != 20 ||
		len(resp.NotFound) != 1 || resp.NotFound[0] != "999" {
		t.Fatalf("batch keepalive %s", r.body)
	}
	r = e.doStr("POST", "/v1/leases/keepalive", `{"ids":[]}`).ok(t, 200, nil)
	if string(r.body) != `{"leases":[],"not_found":[]}` {
		t.Fatalf("empty batch %s", r.body)
	}
	e.doStr("POST", "/v1/leases/keepalive", `{}`).ok(t, 200, nil)

	for _, bad := range []string{`{"ids":["1","x"]}`, `{"ids":["0"]}`, `{"ids":[-1]}`, `{"ids":"1"}`, `{"ids":[1]}]`, ``} {
		e.doStr("POST", "/v1/leases/keepalive", bad).fails(t, 400, "invalid_argument")
	}

	ids := make([]string, 0, 10_001)
	for i := 1; i <= 10_000; i++ {
		ids = append(ids, strconv.Itoa(i))
	}
	many := func() string { j, _ := json.Marshal(map[string]any{"ids": ids}); return string(j) }
	e.doStr("POST", "/v1/leases/keepalive", many()).ok(t, 200, &resp)
	if len(resp.NotFound) != 10_000 {
		t.Fatalf("10000 ids: %d not found", len(resp.NotFound))
	}
	ids = append(ids, "10001")
	e.doStr("POST", "/v1/leases/keepalive", many()).fails(t, 400, "invalid_argument")
	ids = append(ids[:10_000], "1") // a duplicate counts once
	e.doStr("POST", "/v1/leases/keepalive", many()).ok(t, 200, nil)

	huge := `{"ids":["1"` + strings.Repeat(`,"1"`, 1<<20) + `]}`
	e.doStr("POST", "/v1/leases/keepalive", huge).fails(t, 413, "too_large")
}

func TestListLeases(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var want []string
	for i := 0; i < 3; i++ {
		want = append(want, e.grant(10, fmt.Sprintf("/l%d", i)))
	}
	// IDs are ascending numerically; compare as numbers.
	num := func(s string) int64 { n, _ := strconv.ParseInt(s, 10, 64); return n }
	type list struct {
		Leases []leaseBody `json:"leases"`
		More   bool        `json:"more"`
	}
	var all list
	e.doStr("GET", "/v1/leases?stale=true", "").ok(t, 200, &all)
	if len(all.Leases) != 3 || all.More {
		t.Fatalf("list %+v", all)
	}
	slices.SortFunc(want, func(a, b string) int { return cmp.Compare(num(a), num(b)) })
	for i, l := range all.Leases {
		if l.ID != want[i] {
			t.Fatalf("lease %d listed as %s, want %s (granted: %v)", i, l.ID, want[i], want)
		}
	}
	for i := 1; i < 3; i++ {
		if num(all.Leases[i-1].ID) >= num(all.Leases[i].ID) {
			t.Fatalf("not ascending: %+v", all.Leases)
		}
	}
	if all.Leases[0].TTL != 10 || all.Leases[0].Remaining == 0 || all.Leases[0].Name == "" {
		t.Fatalf("list entry %+v", all.Leases[0])
	}
	var page list
	e.doStr("GET", "/v1/leases?limit=2", "").ok(t, 200, &page)
	if len(page.Leases) != 2 || !page.More || page.Leases[1].ID != all.Leases[1].ID {
		t.Fatalf("page 1 %+v", page)
	}
	e.doStr("GET", "/v1/leases?limit=2&after="+page.Leases[1].ID, "").ok(t, 200, &page)
	if len(page.Leases) != 1 || page.More || page.Leases[0].ID != all.Leases[2].ID {
		t.Fatalf("page 2 %+v", page)
	}
	r := e.doStr("GET", "/v1/leases?after="+all.Leases[2].ID, "").ok(t, 200, &page)
	if !strings.Contains(string(r.body), `"leases":[]`) {
		t.Fatalf("past the end %s", r.body)
	}
	e.doStr("GET", "/v1/leases?after=0&limit=0", "").ok(t, 200, &page)
	if len(page.Leases) != 3 {
		t.Fatalf("after=0 %+v", page)
	}
	for _, q := range []string{"limit=-1", "limit=x", "after=x", "after=-1", "stale=2"} {
		e.doStr("GET", "/v1/leases?"+q, "").fails(t, 400, "invalid_argument")
	}
}

func TestRevoke(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.grant(10, "/svc")
	e.doStr("PUT", "/v1/kv/svc/a?lease="+id, "1").ok(t, 200, nil)
	e.doStr("PUT", "/v1/kv/svc/b?lease="+id, "2").ok(t, 200, nil)
	e.doStr("PUT", "/v1/kv/svc/c", "3").ok(t, 200, nil)
	before := e.storeRevision()
	var rv struct {
		Revision int64 `json:"revision"`
	}
	e.doStr("DELETE", "/v1/leases/"+id, "").ok(t, 200, &rv)
	if rv.Revision != before+2 {
		t.Fatalf("revoke revision %d, want %d", rv.Revision, before+2)
	}
	e.doStr("GET", "/v1/kv/svc/a", "").fails(t, 404, "not_found")
	e.doStr("GET", "/v1/kv/svc/b", "").fails(t, 404, "not_found")
	e.doStr("GET", "/v1/kv/svc/c", "").ok(t, 200, nil)
	e.doStr("DELETE", "/v1/leases/"+id, "").fails(t, 404, "lease_not_found")
	e.doStr("GET", "/v1/leases/"+id, "").fails(t, 404, "lease_not_found")
}

// TestLeaseExpiry checks the contract's bounds: a key attached to a lease
// of ttl T is still there shortly before T and gone by T + 2 ticks + one
// commit (plus slack for a loaded test machine).
func TestLeaseExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const ttl = 2 * time.Second
	start := time.Now() // before the grant commits: the lease cannot end before start+ttl
	id := e.grant(2, "/exp")
	e.doStr("PUT", "/v1/kv/exp/k?lease="+id, "v").ok(t, 200, nil)
	acked := time.Now() // after the grant committed: the lease must end by acked+ttl+2 ticks+commit
	var lastSeen, goneAt time.Time
	testutil.Eventually(t, ttl+2*testTick+time.Second, "the key to expire", func() bool {
		now := time.Now()
		r := e.doStr("GET", "/v1/kv/exp/k", "")
		switch r.code {
		case 200:
			lastSeen = now
			return false
		case 404:
			goneAt = time.Now()
			return true
		}
		t.Fatalf("GET during expiry: %d %s", r.code, r.body)
		return false
	})
	if goneAt.Before(start.Add(ttl)) {
		t.Fatalf("key gone %v after the grant, before its ttl", goneAt.Sub(start))
	}
	// When it was last seen says how densely this poll ran, not what the
	// lease did: a loaded machine stalls the poll for a second. The
	// guarantee is the check above: no answer before the TTL said gone.
	t.Logf("key last seen %v and gone %v after the grant", lastSeen.Sub(start), goneAt.Sub(start))
	if late := goneAt.Sub(acked); late > ttl+2*testTick+500*time.Millisecond {
		t.Fatalf("key gone %v after the grant was acknowledged", late)
	}
	e.doStr("GET", "/v1/leases/"+id, "").fails(t, 404, "lease_not_found")
	e.doStr("PUT", "/v1/kv/exp/k2?lease="+id, "v").fails(t, 404, "lease_not_found")
}

func TestLeaseBodiesAreStrict(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.do(http.MethodPost, "/v1/leases", strings.NewReader(`{"ttl":10,"name":"`+strings.Repeat("x", 3<<20)+`"}`))
	r.fails(t, 413, "too_large")
	// Not UTF-8: encoding/json would grant a lease named "\ufffd".
	e.doStr(http.MethodPost, "/v1/leases", "{\"ttl\":10,\"name\":\"/n\xff\"}").fails(t, 400, "invalid_argument")
	if e.leaseCount() != 0 {
		t.Fatal("a refused grant created a lease")
	}
}
