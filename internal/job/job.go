// Package job is the format of a send job as it travels from the enqueue
// side through Redis to the worker: the JSON a producer writes (Job), the
// payload stored on the asynq task (Payload), and the result the worker
// writes back (Result). Both sides import it, so the two cannot disagree.
//
// A payload never carries an access token: workers look tokens up by
// page_id.
package job

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/pagesend/pagesend/graphapi"
	"github.com/pagesend/pagesend/internal/strictjson"
)

// TaskType is the asynq task type of a send job.
const TaskType = "pagesend:send"

// The priority queues. Workers read them with weights 6:3:1.
const (
	QueueHigh    = "high"
	QueueDefault = "default"
	QueueLow     = "low"
)

// Queues maps each queue to its weight in asynq's weighted random order.
var Queues = map[string]int{QueueHigh: 6, QueueDefault: 3, QueueLow: 1}

// MaxIdempotencyKey is the longest idempotency key, in bytes; it becomes
// part of a Redis key.
const MaxIdempotencyKey = 200

// Job is what a producer hands pagesend: the Page to send as, the Send API
// request exactly as Meta documents it, and how to queue it.
type Job struct {
	// PageID is the Page that sends; its token comes from the token store.
	PageID string `json:"page_id"`
	// IdempotencyKey, when set, makes enqueueing the same job twice store
	// it once (within the retention window).
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// Request is the Send API body. A job has Request or Requests, not
	// both.
	Request *graphapi.Request `json:"request,omitempty"`
	// Requests is a short sequence of Send API bodies to one recipient
	// (text, then an image, then quick replies, say), sent in order by one
	// task; a retry resumes after the last one delivered. At most
	// MaxSequence.
	Requests []*graphapi.Request `json:"requests,omitempty"`
	// Ordered, when nil or true, delivers the job after every ordered job
	// enqueued before it for the same Page and recipient (a
	// conversation). False sends it whenever it is due, fire-and-forget.
	Ordered *bool `json:"ordered,omitempty"`
	// SendAt schedules the send; zero or past means now.
	SendAt time.Time `json:"send_at,omitzero"`
	// Priority is "high", "default" (when empty) or "low".
	Priority string `json:"priority,omitempty"`
}

// MaxSequence is the most requests one job may carry.
const MaxSequence = 10

// IsOrdered reports whether the job is delivered in conversation order
// (the default).
func (j *Job) IsOrdered() bool { return j.Ordered == nil || *j.Ordered }

// Messages returns the job's Send API requests in order: Request alone, or
// Requests.
func (j *Job) Messages() []*graphapi.Request { return messages(j.Request, j.Requests) }

func messages(one *graphapi.Request, seq []*graphapi.Request) []*graphapi.Request {
	if one != nil {
		return []*graphapi.Request{one}
	}
	return seq
}

// Conversation is the id of the job's conversation: its Page and a hash
// of its recipient. Messages of one conversation are delivered in the
// order they were enqueued.
func (j *Job) Conversation() string {
	ms := j.Messages()
	if len(ms) == 0 {
		return ""
	}
	return ConversationID(j.PageID, ms[0].Recipient)
}

// ConversationID is the conversation of a Page and recipient: the Page id
// and the first 16 hex digits of the SHA-256 of the recipient's Key, so
// Redis keys stay short and do not spell out phone numbers or e-mails.
func ConversationID(pageID string, r *graphapi.Recipient) string {
	sum := sha256.Sum256([]byte(r.Key()))
	return pageID + ":" + hex.EncodeToString(sum[:8])
}

// Queue is the asynq queue the job goes to.
func (j *Job) Queue() string {
	if j.Priority == "" {
		return QueueDefault
	}
	return strings.ToLower(j.Priority)
}

// DecodeJob parses one job strictly: unknown keys and wrong types are
// reported with their paths ("request.message.text") in a
// *graphapi.ValidationError. It does not validate values; see Validate.
func DecodeJob(data []byte) (*Job, error) {
	var j Job
	if probs := strictjson.Decode(data, "", &j); len(probs) > 0 {
		return nil, fromStrict(probs)
	}
	return &j, nil
}

