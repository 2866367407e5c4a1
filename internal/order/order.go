// Package order keeps the messages of a conversation — one Page and one
// recipient — in the order they were enqueued, across any number of
// worker processes.
//
// Each conversation is a sorted set in Redis whose members are its
// undelivered ordered tasks ("queue:task-id:enqueue-time"), scored by an
// enqueue sequence number; a hash beside it, made only when a message
// has to wait, lists the waiters. A conversation of one message costs one
// small key (about 220 bytes), gone when the message is. The enqueue side adds a task before it stores it on
// the queue (Join); a worker sends a task only while it is the
// conversation's head, the lowest member (Check); a task that is not the
// head registers as a waiter and goes back to the queue without using an
// attempt or holding a worker slot; when the head is finished — sent,
// dropped or dead-lettered — the worker removes it (Leave) and is told
// which waiter to wake, which it moves to the front of its queue at once.
//
// The rules, so that nothing waits forever:
//   - A dropped or dead-lettered message releases the conversation: the
//     next one is sent. Re-running a dead-lettered task later sends it
//     outside the order.
//   - A task that was never stored (its producer died between Join and the
//     enqueue), or was deleted by an operator, or finished without leaving,
//     is an orphan; a waiter that finds the head older than a grace period
//     asks the queue for it (the worker does) and removes it with Leave
//     when it is gone, completed or archived.
//   - Each conversation's keys expire a while (Options.TTL) after their
//     last enqueue, so a conversation abandoned for that long cannot hold
//     memory or its messages forever.
//
// Three scripts, one round trip each: Join at enqueue, Check before a
// send, Leave after it.
package order

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// DefaultTTL is how long a conversation's keys live after its last
// enqueue or wait.
const DefaultTTL = 30 * 24 * time.Hour

// Conversations is the ordering state in Redis. It is safe for concurrent
// use.
type Conversations struct {
	rdb    redis.UniversalClient
	prefix string
	ttl    time.Duration
}

// Options configures Conversations. The zero value is usable.
type Options struct {
	// Prefix starts every key. Empty: "pagesend".
	Prefix string
	// TTL is how long a conversation's keys are kept after its last
	// enqueue or wait. Zero: DefaultTTL.
	TTL time.Duration
}

// New returns the conversations kept in rdb.
func New(rdb redis.UniversalClient, opts Options) *Conversations {
	if opts.Prefix == "" {
		opts.Prefix = "pagesend"
	}
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	return &Conversations{rdb: rdb, prefix: opts.Prefix + ":conv:", ttl: opts.TTL}
}

// Member is the member of a task in its conversation: its queue, its id
// and when it was enqueued (milliseconds, base 36), which tells a waiter
// how long the head has been there.
func Member(queue, taskID string, enqueuedAt time.Time) string {
	return queue + ":" + taskID + ":" + strconv.FormatInt(enqueuedAt.UnixMilli(), 36)
}

// SplitMember returns the queue, task id and enqueue time of a member
// (the task id may itself hold colons). The time is zero when the member
// has none.
func SplitMember(m string) (queue, taskID string, enqueuedAt time.Time) {
	queue, rest, _ := strings.Cut(m, ":")
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return queue, rest, time.Time{}
	}
	ms, err := strconv.ParseInt(rest[i+1:], 36, 64)
	if err != nil {
		return queue, rest, time.Time{}
	}
	return queue, rest[:i], time.UnixMilli(ms)
}

// keys are the conversation's sorted set and its hash of waiters.
func (c *Conversations) keys(conv string) []string {
	k := c.prefix + "{" + conv + "}"
	return []string{k, k + ":w"}
}

// Joined is what Join reports.
type Joined struct {
	// Added is false when the member was already in the conversation.
	Added bool
	// Head is true when the member is the conversation's head: nothing
	// enqueued before it is still undelivered.
	Head bool
}

