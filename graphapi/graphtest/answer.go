package graphtest

import (
	"math"
	"net/http"
	"strconv"
	"time"
)

// Answer is what the fake does with a call that passed its checks: answer
// success, answer a Graph error, send raw bytes, or fail at the network
// level. Make one with OK, Fail, Raw, TooManyRequests, Hang, Reset or
// SlowBody and adjust it with the With… methods, which return a changed
// copy. The zero Answer is OK().
type Answer struct {
	kind      kind
	status    int // 0: the kind's usual status
	code      int
	subcode   int
	errType   string
	message   string
	transient bool
	ctype     string // Raw only
	body      string // Raw only
	header    http.Header
	delay     time.Duration
	slow      time.Duration // > 0: pause halfway through the body
	regain    float64       // minutes, with hasRegain
	hasRegain bool
}

type kind uint8

const (
	kindOK kind = iota
	kindFail
	kindRaw
	kindHang
	kindReset
)

// Error types Meta answers with.
const (
	typeOAuth       = "OAuthException"
	typeGraphMethod = "GraphMethodException"
)

// OK answers HTTP 200 {"recipient_id": …, "message_id": "m_<n>"}, n
// counting up per server. Like Meta, it leaves out recipient_id unless the
// recipient was given by id (Meta answers other identifiers with an id the
// fake cannot know), answers thread_key for a thread_key recipient, and
// leaves out message_id for a sender_action.
func OK() Answer { return Answer{} }

// Fail answers with Meta's error shape:
//
//	{"error":{"message":…,"type":"OAuthException","code":…,"error_subcode":…,"fbtrace_id":…}}
//
// The message comes from a table of the codes Meta documents for the Send
// API (551 "This person isn't available right now.", 613 "Calls to this api
// have exceeded the rate limit.", …); the type is GraphMethodException for
// 100 and OAuthException otherwise; the status is HTTP 500 for codes 1, 2
// and 1200 and 400 otherwise. A zero subcode is left out. Each answer gets
// a unique fbtrace_id.
func Fail(code, subcode int) Answer {
	typ := typeOAuth
	if code == 100 {
		typ = typeGraphMethod
	}
	status := http.StatusBadRequest
	switch code {
	case 1, 2, 1200:
		status = http.StatusInternalServerError
	}
	return reject(status, code, subcode, typ, errorMessage(code, subcode))
}

// reject is a Graph error with every field given.
func reject(status, code, subcode int, typ, message string) Answer {
	return Answer{kind: kindFail, status: status, code: code, subcode: subcode, errType: typ, message: message}
}

// Raw answers status with exactly body, for what sits in front of Meta: a
// proxy's HTML page, truncated JSON, an empty 200.
func Raw(status int, contentType, body string) Answer {
	return Answer{kind: kindRaw, status: status, ctype: contentType, body: body}
}

// TooManyRequests answers HTTP 429 with Retry-After (whole seconds, rounded
// up) and a plain-text body, as a proxy or load balancer in front of the
// Graph API might.
func TooManyRequests(retryAfter time.Duration) Answer {
	secs := int(math.Ceil(retryAfter.Seconds()))
	return Raw(http.StatusTooManyRequests, "text/plain; charset=utf-8", "Too Many Requests\n").
		WithHeader("Retry-After", strconv.Itoa(secs))
}

// Hang never answers: the call waits until the client gives up or the
// server closes, for testing timeouts. The call is recorded with Status 0.
func Hang() Answer { return Answer{kind: kindHang} }

// Reset drops the connection without an answer, with a TCP RST where the
// platform allows, as a crashed proxy would. The call is recorded with
// Status 0.
func Reset() Answer { return Answer{kind: kindReset} }

// SlowBody answers success but sends the headers and half the body, waits
// d (less if the client goes away), then sends the rest: a client whose
// timeout covers reading the body times out.
func SlowBody(d time.Duration) Answer { return Answer{slow: d} }

// WithStatus returns a copy that answers with HTTP status code instead of
// the usual one. It has no effect on Hang and Reset.
func (a Answer) WithStatus(code int) Answer {
	a.status = code
	return a
}

// WithHeader returns a copy that also sends the response header key: value.
func (a Answer) WithHeader(key, value string) Answer {
	a.header = a.header.Clone()
	if a.header == nil {
		a.header = make(http.Header)
	}
	a.header.Set(key, value)
	return a
}

// WithDelay returns a copy that waits d before answering, in addition to
// Options.Latency. The wait ends early if the client goes away.
func (a Answer) WithDelay(d time.Duration) Answer {
	a.delay = d
	return a
}

// WithRegain returns a copy that sends X-Business-Use-Case-Usage for the
// call's Page with call_count 100 and estimated_time_to_regain_access set
// to minutes, as Meta does with throttling errors.
func (a Answer) WithRegain(minutes float64) Answer {
	a.regain, a.hasRegain = minutes, true
	return a
}

// WithMessage returns a copy of a Fail answer with message as its text.
func (a Answer) WithMessage(message string) Answer {
	a.message = message
	return a
}

// Transient returns a copy of a Fail answer with "is_transient": true.
func (a Answer) Transient() Answer {
	a.transient = true
	return a
}

// httpStatus is the status the answer will have, 0 when it sends none.
func (a Answer) httpStatus() int {
	switch {
	case a.kind == kindHang || a.kind == kindReset:
		return 0
	case a.status != 0:
		return a.status
	}
	return http.StatusOK
}

// errorMessage is the text Meta sends with a code (and, where it differs,
// a subcode): the Page Messages reference's error table (both revisions),
// the Messenger error-codes page, and the Graph rate-limiting guide.
func errorMessage(code, subcode int) string {
	if m, ok := subcodeMessages[subcode]; ok && subcode != 0 {
		return m
	}
	if m, ok := codeMessages[code]; ok {
		return m
	}
	return "An unknown error occurred"
}

var codeMessages = map[int]string{
	1:     "An unknown error occurred",
	2:     "An unexpected error has occurred. Please retry your request later.",
	4:     "Application request limit reached",
	10:    "Application does not have permission for this action",
	17:    "User request limit reached",
	32:    "Page request limit reached",
	100:   "Invalid parameter",
	190:   "Invalid OAuth 2.0 Access Token",
	200:   "Permissions error",
	230:   "Permissions disallow message to user",
	368:   "The action attempted has been deemed abusive or is otherwise disallowed",
	551:   "This person isn't available right now.",
	613:   "Calls to this api have exceeded the rate limit.",
	1200:  "Temporary send message failure. Please try again later",
	2022:  "The ability to send commerce messages has been temporarily disabled for this application.",
	10900: "Activity already replied to",
	10901: "Activity replying time expired",
	10903: "This user cant reply to this activity",
	10904: "Messaging is not enabled for this Page",
	80001: "There have been too many calls to this Page account. Wait a bit and try again.",
	80006: "There have been too many messenger api calls to this Page account. Wait a bit and try again.",
}

var subcodeMessages = map[int]string{
	33:      "Unsupported post request. Object does not exist, cannot be loaded due to missing permissions, or does not support this operation",
	467:     "Error validating access token: The session is invalid",
	463:     "Error validating access token: Session has expired",
	1545041: "This person isn't available right now.",
	1893063: "This Page is temporarily restricted from sending messages",
	2018001: "No matching user found",
	2018065: "This message is sent outside of allowed window. You need page_messaging_subscriptions permission to be able to do it.",
	2018108: "This person isn't receiving messages from you right now.",
	2018278: "This message is sent outside of allowed window.",
	2018300: "Another app is controlling this thread now",
}
