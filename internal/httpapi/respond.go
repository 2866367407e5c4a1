package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/pagesend/pagesend/enqueue"
)

// The values of an error body's "error" field: a word a client can branch
// on, beside a message for people.
const (
	codeInvalid          = "invalid"
	codeUnauthorized     = "unauthorized"
	codeForbidden        = "forbidden"
	codeNotFound         = "not_found"
	codeNotPaused        = "not_paused"
	codeMethodNotAllowed = "method_not_allowed"
	codeDeadLettered     = "dead_lettered"
	codeTooLarge         = "too_large"
	codeUnsupportedType  = "unsupported_media_type"
	codeUnavailable      = "unavailable"
	codeInternal         = "internal"
)

// errorBody is every error answer. Problems is set on 400; Job and
// Messages on 409 and on a 503 after part of a batch was stored.
type errorBody struct {
	Error    string     `json:"error"`
	Message  string     `json:"message"`
	Problems []Problem  `json:"problems,omitempty"`
	Job      *int       `json:"job,omitempty"`
	Messages []Enqueued `json:"messages,omitempty"`
}

// Problem is one problem with a request: the job it is in (its index in
// the batch; 0 for a single job; absent for the body as a whole), the JSON
// path within that job, and what is wrong.
type Problem struct {
	Job     *int   `json:"job,omitempty"`
	Path    string `json:"path"`
	Message string `json:"message"`
}

// Enqueued is one job of a POST /v1/messages answer.
type Enqueued struct {
	// ID is the message id: its idempotency_key, or one pagesend made.
	ID    string `json:"id"`
	Queue string `json:"queue"`
	// ProcessAt is when the message becomes due; absent for a duplicate
	// whose task has already finished.
	ProcessAt *time.Time `json:"process_at,omitempty"`
	// Duplicate: the idempotency_key was already queued; nothing was
	// stored. State is then the existing message's state.
	Duplicate bool   `json:"duplicate"`
	State     string `json:"state,omitempty"`
}

func enqueuedOf(infos []enqueue.Info) []Enqueued {
	out := make([]Enqueued, len(infos))
	for i, in := range infos {
		out[i] = Enqueued{ID: in.ID, Queue: in.Queue, Duplicate: in.Duplicate, State: in.State}
		if !in.ProcessAt.IsZero() {
			at := in.ProcessAt.UTC()
			out[i].ProcessAt = &at
		}
	}
	return out
}

// retryAfter is the Retry-After of a 503: long enough for a Redis
// failover (Sentinel promotes a replica in seconds), short enough that
// producers do not pile up work.
const retryAfter = 5 * time.Second

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"internal","message":"could not encode the answer"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, code int, errCode, message string) {
	writeJSON(w, code, errorBody{Error: errCode, Message: message})
}

// writeUnavailable answers 503 with Retry-After; stored lists what a batch
// stored before Redis went away.
func writeUnavailable(w http.ResponseWriter, message string, stored []Enqueued) {
	w.Header().Set("Retry-After", strconv.Itoa(int(retryAfter/time.Second)))
	writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: codeUnavailable, Message: message, Messages: stored})
}
