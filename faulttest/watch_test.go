package faulttest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
	"github.com/rosterhq/roster/internal/testutil"
)

// watchWorkload checks watch safety: writers put and delete keys under
// /watch/ at random members while watchers follow the prefix over SSE,
// resuming at another member with rev = the last id they saw whenever a
// stream breaks. At the end every watcher must have seen exactly the
// committed changes, compared with each other, with the writers'
// acknowledged operations and with a final linearizable listing.
type watchWorkload struct {
	c      *cluster.Cluster
	prefix string
	keys   []string

	mu        sync.Mutex
	acked     map[int64]watchEvent       // revision → the acknowledged change
	attempted map[string]map[string]bool // key → values put ("" marks a delete)
	segments  []*segment
	resumes   int
	resyncs   int
	fence     atomic.Int64   // revision of the final put; watchers stop after it
	state     map[int]string // watcher → what it last did, for a failure report
	stats     struct{ puts, deletes int }
}

type watchEvent struct {
	Rev   int64
	Type  string // put | delete
	Key   string
	Value string
}

// segment is what one watcher saw without a break in continuity: from
// Start (exclusive), every change of the prefix, across any number of
// resumes. Only a 410 compacted from every member starts a new segment.
type segment struct {
	Watcher int
	Start   int64
	Events  []watchEvent
}

func (s *segment) end() int64 {
	if len(s.Events) == 0 {
		return s.Start
	}
	return s.Events[len(s.Events)-1].Rev
}

func newWatchWorkload(c *cluster.Cluster) *watchWorkload {
	w := &watchWorkload{c: c, prefix: "/watch/", acked: map[int64]watchEvent{}, attempted: map[string]map[string]bool{}, state: map[int]string{}}
	for i := range 6 {
		w.keys = append(w.keys, fmt.Sprintf("/watch/k%d", i))
	}
	return w
}

// run starts the writers (until ctx ends) and the watchers (until they
// have seen the fence that finish writes, or stop ends).
func (w *watchWorkload) run(ctx context.Context, stop <-chan struct{}, wg *sync.WaitGroup, seed uint64, watchers int) {
	for i := range watchers {
		wg.Add(1)
		go func() { defer wg.Done(); w.watcher(stop, newRand(seed, 500+i), i) }()
	}
	for i := range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); w.writer(ctx, newRand(seed, 600+i), i) }()
	}
}

func (w *watchWorkload) writer(ctx context.Context, rng *rand.Rand, id int) {
	for seq := 0; ctx.Err() == nil; seq++ {
		key := w.keys[rng.IntN(len(w.keys))]
		m := randomMember(rng, w.c)
		if rng.IntN(5) == 0 {
			w.note(key, "")
			r := send("DELETE", m.URL("/v1/kv"+key), nil)
			var d struct {
				Revision int64 `json:"revision"`
				Deleted  int64 `json:"deleted"`
			}
			if r.fate == answered && r.status == 200 && r.decode(&d) == nil {
				w.mu.Lock()
				w.stats.deletes++
				if d.Deleted == 1 {
					w.acked[d.Revision] = watchEvent{Rev: d.Revision, Type: "delete", Key: key}
				}
				w.mu.Unlock()
			}
		} else {
			val := fmt.Sprintf("w%d-%d", id, seq)
			if rng.IntN(10) == 0 {
				// Values of several pages: freed and partly reused page
				// runs in every member's state file, which snapshots
				// (taken every 1,024 entries here) then carry.
				val += strings.Repeat("x", 2048+rng.IntN(6<<10))
			}
			w.note(key, val)
			if rev, ok := w.put(m, key, val); ok {
				w.mu.Lock()
				w.stats.puts++
				w.acked[rev] = watchEvent{Rev: rev, Type: "put", Key: key, Value: val}
				w.mu.Unlock()
			}
		}
		pause(ctx, 30*time.Millisecond)
	}
}

func (w *watchWorkload) note(key, val string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.attempted[key] == nil {
		w.attempted[key] = map[string]bool{}
	}
	w.attempted[key][val] = true
}

