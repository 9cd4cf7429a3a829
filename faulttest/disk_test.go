package faulttest

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
)

// TestFullDisk runs one member of three on a small tmpfs and writes until
// that disk is full. The majority keeps acknowledging writes; the full
// member may stop or fail, but must not corrupt anything: once the disk
// has room again (and the member is restarted if it exited) it catches up
// and holds every acknowledged write, equal to the survivors.
func TestFullDisk(t *testing.T) {
	p := currentProfile(t)
	disk := cluster.SmallDisk(t, 12<<20)
	c := cluster.New(t, "-tick", "100ms")
	ms := []*cluster.Member{c.Add(), c.Add(), c.Add()}
	full := ms[2]
	full.Dir = disk.Dir + "/data"
	c.Boot(ms...)
	leader := c.Leader(30 * time.Second)

	value := bytes.Repeat([]byte("x"), 32<<10)
	acked := map[string]bool{}
	deadline := time.Now().Add(60 * time.Second)
	var free int64
	extra := 0 // writes attempted after the disk filled up
	afterFull := 50
	if p.Soak {
		afterFull = 500
	}
	for i := 0; time.Now().Before(deadline); i++ {
		key := fmt.Sprintf("/disk/k%05d", i)
		r := send("PUT", randomMember(newRand(uint64(i), 0), c).URL("/v1/kv"+key), value)
		if r.fate == answered && r.status == 200 {
			acked[key] = true
		}
		var err error
		if free, err = disk.Free(); err != nil {
			t.Fatal(err)
		}
		if free < 64<<10 || !full.Running() {
			extra++
			if extra > afterFull {
				break
			}
		}
	}
	if extra == 0 {
		t.Fatalf("the disk never filled up (%d bytes free after %d writes)", free, len(acked))
	}
	t.Logf("%d writes acknowledged; the small disk has %d bytes free; its member runs: %v", len(acked), free, full.Running())
	// The majority still answers: a write through the leader's side.
	c.Eventually(30*time.Second, "a write acknowledged with one disk full", func() bool {
		for _, m := range ms[:2] {
			if r := send("PUT", m.URL("/v1/kv/disk/after"), []byte("1")); r.status == 200 {
				acked["/disk/after"] = true
				return true
			}
		}
		return false
	})
	t.Logf("member %s log tail while full:\n%s", full.ID, tail(full.Logs(), 6))

	if err := disk.Resize(256 << 20); err != nil {
		t.Fatalf("growing the tmpfs: %v", err)
	}
	if !full.Running() {
		t.Logf("member %s exited on the full disk; restarting it", full.ID)
		full.Restart()
	}
	c.WaitCaughtUp(60 * time.Second)
	_ = leader
	got := map[string]bool{}
	for _, m := range c.Members {
		list := staleKeys(t, m, "/disk/")
		for k := range acked {
			if !list[k] {
				t.Errorf("member %s lacks the acknowledged key %s", m.ID, k)
			}
		}
		if m == ms[0] {
			got = list
		} else if len(list) != len(got) {
			t.Errorf("member %s holds %d keys, member %s %d", m.ID, len(list), ms[0].ID, len(got))
		}
	}
}

// staleKeys lists the keys under prefix on m's own replica.
func staleKeys(t testing.TB, m *cluster.Member, prefix string) map[string]bool {
	t.Helper()
	r := send("GET", m.URL("/v1/kv"+prefix+"?prefix=true&stale=true&keys_only=true"), nil)
	var l struct {
		KVs []struct {
			Key string `json:"key"`
		} `json:"kvs"`
	}
	if r.status != 200 || r.decode(&l) != nil {
		t.Fatalf("listing %s on %s: %d %s %v", prefix, m.ID, r.status, r.body, r.err)
	}
	out := map[string]bool{}
	for _, kv := range l.KVs {
		out[kv.Key] = true
	}
	return out
}

func tail(s string, n int) string {
	lines := bytes.Split([]byte(s), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
