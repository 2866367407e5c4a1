//go:build faults

package faults

import (
	"context"
	"testing"
	"time"

	"github.com/pagesend/pagesend/graphapi/graphtest"
)

// Scenario 4: SIGTERM a worker under load. Calls in flight must finish
// (none cut off), the process must exit cleanly within
// PAGESEND_SHUTDOWN_TIMEOUT, no task may be left leased (asynq requeues
// what had not started), and a second worker must drain the rest: nothing
// lost, nothing sent twice.
func TestWorkerSIGTERM(t *testing.T) {
	t.Parallel()
	row, record := scenario(t, "4", "SIGTERM worker under load")
	defer record()

	const (
		n        = 2000
		termAt   = 300
		shutdown = 5 * time.Second
	)
	p := page{ID: "4004", Token: "EAAfaultsTerm", Rate: 5000}
	// Calls take 300 ms, so at the signal about 50 are in flight and each
	// needs a visible while to finish.
	r := newRig(t, rigOptions{Pages: []page{p}, Latency: 300 * time.Millisecond})
	proxy := startProxy(t, r.fake.URL())
	js := jobs(p, 500000, n)
	rcpts := recipients(js)
	row.Sent = len(r.enqueue(js))

	env := []string{"PAGESEND_GRAPH_URL=" + proxy.url, "PAGESEND_SHUTDOWN_TIMEOUT=" + shutdown.String()}
	w1 := r.startWorker("w1", env...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := r.fake.WaitCalls(ctx, termAt); err != nil {
		t.Fatalf("load never reached %d calls: %v", termAt, err)
	}
	inFlight, startedAtTerm := proxy.inFlight.Load(), proxy.started.Load()
	took, err := w1.terminate(shutdown + 10*time.Second)
	startedAfterTerm := proxy.started.Load() - startedAtTerm
	aborted := proxy.aborted.Load()
	leased := r.activeTasks()
	callsAtExit := r.fake.CallCount()
	if err != nil {
		t.Errorf("worker exited with %v after SIGTERM\n%s", err, w1.logTail(30))
	}
	if took > shutdown+2*time.Second {
		t.Errorf("exit took %v, shutdown timeout is %v", took, shutdown)
	}
	if aborted > 0 {
		t.Errorf("%d calls were cut off by the shutdown", aborted)
	}
	if leased > 0 {
		t.Errorf("%d tasks left leased after a clean exit: they wait for lease recovery (~1 min)", leased)
	}
	if callsAtExit >= n {
		t.Fatalf("all %d jobs were sent before the exit: the scenario needs more load", n)
	}

	w2 := r.startWorker("w2", env...)
	drainStart := time.Now()
	q, settled := r.waitSettled(n, rcpts, 90*time.Second)
	tl := r.tally()
	row.Delivered, row.Duplicated = tl.count(rcpts)
	row.DeadLettered = q.Archived
	row.Lost = row.Sent - row.Delivered
	row.note("SIGTERM after %d calls with %d in flight; exited in %v (timeout %v), exit error %v", termAt, inFlight, took.Round(10*time.Millisecond), shutdown, err)
	row.note("in-flight calls cut off: %d; calls begun after the signal: %d; tasks left leased: %d", aborted, startedAfterTerm, leased)
	row.note("second worker drained %d jobs in %v", n-callsAtExit, time.Since(drainStart).Round(time.Second))
	if !settled {
		t.Errorf("not settled 90s after the second worker started: %v; no success for %v", q, tl.missing(rcpts))
	}
	if row.Duplicated > 0 {
		t.Errorf("%d duplicate sends after a graceful stop", row.Duplicated)
	}
	if q.Archived > 0 {
		t.Errorf("%d tasks dead-lettered; none should be", q.Archived)
	}
	_, _ = w2.terminate(shutdown + 10*time.Second)
}

// Scenario 4b: SIGTERM while some calls hang longer than the shutdown
// timeout (the Graph timeout is the default 20 s). The process must still
// exit within PAGESEND_SHUTDOWN_TIMEOUT; asynq puts the unfinished tasks
// back, and a second worker delivers them.
func TestWorkerSIGTERMHungCalls(t *testing.T) {
	t.Parallel()
	row, record := scenario(t, "4b", "SIGTERM, calls outlast the timeout")
	defer record()

	const (
		n        = 500
		hung     = 20
		shutdown = 3 * time.Second
	)
	p := page{ID: "4005", Token: "EAAfaultsTermHang", Rate: 5000}
	r := newRig(t, rigOptions{Pages: []page{p}, Latency: 100 * time.Millisecond})
	proxy := startProxy(t, r.fake.URL())
	js := jobs(p, 600000, n)
	rcpts := recipients(js)
	for _, rc := range rcpts[:hung] {
		r.fake.ScriptRecipient(rc, graphtest.Hang())
	}
	row.Sent = len(r.enqueue(js))

	env := []string{"PAGESEND_GRAPH_URL=" + proxy.url, "PAGESEND_SHUTDOWN_TIMEOUT=" + shutdown.String()}
	w1 := r.startWorker("w1", env...)
	hanging := func() int {
		k := 0
		for _, c := range r.fake.Calls() {
			if c.Status == 0 {
				k++
			}
		}
		return k
	}
	if !waitUntil(30*time.Second, func() bool { return hanging() >= hung && r.fake.CallCount() >= 100 }) {
		t.Fatalf("the %d hanging calls never all started (%d did)", hung, hanging())
	}
	inFlight := proxy.inFlight.Load()
	took, err := w1.terminate(shutdown + 10*time.Second)
	leased := r.activeTasks()
	if err != nil {
		t.Errorf("worker exited with %v after SIGTERM\n%s", err, w1.logTail(30))
	}
	if took > shutdown+2*time.Second {
		t.Errorf("exit took %v, shutdown timeout is %v", took, shutdown)
	}
	if leased > 0 {
		t.Errorf("%d tasks left leased: they wait for lease recovery (~1 min)", leased)
	}

	r.startWorker("w2", env...)
	q, settled := r.waitSettled(n, rcpts, 90*time.Second)
	tl := r.tally()
	row.Delivered, row.Duplicated = tl.count(rcpts)
	row.DeadLettered = q.Archived
	row.Lost = row.Sent - row.Delivered
	row.note("SIGTERM with %d calls in flight, %d of them hanging; exited in %v (timeout %v), exit error %v", inFlight, hung, took.Round(10*time.Millisecond), shutdown, err)
	row.note("calls cut off at the timeout: %d; tasks left leased: %d", proxy.aborted.Load(), leased)
	if !settled {
		t.Errorf("not settled 90s after the second worker started: %v; no success for %v", q, tl.missing(rcpts))
	}
	if q.Archived > 0 {
		t.Errorf("%d tasks dead-lettered; none should be", q.Archived)
	}
}
