package client

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// TestMemberRemoveDropsIdleConnections: the member that answered a
// removal may be the one removed, and close the connection the client
// holds idle to it as its rosterd exits. Here the fake member cuts any
// later request on the connection that carried the removal: a write sent
// on it would have an unknown outcome. The client starts afresh after a
// removal (no idle connection, no leader hint), so the write goes on a
// new connection.
func TestMemberRemoveDropsIdleConnections(t *testing.T) {
	ctx := ctxT(t, 30*time.Second)
	var removedOn atomic.Value
	m := newFakeMember(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodDelete:
			removedOn.Store(r.RemoteAddr)
			w.Header().Set(headerLeader, r.Host)
			w.Write([]byte(`{"removed":"n1"}`))
		case removedOn.Load() == r.RemoteAddr:
			cutConnection(w)
		default:
			w.Write([]byte(`{"revision":7}`))
		}
	})
	c, err := New(Config{Endpoints: []string{m.URL}, RequestTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.MemberRemove(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, "/after", []byte("v")); err != nil {
		t.Fatalf("a write after the removal: %v", err)
	}
}
