package worker_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pagesend/pagesend/enqueue"
	"github.com/pagesend/pagesend/graphapi"
	"github.com/pagesend/pagesend/graphapi/graphtest"
	"github.com/pagesend/pagesend/internal/job"
	"github.com/pagesend/pagesend/internal/pages"
	"github.com/pagesend/pagesend/internal/redistest"
	"github.com/pagesend/pagesend/internal/testwait"
	"github.com/pagesend/pagesend/metrics"
	"github.com/pagesend/pagesend/ratelimit"
	"github.com/pagesend/pagesend/worker"
)

// harness is one private redis-server, one fake Graph API, an enqueue
// client, a pages store, and a worker wired the way cmd/pagesend wires
// them, with timings shortened for tests.
type harness struct {
	t       *testing.T
	redis   *redistest.Server
	opt     asynq.RedisClientOpt
	fake    *graphtest.Server
	enq     *enqueue.Client
	in      *asynq.Inspector
	store   *pages.Store
	limiter ratelimit.Limiter
	limits  ratelimit.LimitFunc
	fleet   bool
	reg     *prometheus.Registry
	metrics *metrics.Metrics
	opts    worker.Options
	w       *worker.Worker
}

type harnessOptions struct {
	// fakeTokens is what the fake demands per page; storeTokens what the
	// worker's store holds. nil storeTokens: the same as fakeTokens.
	fakeTokens  map[string]string
	storeTokens map[string]graphapi.Secret
	limit       pages.Limit // zero: unlimited for tests
	fake        graphtest.Options
	worker      func(*worker.Options)
	// fleet uses the fleet-wide Redis limiter instead of a Local one.
	fleet bool
}

func newHarness(t *testing.T, ho harnessOptions) *harness {
	t.Helper()
	h := &harness{t: t}
	h.redis = redistest.Start(t, redistest.Options{})
	h.opt = asynq.RedisClientOpt{Addr: h.redis.Addr()}
	fo := ho.fake
	fo.Tokens = ho.fakeTokens
	h.fake = graphtest.Start(t, fo)
	h.enq = enqueue.NewClient(h.opt)
	h.in = asynq.NewInspector(h.opt)
	t.Cleanup(func() { h.enq.Close(); h.in.Close() })

	tokens := ho.storeTokens
	if tokens == nil {
		tokens = map[string]graphapi.Secret{}
		for p, tok := range ho.fakeTokens {
			tokens[p] = graphapi.Secret(tok)
		}
	}
	lim := ho.limit
	if lim.Rate == 0 {
		lim = pages.Limit{Rate: 10000, Burst: 10000}
	}
	h.store = pages.NewStore(pages.NewConfig(lim, lim, nil, tokens))
	h.limits = func(id string) (ratelimit.Limit, ratelimit.Limit) {
		text, media := h.store.Limits(id)
		return ratelimit.Limit(text), ratelimit.Limit(media)
	}
	h.fleet = ho.fleet
	h.limiter = h.newLimiter()
	client, err := h.fake.NewClient(graphapi.ClientOptions{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	h.reg = prometheus.NewRegistry()
	h.metrics = metrics.New(h.reg)
	h.opts = worker.Options{
		Redis:           h.opt,
		Graph:           client,
		Tokens:          h.store,
		Limiter:         h.limiter,
		Metrics:         h.metrics,
		Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
		Concurrency:     8,
		BackoffBase:     10 * time.Millisecond,
		BackoffCap:      50 * time.Millisecond,
		PauseRecheck:    200 * time.Millisecond,
		ThrottlePause:   300 * time.Millisecond,
		ShutdownTimeout: 5 * time.Second,
		PollInterval:    20 * time.Millisecond,
		ForwardInterval: 100 * time.Millisecond,
	}
	if testing.Verbose() {
		h.opts.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if ho.worker != nil {
		ho.worker(&h.opts)
	}
	h.w = h.startWorker()
	h.store.OnChange(func(c pages.Changes) { h.w.TokensChanged(context.Background(), c.TokenChanged) })
	return h
}

// newLimiter makes the limiter one worker "process" would have: a Redis
// one on its own connection, or a Local one.
func (h *harness) newLimiter() ratelimit.Limiter {
	if h.fleet {
		return ratelimit.NewRedis(h.redis.Client(h.t), h.limits, "")
	}
	return ratelimit.NewLocal(h.limits)
}

// startOtherWorker starts one more worker with its own limiter, as a
// second process would run.
func (h *harness) startOtherWorker() *worker.Worker {
	h.t.Helper()
	saved := h.opts.Limiter
	h.opts.Limiter = h.newLimiter()
	defer func() { h.opts.Limiter = saved }()
	return h.startWorker()
}

func (h *harness) startWorker() *worker.Worker {
	h.t.Helper()
	w, err := worker.New(h.opts)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(w.Shutdown)
	return w
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// job builds a text job.
func textJob(page, recipient, text string) enqueue.Job {
	return enqueue.Job{PageID: page, Request: &graphapi.Request{
		Recipient:     &graphapi.Recipient{ID: recipient},
		MessagingType: "UPDATE",
		Message:       &graphapi.Message{Text: text},
	}}
}

func (h *harness) enqueue(j enqueue.Job) enqueue.Info {
	h.t.Helper()
	info, err := h.enq.Enqueue(context.Background(), j)
	if err != nil {
		h.t.Fatal(err)
	}
	return info
}

// eventually waits for cond, polling with a deadline.
var eventually = testwait.Until

// final waits until the task is completed or archived and returns it.
func (h *harness) final(info enqueue.Info) *asynq.TaskInfo {
	h.t.Helper()
	var ti *asynq.TaskInfo
	eventually(h.t, 20*time.Second, "task "+info.ID+" to finish", func() bool {
		var err error
		ti, err = h.in.GetTaskInfo(info.Queue, info.ID)
		return err == nil && (ti.State == asynq.TaskStateCompleted || ti.State == asynq.TaskStateArchived)
	})
	return ti
}

func result(t *testing.T, ti *asynq.TaskInfo) *job.Result {
	t.Helper()
	r, err := job.DecodeResult(ti.Result)
	if err != nil {
		t.Fatalf("task %s result %q: %v", ti.ID, ti.Result, err)
	}
	return r
}

func (h *harness) messages(page, outcome string) float64 {
	return metricValue(h.t, h.reg, "pagesend_messages_total", map[string]string{"page_id": page, "outcome": outcome})
}

// metricValue reads one counter or gauge series from a registry; 0 when
// the series does not exist.
func metricValue(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue series
				}
			}
			return m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return 0
}

func recipientCalls(s *graphtest.Server, recipient string) []graphtest.Call {
	var out []graphtest.Call
	for _, c := range s.Calls() {
		if c.Recipient == recipient {
			out = append(out, c)
		}
	}
	return out
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(fmt.Sprint(err))
	}
	return v
}
