// Package testwait waits in tests for a condition to hold, polling with a
// deadline — the way tests here synchronise with servers, workers and
// processes instead of sleeping a fixed time.
package testwait

import (
	"testing"
	"time"
)

// Interval is how often Until polls.
const Interval = 10 * time.Millisecond

// Until polls cond every Interval until it holds, and fails the test if it
// does not within the given time, naming what it waited for.
func Until(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(Interval)
	}
}
