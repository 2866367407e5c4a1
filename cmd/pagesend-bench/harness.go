package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/pagesend/pagesend/enqueue"
	"github.com/pagesend/pagesend/graphapi"
	"github.com/pagesend/pagesend/graphapi/graphtest"
	"github.com/pagesend/pagesend/internal/app"
	"github.com/pagesend/pagesend/internal/pages"
	"github.com/pagesend/pagesend/internal/redistest"
	"github.com/pagesend/pagesend/worker"
)

// bench runs the scenarios of one invocation.
type bench struct {
	cfg    config
	stdout io.Writer
	stderr io.Writer
	log    *slog.Logger // progress (-v) and warnings
	quiet  *slog.Logger // the in-process services' logs: errors only, unless -v

	serviceRate    float64 // (a)'s median service throughput, for (d)
	retainedPerMsg float64 // (a): Redis bytes a sent message leaves for the retention window
}

// runAll runs the selected scenarios in order, each on a redis-server of
// its own, and collects their figures. A failed scenario is reported and
// the others still run; the error joins every failure.
func (b *bench) runAll(ctx context.Context) (*results, error) {
	start := time.Now()
	r := &results{Machine: describeMachine(ctx), Config: b.cfg, Started: start.UTC(), Scenarios: map[string]scenario{}}
	steps := []struct {
		id, title string
		fn        func(context.Context, *results) (map[string]any, error)
		proc      bool // runs the pagesend binary
	}{
		{"a", "throughput: pagesend service vs bare asynq", b.throughput, false},
		{"b", "fleet precision: worker processes sharing one Page's limit", b.fleet, true},
		{"c", "isolation: cold Page next to a hot Page's backlog", b.isolation, false},
		{"d", "latency: enqueue → Graph call at half of (a)'s throughput", b.latency, false},
		{"e", "memory: worker RSS and Redis bytes per queued job", b.memory, true},
		{"f", "order: conversations in order under faults, against unordered", b.order, true},
	}
	if bg := r.Machine.BackgroundBusyCores; bg > 0.25 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("the machine was already %.2f cores busy before the run: other work skews the figures", bg))
	}
	var errs []error
	for _, s := range steps {
		if !b.cfg.selected(s.id) {
			continue
		}
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		if s.proc {
			if _, err := os.Stat(b.cfg.Pagesend); err != nil {
				err = fmt.Errorf("(%s) needs the pagesend binary: %w (build it with `go build -o bin/pagesend ./cmd/pagesend`, or pass -pagesend)", s.id, err)
				errs = append(errs, err)
				r.Errors = append(r.Errors, err.Error())
				continue
			}
		}
		fmt.Fprintf(b.stderr, "== (%s) %s\n", s.id, s.title)
		t0 := time.Now()
		busy0, _ := machineCPU()
		own0 := ownCPU()
		details, err := s.fn(ctx, r)
		sec := time.Since(t0).Seconds()
		busy1, _ := machineCPU()
		other := max(0, (busy1-busy0)-(ownCPU()-own0)) / sec
		r.Scenarios[s.id] = scenario{Title: s.title, Seconds: sec, OtherBusyCores: other, Details: details}
		fmt.Fprintf(b.stderr, "   (%s) done in %.1f s\n", s.id, sec)
		if other > 0.25 {
			r.Warnings = append(r.Warnings, fmt.Sprintf("(%s): other work kept %.2f cores busy on average during it; its figures are skewed", s.id, other))
		}
		if err != nil {
			err = fmt.Errorf("(%s) %s: %w", s.id, s.title, err)
			errs = append(errs, err)
			r.Errors = append(r.Errors, err.Error())
		}
	}
	r.Runtime = time.Since(start).Seconds()
	return r, errors.Join(errs...)
}

// redisEnv is one private redis-server and a client for it.
type redisEnv struct {
	srv *redistest.Server
	opt asynq.RedisClientOpt
	rdb *redis.Client
}

