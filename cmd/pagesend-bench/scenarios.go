package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"

	"github.com/pagesend/pagesend/enqueue"
	"github.com/pagesend/pagesend/graphapi/graphtest"
	"github.com/pagesend/pagesend/internal/job"
	"github.com/pagesend/pagesend/internal/pages"
	"github.com/pagesend/pagesend/worker"
)

// unlimited is a Page limit nothing in these runs comes near.
var unlimited = pages.Limit{Rate: 1e6, Burst: 1e6}

// ---------------------------------------------------------------- (a)

// throughput runs N messages through a bare asynq server with a no-op
// handler (one queue, then pagesend's three queues), then through the
// pagesend service, on one redis-server flushed between runs; each run
// Repeat times, interleaved, and the median is reported. Every run starts
// with all N tasks pending and is timed from the server's start to its
// N-th handler call (bare) or the fake's N-th call (service).
func (b *bench) throughput(ctx context.Context, r *results) (map[string]any, error) {
	n := b.cfg.ThroughputN
	re, err := startRedis()
	if err != nil {
		return nil, err
	}
	defer re.close()
	client := enqueue.NewClient(re.opt)
	defer client.Close()
	jobs := textJobs(pageThroughput, '1', n)
	d := map[string]any{"messages": n, "concurrency": b.cfg.Concurrency, "poll_interval": b.cfg.Poll.String(), "repeat": b.cfg.Repeat}
	var bare1, bare3, svc, svc1 []tput
	for i := range max(1, b.cfg.Repeat) {
		x, err := b.bareRun(ctx, re, client, jobs, map[string]int{job.QueueDefault: 1})
		if err != nil {
			return d, fmt.Errorf("bare asynq: %w", err)
		}
		bare1 = append(bare1, x)
		if x, err = b.bareRun(ctx, re, client, jobs, job.Queues); err != nil {
			return d, fmt.Errorf("bare asynq, three queues: %w", err)
		}
		bare3 = append(bare3, x)
		// Profile only the first service run.
		if x, err = b.serviceRun(ctx, re, client, jobs, d, nil, i == 0 && b.cfg.CPUProfile != ""); err != nil {
			return d, fmt.Errorf("service: %w", err)
		}
		svc = append(svc, x)
		// The same service reading one queue: separates the cost of the
		// three priority queues from the handler's.
		if x, err = b.serviceRun(ctx, re, client, jobs, d, map[string]int{job.QueueDefault: 1}, false); err != nil {
			return d, fmt.Errorf("service, one queue: %w", err)
		}
		svc1 = append(svc1, x)
	}
	m1, m3, mv, mv1 := medianRun(bare1), medianRun(bare3), medianRun(svc), medianRun(svc1)
	var other float64
	for _, x := range slices.Concat(bare1, bare3, svc, svc1) {
		other = max(other, x.BusyCPU-x.RedisCPU-x.SelfCPU)
	}
	d["max_other_busy_cores"] = other
	if other > 0.35 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("(a): up to %.2f cores were busy with work other than Redis and this harness during a run", other))
	}
	b.serviceRate = mv.Rate
	d["bare_1queue"], d["bare_3queues"], d["service"], d["service_1queue"] = bare1, bare3, svc, svc1
	d["median_service_1queue_msgs_per_s"] = mv1.Rate
	d["median_bare_1queue_msgs_per_s"], d["median_bare_3queues_msgs_per_s"], d["median_service_msgs_per_s"] = m1.Rate, m3.Rate, mv.Rate

	cpu := func(x tput) string {
		return fmt.Sprintf("%.1f of %d slots busy; Redis RTT %.0f µs; CPU cores: Redis %.2f, harness %.2f, machine %.2f of %d; %.1f Redis cmds/msg",
			x.MeanActive, b.cfg.Concurrency, x.PingRTTMicros, x.RedisCPU, x.SelfCPU, x.BusyCPU, r.Machine.NProc, x.CmdsPerMsg)
	}
	r.add(figure{Scenario: "a", Name: "bare asynq, no-op handler (1 queue)", Value: m1.Rate, Unit: "msgs/s", Note: cpu(m1)})
	r.add(figure{Scenario: "a", Name: "bare asynq, no-op handler (pagesend's 3 queues)", Value: m3.Rate, Unit: "msgs/s", Note: cpu(m3)})
	r.add(figure{Scenario: "a", Name: "pagesend service, end to end", Value: mv.Rate, Unit: "msgs/s", Note: cpu(mv)})
	r.add(figure{Scenario: "a", Name: "service ÷ bare asynq (1 queue)", Value: div(mv.Rate, m1.Rate), Unit: "ratio", Op: ">=", TargetValue: 0.8})
	r.add(figure{Scenario: "a", Name: "service ÷ bare asynq, both on pagesend's 3 queues", Value: div(mv.Rate, m3.Rate), Unit: "ratio",
		Note: "the handler's share of the gap"})
	r.add(figure{Scenario: "a", Name: "pagesend service on 1 queue (worker.Options.Queues)", Value: mv1.Rate, Unit: "msgs/s", Note: cpu(mv1)})
	r.add(figure{Scenario: "a", Name: "service on 1 queue ÷ bare asynq (1 queue)", Value: div(mv1.Rate, m1.Rate), Unit: "ratio"})
	return d, nil
}

