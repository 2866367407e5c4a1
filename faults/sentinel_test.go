//go:build faults

package faults

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/pagesend/pagesend/enqueue"
	"github.com/pagesend/pagesend/graphapi/graphtest"
	"github.com/pagesend/pagesend/internal/redisopt"
	"github.com/pagesend/pagesend/internal/redistest"
)

// Scenario 5: kill -9 the Redis primary of a Sentinel group (one primary,
// one replica, three sentinels, quorum 2, down-after 1 s) while two
// `pagesend worker` processes deliver, connected with
// PAGESEND_REDIS_URL=redis-sentinel://…/2?master=pagesend (database 2, which
// asynq's own parser would lose). The old primary stays dead. Workers and
// producers are not restarted: they must find the new primary through the
// sentinels by themselves.
//
// Redis replicates asynchronously, so a write the primary acknowledged in
// the instant before it died may never reach the replica. The scenario
// measures that window: it samples the primary's and the replica's
// replication offsets until the kill, and the last moment the replica was
// seen holding everything the primary had by then ("caught up at") bounds
// what may be lost. A job acknowledged before that moment and never
// delivered is lost and fails the scenario; one acknowledged after it and
// never delivered is counted, and noted, as lost in the replication window.
//
// 5a enqueues every job before the workers start; 5b keeps enqueueing
// through the failover, each job with an idempotency key so that retrying
// an enqueue whose answer was lost is safe.

const sentinelDB = 2

func TestSentinelFailover(t *testing.T) {
	t.Parallel()
	runSentinel(t, "5a", "kill -9 Sentinel primary mid-load", false)
}

func TestSentinelFailoverWhileEnqueueing(t *testing.T) {
	t.Parallel()
	runSentinel(t, "5b", "kill -9 Sentinel primary mid-load and mid-enqueue", true)
}