func (w *watchWorkload) put(m *cluster.Member, key, val string) (int64, bool) {
	r := send("PUT", m.URL("/v1/kv"+key), []byte(val))
	var p struct {
		Revision int64 `json:"revision"`
	}
	if r.fate != answered || r.status != 200 || r.decode(&p) != nil {
		return 0, false
	}
	return p.Revision, true
}

// finish writes the fence (through any member, until acknowledged): every
// watcher stops once it has seen it.
func (w *watchWorkload) finish(t interface{ Fatalf(string, ...any) }) {
	key := w.prefix + "fence"
	w.note(key, "fence")
	i := 0
	acked := testutil.Poll(60*time.Second, func() bool {
		m := w.c.Members[i%len(w.c.Members)]
		i++
		rev, ok := w.put(m, key, "fence")
		if ok {
			w.mu.Lock()
			w.acked[rev] = watchEvent{Rev: rev, Type: "put", Key: key, Value: "fence"}
			w.mu.Unlock()
			w.fence.Store(rev)
		}
		return ok
	})
	if !acked {
		t.Fatalf("watch: the fence write was not acknowledged within 60 s")
	}
}

// streamClient has no overall timeout (streams are long); watchIdle cuts
// a stream that sends nothing, not even the 5 s heartbeat.
var streamClient = &http.Client{Transport: &http.Transport{}}

const watchIdle = 7 * time.Second

func (w *watchWorkload) watcher(stop <-chan struct{}, rng *rand.Rand, id int) {
	seg := &segment{Watcher: id}
	w.mu.Lock()
	w.segments = append(w.segments, seg)
	w.mu.Unlock()
	cur := int64(0)
	compacted := 0
	for {
		if f := w.fence.Load(); f > 0 && cur >= f {
			return
		}
		select {
		case <-stop:
			return
		default:
		}
		m := randomMember(rng, w.c)
		rev0 := cur
		w.mu.Lock()
		w.state[id] = fmt.Sprintf("%s: streaming from %s at rev %d", time.Now().Format("15:04:05.000"), m.ID, cur)
		w.mu.Unlock()
		status, err := w.stream(stop, m, cur, func(ev watchEvent) {
			w.mu.Lock()
			seg.Events = append(seg.Events, ev)
			w.mu.Unlock()
			if ev.Rev > cur {
				cur = ev.Rev
			}
		}, func(resume int64) { cur = resume })
		w.mu.Lock()
		w.state[id] = fmt.Sprintf("%s: last stream to %s at rev %d ended with status %d, error %v; now at %d",
			time.Now().Format("15:04:05.000"), m.ID, rev0, status, err, cur)
		w.mu.Unlock()
		switch {
		case status == http.StatusGone:
			compacted++
			if compacted < 3*len(w.c.Members) {
				continue
			}
			// No member keeps the history any more (all were restarted):
			// continuity is lost, as the contract allows. Start over from
			// a linearizable listing's revision.
			r := send("GET", randomMember(rng, w.c).URL("/v1/kv"+w.prefix+"?prefix=true&count_only=true"), nil)
			if r.status != 200 || r.rev == 0 {
				if !testutil.Pace(stop, 100*time.Millisecond) { // no member answered: back off
					return
				}
				continue
			}
			compacted = 0
			cur = r.rev
			seg = &segment{Watcher: id, Start: cur}
			w.mu.Lock()
			w.segments = append(w.segments, seg)
			w.resyncs++
			w.mu.Unlock()
		case status == http.StatusOK:
			compacted = 0
			w.mu.Lock()
			w.resumes++
			w.mu.Unlock()
		default:
			if !testutil.Pace(stop, 50*time.Millisecond) { // the member is down: back off
				return
			}
		}
	}
}

