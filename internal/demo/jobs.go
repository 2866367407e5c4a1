package demo

import (
	"context"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/pagesend/pagesend/enqueue"
	"github.com/pagesend/pagesend/ratelimit"
)

// A task is a sample on the queue and what the demo has seen of it.
type task struct {
	sample
	info       enqueue.Info
	dup        *enqueue.Info // the second enqueue of an idempotent sample
	enqueuedAt time.Time
	sendAt     time.Time // zero: now

	ti  *asynq.TaskInfo // latest state
	err error           // why ti could not be read
}

// done reports whether the task has reached a final state.
func (t *task) done() bool {
	return t.ti != nil && (t.ti.State == asynq.TaskStateCompleted || t.ti.State == asynq.TaskStateArchived)
}

// enqueueAll scripts the fake for each sample's recipient and enqueues the
// samples through the enqueue package, as a producer would.
func (d *demo) enqueueAll(ctx context.Context) ([]*task, error) {
	var tasks []*task
	for _, s := range samples() {
		if len(s.script) > 0 {
			d.fake.ScriptRecipient(s.recipient, s.script...)
		}
		now := time.Now()
		j := s.job(now)
		info, err := d.enq.Enqueue(ctx, j)
		if err != nil {
			return nil, fmt.Errorf("demo: enqueue %q: %w", s.label, err)
		}
		t := &task{sample: s, info: info, enqueuedAt: now, sendAt: j.SendAt}
		if s.idempotencyKey != "" {
			again, err := d.enq.Enqueue(ctx, j)
			if err != nil {
				return nil, fmt.Errorf("demo: enqueue %q again: %w", s.label, err)
			}
			t.dup = &again
		}
		tasks = append(tasks, t)
	}
	d.printf("enqueued %d sample jobs on pages %s and %s\n", len(tasks), pageOK, pageStale)
	for _, t := range tasks {
		if t.dup != nil {
			verdict := "reported duplicate, nothing stored"
			if !t.dup.Duplicate {
				verdict = "stored a second copy (unexpected)"
			}
			d.printf("  %s: enqueued again with idempotency_key %q → %s\n", t.label, t.idempotencyKey, verdict)
		}
	}
	return tasks, nil
}

// fixStaleToken waits for the 190 from the fake to pause pageStale, lets
// the pause be seen for a moment, then plays the operator: it replaces the
// store's config with the right token, which lifts the pause through the
// service's OnChange wiring, as a SIGHUP reload of the pages file does.
func (d *demo) fixStaleToken(ctx context.Context, deadline time.Time) {
	d.pauseHit = poll(ctx, deadline, pollEvery, func() bool {
		p, err := d.svc.Pauses.Get(ctx, pageStale)
		return err == nil && p != nil && p.Reason == ratelimit.ReasonTokenInvalid
	})
	switch {
	case d.pauseHit:
		d.printf("page %s: token rejected (190) → paused; messages held\n", pageStale)
	case ctx.Err() != nil:
		return
	default:
		d.printf("page %s: was not paused for its token in time (unexpected); replacing it anyway\n", pageStale)
	}

	wait := time.NewTimer(operatorDelay)
	defer wait.Stop()
	select {
	case <-ctx.Done():
		return
	case <-wait.C:
	}
	d.store.Replace(pagesConfig(false))
	p, err := d.svc.Pauses.Get(ctx, pageStale)
	switch {
	case err != nil:
		d.printf("operator replaced page %s's token; pause state unknown: %v\n", pageStale, err)
	case p != nil:
		d.printf("operator replaced page %s's token; still paused (%s, unexpected)\n", pageStale, p.Reason)
	default:
		d.printf("operator replaced page %s's token → resumed\n", pageStale)
	}
}

// refresh reads the state of every unfinished task and reports whether all
// are finished.
func (d *demo) refresh(tasks []*task) bool {
	all := true
	for _, t := range tasks {
		if t.done() {
			continue
		}
		t.ti, t.err = d.inspect.GetTaskInfo(t.info.Queue, t.info.ID)
		all = all && t.done()
	}
	return all
}
