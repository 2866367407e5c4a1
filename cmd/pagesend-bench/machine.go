package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// machine describes where the figures were measured.
type machine struct {
	NProc        int    `json:"nproc"`
	CPUModel     string `json:"cpu_model"`
	MemTotalMB   int    `json:"mem_total_mb,omitempty"`
	OS           string `json:"os"`
	Kernel       string `json:"kernel,omitempty"`
	GoVersion    string `json:"go_version"`
	RedisVersion string `json:"redis_version"`
	Commit       string `json:"commit,omitempty"`
	// BackgroundBusyCores is how busy the machine was, in cores, during
	// one second before the run started: other work skews every figure.
	BackgroundBusyCores float64 `json:"background_busy_cores"`
	Date                string  `json:"date"`
}

func describeMachine(ctx context.Context) machine {
	m := machine{
		NProc:     runtime.NumCPU(),
		CPUModel:  cpuModel(),
		OS:        runtime.GOOS + "/" + runtime.GOARCH,
		GoVersion: runtime.Version(),
		Date:      time.Now().UTC().Format(time.RFC3339),
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if kb := procField("/proc/meminfo", "MemTotal"); kb > 0 {
		m.MemTotalMB = int(kb / 1024)
	}
	if out, err := exec.CommandContext(ctx, "redis-server", "--version").Output(); err == nil {
		for _, f := range strings.Fields(string(out)) {
			if v, ok := strings.CutPrefix(f, "v="); ok {
				m.RedisVersion = v
			}
		}
	}
	b0, _ := machineCPU()
	t0 := time.Now()
	time.Sleep(time.Second)
	b1, _ := machineCPU()
	m.BackgroundBusyCores = (b1 - b0) / time.Since(t0).Seconds()
	// Best effort: which code was measured (dirty = uncommitted changes).
	if out, err := exec.CommandContext(ctx, "git", "describe", "--always", "--dirty").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
	}
	return m
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// procField reads a "Key:   123 kB" line of a /proc status-style file and
// returns the number (kB for memory fields), or -1.
func procField(path, key string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != key {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			return -1
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return -1
		}
		return n
	}
	return -1
}

// MarshalJSON writes durations as strings ("10ms") rather than
// nanoseconds.
func (c config) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]any{
		"quick":               c.Quick,
		"only":                c.Only,
		"pagesend_binary":     c.Pagesend,
		"throughput_messages": c.ThroughputN,
		"throughput_repeat":   c.Repeat,
		"concurrency":         c.Concurrency,
		"poll_interval":       c.Poll.String(),
		"fleet_messages":      c.FleetN,
		"fleet_workers":       c.FleetWorkers,
		"fleet_rate":          c.FleetRate,
		"hot_messages":        c.HotN,
		"hot_rate":            c.HotRate,
		"cold_messages":       c.ColdN,
		"cold_rate":           c.ColdRate,
		"cold_delay":          c.ColdDelay.String(),
		"latency_duration":    c.LatencyDuration.String(),
		"latency_poll":        c.LatencyPoll.String(),
		"latency_rate":        c.LatencyRate,
		"memory_jobs":         c.MemJobs,
		"rss_duration":        c.RSSDuration.String(),
		"rss_page_rate":       c.RSSRate,
	})
}
