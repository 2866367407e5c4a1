package graphapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
)

const (
	testToken  = Secret("EAAtestPageToken123")
	testSecret = Secret("app-secret-xyz")
)

func mustRequest(t *testing.T, body string) *Request {
	t.Helper()
	r, err := ParseRequest([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func newTestClient(t *testing.T, url string, opts ClientOptions) *Client {
	t.Helper()
	opts.BaseURL = url
	c, err := NewClient(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func TestSendSuccess(t *testing.T) {
	type seen struct {
		method, path, rawQuery, auth, ctype string
		body                                []byte
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), b}
		w.Header().Set(HeaderAppUsage, `{"call_count":12,"total_time":4,"total_cputime":3}`)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"recipient_id":"6789","message_id":"m_abc"}`)
	}))
	defer srv.Close()

	body := `{"recipient":{"id":"6789"},"messaging_type":"update","message":{"text":"a < b & c"}}`
	c := newTestClient(t, srv.URL, ClientOptions{})
	resp, err := c.Send(context.Background(), "12345", testToken, mustRequest(t, body))
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if resp.MessageID != "m_abc" || resp.RecipientID != "6789" {
		t.Errorf("response = %+v", resp)
	}
	if resp.Usage.App == nil || resp.Usage.App.CallCount != 12 {
		t.Errorf("usage = %+v", resp.Usage)
	}
	s := <-got
	if s.method != "POST" || s.path != "/v25.0/12345/messages" {
		t.Errorf("request line = %s %s", s.method, s.path)
	}
	if s.rawQuery != "" {
		t.Errorf("query = %q, want none without an app secret", s.rawQuery)
	}
	if s.auth != "Bearer "+string(testToken) {
		t.Errorf("Authorization = %q", s.auth)
	}
	if s.ctype != "application/json" {
		t.Errorf("Content-Type = %q", s.ctype)
	}
	// The body is the producer's request, byte for byte in meaning and
	// without HTML escaping.
	if string(s.body) != body {
		t.Errorf("body = %s\nwant  %s", s.body, body)
	}
}

func TestSendAppSecretProof(t *testing.T) {
	queries := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		queries <- r.URL.RawQuery
		io.WriteString(w, `{"recipient_id":"1","message_id":"m_1"}`)
	}))
	defer srv.Close()
	req := mustRequest(t, `{"recipient":{"id":"1"},"messaging_type":"UPDATE","message":{"text":"hi"}}`)
	now := time.Unix(1_800_000_000, 0)

	tests := []struct {
		name  string
		opts  ClientOptions
		proof string
		time  string
	}{
		{"plain", ClientOptions{AppSecret: testSecret}, AppSecretProof(testSecret, testToken), ""},
		{"timestamped", ClientOptions{AppSecret: testSecret, AppSecretTime: true, Now: func() time.Time { return now }},
			AppSecretProofAt(testSecret, testToken, now.Unix()), "1800000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestClient(t, srv.URL, tt.opts)
			if _, err := c.Send(context.Background(), "1", testToken, req); err != nil {
				t.Fatal(err)
			}
			q := <-queries
			if strings.Contains(q, string(testToken)) || strings.Contains(q, string(testSecret)) {
				t.Fatalf("query %q carries a secret", q)
			}
			want := "appsecret_proof=" + tt.proof
			if tt.time != "" {
				want += "&appsecret_time=" + tt.time
			}
			if q != want {
				t.Errorf("query = %q, want %q", q, want)
			}
		})
	}
}

func TestAppSecretProofKnownValues(t *testing.T) {
	// Computed independently: printf MSG | openssl dgst -sha256 -hmac secret
	if got, want := AppSecretProof("secret", "token"), "e941110e3d2bfe82621f0e3e1434730d7305d106c5f68c87165d0b27a4611a4a"; got != want {
		t.Errorf("AppSecretProof = %s, want %s", got, want)
	}
	if got, want := AppSecretProofAt("secret", "token", 1800000000), "05149ce657367d8c2ddd17df42eaf330bef5c74ab4c8f9244179a01fafd1d34b"; got != want {
		t.Errorf("AppSecretProofAt = %s, want %s", got, want)
	}
}

func TestSendFailures(t *testing.T) {
	req := mustRequest(t, `{"recipient":{"id":"1"},"messaging_type":"UPDATE","message":{"text":"hi"}}`)
	tests := []struct {
		name    string
		handler http.HandlerFunc
		check   func(t *testing.T, err error)
	}{
		{"graph error", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set(HeaderBusinessUsage, `{"12345":[{"type":"messenger","call_count":100,"total_cputime":1,"total_time":1,"estimated_time_to_regain_access":3}]}`)
			w.WriteHeader(400)
			io.WriteString(w, `{"error":{"message":"Calls to this api have exceeded the rate limit.","type":"OAuthException","code":"613","error_subcode":1996,"error_user_title":"Slow down","error_user_msg":"Too fast","fbtrace_id":"AbC123","is_transient":true}}`)
		}, func(t *testing.T, err error) {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %T %v", err, err)
			}
			want := Error{HTTPStatus: 400, Code: 613, Subcode: 1996, Type: "OAuthException", Message: "Calls to this api have exceeded the rate limit.",
				UserTitle: "Slow down", UserMsg: "Too fast", FBTraceID: "AbC123", IsTransient: true}
			e2 := *e
			e2.Usage = Usage{}
			if !reflect.DeepEqual(e2, want) {
				t.Errorf("error = %+v\nwant    %+v", e2, want)
			}
			if e.Usage.RegainAccessIn() != 3*time.Minute {
				t.Errorf("regain = %v", e.Usage.RegainAccessIn())
			}
			if got := e.Error(); got != "graph error 613/1996 (OAuthException): Calls to this api have exceeded the rate limit. [HTTP 400, fbtrace_id AbC123]" {
				t.Errorf("Error() = %q", got)
			}
		}},
		{"html 502", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(502)
			io.WriteString(w, "<html><body>Bad Gateway</body></html>")
		}, wantProtocol(502, "HTML body")},
		{"empty 500", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }, wantProtocol(500, "empty body")},
		{"truncated 200", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"recipient_id":"1","mess`) },
			wantProtocol(200, "invalid JSON")},
		{"400 json without error", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(400); io.WriteString(w, `{"oops":1}`) },
			wantProtocol(400, "JSON without an error object")},
		{"plain text 429", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(429)
			io.WriteString(w, "slow down")
		}, func(t *testing.T, err error) {
			wantProtocol(429, "not a JSON object")(t, err)
			var pe *ProtocolError
			errors.As(err, &pe)
			if pe.RetryAfter != 7*time.Second || pe.Snippet != "slow down" {
				t.Errorf("RetryAfter=%v Snippet=%q", pe.RetryAfter, pe.Snippet)
			}
		}},
		{"oversized", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"x":"`+strings.Repeat("a", 2048)+`"}`)
		},
			wantProtocol(200, "body over 1024 bytes")},
		{"redirect not followed", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://elsewhere.invalid/", http.StatusFound)
		}, wantProtocol(302, "")},
		// The handlers read the body first: net/http notices a client
		// hanging up (and cancels r.Context) only once the body is read.
		{"hang past timeout", func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body); <-r.Context().Done() },
			wantTransport(TransportTimeout)},
		{"slow body past timeout", func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(200)
			io.WriteString(w, `{"recipient_id":`)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}, wantTransport(TransportTimeout)},
		{"reset", func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				panic(err)
			}
			conn.(*net.TCPConn).SetLinger(0)
			conn.Close()
		}, wantTransport(TransportReset)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			c := newTestClient(t, srv.URL, ClientOptions{Timeout: 200 * time.Millisecond, MaxResponseBytes: 1024, AppSecret: testSecret})
			resp, err := c.Send(context.Background(), "12345", testToken, req)
			if err == nil {
				t.Fatalf("Send succeeded: %+v", resp)
			}
			if msg := err.Error(); strings.Contains(msg, string(testToken)) || strings.Contains(msg, string(testSecret)) || strings.Contains(msg, "appsecret_proof") {
				t.Errorf("error message leaks: %s", msg)
			}
			tt.check(t, err)
		})
	}
}

func wantProtocol(status int, reason string) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var pe *ProtocolError
		if !errors.As(err, &pe) {
			t.Fatalf("got %T %v, want *ProtocolError", err, err)
		}
		if pe.HTTPStatus != status || !strings.Contains(pe.Reason, reason) {
			t.Errorf("got HTTP %d %q, want %d %q", pe.HTTPStatus, pe.Reason, status, reason)
		}
	}
}

func wantTransport(kind TransportKind) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var te *TransportError
		if !errors.As(err, &te) {
			t.Fatalf("got %T %v, want *TransportError", err, err)
		}
		if te.Kind != kind {
			t.Errorf("kind = %s (%v), want %s", te.Kind.Label(), err, kind.Label())
		}
	}
}

func TestSendSuccessWithoutIDs(t *testing.T) {
	// Meta's answer to a sender action for a user_ref recipient.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{}`) }))
	defer srv.Close()
	c := newTestClient(t, srv.URL, ClientOptions{})
	resp, err := c.Send(context.Background(), "1", testToken, mustRequest(t, `{"recipient":{"user_ref":"ref"},"sender_action":"typing_on"}`))
	if err != nil || resp.MessageID != "" || resp.RecipientID != "" {
		t.Fatalf("got %+v, %v; want a success without ids", resp, err)
	}
}

