package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rosterhq/roster/api"
)

// TestRosterdJoiningAnotherClusterExits: a member of cluster X restarted
// on its data directory with -join pointed at cluster Y exits with a
// non-zero status and a message naming both clusters: at its recorded raft
// address it finds Y's cluster ID is another; on a new raft address (so it
// asks to join) Y refuses it with 409 cluster_mismatch. Y is unchanged.
func TestRosterdJoiningAnotherClusterExits(t *testing.T) {
	dirX := t.TempDir()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	raftX := free.Addr().String()
	free.Close()
	x := start(t, append(fastArgs(dirX), "-raft", raftX)...)
	x.ready()
	if code, body := x.do("PUT", "/v1/kv/x", "1"); code != http.StatusOK {
		t.Fatalf("put on X = %d %s", code, body)
	}
	xInfo := clusterOf(t, x)
	if code := x.stop(); code != exitOK {
		t.Fatalf("X exit status %d:\n%s", code, x.stderr)
	}
	y := start(t, append(fastArgs(t.TempDir()), "-id", "y1")...)
	y.ready()
	yInfo := clusterOf(t, y)
	if xInfo.ClusterID == "" || yInfo.ClusterID == "" || xInfo.ClusterID == yInfo.ClusterID {
		t.Fatalf("cluster ids X %q, Y %q: want two different ones", xInfo.ClusterID, yInfo.ClusterID)
	}

	// At its recorded raft address it is a member already and sends no
	// join request, but it asks Y for its cluster ID; at a new address it
	// asks Y to add it, and Y refuses.
	for _, tc := range []struct{ name, raft, says string }{
		{"same raft address", raftX, "-join names"},
		{"new raft address", "127.0.0.1:0", "join via"},
	} {
		var stderr syncBuffer
		env := environment{getenv: func(string) string { return "" }, hostname: os.Hostname}
		exit := make(chan int, 1)
		go func() {
			exit <- rosterd(context.Background(), append(fastArgs(dirX), "-raft", tc.raft, "-join", y.addr), env, &stderr, nil)
		}()
		select {
		case code := <-exit:
			out := stderr.String()
			if code != exitError || !strings.Contains(out, "cluster mismatch") || !strings.Contains(out, tc.says) ||
				!strings.Contains(out, xInfo.ClusterID) || !strings.Contains(out, yInfo.ClusterID) {
				t.Fatalf("%s: exit %d, want %d with a message naming both cluster ids:\n%s", tc.name, code, exitError, out)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: X's member kept running with -join to Y:\n%s", tc.name, stderr.String())
		}
	}
	after := clusterOf(t, y)
	if len(after.Members) != 1 || after.Members[0].ID != "y1" || after.ClusterID != yInfo.ClusterID {
		t.Fatalf("Y changed: %+v", after)
	}
}

func clusterOf(t *testing.T, s *server) api.ClusterResponse {
	t.Helper()
	code, body := s.do("GET", "/v1/cluster", "")
	var cr api.ClusterResponse
	if code != http.StatusOK || json.Unmarshal([]byte(body), &cr) != nil {
		t.Fatalf("GET /v1/cluster = %d %s", code, body)
	}
	return cr
}
