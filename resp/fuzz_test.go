package resp

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/registry"
)

// FuzzRESP sends random commands (a name and up to eight arguments) to the
// Redis port of a real one-member node, each on a fresh connection, and
// checks what the port promises of every answer:
//   - it is one well-formed RESP2 reply, within the request timeout;
//   - an error reply changed nothing: same revision, keys and leases
//     (unless a lease expired meanwhile);
//   - nothing panicked (a panic in a handler ends the process, and with
//     it the fuzzing).
//
// The seeds run with every go test.
//
//	go test -run '^$' -fuzz FuzzRESP -fuzztime 2m -fuzzminimizetime 5s ./resp/
func FuzzRESP(f *testing.F) {
	for _, s := range [][2]string{
		{"SET", "k\x00v"}, {"SET", "k\x00v\x00EX\x00100"}, {"SET", "k\x00v\x00PX\x00-1"},
		{"SET", "k\x00v\x00NX\x00XX"}, {"SETNX", "k\x00w"}, {"GET", "k"}, {"MGET", "k\x00nope"},
		{"MSET", "a\x001\x00b"}, {"DEL", "k\x00a"}, {"INCRBY", "n\x009223372036854775807"},
		{"INCR", "n"}, {"DECRBY", "n\x00x"}, {"EXPIRE", "k\x000"}, {"PEXPIRE", "k\x00-5"},
		{"PERSIST", "k"}, {"TTL", "k"}, {"KEYS", "*"}, {"KEYS", "[a-"}, {"SCAN", "0\x00MATCH\x00k*\x00COUNT\x000"},
		{"DBSIZE", ""}, {"PING", ""}, {"ECHO", "x"}, {"SELECT", "1"}, {"AUTH", "x"}, {"HELLO", "3"},
		{"CLIENT", "SETNAME\x00a b"}, {"COMMAND", "INFO\x00get"}, {"CONFIG", "GET\x00*"}, {"INFO", "keyspace"},
		{"JOIN", "n2\x00127.0.0.1:1"}, {"LEAVE", "n1"}, {"SUBSCRIBE", "__keyspace@0__:*"}, {"UNSUBSCRIBE", ""},
		{"QUIT", ""}, {"NOSUCH", "x"}, {"", ""},
		{"EXPIRE", "k\x0010\x00GT"}, {"SET", "k\x00v\x00KEEPTTL"}, {"SET", "k\x00v\x00EXAT\x009999999999"},
		{"GETEX", "k\x00PERSIST"}, {"GETDEL", "k"}, {"SETEX", "k\x0010\x00v"}, {"GETSET", "k\x00v"},
		{"TYPE", "k"}, {"STRLEN", "k"}, {"KEYS", "*a*a*a*a*b"},
		{"MULTI", ""}, {"EXEC", ""}, {"DISCARD", ""}, {"WATCH", "k\x00a"}, {"UNWATCH", ""},
	} {
		f.Add(s[0], []byte(s[1]))
	}
	fz := newRESPFuzzEnv(f)
	f.Fuzz(func(t *testing.T, name string, args []byte) {
		cmd := [][]byte{[]byte(name)}
		if len(args) > 0 {
			cmd = append(cmd, bytes.SplitN(args, []byte{0}, 8)...)
		}
		before, expired := fz.fingerprint(), fz.node.FSM().Expired()
		c, err := net.DialTimeout("tcp", fz.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var req bytes.Buffer
		fmt.Fprintf(&req, "*%d\r\n", len(cmd))
		for _, a := range cmd {
			fmt.Fprintf(&req, "$%d\r\n%s\r\n", len(a), a)
		}
		if _, err := c.Write(req.Bytes()); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(fuzzRESPTimeout + 5*time.Second))
		kind, err := readReply(bufio.NewReader(c), 0)
		if err != nil {
			t.Fatalf("%q: no well-formed reply: %v", cmd, err)
		}
		if kind == '-' {
			if after := fz.fingerprint(); after != before && fz.node.FSM().Expired() == expired {
				t.Fatalf("%q answered an error but changed the state:\n before %s\n after  %s", cmd, before, after)
			}
		}
	})
}

