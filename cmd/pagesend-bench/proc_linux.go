//go:build linux

package main

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// childAttr makes the kernel kill a worker process if the harness dies, so
// an interrupted run leaves nothing behind.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// selfCPU is this process's user + system CPU time so far, in seconds.
func selfCPU() float64 { return rusage(syscall.RUSAGE_SELF) }

// ownCPU is the CPU time of this process and of its children that have
// exited (the redis-servers and worker processes it started), in seconds.
func ownCPU() float64 { return rusage(syscall.RUSAGE_SELF) + rusage(syscall.RUSAGE_CHILDREN) }

func rusage(who int) float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// machineCPU returns the seconds every CPU has spent busy (not idle or
// iowait) and stolen by the hypervisor, from /proc/stat.
func machineCPU() (busy, steal float64) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0
	}
	var v [8]float64
	for i := range v {
		v[i], _ = strconv.ParseFloat(f[i+1], 64)
	}
	const hz = 100 // USER_HZ
	busy = (v[0] + v[1] + v[2] + v[5] + v[6]) / hz
	return busy, v[7] / hz
}
