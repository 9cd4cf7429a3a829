package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestShippedPackagesDoNotImportTesting keeps package testing, and the
// module's test-support packages, out of what ships: no package of this
// module that the binaries or the client library are built from imports
// them. Test helpers that production packages would otherwise pull in (a
// logger for t.Log, say) live in packages of their own. (hashicorp/raft
// imports testing for its own test helpers; that is outside our reach.)
func TestShippedPackagesDoNotImportTesting(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	const module = "github.com/rosterhq/roster/"
	out, err := exec.Command(goBin, "list", "-deps", "-f", "{{.ImportPath}} {{join .Imports \" \"}}",
		module+"cmd/rosterd", module+"cmd/rosterctl", module+"client").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	ours := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], module) {
			continue
		}
		ours++
		for _, imp := range f[1:] {
			switch {
			case imp == "testing", strings.HasPrefix(imp, "testing/"),
				imp == module+"internal/testutil", imp == module+"internal/testcerts",
				imp == module+"internal/cluster", strings.HasSuffix(imp, "/logtest"):
				t.Errorf("%s imports %s", f[0], imp)
			}
		}
	}
	if ours < 10 {
		t.Fatalf("go list found %d packages of this module; want every one the binaries use", ours)
	}
}
