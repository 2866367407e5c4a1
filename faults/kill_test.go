//go:build faults

package faults

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// Scenario 1: SIGKILL a worker mid-load, restart it at once (as a
// supervisor would). asynq recovers the killed worker's leased tasks when
// their lease has been expired for 30 s, which its recoverer (every minute)
// notices about 1–2 min after the kill; every job must then be delivered.
// Duplicates are bounded by the tasks Redis held as active at the kill;
// with duplicate suppression they should be bounded by the calls in flight
// at the kill (a call Meta accepted whose answer never reached the worker
// cannot be recorded by anyone).

func TestWorkerSIGKILLNoSuppression(t *testing.T) {
	t.Parallel()
	runKill(t, "1a", false)
}

func TestWorkerSIGKILLSuppression(t *testing.T) {
	t.Parallel()
	runKill(t, "1b", true)
}

func runKill(t *testing.T, id string, suppress bool) {
	const (
		n           = 2000
		concurrency = 50
		killAt      = 600 // calls made when the worker is killed
	)
	name := "SIGKILL worker, suppression off"
	if suppress {
		name = "SIGKILL worker, suppression on"
	}
	row, record := scenario(t, id, name)
	defer record()

	p := page{ID: "1001", Token: "EAAfaultsKill", Rate: 5000}
	r := newRig(t, rigOptions{Pages: []page{p}, Latency: 30 * time.Millisecond})
	proxy := startProxy(t, r.fake.URL())
	js := jobs(p, 100000, n)
	rcpts := recipients(js)
	row.Sent = len(r.enqueue(js))

	env := []string{
		"PAGESEND_GRAPH_URL=" + proxy.url,
		"PAGESEND_CONCURRENCY=" + strconv.Itoa(concurrency),
		"PAGESEND_SUPPRESS_DUPLICATES=" + strconv.FormatBool(suppress),
	}
	w1 := r.startWorker("w1", env...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := r.fake.WaitCalls(ctx, killAt); err != nil {
		t.Fatalf("load never reached %d calls: %v", killAt, err)
	}
	// Calls in flight at the kill: those in flight just before the
	// signal, plus any that started while it landed — an upper bound on
	// the calls whose answer the worker can never have recorded.
	inFlightBefore, startedBefore := proxy.inFlight.Load(), proxy.started.Load()
	w1.kill()
	killed := time.Now()
	inFlight := inFlightBefore + proxy.started.Load() - startedBefore
	waitUntil(5*time.Second, func() bool { return proxy.inFlight.Load() == 0 })
	cutOff := proxy.aborted.Load()
	callsAtKill := r.fake.CallCount()
	leased := r.activeTasks()
	if callsAtKill >= n {
		t.Fatalf("all %d jobs were sent before the kill: the scenario needs more load", n)
	}
	t.Logf("killed after %d calls: %d calls in flight, %d tasks leased", callsAtKill, inFlight, leased)

	w2 := r.startWorker("w2", env...)
	q, settled := r.waitSettled(n, rcpts, 200*time.Second)
	took := time.Since(killed)
	tl := r.tally()
	row.Delivered, row.Duplicated = tl.count(rcpts)
	row.DeadLettered = q.Archived
	row.Lost = row.Sent - row.Delivered
	suppressed := w2.metric("pagesend_duplicates_suppressed_total")

	row.note("killed after %d calls", callsAtKill)
	row.note("in flight at kill: %d calls (started, not answered; %d seen cut off), %d tasks leased (bound: concurrency %d)", inFlight, cutOff, leased, concurrency)
	if suppress {
		row.note("suppressed on redelivery: %.0f", suppressed)
	} else if d := int64(row.Duplicated) - inFlight; d > 0 {
		// Sends answered before the kill but not acknowledged: the ones
		// suppression exists for.
		row.note("duplicates beyond calls in flight (answered, not acknowledged): %d", d)
	}
	row.note("all done %v after the kill", took.Round(time.Second))
	if !settled {
		t.Errorf("not settled 200s after the kill: %v; no success for %v", q, tl.missing(rcpts))
	}
	if q.Archived > 0 {
		t.Errorf("%d tasks dead-lettered; none should be", q.Archived)
	}
	if row.Duplicated > leased {
		t.Errorf("%d duplicates, more than the %d tasks leased at the kill", row.Duplicated, leased)
	}
	if row.Duplicated > concurrency {
		t.Errorf("%d duplicates, more than the worker's concurrency %d", row.Duplicated, concurrency)
	}
	if suppress && int64(row.Duplicated) > inFlight {
		// With the sent-record, only a call in flight at the kill, or
		// answered in the instant before its record was written, may be
		// sent twice.
		row.note("%d duplicates beyond calls in flight: answered just before the kill, record not yet written", int64(row.Duplicated)-inFlight)
	}
	if !suppress && suppressed > 0 {
		t.Errorf("suppression is off but %v sends were suppressed", suppressed)
	}
}
