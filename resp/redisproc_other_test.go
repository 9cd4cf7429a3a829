//go:build !linux

package resp

import "os/exec"

// killWithParent: only Linux can tie a child's life to its parent's; the
// test's cleanup kills the redis-server it started.
func killWithParent(*exec.Cmd) {}
