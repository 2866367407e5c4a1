package graphapi

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Class is what the worker does with the outcome of a call.
type Class int

// The classes, from DESIGN.md's error table.
const (
	// Sent: delivered; record the message id.
	Sent Class = iota
	// Backoff: may succeed later; retry with exponential backoff and
	// jitter, honouring RetryAfter.
	Backoff
	// Drop: will never succeed for this message (the person cannot be
	// reached, the window closed); finish it with the reason, no retry.
	Drop
	// DeadLetter: needs a person (bad payload, permissions, policy, an
	// unknown code); archive it where an operator can re-run it.
	DeadLetter
	// Alert: the Page's token is broken; pause the Page, raise the alert,
	// keep every message until the token is replaced.
	Alert
)

var classNames = [...]string{"sent", "backoff", "drop", "dead_letter", "alert"}

// String returns the class name used in logs, results and docs.
func (c Class) String() string {
	if int(c) < len(classNames) {
		return classNames[c]
	}
	return "class(" + strconv.Itoa(int(c)) + ")"
}

// AnySubcode in a Rule matches every subcode not matched by a more
// specific rule for the same code; AnyCode matches a subcode whatever the
// code.
const (
	AnySubcode = -1
	AnyCode    = -1
)

// Rule classifies one Graph error code, optionally narrowed by subcode.
type Rule struct {
	Code    int // AnyCode: the rule is keyed by Subcode alone
	Subcode int // AnySubcode: any subcode; 0: no subcode
	Class   Class
	// PageWide: the error is about the Page, not the message, so the
	// whole Page is paused for every worker.
	PageWide bool
	// Throttled: a rate-limit signal. The retry waits for the limit to
	// pass and does not use up the message's retry budget.
	Throttled bool
	// MaxAttempts, when non-zero, bounds the attempts for a Backoff rule:
	// after that many the message is dead-lettered.
	MaxAttempts int
	// Meaning is Meta's description, shortened.
	Meaning string
}

