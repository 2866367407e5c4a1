package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"time"

	"github.com/hibiken/asynq"

	"github.com/pagesend/pagesend/graphapi"
	"github.com/pagesend/pagesend/internal/job"
	"github.com/pagesend/pagesend/internal/order"
	"github.com/pagesend/pagesend/metrics"
	"github.com/pagesend/pagesend/ratelimit"
)

// ProcessTask handles one send task; it is the worker's asynq.Handler.
// A panic is recovered and the task dead-lettered with the panic as its
// reason.
func (w *Worker) ProcessTask(ctx context.Context, t *asynq.Task) (err error) {
	defer func() {
		if p := recover(); p != nil {
			page := job.PeekPageID(t.Payload())
			w.log.Error("panic while sending; dead-lettering the task", "page_id", page, "task_id", taskID(ctx), "panic", p, "stack", string(debug.Stack()))
			conv, enqueuedAt := job.PeekConv(t.Payload())
			err = w.deadLetter(ctx, t, page, job.Result{Reason: fmt.Sprintf("panic: %v", p)}, conv, enqueuedAt)
		}
	}()

	p, err := job.DecodePayload(t.Payload())
	if err != nil {
		page := job.PeekPageID(t.Payload())
		w.log.Error("undecodable task; dead-lettering it", "page_id", page, "task_id", taskID(ctx), "err", err)
		conv, enqueuedAt := job.PeekConv(t.Payload())
		return w.deadLetter(ctx, t, page, job.Result{Reason: "undecodable job: " + err.Error()}, conv, enqueuedAt)
	}
	return w.send(ctx, t, p)
}

func (w *Worker) send(ctx context.Context, t *asynq.Task, p *job.Payload) error {
	page := p.PageID
	id := taskID(ctx)
	// One round trip reads the Page's pause, this task's sent-record, for
	// a sequence how far it got, and for an ordered message whether it is
	// its turn.
	msgs := p.Messages()
	checkSent := !w.opts.DisableDuplicateSuppression && id != ""
	seq := len(msgs) > 1 && id != ""
	var extra []string
	if checkSent {
		extra = append(extra, sentKey(id))
	}
	if seq {
		extra = append(extra, progressKey(id))
	}
	conv := p.Conv()
	if id == "" {
		conv = "" // not run by asynq (an Example, a test): no conversation
	}
	var pause *ratelimit.Pause
	var vals []any
	var err error
	if conv == "" {
		pause, vals, err = w.pauses.GetWith(ctx, page, extra...)
	} else {
		me := member(ctx, p.EnqueuedAt)
		pipe := w.rdb.Pipeline()
		getPause := w.pauses.QueueGetWith(ctx, pipe, page, extra...)
		getTurn := w.convs.QueueCheck(ctx, pipe, conv, me)
		_, _ = pipe.Exec(ctx) // each command's error is read below
		// An ordered message waits, off the worker, for the earlier
		// messages of its conversation.
		st, terr := getTurn()
		if terr != nil {
			return w.redisTrouble(page, terr)
		}
		if st.State == order.Wait {
			if err := w.waitTurn(ctx, page, conv, me, st); err != nil {
				return err
			}
		}
		pause, vals, err = getPause()
	}
	if err != nil {
		return w.redisTrouble(page, err)
	}
	if checkSent {
		if rec, ok := vals[0].(string); ok && w.alreadySent(ctx, t, page, []byte(rec)) {
			w.release(ctx, conv, p.EnqueuedAt)
			return nil
		}
	}
	var done []string // message ids of a sequence's requests already delivered
	if seq {
		done = w.progress(ctx, page, vals[len(vals)-1])
	}

	// A paused Page's tasks wait without calling Meta.
	token, haveToken := w.opts.Tokens.Token(page)
	now := w.opts.Now()
	if pause != nil && pause.Active(now) && !w.tokenReplaced(ctx, pause, token) {
		w.alerts.raise(w.metrics, page, string(pause.Reason))
		return w.reschedule(page, "paused", w.pausedDelay(pause, now), fmt.Sprintf("page %s paused (%s)", page, pause.Reason))
	}
	w.alerts.clear(w.metrics, page)

	if !haveToken {
		return w.act(ctx, t, p, step{i: len(done), n: len(msgs), done: done, conv: conv}, graphapi.Classify(graphapi.ErrNoToken), nil, graphapi.ErrNoToken, "")
	}

	for i := len(done); i < len(msgs); i++ {
		req := msgs[i]
		if w.opts.Limiter != nil {
			kind := ratelimit.Text
			if req.IsAudioVideo() {
				kind = ratelimit.Media
			}
			wait, ok, err := w.opts.Limiter.Reserve(ctx, page, kind, w.opts.MaxWait)
			if err != nil {
				return w.redisTrouble(page, fmt.Errorf("rate limit: %w", err))
			}
			w.metrics.RateLimitWait(page, wait)
			if !ok {
				return w.reschedule(page, "ratelimit", wait, fmt.Sprintf("page %s %s bucket empty", page, kind))
			}
			if err := ratelimit.Sleep(ctx, wait); err != nil {
				return err
			}
		}

		start := time.Now()
		resp, err := w.opts.Graph.Send(ctx, page, token, req)
		w.metrics.GraphDuration(page, time.Since(start))
		w.watchUsage(ctx, page, resp, err)
		d := graphapi.Classify(err)
		if d.Class == graphapi.Sent && i < len(msgs)-1 {
			// A step of a sequence: remember it, so that a retry resumes
			// after it instead of sending it again.
			done = append(done, resp.MessageID)
			w.saveProgress(ctx, page, done)
			continue
		}
		return w.act(ctx, t, p, step{i: i, n: len(msgs), done: done, conv: conv}, d, resp, err, token)
	}
	// Every request was delivered by earlier attempts (the last one's
	// sent-record is missing: suppression is off, or it was lost).
	res := job.Result{Outcome: job.OutcomeSent, PageID: page, MessageIDs: done, MessageID: done[len(done)-1], Attempts: attemptOf(ctx), At: now.UTC()}
	w.writeResult(ctx, t, &res)
	w.release(ctx, conv, p.EnqueuedAt)
	return nil
}

