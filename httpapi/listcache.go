package httpapi

import "sync"

// Discovery is read-mostly: many clients list the same few service
// prefixes, and between two writes every one of those listings is the same
// bytes. A listing is a pure function of the state's revision and the
// query (keys, values, revisions and lease IDs move only with the revision;
// lease countdowns are not part of it, and access is checked on the whole
// prefix before the listing is read, so the caller does not change it).
// listCache keeps the answers encoded at the newest revision a member has
// served, so a repeated listing costs a map lookup instead of a B-tree
// scan and a JSON encoding: under peerbench's lookup workload those were
// 60 % of a follower's CPU.
//
// Only answers that went out in one piece are kept (at most streamChunk
// bytes), within listCacheBytes in all. A newer revision drops everything;
// an answer encoded at an older one (a lagging read) is not kept.
type listCache struct {
	mu      sync.Mutex
	rev     int64
	entries map[listKey][]byte
	bytes   int
}

// listKey is everything besides the revision that shapes a listing.
type listKey struct {
	prefix   string
	after    string
	limit    int64
	keysOnly bool
}

// listCacheBytes bounds the bytes of cached answers a member holds.
const listCacheBytes = 8 << 20

// get returns the answer cached for k at revision rev.
func (lc *listCache) get(rev int64, k listKey) ([]byte, bool) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if rev != lc.rev {
		return nil, false
	}
	body, ok := lc.entries[k]
	return body, ok
}

// put keeps body (which the cache now owns: it is never written again) as
// the answer for k at revision rev.
func (lc *listCache) put(rev int64, k listKey, body []byte) {
	if len(body) > streamChunk {
		return
	}
	size := len(body) + len(k.prefix) + len(k.after)
	lc.mu.Lock()
	defer lc.mu.Unlock()
	switch {
	case rev < lc.rev:
		return
	case rev > lc.rev || lc.entries == nil || lc.bytes+size > listCacheBytes:
		// Past the budget everything goes rather than the oldest: the
		// entries of one revision are all equally likely to be asked for.
		lc.rev, lc.entries, lc.bytes = rev, make(map[listKey][]byte), 0
	}
	if _, ok := lc.entries[k]; !ok {
		lc.entries[k] = body
		lc.bytes += size
	}
}