// tput is one throughput run.
type tput struct {
	Rate       float64 `json:"msgs_per_s"`
	Seconds    float64 `json:"seconds"`
	RedisCPU   float64 `json:"redis_cpu_cores"`    // Redis CPU time ÷ wall time
	SelfCPU    float64 `json:"harness_cpu_cores"`  // this process (worker or bare server, and the fake) ÷ wall time
	BusyCPU    float64 `json:"machine_busy_cores"` // every CPU's non-idle time (/proc/stat) ÷ wall time
	StealCPU   float64 `json:"machine_steal_cores"`
	CmdsPerMsg float64 `json:"redis_commands_per_msg"`
	// PingRTTMicros is the mean Redis PING round trip from this process
	// during the run (rttProbe).
	PingRTTMicros float64 `json:"redis_ping_rtt_us"`
	// MeanActive is the mean number of tasks running at once (of
	// Concurrency slots), sampled every 5 ms.
	MeanActive float64 `json:"mean_active_tasks"`
	// RetainedBytesPerMsg is Redis used_memory after the run, over the
	// empty database, per message: what a sent message leaves in Redis
	// for the retention window (service runs only).
	RetainedBytesPerMsg float64 `json:"retained_bytes_per_msg,omitempty"`
}

func medianRun(rs []tput) tput {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b tput) int { return cmp.Compare(a.Rate, b.Rate) })
	return s[len(s)/2]
}

// cpuMark is a point in time with Redis's and this process's CPU time and
// Redis's command count.
type cpuMark struct {
	at          time.Time
	redis, own  float64
	busy, steal float64
	cmds        int64
}

func (b *bench) mark(ctx context.Context, re *redisEnv) cpuMark {
	m := cpuMark{at: time.Now(), own: selfCPU()}
	m.busy, m.steal = machineCPU()
	if s, err := re.rdb.Info(ctx, "cpu", "stats").Result(); err == nil {
		m.redis = infoFloat(s, "used_cpu_user") + infoFloat(s, "used_cpu_sys")
		m.cmds = int64(infoFloat(s, "total_commands_processed"))
	}
	return m
}

// between fills a run's CPU figures from two marks; end is when the last
// message was handled.
func between(a, z cpuMark, end time.Time, n int) tput {
	wall := z.at.Sub(a.at).Seconds()
	sec := end.Sub(a.at).Seconds()
	return tput{
		Rate:       float64(n) / sec,
		Seconds:    sec,
		RedisCPU:   (z.redis - a.redis) / wall,
		SelfCPU:    (z.own - a.own) / wall,
		BusyCPU:    (z.busy - a.busy) / wall,
		StealCPU:   (z.steal - a.steal) / wall,
		CmdsPerMsg: float64(z.cmds-a.cmds) / float64(n),
	}
}

