package systemtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
	"github.com/rosterhq/roster/internal/testutil"
)

// Helpers shared by the clustering system tests (cluster_*_test.go).

// fastClient bounds each writer request, so a writer stuck on a frozen or
// killed member gives up and moves on instead of holding the test.
var fastClient = &http.Client{Timeout: 5 * time.Second}

// staleKVs lists every key under prefix from m's own replica (stale=true,
// never forwarded): key → value, plus the store revision.
func staleKVs(t testing.TB, m *cluster.Member, prefix string) (map[string]kvJSON, int64) {
	t.Helper()
	out := map[string]kvJSON{}
	after := ""
	var rev int64
	for {
		u := m.URL("/v1/kv"+prefix) + "?prefix=true&stale=true&limit=5000"
		if after != "" {
			u += "&after=" + url.QueryEscape(after)
		}
		var list listJSON
		code, b := do(t, "GET", u, nil)
		mustJSON(t, code, b, &list)
		rev = list.Revision
		for _, kv := range list.KVs {
			out[kv.Key] = kv
			after = kv.Key
		}
		if !list.More || len(list.KVs) == 0 {
			return out, rev
		}
	}
}

// staleLease reads a lease from m's own replica.
func staleLease(t testing.TB, m *cluster.Member, id string) leaseJSON {
	t.Helper()
	var l leaseJSON
	code, b := do(t, "GET", m.URL("/v1/leases/"+id+"?stale=true"), nil)
	mustJSON(t, code, b, &l)
	return l
}

// checkHasAll fails unless every acknowledged key is on m's replica with the
// acknowledged value, and every key m holds under prefix was written by a
// writer (no phantom keys).
func checkHasAll(t testing.TB, m *cluster.Member, prefix string, acked, attempted map[string]string) {
	t.Helper()
	got, _ := staleKVs(t, m, prefix)
	var missing []string
	for k, v := range acked {
		kv, ok := got[k]
		if !ok || kv.Value != v {
			missing = append(missing, k)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("member %s lacks %d of %d acknowledged keys, e.g. %q", m.ID, len(missing), len(acked), missing[:min(5, len(missing))])
	}
	for k, kv := range got {
		if want, ok := attempted[k]; !ok || kv.Value != want {
			t.Fatalf("member %s holds %s=%q, which no writer wrote", m.ID, k, kv.Value)
		}
	}
}

// writeLoad is a bounded set of writers putting unique keys
// (prefix/w<writer>/<seq>) round-robin through the members' HTTP addresses.
// A write counts as acknowledged only on a 200; anything else (refused
// connection, 503, 504, client timeout) is left unknown.
type writeLoad struct {
	t       testing.TB
	prefix  string
	targets func() []string
	stop    chan struct{}
	wg      sync.WaitGroup
	started time.Time

	mu        sync.Mutex
	acked     map[string]string
	attempted map[string]string
	failed    int
	// markNs, if set, is a wall-clock instant (UnixNano); firstAckNs is the
	// end of the first acknowledged write that started after it.
	markNs     atomic.Int64
	firstAckNs atomic.Int64
	ackCount   atomic.Int64
}

// startWriters starts n writers that stop on stopWriters or after maxDur,
// whichever comes first. targets is called before each write.
func startWriters(t testing.TB, n int, prefix string, maxDur time.Duration, targets func() []string) *writeLoad {
	w := &writeLoad{
		t: t, prefix: prefix, targets: targets, stop: make(chan struct{}), started: time.Now(),
		acked: map[string]string{}, attempted: map[string]string{},
	}
	deadline := time.Now().Add(maxDur)
	for i := range n {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			w.run(i, deadline)
		}()
	}
	t.Cleanup(w.stopWriters)
	return w
}