// redisTrouble puts a task back for a moment, without using an attempt,
// when Redis does not answer the checks that must come before a send: it
// is nobody's failure, and counting it would let a long outage — or a
// waiter cycling for days behind a held conversation — use up the attempts
// of a message that never reached Meta.
func (w *Worker) redisTrouble(page string, err error) error {
	w.log.Warn("redis trouble before a send; trying again shortly", "page_id", page, "err", err)
	return w.reschedule(page, metrics.ReasonRedis, time.Second+jitter(time.Second), fmt.Sprintf("page %s: %v", page, err))
}

// step is where a task is in its requests: request i (0-based) of n, the
// message ids of those delivered before it, and the task's conversation
// ("" when it is not ordered).
type step struct {
	i, n int
	done []string
	conv string
}

// progressKey is where a sequence's delivered requests are recorded.
func progressKey(taskID string) string { return "pagesend:progress:" + taskID }

// progress decodes a sequence's progress record (nil: none).
func (w *Worker) progress(ctx context.Context, page string, v any) []string {
	s, ok := v.(string)
	if !ok {
		return nil
	}
	var ids []string
	if err := json.Unmarshal([]byte(s), &ids); err != nil {
		w.log.Warn("unreadable sequence progress; starting over", "page_id", page, "task_id", taskID(ctx), "err", err)
		return nil
	}
	return ids
}

// saveProgress records the message ids of a sequence's delivered requests,
// like the sent-record: with its own deadline, riding out a Redis blip.
// A failure is logged: a retry would then send those requests again.
func (w *Worker) saveProgress(ctx context.Context, page string, done []string) {
	b, _ := json.Marshal(done)
	key := progressKey(taskID(ctx))
	err := persist(ctx, func(ctx context.Context) error {
		return w.rdb.Set(ctx, key, b, w.opts.SentRecordTTL).Err()
	})
	if err != nil {
		w.log.Warn("could not record a sequence's progress; a retry would resend its delivered requests", "page_id", page, "task_id", taskID(ctx), "err", err)
	}
}

// tokenReplaced reports whether a token pause no longer applies because
// this worker now holds a different token than the one that was rejected
// (or a token at all, for token_missing), and if so lifts it for every
// worker. This is what resumes a Page after a worker restarts with a
// fixed token, not only after a reload in a running process.
func (w *Worker) tokenReplaced(ctx context.Context, pause *ratelimit.Pause, token graphapi.Secret) bool {
	if pause.Reason != ratelimit.ReasonTokenInvalid && pause.Reason != ratelimit.ReasonTokenMissing {
		return false
	}
	if graphapi.Fingerprint(token) == pause.TokenFingerprint {
		return false
	}
	lifted, err := w.pauses.ResumeIf(ctx, pause.PageID, ratelimit.ReasonTokenInvalid, ratelimit.ReasonTokenMissing)
	if err != nil {
		w.log.Warn("could not lift a token pause", "page_id", pause.PageID, "err", err)
		return false
	}
	if lifted {
		w.log.Info("page has a new token: resumed", "page_id", pause.PageID, "was", pause.Reason)
	}
	return true
}