// bareRun enqueues jobs (exactly as pagesend enqueues them) and consumes
// them with a bare asynq server whose handler does nothing, then flushes
// Redis.
func (b *bench) bareRun(ctx context.Context, re *redisEnv, client *enqueue.Client, jobs []enqueue.Job, queues map[string]int) (tput, error) {
	defer re.flush(ctx)
	if err := enqueueAll(ctx, client, jobs); err != nil {
		return tput{}, err
	}
	n := int64(len(jobs))
	var count atomic.Int64
	var end time.Time
	done := make(chan struct{})
	mux := asynq.NewServeMux()
	mux.HandleFunc(job.TaskType, func(context.Context, *asynq.Task) error {
		if count.Add(1) == n {
			end = time.Now()
			close(done)
		}
		return nil
	})
	srv := asynq.NewServer(re.opt, asynq.Config{
		Concurrency:       b.cfg.Concurrency,
		Queues:            queues,
		TaskCheckInterval: b.cfg.Poll,
		ShutdownTimeout:   3 * time.Second,
		LogLevel:          asynq.WarnLevel,
	})
	timeout := time.Duration(n)*time.Millisecond + time.Minute
	m0 := b.mark(ctx, re)
	probe := startProbe(re.srv.Addr())
	if err := srv.Start(mux); err != nil {
		probe.end()
		return tput{}, err
	}
	defer srv.Shutdown()
	select {
	case <-done:
	case <-ctx.Done():
		probe.end()
		return tput{}, ctx.Err()
	case <-time.After(timeout):
		probe.end()
		return tput{}, fmt.Errorf("%d of %d tasks after %v", count.Load(), n, timeout)
	}
	rtt, active := probe.end()
	x := between(m0, b.mark(ctx, re), end, int(n))
	x.PingRTTMicros = float64(rtt) / float64(time.Microsecond)
	x.MeanActive = active
	x.MeanActive = active
	return x, nil
}

// serviceRun enqueues jobs and delivers them with the pagesend service
// (app.NewService) to the fake, then flushes Redis.
func (b *bench) serviceRun(ctx context.Context, re *redisEnv, client *enqueue.Client, jobs []enqueue.Job, d map[string]any, queues map[string]int, profile bool) (tput, error) {
	defer re.flush(ctx)
	n := len(jobs)
	empty, err := re.info(ctx, "memory", "used_memory")
	if err != nil {
		return tput{}, err
	}
	if err := enqueueAll(ctx, client, jobs); err != nil {
		return tput{}, err
	}
	fake := graphtest.NewServer(graphtest.Options{})
	defer fake.Close()
	store := newStore(unlimited, map[string]pages.Limit{pageThroughput: unlimited})
	if profile {
		f, err := os.Create(b.cfg.CPUProfile)
		if err != nil {
			return tput{}, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return tput{}, err
		}
	}
	m0 := b.mark(ctx, re)
	probe := startProbe(re.srv.Addr())
	svc, err := b.startService(ctx, re, store, fake, worker.Options{Concurrency: b.cfg.Concurrency, PollInterval: b.cfg.Poll, Queues: queues})
	if err != nil {
		probe.end()
		if profile {
			pprof.StopCPUProfile()
		}
		return tput{}, err
	}
	werr := waitFor(ctx, time.Duration(n)*time.Millisecond+time.Minute, fmt.Sprintf("%d calls", n), func() bool { return fake.CallCount() >= n })
	rtt, active := probe.end()
	m1 := b.mark(ctx, re)
	if profile {
		pprof.StopCPUProfile()
	}
	d["limiter"] = limiterType(svc)
	stopService(svc)
	if werr != nil {
		return tput{}, werr
	}
	first, total, ok := firstSuccess(fake.Calls(), pageThroughput, '1')
	if ok != n || len(first) != n {
		return tput{}, fmt.Errorf("%d calls, %d successful, %d distinct recipients; want %d each", total, ok, len(first), n)
	}
	var last time.Time
	for _, t := range first {
		if t.After(last) {
			last = t
		}
	}
	x := between(m0, m1, last, n)
	x.PingRTTMicros = float64(rtt) / float64(time.Microsecond)
	x.MeanActive = active
	if used, err := re.info(ctx, "memory", "used_memory"); err == nil && queues == nil {
		x.RetainedBytesPerMsg = float64(used-empty) / float64(n)
		b.retainedPerMsg = x.RetainedBytesPerMsg
	}
	return x, nil
}

