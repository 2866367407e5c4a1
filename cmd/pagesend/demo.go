package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/pagesend/pagesend/internal/demo"
)

func runDemo(ctx context.Context, args []string, e env) error {
	c := newCommand("demo", "pagesend demo [--duration D] [flags]",
		"Run the whole pipeline with no setup: an embedded Redis (miniredis, which keeps\n"+
			"nothing), a fake Graph API (nothing reaches Facebook), the real worker, and\n"+
			"sample jobs that end sent, retried then sent (613), dropped (551, 10901),\n"+
			"dead-lettered (100), and held by a broken token (190) until it is replaced.\n"+
			"Prints a summary of outcomes, and serves the ops endpoints until the duration\n"+
			"ends or Ctrl-C. Exits 1 if any outcome differs from what was expected.", e.getenv)
	duration := c.fs.Duration("duration", demo.DefaultDuration, "how long the demo runs in all (0: until Ctrl-C)")
	opsAddr := c.str("ops-addr", "PAGESEND_OPS_ADDR", "127.0.0.1:9321", "ops HTTP server address (a free port if busy)")
	verbose := c.fs.Bool("v", false, "show the worker's logs")
	if err := c.parse(args, e.stdout); err != nil {
		return err
	}
	if len(c.args) > 0 {
		return usageErr("demo takes no arguments, got %q", c.args)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if *verbose {
		log = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	sum, err := demo.Run(ctx, demo.Options{Duration: *duration, OpsAddr: *opsAddr, Out: e.stdout, Logger: log})
	if err != nil {
		return err
	}
	if sum.Mismatches > 0 {
		return fmt.Errorf("%d outcome(s) differ from what was expected", sum.Mismatches)
	}
	return nil
}
