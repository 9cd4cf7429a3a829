package resp

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRedisDiffNotifications is TestRedisDiff (1,500 commands) with
// keyspace notifications: after each step, the keys that had a
// notification on __keyspace@0__ must be the same on both (Redis with
// notify-keyspace-events KA). The events' names differ by design (Roster
// says set, del or expired; Redis names the command: expire, incrby,
// persist…: docs/redis.md, Keyspace notifications), so only the keys
// compare.
func TestRedisDiffNotifications(t *testing.T) {
	redisAddr := startRedis(t)
	e := newEnv(t)
	runRedisDiff(t, redisAddr, [2]string{e.addr, e.addr}, 1500, true)
}

// eventMarker is the key written and deleted after each step: its del
// event says every event of the step came before it.
const eventMarker = "~event-marker"

func (d *redisDiff) subscribe() {
	d.t.Helper()
	d.must(d.redisProbe, "CONFIG", "SET", "notify-keyspace-events", "KA")
	d.redisSub, d.rosterSub = d.dial(d.redisAddr), d.dial(d.rosterAddrs[0])
	for _, c := range []*rconn{d.redisSub, d.rosterSub} {
		if v := d.must(c, "PSUBSCRIBE", "__keyspace@0__:*"); v.String() != `*[$"psubscribe" $"__keyspace@0__:*" :1]` {
			d.t.Fatalf("PSUBSCRIBE answered %s", v)
		}
	}
}

// compareEvents compares the keys that had notifications since the last
// call; before is which keys existed before the step (present). Found and
// left (docs/testing.md): INCRBY k 0 writes nothing in Roster, so a step
// holding one is not compared. Normalisation: EXEC writes a
// transaction's net change of each key (one Txn: docs/redis.md,
// Transactions), so a key it creates and deletes again, absent before and
// after, has no notification, where Redis sends set and del.
func (d *redisDiff) compareEvents(before map[string]bool) {
	d.t.Helper()
	cmds := d.stepCmds
	d.stepCmds = nil
	want, got := d.eventKeys(d.redisProbe, d.redisSub), d.eventKeys(d.rosterProbe, d.rosterSub)
	if slices.ContainsFunc(cmds, incrByZero) {
		return
	}
	if slices.ContainsFunc(cmds, func(c []string) bool { return strings.EqualFold(c[0], "exec") }) {
		after := d.present()
		want = slices.DeleteFunc(want, func(k string) bool {
			return !before[k] && !after[k] && !slices.Contains(got, k)
		})
	}
	if !slices.Equal(want, got) {
		d.t.Fatalf("after %q\nRedis notified the keys %q\nRoster notified %q\nlast commands:\n%s",
			cmds, want, got, strings.Join(d.history, "\n"))
	}
}

// present says which of the generator's keys exist on Redis now.
func (d *redisDiff) present() map[string]bool {
	d.t.Helper()
	v := d.must(d.redisProbe, append([]string{"MGET"}, diffKeys...)...)
	out := make(map[string]bool, len(diffKeys))
	for i, k := range diffKeys {
		out[k] = !v.arr[i].null
	}
	return out
}

// eventKeys writes and deletes the marker through probe and reads sub's
// notifications up to the marker's del: the keys notified, sorted.
func (d *redisDiff) eventKeys(probe, sub *rconn) []string {
	d.t.Helper()
	d.must(probe, "SET", eventMarker, "1")
	d.must(probe, "DEL", eventMarker)
	keys := map[string]bool{}
	_ = sub.c.SetDeadline(time.Now().Add(20 * time.Second))
	for {
		v, err := readRval(sub.r, 0)
		if err != nil {
			d.t.Fatalf("reading notifications: %v\nlast commands:\n%s", err, strings.Join(d.history, "\n"))
		}
		if len(v.arr) != 4 || v.arr[0].s != "pmessage" {
			d.t.Fatalf("notification %s", v)
		}
		key := strings.TrimPrefix(v.arr[2].s, "__keyspace@0__:")
		if key == eventMarker {
			if v.arr[3].s == "del" {
				return slices.Sorted(maps.Keys(keys))
			}
			continue
		}
		keys[key] = true
	}
}