// joinScript adds ARGV[1] at the conversation's tail unless it is there.
// ARGV[2] is the TTL in ms, ARGV[3] "1" to register the member as a
// waiter when it is not the head.
var joinScript = redis.NewScript(`
local z, w, m = KEYS[1], KEYS[2], ARGV[1]
local ttl = tonumber(ARGV[2])
if redis.call('ZSCORE', z, m) then
  local head = redis.call('ZRANGE', z, 0, 0)[1]
  return {0, head == m and 1 or 0}
end
local top = redis.call('ZRANGE', z, -1, -1, 'WITHSCORES')
local seq = 1
if top[2] then seq = tonumber(top[2]) + 1 end
redis.call('ZADD', z, seq, m)
if redis.call('PTTL', z) < ttl then redis.call('PEXPIRE', z, ttl) end
if seq == 1 then return {1, 1} end
if ARGV[3] == '1' then
  redis.call('HSET', w, m, 1)
  if redis.call('PTTL', w) < ttl then redis.call('PEXPIRE', w, ttl) end
end
return {1, 0}
`)

// Join adds a task's member at the end of its conversation. Call it before
// the task is stored on the queue, so a worker never sees an ordered task
// that is not in its conversation. wait registers the member as a waiter
// at once when it is not the head: its task can be stored scheduled far
// ahead, and Leave wakes it when its turn comes, so it is never fetched
// just to be put back.
//
// hold is how long the message may stay undelivered beyond the TTL (a
// send_at that far ahead): the conversation's keys are kept at least the
// TTL past it, so a message scheduled months ahead still holds the ones
// enqueued after it.
func (c *Conversations) Join(ctx context.Context, conv, member string, wait bool, hold time.Duration) (Joined, error) {
	w := "0"
	if wait {
		w = "1"
	}
	v, err := joinScript.Run(ctx, c.rdb, c.keys(conv), member, (c.ttl + max(hold, 0)).Milliseconds(), w).Int64Slice()
	if err != nil {
		return Joined{}, fmt.Errorf("join conversation: %w", err)
	}
	return Joined{Added: v[0] == 1, Head: v[1] == 1}, nil
}

// The states Check reports.
const (
	// Free: the member is not in its conversation (unordered, already
	// released, or re-run after its dead-letter): send without waiting.
	Free = iota
	// Head: the member is the conversation's head: send.
	Head
	// Wait: an earlier message is undelivered; the member is registered
	// as a waiter, to be woken by Leave.
	Wait
)

// Status is what Check reports.
type Status struct {
	State int
	// HeadMember and HeadSince are the head and when it was enqueued, for
	// State Wait (HeadSince is zero when unknown).
	HeadMember string
	HeadSince  time.Time
}

var checkScript = redis.NewScript(`
local z, w, m = KEYS[1], KEYS[2], ARGV[1]
if not redis.call('ZSCORE', z, m) then return {0} end
local head = redis.call('ZRANGE', z, 0, 0)[1]
if head == m then
  redis.call('HDEL', w, m)
  return {1}
end
redis.call('HSET', w, m, 1)
local ttl = tonumber(ARGV[2])
for _, k in ipairs(KEYS) do
  if redis.call('PTTL', k) < ttl then redis.call('PEXPIRE', k, ttl) end
end
return {2, head}
`)

// Check tells whether a member may be sent now, and registers it as a
// waiter when it may not.
func (c *Conversations) Check(ctx context.Context, conv, member string) (Status, error) {
	return decodeCheck(checkScript.Run(ctx, c.rdb, c.keys(conv), member, c.ttl.Milliseconds()))
}

// QueueCheck is Check for a pipeline: it queues the script on pipe by its
// SHA and returns the function that decodes the answer once the pipeline
// has run. If Redis does not know the script yet (a fresh or failed-over
// Redis), that function runs it on its own, loading it.
func (c *Conversations) QueueCheck(ctx context.Context, pipe redis.Pipeliner, conv, member string) func() (Status, error) {
	cmd := checkScript.EvalSha(ctx, pipe, c.keys(conv), member, c.ttl.Milliseconds())
	return func() (Status, error) {
		if err := cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			return c.Check(ctx, conv, member)
		}
		return decodeCheck(cmd)
	}
}

