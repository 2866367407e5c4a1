package graphtest

import (
	"strconv"

	"golang.org/x/time/rate"
)

// ScriptRecipient queues answers for calls to recipientID: the value of the
// request's first recipient identifier (id, user_ref, phone_number, …; ids
// joined with commas). Each matching call takes the next answer; when the
// queue is empty, the default answer applies again.
//
// A call that passes the checks takes, in this order of precedence, the
// answer scripted for its call number, then for its recipient, then for
// its Page, then the default; only the answer used is consumed. A call the
// checks reject (bad token, rate limit, invalid body, …) consumes nothing.
func (s *Server) ScriptRecipient(recipientID string, answers ...Answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byRcpt[recipientID] = append(s.byRcpt[recipientID], answers...)
}

// ScriptPage queues answers for calls to pageID, like ScriptRecipient.
func (s *Server) ScriptPage(pageID string, answers ...Answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byPage[pageID] = append(s.byPage[pageID], answers...)
}

// ScriptCall sets the answer to the n-th call to the server (1-based,
// counting every call since the start or the last ClearCalls, rejected ones
// included). If that call is rejected by a check, the script is dropped.
func (s *Server) ScriptCall(n int, a Answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byCall[n] = a
}

// SetDefault replaces the answer given to calls no script matches, OK() at
// the start.
func (s *Server) SetDefault(a Answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.def = a
}

// SetRate gives pageID a token bucket of perSecond calls a second and burst
// calls at once (below 1 is taken as 1), replacing Options.Rate for it. A
// perSecond of 0 or less lets the Page call without limit.
//
// A call over the limit gets Meta's answer: HTTP 400, error 613 "Calls to
// this api have exceeded the rate limit.", and X-Business-Use-Case-Usage
// with call_count 100 and estimated_time_to_regain_access the minutes until
// the bucket holds a call again (a fraction: Meta sends whole minutes, but
// the fake's buckets refill in milliseconds). Rejected calls take no token.
// Use Fail(613, 0).WithRegain(m) to script other figures.
func (s *Server) SetRate(pageID string, perSecond float64, burst int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits[pageID] = newLimiter(perSecond, burst)
}

func newLimiter(perSecond float64, burst int) *rate.Limiter {
	if perSecond <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(perSecond), max(burst, 1))
}

// plan is a decided answer with what was drawn for it under the lock.
type plan struct {
	Answer
	call      *Call
	messageID string
	traceID   string
}

// decide numbers the call, runs the checks that need the server's state
// (rate limit), applies the body check and the scripts, and records the
// call, all under one lock so that call numbers, scripts and the record
// agree.
func (s *Server) decide(c *Call, rejected Answer, passed bool, bodyErr error) plan {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count++
	c.N = s.count

	a := rejected
	if passed {
		a = s.choose(c, bodyErr)
	}
	p := plan{Answer: a, call: c}
	switch a.kind {
	case kindOK:
		if c.Request != nil && (c.Request.SenderAction == "" || c.Request.Message != nil) {
			s.msgSeq++
			p.messageID = "m_" + strconv.FormatUint(s.msgSeq, 10)
		}
	case kindFail:
		s.traceSeq++
		p.traceID = s.traceP + strconv.FormatUint(s.traceSeq, 36)
	}
	c.Status = a.httpStatus()
	c.MessageID = p.messageID
	s.record(*c)
	return p
}

// choose picks the answer for a call that passed the stateless checks.
func (s *Server) choose(c *Call, bodyErr error) Answer {
	if lim := s.limiter(c.PageID); lim != nil && !lim.AllowN(c.Time, 1) {
		return Fail(613, 0).WithRegain(regainMinutes(lim, c))
	}
	if bodyErr != nil {
		return reject(400, 100, 0, typeOAuth, "(#100) "+bodyErr.Error())
	}
	if a, ok := s.byCall[c.N]; ok {
		delete(s.byCall, c.N)
		return a
	}
	if a, ok := pop(s.byRcpt, c.Recipient); ok {
		return a
	}
	if a, ok := pop(s.byPage, c.PageID); ok {
		return a
	}
	return s.def
}

// limiter returns the Page's bucket, making one from Options.Rate on first
// use; nil means no limit.
func (s *Server) limiter(pageID string) *rate.Limiter {
	lim, ok := s.limits[pageID]
	if !ok {
		lim = newLimiter(s.opts.Rate, s.opts.Burst)
		s.limits[pageID] = lim
	}
	return lim
}

// regainMinutes is how long until the bucket holds one call again.
func regainMinutes(lim *rate.Limiter, c *Call) float64 {
	missing := 1 - lim.TokensAt(c.Time)
	return max(missing, 0) / float64(lim.Limit()) / 60
}

func pop(queues map[string][]Answer, key string) (Answer, bool) {
	q := queues[key]
	if len(q) == 0 || key == "" {
		return Answer{}, false
	}
	if len(q) == 1 {
		delete(queues, key)
	} else {
		queues[key] = q[1:]
	}
	return q[0], true
}
