package resp

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/registry"
)

// FuzzExecRaced is differential, as FuzzExecAsPlain, with a concurrent
// writer: on one node, another client's writes (puts and deletes of keys
// the transaction names) commit between EXEC's read and its first
// proposal (racingBackend); on the other, the same writes, then the same
// commands one by one. A transaction that proposed is linearized at its
// commit, after those writes, whether EXEC played again or its compares
// let it apply at once: its answers and the keyspace it leaves must be
// those of the commands run after the writes. One that proposed nothing
// never met them: it answers as the commands run alone. Input: the race
// (each byte a put or a delete of one of the keys the commands name
// first), a 2 byte, then the commands as FuzzExecAsPlain reads them.
//
//	go test -run '^$' -fuzz FuzzExecRaced -fuzztime 1m ./resp/
func FuzzExecRaced(f *testing.F) {
	for _, s := range []string{
		"\x00\x02SET\x00a\x00mine\x01GET\x00b",
		"\x00\x01\x02GET\x00a\x01SET\x00b\x00mine",
		"\x00\x02INCR\x00a\x01SET\x00b\x001",
		"\x01\x02SET\x00a\x00v\x01DEL\x00a\x01SET\x00b\x00w",
		"\x00\x02MSET\x00a\x001\x00b\x002\x01INCR\x00a\x01GET\x00b",
		"\x00\x02SET\x00a\x00v\x00NX\x01SET\x00b\x00v\x00GET",
		"\x00\x02SET\x00a\x00v\x00EX\x001000\x01EXPIRE\x00b\x002000\x01GETEX\x00a",
		"\x03\x02DEL\x00a\x00b\x01SETNX\x00c\x009",
		"\x00\x02GETDEL\x00a\x01SETEX\x00b\x001000\x00x\x01PERSIST\x00b",
		// Apply-time operations (txnlate.go), raced: answered from what applied.
		"\x00\x02INCR\x00a\x01INCRBY\x00b\x005",
		"\x00\x02INCR\x00a\x01GET\x00a",
		"\x00\x03\x02SET\x00a\x00v\x00XX\x01SET\x00b\x00v\x00NX\x00GET",
		"\x04\x01\x02GETSET\x00a\x00v\x01GETDEL\x00b\x01DEL\x00c\x00a",
		"\x00\x02SET\x00a\x00v\x00GET\x00EX\x001000\x01SETNX\x00b\x00w",
		"\x00\x03\x02SET\x00a\x00v\x00NX\x00EX\x001000\x01SET\x00b\x00v\x00XX\x00PX\x001000000\x00GET",
	} {
		f.Add([]byte(s))
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	tNode := openTestNode(f, quiet, prometheus.NewRegistry())
	tb := &racingBackend{Node: tNode}
	srv, err := New(Config{RequestTimeout: fuzzRESPTimeout}, raceFuzzBackend{tb}, quiet)
	if err != nil {
		f.Fatal(err)
	}
	tAddr := serveTest(f, srv)
	plain := newRESPFuzzEnv(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		race, rest, ok := bytes.Cut(in, []byte{2})
		if !ok || len(race) > 4 {
			return
		}
		var cmds [][][]byte
		var keys [][]byte
		for _, c := range bytes.SplitN(rest, []byte{1}, 6) {
			cmd := bytes.SplitN(c, []byte{0}, 9)
			if !asPlainKeyCommand(cmd) {
				return
			}
			cmds = append(cmds, cmd)
			if len(cmd) > 1 {
				keys = append(keys, cmd[1])
			}
		}
		var writes []func(*registry.Node) error
		for _, b := range race {
			if len(keys) == 0 {
				break
			}
			key, err := rosterKey(keys[int(b>>1)%len(keys)])
			if err != nil {
				return
			}
			value := []byte(fmt.Sprint(b))
			if b&1 == 0 {
				writes = append(writes, func(n *registry.Node) error {
					_, err := n.Put(context.Background(), fsm.Put{Key: key, Value: value})
					return err
				})
			} else {
				writes = append(writes, func(n *registry.Node) error {
					_, err := n.Delete(context.Background(), fsm.Delete{Key: key})
					return err
				})
			}
		}
		writeAll := func(n *registry.Node) {
			for _, w := range writes {
				if err := w(n); err != nil {
					t.Fatalf("the racing write: %v", err)
				}
			}
		}
		var fired atomic.Bool
		hook := func() {
			if fired.CompareAndSwap(false, true) {
				writeAll(tNode)
			}
		}
		tb.race.Store(&hook)
		defer tb.race.Store(nil)
		got := quitExchange(t, tAddr, append(append([][][]byte{{[]byte("MULTI")}}, cmds...), [][]byte{[]byte("EXEC")}))
		head := "+OK\r\n" + strings.Repeat("+QUEUED\r\n", len(cmds)) + fmt.Sprintf("*%d\r\n", len(cmds))
		if !strings.HasPrefix(got, head) {
			if !strings.HasSuffix(got, "-EXECABORT Transaction discarded because of previous errors.\r\n+OK\r\n") {
				t.Fatalf("MULTI … EXEC answered %q", got)
			}
			return
		}
		if fired.Load() {
			writeAll(plain.node)
		}
		want := quitExchange(t, plain.addr, cmds)
		if got[len(head):] != want {
			t.Fatalf("EXEC of %q (racing writes %v) answered\n%q\none by one after them\n%q", cmds, fired.Load(), got[len(head):], want)
		}
		if a, b := keyspace(tNode.FSM().State()), keyspace(plain.node.FSM().State()); a != b {
			t.Fatalf("after %q (racing writes %v)\nEXEC left\n%s\none by one\n%s", cmds, fired.Load(), a, b)
		}
	})
}

// raceFuzzBackend is respFuzzBackend's rules (writes run to their end,
// no membership changes) over a racingBackend.
type raceFuzzBackend struct{ *racingBackend }

func (raceFuzzBackend) AddMember(context.Context, registry.JoinRequest) error {
	return errRESPNotFuzzed
}
func (raceFuzzBackend) RemoveMember(context.Context, string) error { return errRESPNotFuzzed }

func (b raceFuzzBackend) Put(ctx context.Context, p fsm.Put) (fsm.Result, error) {
	return b.Node.Put(context.WithoutCancel(ctx), p)
}

func (b raceFuzzBackend) Delete(ctx context.Context, d fsm.Delete) (fsm.Result, error) {
	return b.Node.Delete(context.WithoutCancel(ctx), d)
}

func (b raceFuzzBackend) Txn(ctx context.Context, ops []fsm.Command) (fsm.Result, error) {
	return b.racingBackend.Txn(context.WithoutCancel(ctx), ops)
}

func (b raceFuzzBackend) Batch(ctx context.Context, cmds []fsm.Command) []registry.BatchResult {
	return b.Node.Batch(context.WithoutCancel(ctx), cmds)
}
