//go:build faults

package faults

import (
	"context"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/pagesend/pagesend/enqueue"
	"github.com/pagesend/pagesend/graphapi"
	"github.com/pagesend/pagesend/graphapi/graphtest"
)

// Scenario 1c: ordered conversations through a SIGKILL and Graph faults.
// 20 recipients × 50 messages each, numbered in enqueue order; HTML 503s
// and 613s on random calls; the worker is killed mid-load and restarted.
// Every message must be delivered, and to each recipient no message may
// arrive after a later one — a duplicate of message k (its call was in
// flight at the kill) is allowed only before message k+1.
func TestOrderedSIGKILL(t *testing.T) {
	t.Parallel()
	const (
		recipients = 20
		each       = 50
		n          = recipients * each
		killAt     = 300
	)
	row, record := scenario(t, "1c", "SIGKILL worker, ordered conversations")
	defer record()

	p := page{ID: "1003", Token: "EAAfaultsOrder", Rate: 5000}
	r := newRig(t, rigOptions{Pages: []page{p}, Latency: 20 * time.Millisecond})
	rng := rand.New(rand.NewPCG(3, 4))
	faults := 0
	for c := 1; c <= 3*n; c++ {
		switch x := rng.IntN(100); {
		case x < 5:
			r.fake.ScriptCall(c, graphtest.Raw(503, "text/html", "<html>busy</html>"))
			faults++
		case x == 5:
			r.fake.ScriptCall(c, graphtest.Fail(613, 0).WithRegain(0.01)) // pause ~1 s
			faults++
		}
	}
	var js []enqueue.Job
	for i := range each {
		for rc := range recipients {
			js = append(js, enqueue.Job{PageID: p.ID, Request: &graphapi.Request{
				Recipient:     &graphapi.Recipient{ID: strconv.Itoa(500 + rc)},
				MessagingType: "UPDATE",
				Message:       &graphapi.Message{Text: strconv.Itoa(i)},
			}})
		}
	}
	row.Sent = len(r.enqueue(js))

	w1 := r.startWorker("w1", "PAGESEND_CONCURRENCY=50")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := r.fake.WaitCalls(ctx, killAt); err != nil {
		t.Fatalf("load never reached %d calls: %v; worker log:\n%s", killAt, err, w1.logTail(40))
	}
	w1.kill()
	killed := time.Now()
	leased := r.activeTasks()
	r.startWorker("w2", "PAGESEND_CONCURRENCY=50")

	// Settled: no task open, and every (recipient, number) delivered.
	var q queueState
	settled := waitUntil(240*time.Second, func() bool {
		var err error
		q, err = r.queues()
		return err == nil && q.open() == 0 && q.Completed+q.Archived >= n
	})
	took := time.Since(killed)

	seen := map[string]map[int]int{} // recipient → message → successes
	last := map[string]int{}         // recipient → highest message delivered so far
	violations := 0
	for _, c := range r.fake.Calls() {
		if c.Status != 200 || c.Request == nil || c.Request.Message == nil {
			continue
		}
		k, _ := strconv.Atoi(c.Request.Message.Text)
		if seen[c.Recipient] == nil {
			seen[c.Recipient], last[c.Recipient] = map[int]int{}, -1
		}
		if k < last[c.Recipient] {
			violations++
		}
		last[c.Recipient] = max(last[c.Recipient], k)
		seen[c.Recipient][k]++
	}
	for _, m := range seen {
		for _, times := range m {
			row.Delivered++
			row.Duplicated += times - 1
		}
	}
	row.DeadLettered = q.Archived
	row.Lost = row.Sent - row.Delivered
	row.note("%d recipients × %d messages; %d faults scripted (5%% HTML 503, 1%% 613)", recipients, each, faults)
	row.note("killed after %d calls with %d tasks leased; all done %v after the kill", killAt, leased, took.Round(time.Second))
	row.note("order violations: %d", violations)
	if !settled {
		t.Errorf("not settled 240s after the kill: %v", q)
	}
	if violations != 0 {
		t.Errorf("%d deliveries arrived after a later message to the same recipient", violations)
	}
	if q.Archived > 0 {
		t.Errorf("%d tasks dead-lettered; none should be", q.Archived)
	}
}
