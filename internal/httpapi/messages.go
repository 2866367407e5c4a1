package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/pagesend/pagesend/enqueue"
	"github.com/pagesend/pagesend/graphapi"
	"github.com/pagesend/pagesend/internal/job"
	"github.com/pagesend/pagesend/internal/strictjson"
)

// enqueuedBody is the answer of a stored POST /v1/messages: one entry per
// job, in the order of the request.
type enqueuedBody struct {
	Messages []Enqueued `json:"messages"`
}

// postMessages enqueues one job, or a batch {"jobs": [...]}: every job is
// decoded and validated first, and one problem anywhere stores nothing.
func (a *API) postMessages(w http.ResponseWriter, r *http.Request) {
	if !isJSON(r.Header.Get("Content-Type")) {
		writeError(w, http.StatusUnsupportedMediaType, codeUnsupportedType, "send Content-Type: application/json")
		return
	}
	tooLarge := fmt.Sprintf("body over %d bytes; split the batch", a.opts.MaxBody)
	if r.ContentLength > a.opts.MaxBody {
		writeError(w, http.StatusRequestEntityTooLarge, codeTooLarge, tooLarge)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.opts.MaxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			writeError(w, http.StatusRequestEntityTooLarge, codeTooLarge, tooLarge)
			return
		}
		writeError(w, http.StatusBadRequest, codeInvalid, "could not read the body")
		return
	}
	jobs, probs := a.parseJobs(body)
	if len(probs) > 0 {
		annotate(r, slog.Int("problems", len(probs)))
		writeJSON(w, http.StatusBadRequest, errorBody{Error: codeInvalid, Message: summary(probs), Problems: probs})
		return
	}

	ctx, cancel := a.redisCtx(r)
	defer cancel()
	infos, err := a.client.EnqueueBatch(ctx, jobs)
	stored := enqueuedOf(infos)
	fresh, dups := 0, 0
	for _, in := range infos {
		if in.Duplicate {
			dups++
		} else {
			fresh++
		}
	}
	a.metrics.jobs(fresh, dups)
	annotate(r, slog.Int("jobs", len(jobs)), slog.Int("new", fresh), slog.Int("duplicate", dups))

	if err != nil {
		a.enqueueFailed(w, r, err, stored)
		return
	}
	code := http.StatusOK // every job was already queued: a retry of a request that worked
	if fresh > 0 {
		code = http.StatusAccepted
	}
	if len(stored) == 1 {
		w.Header().Set("Location", "/v1/messages/"+url.PathEscape(stored[0].ID))
	}
	writeJSON(w, code, enqueuedBody{Messages: stored})
}

// enqueueFailed answers a batch that failed while being stored: 409 when a
// job's idempotency_key belongs to a dead-lettered job, 503 when Redis
// failed. Both list the jobs stored before the failure.
func (a *API) enqueueFailed(w http.ResponseWriter, r *http.Request, err error, stored []Enqueued) {
	if be, ok := errors.AsType[*enqueue.BatchError](err); ok {
		// parseJobs validated every job already; this is a safety net.
		var probs []Problem
		for _, inv := range be.Invalid {
			probs = append(probs, problemsOf(inv.Index, inv.Err)...)
		}
		writeJSON(w, http.StatusBadRequest, errorBody{Error: codeInvalid, Message: summary(probs), Problems: probs})
		return
	}
	msg := err.Error()
	if pe, ok := errors.AsType[*enqueue.PartialError](err); ok {
		msg = pe.Err.Error()
	}
	if errors.Is(err, enqueue.ErrKeyDeadLettered) {
		idx := len(stored) // jobs are stored in order; the refused one is next
		writeJSON(w, http.StatusConflict, errorBody{
			Error:    codeDeadLettered,
			Message:  fmt.Sprintf("job %d: %s; jobs before it were stored, it and those after it were not", idx, msg),
			Job:      &idx,
			Messages: stored,
		})
		return
	}
	a.log.Warn("enqueue failed", "err", err, "stored", len(stored))
	text := "Redis is unavailable; nothing was stored"
	if len(stored) > 0 {
		text = fmt.Sprintf("Redis failed after %d jobs were stored (listed); retrying the batch is safe only for jobs with an idempotency_key", len(stored))
	}
	writeUnavailable(w, text, stored)
}

// parseJobs decodes and validates the body: one job, or {"jobs": [...]}.
// It returns every problem of every job.
func (a *API) parseJobs(body []byte) ([]enqueue.Job, []Problem) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, []Problem{{Message: `empty body: want a job, or {"jobs": [...]}`}}
	}
	if json.Valid(trimmed) && trimmed[0] != '{' {
		return nil, []Problem{{Message: `want a job object, or {"jobs": [...]}`}}
	}
	var probe map[string]json.RawMessage
	_ = json.Unmarshal(trimmed, &probe) // invalid JSON is reported by ParseJob, with its position
	if _, isBatch := probe["jobs"]; !isBatch {
		j, err := job.ParseJob(trimmed)
		if err != nil {
			return nil, problemsOf(0, err)
		}
		return []enqueue.Job{*j}, nil
	}

	var batch struct {
		Jobs []json.RawMessage `json:"jobs"`
	}
	if ps := strictjson.Decode(trimmed, "", &batch); len(ps) > 0 {
		probs := make([]Problem, len(ps))
		for i, p := range ps {
			probs[i] = Problem{Path: p.Path, Message: p.Message}
		}
		return nil, probs
	}
	switch n := len(batch.Jobs); {
	case n == 0:
		return nil, []Problem{{Path: "jobs", Message: "at least one job"}}
	case n > a.opts.MaxJobs:
		return nil, []Problem{{Path: "jobs", Message: fmt.Sprintf("%d jobs, at most %d; split the batch", n, a.opts.MaxJobs)}}
	}
	jobs := make([]enqueue.Job, 0, len(batch.Jobs))
	var probs []Problem
	for i, raw := range batch.Jobs {
		j, err := job.ParseJob(raw)
		if err != nil {
			probs = append(probs, problemsOf(i, err)...)
			continue
		}
		jobs = append(jobs, *j)
	}
	if len(probs) > 0 {
		return nil, probs
	}
	return jobs, nil
}

// problemsOf turns a job's error (a *graphapi.ValidationError, normally)
// into Problems of job i.
func problemsOf(i int, err error) []Problem {
	ve, ok := errors.AsType[*graphapi.ValidationError](err)
	if !ok {
		return []Problem{{Job: &i, Message: err.Error()}}
	}
	probs := make([]Problem, len(ve.Problems))
	for k, p := range ve.Problems {
		probs[k] = Problem{Job: &i, Path: p.Path, Message: p.Message}
	}
	return probs
}

// summary is the message of a 400: how many problems, in how many jobs,
// and that nothing was stored.
func summary(probs []Problem) string {
	jobs := map[int]bool{}
	for _, p := range probs {
		if p.Job != nil {
			jobs[*p.Job] = true
		}
	}
	s := "1 problem"
	if len(probs) != 1 {
		s = fmt.Sprintf("%d problems", len(probs))
	}
	if len(jobs) > 1 {
		s += fmt.Sprintf(" in %d jobs", len(jobs))
	}
	return s + "; nothing was enqueued"
}

// isJSON reports whether a Content-Type is JSON in UTF-8, the only
// encoding JSON may use between systems (RFC 8259 §8.1).
func isJSON(contentType string) bool {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/json" {
		return false
	}
	cs, ok := params["charset"]
	return !ok || strings.EqualFold(cs, "utf-8")
}
