package graphapi

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// codeCases is written out by hand from DESIGN.md's table and Meta's
// error pages, not derived from rules, so that a wrong rule fails here.
var codeCases = []struct {
	code, subcode int
	class         Class
	pageWide      bool
	throttled     bool
}{
	// alert
	{190, 0, Alert, true, false},
	{190, 458, Alert, true, false},
	{190, 459, Alert, true, false},
	{190, 460, Alert, true, false},
	{190, 463, Alert, true, false},
	{190, 464, Alert, true, false},
	{190, 467, Alert, true, false},
	{190, 492, Alert, true, false},
	{190, 999999, Alert, true, false},
	{102, 0, Alert, true, false},
	// backoff: throttling
	{4, 0, Backoff, true, true},
	{17, 0, Backoff, true, true},
	{32, 0, Backoff, true, true},
	{341, 0, Backoff, true, true},
	{613, 0, Backoff, true, true},
	{613, 1996, Backoff, true, true},
	{613, 2534040, Backoff, true, true},
	{80001, 0, Backoff, true, true},
	{80006, 0, Backoff, true, true},
	// backoff: transient
	{1, 0, Backoff, false, false},
	{2, 0, Backoff, false, false},
	{1200, 0, Backoff, false, false},
	{1200, 2018024, Backoff, false, false},
	{10, 2018300, Backoff, false, false},
	{200, 2018321, Backoff, false, false},
	// drop
	{551, 0, Drop, false, false},
	{551, 1545041, Drop, false, false},
	{200, 1545041, Drop, false, false},
	{10, 2018108, Drop, false, false},
	{10, 2018278, Drop, false, false},
	{10, 2018065, Drop, false, false},
	{10, 2534022, Drop, false, false},
	{100, 2018001, Drop, false, false},
	{230, 0, Drop, false, false},
	{10900, 0, Drop, false, false},
	{10901, 0, Drop, false, false},
	{10903, 0, Drop, false, false},
	// dead-letter
	{1, 99, DeadLetter, false, false},
	{1, 1357046, DeadLetter, false, false},
	{10, 0, DeadLetter, false, false},
	{10, 1893063, DeadLetter, true, false},
	{100, 0, DeadLetter, false, false},
	{100, 2018014, DeadLetter, false, false},
	{100, 2018015, DeadLetter, false, false},
	{100, 2018008, DeadLetter, false, false},
	{100, 2018047, DeadLetter, false, false},
	{100, 2018074, DeadLetter, false, false},
	{100, 2018109, DeadLetter, false, false},
	{100, 2018294, DeadLetter, false, false},
	{200, 0, DeadLetter, false, false},
	{200, 2018021, DeadLetter, false, false},
	{200, 2018027, DeadLetter, false, false},
	{200, 2018028, DeadLetter, false, false},
	{368, 0, DeadLetter, true, false},
	{613, 2018338, DeadLetter, false, false},
	{2022, 0, DeadLetter, true, false},
	{10904, 0, DeadLetter, true, false},
	// unknown: the safe default
	{424242, 0, DeadLetter, false, false},
}

func TestClassifyGraphCodes(t *testing.T) {
	for _, c := range codeCases {
		t.Run(fmt.Sprintf("%d/%d", c.code, c.subcode), func(t *testing.T) {
			d := Classify(&Error{HTTPStatus: 400, Code: c.code, Subcode: c.subcode, Message: "m", FBTraceID: "T"})
			if d.Class != c.class || d.PageWide != c.pageWide || d.Throttled != c.throttled {
				t.Errorf("Classify = %v pageWide=%v throttled=%v, want %v pageWide=%v throttled=%v",
					d.Class, d.PageWide, d.Throttled, c.class, c.pageWide, c.throttled)
			}
			if d.Code != c.code || d.Subcode != c.subcode || d.Label != fmt.Sprint(c.code) {
				t.Errorf("code/subcode/label = %d/%d/%q", d.Code, d.Subcode, d.Label)
			}
		})
	}
}

// TestEveryRuleHasACase keeps codeCases complete: a rule added to the
// table without a hand-written expectation fails here.
func TestEveryRuleHasACase(t *testing.T) {
	have := map[[2]int]bool{}
	for _, c := range codeCases {
		have[[2]int{c.code, c.subcode}] = true
	}
	for _, r := range Rules() {
		covered := false
		switch {
		case r.Code == AnyCode:
			for k := range have {
				covered = covered || k[1] == r.Subcode
			}
		case r.Subcode == AnySubcode:
			covered = have[[2]int{r.Code, 0}]
		default:
			covered = have[[2]int{r.Code, r.Subcode}]
		}
		if !covered {
			t.Errorf("rule %d/%d (%s) has no case in codeCases", r.Code, r.Subcode, r.Meaning)
		}
	}
}