// ---------------------------------------------------------------- (b)

// fleet runs several `pagesend worker` processes against one Page limited
// to FleetRate/s with burst 1, and measures, from the fake's timestamps of
// successful calls, the busiest 1 s window and the rate achieved. The fake
// enforces no limit of its own: it records what the fleet actually sends.
func (b *bench) fleet(ctx context.Context, r *results) (map[string]any, error) {
	n, rate, k := b.cfg.FleetN, b.cfg.FleetRate, b.cfg.FleetWorkers
	d := map[string]any{"messages": n, "rate": rate, "burst": 1, "workers": k}
	re, err := startRedis()
	if err != nil {
		return d, err
	}
	defer re.close()
	fake := graphtest.NewServer(graphtest.Options{})
	defer fake.Close()
	dir, err := os.MkdirTemp("", "pagesend-bench")
	if err != nil {
		return d, err
	}
	defer os.RemoveAll(dir)
	pf, err := pagesFile(dir, map[string][2]float64{pageFleet: {rate, 1}})
	if err != nil {
		return d, err
	}

	procs := make([]*workerProc, k)
	errs := make([]error, k)
	started := make(chan int)
	for i := range k {
		go func() {
			procs[i], errs[i] = b.startWorkerProc(ctx, "redis://"+re.srv.Addr()+"/0", fake.URL(), pf)
			started <- i
		}()
	}
	for range k {
		<-started
	}
	defer stopAll(procs)
	if err := errors.Join(errs...); err != nil {
		return d, err
	}

	client := enqueue.NewClient(re.opt)
	defer client.Close()
	t0 := time.Now()
	if err := enqueueAll(ctx, client, textJobs(pageFleet, '3', n)); err != nil {
		return d, err
	}
	// At the target rate the run takes n/rate; allow three times that.
	limit := 3*time.Duration(float64(n)/rate*float64(time.Second)) + 30*time.Second
	var first map[int]time.Time
	var total, ok int
	werr := waitFor(ctx, limit, fmt.Sprintf("%d sends", n), func() bool {
		first, total, ok = firstSuccess(fake.Calls(), pageFleet, '3')
		return len(first) >= n
	})
	if err := stopAll(procs); err != nil {
		b.log.Warn("worker processes did not stop cleanly", "err", err)
	}
	procs = nil
	if werr != nil {
		return d, werr
	}
	var times []time.Time
	for _, c := range fake.Calls() {
		if c.PageID == pageFleet && c.Status/100 == 2 {
			times = append(times, c.Time)
		}
	}
	maxWin := maxInWindow(times, time.Second)
	// Gaps: where the fleet sent nothing for longer than two intervals.
	interval := time.Duration(float64(time.Second) / rate)
	var maxGap, lost time.Duration
	for i := 1; i < len(times); i++ {
		g := times[i].Sub(times[i-1])
		maxGap = max(maxGap, g)
		if g > 2*interval {
			lost += g - interval
		}
	}
	d["max_gap_ms"] = ms(maxGap)
	d["time_in_gaps_over_2_intervals_s"] = lost.Seconds()
	firstT, lastT := times[0], times[len(times)-1]
	achieved := float64(len(times)-1) / lastT.Sub(firstT).Seconds()
	d["calls"] = total
	d["successful_calls"] = ok
	d["duplicate_sends"] = ok - len(first)
	d["max_sends_in_1s_window"] = maxWin
	d["achieved_msgs_per_s"] = achieved
	d["seconds_first_to_last_send"] = lastT.Sub(firstT).Seconds()
	d["seconds_enqueue_to_last_send"] = lastT.Sub(t0).Seconds()
	d["limiter_note"] = "limiter as built into the pagesend binary; see README"

	name := fmt.Sprintf("max sends in any 1 s window ÷ %g (%d processes)", rate, k)
	r.add(figure{Scenario: "b", Name: name, Value: float64(maxWin) / rate, Unit: "ratio", Op: "<=", TargetValue: 1.05,
		Note: fmt.Sprintf("%d sends in the busiest second", maxWin)})
	r.add(figure{Scenario: "b", Name: fmt.Sprintf("achieved rate ÷ %g", rate), Value: achieved / rate, Unit: "ratio", Op: ">=", TargetValue: 0.95,
		Note: fmt.Sprintf("%.1f msgs/s", achieved)})
	r.add(figure{Scenario: "b", Name: "achieved rate", Value: achieved, Unit: "msgs/s"})
	return d, nil
}