// rules is the classification table. Sources: the "Page Messages"
// reference (both revisions), Meta's Messenger Platform error-codes page
// (March 2026), the Graph API error-handling and rate-limiting guides; see
// shared/notes/meta-send-api.md.
var rules = []Rule{
	// alert: the token is broken.
	{Code: 190, Subcode: AnySubcode, Class: Alert, PageWide: true, Meaning: "invalid OAuth access token"},
	{Code: 190, Subcode: 458, Class: Alert, PageWide: true, Meaning: "app not installed"},
	{Code: 190, Subcode: 459, Class: Alert, PageWide: true, Meaning: "user checkpointed"},
	{Code: 190, Subcode: 460, Class: Alert, PageWide: true, Meaning: "password changed"},
	{Code: 190, Subcode: 463, Class: Alert, PageWide: true, Meaning: "token expired"},
	{Code: 190, Subcode: 464, Class: Alert, PageWide: true, Meaning: "unconfirmed user"},
	{Code: 190, Subcode: 467, Class: Alert, PageWide: true, Meaning: "invalid access token"},
	{Code: 190, Subcode: 492, Class: Alert, PageWide: true, Meaning: "user has no role on the Page"},
	{Code: 102, Subcode: AnySubcode, Class: Alert, PageWide: true, Meaning: "API session: login status or token expired or revoked"},

	// backoff, throttling: pause the Page, honour estimated_time_to_regain_access.
	{Code: 4, Subcode: AnySubcode, Class: Backoff, PageWide: true, Throttled: true, Meaning: "application request limit reached"},
	{Code: 17, Subcode: AnySubcode, Class: Backoff, PageWide: true, Throttled: true, Meaning: "user request limit reached"},
	{Code: 32, Subcode: AnySubcode, Class: Backoff, PageWide: true, Throttled: true, Meaning: "Page request limit reached (user token)"},
	{Code: 341, Subcode: AnySubcode, Class: Backoff, PageWide: true, Throttled: true, Meaning: "application limit reached"},
	{Code: 613, Subcode: AnySubcode, Class: Backoff, PageWide: true, Throttled: true, Meaning: "calls exceeded the rate limit"},
	{Code: 613, Subcode: 1996, Class: Backoff, PageWide: true, Throttled: true, Meaning: "inconsistent request volume"},
	{Code: 613, Subcode: 2534040, Class: Backoff, PageWide: true, Throttled: true, Meaning: "rate limit reached"},
	{Code: 80001, Subcode: AnySubcode, Class: Backoff, PageWide: true, Throttled: true, Meaning: "Page calls limit reached (Page token)"},
	{Code: 80006, Subcode: AnySubcode, Class: Backoff, PageWide: true, Throttled: true, Meaning: "Messenger business-use-case limit reached"},

	// backoff, transient.
	{Code: 1, Subcode: AnySubcode, Class: Backoff, Meaning: "unknown API error, possibly temporary"},
	{Code: 2, Subcode: AnySubcode, Class: Backoff, MaxAttempts: 3, Meaning: "temporary service error (can also mean the person blocked the Page)"},
	{Code: 1200, Subcode: AnySubcode, Class: Backoff, Meaning: "temporary send message failure"},
	{Code: AnyCode, Subcode: 2018300, Class: Backoff, Meaning: "another app controls the thread (handover)"},
	{Code: AnyCode, Subcode: 2018321, Class: Backoff, Meaning: "an automated flow is in progress in the thread"},

	// drop: this message can never be delivered.
	{Code: 551, Subcode: AnySubcode, Class: Drop, Meaning: "this person isn't available right now"},
	{Code: 551, Subcode: 1545041, Class: Drop, Meaning: "this person isn't available right now"},
	{Code: 200, Subcode: 1545041, Class: Drop, Meaning: "the person is not receiving messages"},
	{Code: 10, Subcode: 2018108, Class: Drop, Meaning: "the person can't receive your messages right now"},
	{Code: 10, Subcode: 2018278, Class: Drop, Meaning: "sent outside the allowed window (24 h)"},
	{Code: 10, Subcode: 2018065, Class: Drop, Meaning: "outside the window; needs News Messaging"},
	{Code: 10, Subcode: 2534022, Class: Drop, Meaning: "outside the allowed window (Instagram)"},
	{Code: 100, Subcode: 2018001, Class: Drop, Meaning: "no matching user found"},
	{Code: 230, Subcode: AnySubcode, Class: Drop, Meaning: "permissions disallow message to user"},
	{Code: 10900, Subcode: AnySubcode, Class: Drop, Meaning: "activity already replied to (counts as done)"},
	{Code: 10901, Subcode: AnySubcode, Class: Drop, Meaning: "activity reply time expired"},
	{Code: 10903, Subcode: AnySubcode, Class: Drop, Meaning: "this user can't reply to this activity"},

	// dead-letter: a person must look.
	{Code: 1, Subcode: 99, Class: DeadLetter, Meaning: "unknown error; often missing permissions"},
	{Code: 1, Subcode: 1357046, Class: DeadLetter, Meaning: "invalid JSON reply; the message may already be delivered"},
	{Code: 10, Subcode: AnySubcode, Class: DeadLetter, Meaning: "application does not have permission"},
	{Code: 10, Subcode: 1893063, Class: DeadLetter, PageWide: true, Meaning: "Page temporarily restricted for policy violations"},
	{Code: 100, Subcode: AnySubcode, Class: DeadLetter, Meaning: "invalid parameter"},
	{Code: 100, Subcode: 2018014, Class: DeadLetter, Meaning: "message and sender_action sent together"},
	{Code: 100, Subcode: 2018015, Class: DeadLetter, Meaning: "neither message nor sender_action sent"},
	{Code: 100, Subcode: 2018008, Class: DeadLetter, Meaning: "attachment could not be fetched from the URL"},
	{Code: 100, Subcode: 2018047, Class: DeadLetter, Meaning: "attachment type does not match the file"},
	{Code: 100, Subcode: 2018074, Class: DeadLetter, Meaning: "attachment_id invalid or not owned by the Page"},
	{Code: 100, Subcode: 2018109, Class: DeadLetter, Meaning: "attachment too large"},
	{Code: 100, Subcode: 2018294, Class: DeadLetter, Meaning: "video fetch timed out"},
	{Code: 200, Subcode: AnySubcode, Class: DeadLetter, Meaning: "permissions error"},
	{Code: 200, Subcode: 2018021, Class: DeadLetter, Meaning: "permission missing for this message"},
	{Code: 200, Subcode: 2018027, Class: DeadLetter, Meaning: "permission missing for this message"},
	{Code: 200, Subcode: 2018028, Class: DeadLetter, Meaning: "app not live or permission missing"},
	{Code: 368, Subcode: AnySubcode, Class: DeadLetter, PageWide: true, Meaning: "action deemed abusive or otherwise disallowed"},
	{Code: 613, Subcode: 2018338, Class: DeadLetter, Meaning: "bothersome or abusive use of message tags"},
	{Code: 2022, Subcode: AnySubcode, Class: DeadLetter, PageWide: true, Meaning: "commerce messages temporarily disabled for the app"},
	{Code: 10904, Subcode: AnySubcode, Class: DeadLetter, PageWide: true, Meaning: "the Page has messaging disabled"},
}

type ruleKey struct{ code, subcode int }

var ruleIndex = func() map[ruleKey]Rule {
	m := make(map[ruleKey]Rule, len(rules))
	for _, r := range rules {
		k := ruleKey{r.Code, r.Subcode}
		if _, dup := m[k]; dup {
			panic(fmt.Sprintf("graphapi: duplicate rule %d/%d", r.Code, r.Subcode))
		}
		m[k] = r
	}
	return m
}()

// Rules returns a copy of the classification table, in the order it is
// documented.
func Rules() []Rule { return append([]Rule(nil), rules...) }

// unknownMaxAttempts bounds the retries of an unknown code that Meta marks
// transient or answers with a 5xx.
const unknownMaxAttempts = 5

