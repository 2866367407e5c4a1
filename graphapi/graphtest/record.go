package graphtest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pagesend/pagesend/graphapi"
)

// Call is one call the fake received, recorded when its answer was decided
// (before Latency and any delay), whether the answer was a success or a
// rejection.
type Call struct {
	// N is the call's number, from 1, counting since the start or the
	// last ClearCalls.
	N int
	// Time is when the call arrived, by Options.Now.
	Time   time.Time
	Method string
	Path   string
	// Version and PageID come from the path; they are empty when the path
	// does not have three parts. A call to /me/messages has the PageID its
	// token maps to when Options.Tokens is set.
	Version string
	PageID  string
	// Token is the access token as received. This is a test fake: keeping
	// it lets tests check which token a worker used.
	Token string
	// Proof and ProofTime are the appsecret_proof and appsecret_time
	// parameters.
	Proof     string
	ProofTime string
	// Body is the raw request body (up to MaxBodyBytes).
	Body []byte
	// Request is Body parsed with graphapi.DecodeRequest, nil if it did
	// not parse; it may still fail Validate. Treat it as read-only.
	Request *graphapi.Request
	// Recipient is the value of the request's first recipient identifier.
	Recipient string
	// Status is the HTTP status answered, 0 for Hang and Reset.
	Status int
	// MessageID is the message id answered, if any.
	MessageID string
}

// record keeps c and wakes WaitCalls. The caller holds s.mu.
func (s *Server) record(c Call) {
	s.calls = append(s.calls, c)
	// Trim in batches so that keeping the last MaxCalls costs O(1) per
	// call on average.
	if m := s.opts.MaxCalls; m > 0 && len(s.calls) >= 2*m {
		n := copy(s.calls, s.calls[len(s.calls)-m:])
		clear(s.calls[n:])
		s.calls = s.calls[:n]
	}
	if s.wake != nil {
		close(s.wake)
		s.wake = nil
	}
}

// Calls returns a copy of the recorded calls in the order their answers
// were decided, which is the order of N.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	calls := s.calls
	if m := s.opts.MaxCalls; m > 0 && len(calls) > m {
		calls = calls[len(calls)-m:]
	}
	return append([]Call(nil), calls...)
}

// CallsFor returns a copy of the recorded calls to pageID.
func (s *Server) CallsFor(pageID string) []Call {
	var out []Call
	for _, c := range s.Calls() {
		if c.PageID == pageID {
			out = append(out, c)
		}
	}
	return out
}

// CallCount is the number of calls received since the start or the last
// ClearCalls, including any Options.MaxCalls has forgotten.
func (s *Server) CallCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// ClearCalls forgets the recorded calls and starts counting calls from
// zero again, so that N, ScriptCall and WaitCalls count from here. Scripts,
// rate limits and message ids carry on.
func (s *Server) ClearCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = nil
	s.count = 0
}

// WaitCalls blocks until at least n calls have been recorded (CallCount
// reaches n), ctx is done, or the server closes.
func (s *Server) WaitCalls(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		got := s.count
		if got >= n {
			s.mu.Unlock()
			return nil
		}
		if s.wake == nil {
			s.wake = make(chan struct{})
		}
		wake := s.wake
		s.mu.Unlock()

		select {
		case <-wake:
		case <-ctx.Done():
			return fmt.Errorf("graphtest: %d of %d calls: %w", got, n, ctx.Err())
		case <-s.done:
			return fmt.Errorf("graphtest: %d of %d calls: %w", got, n, ErrClosed)
		}
	}
}

// ErrClosed is returned by WaitCalls when the server closes first.
var ErrClosed = errors.New("server closed")
