// Command pagesend-bench is pagesend's load harness. It starts a private
// redis-server (never 6379) and the graphtest fake Graph API on loopback,
// drives the real service through six scenarios, prints a table of every
// figure next to its target, and writes them to a JSON file:
//
//	(a) throughput: N messages end to end through app.NewService, next to a
//	    bare asynq server with a no-op handler on the same Redis;
//	(b) fleet precision: several `pagesend worker` processes sharing one
//	    Page's rate limit;
//	(c) isolation: a cold Page's latency next to a hot Page's backlog, and
//	    alone;
//	(d) latency: enqueue → Graph call at about half of (a)'s throughput;
//	(e) memory: worker peak RSS with a 100k backlog, and Redis bytes per
//	    queued job;
//	(f) order: 2,000 messages to 20 recipients through three worker
//	    processes with 5xx and 613 faults, ordered and unordered: order
//	    violations and throughput.
//
// Every figure is measured; nothing is hard-coded. A missed target is
// printed as missed. `make bench` runs it; -quick is a small smoke run (the
// package's test uses it).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// config is every size and setting the scenarios use.
type config struct {
	Quick    bool
	Pagesend string
	Only     string

	// (a)
	ThroughputN int
	Repeat      int
	Concurrency int
	Poll        time.Duration

	// (b)
	FleetN       int
	FleetWorkers int
	FleetRate    float64

	// (c)
	HotN      int
	HotRate   float64
	ColdN     int
	ColdRate  float64
	ColdDelay time.Duration

	// (d)
	LatencyDuration time.Duration
	LatencyPoll     time.Duration
	LatencyRate     float64 // 0: half of (a)

	// (e)
	MemJobs     int
	RSSDuration time.Duration
	RSSRate     float64

	// (f)
	OrderN          int
	OrderRecipients int
	OrderWorkers    int
	OrderLatency    time.Duration

	CPUProfile string
	Verbose    bool
}

func defaultConfig() config {
	return config{
		Pagesend:        "bin/pagesend",
		ThroughputN:     20000,
		Repeat:          3,
		Concurrency:     50,
		Poll:            10 * time.Millisecond,
		FleetN:          1500,
		FleetWorkers:    3,
		FleetRate:       50,
		HotN:            10000,
		HotRate:         20,
		ColdN:           200,
		ColdRate:        100,
		ColdDelay:       time.Second,
		LatencyDuration: 10 * time.Second,
		LatencyPoll:     10 * time.Millisecond,
		MemJobs:         100000,
		RSSDuration:     8 * time.Second,
		RSSRate:         1000,
		OrderN:          2000,
		OrderRecipients: 20,
		OrderWorkers:    3,
		OrderLatency:    20 * time.Millisecond,
	}
}

// quickSizes shrinks every scenario to a smoke run of a few seconds.
func (c *config) quickSizes() {
	c.ThroughputN = 600
	c.Repeat = 1
	c.FleetN = 75
	c.HotN = 400
	c.ColdN = 20
	c.ColdDelay = 300 * time.Millisecond
	c.LatencyDuration = time.Second
	c.MemJobs = 2000
	c.RSSDuration = 1500 * time.Millisecond
	c.OrderN = 200
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "pagesend-bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := defaultConfig()
	// -quick shrinks the defaults before the flags are defined, so size
	// flags given with it still win.
	for _, a := range args {
		switch a {
		case "-quick", "--quick", "-quick=true", "--quick=true":
			cfg.quickSizes()
		}
	}
	fs := flag.NewFlagSet("pagesend-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "write the results as JSON to this file (e.g. bench/results.json)")
	fs.BoolVar(&cfg.Quick, "quick", false, "small sizes: a smoke run of a few seconds (size flags still apply)")
	fs.StringVar(&cfg.Pagesend, "pagesend", cfg.Pagesend, "the pagesend binary that (b) and (e) run as worker processes")
	fs.StringVar(&cfg.Only, "only", "", "comma-separated scenarios to run (a,b,c,d,e,f); empty: all")
	fs.IntVar(&cfg.ThroughputN, "throughput-n", cfg.ThroughputN, "(a) messages")
	fs.IntVar(&cfg.Repeat, "repeat", cfg.Repeat, "(a) runs of each kind; the median is reported")
	fs.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "(a, d) worker concurrency, also the bare asynq server's")
	fs.DurationVar(&cfg.Poll, "poll", cfg.Poll, "(a) worker PollInterval (asynq TaskCheckInterval)")
	fs.IntVar(&cfg.FleetN, "fleet-n", cfg.FleetN, "(b) messages")
	fs.IntVar(&cfg.FleetWorkers, "fleet-workers", cfg.FleetWorkers, "(b) worker processes")
	fs.Float64Var(&cfg.FleetRate, "fleet-rate", cfg.FleetRate, "(b) the Page's rate, msgs/s (burst 1)")
	fs.IntVar(&cfg.HotN, "hot-n", cfg.HotN, "(c) hot Page backlog")
	fs.Float64Var(&cfg.HotRate, "hot-rate", cfg.HotRate, "(c) hot Page rate (burst = rate)")
	fs.IntVar(&cfg.ColdN, "cold-n", cfg.ColdN, "(c) cold Page messages")
	fs.Float64Var(&cfg.ColdRate, "cold-rate", cfg.ColdRate, "(c) cold Page rate and enqueue pace (burst = rate)")
	fs.DurationVar(&cfg.ColdDelay, "cold-delay", cfg.ColdDelay, "(c) how long after the worker starts on the hot backlog the cold messages begin")
	fs.DurationVar(&cfg.LatencyDuration, "latency-duration", cfg.LatencyDuration, "(d) how long to enqueue at the paced rate")
	fs.DurationVar(&cfg.LatencyPoll, "latency-poll", cfg.LatencyPoll, "(d) worker PollInterval")
	fs.Float64Var(&cfg.LatencyRate, "latency-rate", 0, "(d) paced enqueue rate, msgs/s (0: half of (a)'s measured throughput)")
	fs.IntVar(&cfg.MemJobs, "mem-jobs", cfg.MemJobs, "(e) jobs queued")
	fs.DurationVar(&cfg.RSSDuration, "rss-duration", cfg.RSSDuration, "(e) how long the worker process consumes the backlog")
	fs.Float64Var(&cfg.RSSRate, "rss-rate", cfg.RSSRate, "(e) the Page's rate while the worker consumes the backlog")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write a CPU profile of (a)'s service run to this file")
	fs.BoolVar(&cfg.Verbose, "v", false, "log progress and the workers' warnings")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}

	lvl := slog.LevelWarn
	if cfg.Verbose {
		lvl = slog.LevelInfo
	}
	b := &bench{
		cfg:    cfg,
		stdout: stdout,
		stderr: stderr,
		log:    slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl})),
		quiet:  slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	}
	if cfg.Verbose {
		b.quiet = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	res, err := b.runAll(ctx)
	if res != nil {
		printTable(stdout, res)
		if *out != "" {
			if werr := writeJSON(*out, res); werr != nil {
				return errors.Join(err, werr)
			}
			fmt.Fprintf(stdout, "\nwrote %s\n", *out)
		}
	}
	return err
}

// selected reports whether scenario s ("a".."e") is to run.
func (c *config) selected(s string) bool {
	if c.Only == "" {
		return true
	}
	for _, o := range strings.Split(c.Only, ",") {
		if strings.TrimSpace(o) == s {
			return true
		}
	}
	return false
}
