// Package worker delivers queued send jobs. It is the asynq handler and its
// server: for each task it decodes the job, checks the Page's shared pause
// state, looks up the Page token, takes a token from the Page's rate-limit
// bucket, calls the Graph API, classifies the outcome and acts on it:
//
//   - sent: the task completes with the message id as its result;
//   - backoff: the task is retried with exponential backoff and full jitter,
//     or at Meta's hint; a throttling error also pauses the Page for every
//     worker, and that wait does not use up the task's attempts;
//   - drop: the task completes with the reason as its result, no retry;
//   - dead-letter: the task is archived with the reason, re-runnable;
//   - alert (error 190, or no token): the Page is paused with reason
//     token_invalid for every worker and the alert gauge is raised.
//
// A task of a paused Page, or one whose Page has no rate-limit token within
// Options.MaxWait, is rescheduled without calling the Graph API and without
// using up its attempts, so a hot or broken Page never holds a worker slot
// for long and never loses a message.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/pagesend/pagesend/graphapi"
	"github.com/pagesend/pagesend/internal/job"
	"github.com/pagesend/pagesend/internal/order"
	"github.com/pagesend/pagesend/metrics"
	"github.com/pagesend/pagesend/ratelimit"
)

// Sender sends one Send API request; *graphapi.Client is one.
type Sender interface {
	Send(ctx context.Context, pageID string, token graphapi.Secret, req *graphapi.Request) (*graphapi.SendResponse, error)
}

// TokenSource looks up a Page's access token; the pages store is one.
type TokenSource interface {
	Token(pageID string) (graphapi.Secret, bool)
}

// Defaults for Options.
const (
	DefaultConcurrency      = 50
	DefaultMaxWait          = time.Second
	DefaultBackoffBase      = 2 * time.Second
	DefaultBackoffCap       = 10 * time.Minute
	DefaultPauseRecheck     = 30 * time.Second
	DefaultThrottlePause    = time.Minute
	DefaultShutdownTimeout  = 25 * time.Second
	DefaultPollInterval     = 100 * time.Millisecond
	DefaultForwardInterval  = time.Second
	DefaultUsagePauseAt     = 95.0
	DefaultUsageSlowAt      = 90.0
	DefaultSentRecordTTL    = 24 * time.Hour
	DefaultOrderRecheck     = 5 * time.Second
	DefaultOrderOrphanGrace = time.Minute
)

// Options configures a Worker. Redis, Graph and Tokens are required; the
// zero value of every other field is documented beside it.
type Options struct {
	// Redis is the queue's Redis.
	Redis asynq.RedisConnOpt
	// Graph sends requests.
	Graph Sender
	// Tokens finds each Page's access token.
	Tokens TokenSource
	// Limiter hands out per-Page send permits. Nil: no rate limit.
	Limiter ratelimit.Limiter
	// Pauses is the shared Page pause state. Nil: built on Redis.
	Pauses *ratelimit.Pauses
	// Metrics records what happens. Nil: nothing is recorded.
	Metrics *metrics.Metrics
	// Logger logs outcomes. Nil: slog.Default().
	Logger *slog.Logger
	// Concurrency is how many tasks run at once. Zero: DefaultConcurrency.
	Concurrency int
	// Queues maps queue names to weights. Nil: job.Queues.
	Queues map[string]int
	// MaxWait is the longest a task waits in-process for a rate-limit
	// token; a longer wait reschedules it. Zero: DefaultMaxWait.
	MaxWait time.Duration
	// BackoffBase and BackoffCap shape retries: attempt n waits a random
	// time up to min(cap, base·2ⁿ) ("full jitter"). Zero: the defaults.
	BackoffBase, BackoffCap time.Duration
	// PauseRecheck is how soon a task of a Page paused without an end
	// (a broken token) is looked at again. Zero: DefaultPauseRecheck.
	PauseRecheck time.Duration
	// ThrottlePause is how long a throttling error pauses the Page when
	// Meta gives no hint (estimated_time_to_regain_access, Retry-After);
	// a hint is followed as given. Zero: DefaultThrottlePause.
	// A Page throttled again within the hour pauses twice as long each
	// time, up to an hour.
	ThrottlePause time.Duration
	// ShutdownTimeout is how long in-flight sends may run after a stop
	// signal; tasks still running then go back to the queue. Zero:
	// DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// PollInterval is how often an idle worker looks for new tasks (asynq's
	// TaskCheckInterval, 1 s by default there). Zero: DefaultPollInterval.
	PollInterval time.Duration
	// ForwardInterval is how often due scheduled and retry tasks are moved
	// to their queue (asynq's DelayedTaskCheckInterval, 5 s there). Zero:
	// DefaultForwardInterval.
	ForwardInterval time.Duration
	// UsagePauseAt pauses a Page for every worker when any figure in
	// Meta's usage headers (X-App-Usage, X-Page-Usage,
	// X-Business-Use-Case-Usage) reaches this percentage, until
	// estimated_time_to_regain_access or ThrottlePause. Zero:
	// DefaultUsagePauseAt.
	UsagePauseAt float64
	// UsageSlowAt halves a Page's rate for the fleet (when the Limiter can
	// slow down, as ratelimit.Redis can) while its usage headers are at or
	// above this percentage and below UsagePauseAt. Zero:
	// DefaultUsageSlowAt.
	UsageSlowAt float64
	// DisableDuplicateSuppression turns off the sent-record: by default,
	// after a successful Graph call the worker records the task's message
	// id in Redis before acknowledging the task, and a redelivered task
	// (after a crash, a lost lease or a shutdown requeue) whose send is
	// recorded completes without calling Meta again. The Send API has no
	// idempotency key, so this is the only guard against double sends.
	DisableDuplicateSuppression bool
	// SentRecordTTL is how long a sent-record is kept. Zero:
	// DefaultSentRecordTTL (enqueue's default retention).
	SentRecordTTL time.Duration
	// OrderRecheck is the shortest time a task waiting for an earlier
	// message of its conversation is put back for; the wait grows with
	// the earlier message's age, up to two minutes. The worker that
	// finishes the earlier message wakes the waiter at once, so this only
	// bounds how long a lost wake (a crash) can delay it. Zero:
	// DefaultOrderRecheck.
	OrderRecheck time.Duration
	// OrderOrphanGrace is how old a conversation's head must be before a
	// waiter asks the queue whether it still exists, and releases the
	// conversation if it does not (its producer died between joining the
	// conversation and storing it, or an operator deleted it). Zero:
	// DefaultOrderOrphanGrace.
	OrderOrphanGrace time.Duration
	// Now is the clock. Zero: time.Now.
	Now func() time.Time
}

