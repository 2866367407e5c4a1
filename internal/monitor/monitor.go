// Package monitor mounts asynqmon, asynq's web UI, for pagesend: jobs are
// shown with their Page, recipient and kind of message, but not their text
// unless asked for; optional basic auth guards it (asynqmon has none); and
// it can be made read-only.
package monitor

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"

	"github.com/pagesend/pagesend/graphapi"
	"github.com/pagesend/pagesend/internal/job"
)

// Path is where the UI is mounted on the ops server.
const Path = "/monitor/"

// Options configures the UI. The zero value (with Redis set) is a
// read-only UI without auth that hides message text.
type Options struct {
	// Redis is the queue's Redis. Required.
	Redis asynq.RedisConnOpt
	// User and Password, when both set, require HTTP basic auth.
	User     string
	Password graphapi.Secret
	// Writable allows operators to run, archive and delete tasks from the
	// UI. asynqmon enforces read-only mode on its API (non-GET → 405).
	Writable bool
	// ShowText shows message text in the UI; by default it is replaced by
	// its length.
	ShowText bool
	// PrometheusURL, when set, lets asynqmon chart queue metrics.
	PrometheusURL string
}

// Handler is the mounted UI. Close it when done.
type Handler struct {
	http.Handler
	mon *asynqmon.HTTPHandler
}

// New returns the UI handler, to be served under Path.
func New(opts Options) *Handler {
	mon := asynqmon.New(asynqmon.Options{
		RootPath:          strings.TrimSuffix(Path, "/"),
		RedisConnOpt:      opts.Redis,
		ReadOnly:          !opts.Writable,
		PrometheusAddress: opts.PrometheusURL,
		PayloadFormatter:  asynqmon.PayloadFormatterFunc(func(_ string, p []byte) string { return FormatPayload(p, opts.ShowText) }),
		ResultFormatter:   asynqmon.ResultFormatterFunc(func(_ string, r []byte) string { return string(r) }),
	})
	var h http.Handler = mon
	if opts.User != "" && opts.Password != "" {
		h = basicAuth(h, opts.User, opts.Password)
	}
	return &Handler{Handler: h, mon: mon}
}

// Close releases the UI's Redis connections.
func (h *Handler) Close() error { return h.mon.Close() }

// basicAuth wraps h with HTTP basic auth, comparing in constant time.
func basicAuth(h http.Handler, user string, password graphapi.Secret) http.Handler {
	wantUser := sha256.Sum256([]byte(user))
	wantPass := sha256.Sum256([]byte(password))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		gotUser := sha256.Sum256([]byte(u))
		gotPass := sha256.Sum256([]byte(p))
		if !ok || subtle.ConstantTimeCompare(gotUser[:], wantUser[:])&subtle.ConstantTimeCompare(gotPass[:], wantPass[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="pagesend monitor", charset="UTF-8"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// view is what the UI shows of a job.
type view struct {
	PageID         string `json:"page_id"`
	Recipient      string `json:"recipient,omitempty"`
	Kind           string `json:"kind"`
	Sequence       int    `json:"sequence,omitempty"` // requests in a sequence job
	Ordered        bool   `json:"ordered"`
	Text           string `json:"text,omitempty"`
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	EnqueuedAt     string `json:"enqueued_at,omitempty"`
}

// FormatPayload renders a stored job for the UI: its Page, recipient,
// kind of message and idempotency key, and its text only when showText.
// A payload that does not decode is described, not shown.
func FormatPayload(p []byte, showText bool) string {
	pl, err := job.DecodePayload(p)
	if err != nil {
		return fmt.Sprintf("undecodable job (%d bytes): %v", len(p), err)
	}
	msgs := pl.Messages() // a decoded payload has at least one
	first := msgs[0]
	v := view{PageID: pl.PageID, IdempotencyKey: pl.IdempotencyKey, Kind: kindOf(first), Ordered: !pl.Unordered}
	if len(msgs) > 1 {
		v.Sequence = len(msgs)
	}
	if !pl.EnqueuedAt.IsZero() {
		v.EnqueuedAt = pl.EnqueuedAt.Format("2006-01-02T15:04:05.000Z07:00")
	}
	if rc := first.Recipient; rc != nil {
		v.Recipient = recipientOf(rc)
	}
	if m := first.Message; m != nil {
		text := m.Text
		if text == "" && m.DynamicText != nil {
			text = m.DynamicText.Text
		}
		switch {
		case text == "":
		case showText:
			v.Text = text
		default:
			v.Text = fmt.Sprintf("[hidden: %d characters; PAGESEND_UI_SHOW_TEXT=true shows it]", len([]rune(text)))
		}
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func recipientOf(rc *graphapi.Recipient) string {
	switch {
	case rc.ID != "":
		return "id:" + rc.ID
	case rc.UserRef != "":
		return "user_ref:" + rc.UserRef
	case rc.PhoneNumber != "":
		return "phone_number:" + rc.PhoneNumber
	case rc.CommentID != "":
		return "comment_id:" + rc.CommentID
	case rc.PostID != "":
		return "post_id:" + rc.PostID
	case rc.ThreadKey != "":
		return "thread_key:" + rc.ThreadKey
	case rc.Email != "":
		return "email:" + rc.Email
	case rc.PlayerID != "":
		return "player_id:" + rc.PlayerID
	case rc.LoginID != "":
		return "login_id:" + rc.LoginID
	case len(rc.IDs) > 0:
		return fmt.Sprintf("ids:%d", len(rc.IDs))
	case rc.OneTimeNotifToken != "", rc.NotificationMessagesToken != "":
		return "notification token"
	}
	return ""
}

func kindOf(r *graphapi.Request) string {
	if r.SenderAction != "" {
		return "sender_action " + strings.ToLower(r.SenderAction)
	}
	m := r.Message
	if m == nil {
		return "unknown"
	}
	k := "text"
	switch {
	case m.DynamicText != nil:
		k = "dynamic_text"
	case m.Attachment != nil:
		k = "attachment " + strings.ToLower(m.Attachment.Type)
	case len(m.Attachments) > 0:
		k = fmt.Sprintf("%d attachments", len(m.Attachments))
	case m.Template != nil:
		k = "template " + m.Template.Name
	}
	if len(m.QuickReplies) > 0 {
		k += fmt.Sprintf(" + %d quick replies", len(m.QuickReplies))
	}
	return k
}