// ---------------------------------------------------------------- (c)

// hotMode is what the hot Page is doing when the cold messages start.
type hotMode int

const (
	noHot     hotMode = iota // the cold Page alone
	hotFresh                 // ColdDelay after the worker starts on the hot backlog
	hotSpread                // after the worker's first pass over the hot backlog
)

// isolation measures a cold Page's enqueue → send latency while a hot
// Page's backlog is being worked through, and alone, with the worker's
// production settings (app.NewService, default concurrency, poll and
// MaxWait). A third run starts the cold messages only once the hot
// backlog has been through the worker once (every hot task rescheduled to
// its rate-limit slot), to tell the first pass from the steady state.
func (b *bench) isolation(ctx context.Context, r *results) (map[string]any, error) {
	d := map[string]any{
		"hot_messages": b.cfg.HotN, "hot_rate": b.cfg.HotRate,
		"cold_messages": b.cfg.ColdN, "cold_rate": b.cfg.ColdRate, "cold_delay": b.cfg.ColdDelay.String(),
		"worker": "app.NewService with worker defaults (concurrency 50, poll 100ms, max wait 1s)",
	}
	alone, da, err := b.isolationRun(ctx, noHot)
	d["alone"] = da
	if err != nil {
		return d, fmt.Errorf("cold alone: %w", err)
	}
	hot, dh, err := b.isolationRun(ctx, hotFresh)
	d["with_hot"] = dh
	if err != nil {
		return d, fmt.Errorf("cold with hot: %w", err)
	}
	spread, ds, err := b.isolationRun(ctx, hotSpread)
	d["with_hot_after_first_pass"] = ds
	if err != nil {
		return d, fmt.Errorf("cold with hot, after the first pass: %w", err)
	}
	p50a, p99a := percentile(alone, 50), percentile(alone, 99)
	p50h, p99h := percentile(hot, 50), percentile(hot, 99)
	p99s := percentile(spread, 99)
	r.add(figure{Scenario: "c", Name: "cold Page p50, alone", Value: ms(p50a), Unit: "ms"})
	r.add(figure{Scenario: "c", Name: "cold Page p99, alone", Value: ms(p99a), Unit: "ms"})
	r.add(figure{Scenario: "c", Name: fmt.Sprintf("cold Page p50, %v after a hot backlog of %d", b.cfg.ColdDelay, b.cfg.HotN), Value: ms(p50h), Unit: "ms"})
	r.add(figure{Scenario: "c", Name: fmt.Sprintf("cold Page p99, %v after a hot backlog of %d", b.cfg.ColdDelay, b.cfg.HotN), Value: ms(p99h), Unit: "ms",
		Note: fmt.Sprintf("%v hot tasks still pending ahead of the cold ones", dh["hot_pending_when_cold_starts"])})
	r.add(figure{Scenario: "c", Name: "cold p99 with hot ÷ alone", Value: div(ms(p99h), ms(p99a)), Unit: "ratio", Op: "<=", TargetValue: 1.2})
	r.add(figure{Scenario: "c", Name: "cold Page p99, after the hot backlog's first pass", Value: ms(p99s), Unit: "ms",
		Note: fmt.Sprintf("cold messages started %.1f s after the worker, once the first pass was done", ds["first_pass_seconds"])})
	r.add(figure{Scenario: "c", Name: "cold p99 after the first pass ÷ alone", Value: div(ms(p99s), ms(p99a)), Unit: "ratio"})
	return d, nil
}

