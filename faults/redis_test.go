//go:build faults

package faults

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Scenario 2: kill -9 the Redis server (AOF, appendfsync everysec) while
// the worker is sending, keep it down until the worker's /readyz says 503,
// then restart it on the same port and directory. The worker is not
// restarted: it must reconnect by itself, /readyz must come back to 200,
// and every job enqueued before the last fsync must be delivered. All jobs
// are enqueued before the kill and the AOF is given its fsync first, so
// that is every job.
func TestRedisRestart(t *testing.T) {
	t.Parallel()
	const (
		n           = 2000
		concurrency = 20
	)
	row, record := scenario(t, "2", "kill -9 Redis (AOF) mid-load, restart")
	defer record()

	p := page{ID: "2002", Token: "EAAfaultsRedis", Rate: 5000}
	r := newRig(t, rigOptions{Pages: []page{p}, Latency: 50 * time.Millisecond, AppendOnly: true})
	js := jobs(p, 200000, n)
	rcpts := recipients(js)
	row.Sent = len(r.enqueue(js))
	enqueued := time.Now()

	// appendfsync everysec: what was acknowledged is on disk once a second
	// has passed and no fsync is pending. (A kill -9 of the process alone
	// loses nothing written to the kernel; the wait covers what the brief
	// promises — jobs acknowledged before the last fsync.)
	rdb := r.redis.Client(t)
	fsynced := waitUntil(10*time.Second, func() bool {
		if time.Since(enqueued) < 1100*time.Millisecond {
			return false
		}
		info, err := rdb.Info(context.Background(), "persistence").Result()
		return err == nil && strings.Contains(info, "aof_enabled:1") &&
			strings.Contains(info, "aof_pending_bio_fsync:0") && strings.Contains(info, "aof_buffer_length:0")
	})
	if !fsynced {
		t.Fatal("the AOF never reported its fsync done")
	}

	w := r.startWorker("w", "PAGESEND_CONCURRENCY="+strconv.Itoa(concurrency))
	rw := watchReady(w)
	defer rw.close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := r.fake.WaitCalls(ctx, 500); err != nil {
		t.Fatalf("load never reached 500 calls: %v", err)
	}
	if err := r.redis.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	callsAtKill := r.fake.CallCount()
	down, ok := rw.waitFor(http.StatusServiceUnavailable, 15*time.Second)
	if !ok {
		t.Fatalf("/readyz never answered 503 with Redis down: %v", rw.history())
	}
	notReadyAfter := down.At.Sub(killed)
	if !w.alive() {
		t.Fatalf("the worker exited when Redis went away:\n%s", w.logTail(30))
	}
	if err := r.redis.Restart(); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	restored, err := r.queues()
	if err != nil {
		t.Fatalf("queue state after restart: %v", err)
	}
	up, ok := rw.waitFor(http.StatusOK, 30*time.Second)
	if !ok {
		t.Fatalf("/readyz did not come back to 200 after the restart: %v", rw.history())
	}
	q, settled := r.waitSettled(n, rcpts, 150*time.Second)
	tl := r.tally()
	row.Delivered, row.Duplicated = tl.count(rcpts)
	row.DeadLettered = q.Archived
	row.Lost = row.Sent - row.Delivered

	row.note("killed after %d calls; down %v", callsAtKill, restarted.Sub(killed).Round(100*time.Millisecond))
	row.note("AOF restored %d of %d tasks", restored.open()+restored.Completed+restored.Archived, n)
	row.note("/readyz 503 %v after the kill (%q), 200 %v after the restart", notReadyAfter.Round(100*time.Millisecond),
		down.Body, up.At.Sub(restarted).Round(100*time.Millisecond))
	row.note("worker not restarted (alive=%v); all done %v after the restart", w.alive(), time.Since(restarted).Round(time.Second))
	row.note("worker log: %d sent-records not written (%d of them after Redis was back), %d acks failed and left to asynq's syncer",
		w.logCount("could not record the send"), w.logCountSince("could not record the send", restarted), w.logCount("Will retry syncing"))
	if !settled {
		t.Errorf("not settled 150s after the restart: %v; no success for %v", q, tl.missing(rcpts))
	}
	if got := restored.open() + restored.Completed + restored.Archived; got != n {
		t.Errorf("after the restart Redis holds %d tasks, want %d: %v", got, n, restored)
	}
	if row.Duplicated > concurrency {
		t.Errorf("%d duplicates, more than the %d sends that can be in flight", row.Duplicated, concurrency)
	}
	if q.Archived > 0 {
		t.Errorf("%d tasks dead-lettered; none should be", q.Archived)
	}
	if !w.alive() {
		t.Errorf("the worker exited:\n%s", w.logTail(30))
	}
}
