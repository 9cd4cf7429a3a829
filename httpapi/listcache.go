package httpapi

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/gin-gonic/gin"
	"github.com/rosterhq/roster/fsm"
)

// Discovery is read-mostly: many clients list the same few service
// prefixes, and a listing changes only when a key under its prefix does.
// A listing is a pure function of the keys under the prefix and the query
// (keys, values, revisions and lease IDs; lease countdowns are not part of
// it, and access is checked on the whole prefix before the listing is
// read, so the caller does not change it), plus the store revision in its
// first field. listCache keeps recent answers without that revision: a
// repeated listing costs a map lookup and a look at the events since the
// answer was made, instead of a B-tree scan and a JSON encoding (60 % of a
// follower's CPU under peerbench's lookup workload).
//
// An answer made at revision r serves a read of the state at revision R
// when the event history holds every revision from r+1 to R and none of
// those events touches a key under the prefix. Writes elsewhere in the
// store therefore do not outdate it; its revision moves up as it is
// found still good. Only answers that went out in one piece (at most
// streamChunk bytes) are kept, within listCacheBytes in all.
type listCache struct {
	mu      sync.Mutex
	entries map[listKey]*listEntry
	bytes   int
}

// listKey is everything besides the state that shapes a listing.
type listKey struct {
	prefix   string
	after    string
	limit    int64
	keysOnly bool
}

// listEntry is one kept answer: rest is what follows `{"revision":N` in
// it, and rev the newest revision it is known to hold for.
type listEntry struct {
	rev  int64
	rest []byte
}

const (
	// listCacheBytes bounds the bytes of kept answers a member holds.
	listCacheBytes = 8 << 20
	// listRevalidate is how many revisions an answer may be behind the
	// state read and still be checked against the history; further
	// behind, encoding it again costs about as much.
	listRevalidate = 64
)

// revisionHead is how every listing begins, before its revision.
const revisionHead = `{"revision":`

// get returns what follows the revision in the listing for k at revision
// rev, when a kept answer is known to hold for it, given h, the history
// of the state rev was read from.
func (lc *listCache) get(h *fsm.History, rev int64, k listKey) ([]byte, bool) {
	lc.mu.Lock()
	e := lc.entries[k]
	var made int64
	var rest []byte
	if e != nil {
		made, rest = e.rev, e.rest
	}
	lc.mu.Unlock()
	switch {
	case e == nil || made > rev || rev-made > listRevalidate:
		return nil, false
	case made < rev:
		var buf [listRevalidate]fsm.Event
		// Since returns the events from made+1 on, one per revision, up
		// to the newest the history holds; the state of rev is published
		// before its events are added, so the history may not hold rev yet.
		evs, last, err := h.Since(made, int(rev-made), buf[:0])
		if err != nil || last < rev || int64(len(evs)) < rev-made {
			return nil, false
		}
		for _, ev := range evs {
			if matches(k.prefix, true, ev) {
				return nil, false
			}
		}
		lc.mu.Lock()
		if e.rev < rev {
			e.rev = rev
		}
		lc.mu.Unlock()
	}
	return rest, true
}

// put keeps body, the listing for k at revision rev, which the cache now
// owns (it is never written again).
func (lc *listCache) put(rev int64, k listKey, body []byte) {
	head := strconv.AppendInt([]byte(revisionHead), rev, 10)
	if len(body) > streamChunk || len(body) < len(head) || string(body[:len(head)]) != string(head) {
		return
	}
	rest := body[len(head):]
	size := len(rest) + len(k.prefix) + len(k.after)
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if e, ok := lc.entries[k]; ok {
		if e.rev < rev {
			lc.bytes += len(rest) - len(e.rest)
			e.rev, e.rest = rev, rest
		}
		return
	}
	if lc.entries == nil || lc.bytes+size > listCacheBytes {
		// Past the budget everything goes rather than the oldest: it is
		// rare (a member serving thousands of distinct listings at once)
		// and the next reads of each refill it.
		lc.entries, lc.bytes = make(map[listKey]*listEntry), 0
	}
	lc.entries[k] = &listEntry{rev: rev, rest: rest}
	lc.bytes += size
}

// serveListing answers with a kept listing at revision rev.
func serveListing(c *gin.Context, rev int64, rest []byte) {
	head := append(make([]byte, 0, len(revisionHead)+20), revisionHead...)
	head = strconv.AppendInt(head, rev, 10)
	c.Header("Content-Type", contentJSON)
	c.Header("Content-Length", strconv.Itoa(len(head)+len(rest)))
	c.Status(http.StatusOK)
	// A write error means the client went away; there is no one to tell.
	_, _ = c.Writer.Write(head)
	_, _ = c.Writer.Write(rest)
}