// ParseJob decodes and validates one job.
func ParseJob(data []byte) (*Job, error) {
	j, err := DecodeJob(data)
	if err != nil {
		return nil, err
	}
	if err := j.Validate(); err != nil {
		return nil, err
	}
	return j, nil
}

// Validate checks the job and its request, returning every problem at once
// as a *graphapi.ValidationError.
func (j *Job) Validate() error {
	var ps []graphapi.FieldError
	add := func(path, msg string) { ps = append(ps, graphapi.FieldError{Path: path, Message: msg}) }
	switch {
	case j.PageID == "":
		add("page_id", "required")
	case !isDigits(j.PageID):
		add("page_id", "not a numeric Page id")
	}
	if len(j.IdempotencyKey) > MaxIdempotencyKey {
		add("idempotency_key", "longer than 200 bytes")
	} else if strings.IndexFunc(j.IdempotencyKey, func(r rune) bool { return !unicode.IsPrint(r) || r == ' ' }) >= 0 {
		add("idempotency_key", "only printable characters without spaces")
	}
	switch j.Queue() {
	case QueueHigh, QueueDefault, QueueLow:
	default:
		add("priority", `"`+j.Priority+`" is not one of high, default, low`)
	}
	ps = append(ps, validateMessages(j.Request, j.Requests)...)
	if len(ps) > 0 {
		return &graphapi.ValidationError{Problems: ps}
	}
	return nil
}

// validateMessages checks request, or requests: one of them, at most
// MaxSequence requests, each valid, all to one recipient.
func validateMessages(one *graphapi.Request, seq []*graphapi.Request) []graphapi.FieldError {
	var ps []graphapi.FieldError
	switch {
	case one != nil && seq != nil:
		return []graphapi.FieldError{{Path: "requests", Message: "give request or requests, not both"}}
	case one != nil:
		return problemsOf(one.Validate())
	case seq == nil:
		return []graphapi.FieldError{{Path: graphapi.RootPath, Message: "required (or requests, for a sequence)"}}
	case len(seq) == 0:
		return []graphapi.FieldError{{Path: "requests", Message: "empty; give at least one request"}}
	case len(seq) > MaxSequence:
		return []graphapi.FieldError{{Path: "requests", Message: fmt.Sprintf("%d requests, at most %d", len(seq), MaxSequence)}}
	}
	first := ""
	for i, r := range seq {
		at := fmt.Sprintf("requests[%d]", i)
		if r == nil {
			ps = append(ps, graphapi.FieldError{Path: at, Message: "required"})
			continue
		}
		for _, p := range problemsOf(r.Validate()) {
			p.Path = at + strings.TrimPrefix(p.Path, graphapi.RootPath)
			ps = append(ps, p)
		}
		switch key := r.Recipient.Key(); {
		case key == "":
		case first == "":
			first = key
		case key != first:
			ps = append(ps, graphapi.FieldError{Path: at + ".recipient", Message: "differs from the first request's; a sequence goes to one recipient"})
		}
	}
	return ps
}

// Payload is what is stored on the asynq task: the validated job minus its
// queueing options, plus when it was enqueued.
type Payload struct {
	// V is the payload format version; this code writes and reads 1.
	V              int                 `json:"v"`
	PageID         string              `json:"page_id"`
	IdempotencyKey string              `json:"idempotency_key,omitempty"`
	Request        *graphapi.Request   `json:"request,omitempty"`
	Requests       []*graphapi.Request `json:"requests,omitempty"`
	// Unordered is set for a job that opted out of conversation order.
	Unordered  bool      `json:"unordered,omitempty"`
	EnqueuedAt time.Time `json:"enqueued_at"`
}

