package worker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/pagesend/pagesend/enqueue"
	"github.com/pagesend/pagesend/graphapi/graphtest"
	"github.com/pagesend/pagesend/internal/pages"
	"github.com/pagesend/pagesend/worker"
)

// maxInWindow is the most calls in any window of length w.
func maxInWindow(calls []graphtest.Call, w time.Duration) int {
	best := 0
	for i := range calls {
		n := 0
		for j := i; j < len(calls) && calls[j].Time.Sub(calls[i].Time) < w; j++ {
			n++
		}
		best = max(best, n)
	}
	return best
}

// TestTwoWorkersShareThePageRate: two workers, each with its own limiter
// on one Redis, together stay within the Page's bucket.
func TestTwoWorkersShareThePageRate(t *testing.T) {
	const rate = 20
	h := newHarness(t, harnessOptions{fakeTokens: tokens, fleet: true, limit: pages.Limit{Rate: rate, Burst: 1},
		worker: func(o *worker.Options) { o.MaxWait = 200 * time.Millisecond }})
	h.startOtherWorker()
	var infos []enqueue.Info
	for i := range 50 {
		infos = append(infos, h.enqueue(textJob(page, fmt.Sprint(7000+i), "shared rate")))
	}
	for _, info := range infos {
		if ti := h.final(info); ti.State != asynq.TaskStateCompleted {
			t.Fatalf("task %s: %v", info.ID, ti.State)
		}
	}
	calls := h.fake.CallsFor(page)
	// Generous tolerance: the bucket allows 20 in a second (+1 burst);
	// HTTP latency jitter can bunch a few. Two workers each at their own
	// 20/s (the bug this guards against) would show about 40.
	if n := maxInWindow(calls, time.Second); n > rate*5/4+1 {
		t.Fatalf("%d calls in one second from two workers, Page limit %d/s", n, rate)
	}
}

// TestThrottleStopsEveryWorker: after a 613, neither worker calls Meta for
// the Page until the pause has passed.
func TestThrottleStopsEveryWorker(t *testing.T) {
	h := newHarness(t, harnessOptions{fakeTokens: tokens, fleet: true})
	h.startOtherWorker()
	h.fake.ScriptPage(page, graphtest.Fail(613, 0))
	var infos []enqueue.Info
	for i := range 20 {
		infos = append(infos, h.enqueue(textJob(page, fmt.Sprint(8000+i), "throttled")))
	}
	for _, info := range infos {
		h.final(info)
	}
	calls := h.fake.CallsFor(page)
	var throttledAt time.Time
	for _, c := range calls {
		if c.Status == 400 { // the 613
			throttledAt = c.Time
			break
		}
	}
	if throttledAt.IsZero() {
		t.Fatal("no 613 was answered")
	}
	for _, c := range calls {
		// Calls already in flight when the 613 came back are not the
		// pause's to stop; a call starting later must wait it out.
		if c.Time.After(throttledAt.Add(50*time.Millisecond)) && c.Time.Before(throttledAt.Add(h.opts.ThrottlePause)) {
			t.Fatalf("call at +%v during the %v pause", c.Time.Sub(throttledAt), h.opts.ThrottlePause)
		}
	}
}

// TestColdPageNotStuckBehindHotBacklog: a Page with a big backlog and a
// low rate does not hold up another Page's messages.
func TestColdPageNotStuckBehindHotBacklog(t *testing.T) {
	h := newHarness(t, harnessOptions{fakeTokens: tokens, fleet: true, limit: pages.Limit{Rate: 5, Burst: 1},
		worker: func(o *worker.Options) { o.Concurrency = 4; o.MaxWait = 100 * time.Millisecond }})
	var hot []enqueue.Info
	for i := range 200 {
		hot = append(hot, h.enqueue(textJob(page, fmt.Sprint(9000+i), "hot")))
	}
	var cold []enqueue.Info
	for i := range 5 {
		cold = append(cold, h.enqueue(textJob("1002", fmt.Sprint(9500+i), "cold")))
	}
	for _, info := range cold {
		if ti := h.final(info); ti.State != asynq.TaskStateCompleted {
			t.Fatalf("cold task: %v", ti.State)
		}
	}
	done := 0
	for _, info := range hot {
		if ti, err := h.in.GetTaskInfo(info.Queue, info.ID); err == nil && ti.State == asynq.TaskStateCompleted {
			done++
		}
	}
	if done > len(hot)/2 {
		t.Fatalf("%d of %d hot tasks already done: the test did not hold a backlog", done, len(hot))
	}
	t.Logf("cold Page done while %d of %d hot tasks were still waiting", len(hot)-done, len(hot))
}