// QueueLeave is Leave for a pipeline, like QueueCheck.
func (c *Conversations) QueueLeave(ctx context.Context, pipe redis.Pipeliner, conv, member string) func() (string, error) {
	cmd := leaveScript.EvalSha(ctx, pipe, c.keys(conv), member)
	return func() (string, error) {
		if err := cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			return c.Leave(ctx, conv, member)
		}
		return decodeLeave(cmd)
	}
}

func decodeCheck(cmd *redis.Cmd) (Status, error) {
	v, err := cmd.Slice()
	if err != nil {
		return Status{}, fmt.Errorf("check conversation order: %w", err)
	}
	st := Status{State: int(v[0].(int64))}
	if st.State == Wait && len(v) == 2 {
		st.HeadMember, _ = v[1].(string)
		_, _, st.HeadSince = SplitMember(st.HeadMember)
	}
	return st, nil
}

var leaveScript = redis.NewScript(`
local z, w, m = KEYS[1], KEYS[2], ARGV[1]
local removed = redis.call('ZREM', z, m)
redis.call('HDEL', w, m)
local head = redis.call('ZRANGE', z, 0, 0)[1]
if not head then
  redis.call('DEL', w)
  return {removed, ''}
end
if redis.call('HDEL', w, head) == 1 then return {removed, head} end
return {removed, ''}
`)

// Leave removes a finished member from its conversation. When the new head
// is a registered waiter it returns it (and unregisters it): the caller
// wakes its task. A member that is not there is no error.
func (c *Conversations) Leave(ctx context.Context, conv, member string) (wake string, err error) {
	return decodeLeave(leaveScript.Run(ctx, c.rdb, c.keys(conv), member))
}

func decodeLeave(cmd *redis.Cmd) (wake string, err error) {
	v, err := cmd.Slice()
	if err != nil {
		return "", fmt.Errorf("leave conversation: %w", err)
	}
	wake, _ = v[1].(string)
	return wake, nil
}

// Len is how many undelivered ordered messages a conversation has.
func (c *Conversations) Len(ctx context.Context, conv string) (int64, error) {
	return c.rdb.ZCard(ctx, c.keys(conv)[0]).Result()
}

// WaitReason is in the error of a task put back to wait for its turn,
// which is how Wake tells it from a task backing off after a failure.
const WaitReason = "waiting for an earlier message to the same recipient"

// wakeDelays are the pauses between Wake's tries.
var wakeDelays = []time.Duration{0, 10 * time.Millisecond, 50 * time.Millisecond, 200 * time.Millisecond, time.Second, 2 * time.Second}

// Wake moves a woken waiter's task to the front of its queue (asynq's
// RunTask) when it waits scheduled or for a retry. It tries again for a
// few seconds while the task is still running (it registered as a waiter
// and is being put back) or not stored yet (its enqueue is in flight); if
// it never can, the task looks again by itself when its wait ends. A task
// that is pending, finished or archived is left as it is: an operator's
// archive is not undone.
func Wake(ctx context.Context, in *asynq.Inspector, member string) error {
	queue, id, _ := SplitMember(member)
	var err error
	for _, d := range wakeDelays {
		if d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		var ti *asynq.TaskInfo
		ti, err = in.GetTaskInfo(queue, id)
		switch {
		case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
			continue
		case err != nil:
			return fmt.Errorf("wake task %s: %w", id, err)
		}
		switch ti.State {
		case asynq.TaskStateActive:
			err = errors.New("still running")
			continue
		case asynq.TaskStateScheduled:
			// Only a message that had to wait at enqueue is both scheduled
			// and a registered waiter (one with send_at registers when it
			// runs).
		case asynq.TaskStateRetry:
			if !strings.Contains(ti.LastErr, WaitReason) {
				// It has had its turn since it registered, and now backs
				// off after a failure: its backoff stands.
				return nil
			}
		default:
			return nil
		}
		err = in.RunTask(queue, id)
		switch {
		case err == nil, strings.Contains(err.Error(), "already in pending"):
			return nil
		case errors.Is(err, asynq.ErrTaskNotFound), strings.Contains(err.Error(), "already running"):
			continue
		default:
			return fmt.Errorf("wake task %s: %w", id, err)
		}
	}
	return fmt.Errorf("wake task %s: gave up: %w", id, err)
}
