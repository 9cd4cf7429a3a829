package resp

import (
	"os/exec"
	"syscall"
)

// killWithParent has the kernel kill the redis-server a test started when
// the test binary dies without running its cleanups (a go test -timeout
// panic, a kill), so that none is left running.
func killWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
