// Package enqueue is the producer side of pagesend: it validates send jobs
// and puts them on the queue. Other Go services import it; the `pagesend
// enqueue` command and the HTTP API use it too.
//
// A job that fails validation is never stored: the error is a
// *graphapi.ValidationError whose problems name each field
// ("request.message.text: 2001 characters, at most 2000"). A valid job is
// stored as an asynq task without any access token. An idempotency key
// becomes the task id, so enqueueing the same key again while the task is
// queued, or kept after it finished (Options.Retention), stores nothing new
// and reports Info.Duplicate (the key is unique within a priority queue).
// send_at schedules the task, to the second: never early, at most about a
// second late. priority picks the high, default or low queue.
//
// Jobs are ordered by default: a job is delivered after every ordered job
// enqueued before it for the same Page and recipient (see the order
// package for the rules); "ordered": false opts a job out.
package enqueue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"crypto/rand"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/pagesend/pagesend/graphapi"
	"github.com/pagesend/pagesend/internal/job"
	"github.com/pagesend/pagesend/internal/order"
	"github.com/pagesend/pagesend/shard"
)

// Job is a send job; see the job package for its fields and JSON form.
type Job = job.Job

// Defaults for Options.
const (
	// DefaultMaxAttempts is how many failed attempts a message gets before
	// it is dead-lettered. With the worker's default backoff (bounds of 2 s
	// doubling to a 10 min cap, full jitter) twenty attempts span about an
	// hour on average and two at most.
	// Rate-limit and pause reschedules do not count.
	DefaultMaxAttempts = 20
	// DefaultRetention is how long a finished task (and its result: the
	// message id, or why it was dropped) is kept, and so how long an
	// idempotency key deduplicates after the send.
	DefaultRetention = 24 * time.Hour
	// DefaultTimeout bounds one attempt in the worker, rate-limit wait and
	// Graph call included.
	DefaultTimeout = 2 * time.Minute
	// DefaultOrderRecheck is how long an ordered job that has to wait for
	// an earlier message of its conversation is stored scheduled: the
	// worker that finishes the earlier message wakes it at once, so this
	// only matters when that wake is lost (the worker crashed).
	DefaultOrderRecheck = 30 * time.Second
)

// Options configures a Client. The zero value uses the defaults above.
type Options struct {
	// MaxAttempts: failed attempts before dead-letter. Zero means
	// DefaultMaxAttempts.
	MaxAttempts int
	// Retention: how long finished tasks are kept. Zero means
	// DefaultRetention.
	Retention time.Duration
	// Timeout: the bound on one attempt, whole seconds (asynq stores it in
	// seconds). Zero means DefaultTimeout.
	Timeout time.Duration
	// OrderRecheck: how long an ordered job waiting for its conversation
	// is stored scheduled before it looks again by itself. Zero means
	// DefaultOrderRecheck.
	OrderRecheck time.Duration
	// Now is the clock. Zero means time.Now.
	Now func() time.Time
}

// Client enqueues jobs, on one Redis or spread over shards by Page. It is
// safe for concurrent use.
type Client struct {
	shards []*shardClient
	names  []string
	opts   Options
}

// shardClient is the connections to one shard.
type shardClient struct {
	rdb   redis.UniversalClient
	c     *asynq.Client
	in    *asynq.Inspector
	convs *order.Conversations
}

// NewClient returns a Client with default Options for the Redis at r.
func NewClient(r asynq.RedisConnOpt) *Client {
	return NewClientWithOptions(r, Options{})
}

// NewClientWithOptions returns a Client for the Redis at r.
func NewClientWithOptions(r asynq.RedisConnOpt, opts Options) *Client {
	return newClient([]shard.Shard{{Name: "default", Redis: r}}, opts)
}

// NewShardedClient returns a Client that stores each job on the shard its
// Page belongs to (shard.Pick over the shards' names), so that a Page's
// queue, limits, pauses and conversations live on one Redis. Every
// process must be given the same shard names.
func NewShardedClient(shards []shard.Shard, opts Options) *Client {
	if len(shards) == 0 {
		panic("enqueue: NewShardedClient needs at least one shard")
	}
	return newClient(shards, opts)
}

