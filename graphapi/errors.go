package graphapi

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Error is an error the Graph API answered with:
//
//	{"error": {"message", "type", "code", "error_subcode",
//	           "error_user_title", "error_user_msg", "fbtrace_id", "is_transient"}}
//
// Log FBTraceID with every failure: Meta support asks for it, and it
// expires soon after the call.
type Error struct {
	HTTPStatus int
	Code       int
	Subcode    int
	Type       string
	Message    string
	UserTitle  string
	UserMsg    string
	FBTraceID  string
	// IsTransient is Meta's own hint that retrying may succeed. It is not
	// on the documented error page but appears in responses.
	IsTransient bool
	// Usage holds the usage headers of the response.
	Usage Usage
	// RetryAfter is the Retry-After header, zero when absent.
	RetryAfter time.Duration
}

// Error reads like Meta's own: "graph error 613/1996 (OAuthException): Calls
// to this api have exceeded the rate limit. [HTTP 400, fbtrace_id AbC]".
func (e *Error) Error() string {
	code := strconv.Itoa(e.Code)
	if e.Subcode != 0 {
		code += "/" + strconv.Itoa(e.Subcode)
	}
	s := "graph error " + code
	if e.Type != "" {
		s += " (" + e.Type + ")"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	s += " [HTTP " + strconv.Itoa(e.HTTPStatus)
	if e.FBTraceID != "" {
		s += ", fbtrace_id " + e.FBTraceID
	}
	return s + "]"
}

// ProtocolError is a response the client could not read as the Graph API's:
// an empty body, HTML from a proxy, truncated JSON, or a success without the
// fields a success has. The request may have reached Meta.
type ProtocolError struct {
	HTTPStatus  int
	ContentType string
	// Reason says what was wrong, e.g. "empty body" or "HTML body".
	Reason string
	// Snippet is the start of the body, printable characters only.
	Snippet    string
	Usage      Usage
	RetryAfter time.Duration
}

// Error says what was wrong with the response and how its body starts.
func (e *ProtocolError) Error() string {
	s := fmt.Sprintf("graph response unreadable: HTTP %d, %s", e.HTTPStatus, e.Reason)
	if e.Snippet != "" {
		s += fmt.Sprintf(" (body starts %q)", e.Snippet)
	}
	return s
}

// TransportError is a call that got no complete HTTP response: a timeout, a
// reset or refused connection, a DNS failure, or a cancelled context. After
// a timeout or a reset, Meta may or may not have received the request.
type TransportError struct {
	Kind TransportKind
	// Op says what failed, e.g. "timed out after 20s" or "reading
	// response: connection reset".
	Op string
	// Err is the underlying error, with any URL removed.
	Err error
}

// TransportKind says how a call failed to get a response.
type TransportKind int

// The kinds of TransportError.
const (
	TransportOther    TransportKind = iota // anything else
	TransportTimeout                       // the per-call timeout or the context deadline expired
	TransportCanceled                      // the caller's context was cancelled
	TransportReset                         // the connection was reset or closed mid-response
	TransportRefused                       // nothing listens at the address
	TransportDNS                           // the host name did not resolve
)

var transportLabels = [...]string{"network", "timeout", "cancelled", "connection_reset", "connection_refused", "dns"}

// Label is the kind's metric label: "timeout", "connection_reset", ….
func (k TransportKind) Label() string {
	if int(k) < len(transportLabels) {
		return transportLabels[k]
	}
	return "network"
}

// Error says what failed, without the URL.
func (e *TransportError) Error() string {
	if e.Err == nil {
		return "graph call failed: " + e.Op
	}
	return "graph call failed: " + e.Op + ": " + e.Err.Error()
}

// Timeout reports whether the call timed out.
func (e *TransportError) Timeout() bool { return e.Kind == TransportTimeout }

// Unwrap returns the underlying error.
func (e *TransportError) Unwrap() error { return e.Err }

// ErrNoToken is returned by Send when it is given an empty access token.
// Classify treats it like error 190: the Page cannot send until a token is
// configured.
var ErrNoToken = errors.New("no access token for page")