// pausedDelay is when a paused Page's task is looked at again: at the end
// of a timed pause, or, for a pause until resumed, after PauseRecheck,
// growing with the pause's age up to maxPauseRecheck, so a Page paused for
// hours does not cycle its whole backlog through Redis every half minute.
func (w *Worker) pausedDelay(p *ratelimit.Pause, now time.Time) time.Duration {
	if !p.Until.IsZero() {
		left := p.Until.Sub(now)
		return left + jitter(left/10+100*time.Millisecond)
	}
	d := min(max(now.Sub(p.Since), w.opts.PauseRecheck), max(maxPauseRecheck, w.opts.PauseRecheck))
	return d + jitter(d/5)
}

// maxPauseRecheck bounds how long a task of a Page paused until resumed
// waits before it looks again: after a resume it is sent within this.
const maxPauseRecheck = 2 * time.Minute

// slower is a Limiter that can lower a Page's rate for a while
// (ratelimit.Redis).
type slower interface {
	SlowDown(ctx context.Context, pageID string, factor float64, d time.Duration) error
}

// usageSlowFactor is what a Page's rate is multiplied by while its usage
// headers are between UsageSlowAt and UsagePauseAt.
const usageSlowFactor = 0.5

// throttlePause is how long a throttling error without a hint from Meta
// pauses the Page: ThrottlePause, doubled for each earlier throttle
// episode of the Page in the last hour (shared by every worker), at most
// an hour. The 613s that concurrent sends get back within half a
// ThrottlePause of each other are one episode.
func (w *Worker) throttlePause(ctx context.Context, page string) time.Duration {
	n, err := w.pauses.CountThrottle(ctx, page, time.Hour, w.opts.ThrottlePause/2)
	if err != nil {
		w.log.Warn("could not count throttles", "page_id", page, "err", err)
		n = 1
	}
	d := w.opts.ThrottlePause
	for i := int64(1); i < n && d < time.Hour; i++ {
		d *= 2
	}
	return min(d, max(time.Hour, w.opts.ThrottlePause))
}

// watchUsage pauses the Page for every worker when Meta's usage headers
// say it is close to being throttled: Meta warns that calling while
// throttled extends the throttle, so stopping before 100% is cheaper than
// the 613 that follows.
func (w *Worker) watchUsage(ctx context.Context, page string, resp *graphapi.SendResponse, err error) {
	var u graphapi.Usage
	var ge *graphapi.Error
	switch {
	case resp != nil:
		u = resp.Usage
	case errors.As(err, &ge):
		u = ge.Usage
	default:
		return
	}
	pct := u.MaxPercent()
	if pct < w.opts.UsageSlowAt {
		return
	}
	if pct < w.opts.UsagePauseAt {
		// Close to the limit: slow the Page down for the fleet, if the
		// limiter can, until the usage has had time to fall.
		if s, ok := w.opts.Limiter.(slower); ok {
			d := max(u.RegainAccessIn(), w.opts.ThrottlePause)
			if err := s.SlowDown(ctx, page, usageSlowFactor, d); err != nil {
				w.log.Warn("could not slow page down", "page_id", page, "err", err)
			} else {
				w.log.Info("usage high: page slowed down", "page_id", page, "usage_percent", pct, "factor", usageSlowFactor, "for", d)
			}
		}
		return
	}
	// Meta's estimate wins when it gives one, as for a throttling error.
	after := u.RegainAccessIn()
	if after <= 0 {
		after = w.opts.ThrottlePause
	}
	detail := fmt.Sprintf("usage headers at %.0f%% (pausing at %.0f%%)", pct, w.opts.UsagePauseAt)
	if perr := w.pausePage(ctx, page, ratelimit.ReasonThrottled, w.opts.Now().Add(after), detail, ""); perr != nil {
		w.log.Warn("could not pause page on high usage", "page_id", page, "err", perr)
		return
	}
	w.log.Warn("usage near Meta's limit: page paused", "page_id", page, "usage_percent", pct, "for", after)
}

