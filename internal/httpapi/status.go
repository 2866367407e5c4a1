package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/hibiken/asynq"

	"github.com/pagesend/pagesend/internal/job"
)

// queueOrder is where GET /v1/messages/{id} looks for an id. An
// idempotency key is unique within a queue only, so the same key may name
// a message in each; ?queue= picks one.
var queueOrder = []string{job.QueueHigh, job.QueueDefault, job.QueueLow}

// Status is what GET /v1/messages/{id} tells of a message. It never holds
// the message's text or its recipient's identifier.
type Status struct {
	ID    string `json:"id"`
	Queue string `json:"queue"`
	// State is asynq's: scheduled (waiting for send_at), pending (due,
	// waiting for a worker), active (being sent), retry (failed, will run
	// again at NextAttemptAt), completed (Outcome sent or dropped), or
	// archived (dead-lettered: Outcome dead_lettered, with Reason).
	State string `json:"state"`
	// PageID is the Page that sends; absent when the stored job cannot be
	// read at all.
	PageID string `json:"page_id,omitempty"`
	// Recipient is the kind of recipient identifier (id, phone_number,
	// user_ref, comment_id, …), never the identifier.
	Recipient  string     `json:"recipient,omitempty"`
	EnqueuedAt *time.Time `json:"enqueued_at,omitempty"`
	// ProcessAt is when a scheduled or pending message is due.
	ProcessAt *time.Time `json:"process_at,omitempty"`
	// NextAttemptAt is when a message in retry runs again.
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	// FailedAttempts counts failed attempts so far; rate-limit and pause
	// reschedules are not failures.
	FailedAttempts int        `json:"failed_attempts"`
	LastError      string     `json:"last_error,omitempty"`
	LastFailedAt   *time.Time `json:"last_failed_at,omitempty"`
	// Outcome is sent or dropped for completed messages (absent in the
	// rare case the worker could not record its result), dead_lettered
	// for archived ones.
	Outcome    string     `json:"outcome,omitempty"`
	MessageID  string     `json:"message_id,omitempty"`
	MessageIDs []string   `json:"message_ids,omitempty"`
	Reason     string     `json:"reason,omitempty"`
	Code       int        `json:"code,omitempty"`
	Subcode    int        `json:"subcode,omitempty"`
	FBTraceID  string     `json:"fbtrace_id,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

// getMessage answers where a message is.
func (a *API) getMessage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	queues := queueOrder
	if q := r.URL.Query().Get("queue"); q != "" {
		if _, ok := job.Queues[q]; !ok {
			writeJSON(w, http.StatusBadRequest, errorBody{Error: codeInvalid, Message: "bad query parameter",
				Problems: []Problem{{Path: "queue", Message: `"` + q + `" is not one of high, default, low`}}})
			return
		}
		queues = []string{q}
	}
	if !possibleID(id) {
		writeError(w, http.StatusNotFound, codeNotFound, "no message with this id")
		return
	}
	ctx, cancel := a.redisCtx(r)
	defer cancel()
	ti, err := a.findTask(ctx, queues, id)
	switch {
	case err != nil:
		a.log.Warn("look up message", "err", err)
		writeUnavailable(w, "Redis is unavailable", nil)
	case ti == nil:
		writeError(w, http.StatusNotFound, codeNotFound, "no message with this id (finished messages are kept 24 hours)")
	default:
		writeJSON(w, http.StatusOK, statusOf(ti))
	}
}

// findTask looks id up in each queue of each shard in turn. It returns nil, nil when no
// queue has it. asynq's Inspector takes no context, so the lookups run
// aside and a Redis that does not answer costs the request ctx's time,
// not more.
func (a *API) findTask(ctx context.Context, queues []string, id string) (*asynq.TaskInfo, error) {
	type found struct {
		ti  *asynq.TaskInfo
		err error
	}
	res := make(chan found, 1)
	go func() {
		for _, sh := range a.shards {
			for _, q := range queues {
				ti, err := sh.inspect.GetTaskInfo(q, id)
				if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
					continue
				}
				if err == nil && ti.Type != job.TaskType {
					continue // another application's task in the same Redis
				}
				res <- found{ti, err}
				return
			}
		}
		res <- found{}
	}()
	select {
	case f := <-res:
		return f.ti, f.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// statusOf describes a task from its stored payload and result.
func statusOf(ti *asynq.TaskInfo) Status {
	s := Status{ID: ti.ID, Queue: ti.Queue, State: ti.State.String(), FailedAttempts: ti.Retried, LastError: ti.LastErr}
	if ti.State == asynq.TaskStateAggregating {
		s.State = asynq.TaskStatePending.String() // pagesend uses no groups
	}
	if p, err := job.DecodePayload(ti.Payload); err == nil {
		s.PageID, s.Recipient = p.PageID, p.Messages()[0].Recipient.Kind()
		s.EnqueuedAt = timePtr(p.EnqueuedAt)
	} else {
		s.PageID = job.PeekPageID(ti.Payload)
	}
	s.LastFailedAt = timePtr(ti.LastFailedAt)
	switch ti.State {
	case asynq.TaskStateScheduled, asynq.TaskStatePending, asynq.TaskStateAggregating:
		s.ProcessAt = timePtr(ti.NextProcessAt)
	case asynq.TaskStateRetry:
		s.NextAttemptAt = timePtr(ti.NextProcessAt)
	case asynq.TaskStateCompleted, asynq.TaskStateArchived:
		s.LastError = ""
		s.FinishedAt = timePtr(ti.CompletedAt)
		if ti.State == asynq.TaskStateArchived {
			s.Outcome, s.Reason, s.FinishedAt = job.OutcomeDeadLettered, archiveReason(ti.LastErr), timePtr(ti.LastFailedAt)
		}
		if res, err := job.DecodeResult(ti.Result); err == nil && len(ti.Result) > 0 {
			if ti.State == asynq.TaskStateCompleted {
				s.Outcome = res.Outcome
			}
			s.MessageID, s.MessageIDs, s.Code, s.Subcode, s.FBTraceID = res.MessageID, res.MessageIDs, res.Code, res.Subcode, res.FBTraceID
			if res.Reason != "" {
				s.Reason = res.Reason
			}
			if !res.At.IsZero() {
				s.FinishedAt = timePtr(res.At)
			}
		}
	}
	return s
}

// archiveReason is why an archived task without a result was archived:
// asynq's last error, or an operator archived it by hand.
func archiveReason(lastErr string) string {
	if lastErr = strings.TrimSuffix(lastErr, ": "+asynq.SkipRetry.Error()); lastErr != "" {
		return lastErr
	}
	return "archived by an operator"
}

// possibleID reports whether id could name a task: an idempotency key's
// rules (printable, no spaces, at most job.MaxIdempotencyKey bytes), which
// asynq's generated UUIDs also meet.
func possibleID(id string) bool {
	return id != "" && len(id) <= job.MaxIdempotencyKey &&
		strings.IndexFunc(id, func(r rune) bool { return !unicode.IsPrint(r) || r == ' ' }) < 0
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}