func (w *writeLoad) run(id int, deadline time.Time) {
	for seq := 0; ; seq++ {
		select {
		case <-w.stop:
			return
		default:
		}
		if time.Now().After(deadline) {
			return
		}
		ts := w.targets()
		if len(ts) == 0 {
			if !testutil.Pace(w.stop, 20*time.Millisecond) { // no member to write to
				return
			}
			continue
		}
		base := ts[(id+seq)%len(ts)]
		key := fmt.Sprintf("%s/w%d/%06d", w.prefix, id, seq)
		val := fmt.Sprintf("v-%d-%d", id, seq)
		w.mu.Lock()
		w.attempted[key] = val
		w.mu.Unlock()
		start := time.Now()
		code, _, err := tryWith(fastClient, "PUT", base+"/v1/kv"+key, []byte(val))
		if err == nil && code == 200 {
			end := time.Now()
			w.mu.Lock()
			w.acked[key] = val
			w.mu.Unlock()
			w.ackCount.Add(1)
			if mark := w.markNs.Load(); mark != 0 && start.UnixNano() >= mark {
				w.firstAckNs.CompareAndSwap(0, end.UnixNano())
			}
			continue
		}
		w.mu.Lock()
		w.failed++
		w.mu.Unlock()
		// Back off a little: a member without a leader answers at once,
		// and spinning would starve the election on a small machine.
		if !testutil.Pace(w.stop, 25*time.Millisecond) {
			return
		}
	}
}

// mark records now as the instant from which firstAck measures.
func (w *writeLoad) mark() time.Time {
	now := time.Now()
	w.firstAckNs.Store(0)
	w.markNs.Store(now.UnixNano())
	return now
}

// firstAck is when the first write that started after mark was
// acknowledged (zero time if none yet).
func (w *writeLoad) firstAck() time.Time {
	ns := w.firstAckNs.Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// stopWriters stops the writers and waits for them; idempotent.
func (w *writeLoad) stopWriters() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	w.wg.Wait()
}

// result stops the writers and returns copies of the acknowledged and the
// attempted writes, and the count of failed ones.
func (w *writeLoad) result() (acked, attempted map[string]string, failed int) {
	w.stopWriters()
	w.mu.Lock()
	defer w.mu.Unlock()
	acked = make(map[string]string, len(w.acked))
	for k, v := range w.acked {
		acked[k] = v
	}
	attempted = make(map[string]string, len(w.attempted))
	for k, v := range w.attempted {
		attempted[k] = v
	}
	return acked, attempted, w.failed
}

// waitAcks waits until n more writes than now have been acknowledged.
func (w *writeLoad) waitAcks(c *cluster.Cluster, d time.Duration, n int64) {
	w.t.Helper()
	target := w.ackCount.Load() + n
	c.Eventually(d, fmt.Sprintf("%d acknowledged writes", target), func() bool {
		return w.ackCount.Load() >= target
	})
}

func tryWith(cl *http.Client, method, u string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	resp, err := cl.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// endpointsOf returns a targets function over the members' base URLs
// (running or not: a write to a stopped member fails fast and is retried
// elsewhere by the next iteration).
func endpointsOf(ms ...*cluster.Member) func() []string {
	urls := make([]string, len(ms))
	for i, m := range ms {
		urls[i] = "http://" + m.HTTP
	}
	return func() []string { return urls }
}

// clusterView is GET /v1/cluster from m, failing the test on error.
func clusterView(t testing.TB, c *cluster.Cluster, m *cluster.Member) cluster.Info {
	t.Helper()
	info, err := c.ClusterInfo(m)
	if err != nil {
		t.Fatalf("cluster view of %s: %v", m.ID, err)
	}
	return info
}

// memberIDs lists the IDs in a cluster view, sorted.
func memberIDs(info cluster.Info) []string {
	var ids []string
	for _, m := range info.Members {
		ids = append(ids, m.ID)
	}
	sort.Strings(ids)
	return ids
}

// errorCode extracts error.code from an error body ("" if none).
func errorCode(b []byte) string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(b, &e)
	return e.Error.Code
}