// act carries out a classification.
func (w *Worker) act(ctx context.Context, t *asynq.Task, p *job.Payload, st step, d graphapi.Decision, resp *graphapi.SendResponse, sendErr error, used graphapi.Secret) error {
	page := p.PageID
	attempt := attemptOf(ctx)
	res := job.Result{PageID: page, Code: d.Code, Subcode: d.Subcode, Reason: d.Reason, Attempts: attempt, At: w.opts.Now().UTC()}
	if st.n > 1 {
		res.MessageIDs = st.done
		if d.Class != graphapi.Sent {
			res.Reason = fmt.Sprintf("request %d of %d: %s", st.i+1, st.n, d.Reason)
		}
	}
	var ge *graphapi.Error
	if errors.As(sendErr, &ge) {
		res.FBTraceID = ge.FBTraceID
	}
	if d.Class != graphapi.Sent {
		w.metrics.GraphError(page, d.Label)
	}
	log := w.log.With("page_id", page, "task_id", taskID(ctx), "attempt", attempt)
	if d.Code != 0 {
		log = log.With("code", d.Code, "subcode", d.Subcode, "fbtrace_id", res.FBTraceID)
	}

	switch d.Class {
	case graphapi.Sent:
		res.Outcome, res.MessageID, res.RecipientID, res.Reason = job.OutcomeSent, resp.MessageID, resp.RecipientID, ""
		if st.n > 1 {
			res.MessageIDs = append(slices.Clip(st.done), resp.MessageID)
		}
		// The sent-record and the conversation's release, in one round
		// trip, before the task is acknowledged.
		w.settle(ctx, &res, st.conv, p.EnqueuedAt)
		w.writeResult(ctx, t, &res)
		w.metrics.Message(page, metrics.OutcomeSent)
		log.Debug("sent", "message_id", resp.MessageID)
		return nil

	case graphapi.Drop:
		res.Outcome = job.OutcomeDropped
		w.writeResult(ctx, t, &res)
		w.release(ctx, st.conv, p.EnqueuedAt)
		w.metrics.Message(page, metrics.OutcomeDropped)
		log.Info("dropped: will never be deliverable", "reason", d.Reason)
		return nil

	case graphapi.Alert:
		reason := ratelimit.ReasonTokenInvalid
		if errors.Is(sendErr, graphapi.ErrNoToken) {
			reason = ratelimit.ReasonTokenMissing
		}
		if cur, _ := w.opts.Tokens.Token(page); cur != used {
			// The token was replaced while this call was in flight: the
			// rejection is about the old one. Try again with the new.
			log.Info("token rejected, but it has been replaced since; retrying", "reason", d.Reason)
			return w.reschedule(page, "paused", 0, "token replaced during the call")
		}
		if err := w.pausePage(ctx, page, reason, time.Time{}, d.Reason, graphapi.Fingerprint(used)); err != nil {
			return err
		}
		w.alerts.raise(w.metrics, page, string(reason))
		log.Error("page token broken: page paused until the token is replaced", "reason", d.Reason)
		return w.reschedule(page, "paused", w.opts.PauseRecheck, "page "+page+" paused ("+string(reason)+")")

	case graphapi.DeadLetter:
		if d.PageWide {
			if err := w.pausePage(ctx, page, ratelimit.ReasonPolicy, time.Time{}, d.Reason, ""); err != nil {
				return err
			}
			w.alerts.raise(w.metrics, page, string(ratelimit.ReasonPolicy))
			log.Error("page-wide error: page paused until resumed", "reason", d.Reason)
		}
		return w.deadLetter(ctx, t, page, res, st.conv, p.EnqueuedAt)
	}

	// Backoff.
	if d.Throttled {
		// Meta's hint wins when it gives one, shorter or longer than ours.
		after := d.RetryAfter
		if after <= 0 {
			after = w.opts.ThrottlePause
		}
		if d.PageWide {
			if d.RetryAfter <= 0 {
				after = w.throttlePause(ctx, page)
			}
			if err := w.pausePage(ctx, page, ratelimit.ReasonThrottled, w.opts.Now().Add(after), d.Reason, ""); err != nil {
				return err
			}
			log.Warn("throttled: page paused", "for", after, "reason", d.Reason)
		}
		return w.reschedule(page, "throttled", after+jitter(after/10), d.Reason)
	}
	if d.MaxAttempts > 0 && attempt >= d.MaxAttempts {
		res.Reason = fmt.Sprintf("gave up after %d attempts: %s", attempt, d.Reason)
		return w.deadLetter(ctx, t, page, res, st.conv, p.EnqueuedAt)
	}
	if maxRetry, ok := asynq.GetMaxRetry(ctx); ok && attempt >= maxRetry {
		res.Reason = fmt.Sprintf("retries exhausted after %d attempts: %s", attempt, d.Reason)
		return w.deadLetter(ctx, t, page, res, st.conv, p.EnqueuedAt)
	}
	w.metrics.Message(page, metrics.OutcomeRetried)
	log.Warn("send failed; will retry", "reason", d.Reason, "maybe_delivered", d.MaybeDelivered)
	return &retryError{after: d.RetryAfter, err: fmt.Errorf("page %s: %s", page, d.Reason)}
}

