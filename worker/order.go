package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/pagesend/pagesend/internal/order"
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

// awaitTurn reports whether an ordered task may be sent now. When it may
// not, it returns the reschedule error that puts the task back, without
// using an attempt, until the earlier message is finished and wakes it.
// A head that has been there longer than Options.OrderOrphanGrace is
// checked for being an orphan, and released if it is.
func (w *Worker) awaitTurn(ctx context.Context, page, conv string, enqueuedAt time.Time) error {
	me := member(ctx, enqueuedAt)
	for try := 0; ; try++ {
		st, err := w.convs.Check(ctx, conv, me)
		if err != nil {
			return fmt.Errorf("page %s: %w", page, err)
		}
		if st.State != order.Wait {
			return nil
		}
		age := w.opts.Now().Sub(st.HeadSince)
		if try == 0 && !st.HeadSince.IsZero() && age >= w.opts.OrderOrphanGrace && w.orphan(ctx, conv, st.HeadMember) {
			continue // the orphan is gone: look again
		}
		d := min(max(age, w.opts.OrderRecheck), max(maxOrderRecheck, w.opts.OrderRecheck))
		return w.reschedule(page, "order", d+jitter(d/5), "waiting for an earlier message to the same recipient")
	}
}

// orphan reports whether a conversation's head has no live task — never
// stored, deleted, or finished without leaving — and if so removes it.
func (w *Worker) orphan(ctx context.Context, conv, head string) bool {
	queue, id, _ := order.SplitMember(head)
	ti, err := w.in.GetTaskInfo(queue, id)
	switch {
	case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
	case err != nil:
		w.log.Warn("could not look up a conversation's head", "task_id", id, "err", err)
		return false
	case ti.State == asynq.TaskStateCompleted, ti.State == asynq.TaskStateArchived:
	default:
		return false // alive: pending, active, scheduled or retrying
	}
	w.log.Warn("releasing a conversation held by a message that is not queued", "task_id", id, "state", stateOf(ti))
	w.leave(ctx, conv, head)
	return true
}

func stateOf(ti *asynq.TaskInfo) string {
	if ti == nil {
		return "missing"
	}
	return ti.State.String()
}

// release takes a finished task (sent, dropped or dead-lettered) out of
// its conversation and wakes the next message.
func (w *Worker) release(ctx context.Context, conv string, enqueuedAt time.Time) {
	if conv == "" || taskID(ctx) == "" {
		return
	}
	w.leave(ctx, conv, member(ctx, enqueuedAt))
}

func (w *Worker) leave(ctx context.Context, conv, m string) {
	// Like the sent-record, this must happen even when the task's context
	// is ending, and ride out a short Redis blip; if it cannot, the next
	// message finds this one finished when it looks again (orphan).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	var next string
	var err error
	for delay := 100 * time.Millisecond; ; delay *= 2 {
		if next, err = w.convs.Leave(ctx, conv, m); err == nil {
			break
		}
		if ratelimit.Sleep(ctx, delay) != nil {
			w.log.Warn("could not release a conversation; its next message will find out by itself", "err", err)
			return
		}
	}
	if next != "" {
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
