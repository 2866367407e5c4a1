package ratelimit_test

import (
	"context"
	"fmt"
	"time"

	"github.com/pagesend/pagesend/ratelimit"
)

// A worker reserves a token before each send: it sleeps a short wait, and
// reschedules the task when the wait would be longer than its MaxWait.
func ExampleLocal() {
	limits := func(pageID string) (text, media ratelimit.Limit) {
		return ratelimit.Limit{Rate: 1, Burst: 2}, ratelimit.Limit{Rate: 0.1, Burst: 1}
	}
	l := ratelimit.NewLocal(limits)
	ctx := context.Background()
	const maxWait = 100 * time.Millisecond

	for i := 1; i <= 3; i++ {
		wait, ok, err := l.Reserve(ctx, "1234567890", ratelimit.Text, maxWait)
		if err != nil {
			fmt.Println(err)
			return
		}
		if !ok {
			fmt.Printf("send %d: reschedule in about %v\n", i, wait.Round(time.Second))
			continue
		}
		if err := ratelimit.Sleep(ctx, wait); err != nil {
			return
		}
		fmt.Printf("send %d: now\n", i)
	}
	// Output:
	// send 1: now
	// send 2: now
	// send 3: reschedule in about 1s
}
