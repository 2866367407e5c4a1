//go:build faults

package faults

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pagesend/pagesend/graphapi/graphtest"
	"github.com/pagesend/pagesend/ratelimit"
)

// Scenario 3a: Graph faults from the fake, one subset of jobs per fault,
// each answered the fault first and success after: hangs past the client
// timeout (PAGESEND_GRAPH_TIMEOUT=1s), connection resets, HTML 5xx pages,
// 429 with Retry-After, and slow bodies past the timeout must all be
// retried and delivered. A 2xx with truncated JSON is dead-lettered by
// design (most likely delivered: a person decides) and must be in the
// archive.
func TestGraphFaults(t *testing.T) {
	t.Parallel()
	row, record := scenario(t, "3a", "Graph faults (timeout 1s)")
	defer record()

	p := page{ID: "3003", Token: "EAAfaultsGraph", Rate: 5000}
	r := newRig(t, rigOptions{Pages: []page{p}, Latency: 20 * time.Millisecond})
	const (
		n         = 200
		per       = 10 // jobs per retried fault
		truncated = 5
	)
	faults := []struct {
		name   string
		answer graphtest.Answer
	}{
		{"hang", graphtest.Hang()},
		{"reset", graphtest.Reset()},
		{"HTML 502", graphtest.Raw(http.StatusBadGateway, "text/html", "<html><body><h1>502 Bad Gateway</h1></body></html>")},
		{"HTML 503", graphtest.Raw(http.StatusServiceUnavailable, "text/html; charset=utf-8", "<!DOCTYPE html><html><title>Service Unavailable</title></html>")},
		{"HTML 500", graphtest.Raw(http.StatusInternalServerError, "text/html", "<html>Internal Server Error</html>")},
		{"429 Retry-After 1s", graphtest.TooManyRequests(time.Second)},
		{"slow body 3s", graphtest.SlowBody(3 * time.Second)},
	}
	js := jobs(p, 300000, n)
	rcpts := recipients(js)
	byFault := map[string][]string{}
	next := 0
	for _, f := range faults {
		for range per {
			rc := rcpts[next]
			next++
			r.fake.ScriptRecipient(rc, f.answer)
			byFault[f.name] = append(byFault[f.name], rc)
		}
	}
	garbled := rcpts[next : next+truncated]
	for _, rc := range garbled {
		r.fake.ScriptRecipient(rc, graphtest.Raw(http.StatusOK, "application/json; charset=UTF-8", `{"recipient_id":"`+rc+`","message_id":"m_tru`))
	}
	ids := r.enqueue(js)
	row.Sent = len(ids)
	garbledIDs := ids[next : next+truncated]
	deliverable := slices.Concat(rcpts[:next], rcpts[next+truncated:])

	r.startWorker("w", "PAGESEND_GRAPH_TIMEOUT=1s")
	q, settled := r.waitSettled(n, deliverable, 150*time.Second)
	tl := r.tally()
	row.Delivered, row.Duplicated = tl.count(rcpts)
	archive := r.archived()
	for i, id := range garbledIDs {
		if _, ok := archive[id]; ok {
			row.DeadLettered++
			if tl.ok[garbled[i]] > 0 {
				t.Errorf("dead-lettered job %s was also sent with success", garbled[i])
			}
		} else {
			t.Errorf("job %s (truncated 2xx) is not in the archive", garbled[i])
		}
	}
	row.Lost = row.Sent - row.Delivered - row.DeadLettered
	if !settled {
		t.Errorf("not settled in 150s: %v; no success for %v", q, tl.missing(deliverable))
	}
	if q.Archived != truncated {
		t.Errorf("%d tasks archived, want the %d truncated 2xx only: %v", q.Archived, truncated, archive)
	}

	// Per fault: retried how many times, after how long.
	calls := r.fake.Calls()
	times := map[string][]time.Time{}
	for _, c := range calls {
		times[c.Recipient] = append(times[c.Recipient], c.Time)
	}
	for _, f := range faults {
		var gaps []time.Duration
		delivered, extra := 0, 0
		for _, rc := range byFault[f.name] {
			if tl.ok[rc] > 0 {
				delivered++
				extra += tl.ok[rc] - 1
			}
			if ts := times[rc]; len(ts) >= 2 {
				gaps = append(gaps, ts[1].Sub(ts[0]))
			}
			if tl.calls[rc] != 2 {
				t.Logf("%s: recipient %s got %d calls, want 2 (fault, then success)", f.name, rc, tl.calls[rc])
			}
		}
		slices.Sort(gaps)
		s := fmt.Sprintf("%s %d/%d delivered", f.name, delivered, len(byFault[f.name]))
		if len(gaps) > 0 {
			s += fmt.Sprintf(", retried after %v–%v", gaps[0].Round(100*time.Millisecond), gaps[len(gaps)-1].Round(100*time.Millisecond))
		}
		if extra > 0 {
			s += fmt.Sprintf(", %d sent twice (success decided, answer past the timeout: may be delivered, by design)", extra)
		}
		row.note("%s", s)
		if delivered != len(byFault[f.name]) {
			t.Errorf("%s: %d of %d delivered", f.name, delivered, len(byFault[f.name]))
		}
		if extra > 0 && f.name != "slow body 3s" {
			t.Errorf("%s: %d duplicate sends", f.name, extra)
		}
	}
	row.note("truncated 2xx: %d/%d dead-lettered (by design), in the archive", row.DeadLettered, truncated)
}

