//go:build faults && linux

package faults

import "syscall"

// sysProcAttr makes a worker die with the test binary (go test's timeout
// panic included), so no worker outlives the suite.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
