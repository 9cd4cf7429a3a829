package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/internal/testutil"
	"github.com/rosterhq/roster/registry"
)

func TestParseFailpoints(t *testing.T) {
	fps, err := parseFailpoints(" commit-before-ack , " + fsm.FailRestoreSynced + "@3,")
	if err != nil {
		t.Fatal(err)
	}
	want := failpoints{registry.FailCommitBeforeAck: 1, fsm.FailRestoreSynced: 3}
	if !reflect.DeepEqual(fps, want) {
		t.Fatalf("got %v, want %v", fps, want)
	}
	if fps, err := parseFailpoints(""); fps != nil || err != nil {
		t.Fatalf("empty: %v %v", fps, err)
	}
	for _, bad := range []string{"nope", "commit-before-ack@0", "commit-before-ack@x", "@2"} {
		if _, err := parseFailpoints(bad); err == nil || !strings.Contains(err.Error(), failpointEnv) {
			t.Errorf("parseFailpoints(%q) = %v, want an error naming %s", bad, err, failpointEnv)
		}
	}
	// Through parseConfig: a bad value is a usage error like a bad flag.
	if _, err := parseConfig(nil, fakeEnv(map[string]string{failpointEnv: "nope"})); err == nil || !strings.Contains(err.Error(), `unknown crash point "nope"`) {
		t.Fatalf("parseConfig with a bad %s: %v", failpointEnv, err)
	}
	cfg, err := parseConfig(nil, fakeEnv(map[string]string{failpointEnv: "compact-after@2"}))
	if err != nil || !reflect.DeepEqual(cfg.Failpoints, failpoints{registry.FailCompactAfter: 2}) {
		t.Fatalf("parseConfig: %v %v", cfg.Failpoints, err)
	}
}

// TestFailpointsAreAllKnown: every name the node passes can be chosen.
func TestFailpointsAreAllKnown(t *testing.T) {
	for _, name := range registry.Failpoints() {
		if _, err := parseFailpoints(name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestFailpointHookFiresAtTheChosenPass(t *testing.T) {
	if h := failpoints(nil).hook(nil, func() { t.Fatal("died") }); h != nil {
		t.Fatal("no crash point chosen, yet a hook")
	}
	var stderr testutil.SyncBuffer
	var died []string
	last := ""
	h := failpoints{"a": 2, "b": 1}.hook(&stderr, func() { died = append(died, last) })
	for _, name := range []string{"a", "c", "a", "a", "b", "b"} {
		last = name
		h(name)
	}
	if !reflect.DeepEqual(died, []string{"a", "b"}) {
		t.Fatalf("died at %v, want [a b]", died)
	}
	if out := stderr.String(); !strings.Contains(out, "crash point a (pass 2)") || !strings.Contains(out, "crash point b (pass 1)") {
		t.Fatalf("stderr: %q", out)
	}
}