func newClient(shards []shard.Shard, opts Options) *Client {
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.Retention <= 0 {
		opts.Retention = DefaultRetention
	}
	if opts.Timeout < time.Second {
		// asynq keeps whole seconds; less would become its 30 min default.
		opts.Timeout = DefaultTimeout
	}
	if opts.OrderRecheck <= 0 {
		opts.OrderRecheck = DefaultOrderRecheck
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &Client{names: shard.Names(shards), opts: opts}
	for _, sh := range shards {
		rdb, ok := sh.Redis.MakeRedisClient().(redis.UniversalClient)
		if !ok {
			panic(fmt.Sprintf("enqueue: unsupported Redis connection option %T", sh.Redis))
		}
		c.shards = append(c.shards, &shardClient{
			rdb:   rdb,
			c:     asynq.NewClientFromRedisClient(rdb),
			in:    asynq.NewInspectorFromRedisClient(rdb),
			convs: order.New(rdb, order.Options{}),
		})
	}
	return c
}

// shardOf is the shard a Page's jobs go to.
func (c *Client) shardOf(pageID string) *shardClient {
	return c.shards[shard.Pick(c.names, pageID)]
}

// Close closes the connections to Redis.
func (c *Client) Close() error {
	var errs []error
	for _, s := range c.shards {
		errs = append(errs, s.rdb.Close())
	}
	return errors.Join(errs...)
}

// Conversations returns the ordering state the client writes on the
// shard of pageID.
func (c *Client) Conversations(pageID string) *order.Conversations { return c.shardOf(pageID).convs }

// ErrKeyDeadLettered is returned when an idempotency key belongs to a job
// that was dead-lettered: storing nothing and calling it a duplicate would
// tell the producer a fixed job was accepted when it was not. Re-run the
// archived task, or delete it, then enqueue again.
var ErrKeyDeadLettered = errors.New("idempotency_key belongs to a dead-lettered job")

// Info describes an enqueued job.
type Info struct {
	// ID is the task id: the idempotency key when there is one.
	ID    string `json:"id"`
	Queue string `json:"queue"`
	// Duplicate is true when a task with the same idempotency key already
	// existed, so nothing new was stored. Treat it as success.
	Duplicate bool `json:"duplicate,omitempty"`
	// State is the existing task's state for a duplicate ("pending",
	// "scheduled", "retry", "active", "completed").
	State string `json:"state,omitempty"`
	// ProcessAt is when the task becomes due (the enqueue time for jobs
	// without send_at).
	ProcessAt time.Time `json:"process_at"`
}

// Enqueue validates j and stores it. An invalid job returns a
// *graphapi.ValidationError and stores nothing.
func (c *Client) Enqueue(ctx context.Context, j Job) (Info, error) {
	if err := j.Validate(); err != nil {
		return Info{}, err
	}
	return c.enqueueValid(ctx, &j)
}

// InvalidJob is one invalid job of a batch.
type InvalidJob struct {
	Index int
	Err   *graphapi.ValidationError
}

// BatchError lists the invalid jobs of a batch; none of the batch was
// stored.
type BatchError struct {
	Total   int
	Invalid []InvalidJob
}

// Error names each invalid job and its problems.
func (e *BatchError) Error() string {
	parts := make([]string, 0, len(e.Invalid))
	for _, inv := range e.Invalid {
		parts = append(parts, fmt.Sprintf("job %d: %v", inv.Index, inv.Err))
	}
	return fmt.Sprintf("%d of %d jobs invalid, none enqueued: %s", len(e.Invalid), e.Total, strings.Join(parts, "; "))
}

// PartialError reports a batch that failed part way through storing (Redis
// went away): the first Enqueued jobs are stored, the rest are not.
type PartialError struct {
	Enqueued int
	Err      error
}

// Error says how many jobs were stored before the failure.
func (e *PartialError) Error() string {
	return fmt.Sprintf("enqueued %d jobs, then: %v", e.Enqueued, e.Err)
}

// Unwrap returns the storage error.
func (e *PartialError) Unwrap() error { return e.Err }

// EnqueueBatch validates every job first; if any is invalid it returns a
// *BatchError and stores nothing. Otherwise it stores them in order and
// returns one Info per job. If storing fails part way, it returns the
// Infos of the stored jobs and a *PartialError; retrying the batch with
// idempotency keys is safe.
func (c *Client) EnqueueBatch(ctx context.Context, jobs []Job) ([]Info, error) {
	var bad []InvalidJob
	for i := range jobs {
		if err := jobs[i].Validate(); err != nil {
			var ve *graphapi.ValidationError
			errors.As(err, &ve)
			bad = append(bad, InvalidJob{Index: i, Err: ve})
		}
	}
	if len(bad) > 0 {
		return nil, &BatchError{Total: len(jobs), Invalid: bad}
	}
	infos := make([]Info, 0, len(jobs))
	for i := range jobs {
		info, err := c.enqueueValid(ctx, &jobs[i])
		if err != nil {
			return infos, &PartialError{Enqueued: len(infos), Err: err}
		}
		infos = append(infos, info)
	}
	return infos, nil
}

// ceilSecond rounds t up to a whole second. asynq keeps schedule times in
// whole seconds, truncated, which would send up to a second early; rounded
// up, a job is never sent before its send_at.
func ceilSecond(t time.Time) time.Time {
	if r := t.Truncate(time.Second); !r.Equal(t) {
		return r.Add(time.Second)
	}
	return t
}

func (c *Client) enqueueValid(ctx context.Context, j *Job) (Info, error) {
	sc := c.shardOf(j.PageID)
	now := c.opts.Now()
	p := job.NewPayload(j, now)
	payload, err := p.Encode()
	if err != nil {
		return Info{}, fmt.Errorf("encode job: %w", err)
	}
	queue := j.Queue()
	id := j.IdempotencyKey
	if id == "" {
		id = rand.Text()
	}
	opts := []asynq.Option{
		asynq.Queue(queue),
		asynq.MaxRetry(c.opts.MaxAttempts),
		asynq.Retention(c.opts.Retention),
		asynq.Timeout(c.opts.Timeout),
		asynq.TaskID(id),
	}
	scheduled := j.SendAt.After(now)
	if scheduled {
		opts = append(opts, asynq.ProcessAt(ceilSecond(j.SendAt)))
	}

	// An ordered job joins its conversation before it is stored, so no
	// worker can see it outside the order. One that has to wait for an
	// earlier message is stored scheduled, to be woken when its turn
	// comes, instead of being fetched only to be put back.
	conv := p.Conv()
	member := order.Member(queue, id, p.EnqueuedAt)
	var joined order.Joined
	if conv != "" {
		var hold time.Duration
		if scheduled {
			hold = j.SendAt.Sub(now)
		}
		if joined, err = sc.convs.Join(ctx, conv, member, !scheduled, hold); err != nil {
			return Info{}, fmt.Errorf("enqueue job for page %s: %w", j.PageID, err)
		}
		if joined.Added && !joined.Head && !scheduled {
			opts = append(opts, asynq.ProcessIn(c.opts.OrderRecheck))
		}
	}
	ti, err := sc.c.EnqueueContext(ctx, asynq.NewTask(job.TaskType, payload), opts...)
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		// Nothing was stored: the member this call added must go.
		if joined.Added {
			ctx := context.WithoutCancel(ctx)
			if wake, err := sc.convs.Leave(ctx, conv, member); err == nil && wake != "" {
				_ = order.Wake(ctx, sc.in, wake) // the waiter looks again by itself if this fails
			}
		}
		info := Info{ID: id, Queue: queue, Duplicate: true}
		if ti, ierr := sc.in.GetTaskInfo(queue, id); ierr == nil {
			info.State, info.ProcessAt = ti.State.String(), ti.NextProcessAt
			if ti.State == asynq.TaskStateArchived {
				return info, fmt.Errorf("job %s for page %s: %w (%s); re-run or delete it first", id, j.PageID, ErrKeyDeadLettered, ti.LastErr)
			}
		}
		return info, nil
	}
	if err != nil {
		// The task may have been stored all the same (a timeout after the
		// write), so its member stays: if the task is missing, the next
		// message of the conversation finds its head gone and releases it.
		return Info{}, fmt.Errorf("enqueue job for page %s: %w", j.PageID, err)
	}
	at := ti.NextProcessAt
	if at.IsZero() || (conv != "" && !scheduled) {
		// A job waiting for its conversation is due now as far as the
		// producer is concerned.
		at = now
	}
	return Info{ID: ti.ID, Queue: ti.Queue, ProcessAt: at}, nil
}
