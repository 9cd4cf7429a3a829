package resp

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// FuzzRESPTxn sends MULTI, up to six random commands (each a name and up
// to eight arguments) and EXEC on one connection to the Redis port of a
// real one-member node, and checks what a transaction promises:
//   - every answer is one well-formed RESP2 reply;
//   - each queued command answers QUEUED or an error, and after an error
//     EXEC answers EXECABORT;
//   - EXEC answering an error or the nil array changed nothing.
//
// The seeds run with every go test.
//
//	go test -run '^$' -fuzz FuzzRESPTxn -fuzztime 2m -fuzzminimizetime 5s ./resp/
func FuzzRESPTxn(f *testing.F) {
	for _, s := range []string{
		"SET\x00a\x001\x01INCR\x00a\x01GET\x00a",
		"SET\x00a\x00x\x01INCR\x00a\x01SET\x00b\x002",
		"SET\x00k\x00v\x00EX\x00100\x01TTL\x00k\x01PERSIST\x00k\x01PTTL\x00k",
		"NOSUCH\x01SET\x00a\x001",
		"GET\x01SET\x00a\x001",
		"KEYS\x00*\x01SET\x00a\x001",
		"MULTI\x01WATCH\x00a\x01SET\x00a\x001",
		"DEL\x00a\x00b\x01MSET\x00a\x001\x00b\x002\x01MGET\x00a\x00b\x00c",
		"SET\x00k\x00v\x00XX\x01SET\x00k\x00v\x00NX\x00GET\x01GETEX\x00k\x00EX\x0050\x01GETDEL\x00k",
		"EXPIRE\x00k\x0010\x00GT\x01SETNX\x00k\x00w\x01DECRBY\x00n\x009223372036854775807\x01INCRBY\x00n\x00-10",
		"SET\x00big\x00v\x00EX\x001\x01SET\x00k\x00v\x00KEEPTTL",
		"DISCARD\x01SET\x00a\x001",
		"PING\x01ECHO\x00x\x01UNWATCH\x01EXEC",
		"SUBSCRIBE\x00__keyspace@0__:a\x01QUIT",
	} {
		f.Add([]byte(s))
	}
	fz := newRESPFuzzEnv(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		var cmds [][][]byte
		for _, c := range bytes.SplitN(in, []byte{1}, 6) {
			cmd := bytes.SplitN(c, []byte{0}, 9)
			if len(cmd[0]) == 0 || bytes.EqualFold(cmd[0], []byte("quit")) {
				return // an empty frame or QUIT ends the exchange early: not a transaction
			}
			cmds = append(cmds, cmd)
		}
		before, expired := fz.fingerprint(), fz.node.FSM().Expired()
		c, err := net.DialTimeout("tcp", fz.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var req bytes.Buffer
		all := append(append([][][]byte{{[]byte("MULTI")}}, cmds...), [][]byte{[]byte("EXEC")})
		for _, cmd := range all {
			fmt.Fprintf(&req, "*%d\r\n", len(cmd))
			for _, a := range cmd {
				fmt.Fprintf(&req, "$%d\r\n%s\r\n", len(a), a)
			}
		}
		if _, err := c.Write(req.Bytes()); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(fuzzRESPTimeout + 5*time.Second))
		r := bufio.NewReader(c)
		refused := false
		for i, cmd := range all {
			line := firstLine(r)
			kind, err := readReply(r, 0)
			if err != nil {
				t.Fatalf("%q: no well-formed reply: %v", cmd, err)
			}
			switch name := strings.ToLower(string(cmd[0])); {
			case i == 0:
				if line != "+OK" {
					t.Fatalf("MULTI answered %q", line)
				}
			case name == "exec":
				if refused && line != "-EXECABORT Transaction discarded because of previous errors." {
					t.Fatalf("EXEC after a refused command answered %q", line)
				}
				if kind == '-' || line == "*-1" {
					if after := fz.fingerprint(); after != before && fz.node.FSM().Expired() == expired {
						t.Fatalf("EXEC answered %q but the state changed:\n before %s\n after  %s", line, before, after)
					}
				}
				return
			case name == "discard":
				return // the transaction ended early; what follows runs outside it
			case name == "multi" || name == "watch":
				// Answered at once, an error that dooms nothing.
			case kind == '-':
				refused = true
			case line != "+QUEUED":
				t.Fatalf("%q inside MULTI answered %q", cmd, line)
			}
		}
	})
}

// firstLine is the first line of the next reply, without consuming it:
// it peeks byte by byte up to the line's CR LF, which always comes.
func firstLine(r *bufio.Reader) string {
	for n := 2; n <= r.Size(); n++ {
		b, err := r.Peek(n)
		if err != nil {
			return string(b)
		}
		if bytes.HasSuffix(b, []byte("\r\n")) {
			return string(b[:n-2])
		}
	}
	return ""
}