func TestClassifyUnknownTransient(t *testing.T) {
	for _, e := range []*Error{
		{HTTPStatus: 400, Code: 77777, IsTransient: true},
		{HTTPStatus: 503, Code: 77777},
	} {
		d := Classify(e)
		if d.Class != Backoff || d.MaxAttempts == 0 {
			t.Errorf("%v: got %v max=%d, want bounded backoff", e, d.Class, d.MaxAttempts)
		}
	}
	if d := Classify(&Error{HTTPStatus: 500, Code: 2}); d.MaxAttempts != 3 {
		t.Errorf("code 2: MaxAttempts = %d, want 3", d.MaxAttempts)
	}
}

func TestClassifyRetryHint(t *testing.T) {
	h := http.Header{}
	h.Set(HeaderBusinessUsage, `{"111":[{"type":"messenger","call_count":100,"total_cputime":20,"total_time":30,"estimated_time_to_regain_access":7}]}`)
	d := Classify(&Error{HTTPStatus: 400, Code: 613, Usage: ParseUsage(h), RetryAfter: time.Minute})
	if d.RetryAfter != 7*time.Minute {
		t.Errorf("613 RetryAfter = %v, want 7m from estimated_time_to_regain_access", d.RetryAfter)
	}
	// A message-level error ignores the Page's throttle hint.
	d = Classify(&Error{HTTPStatus: 400, Code: 551, Usage: ParseUsage(h)})
	if d.RetryAfter != 0 {
		t.Errorf("551 RetryAfter = %v, want 0", d.RetryAfter)
	}
}

func TestClassifyNonGraphFailures(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		class     Class
		label     string
		maybe     bool
		throttled bool
	}{
		{"nil is sent", nil, Sent, "", false, false},
		{"429", &ProtocolError{HTTPStatus: 429, Reason: "body is not a JSON object", RetryAfter: 3 * time.Second}, Backoff, "http_429", false, true},
		{"502 html", &ProtocolError{HTTPStatus: 502, Reason: "HTML body"}, Backoff, "http_502", true, false},
		{"503 empty", &ProtocolError{HTTPStatus: 503, Reason: "empty body"}, Backoff, "http_503", true, false},
		{"408", &ProtocolError{HTTPStatus: 408, Reason: "empty body"}, Backoff, "http_408", false, false},
		{"200 truncated", &ProtocolError{HTTPStatus: 200, Reason: "invalid JSON"}, DeadLetter, "http_200", true, false},
		{"404 html", &ProtocolError{HTTPStatus: 404, Reason: "HTML body"}, DeadLetter, "http_404", false, false},
		{"301", &ProtocolError{HTTPStatus: 301, Reason: "empty body"}, DeadLetter, "http_301", false, false},
		{"timeout", &TransportError{Kind: TransportTimeout, Op: "timed out after 1s"}, Backoff, "timeout", true, false},
		{"reset", &TransportError{Kind: TransportReset, Op: "connection reset"}, Backoff, "connection_reset", true, false},
		{"refused", &TransportError{Kind: TransportRefused, Op: "connection refused"}, Backoff, "connection_refused", false, false},
		{"dns", &TransportError{Kind: TransportDNS, Op: "DNS lookup failed"}, Backoff, "dns", false, false},
		{"cancelled", &TransportError{Kind: TransportCanceled, Op: "cancelled"}, Backoff, "cancelled", true, false},
		{"other network", &TransportError{Kind: TransportOther, Op: "request failed"}, Backoff, "network", true, false},
		{"no token", fmt.Errorf("page 1: %w", ErrNoToken), Alert, "no_token", false, false},
		{"wrapped graph error", fmt.Errorf("send: %w", &Error{Code: 551}), Drop, "551", false, false},
		{"anything else", errors.New("boom"), DeadLetter, "other", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Classify(tt.err)
			if d.Class != tt.class || d.Label != tt.label || d.MaybeDelivered != tt.maybe || d.Throttled != tt.throttled {
				t.Errorf("got class=%v label=%q maybe=%v throttled=%v, want %v %q %v %v",
					d.Class, d.Label, d.MaybeDelivered, d.Throttled, tt.class, tt.label, tt.maybe, tt.throttled)
			}
			if tt.err != nil && d.Reason == "" {
				t.Error("empty Reason")
			}
		})
	}
	if d := Classify(&ProtocolError{HTTPStatus: 429, RetryAfter: 3 * time.Second}); d.RetryAfter != 3*time.Second {
		t.Errorf("429 RetryAfter = %v, want 3s from Retry-After", d.RetryAfter)
	}
}

func TestClassString(t *testing.T) {
	want := map[Class]string{Sent: "sent", Backoff: "backoff", Drop: "drop", DeadLetter: "dead_letter", Alert: "alert", Class(9): "class(9)"}
	for c, s := range want {
		if c.String() != s {
			t.Errorf("%d.String() = %q, want %q", int(c), c.String(), s)
		}
	}
}