// Conv is the payload's conversation (ConversationID of its Page and
// first recipient) when it is delivered in order, "" when not. It is
// derived rather than stored, to keep every queued job small.
func (p *Payload) Conv() string {
	ms := p.Messages()
	if p.Unordered || len(ms) == 0 || ms[0] == nil {
		return ""
	}
	return ConversationID(p.PageID, ms[0].Recipient)
}

// Messages returns the payload's requests in order.
func (p *Payload) Messages() []*graphapi.Request { return messages(p.Request, p.Requests) }

// PayloadVersion is the Payload format this code writes.
const PayloadVersion = 1

// NewPayload makes the payload for a validated job.
func NewPayload(j *Job, now time.Time) *Payload {
	p := &Payload{V: PayloadVersion, PageID: j.PageID, IdempotencyKey: j.IdempotencyKey, Request: j.Request, Requests: j.Requests, EnqueuedAt: now.UTC()}
	p.Unordered = !j.IsOrdered()
	return p
}

// Encode marshals the payload.
func (p *Payload) Encode() ([]byte, error) { return json.Marshal(p) }

// DecodePayload parses and validates a stored payload. An error means the
// task can never be sent as it is; the worker dead-letters it with the
// error as the reason.
func DecodePayload(data []byte) (*Payload, error) {
	var p Payload
	if probs := strictjson.Decode(data, "", &p); len(probs) > 0 {
		return nil, fromStrict(probs)
	}
	var ps []graphapi.FieldError
	if p.V != PayloadVersion {
		ps = append(ps, graphapi.FieldError{Path: "v", Message: "unsupported payload version"})
	}
	j := Job{PageID: p.PageID, IdempotencyKey: p.IdempotencyKey, Request: p.Request, Requests: p.Requests}
	ps = append(ps, problemsOf(j.Validate())...)
	if len(ps) > 0 {
		return nil, &graphapi.ValidationError{Problems: ps}
	}
	return &p, nil
}

// PeekConv reads the conversation and enqueue time of a payload that may
// not decode as a whole, so that a broken task can still release its
// conversation. conv is "" when there is none to release.
func PeekConv(data []byte) (conv string, enqueuedAt time.Time) {
	type rcpt struct {
		Recipient *graphapi.Recipient `json:"recipient"`
	}
	var p struct {
		PageID     string    `json:"page_id"`
		Request    *rcpt     `json:"request"`
		Requests   []*rcpt   `json:"requests"`
		Unordered  bool      `json:"unordered"`
		EnqueuedAt time.Time `json:"enqueued_at"`
	}
	if json.Unmarshal(data, &p) != nil || !isDigits(p.PageID) || len(p.PageID) > 64 || p.Unordered {
		return "", time.Time{}
	}
	first := p.Request
	if first == nil && len(p.Requests) > 0 {
		first = p.Requests[0]
	}
	if first == nil || first.Recipient.Key() == "" {
		return "", time.Time{}
	}
	return ConversationID(p.PageID, first.Recipient), p.EnqueuedAt
}

// PeekPageID reads page_id from a payload that may not decode, so that
// even a broken task can be logged and counted against its Page. It
// returns "" when there is none.
func PeekPageID(data []byte) string {
	var p struct {
		PageID string `json:"page_id"`
	}
	if json.Unmarshal(data, &p) != nil || !isDigits(p.PageID) || len(p.PageID) > 64 {
		return ""
	}
	return p.PageID
}

// problemsOf returns the problems of a *graphapi.ValidationError, or the
// error itself as one problem.
func problemsOf(err error) []graphapi.FieldError {
	if err == nil {
		return nil
	}
	var ve *graphapi.ValidationError
	if errors.As(err, &ve) {
		return ve.Problems
	}
	return []graphapi.FieldError{{Message: err.Error()}}
}

func fromStrict(probs []strictjson.Problem) *graphapi.ValidationError {
	ve := &graphapi.ValidationError{Problems: make([]graphapi.FieldError, len(probs))}
	for i, p := range probs {
		ve.Problems[i] = graphapi.FieldError{Path: p.Path, Message: p.Message}
	}
	return ve
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