// Scenario 3b: a throttling storm. The first calls to a Page are answered
// 613 (several at once, as a busy Page's in-flight calls would be): the
// Page must be paused for every worker (Pauses.Get shows it), no call for
// it may be made while the pause lasts, and after it every job must be
// delivered.
func TestThrottleStorm(t *testing.T) {
	t.Parallel()
	row, record := scenario(t, "3b", "throttling storm (613s)")
	defer record()

	const (
		n      = 300
		storm  = 3
		grace  = 250 * time.Millisecond // a send that passed the pause check just before the pause was written
		settle = 7 * time.Minute
	)
	p := page{ID: "3004", Token: "EAAfaultsStorm", Rate: 5000}
	r := newRig(t, rigOptions{Pages: []page{p}, Latency: 50 * time.Millisecond})
	for range storm {
		r.fake.ScriptPage(p.ID, graphtest.Fail(613, 0))
	}
	js := jobs(p, 400000, n)
	rcpts := recipients(js)
	row.Sent = len(r.enqueue(js))

	// Watch the pause from outside, as an operator would.
	pauses := ratelimit.NewPauses(r.redis.Client(t), "")
	var (
		mu       sync.Mutex
		since    time.Time
		until    time.Time
		reasons  = map[ratelimit.Reason]bool{}
		observed int
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		for ctx.Err() == nil {
			if pa, err := pauses.Get(ctx, p.ID); err == nil && pa != nil {
				mu.Lock()
				observed++
				reasons[pa.Reason] = true
				if since.IsZero() || pa.Since.Before(since) {
					since = pa.Since
				}
				if pa.Until.After(until) {
					until = pa.Until
				}
				mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()

	start := time.Now()
	r.startWorker("w")
	if !waitUntil(30*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return observed > 0 }) {
		t.Fatalf("the Page was never paused after %d 613s", storm)
	}
	q, settled := r.waitSettled(n, rcpts, settle)
	cancel()
	<-watching
	tl := r.tally()
	row.Delivered, row.Duplicated = tl.count(rcpts)
	row.DeadLettered = q.Archived
	row.Lost = row.Sent - row.Delivered

	var throttled, inPause, raced int
	var firstAfter time.Time
	for _, c := range r.fake.CallsFor(p.ID) {
		if c.Status == http.StatusBadRequest {
			throttled++
		}
		switch {
		case c.Time.Before(since):
		case c.Time.Before(since.Add(grace)):
			raced++
		case c.Time.Before(until):
			inPause++
		default:
			if firstAfter.IsZero() {
				firstAfter = c.Time
			}
		}
	}
	var rs []string
	for k := range reasons {
		rs = append(rs, string(k))
	}
	slices.Sort(rs)
	row.note("%d×613 → Page paused (%s) for %v (Pauses.Get)", throttled, strings.Join(rs, ","), until.Sub(since).Round(time.Second))
	row.note("calls while paused: %d (+%d within %v of the pause start: sends that had passed the pause check)", inPause, raced, grace)
	if !firstAfter.IsZero() {
		row.note("first call %v after the pause ended", firstAfter.Sub(until).Round(100*time.Millisecond))
	}
	row.note("all delivered %v after the start", time.Since(start).Round(time.Second))
	if throttled != storm {
		t.Errorf("%d calls answered 613, want %d", throttled, storm)
	}
	if !reasons[ratelimit.ReasonThrottled] {
		t.Errorf("pause reasons %v, want %q", rs, ratelimit.ReasonThrottled)
	}
	if inPause > 0 {
		t.Errorf("%d calls for the Page while it was paused (%v – %v)", inPause, since.Add(grace).Format(time.StampMilli), until.Format(time.StampMilli))
	}
	if !settled {
		t.Errorf("not settled %v after the start: %v; no success for %v", settle, q, tl.missing(rcpts))
	}
	if q.Archived > 0 {
		t.Errorf("%d tasks dead-lettered; none should be", q.Archived)
	}
}
