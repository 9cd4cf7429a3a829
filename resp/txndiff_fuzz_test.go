package resp

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// FuzzExecAsPlain is differential: two one-member nodes kept in the same
// keyspace; each input's commands (up to six, each a name and up to
// eight arguments) run inside MULTI … EXEC on one and one by one on the
// other, and the answers and the keyspaces (keys, values, leases' TTL
// and name) must agree, as EXEC answers from a dry run of the state
// machine itself (dryrun.go). What depends on when a command runs is
// left out, the two nodes' lease clocks being apart: inputs naming a
// command MULTI does not queue as a key command, reading the time left
// on a lease (TTL, PTTL, EXPIRE … GT/LT) or the wall clock (EXAT, PXAT),
// or giving a TTL under 1,000 s (its key could expire between the two
// runs) are skipped; a transaction refused when queued (EXECABORT) runs
// on neither.
//
//	go test -run '^$' -fuzz FuzzExecAsPlain -fuzztime 1m ./resp/
func FuzzExecAsPlain(f *testing.F) {
	for _, s := range []string{
		"SET\x00a\x001\x01INCR\x00a\x01GET\x00a\x01INCRBY\x00a\x00x",
		"SET\x00k\x00v\x00EX\x001000\x01PERSIST\x00k\x01EXPIRE\x00k\x001050\x00NX\x01GETEX\x00k\x00PERSIST",
		"SET\x00k\x00v\x00XX\x01SET\x00k\x00v\x00NX\x00GET\x01GETEX\x00k\x00EX\x005000\x01GETDEL\x00k",
		"MSET\x00a\x001\x00b\x002\x01MGET\x00a\x00b\x00c\x01DEL\x00a\x00c\x01EXISTS\x00a\x00b\x00b",
		"SETNX\x00n\x009\x01DECRBY\x00n\x009223372036854775807\x01INCRBY\x00n\x00-10\x01STRLEN\x00n\x01TYPE\x00n",
		"SET\x00k\x00v\x00EX\x002000\x01SET\x00k\x00w\x00KEEPTTL\x01INCR\x00k\x01GETSET\x00k\x007\x01INCR\x00k",
		"PEXPIRE\x00k\x001000000\x00XX\x01SETEX\x00k\x001000\x00v\x01PSETEX\x00k\x001000000\x00v\x01EXPIRE\x00k\x000",
		"PING\x01ECHO\x00x\x01UNLINK\x00a\x00a\x01DECR\x00d\x01SET\x00a\x00b\x00EX\x00-1",
		// Apply-time operations (txnlate.go): each key touched once.
		"INCR\x00a\x01SET\x00b\x00v\x00NX\x01SET\x00c\x00v\x00XX\x00GET\x01GETSET\x00d\x001\x01GETDEL\x00e\x01DEL\x00f\x00g",
		"SET\x00k\x00v\x00NX\x00EX\x001000\x01SET\x00k2\x00v\x00XX\x00PX\x001000000\x01SET\x00k3\x00v\x00NX\x00EX\x001000\x00GET",
		"SET\x00s\x00abc\x01DECRBY\x00n\x00-9223372036854775807\x01INCRBY\x00n2\x009223372036854775807\x01SET\x00k\x00v\x00GET\x00EX\x001000\x01SETNX\x00m\x001",
	} {
		f.Add([]byte(s))
	}
	txn, plain := newRESPFuzzEnv(f), newRESPFuzzEnv(f)
	txnNode, txnAddr, plainNode, plainAddr := txn.node, txn.addr, plain.node, plain.addr
	f.Fuzz(func(t *testing.T, in []byte) {
		var cmds [][][]byte
		for _, c := range bytes.SplitN(in, []byte{1}, 6) {
			cmd := bytes.SplitN(c, []byte{0}, 9)
			if !asPlainKeyCommand(cmd) {
				return
			}
			cmds = append(cmds, cmd)
		}
		got := quitExchange(t, txnAddr, append(append([][][]byte{{[]byte("MULTI")}}, cmds...), [][]byte{[]byte("EXEC")}))
		head := "+OK\r\n" + strings.Repeat("+QUEUED\r\n", len(cmds)) + fmt.Sprintf("*%d\r\n", len(cmds))
		if !strings.HasPrefix(got, head) {
			if !strings.HasSuffix(got, "-EXECABORT Transaction discarded because of previous errors.\r\n+OK\r\n") {
				t.Fatalf("MULTI … EXEC answered %q", got)
			}
			return // refused when queued: nothing ran
		}
		want := quitExchange(t, plainAddr, cmds)
		if got[len(head):] != want {
			t.Fatalf("EXEC of %q answered\n%q\none by one\n%q", cmds, got[len(head):], want)
		}
		if a, b := keyspace(txnNode.FSM().State()), keyspace(plainNode.FSM().State()); a != b {
			t.Fatalf("after %q\nEXEC left\n%s\none by one\n%s", cmds, a, b)
		}
	})
}

// asPlainKeyCommand: a command EXEC queues and plays as a key command,
// whose answer and effect do not depend on when it runs (see
// FuzzExecAsPlain).
func asPlainKeyCommand(cmd [][]byte) bool {
	name := strings.ToLower(string(cmd[0]))
	sp, ok := commands[name]
	if !ok || (sp.read == nil && sp.write == nil) || name == "ttl" || name == "pttl" {
		return false
	}
	// longTTL: a TTL argument that is no integer, or not above 0, is
	// refused the same way on both; one above 0 must be long.
	longTTL := func(i int, ms bool) bool {
		if i >= len(cmd) {
			return true
		}
		n, err := parseInt(cmd[i])
		if ms {
			n /= 1000
		}
		return err != nil || n <= 0 || n >= 1000
	}
	switch name {
	case "setex", "psetex", "expire", "pexpire":
		if !longTTL(2, name[0] == 'p') {
			return false
		}
	}
	for i, a := range cmd[1:] {
		switch strings.ToLower(string(a)) {
		case "exat", "pxat", "gt", "lt":
			return false
		case "ex", "px":
			if (name == "set" || name == "getex") && !longTTL(i+2, strings.EqualFold(string(a), "px")) {
				return false
			}
		}
	}
	return true
}

// quitExchange sends cmds and QUIT on a new connection and returns every
// byte answered until the server closes it.
func quitExchange(t *testing.T, addr string, cmds [][][]byte) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var req bytes.Buffer
	for _, cmd := range append(cmds, [][]byte{[]byte("QUIT")}) {
		fmt.Fprintf(&req, "*%d\r\n", len(cmd))
		for _, a := range cmd {
			fmt.Fprintf(&req, "$%d\r\n%s\r\n", len(a), a)
		}
	}
	if _, err := c.Write(req.Bytes()); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(fuzzRESPTimeout + 5*time.Second))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading until the server closes: %v (got %q)", err, got)
	}
	return string(got)
}
