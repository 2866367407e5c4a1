//go:build linux

package redistest

import "syscall"

// sysProcAttr makes the kernel SIGKILL redis-server when the test binary
// dies, so a killed or crashed test run leaves no server behind. (Pdeathsig
// fires when the forking OS thread exits; Go keeps its threads for the life
// of the process unless a goroutine exits while locked to one.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
