package demo

import (
	"encoding/json"
	"time"

	"github.com/pagesend/pagesend/enqueue"
	"github.com/pagesend/pagesend/graphapi"
	"github.com/pagesend/pagesend/graphapi/graphtest"
	"github.com/pagesend/pagesend/internal/job"
	"github.com/pagesend/pagesend/internal/pages"
)

// The demo's two Pages. The store starts with the right token for
// pageOK and a stale one for pageStale, which the fake rejects with 190
// until the demo's "operator" puts the new token in.
const (
	pageOK        = "1001"
	pageStale     = "1002"
	tokenOK       = "demo-token-1001"
	tokenStaleOld = "demo-token-1002-old"
	tokenStaleNew = "demo-token-1002-new"
)

// The store's limits: the production defaults, which the samples stay
// well within, so no message waits on its Page's bucket.
var (
	textLimit  = pages.Limit{Rate: pages.DefaultRate, Burst: 20}
	mediaLimit = pages.Limit{Rate: pages.DefaultMediaRate, Burst: 10}
)

// fakeTokens is what the fake Graph API demands per Page.
func fakeTokens() map[string]string {
	return map[string]string{pageOK: tokenOK, pageStale: tokenStaleNew}
}

// pagesConfig is the token store's config; stale selects the old token
// for pageStale, as the demo starts.
func pagesConfig(stale bool) *pages.Config {
	tok := tokenStaleNew
	if stale {
		tok = tokenStaleOld
	}
	return pages.NewConfig(textLimit, mediaLimit, nil, map[string]graphapi.Secret{
		pageOK:    tokenOK,
		pageStale: graphapi.Secret(tok),
	})
}

// A sample is one demo job: what to enqueue, how the fake answers its
// recipient, and what should become of it. Every sample has its own
// recipient id so that the fake's calls per recipient are exactly the
// calls for that job.
type sample struct {
	label     string
	page      string
	recipient string
	req       *graphapi.Request
	script    []graphtest.Answer // the fake's answers for the recipient, in order
	retried   string             // for people: what the scripted failure does before a retry succeeds

	sendAfter      time.Duration // send_at this long after enqueueing; 0: now
	idempotencyKey string        // enqueued twice with this key when set
	heldByPause    bool          // its Page's token is stale at the start

	expected string // for people: the EXPECTED column
	outcome  string // the job.Outcome… wanted
	code     int    // the Graph error code wanted on a dropped or dead-lettered result
	calls    int    // fake calls wanted for the recipient; 0: at least one
}

// samples returns the demo's jobs: every outcome the worker can reach.
func samples() []sample {
	text := func(s string) *graphapi.Message { return &graphapi.Message{Text: s} }
	plain := func(label, recipient, reason string) sample {
		return sample{label: label, page: pageOK, recipient: recipient, req: update(recipient, text(reason)),
			expected: "sent", outcome: job.OutcomeSent, calls: 1}
	}
	s := []sample{
		plain("text", "3001", "Your order #42 shipped"),
		{label: "quick replies", page: pageOK, recipient: "3002", req: update("3002", &graphapi.Message{
			Text: "How was your delivery?",
			QuickReplies: []graphapi.QuickReply{
				{ContentType: "text", Title: "Great", Payload: "RATE_GOOD"},
				{ContentType: "text", Title: "Not great", Payload: "RATE_BAD"},
			},
		}), expected: "sent", outcome: job.OutcomeSent, calls: 1},
		{label: "image by URL", page: pageOK, recipient: "3003", req: update("3003", &graphapi.Message{
			Attachment: &graphapi.Attachment{Type: "image", Payload: raw(map[string]any{
				"url": "https://example.com/parcel.png", "is_reusable": true,
			})},
		}), expected: "sent", outcome: job.OutcomeSent, calls: 1},
		{label: "button template", page: pageOK, recipient: "3004", req: update("3004", &graphapi.Message{
			Attachment: &graphapi.Attachment{Type: "template", Payload: raw(map[string]any{
				"template_type": "button",
				"text":          "Track your parcel",
				"buttons": []map[string]any{
					{"type": "web_url", "url": "https://example.com/track/42", "title": "Track"},
				},
			})},
		}), expected: "sent", outcome: job.OutcomeSent, calls: 1},
		{label: "typing_on", page: pageOK, recipient: "3005", req: &graphapi.Request{
			Recipient: &graphapi.Recipient{ID: "3005"}, SenderAction: "typing_on",
		}, expected: "sent", outcome: job.OutcomeSent, calls: 1},
		{label: "scheduled +2s", page: pageOK, recipient: "3006", req: update("3006", text("Your courier is 10 minutes away")),
			sendAfter: 2 * time.Second, expected: "sent (scheduled)", outcome: job.OutcomeSent, calls: 1},
		{label: "idempotent x2", page: pageOK, recipient: "3007", req: update("3007", text("Payment received")),
			idempotencyKey: "demo-order-42-paid", expected: "sent once", outcome: job.OutcomeSent, calls: 1},
		{label: "throttled (613)", page: pageOK, recipient: "3008", req: update("3008", text("Back in stock")),
			script:   []graphtest.Answer{graphtest.Fail(613, 0)},
			retried:  "1st call 613 → page throttled 2s, then retried",
			expected: "613 then sent", outcome: job.OutcomeSent, calls: 2},
		{label: "unavailable (551)", page: pageOK, recipient: "3009", req: update("3009", text("Are you there?")),
			script:   []graphtest.Answer{graphtest.Fail(551, 0)},
			expected: "dropped 551", outcome: job.OutcomeDropped, code: 551, calls: 1},
		{label: "window closed (10901)", page: pageOK, recipient: "3010", req: update("3010", text("Thanks for asking")),
			script:   []graphtest.Answer{graphtest.Fail(10901, 0)},
			expected: "dropped 10901", outcome: job.OutcomeDropped, code: 10901, calls: 1},
		{label: "invalid param (100)", page: pageOK, recipient: "3011", req: update("3011", text("Rejected by Meta")),
			script:   []graphtest.Answer{graphtest.Fail(100, 0)},
			expected: "dead-lettered 100", outcome: job.OutcomeDeadLettered, code: 100, calls: 1},
	}
	for i, r := range []string{"3012", "3013", "3014"} {
		s = append(s, sample{label: "stale token #" + string(rune('1'+i)), page: pageStale, recipient: r,
			req: update(r, text("Your appointment is tomorrow")), heldByPause: true,
			expected: "sent after token fix", outcome: job.OutcomeSent})
	}
	return s
}

// job is the sample's send job, with send_at counted from now.
func (s sample) job(now time.Time) enqueue.Job {
	j := enqueue.Job{PageID: s.page, Request: s.req, IdempotencyKey: s.idempotencyKey}
	if s.sendAfter > 0 {
		j.SendAt = now.Add(s.sendAfter)
	}
	return j
}

func update(recipient string, m *graphapi.Message) *graphapi.Request {
	return &graphapi.Request{
		Recipient:     &graphapi.Recipient{ID: recipient},
		MessagingType: "UPDATE",
		Message:       m,
	}
}

// raw marshals a literal attachment payload; it cannot fail.
func raw(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