// LookupRule finds the rule for a code and subcode: the exact pair, then
// the subcode under any code, then the code with any subcode. ok is false
// for codes the table does not know.
func LookupRule(code, subcode int) (Rule, bool) {
	for _, k := range []ruleKey{{code, subcode}, {AnyCode, subcode}, {code, AnySubcode}} {
		if k.subcode == 0 && k.code == AnyCode {
			continue
		}
		if r, ok := ruleIndex[k]; ok {
			return r, true
		}
	}
	return Rule{}, false
}

// Decision is what Classify made of a call's outcome.
type Decision struct {
	Class Class
	// Code and Subcode are the Graph error's, 0 when there was none.
	Code, Subcode int
	// Label names the failure for metrics, with bounded cardinality: the
	// Graph code ("613"), "http_503", a TransportKind label ("timeout",
	// "connection_reset", …), "no_token" or "other"; "" for Sent.
	Label string
	// Reason says what happened, for results, logs and the UI.
	Reason string
	// PageWide: pause the whole Page, not just this message.
	PageWide bool
	// Throttled: a rate-limit signal; the retry does not use the budget.
	Throttled bool
	// RetryAfter is Meta's hint of when to try again (the longer of
	// estimated_time_to_regain_access and Retry-After); 0: use backoff.
	RetryAfter time.Duration
	// MaxAttempts, when non-zero, caps the attempts for this Backoff.
	MaxAttempts int
	// MaybeDelivered is true when the request may have reached Meta even
	// though the call failed (timeout, reset, unreadable answer), so a
	// retry may deliver the message twice.
	MaybeDelivered bool
}

// Classify maps the outcome of Client.Send to a Decision: nil is Sent; a
// *Error by code and subcode (LookupRule); a *ProtocolError and a
// *TransportError by what happened; ErrNoToken is an Alert. An unknown
// Graph code is dead-lettered — nothing lost, nothing hammered — unless
// Meta marks it transient or answers 5xx, when it is retried a few times.
// Any other error is dead-lettered.
func Classify(err error) Decision {
	if err == nil {
		return Decision{Class: Sent}
	}
	var (
		ge *Error
		pe *ProtocolError
		te *TransportError
	)
	switch {
	case errors.As(err, &ge):
		return classifyGraph(ge)
	case errors.As(err, &pe):
		return classifyProtocol(pe)
	case errors.As(err, &te):
		return classifyTransport(te)
	case errors.Is(err, ErrNoToken):
		return Decision{Class: Alert, PageWide: true, Label: "no_token", Reason: "no access token configured for the Page"}
	}
	return Decision{Class: DeadLetter, Label: "other", Reason: err.Error()}
}

func classifyGraph(e *Error) Decision {
	d := Decision{Code: e.Code, Subcode: e.Subcode, Label: strconv.Itoa(e.Code), Reason: e.Error(), RetryAfter: e.RetryAfter}
	r, ok := LookupRule(e.Code, e.Subcode)
	if !ok {
		d.Class = DeadLetter
		if e.IsTransient || e.HTTPStatus >= 500 {
			d.Class, d.MaxAttempts = Backoff, unknownMaxAttempts
		}
		d.Reason = "unknown code: " + d.Reason
		return d
	}
	d.Class, d.PageWide, d.Throttled, d.MaxAttempts = r.Class, r.PageWide, r.Throttled, r.MaxAttempts
	if r.Throttled {
		d.RetryAfter = max(d.RetryAfter, e.Usage.RegainAccessIn())
	}
	return d
}

func classifyProtocol(e *ProtocolError) Decision {
	d := Decision{Label: "http_" + strconv.Itoa(e.HTTPStatus), Reason: e.Error(), RetryAfter: e.RetryAfter}
	switch s := e.HTTPStatus; {
	case s == 429:
		d.Class, d.Throttled = Backoff, true
		d.RetryAfter = max(d.RetryAfter, e.Usage.RegainAccessIn())
	case s == 408:
		d.Class = Backoff
	case s >= 500:
		// A gateway may have passed the request on before failing.
		d.Class, d.MaybeDelivered = Backoff, true
	case s >= 200 && s <= 299:
		// Meta accepted something and the answer was garbled: the message
		// was most likely delivered, so a blind retry would most likely
		// send it twice (Meta's advice for 1/1357046 too). A person
		// decides; the task can be re-run from the archive.
		d.Class, d.MaybeDelivered = DeadLetter, true
	default:
		// A 3xx or 4xx without a Graph error body: a proxy or a wrong
		// base URL. Retrying will not fix configuration.
		d.Class = DeadLetter
	}
	return d
}

func classifyTransport(e *TransportError) Decision {
	// Only a refused connection or a failed lookup proves the request
	// never left; after anything else Meta may have it.
	return Decision{
		Class:          Backoff,
		Label:          e.Kind.Label(),
		Reason:         e.Error(),
		MaybeDelivered: e.Kind != TransportRefused && e.Kind != TransportDNS,
	}
}