// otherToken is shaped like a Page token (split so that scans of the repo
// for real tokens stay quiet).
const otherToken = "EA" + "AotherPageToken1234567890xyz"

// TestSendRedactsEchoedToken: Meta repeats a malformed token in its 190
// message; it must not travel on in the error.
func TestSendRedactsEchoedToken(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		w.WriteHeader(400)
		io.WriteString(w, `{"error":{"message":"Malformed access token `+tok+`","type":"OAuthException","code":190,"error_user_msg":"other token `+otherToken+`","fbtrace_id":"T"}}`)
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL, ClientOptions{})
	_, err := c.Send(context.Background(), "1", testToken, mustRequest(t, `{"recipient":{"id":"1"},"sender_action":"typing_on"}`))
	var ge *Error
	if !errors.As(err, &ge) || ge.Code != 190 {
		t.Fatalf("got %v", err)
	}
	all := ge.Error() + ge.Message + ge.UserMsg
	if strings.Contains(all, string(testToken)) || strings.Contains(all, "EAAother") {
		t.Fatalf("token echoed through: %q / %q", ge.Message, ge.UserMsg)
	}
	if ge.Message != "Malformed access token [redacted]" {
		t.Errorf("Message = %q", ge.Message)
	}
}

// TestSendRedactsEchoedProof: a proxy's error page may echo the request
// URL, appsecret_proof included.
func TestSendRedactsEchoedProof(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(502)
		io.WriteString(w, "Bad gateway: POST "+r.URL.String())
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL, ClientOptions{AppSecret: testSecret})
	_, err := c.Send(context.Background(), "1", testToken, mustRequest(t, `{"recipient":{"id":"1"},"sender_action":"typing_on"}`))
	proof := AppSecretProof(testSecret, testToken)
	if err == nil || strings.Contains(err.Error(), proof[:16]) || !strings.Contains(err.Error(), "appsecret_proof=[redacted]") {
		t.Fatalf("error %q: proof not redacted", err)
	}
}

