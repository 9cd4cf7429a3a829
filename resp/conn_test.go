package resp

import (
	"bufio"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestConnectionCommands: what clients send besides data commands.
func TestConnectionCommands(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client()
	if v, _ := c.Ping(ctx()).Result(); v != "PONG" {
		t.Fatalf("PING: %q", v)
	}
	if v, _ := c.Do(ctx(), "PING", "hi").Text(); v != "hi" {
		t.Fatalf("PING hi: %q", v)
	}
	if v, _ := c.Echo(ctx(), "x y").Result(); v != "x y" {
		t.Fatalf("ECHO: %q", v)
	}
	for _, args := range [][]any{{"SELECT", "0"}, {"CLIENT", "SETNAME", "me"}, {"CLIENT", "SETINFO", "lib-name", "x"},
		{"READONLY"}, {"READWRITE"}} {
		if v, err := c.Do(ctx(), args...).Text(); err != nil || v != "OK" {
			t.Fatalf("%v: %q %v", args, v, err)
		}
	}
	// One connection, so that the name set is the name read.
	conn := c.Conn()
	defer conn.Close()
	conn.ClientSetName(ctx(), "worker-1")
	if v, _ := conn.ClientGetName(ctx()).Result(); v != "worker-1" {
		t.Fatalf("CLIENT GETNAME: %q", v)
	}
	// As in Redis, a name with a space or a control character is refused
	// and the name stays.
	for _, bad := range []string{"a b", "a\nb", "é"} {
		wantErr(t, conn.Do(ctx(), "CLIENT", "SETNAME", bad).Err(), "ERR Client names cannot contain spaces, newlines or special characters.")
	}
	if v, _ := conn.ClientGetName(ctx()).Result(); v != "worker-1" {
		t.Fatalf("CLIENT GETNAME after refused names: %q", v)
	}
	if n, err := c.Do(ctx(), "COMMAND", "COUNT").Int(); err != nil || n != len(commands) {
		t.Fatalf("COMMAND COUNT: %d %v", n, err)
	}
	info, err := c.Command(ctx()).Result()
	if err != nil || info["set"] == nil || info["set"].Arity != -3 || info["get"].FirstKeyPos != 1 || !info["get"].ReadOnly {
		t.Fatalf("COMMAND: %v %v", info["set"], err)
	}
	if v, err := c.Do(ctx(), "COMMAND", "INFO", "get", "nosuch").Slice(); err != nil || len(v) != 2 || v[1] != nil {
		t.Fatalf("COMMAND INFO: %v %v", v, err)
	}
	if v, err := c.Do(ctx(), "COMMAND", "DOCS").Slice(); err != nil || len(v) != 0 {
		t.Fatalf("COMMAND DOCS: %v %v", v, err)
	}
	if v, err := c.Do(ctx(), "CONFIG", "GET", "save").Slice(); err != nil || len(v) != 0 {
		t.Fatalf("CONFIG GET: %v %v", v, err)
	}
	c.Set(ctx(), "a", "1", 10*time.Second)
	c.Set(ctx(), "b", "2", 0)
	text, err := c.Info(ctx()).Result()
	for _, want := range []string{"# Server\r\n", "redis_version:", "# Replication\r\nrole:master\r\n", "# Keyspace\r\ndb0:keys=2,expires=1,"} {
		if err != nil || !strings.Contains(text, want) {
			t.Fatalf("INFO lacks %q: %q %v", want, text, err)
		}
	}
	if text, _ := c.Info(ctx(), "replication").Result(); strings.Contains(text, "# Server") || !strings.Contains(text, "role:master") {
		t.Fatalf("INFO replication: %q", text)
	}
	// QUIT answers OK and closes.
	raw := e.dial()
	raw.Write([]byte("*1\r\n$4\r\nQUIT\r\n"))
	if got, _ := io.ReadAll(raw); string(got) != "+OK\r\n" {
		t.Fatalf("QUIT: %q", got)
	}
	// Inline commands, as typed into telnet.
	raw = e.dial()
	raw.Write([]byte("SET inline \"a b\"\r\nGET inline\r\n"))
	r := bufio.NewReader(raw)
	for _, want := range []string{"+OK\r\n", "$3\r\n", "a b\r\n"} {
		if line, _ := r.ReadString('\n'); line != want {
			t.Fatalf("inline: %q, want %q", line, want)
		}
	}
}

// TestPipelineOf500 sends 500 commands in one go-redis pipeline: every
// answer comes back in order and the writes apply in order (same key
// included); 500 pipelined SETs are proposed together.
func TestPipelineOf500(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client()
	rev := e.node.FSM().State().Revision()
	pipe := c.Pipeline()
	var cmds []redis.Cmder
	for i := range 500 {
		switch i % 5 {
		case 0, 1:
			cmds = append(cmds, pipe.Set(ctx(), "same", i, 0))
		case 2:
			cmds = append(cmds, pipe.Set(ctx(), "k"+itoa(int64(i)), i, 0))
		case 3:
			cmds = append(cmds, pipe.Incr(ctx(), "counter"))
		case 4:
			cmds = append(cmds, pipe.Get(ctx(), "same"))
		}
	}
	if _, err := pipe.Exec(ctx()); err != nil {
		t.Fatal(err)
	}
	var incr int64
	for i, cmd := range cmds {
		switch i % 5 {
		case 0, 1, 2:
			if v, err := cmd.(*redis.StatusCmd).Result(); err != nil || v != "OK" {
				t.Fatalf("command %d: %q %v", i, v, err)
			}
		case 3:
			incr++
			if v, err := cmd.(*redis.IntCmd).Result(); err != nil || v != incr {
				t.Fatalf("INCR %d: %d %v, want %d", i, v, err, incr)
			}
		case 4:
			// Reads see the writes pipelined before them.
			if v, err := cmd.(*redis.StringCmd).Result(); err != nil || v != itoa(int64(i-3)) {
				t.Fatalf("GET %d: %q %v, want %d", i, v, err, i-3)
			}
		}
	}
	if got := e.node.FSM().State().Revision() - rev; got != 400 {
		t.Fatalf("400 writes moved the revision by %d", got)
	}
	if v, _ := e.value("/same"); v != "496" {
		t.Fatalf("last write to the same key: %q", v)
	}
	// 500 pipelined SETs are proposed in a few batches (as many as the
	// reads of the connection cut the pipeline into), not one by one.
	rev = e.node.FSM().State().Revision()
	before := e.batches()
	pipe = c.Pipeline()
	for i := range 500 {
		pipe.Set(ctx(), "w"+itoa(int64(i)), i, 0)
	}
	if _, err := pipe.Exec(ctx()); err != nil {
		t.Fatal(err)
	}
	if n := e.batches() - before; n < 1 || n > 25 || e.node.FSM().State().Revision() != rev+500 {
		t.Fatalf("500 pipelined SETs went as %d batches", n)
	}
}

// TestConcurrentClients: many connections writing at once (group commit
// across connections) all get their answers.
func TestConcurrentClients(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client()
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for w := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				if err := c.Incr(ctx(), "n").Err(); err != nil {
					errs <- err
					return
				}
				if err := c.Set(ctx(), "w"+itoa(int64(w))+"/"+itoa(int64(i)), "v", 0).Err(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if v, _ := e.value("/n"); v != "400" {
		t.Fatalf("counter %q", v)
	}
}