// isolationRun runs the cold Page's messages, with the hot Page as mode
// says, and returns the cold latencies.
func (b *bench) isolationRun(ctx context.Context, mode hotMode) ([]time.Duration, map[string]any, error) {
	d := map[string]any{}
	re, err := startRedis()
	if err != nil {
		return nil, d, err
	}
	defer re.close()
	fake := graphtest.NewServer(graphtest.Options{})
	defer fake.Close()
	client := enqueue.NewClient(re.opt)
	defer client.Close()
	inspector := asynq.NewInspector(re.opt)
	defer inspector.Close()
	store := newStore(unlimited, map[string]pages.Limit{
		pageHot:  {Rate: b.cfg.HotRate, Burst: max(1, int(b.cfg.HotRate))},
		pageCold: {Rate: b.cfg.ColdRate, Burst: max(1, int(b.cfg.ColdRate))},
	})
	if mode != noHot {
		if err := enqueueAll(ctx, client, textJobs(pageHot, '4', b.cfg.HotN)); err != nil {
			return nil, d, err
		}
	}
	t0 := time.Now()
	svc, err := b.startService(ctx, re, store, fake, worker.Options{ShutdownTimeout: 2 * time.Second})
	if err != nil {
		return nil, d, err
	}
	defer func() {
		if svc != nil {
			stopService(svc)
		}
	}()
	d["limiter"] = limiterType(svc)
	pending := func() int {
		qi, err := inspector.GetQueueInfo(job.QueueDefault)
		if err != nil {
			return -1
		}
		return qi.Pending
	}
	switch mode {
	case hotFresh:
		time.Sleep(time.Until(t0.Add(b.cfg.ColdDelay)))
	case hotSpread:
		// Done when what is pending is no more than the forwarder brings
		// back each second at the hot Page's rate.
		err := waitFor(ctx, time.Minute, "the hot backlog's first pass", func() bool {
			p := pending()
			return p >= 0 && p <= max(1, int(2*b.cfg.HotRate))
		})
		if err != nil {
			return nil, d, err
		}
		d["first_pass_seconds"] = time.Since(t0).Seconds()
	}
	if mode != noHot {
		if qi, err := inspector.GetQueueInfo(job.QueueDefault); err == nil {
			d["hot_pending_when_cold_starts"] = qi.Pending
			d["hot_rescheduled_when_cold_starts"] = qi.Retry
		}
	}
	n := b.cfg.ColdN
	c0 := time.Now()
	at, took, err := pacedEnqueue(ctx, client, n, b.cfg.ColdRate, 1, func(i int) enqueue.Job { return textJob(pageCold, '5', i) })
	if err != nil {
		return nil, d, err
	}
	d["cold_enqueue_seconds"] = took.Seconds()
	var first map[int]time.Time
	werr := waitFor(ctx, 3*time.Minute, fmt.Sprintf("%d cold sends", n), func() bool {
		first, _, _ = firstSuccess(fake.Calls(), pageCold, '5')
		return len(first) >= n
	})
	stopService(svc)
	svc = nil
	if werr != nil {
		return nil, d, werr
	}
	lat := make([]time.Duration, 0, n)
	var last time.Time
	for i := range n {
		lat = append(lat, first[i].Sub(at[i]))
		if first[i].After(last) {
			last = first[i]
		}
	}
	if mode != noHot {
		// Hot sends while the cold messages were being sent.
		hot := 0
		for _, c := range fake.Calls() {
			if c.PageID == pageHot && c.Status/100 == 2 && !c.Time.Before(c0) && !c.Time.After(last) {
				hot++
			}
		}
		d["hot_sent_during_cold"] = hot
		d["hot_rate_during_cold"] = finite(div(float64(hot), last.Sub(c0).Seconds()))
	}
	d["cold_seconds"] = last.Sub(c0).Seconds()
	d["p50_ms"] = finite(ms(percentile(lat, 50)))
	d["p99_ms"] = finite(ms(percentile(lat, 99)))
	d["max_ms"] = finite(ms(percentile(lat, 100)))
	return lat, d, nil
}

