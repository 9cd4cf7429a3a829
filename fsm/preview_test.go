package fsm_test

import (
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/rosterhq/roster/fsm"
)

// TestPreviewChangesNothing: previewing a Txn (a grant, puts on leases, a
// delete, a check) leaves the live state, its revision, the event
// history, the observer, the checkpoint's change set and the bbolt file
// as they were; a failing preview too. Applying the same Txn then
// returns exactly the preview's result and leaves exactly the preview's
// state.
func TestPreviewChangesNothing(t *testing.T) {
	h := newHarness(t)
	h.must(fsm.Grant{ID: 7, TTL: 30, Name: "/svc/a"})
	h.must(putL("/svc/a", "a1", 7)) // revision 1
	h.must(put("/cfg", "c"))        // 2
	h.must(put("/n", "5"))          // 3
	h.must(fsm.Tick{ElapsedMs: 700})
	h.checkpoint()
	select {
	case <-h.f.CheckpointWanted():
	default:
	}
	h.takeEvents()
	h.mu.Lock()
	calls := h.calls
	h.mu.Unlock()

	st := h.state()
	before := dump(st)
	last, oldest, histBytes := h.f.History().Last(), h.f.History().Oldest(), h.f.History().Bytes()
	ckpts := h.f.Checkpoints()
	txn := fsm.StrictDeadlines(fsm.Txn{Ops: []fsm.Command{
		fsm.Grant{ID: 9, TTL: 5, Name: "/new"},
		fsm.Put{Key: "/new", Value: []byte("n"), Lease: 9, HasCAS: true, DropOldLease: true},
		fsm.Put{Key: "/svc/a", Value: []byte("a2"), Lease: 7, HasCAS: true, CAS: 1},
		fsm.Delete{Key: "/cfg", HasCAS: true, CAS: 2, DropOldLease: true},
		fsm.Check{Key: "/n", ModRevision: 3},
	}})
	r, next := st.Preview(txn)
	if r.Err != nil || len(r.Ops) != 5 || next.Revision() != 6 || next.AppliedIndex() != st.AppliedIndex() {
		t.Fatalf("preview: %s, revision %d, applied %d", fmtResult(r), next.Revision(), next.AppliedIndex())
	}
	failed, same := st.Preview(fsm.Txn{Ops: []fsm.Command{put("/x", "x"), fsm.Check{Key: "/n", ModRevision: 2}}})
	if errClass(failed.Err) != "cas(current=3)" || body(same) != body(st) {
		t.Fatalf("failing preview: %s", fmtResult(failed))
	}

	if h.state() != st || dump(st) != before {
		t.Fatalf("a preview changed the live state:\n%s", diffLines(before, dump(h.state())))
	}
	if h.f.History().Last() != last || h.f.History().Oldest() != oldest || h.f.History().Bytes() != histBytes {
		t.Fatal("a preview reached the event history")
	}
	h.mu.Lock()
	if h.calls != calls || len(h.events) != 0 {
		t.Fatalf("a preview reached the observer: %d calls, %d events", h.calls-calls, len(h.events))
	}
	h.mu.Unlock()
	select {
	case <-h.f.CheckpointWanted():
		t.Fatal("a preview asked for a checkpoint")
	default:
	}
	h.checkpoint()
	if h.f.Checkpoints() != ckpts {
		t.Fatal("a preview left changes for the checkpoint")
	}
	h.reopen()
	sameDump(t, "reopened after previews", before, dump(h.state()))

	got := h.must(txn)
	if fmtResult(got) != fmtResult(r) {
		t.Fatalf("applied and previewed results differ:\n got  %s\n want %s", fmtResult(got), fmtResult(r))
	}
	if a, b := body(next), body(h.state()); a != b {
		t.Fatalf("applied and previewed states differ:\n%s", diffLines(a, b))
	}
}

// TestPreviewMatchesTheModel previews the determinism workload's
// commands one after another, each on the state the one before left,
// from an empty state: every result and every state is the reference
// model's, as ApplyBatch's are (TestDeterminism), though nothing is
// applied.
func TestPreviewMatchesTheModel(t *testing.T) {
	w, _ := cachedWorkload(determinismSeed, determinismEntries)
	h := newHarness(t)
	empty := h.state()
	st := empty
	for i, l := range w.logs {
		if l.Type != raft.LogCommand {
			continue // moves only the applied index
		}
		c, err := fsm.Decode(l.Data)
		if err != nil {
			t.Fatal(err)
		}
		var r fsm.Result
		r, st = st.Preview(c)
		if got := fmtResult(r); got != w.results[i] {
			t.Fatalf("entry %d (%s):\n got  %s\n want %s", i+1, describe(l), got, w.results[i])
		}
		if got, want := body(st), modelBody(w.dumps[i]); got != want {
			t.Fatalf("after entry %d (%s):\n%s", i+1, describe(l), diffLines(want, got))
		}
	}
	if h.state() != empty || empty.Revision() != 0 || empty.KeyCount() != 0 {
		t.Fatal("previews changed the live state")
	}
}

// modelBody is a model dump without its applied index, as body strips it
// from a State's.
func modelBody(d string) string { return d[strings.IndexByte(d, ' ')+1:] }

// TestPreviewConcurrentWithApply: previews of the published state from
// several goroutines while entries apply (each clones the state the
// apply goroutine clones too) race on nothing (run with -race) and each
// sees one whole state.
func TestPreviewConcurrentWithApply(t *testing.T) {
	h := newHarness(t)
	h.must(put("/a", "0"))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				st := h.f.State()
				kv, _ := st.Get("/a")
				r, next := st.Preview(fsm.Incr{Key: "/a", By: 1})
				n, _ := strconv.Atoi(string(kv.Value))
				if after, _ := next.Get("/a"); r.Err != nil || string(after.Value) != strconv.Itoa(n+1) || r.Revision != st.Revision()+1 {
					errs <- fmtResult(r)
					return
				}
			}
		}()
	}
	for range 300 {
		h.must(fsm.Incr{Key: "/a", By: 1})
	}
	close(stop)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatalf("a preview saw a torn state: %s", e)
	}
	if kv := h.get("/a"); string(kv.Value) != "300" {
		t.Fatalf("/a = %q after 300 increments", kv.Value)
	}
}