const fuzzRESPTimeout = 5 * time.Second

type respFuzzEnv struct {
	node *registry.Node
	addr string
}

func newRESPFuzzEnv(f *testing.F) *respFuzzEnv {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	node := openTestNode(f, quiet, prometheus.NewRegistry())
	srv, err := New(Config{RequestTimeout: fuzzRESPTimeout}, respFuzzBackend{node}, quiet)
	if err != nil {
		f.Fatal(err)
	}
	return &respFuzzEnv{node: node, addr: serveTest(f, srv)}
}

// fingerprint is what an error reply must leave as it was.
func (fz *respFuzzEnv) fingerprint() string {
	st := fz.node.FSM().State()
	return fmt.Sprintf("revision=%d keys=%d leases=%d", st.Revision(), st.KeyCount(), st.LeaseCount())
}

// respFuzzBackend is the node with two changes. Membership changes are
// refused (a random voter would take the one-member quorum away, and every
// later input would time out). Writes run to their end whatever the
// command's deadline, so that none is still in flight when the next input
// compares states.
type respFuzzBackend struct{ *registry.Node }

var errRESPNotFuzzed = fmt.Errorf("%w: membership changes are not fuzzed", registry.ErrNoLeader)

func (respFuzzBackend) AddMember(context.Context, registry.JoinRequest) error {
	return errRESPNotFuzzed
}
func (respFuzzBackend) RemoveMember(context.Context, string) error { return errRESPNotFuzzed }

func (b respFuzzBackend) Put(ctx context.Context, p fsm.Put) (fsm.Result, error) {
	return b.Node.Put(context.WithoutCancel(ctx), p)
}

func (b respFuzzBackend) Delete(ctx context.Context, d fsm.Delete) (fsm.Result, error) {
	return b.Node.Delete(context.WithoutCancel(ctx), d)
}

func (b respFuzzBackend) Txn(ctx context.Context, ops []fsm.Command) (fsm.Result, error) {
	return b.Node.Txn(context.WithoutCancel(ctx), ops)
}

func (b respFuzzBackend) Batch(ctx context.Context, cmds []fsm.Command) []registry.BatchResult {
	return b.Node.Batch(context.WithoutCancel(ctx), cmds)
}

// readReply reads one RESP2 reply strictly and returns its type byte.
func readReply(r *bufio.Reader, depth int) (byte, error) {
	if depth > 8 {
		return 0, fmt.Errorf("replies nested %d deep", depth)
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("reading a reply line: %w (got %q)", err, line)
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return 0, fmt.Errorf("malformed reply line %q", line)
	}
	kind, body := line[0], line[1:len(line)-2]
	switch kind {
	case '+':
		if strings.ContainsRune(body, '\r') {
			return 0, fmt.Errorf("status %q holds a CR", body)
		}
	case '-':
		if body == "" || strings.ContainsRune(body, '\r') {
			return 0, fmt.Errorf("error reply %q is empty or holds a CR", body)
		}
	case ':':
		if _, err := strconv.ParseInt(body, 10, 64); err != nil {
			return 0, fmt.Errorf("integer reply %q: %v", body, err)
		}
	case '$', '*':
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 {
			return 0, fmt.Errorf("length %q in %q", body, line)
		}
		if kind == '*' {
			for i := 0; i < n; i++ {
				if _, err := readReply(r, depth+1); err != nil {
					return 0, fmt.Errorf("element %d of %d: %w", i, n, err)
				}
			}
			break
		}
		if n >= 0 {
			b := make([]byte, n+2)
			if _, err := io.ReadFull(r, b); err != nil {
				return 0, fmt.Errorf("bulk of %d bytes: %w", n, err)
			}
			if !bytes.HasSuffix(b, []byte("\r\n")) {
				return 0, fmt.Errorf("bulk of %d bytes not followed by CRLF", n)
			}
		}
	default:
		return 0, fmt.Errorf("unknown reply type in %q", line)
	}
	return kind, nil
}
