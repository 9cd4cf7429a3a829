package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rosterhq/roster/api"
)

// TestRosterdJoiningAnotherClusterExits: a member of cluster X restarted
// on its data directory with -join pointed at cluster Y (on a new raft
// address, so it asks to join) is refused by Y with 409 cluster_mismatch
// and exits with a non-zero status and a message naming both clusters; Y
// is unchanged.
func TestRosterdJoiningAnotherClusterExits(t *testing.T) {
	dirX := t.TempDir()
	x := start(t, fastArgs(dirX)...)
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

	var stderr syncBuffer
	env := environment{getenv: func(string) string { return "" }, hostname: os.Hostname}
	exit := make(chan int, 1)
	go func() {
		exit <- rosterd(context.Background(), append(fastArgs(dirX), "-join", y.addr), env, &stderr, nil)
	}()
	select {
	case code := <-exit:
		out := stderr.String()
		if code != exitError || !strings.Contains(out, "cluster mismatch") ||
			!strings.Contains(out, xInfo.ClusterID) || !strings.Contains(out, yInfo.ClusterID) {
			t.Fatalf("exit %d, want %d with a message naming both cluster ids:\n%s", code, exitError, out)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("X's member kept running with -join to Y:\n%s", stderr.String())
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
