package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/pagesend/pagesend/internal/job"
	"github.com/pagesend/pagesend/internal/order"
	"github.com/pagesend/pagesend/metrics"
	"github.com/pagesend/pagesend/ratelimit"
)

// maxOrderRecheck bounds how long a task waiting for its conversation is
// put back for before it looks again by itself (it is normally woken as
// soon as its turn comes).
const maxOrderRecheck = 2 * time.Minute

// member is the task's member in its conversation.
func member(ctx context.Context, enqueuedAt time.Time) string {
	q, _ := asynq.GetQueueName(ctx)
	return order.Member(q, taskID(ctx), enqueuedAt)
}

// waitTurn handles a task that Check found waiting behind an earlier
// message: it returns the reschedule error that puts the task back,
// without using an attempt, until the earlier message is finished and
// wakes it — or nil if the head turns out to be an orphan, now released,
// and the task may go. A head older than Options.OrderOrphanGrace is
// checked for being an orphan.
func (w *Worker) waitTurn(ctx context.Context, page, conv, me string, st order.Status) error {
	age := w.opts.Now().Sub(st.HeadSince)
	if !st.HeadSince.IsZero() && age >= w.opts.OrderOrphanGrace && w.orphan(ctx, conv, st.HeadMember, me) {
		again, err := w.convs.Check(ctx, conv, me)
		if err != nil {
			return fmt.Errorf("page %s: %w", page, err)
		}
		if again.State != order.Wait {
			return nil
		}
		st = again
		age = w.opts.Now().Sub(st.HeadSince)
	}
	d := min(max(age, w.opts.OrderRecheck), max(maxOrderRecheck, w.opts.OrderRecheck))
	return w.reschedule(page, metrics.ReasonOrder, d+jitter(d/5), order.WaitReason)
}

// orphan reports whether a conversation's head has no live task — never
// stored, deleted, finished without leaving, or a stale member of a task
// that joined again (its producer retried an enqueue whose first join had
// gone through) — and if so removes it. me is the caller's own member,
// which is not woken.
func (w *Worker) orphan(ctx context.Context, conv, head, me string) bool {
	queue, id, _ := order.SplitMember(head)
	ti, err := w.in.GetTaskInfo(queue, id)
	switch {
	case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
	case err != nil:
		w.log.Warn("could not look up a conversation's head", "task_id", id, "err", err)
		return false
	case ti.State == asynq.TaskStateCompleted, ti.State == asynq.TaskStateArchived:
	default:
		// A live task, but is head its member? A task that joined twice
		// has only one member that is really its own.
		_, at := job.PeekConv(ti.Payload)
		if order.Member(queue, id, at) == head {
			return false // alive: pending, active, scheduled or retrying
		}
	}
	w.log.Warn("releasing a conversation held by a message that is not queued", "task_id", id, "state", stateOf(ti))
	w.leave(ctx, conv, head, me)
	return true
}

func stateOf(ti *asynq.TaskInfo) string {
	if ti == nil {
		return "missing"
	}
	return ti.State.String()
}

// release takes a finished task (dropped or dead-lettered, or sent with
// its record already written) out of its conversation and wakes the next
// message.
func (w *Worker) release(ctx context.Context, conv string, enqueuedAt time.Time) {
	w.settle(ctx, nil, conv, enqueuedAt)
}

// settle does, in one round trip, what must happen before a finished task
// is acknowledged: write its sent-record (record, unless nil or
// suppression is off) and release its conversation (conv, unless "").
// Both must happen even when the task's context is ending, and ride out a
// short Redis blip (go-redis may return a stale "connection refused" for
// a second after Redis comes back), within a bound well under asynq's
// 30 s lease; both are idempotent, so a retry repeats both. If they
// cannot be written, the message was still delivered: a redelivery would
// then send it again, and the next message of the conversation finds this
// one finished when it looks again (orphan).
func (w *Worker) settle(ctx context.Context, record *job.Result, conv string, enqueuedAt time.Time) {
	id := taskID(ctx)
	recording := record != nil && !w.opts.DisableDuplicateSuppression && id != ""
	leaving := conv != "" && id != ""
	if !recording && !leaving {
		return
	}
	me := member(ctx, enqueuedAt)
	var next string
	err := persist(ctx, func(ctx context.Context) error {
		pipe := w.rdb.Pipeline()
		var set *redis.StatusCmd
		if recording {
			set = pipe.Set(ctx, sentKey(id), record.Encode(), w.opts.SentRecordTTL)
		}
		var leave func() (string, error)
		if leaving {
			leave = w.convs.QueueLeave(ctx, pipe, conv, me)
		}
		_, _ = pipe.Exec(ctx) // each command's error is read below
		var err error
		if recording {
			err = set.Err()
		}
		if leaving {
			var lerr error
			next, lerr = leave()
			err = errors.Join(err, lerr)
		}
		return err
	})
	switch {
	case err == nil:
		if next != "" {
			w.wakeAsync(next)
		}
	case recording:
		w.log.Warn("could not record the send; a redelivery would send again", "page_id", record.PageID, "task_id", id, "err", err)
	default:
		w.log.Warn("could not release a conversation; its next message will find out by itself", "task_id", id, "err", err)
	}
}

// persist runs write until it succeeds, backing off from 100 ms, within a
// deadline of its own (5 s) that holds even when the task's context is
// ending: for what must be written once a send has reached Meta (the
// sent-record, a sequence's progress, the conversation's release), riding
// out a short Redis blip well within asynq's 30 s lease. It returns the
// last error.
func persist(ctx context.Context, write func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	for delay := 100 * time.Millisecond; ; delay *= 2 {
		err := write(ctx)
		if err == nil {
			return nil
		}
		if ratelimit.Sleep(ctx, delay) != nil {
			return err
		}
	}
}

// leave releases another task's member (an orphan), waking the next
// unless that is the caller (me), which goes on by itself.
func (w *Worker) leave(ctx context.Context, conv, m, me string) {
	next, err := w.convs.Leave(ctx, conv, m)
	if err != nil {
		w.log.Warn("could not release a conversation's orphaned head", "err", err)
		return
	}
	if next != "" && next != me {
		w.wakeAsync(next)
	}
}

// wakeAsync moves a waiting task to the front of its queue in the
// background: the waiter may still be on its way back to the queue.
func (w *Worker) wakeAsync(m string) {
	w.wakes.Add(1)
	go func() {
		defer w.wakes.Done()
		if err := order.Wake(w.wakeCtx, w.in, m); err != nil && !errors.Is(err, context.Canceled) {
			w.log.Warn("could not wake the next message of a conversation; it looks again by itself", "err", err)
		}
	}()
}
