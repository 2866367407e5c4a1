// Package demo implements `pagesend demo`: the real worker service, wired
// by internal/app exactly as `pagesend worker` wires it, run end to end on
// an embedded Redis (miniredis) against the fake Graph API of
// graphapi/graphtest, with sample jobs that reach every outcome — sent,
// scheduled, deduplicated, throttled then sent, dropped, dead-lettered,
// and held by a broken token until an operator replaces it. It prints what
// happened to each job beside what should have, and serves the ops
// endpoints (/metrics, /healthz, /readyz, and the asynqmon UI at /monitor/)
// while it runs.
//
// Nothing leaves the process: the Redis lives in memory and is discarded
// on exit, and no call reaches Facebook.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"

	"github.com/pagesend/pagesend/enqueue"
	"github.com/pagesend/pagesend/graphapi"
	"github.com/pagesend/pagesend/graphapi/graphtest"
	"github.com/pagesend/pagesend/internal/app"
	"github.com/pagesend/pagesend/internal/monitor"
	"github.com/pagesend/pagesend/internal/pages"
	"github.com/pagesend/pagesend/worker"
)

// Defaults for Options.
const (
	DefaultOpsAddr = "127.0.0.1:9321"
	// DefaultDuration is what `pagesend demo` runs for without --duration:
	// long enough to look at /metrics after the summary.
	DefaultDuration = 30 * time.Second
	// fallbackOpsAddr is used when the chosen address is taken, so a
	// second demo (or a local worker) does not stop this one.
	fallbackOpsAddr = "127.0.0.1:0"
)

// SettleTimeout is how long, at least, the demo waits for its jobs to
// settle before printing the summary with whatever has not. They need
// about five seconds; the margin is for slow machines and -race.
const SettleTimeout = time.Minute

// Timings of the demo's story, shortened from production so it plays out
// in seconds.
const (
	pollEvery     = 50 * time.Millisecond
	operatorDelay = 2 * time.Second // between the 190 pause and the token fix
)

// Options configures Run. The zero value runs until ctx ends, serves the
// ops endpoints on DefaultOpsAddr, prints to os.Stdout and discards the
// service's logs.
type Options struct {
	// Duration is how long the demo runs in all, counted from the start.
	// The summary prints as soon as every job has settled, or when
	// max(Duration, SettleTimeout) has passed, listing what had not; the
	// ops server then stays up until Duration is over or ctx ends. If the
	// jobs settle after Duration has passed, Run returns right after the
	// summary. Zero: until ctx ends (Ctrl-C).
	Duration time.Duration
	// OpsAddr is the ops server's address. "": DefaultOpsAddr. If it is
	// busy, the demo falls back to 127.0.0.1:0 (any free port) and says
	// so.
	OpsAddr string
	// Out receives progress lines and the summary. Nil: os.Stdout.
	Out io.Writer
	// Logger receives the service's logs. Nil: discarded, since the
	// summary is the point.
	Logger *slog.Logger
}

// Row is one sample job in the summary.
type Row struct {
	Label     string
	PageID    string
	Recipient string
	Expected  string // what should happen, for people
	Outcome   string // sent, dropped, dead_lettered, or the asynq state of an unfinished task
	Detail    string // message id, error code and reason, or why it is unfinished
	Calls     int    // calls the fake Graph API received for the job's recipient
	OK        bool   // the outcome and the calls are what the sample expects
}

// Summary is what Run found.
type Summary struct {
	Rows []Row
	// Counts is the number of rows per Outcome.
	Counts map[string]int
	// Metrics is pagesend_messages_total from the service's registry,
	// summed over Pages, by outcome label.
	Metrics map[string]int
	// Mismatches is the number of rows that are not OK.
	Mismatches int
	// GraphCalls is the number of calls the fake Graph API received.
	GraphCalls int
	// Elapsed is the time from the start to the summary.
	Elapsed time.Duration
	// OpsAddr is the ops server's bound address.
	OpsAddr string
}