// ---------------------------------------------------------------- (d)

// latency enqueues at a steady pace (half of (a)'s service throughput by
// default) into a running service with a short poll interval, and
// measures each message from its Enqueue call to its Graph call.
func (b *bench) latency(ctx context.Context, r *results) (map[string]any, error) {
	rate := b.cfg.LatencyRate
	source := "flag"
	if rate <= 0 {
		rate, source = b.serviceRate/2, "half of (a)"
		if b.serviceRate <= 0 {
			rate, source = 1000, "default (no (a) result)"
		}
	}
	n := max(1, int(rate*b.cfg.LatencyDuration.Seconds()))
	d := map[string]any{"rate": rate, "rate_source": source, "messages": n, "poll_interval": b.cfg.LatencyPoll.String(), "concurrency": b.cfg.Concurrency}
	re, err := startRedis()
	if err != nil {
		return d, err
	}
	defer re.close()
	fake := graphtest.NewServer(graphtest.Options{})
	defer fake.Close()
	client := enqueue.NewClient(re.opt)
	defer client.Close()
	store := newStore(unlimited, map[string]pages.Limit{pageLatency: unlimited})
	svc, err := b.startService(ctx, re, store, fake, worker.Options{Concurrency: b.cfg.Concurrency, PollInterval: b.cfg.LatencyPoll})
	if err != nil {
		return d, err
	}
	defer stopService(svc)
	time.Sleep(200 * time.Millisecond) // let the worker reach its idle poll
	at, took, err := pacedEnqueue(ctx, client, n, rate, 4, func(i int) enqueue.Job { return textJob(pageLatency, '6', i) })
	if err != nil {
		return d, err
	}
	d["achieved_enqueue_rate"] = float64(n) / took.Seconds()
	if err := waitFor(ctx, time.Minute+b.cfg.LatencyDuration, fmt.Sprintf("%d calls", n), func() bool { return fake.CallCount() >= n }); err != nil {
		return d, err
	}
	first, _, _ := firstSuccess(fake.Calls(), pageLatency, '6')
	if len(first) != n {
		return d, fmt.Errorf("%d of %d messages sent", len(first), n)
	}
	lat := make([]time.Duration, n)
	for i := range n {
		lat[i] = first[i].Sub(at[i])
	}
	p50, p99, pmax := percentile(lat, 50), percentile(lat, 99), percentile(lat, 100)
	d["p50_ms"], d["p99_ms"], d["max_ms"] = ms(p50), ms(p99), ms(pmax)
	r.add(figure{Scenario: "d", Name: "paced enqueue rate", Value: float64(n) / took.Seconds(), Unit: "msgs/s",
		Note: source})
	r.add(figure{Scenario: "d", Name: fmt.Sprintf("enqueue → Graph call p50 (poll %v)", b.cfg.LatencyPoll), Value: ms(p50), Unit: "ms"})
	r.add(figure{Scenario: "d", Name: fmt.Sprintf("enqueue → Graph call p99 (poll %v)", b.cfg.LatencyPoll), Value: ms(p99), Unit: "ms", Op: "<=", TargetValue: 50})
	return d, nil
}