// stream follows one watch stream from rev until it breaks, stop closes or
// the fence has been seen; it returns the HTTP status (0: no answer).
func (w *watchWorkload) stream(stop <-chan struct{}, m *cluster.Member, rev int64, onEvent func(watchEvent), onCutoff func(int64)) (int, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", m.URL("/v1/watch"+w.prefix+"?prefix=true&rev="+strconv.FormatInt(rev, 10)), nil)
	activity := make(chan struct{}, 1)
	var seen atomic.Int64 // the last id received
	seen.Store(rev)
	go func() {
		t := time.NewTimer(watchIdle)
		defer t.Stop()
		// The fence may be recorded only after its event arrived: check
		// again now and then, or a healthy idle stream would never end.
		fence := time.NewTicker(100 * time.Millisecond)
		defer fence.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-stop:
				cancel()
				return
			case <-fence.C:
				if f := w.fence.Load(); f > 0 && seen.Load() >= f {
					cancel()
					return
				}
			case <-activity:
				t.Reset(watchIdle)
			case <-t.C:
				cancel() // idle: the member is paused or cut off
				return
			}
		}
	}()
	resp, err := streamClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	br := bufio.NewReader(resp.Body)
	var id int64
	var cutoff bool
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return resp.StatusCode, err
		}
		select {
		case activity <- struct{}{}:
		default:
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "event: cutoff":
			cutoff = true
		case strings.HasPrefix(line, "id: "):
			id, _ = strconv.ParseInt(line[4:], 10, 64)
		case strings.HasPrefix(line, "data: "):
			var d struct {
				Type      string `json:"type"`
				ResumeRev int64  `json:"resume_rev"`
				KV        struct {
					Key         string `json:"key"`
					Value       string `json:"value"`
					ModRevision int64  `json:"mod_revision"`
				} `json:"kv"`
			}
			if json.Unmarshal([]byte(line[6:]), &d) != nil {
				continue
			}
			if cutoff {
				onCutoff(d.ResumeRev)
				return resp.StatusCode, nil
			}
			onEvent(watchEvent{Rev: id, Type: d.Type, Key: d.KV.Key, Value: d.KV.Value})
			seen.Store(id)
			if f := w.fence.Load(); f > 0 && id >= f {
				return resp.StatusCode, nil
			}
		}
	}
}

// check compares what the watchers saw with each other, with the
// acknowledged writes and with the final listing; it returns the
// violations and a summary.
func (w *watchWorkload) check() ([]string, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var v []string
	bad := func(format string, args ...any) {
		if len(v) < 50 {
			v = append(v, fmt.Sprintf(format, args...))
		}
	}
	union := map[int64]watchEvent{}
	events := 0
	for _, s := range w.segments {
		prev := s.Start
		for _, ev := range s.Events {
			events++
			if ev.Rev <= prev {
				bad("watcher %d: event %d after %d (duplicate or out of order): %+v", s.Watcher, ev.Rev, prev, ev)
			}
			prev = max(prev, ev.Rev)
			if !strings.HasPrefix(ev.Key, w.prefix) {
				bad("watcher %d: event for %q outside the prefix %s", s.Watcher, ev.Key, w.prefix)
			}
			if u, ok := union[ev.Rev]; ok && u != ev {
				bad("revision %d seen as %+v by one watcher and %+v by watcher %d", ev.Rev, u, ev, s.Watcher)
			}
			union[ev.Rev] = ev
			want := ev.Value
			if ev.Type == "delete" {
				want = ""
			}
			if !w.attempted[ev.Key][want] {
				bad("watcher %d: event %+v matches no write any writer attempted", s.Watcher, ev)
			}
		}
	}
	fence := w.fence.Load()
	for _, s := range w.segments {
		seen := map[int64]bool{}
		for _, ev := range s.Events {
			seen[ev.Rev] = true
		}
		end := s.end()
		for rev, a := range w.acked {
			if rev > s.Start && rev <= end && !seen[rev] {
				bad("watcher %d missed the acknowledged change %+v (its segment covers (%d, %d])", s.Watcher, a, s.Start, end)
			} else if u, ok := union[rev]; ok && u != a {
				bad("the acknowledged change %+v was delivered as %+v", a, u)
			}
		}
		for rev, u := range union {
			if rev > s.Start && rev <= end && !seen[rev] {
				bad("watcher %d missed %+v, which another watcher saw (its segment covers (%d, %d])", s.Watcher, u, s.Start, end)
			}
		}
		if fence > 0 && s == w.lastSegment(s.Watcher) && end < fence {
			bad("watcher %d stopped at revision %d, before the fence %d", s.Watcher, end, fence)
		}
	}
	// The final state: the last change of each key, as watched, is what a
	// linearizable listing shows.
	lastOf := map[string]watchEvent{}
	revs := make([]int64, 0, len(union))
	for rev := range union {
		revs = append(revs, rev)
	}
	sort.Slice(revs, func(i, j int) bool { return revs[i] < revs[j] })
	for _, rev := range revs {
		lastOf[union[rev].Key] = union[rev]
	}
	list, err := w.listing()
	if err != nil {
		bad("final listing: %v", err)
	}
	minStart := int64(1 << 62)
	for _, s := range w.segments {
		minStart = min(minStart, s.Start)
	}
	for key, ev := range lastOf {
		kv, ok := list[key]
		switch {
		case ev.Type == "put" && (!ok || kv.Value != ev.Value || kv.ModRevision != ev.Rev):
			bad("key %s: last watched change %+v, but the listing has %+v (present %v)", key, ev, kv, ok)
		case ev.Type == "delete" && ok:
			bad("key %s: last watched change is its delete at %d, but the listing has %+v", key, ev.Rev, kv)
		}
	}
	for key, kv := range list {
		if _, ok := union[kv.ModRevision]; !ok && kv.ModRevision > minStart {
			bad("key %s changed at revision %d, which no watcher saw", key, kv.ModRevision)
		}
	}
	return v, fmt.Sprintf("watch: %d watchers, %d segments (%d resyncs after a history lost everywhere), %d resumes, %d events checked, %d distinct; writers: %d puts and %d deletes acknowledged",
		w.watchers(), len(w.segments), w.resyncs, w.resumes, events, len(union), w.stats.puts, w.stats.deletes)
}

