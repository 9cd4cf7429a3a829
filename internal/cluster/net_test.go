package cluster

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// The proxy names the process that dialed a connection: here the test
// process itself, found through /proc.
func TestDialerMemberFindsTheDialingProcess(t *testing.T) {
	if err := NetAvailable(); err != nil {
		t.Skip(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	out, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	in, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if got := dialerMember(in, map[int]string{os.Getpid(): "self"}); got != "self" {
		t.Fatalf("dialer of a connection this process dialed: %q, want self", got)
	}
	if got := dialerMember(in, map[int]string{os.Getppid(): "parent"}); got != "" {
		t.Fatalf("dialer named %q, but the parent process did not dial", got)
	}
}

// Members advertise their proxies, and cutting the leader off through
// them is a real partition: the others elect a new leader, the old one
// steps down; healed, all three are ready again.
func TestNetIsolatesTheLeader(t *testing.T) {
	c := StartNet(t, 3, "-tick", "100ms")
	// Each member records its HTTP address itself once it is in, so wait.
	var last string
	c.Eventually(30*time.Second, "every member recorded with its proxies", func() bool {
		info, err := c.ClusterInfo(c.Members[0])
		if err != nil {
			return false
		}
		ok := 0
		for _, mm := range info.Members {
			for _, m := range c.Members {
				if m.ID == mm.ID && mm.RaftAddr == m.RaftProxy && mm.HTTPAddr == m.HTTPProxy {
					ok++
				}
			}
		}
		last = fmt.Sprintf("%+v", info.Members)
		return ok == len(c.Members)
	})
	t.Logf("members: %s", last)
	old := c.Leader(30 * time.Second)
	c.Net.Isolate(Cut, old)
	others := c.Followers(old)
	c.Eventually(30*time.Second, "a new leader among the others", func() bool {
		l := c.CurrentLeaderOf(others...)
		return l != nil && l != old
	})
	c.Eventually(30*time.Second, "the isolated leader to step down", func() bool {
		info, err := c.ClusterInfo(old)
		return err == nil && (info.Leader == nil || info.Leader.ID != old.ID)
	})
	// A write through the isolated member is not acknowledged: it cannot
	// reach the new leader (its HTTP forwarding is cut too).
	req, _ := http.NewRequest("PUT", old.URL("/v1/kv/x"), strings.NewReader("1"))
	if resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatalf("the isolated member acknowledged a write")
		}
	}
	if refused, dropped := c.Net.Stats(); refused+dropped == 0 {
		t.Fatalf("the proxies neither refused nor dropped anything")
	}
	c.Net.Heal()
	c.WaitReady(60*time.Second, c.Members...)
	c.Leader(30 * time.Second)
}