func runSentinel(t *testing.T, id, name string, produce bool) {
	const (
		preload     = 3000 // enqueued before the workers start
		produced    = 3000 // 5b: enqueued while they run, at produceRate
		produceRate = 300  // jobs per second
		workers     = 2
		concurrency = 25
		killAtCalls = 1000
	)
	row, record := scenario(t, id, name)
	defer record()

	p := page{ID: "5005", Token: "EAAfaultsSentinel", Rate: 5000}
	if produce {
		p = page{ID: "5006", Token: "EAAfaultsSentinelEnq", Rate: 5000}
	}
	r := newSentinelRig(t, []page{p}, 30*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()

	var js []enqueue.Job
	for i, j := range jobs(p, 600000, preload+produced) {
		j.IdempotencyKey = fmt.Sprintf("%s-%d", id, i)
		js = append(js, j)
	}
	if !produce {
		js = js[:preload]
	}
	prod := newProducer(r.opt, js)
	defer prod.close()
	if err := prod.enqueueAll(ctx, 0, preload); err != nil {
		t.Fatalf("preload: %v", err)
	}

	env := []string{"PAGESEND_REDIS_URL=" + r.url, "PAGESEND_CONCURRENCY=" + strconv.Itoa(concurrency)}
	var ws []*workerProc
	for i := range workers {
		ws = append(ws, r.startWorker(fmt.Sprintf("w%d", i+1), env...))
	}
	rw := watchReady(ws[0])
	defer rw.close()

	prodDone := make(chan error, 1)
	if produce {
		go func() { prodDone <- prod.enqueuePaced(ctx, preload, len(js), produceRate) }()
	} else {
		prodDone <- nil
	}
	if err := r.fake.WaitCalls(ctx, killAtCalls); err != nil {
		t.Fatalf("load never reached %d calls: %v", killAtCalls, err)
	}
	if produce && !waitUntil(60*time.Second, func() bool { return prod.ackedCount() >= preload+produced/4 }) {
		t.Fatalf("the producer acknowledged only %d jobs", prod.ackedCount())
	}

	f := r.killPrimary(ctx)
	if err := <-prodDone; err != nil {
		t.Errorf("producer: %v", err)
	}
	st := r.settle(f.killed)
	a := account(js, prod.acknowledged(), r.tally(), f)
	row.Sent = len(a.rcpts)
	row.Delivered, row.Duplicated = a.tl.count(a.rcpts)
	row.DeadLettered = st.q.Archived
	row.Lost = len(a.outside)

	row.note("acknowledged before the kill: %d", a.before)
	if produce {
		row.note("enqueue through the failover: %d acknowledged after the kill, %d errors retried, longest wait for an acknowledgement %v",
			len(a.rcpts)-a.before, prod.errs.Load(), prod.longestGap(f.killed).Round(10*time.Millisecond))
	}
	row.note("killed after %d calls", f.callsAtKill)
	row.note("new primary %v after the kill, delivery resumed %v after the kill", f.promoted.Round(10*time.Millisecond), f.resumedAt.Sub(f.killed).Round(10*time.Millisecond))
	row.note("replication window: the replica held everything acknowledged up to %v before the kill (%d bytes behind at the last sample); lost in that window: %d (not counted as lost)",
		f.killed.Sub(f.caughtUp).Round(time.Millisecond), f.lagBytes, len(a.inWindow))
	row.note("all done %v after the kill; 30s after it %d tasks were still open (%v), waiting for lease recovery", st.allDone.Round(time.Second), st.at30.open(), st.at30)
	alive := 0
	for _, w := range ws {
		if w.alive() {
			alive++
		}
	}
	row.note("%d of %d workers alive, none restarted; %s", alive, workers, readySummary(rw.history(), f.killed))
	row.note("worker logs: %d sent-records not written, %d acks left to asynq's syncer",
		sumLogs(ws, "could not record the send"), sumLogs(ws, "Will retry syncing"))

	if !st.settled {
		t.Errorf("not settled 200s after the failover: %v (%v)", st.q, st.err)
	}
	if len(a.outside) > 0 {
		t.Errorf("%d jobs acknowledged before the replica caught up were never delivered, e.g. %v", len(a.outside), a.outside[:min(10, len(a.outside))])
	}
	if st.q.Archived > 0 {
		t.Errorf("%d tasks dead-lettered; none should be", st.q.Archived)
	}
	if alive != workers {
		t.Errorf("%d of %d workers exited", workers-alive, workers)
	}
	if row.Duplicated > workers*concurrency {
		t.Errorf("%d duplicates, more than the %d sends that can be in flight", row.Duplicated, workers*concurrency)
	}
	checkDB(t, ctx, f.newPrimary)
}

// failover is what killPrimary measured.
type failover struct {
	killed      time.Time
	callsAtKill int
	caughtUp    time.Time // the replica held everything acknowledged before this
	lagBytes    int64     // the replica's lag at the last sample
	newPrimary  *redistest.Server
	promoted    time.Duration // kill to new primary, found by polling
	resumedAt   time.Time     // first Graph call after the kill
}

// killPrimary takes a last replication sample, kill -9s the primary, and
// waits for the sentinels to promote the replica and for a Graph call.
func (r *sentinelRig) killPrimary(ctx context.Context) failover {
	r.t.Helper()
	old, err := r.g.Primary(ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	var f failover
	f.caughtUp, f.lagBytes = r.repl.stop()
	if err := old.Kill(); err != nil {
		r.t.Fatal(err)
	}
	f.killed = time.Now()
	f.callsAtKill = r.fake.CallCount()

	fctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if f.newPrimary, err = r.g.WaitFailover(fctx, old); err != nil {
		r.t.Fatalf("no failover: %v\n%s", err, r.g.LogTails(30))
	}
	f.promoted = time.Since(f.killed)
	// A call that arrives after the kill passed the rate limiter, in Redis,
	// after it; the 10 ms leave out calls whose check raced the kill.
	if !waitUntil(60*time.Second, func() bool {
		f.resumedAt = firstCallAfter(r.fake, f.killed.Add(10*time.Millisecond))
		return !f.resumedAt.IsZero()
	}) {
		r.t.Fatalf("no call reached the fake in the 60s after the kill")
	}
	return f
}

// settlement is the queues once no task is open any more, or at the
// deadline.
type settlement struct {
	settled bool
	q       queueState
	err     error
	at30    queueState // 30 s after the kill
	allDone time.Duration
}

// settle waits until no task is open. Tasks whose acknowledgement failed
// at the kill stay active until asynq's recoverer finds their lease
// expired: a 30 s lease, 30 s of grace, checked every minute, so up to
// about two minutes. (asynq's syncer, meant to retry the acknowledgement,
// retries with a context that is already cancelled.)
func (r *sentinelRig) settle(killed time.Time) settlement {
	var st settlement
	st.settled = waitUntil(200*time.Second, func() bool {
		q, err := r.queues()
		if time.Since(killed) < 30*time.Second {
			st.at30 = q
		}
		return err == nil && q.open() == 0
	})
	st.allDone = time.Since(killed)
	st.q, st.err = r.queues()
	return st
}

// accounting sorts the acknowledged jobs by fate.
type accounting struct {
	tl       tally
	rcpts    []string // of every acknowledged job
	before   int      // acknowledged before the kill
	inWindow []string // never delivered, acknowledged after the replica was last seen caught up
	outside  []string // never delivered, acknowledged before: lost
}

func account(js []enqueue.Job, acked map[int]time.Time, tl tally, f failover) accounting {
	a := accounting{tl: tl}
	for i, at := range acked {
		rc := js[i].Request.Recipient.ID
		a.rcpts = append(a.rcpts, rc)
		if at.Before(f.killed) {
			a.before++
		}
		switch {
		case tl.ok[rc] > 0:
		case at.After(f.caughtUp):
			a.inWindow = append(a.inWindow, rc)
		default:
			a.outside = append(a.outside, rc)
		}
	}
	return a
}

// checkDB checks that the queues are in database 2 of the new primary,
// and nothing is in database 0: the sentinel URL's database held.
func checkDB(t *testing.T, ctx context.Context, p *redistest.Server) {
	t.Helper()
	for db, want := range map[int]bool{sentinelDB: true, 0: false} {
		c := redis.NewClient(&redis.Options{Addr: p.Addr(), DB: db})
		n, err := c.Exists(ctx, "asynq:queues").Result()
		c.Close()
		if err != nil || (n == 1) != want {
			t.Errorf("asynq:queues in db %d of the new primary: %d, %v; want present=%v", db, n, err, want)
		}
	}
}

// sentinelRig is a rig whose Redis is a Sentinel group.
type sentinelRig struct {
	*rig
	g    *redistest.SentinelGroup
	url  string
	opt  asynq.RedisConnOpt
	repl *replWatch
}

func newSentinelRig(t *testing.T, pages []page, latency time.Duration) *sentinelRig {
	t.Helper()
	g := redistest.StartSentinel(t, redistest.SentinelOptions{})
	url := g.URL(sentinelDB)
	opt, err := redisopt.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	tokens := map[string]string{}
	var entries []string
	for _, p := range pages {
		tokens[p.ID] = p.Token
		entries = append(entries, fmt.Sprintf(`{"id": %q, "access_token_env": %q, "rate": %d, "burst": %d}`, p.ID, p.tokenEnv(), p.Rate, p.Rate))
	}
	fake := graphtest.Start(t, graphtest.Options{Tokens: tokens, Latency: latency})
	pagesFile := filepath.Join(t.TempDir(), "pages.json")
	body := `{"default_rate": 100, "default_burst": 100, "pages": [` + strings.Join(entries, ", ") + `]}`
	if err := os.WriteFile(pagesFile, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	in := asynq.NewInspector(opt)
	t.Cleanup(func() { in.Close() })
	servers := g.Servers()
	repl := watchReplication(servers[0].Addr(), servers[1].Addr())
	t.Cleanup(func() { repl.stop() })
	// rig.redis is the first primary: startWorker's default URL, which
	// the scenario replaces with the sentinel URL.
	r := &rig{t: t, redis: servers[0], fake: fake, pages: pages, pagesFile: pagesFile, in: in}
	return &sentinelRig{rig: r, g: g, url: url, opt: opt, repl: repl}
}

// --- producer ---

// producer enqueues jobs through the sentinels and records when Redis
// acknowledged each one; a failed enqueue is retried (the idempotency key
// makes that safe) until it succeeds or the context ends.
type producer struct {
	c    *enqueue.Client
	jobs []enqueue.Job
	errs atomic.Int64

	mu    sync.Mutex
	acked []time.Time // by job index; zero until acknowledged
}

func newProducer(opt asynq.RedisConnOpt, js []enqueue.Job) *producer {
	return &producer{c: enqueue.NewClient(opt), jobs: js, acked: make([]time.Time, len(js))}
}

func (p *producer) close() { p.c.Close() }

// enqueueAll enqueues jobs [from, to) as fast as 8 goroutines can.
func (p *producer) enqueueAll(ctx context.Context, from, to int) error {
	idx := make(chan int)
	go func() {
		defer close(idx)
		for i := from; i < to; i++ {
			select {
			case idx <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	return p.drain(ctx, idx, 8)
}

// enqueuePaced enqueues jobs [from, to) at rate per second; jobs whose
// turn comes while Redis is away queue up behind the retrying ones.
func (p *producer) enqueuePaced(ctx context.Context, from, to, rate int) error {
	idx := make(chan int, to-from)
	go func() {
		defer close(idx)
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for i := from; i < to; i++ {
			select {
			case <-tick.C:
				idx <- i
			case <-ctx.Done():
				return
			}
		}
	}()
	return p.drain(ctx, idx, 8)
}

func (p *producer) drain(ctx context.Context, idx <-chan int, n int) error {
	var wg sync.WaitGroup
	errs := make([]error, n)
	for g := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				if err := p.enqueueOne(ctx, i); err != nil {
					errs[g] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (p *producer) enqueueOne(ctx context.Context, i int) error {
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := p.c.Enqueue(cctx, p.jobs[i])
		cancel()
		if err == nil {
			p.mu.Lock()
			p.acked[i] = time.Now()
			p.mu.Unlock()
			return nil
		}
		p.errs.Add(1)
		select {
		case <-ctx.Done():
			return fmt.Errorf("job %d never acknowledged: %w (last error: %v)", i, ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (p *producer) ackedCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, at := range p.acked {
		if !at.IsZero() {
			n++
		}
	}
	return n
}

// acknowledged returns the acknowledgement time of every acknowledged job
// by index.
func (p *producer) acknowledged() map[int]time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[int]time.Time{}
	for i, at := range p.acked {
		if !at.IsZero() {
			out[i] = at
		}
	}
	return out
}

// longestGap is the longest time without an acknowledgement from 5 s
// before t until the last one: how long producers waited on the failover.
func (p *producer) longestGap(t time.Time) time.Duration {
	p.mu.Lock()
	var ts []time.Time
	for _, at := range p.acked {
		if !at.IsZero() && at.After(t.Add(-5*time.Second)) {
			ts = append(ts, at)
		}
	}
	p.mu.Unlock()
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	var gap time.Duration
	for i := 1; i < len(ts); i++ {
		gap = max(gap, ts[i].Sub(ts[i-1]))
	}
	return gap
}

// --- replication window ---

// replWatch samples the primary's master_repl_offset and then the
// replica's slave_repl_offset, over and over, until stop.
type replWatch struct {
	primary, replica *redis.Client
	stopOnce         sync.Once
	quit, done       chan struct{}

	mu      sync.Mutex
	samples []replSample
}

type replSample struct {
	at      time.Time // just before the primary was asked
	primary int64
	replica int64 // asked after the primary
}

func watchReplication(primary, replica string) *replWatch {
	w := &replWatch{
		primary: redis.NewClient(&redis.Options{Addr: primary, MaxRetries: -1, ReadTimeout: time.Second}),
		replica: redis.NewClient(&redis.Options{Addr: replica, MaxRetries: -1, ReadTimeout: time.Second}),
		quit:    make(chan struct{}), done: make(chan struct{}),
	}
	go func() {
		defer close(w.done)
		for {
			w.sample()
			select {
			case <-w.quit:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return w
}

func (w *replWatch) sample() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	at := time.Now()
	m, err := replOffset(ctx, w.primary, "master_repl_offset")
	if err != nil {
		return
	}
	x, err := replOffset(ctx, w.replica, "slave_repl_offset")
	if err != nil {
		return
	}
	w.mu.Lock()
	w.samples = append(w.samples, replSample{at, m, x})
	w.mu.Unlock()
}

// stop takes a last sample and stops. It returns the last moment the
// replica was seen to hold everything the primary held then — every write
// acknowledged before it has been replicated — and how many bytes the
// replica was behind at the last sample (0 when it had caught up by the
// time it was asked). The zero time means it was never seen caught up.
func (w *replWatch) stop() (caughtUp time.Time, lag int64) {
	w.stopOnce.Do(func() {
		close(w.quit)
		<-w.done
		w.sample()
		w.primary.Close()
		w.replica.Close()
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.samples) == 0 {
		return time.Time{}, -1
	}
	last := w.samples[len(w.samples)-1]
	// Offsets only grow: sample i is covered if the latest replica
	// offset reaches its primary offset.
	for _, s := range w.samples {
		if s.primary <= last.replica {
			caughtUp = s.at
		}
	}
	return caughtUp, max(0, last.primary-last.replica)
}

func replOffset(ctx context.Context, c *redis.Client, field string) (int64, error) {
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in INFO replication", field)
}

// --- reporting helpers ---

// firstCallAfter returns when the first call after t reached the fake, or
// the zero time.
func firstCallAfter(fake *graphtest.Server, t time.Time) time.Time {
	var first time.Time
	for _, c := range fake.Calls() {
		if c.Time.After(t) && (first.IsZero() || c.Time.Before(first)) {
			first = c.Time
		}
	}
	return first
}

// readySummary says how long /readyz was not 200 after t.
func readySummary(h []readyChange, t time.Time) string {
	var down time.Time
	var spans []string
	for _, c := range h {
		if c.At.Before(t) {
			continue
		}
		switch {
		case c.Status != http.StatusOK && down.IsZero():
			down = c.At
		case c.Status == http.StatusOK && !down.IsZero():
			spans = append(spans, fmt.Sprintf("%v from +%v", c.At.Sub(down).Round(100*time.Millisecond), down.Sub(t).Round(100*time.Millisecond)))
			down = time.Time{}
		}
	}
	if !down.IsZero() {
		spans = append(spans, "still not ready at the end")
	}
	if len(spans) == 0 {
		return "w1 /readyz stayed 200"
	}
	return "w1 /readyz not 200 for " + strings.Join(spans, ", ")
}

func sumLogs(ws []*workerProc, s string) int {
	n := 0
	for _, w := range ws {
		n += w.logCount(s)
	}
	return n
}
