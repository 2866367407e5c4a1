//go:build !linux

package main

import "syscall"

func childAttr() *syscall.SysProcAttr { return nil }

func selfCPU() float64 { return 0 }

func machineCPU() (busy, steal float64) { return 0, 0 }

func ownCPU() float64 { return 0 }