func startRedis() (*redisEnv, error) {
	srv, err := redistest.StartProcess(redistest.Options{})
	if err != nil {
		return nil, err
	}
	return &redisEnv{
		srv: srv,
		opt: asynq.RedisClientOpt{Addr: srv.Addr()},
		rdb: redis.NewClient(&redis.Options{Addr: srv.Addr()}),
	}, nil
}

func (e *redisEnv) close() {
	_ = e.rdb.Close()
	_ = e.srv.Stop()
}

func (e *redisEnv) flush(ctx context.Context) error { return e.rdb.FlushAll(ctx).Err() }

// info returns one numeric field of INFO section.
func (e *redisEnv) info(ctx context.Context, section, field string) (int64, error) {
	s, err := e.rdb.Info(ctx, section).Result()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("INFO %s has no %s", section, field)
}

// infoFloat reads a numeric field from INFO output, or 0.
func infoFloat(info, field string) float64 {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// Page ids and recipient ids. A recipient id is a 16-digit PSID-like
// number: a one-digit prefix per message stream, then the message's
// sequence number, so a fake call maps back to the job that caused it.
const (
	benchToken = "EAAbenchToken"

	pageThroughput = "1000000001"
	pageFleet      = "3000000003"
	pageHot        = "4000000004"
	pageCold       = "5000000005"
	pageLatency    = "6000000006"
	pageMemory     = "7000000007"
)

func rcptID(prefix byte, seq int) string {
	return string(prefix) + fmt.Sprintf("%015d", seq)
}

// seqOf returns the sequence number of a recipient id with the prefix.
func seqOf(prefix byte, rcpt string) (int, bool) {
	if len(rcpt) != 16 || rcpt[0] != prefix {
		return 0, false
	}
	n, err := strconv.Atoi(rcpt[1:])
	return n, err == nil
}

// textJob is a typical text message: a PSID, messaging_type UPDATE, and
// about 80 characters of text.
func textJob(page string, prefix byte, seq int) enqueue.Job {
	return enqueue.Job{
		PageID: page,
		Request: &graphapi.Request{
			Recipient:     &graphapi.Recipient{ID: rcptID(prefix, seq)},
			MessagingType: "UPDATE",
			Message: &graphapi.Message{
				Text: "Your order #" + strconv.Itoa(100000+seq) + " has shipped and should arrive on Tuesday. Track it in the app.",
			},
		},
	}
}

func textJobs(page string, prefix byte, n int) []enqueue.Job {
	jobs := make([]enqueue.Job, n)
	for i := range jobs {
		jobs[i] = textJob(page, prefix, i)
	}
	return jobs
}

// enqueueAll stores jobs as fast as the client can, in batches from a few
// goroutines (order is not kept).
func enqueueAll(ctx context.Context, c *enqueue.Client, jobs []enqueue.Job) error {
	const batch, goroutines = 500, 4
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)-1) * batch
				if i >= len(jobs) || ctx.Err() != nil {
					errs[g] = ctx.Err()
					return
				}
				if _, err := c.EnqueueBatch(ctx, jobs[i:min(i+batch, len(jobs))]); err != nil {
					errs[g] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// pacedEnqueue enqueues n jobs at rate per second from g goroutines, each
// job at its due time start + i/rate (or as soon after as it can). at[i]
// is when job i's Enqueue call began: the enqueue time latencies count
// from.
func pacedEnqueue(ctx context.Context, c *enqueue.Client, n int, rate float64, g int, mk func(int) enqueue.Job) ([]time.Time, time.Duration, error) {
	at := make([]time.Time, n)
	jobs := make([]enqueue.Job, n)
	for i := range jobs {
		jobs[i] = mk(i)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, g)
	start := time.Now()
	for k := range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
				}
				at[i] = time.Now()
				if _, err := c.Enqueue(ctx, jobs[i]); err != nil {
					errs[k] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	return at, time.Since(start), errors.Join(errs...)
}

// newStore is a pages store with the given Pages, each with its text and
// media limit, all holding benchToken; other Pages get def.
func newStore(def pages.Limit, limits map[string]pages.Limit) *pages.Store {
	var ps []pages.Page
	toks := map[string]graphapi.Secret{}
	for id, l := range limits {
		ps = append(ps, pages.Page{ID: id, Text: l, Media: l})
		toks[id] = benchToken
	}
	return pages.NewStore(pages.NewConfig(def, def, ps, toks))
}

// startService builds the worker service exactly as `pagesend worker` does
// (app.NewService), without an ops server, and starts it.
func (b *bench) startService(ctx context.Context, re *redisEnv, store *pages.Store, fake *graphtest.Server, wo worker.Options) (*app.Service, error) {
	if wo.ShutdownTimeout == 0 {
		wo.ShutdownTimeout = 3 * time.Second
	}
	svc, err := app.NewService(app.Config{
		Redis:   re.opt,
		Store:   store,
		Graph:   graphapi.ClientOptions{BaseURL: fake.URL()},
		Version: "bench",
		Logger:  b.quiet,
		Worker:  wo,
	})
	if err != nil {
		return nil, err
	}
	if _, err := svc.Start(ctx); err != nil {
		svc.Close()
		return nil, err
	}
	return svc, nil
}

func stopService(svc *app.Service) {
	svc.Shutdown()
	svc.Close()
}

// limiterType names the rate limiter the service was built with (the
// Service's Limiter field, read by reflection so this compiles whatever
// its type).
func limiterType(svc *app.Service) string {
	v := reflect.ValueOf(svc).Elem().FieldByName("Limiter")
	if !v.IsValid() {
		return "unknown"
	}
	if v.Kind() == reflect.Interface {
		if v.IsNil() {
			return "none"
		}
		return v.Elem().Type().String()
	}
	return v.Type().String()
}

// waitFor polls cond every 20 ms until it holds, ctx is done, or limit
// passes.
func waitFor(ctx context.Context, limit time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// firstSuccess maps each recipient of prefix on page to the time of its
// first successful (2xx) call, and counts every call and every success.
func firstSuccess(calls []graphtest.Call, page string, prefix byte) (first map[int]time.Time, total, ok int) {
	first = map[int]time.Time{}
	for _, c := range calls {
		if c.PageID != page {
			continue
		}
		total++
		if c.Status/100 != 2 {
			continue
		}
		ok++
		seq, valid := seqOf(prefix, c.Recipient)
		if !valid {
			continue
		}
		if t, seen := first[seq]; !seen || c.Time.Before(t) {
			first[seq] = c.Time
		}
	}
	return first, total, ok
}

// rttProbe measures Redis round trips from this process while a run goes
// on: a PING every 5 ms on a connection of its own. The mean tells how
// long any one round trip (asynq's dequeue among them) takes under the
// run's load.
type rttProbe struct {
	stop  chan struct{}
	done  chan struct{}
	total time.Duration
	n     int
	// active sums LLEN of asynq's active list of the default queue at
	// each tick: how many of the worker's slots hold a task.
	active, nActive int64
}

// activeKey is asynq's list of the default queue's running tasks.
const activeKey = "asynq:{default}:active"

func startProbe(addr string) *rttProbe {
	p := &rttProbe{stop: make(chan struct{}), done: make(chan struct{})}
	c := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 1})
	go func() {
		defer close(p.done)
		defer c.Close()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
			t := time.Now()
			if c.Ping(context.Background()).Err() == nil {
				p.total += time.Since(t)
				p.n++
			}
			if l, err := c.LLen(context.Background(), activeKey).Result(); err == nil {
				p.active += l
				p.nActive++
			}
		}
	}()
	return p
}

// end stops the probe and returns the mean round trip (or -1) and the
// mean number of active tasks.
func (p *rttProbe) end() (time.Duration, float64) {
	close(p.stop)
	<-p.done
	if p.n == 0 {
		return -1, 0
	}
	return p.total / time.Duration(p.n), float64(p.active) / float64(max(p.nActive, 1))
}