func TestSendRefusedAndCancelled(t *testing.T) {
	req := mustRequest(t, `{"recipient":{"id":"1"},"messaging_type":"UPDATE","message":{"text":"hi"}}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}))
	url := srv.URL
	c := newTestClient(t, url, ClientOptions{})

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Send(ctx, "1", testToken, req)
		errc <- err
	}()
	cancel()
	wantTransport(TransportCanceled)(t, <-errc)

	srv.Close()
	_, err := c.Send(context.Background(), "1", testToken, req)
	wantTransport(TransportRefused)(t, err)
}

func TestSendRefusesBadInput(t *testing.T) {
	c := newTestClient(t, "http://127.0.0.1:1", ClientOptions{})
	req := mustRequest(t, `{"recipient":{"id":"1"},"messaging_type":"UPDATE","message":{"text":"hi"}}`)
	if _, err := c.Send(context.Background(), "1", "", req); !errors.Is(err, ErrNoToken) {
		t.Errorf("empty token: got %v, want ErrNoToken", err)
	}
	if _, err := c.Send(context.Background(), "../x", testToken, req); err == nil || !strings.Contains(err.Error(), "not numeric") {
		t.Errorf("bad page id: got %v", err)
	}
	if _, err := NewClient(ClientOptions{BaseURL: "graph.facebook.com"}); err == nil {
		t.Error("NewClient accepted a base URL without a scheme")
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	tests := map[string]time.Duration{
		"":                              0,
		"5":                             5 * time.Second,
		"-3":                            0,
		"junk":                          0,
		"999999999":                     maxRetryAfter,
		"Mon, 23 Nov 2026 12:00:30 GMT": 30 * time.Second,
		"Mon, 23 Nov 2026 11:00:00 GMT": 0,
	}
	for in, want := range tests {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestSecretRedacted(t *testing.T) {
	s := Secret("EAAsupersecret")
	b, _ := json.Marshal(map[string]Secret{"token": s})
	for _, out := range []string{
		s.String(), s.GoString(), s.LogValue().String(), string(b),
		sprintf("%v %s %q %+v %#v", s, s, s, s, s),
		sprintf("%v", struct{ T Secret }{s}),
	} {
		if strings.Contains(out, "supersecret") {
			t.Errorf("leaked: %s", out)
		}
		if !strings.Contains(out, "[redacted]") {
			t.Errorf("no [redacted] in %q", out)
		}
	}
}