// probe describes, for a failure report, what each member holds: its
// own revision (a stale read) and how many events a 2 s watch from rev
// delivers there.
func (w *watchWorkload) probe(rev int64) []string {
	var out []string
	for _, m := range w.c.Members {
		r := send("GET", m.URL("/v1/kv"+w.prefix+"?prefix=true&count_only=true&stale=true"), nil)
		stop := make(chan struct{})
		time.AfterFunc(2*time.Second, func() { close(stop) })
		n := 0
		var last int64
		status, err := w.stream(stop, m, rev, func(ev watchEvent) { n++; last = ev.Rev }, func(int64) {})
		out = append(out, fmt.Sprintf("member %s: revision %d (status %d); a watch from %d: status %d, %v, %d events up to %d",
			m.ID, r.rev, r.status, rev, status, err, n, last))
	}
	return out
}

// states describes what each watcher last did.
func (w *watchWorkload) states() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for id, s := range w.state {
		out = append(out, fmt.Sprintf("watcher %d: %s", id, s))
	}
	sort.Strings(out)
	return out
}

func (w *watchWorkload) lastSegment(watcher int) *segment {
	var last *segment
	for _, s := range w.segments {
		if s.Watcher == watcher {
			last = s
		}
	}
	return last
}

func (w *watchWorkload) watchers() int {
	ids := map[int]bool{}
	for _, s := range w.segments {
		ids[s.Watcher] = true
	}
	return len(ids)
}

type listedKV struct {
	Key         string `json:"key"`
	Value       string `json:"value"`
	ModRevision int64  `json:"mod_revision"`
}

// listing reads the prefix linearizably from any member that answers.
func (w *watchWorkload) listing() (map[string]listedKV, error) {
	var (
		last reply
		out  map[string]listedKV
		i    int
	)
	if testutil.Poll(10*time.Second, func() bool {
		last = send("GET", w.c.Members[i%len(w.c.Members)].URL("/v1/kv"+w.prefix+"?prefix=true"), nil)
		i++
		var l struct {
			KVs []listedKV `json:"kvs"`
		}
		if last.status != 200 || last.decode(&l) != nil {
			return false
		}
		out = map[string]listedKV{}
		for _, kv := range l.KVs {
			out[kv.Key] = kv
		}
		return true
	}) {
		return out, nil
	}
	return nil, fmt.Errorf("no member answered the listing within 10 s: %d %s %v", last.status, last.body, last.err)
}

// lowest is the smallest revision a watcher has reached in its current
// segment.
func (w *watchWorkload) lowest() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	low := int64(-1)
	for id := range w.state {
		var s *segment
		for _, seg := range w.segments {
			if seg.Watcher == id {
				s = seg
			}
		}
		if s != nil && (low < 0 || s.end() < low) {
			low = s.end()
		}
	}
	return low
}