// ---------------------------------------------------------------- (e)

// memory enqueues MemJobs typical text jobs with no worker running and
// reads Redis's used_memory before and after; then it starts a `pagesend
// worker` process on that backlog with the Page limited to RSSRate/s, lets
// it consume for RSSDuration, and reads its peak RSS (VmHWM).
func (b *bench) memory(ctx context.Context, r *results) (map[string]any, error) {
	n := b.cfg.MemJobs
	d := map[string]any{"jobs": n}
	re, err := startRedis()
	if err != nil {
		return d, err
	}
	defer re.close()
	client := enqueue.NewClient(re.opt)
	defer client.Close()
	before, err := re.info(ctx, "memory", "used_memory")
	if err != nil {
		return d, err
	}
	jobs := textJobs(pageMemory, '7', n)
	if err := enqueueAll(ctx, client, jobs); err != nil {
		return d, err
	}
	after, err := re.info(ctx, "memory", "used_memory")
	if err != nil {
		return d, err
	}
	perJob := float64(after-before) / float64(n)
	d["used_memory_before"], d["used_memory_after"] = before, after
	if pl, err := job.NewPayload(&jobs[0], time.Now()).Encode(); err == nil {
		d["payload_bytes"] = len(pl) // the task payload; asynq adds its own envelope
	}

	fake := graphtest.NewServer(graphtest.Options{MaxCalls: 1000})
	defer fake.Close()
	dir, err := os.MkdirTemp("", "pagesend-bench")
	if err != nil {
		return d, err
	}
	defer os.RemoveAll(dir)
	pf, err := pagesFile(dir, map[string][2]float64{pageMemory: {b.cfg.RSSRate, b.cfg.RSSRate}})
	if err != nil {
		return d, err
	}
	p, err := b.startWorkerProc(ctx, "redis://"+re.srv.Addr()+"/0", fake.URL(), pf)
	if err != nil {
		return d, err
	}
	defer p.stop()
	var maxRSS int64
	end := time.Now().Add(b.cfg.RSSDuration)
	for time.Now().Before(end) && ctx.Err() == nil {
		if rss, err := p.status("VmRSS"); err == nil {
			maxRSS = max(maxRSS, rss)
		}
		time.Sleep(100 * time.Millisecond)
	}
	hwm, err := p.status("VmHWM")
	if err != nil {
		return d, err
	}
	sent := fake.CallCount()
	if err := p.stop(); err != nil {
		b.log.Warn("worker process did not stop cleanly", "err", err)
	}
	d["worker_vmhwm_kb"] = hwm
	d["worker_max_sampled_vmrss_kb"] = maxRSS
	d["sent_while_measuring"] = sent
	d["rss_seconds"] = b.cfg.RSSDuration.Seconds()
	if sent == 0 {
		return d, errors.New("the worker sent nothing while its RSS was measured")
	}
	r.add(figure{Scenario: "e", Name: fmt.Sprintf("worker peak RSS (VmHWM), %d queued, consuming at %g/s", n, b.cfg.RSSRate), Value: float64(hwm) / 1024, Unit: "MB", Op: "<=", TargetValue: 100,
		Note: fmt.Sprintf("%d sent in %v", sent, b.cfg.RSSDuration)})
	r.add(figure{Scenario: "e", Name: "Redis used_memory per queued text job", Value: perJob, Unit: "B/job", Op: "<=", TargetValue: 1024})
	if b.retainedPerMsg > 0 {
		r.add(figure{Scenario: "e", Name: "Redis used_memory per sent message, kept 24 h (from (a))", Value: b.retainedPerMsg, Unit: "B/msg",
			Note: "completed task with its result (asynq Retention) + sent-record"})
	}
	return d, nil
}