// deadLetter records the reason, releases the task's conversation (conv,
// enqueuedAt; "" for none) and archives the task (asynq SkipRetry).
func (w *Worker) deadLetter(ctx context.Context, t *asynq.Task, page string, res job.Result, conv string, enqueuedAt time.Time) error {
	res.Outcome = job.OutcomeDeadLettered
	res.PageID = page
	if res.Attempts == 0 {
		res.Attempts = attemptOf(ctx)
	}
	if res.At.IsZero() {
		res.At = w.opts.Now().UTC()
	}
	w.writeResult(ctx, t, &res)
	// A dead-lettered message releases its conversation: the next one is
	// sent. Re-running it later sends it outside the order.
	w.release(ctx, conv, enqueuedAt)
	w.metrics.Message(metricPage(page), metrics.OutcomeDeadLettered)
	w.log.Warn("dead-lettered", "page_id", page, "task_id", taskID(ctx), "code", res.Code, "subcode", res.Subcode, "fbtrace_id", res.FBTraceID, "reason", res.Reason)
	return fmt.Errorf("dead-lettered: %s: %w", res.Reason, asynq.SkipRetry)
}

func (w *Worker) reschedule(page, why string, after time.Duration, reason string) error {
	w.metrics.Rescheduled(page, why)
	return &rescheduleError{after: max(after, 0), reason: reason}
}

func (w *Worker) pausePage(ctx context.Context, page string, reason ratelimit.Reason, until time.Time, detail, tokenFP string) error {
	err := w.pauses.Pause(ctx, ratelimit.Pause{PageID: page, Reason: reason, Detail: detail, Since: w.opts.Now().UTC(), Until: until, TokenFingerprint: tokenFP})
	if err != nil {
		return fmt.Errorf("pause page %s: %w", page, err)
	}
	return nil
}

// writeResult stores the result on the task. It is kept as long as the
// task's retention; a failure to write is logged, not fatal: the outcome
// itself stands.
func (w *Worker) writeResult(ctx context.Context, t *asynq.Task, res *job.Result) {
	rw := t.ResultWriter()
	if rw == nil {
		return
	}
	if _, err := rw.Write(res.Encode()); err != nil {
		w.log.Warn("could not write task result", "page_id", res.PageID, "task_id", taskID(ctx), "err", err)
	}
}

// attemptOf is the 1-based number of this attempt.
func attemptOf(ctx context.Context) int {
	n, _ := asynq.GetRetryCount(ctx)
	return n + 1
}

func taskID(ctx context.Context) string {
	id, _ := asynq.GetTaskID(ctx)
	return id
}

// metricPage labels tasks whose Page could not be read.
func metricPage(page string) string {
	if page == "" {
		return "unknown"
	}
	return page
}

// sentKey is where a task's successful send is recorded.
func sentKey(taskID string) string { return "pagesend:sent:" + taskID }

// alreadySent completes a redelivered task whose send was recorded
// (record is the sent-record read with the pause), without a second Graph
// call. The record is written before the task is acknowledged, so after a
// crash between the two the message is not sent again. What remains is
// the window between Meta accepting the call and the record being
// written: a crash there still sends twice.
func (w *Worker) alreadySent(ctx context.Context, t *asynq.Task, page string, record []byte) bool {
	res, err := job.DecodeResult(record)
	if err != nil {
		w.log.Warn("unreadable sent-record; sending", "page_id", page, "task_id", taskID(ctx), "err", err)
		return false
	}
	w.writeResult(ctx, t, res)
	w.metrics.DuplicateSuppressed(page)
	w.log.Info("already sent before a redelivery; not sending again", "page_id", page, "task_id", taskID(ctx), "message_id", res.MessageID)
	return true
}