// Run runs the demo: it starts an embedded Redis, the fake Graph API and
// the worker service, enqueues the samples, plays the operator who fixes
// a broken token, waits for every job to settle, prints the summary, and
// serves the ops endpoints until the duration ends or ctx does. It
// returns an error only when something could not be set up; jobs whose
// outcome differs from the expected one are counted in
// Summary.Mismatches.
func Run(ctx context.Context, opts Options) (*Summary, error) {
	d := &demo{opts: opts, start: time.Now(), out: opts.Out, log: opts.Logger}
	if d.out == nil {
		d.out = os.Stdout
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.printf("pagesend demo\n")
	d.printf("  Redis: embedded (miniredis), in memory: it keeps nothing after the demo exits.\n")
	d.printf("  Graph API: a local fake (graphtest); nothing reaches Facebook.\n\n")
	defer d.close()
	if err := d.setUp(ctx); err != nil {
		return nil, err
	}
	d.printf("ops server: http://%[1]s/metrics  http://%[1]s/healthz  http://%[1]s/readyz\n", d.opsAddr)
	d.printf("queue UI (asynqmon): http://%s/monitor/\n\n", d.opsAddr)

	settleBy := d.start.Add(max(opts.Duration, SettleTimeout))
	tasks, err := d.enqueueAll(ctx)
	if err != nil {
		return nil, err
	}
	d.fixStaleToken(ctx, settleBy)
	d.printf("waiting for every job to settle…\n")
	poll(ctx, settleBy, pollEvery, func() bool { return d.refresh(tasks) })

	sum := d.summarize(ctx, tasks)
	d.printSummary(sum)
	d.serveUntilEnd(ctx)
	return sum, nil
}

// demo is one run: the embedded services and what the run has learnt.
type demo struct {
	opts  Options
	start time.Time
	out   io.Writer
	log   *slog.Logger

	redis    *miniredis.Miniredis
	redisOpt asynq.RedisClientOpt
	fake     *graphtest.Server
	store    *pages.Store
	svc      *app.Service
	stopSvc  context.CancelFunc
	opsAddr  string
	enq      *enqueue.Client
	inspect  *asynq.Inspector
	pauseHit bool // pageStale was seen paused for its token
}

func (d *demo) printf(format string, args ...any) { fmt.Fprintf(d.out, format, args...) }

// setUp starts miniredis, the fake and the service.
func (d *demo) setUp(ctx context.Context) error {
	var err error
	if d.redis, err = miniredis.Run(); err != nil {
		return fmt.Errorf("demo: start embedded Redis: %w", err)
	}
	d.redisOpt = asynq.RedisClientOpt{Addr: d.redis.Addr()}
	d.fake = graphtest.NewServer(graphtest.Options{Tokens: fakeTokens()})
	d.enq = enqueue.NewClient(d.redisOpt)
	d.inspect = asynq.NewInspector(d.redisOpt)

	addr := d.opts.OpsAddr
	if addr == "" {
		addr = DefaultOpsAddr
	}
	err = d.startService(ctx, addr)
	if errors.Is(err, syscall.EADDRINUSE) && addr != fallbackOpsAddr {
		d.printf("ops address %s is busy; using %s (any free port) instead\n", addr, fallbackOpsAddr)
		err = d.startService(ctx, fallbackOpsAddr)
	}
	return err
}

// startService builds and starts the worker service with the ops server
// on addr. Each attempt gets a fresh token store, so a service that failed
// to start leaves no OnChange callback behind.
func (d *demo) startService(ctx context.Context, addr string) error {
	store := pages.NewStore(pagesConfig(true))
	svc, err := app.NewService(app.Config{
		Redis:   d.redisOpt,
		Store:   store,
		Graph:   graphapi.ClientOptions{BaseURL: d.fake.URL(), Timeout: 5 * time.Second},
		OpsAddr: addr,
		Version: "demo",
		Logger:  d.log,
		// The demo's messages are made up and its server is on loopback:
		// show their text and let the UI re-run tasks.
		Monitor: &monitor.Options{ShowText: true, Writable: true},
		Worker: worker.Options{
			Concurrency:     10,
			PauseRecheck:    time.Second,
			ThrottlePause:   2 * time.Second,
			BackoffBase:     200 * time.Millisecond,
			BackoffCap:      time.Second,
			PollInterval:    50 * time.Millisecond,
			ForwardInterval: 250 * time.Millisecond,
			ShutdownTimeout: 5 * time.Second,
		},
	})
	if err != nil {
		return fmt.Errorf("demo: build service: %w", err)
	}
	svcCtx, cancel := context.WithCancel(ctx)
	bound, err := svc.Start(svcCtx)
	if err != nil {
		cancel()
		if svc.Ops != nil {
			svc.Ops.Wait() // returns at once if it never started
		}
		svc.Close()
		return fmt.Errorf("demo: start service: %w", err)
	}
	d.store, d.svc, d.stopSvc, d.opsAddr = store, svc, cancel, bound
	return nil
}

// close stops everything setUp started, in reverse order, the way
// app.Service.Run stops: no new work, in-flight sends finish, ops server
// down.
func (d *demo) close() {
	if d.svc != nil {
		d.stopSvc()
		d.svc.Shutdown()
		if d.svc.Ops != nil {
			if err := d.svc.Ops.Wait(); err != nil {
				d.log.Warn("ops server", "err", err)
			}
		}
		d.svc.Close()
	}
	if d.inspect != nil {
		d.inspect.Close()
	}
	if d.enq != nil {
		d.enq.Close()
	}
	if d.fake != nil {
		d.fake.Close()
	}
	if d.redis != nil {
		d.redis.Close()
	}
}

// serveUntilEnd keeps the ops server up until Duration has passed since
// the start, or until ctx ends when Duration is zero.
func (d *demo) serveUntilEnd(ctx context.Context) {
	var end <-chan time.Time
	if d.opts.Duration > 0 {
		left := time.Until(d.start.Add(d.opts.Duration))
		if left <= 0 {
			return
		}
		t := time.NewTimer(left)
		defer t.Stop()
		end = t.C
		d.printf("\nops server up at http://%s for another %s — Ctrl-C to stop\n", d.opsAddr, left.Round(time.Second))
	} else {
		d.printf("\nops server up at http://%s — Ctrl-C to stop\n", d.opsAddr)
	}
	select {
	case <-ctx.Done():
	case <-end:
	}
	d.printf("stopping; the embedded Redis and everything in it go with the demo\n")
}

// poll calls cond every interval until it reports true, and reports
// whether it did before deadline passed or ctx ended.
func poll(ctx context.Context, deadline time.Time, every time.Duration, cond func() bool) bool {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if cond() {
			return true
		}
		if !time.Now().Before(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}