// Worker processes send jobs. Make one with New; run it with Run.
type Worker struct {
	opts    Options
	log     *slog.Logger
	rdb     redis.UniversalClient // sent-records
	pauses  *ratelimit.Pauses
	metrics *metrics.Metrics
	alerts  alertState
	srv     *asynq.Server
	convs   *order.Conversations
	in      *asynq.Inspector // wakes waiting tasks, looks up orphans

	wakeCtx    context.Context // ends at Shutdown
	stopWaking context.CancelFunc
	wakes      sync.WaitGroup
}

// New checks opts, fills in defaults and returns a Worker.
func New(opts Options) (*Worker, error) {
	switch {
	case opts.Redis == nil:
		return nil, errors.New("worker: Options.Redis is required")
	case opts.Graph == nil:
		return nil, errors.New("worker: Options.Graph is required")
	case opts.Tokens == nil:
		return nil, errors.New("worker: Options.Tokens is required")
	}
	setDefault(&opts.Concurrency, DefaultConcurrency)
	setDefault(&opts.MaxWait, DefaultMaxWait)
	setDefault(&opts.BackoffBase, DefaultBackoffBase)
	setDefault(&opts.BackoffCap, DefaultBackoffCap)
	setDefault(&opts.PauseRecheck, DefaultPauseRecheck)
	setDefault(&opts.ThrottlePause, DefaultThrottlePause)
	setDefault(&opts.ShutdownTimeout, DefaultShutdownTimeout)
	setDefault(&opts.PollInterval, DefaultPollInterval)
	setDefault(&opts.ForwardInterval, DefaultForwardInterval)
	setDefault(&opts.SentRecordTTL, DefaultSentRecordTTL)
	setDefault(&opts.OrderRecheck, DefaultOrderRecheck)
	setDefault(&opts.OrderOrphanGrace, DefaultOrderOrphanGrace)
	if opts.UsagePauseAt <= 0 {
		opts.UsagePauseAt = DefaultUsagePauseAt
	}
	if opts.UsageSlowAt <= 0 {
		opts.UsageSlowAt = DefaultUsageSlowAt
	}
	if opts.Queues == nil {
		opts.Queues = job.Queues
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	rdb, err := redisClient(opts.Redis)
	if err != nil {
		return nil, err
	}
	w := &Worker{opts: opts, log: opts.Logger, metrics: opts.Metrics, pauses: opts.Pauses, rdb: rdb,
		convs: order.New(rdb, order.Options{}), in: asynq.NewInspectorFromRedisClient(rdb)}
	w.wakeCtx, w.stopWaking = context.WithCancel(context.Background())
	if w.pauses == nil {
		w.pauses = ratelimit.NewPauses(rdb, "")
	}
	w.srv = asynq.NewServer(opts.Redis, asynq.Config{
		Concurrency:              opts.Concurrency,
		Queues:                   opts.Queues,
		IsFailure:                isFailure,
		RetryDelayFunc:           w.retryDelay,
		ShutdownTimeout:          opts.ShutdownTimeout,
		TaskCheckInterval:        opts.PollInterval,
		DelayedTaskCheckInterval: opts.ForwardInterval,
		Logger:                   asynqLogger{opts.Logger},
		LogLevel:                 asynq.WarnLevel,
	})
	return w, nil
}

func setDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Start starts processing in the background. Stop with Shutdown.
func (w *Worker) Start() error {
	mux := asynq.NewServeMux()
	mux.Handle(job.TaskType, w)
	if err := w.srv.Start(mux); err != nil {
		return fmt.Errorf("worker: start: %w", err)
	}
	return nil
}

// Shutdown stops taking tasks, lets in-flight sends finish within
// Options.ShutdownTimeout, and puts the rest back on the queue.
func (w *Worker) Shutdown() {
	w.srv.Shutdown()
	w.stopWaking() // a waiter not woken looks again by itself
	w.wakes.Wait()
	w.rdb.Close()
}

// Run processes tasks until ctx is done, then shuts down gracefully.
func (w *Worker) Run(ctx context.Context) error {
	if err := w.Start(); err != nil {
		return err
	}
	<-ctx.Done()
	w.log.Info("shutting down: finishing in-flight sends", "timeout", w.opts.ShutdownTimeout)
	w.Shutdown()
	return nil
}

// Pauses returns the shared pause state the worker uses.
func (w *Worker) Pauses() *ratelimit.Pauses { return w.pauses }

// TokensChanged lifts token pauses (token_invalid, token_missing) of the
// given Pages, for every worker: their token was replaced, so sending can
// resume. Manual and policy pauses stay. Call it after a token reload.
func (w *Worker) TokensChanged(ctx context.Context, pageIDs []string) {
	for _, id := range pageIDs {
		lifted, err := w.pauses.ResumeIf(ctx, id, ratelimit.ReasonTokenInvalid, ratelimit.ReasonTokenMissing)
		if err != nil {
			w.log.Error("lift token pause", "page_id", id, "err", err)
			continue
		}
		if lifted {
			w.log.Info("token replaced: page resumed", "page_id", id)
		}
		// Another process may have lifted it first; this one's gauges
		// must come down all the same.
		w.alerts.clear(w.metrics, id)
	}
}

// rescheduleError puts a task back for later without counting a failed
// attempt: the Page is paused or out of rate-limit tokens.
type rescheduleError struct {
	after  time.Duration
	reason string
}

func (e *rescheduleError) Error() string {
	return fmt.Sprintf("rescheduled in %v: %s", e.after.Round(time.Millisecond), e.reason)
}

// retryError is a failed attempt to retry, at Meta's hint when it gave one.
type retryError struct {
	after time.Duration
	err   error
}

func (e *retryError) Error() string { return e.err.Error() }
func (e *retryError) Unwrap() error { return e.err }

// isFailure tells asynq whether an error uses up an attempt. A lease that
// expired (the worker holding the task crashed) is not the message's
// fault, and counting it could bring Retried up to MaxRetry, after which
// asynq archives the task on a mere reschedule.
func isFailure(err error) bool {
	var re *rescheduleError
	return !errors.As(err, &re) && !errors.Is(err, asynq.ErrLeaseExpired)
}

// retryDelay is asynq's RetryDelayFunc: a reschedule's own delay, Meta's
// hint plus a little jitter, or exponential backoff with full jitter.
func (w *Worker) retryDelay(n int, err error, _ *asynq.Task) time.Duration {
	var re *rescheduleError
	if errors.As(err, &re) {
		return re.after
	}
	var rt *retryError
	if errors.As(err, &rt) && rt.after > 0 {
		return rt.after + jitter(rt.after/10)
	}
	return Backoff(n, w.opts.BackoffBase, w.opts.BackoffCap)
}

// Backoff returns a random delay in [0, min(cap, base·2ⁿ)] — exponential
// backoff with full jitter, which spreads retries of many failed tasks
// evenly instead of in waves.
func Backoff(n int, base, cap time.Duration) time.Duration {
	d := cap
	if n < 62 && base < cap>>min(n, 62) {
		d = base << n
	}
	return jitter(d)
}

func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d + 1)
}
