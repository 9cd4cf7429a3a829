package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/rosterhq/roster/api"
	"github.com/rosterhq/roster/fsm"
)

// encodeLikeWriteJSON is what writeJSON sends for v.
func encodeLikeWriteJSON(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// Streamed listings are byte for byte what the whole-document encoding
// gave, small (one piece) or large (many chunks), whatever the values.
func TestStreamedListingsKeepTheirBytes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.grant(3600, "/lessee")
	leaseID, _ := strconv.ParseInt(id, 10, 64)
	values := []string{"plain", `<html> & "quotes" \ `, "ünïcødé ✓", "\xff\xfe binary", ""}
	const keys = 700 // ~80 KiB of JSON: several chunks
	var ops []fsm.Command
	for i := 0; i < keys; i++ {
		put := fsm.Put{Key: fmt.Sprintf("/s/%04d", i), Value: []byte(values[i%len(values)] + strings.Repeat("x", i%100))}
		if i%7 == 0 {
			put.Lease = leaseID
		}
		ops = append(ops, put)
	}
	if _, err := e.node.Txn(context.Background(), ops); err != nil {
		t.Fatal(err)
	}
	state, err := e.node.Read(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"", "&keys_only=true", "&limit=3", "&limit=700", "&limit=699", "&after=/s/0100&limit=50", "&after=/s/9"} {
		path := "/v1/kv/s/?prefix=true" + q
		r := e.doStr("GET", path, "").ok(t, 200, nil)
		if ct := r.hdr.Get("Content-Type"); ct != contentJSON {
			t.Errorf("%s: content type %q", path, ct)
		}
		// The listing as it was built before streaming.
		u, _ := http.NewRequest("GET", "http://x"+path, nil)
		limit, _ := strconv.ParseInt(u.URL.Query().Get("limit"), 10, 64)
		keysOnly := u.URL.Query().Get("keys_only") == "true"
		want := api.RangeResponse{Revision: state.Revision(), KVs: []api.KV{}}
		state.Range("/s/", u.URL.Query().Get("after"), func(kv *fsm.KV) bool {
			if limit > 0 && int64(len(want.KVs)) == limit {
				want.More = true
				return false
			}
			want.KVs = append(want.KVs, kvOf(kv, keysOnly))
			return true
		})
		if wb := encodeLikeWriteJSON(t, want); !bytes.Equal(r.body, wb) {
			t.Fatalf("%s: %d bytes differ from the %d expected\n got %.300s\nwant %.300s", path, len(r.body), len(wb), r.body, wb)
		}
	}
	if _, ok := state.Lease(leaseID); !ok {
		t.Fatal("lease gone")
	}

	// Leases: the remaining TTLs move with the lease clock, so the answer
	// is checked against itself re-encoded, and its IDs against the grants.
	ops = ops[:0]
	for i := 0; i < 600; i++ { // ~45 KiB of JSON
		ops = append(ops, fsm.Grant{TTL: 3600, Name: fmt.Sprintf("/l/%d", i)})
	}
	res, err := e.node.Txn(context.Background(), ops)
	if err != nil || res.Err != nil {
		t.Fatal(err, res.Err)
	}
	ids := map[string]bool{id: true}
	for _, r := range res.Ops {
		ids[strconv.FormatInt(r.Lease.ID, 10)] = true
	}
	for _, q := range []string{"", "?limit=1", "?limit=601", "?limit=400", "?after=" + id} {
		r := e.doStr("GET", "/v1/leases"+q, "").ok(t, 200, nil)
		var got api.LeaseList
		if err := json.Unmarshal(r.body, &got); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if wb := encodeLikeWriteJSON(t, got); !bytes.Equal(r.body, wb) {
			t.Fatalf("%s: bytes differ from the document's encoding\n got %.300s\nwant %.300s", q, r.body, wb)
		}
		for _, l := range got.Leases {
			if !ids[strconv.FormatInt(int64(l.ID), 10)] {
				t.Fatalf("%s: unknown lease %d", q, l.ID)
			}
		}
		switch q {
		case "":
			if len(got.Leases) != 601 || got.More {
				t.Fatalf("all leases: %d, more %v", len(got.Leases), got.More)
			}
		case "?limit=400":
			if len(got.Leases) != 400 || !got.More {
				t.Fatalf("limit=400: %d, more %v", len(got.Leases), got.More)
			}
		}
	}
}
