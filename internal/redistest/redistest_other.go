//go:build !linux

package redistest

import "syscall"

// sysProcAttr returns nil: only Linux can tie the child's life to the test
// binary's, so elsewhere a server may outlive a test binary that is killed.
func sysProcAttr() *syscall.SysProcAttr { return nil }
