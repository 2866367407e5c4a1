package demo_test

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/pagesend/pagesend/internal/demo"
)

// Example is `pagesend demo --duration 30s`: the summary prints after a
// few seconds, the ops server stays up until 30 s have passed or Ctrl-C.
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	sum, err := demo.Run(ctx, demo.Options{Duration: 30 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
	if sum.Mismatches > 0 {
		os.Exit(1)
	}
}
