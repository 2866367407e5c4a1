package graphtest

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/pagesend/pagesend/graphapi"
)

// errClientGone and errClosing say why a wait ended early.
var (
	errClientGone = errors.New("client went away")
	errClosing    = errors.New("server closing")
)

// deliver carries out a decided answer. When the server closes during a
// wait it aborts the handler, which drops the connection: the client sees
// a transport error, not a half-made answer.
func (s *Server) deliver(w http.ResponseWriter, r *http.Request, p plan) {
	ctx := r.Context()
	s.wait(ctx, s.opts.Latency+p.delay)
	switch p.kind {
	case kindHang:
		s.wait(ctx, -1)
		return
	case kindReset:
		reset(w)
		return
	}

	body, ctype := p.render()
	h := w.Header()
	for k, v := range p.header {
		h[k] = v
	}
	if p.hasRegain {
		h.Set(graphapi.HeaderBusinessUsage, usageHeader(p.call.PageID, p.regain))
	}
	if h.Get("Content-Type") == "" && ctype != "" {
		h.Set("Content-Type", ctype)
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(p.httpStatus())
	if p.slow <= 0 {
		_, _ = w.Write(body)
		return
	}
	half := len(body) / 2
	_, _ = w.Write(body[:half])
	http.NewResponseController(w).Flush()
	s.wait(ctx, p.slow)
	_, _ = w.Write(body[half:])
}

// wait sleeps for d (forever when d < 0). It returns early when the
// client goes away and aborts the handler when the server closes.
func (s *Server) wait(ctx context.Context, d time.Duration) {
	if d == 0 {
		return
	}
	var timeout <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-timeout:
	case <-ctx.Done():
		// Nothing more can reach the client; finishing the handler
		// quickly is all that matters.
		panic(http.ErrAbortHandler)
	case <-s.done:
		panic(http.ErrAbortHandler)
	}
}

// reset takes over the connection and closes it with SO_LINGER 0, so the
// kernel sends RST instead of FIN.
func reset(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// render returns the body and content type of an OK, Fail or Raw answer.
func (p plan) render() ([]byte, string) {
	const jsonType = "application/json; charset=UTF-8"
	switch p.kind {
	case kindRaw:
		return []byte(p.body), p.ctype
	case kindFail:
		b, _ := json.Marshal(errorBody{Error: errorFields{
			Message:     p.message,
			Type:        p.errType,
			Code:        p.code,
			Subcode:     p.subcode,
			IsTransient: p.transient,
			FBTraceID:   p.traceID,
		}})
		return b, jsonType
	}
	resp := graphapi.SendResponse{MessageID: p.messageID}
	if req := p.call.Request; req != nil && req.Recipient != nil {
		resp.RecipientID = req.Recipient.ID
		resp.ThreadKey = req.Recipient.ThreadKey
	}
	b, _ := json.Marshal(resp)
	return b, jsonType
}

type errorBody struct {
	Error errorFields `json:"error"`
}

type errorFields struct {
	Message     string `json:"message"`
	Type        string `json:"type"`
	Code        int    `json:"code"`
	Subcode     int    `json:"error_subcode,omitempty"`
	IsTransient bool   `json:"is_transient,omitempty"`
	FBTraceID   string `json:"fbtrace_id"`
}

// usageHeader is X-Business-Use-Case-Usage for a throttled Page, keyed by
// the Page id where Meta puts the business id.
func usageHeader(pageID string, regainMinutes float64) string {
	b, _ := json.Marshal(map[string][]businessUsage{pageID: {{
		Type:          "messenger",
		CallCount:     100,
		RegainMinutes: regainMinutes,
	}}})
	return string(b)
}

type businessUsage struct {
	Type          string  `json:"type"`
	CallCount     float64 `json:"call_count"`
	TotalCPUTime  float64 `json:"total_cputime"`
	TotalTime     float64 `json:"total_time"`
	RegainMinutes float64 `json:"estimated_time_to_regain_access"`
}
