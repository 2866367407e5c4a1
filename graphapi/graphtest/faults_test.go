package graphtest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pagesend/pagesend/graphapi"
	"github.com/pagesend/pagesend/graphapi/graphtest"
)

// Answers that break the protocol or the connection, bodies and routes the
// fake refuses, and waits.

func TestFaults(t *testing.T) {
	const timeout = 200 * time.Millisecond
	tests := []struct {
		name   string
		answer graphtest.Answer
		check  func(t *testing.T, err error)
	}{
		{"HTML 502", graphtest.Raw(502, "text/html", "<html>Bad gateway</html>"), func(t *testing.T, err error) {
			var pe *graphapi.ProtocolError
			if !errors.As(err, &pe) || pe.HTTPStatus != 502 || pe.Reason != "HTML body" {
				t.Errorf("err = %v, want ProtocolError 502 HTML body", err)
			}
		}},
		{"truncated JSON", graphtest.Raw(200, "application/json", `{"recipient_id":"1","mess`), func(t *testing.T, err error) {
			var pe *graphapi.ProtocolError
			if !errors.As(err, &pe) || pe.HTTPStatus != 200 {
				t.Errorf("err = %v, want ProtocolError 200", err)
			}
		}},
		{"429", graphtest.TooManyRequests(30 * time.Second), func(t *testing.T, err error) {
			var pe *graphapi.ProtocolError
			if !errors.As(err, &pe) || pe.HTTPStatus != 429 || pe.RetryAfter != 30*time.Second {
				t.Errorf("err = %v, want ProtocolError 429 with Retry-After 30s", err)
			}
		}},
		{"1200 is HTTP 500", graphtest.Fail(1200, 0).WithHeader("X-App-Usage", `{"call_count":97}`), func(t *testing.T, err error) {
			ge := graphError(t, err, 1200, 0)
			if ge.HTTPStatus != 500 || ge.Usage.MaxPercent() != 97 {
				t.Errorf("err = %v usage %v, want HTTP 500 and X-App-Usage 97", ge, ge.Usage.MaxPercent())
			}
		}},
		{"WithStatus", graphtest.Fail(100, 2018001).WithStatus(403), func(t *testing.T, err error) {
			ge := graphError(t, err, 100, 2018001)
			if ge.HTTPStatus != 403 || ge.Message != "No matching user found" {
				t.Errorf("err = %v, want HTTP 403 No matching user found", ge)
			}
		}},
		{"hang", graphtest.Hang(), wantTimeout},
		{"delay", graphtest.OK().WithDelay(time.Hour), wantTimeout},
		{"slow body", graphtest.SlowBody(time.Hour), wantTimeout},
		{"reset", graphtest.Reset(), wantReset},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := graphtest.Start(t, graphtest.Options{})
			srv.SetDefault(tt.answer)
			client, err := srv.NewClient(graphapi.ClientOptions{Timeout: timeout})
			if err != nil {
				t.Fatal(err)
			}
			_, err = send(t, client, page, text("1"))
			tt.check(t, err)
			if n := srv.CallCount(); n != 1 {
				t.Errorf("CallCount = %d, want 1 (no retries by the transport)", n)
			}
		})
	}
}

func wantTimeout(t *testing.T, err error) {
	t.Helper()
	var te *graphapi.TransportError
	if !errors.As(err, &te) || !te.Timeout() {
		t.Errorf("err = %v, want a TransportError that timed out", err)
	}
}

func wantReset(t *testing.T, err error) {
	t.Helper()
	var te *graphapi.TransportError
	if !errors.As(err, &te) || te.Kind != graphapi.TransportReset {
		t.Errorf("err = %v, want a TransportError of kind TransportReset", err)
	}
}

func TestSlowBodyWithinTimeout(t *testing.T) {
	srv := graphtest.Start(t, graphtest.Options{})
	srv.SetDefault(graphtest.SlowBody(10 * time.Millisecond))
	if resp := mustSend(t, srv.Client(t), page, text("1")); resp.MessageID != "m_1" {
		t.Errorf("MessageID = %q, want m_1", resp.MessageID)
	}
}

func TestInvalidBody(t *testing.T) {
	srv := graphtest.Start(t, graphtest.Options{})
	tests := []struct {
		name        string
		body        string
		wantRequest bool
	}{
		{"not JSON", `{"recipient":`, false},
		{"unknown key", `{"recipient":{"id":"1"},"messaging_type":"UPDATE","message":{"Text":"hi"}}`, false},
		{"no recipient", `{"messaging_type":"UPDATE","message":{"text":"hi"}}`, true},
		{"message and sender_action", `{"recipient":{"id":"1"},"messaging_type":"UPDATE","message":{"text":"hi"},"sender_action":"typing_on"}`, true},
		{"too large", `{"message":{"text":"` + strings.Repeat("x", graphtest.MaxBodyBytes) + `"}}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.ClearCalls()
			req, _ := http.NewRequestWithContext(t.Context(), "POST", srv.URL()+"/v25.0/"+page+"/messages", strings.NewReader(tt.body))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			e := decodeError(t, resp)
			if resp.StatusCode != 400 || e.Code != 100 || e.Type != "OAuthException" || !strings.HasPrefix(e.Message, "(#100) ") {
				t.Errorf("HTTP %d %+v, want 400, code 100 OAuthException, (#100) message", resp.StatusCode, e)
			}
			calls := srv.Calls()
			if len(calls) != 1 || (calls[0].Request != nil) != tt.wantRequest || calls[0].Status != 400 {
				t.Errorf("calls = %+v, want one with Status 400 and parsed Request %v", calls, tt.wantRequest)
			}
		})
	}

	// graphapi.Client sends what it is given; the fake validates it.
	_, err := send(t, srv.Client(t), page, &graphapi.Request{Recipient: &graphapi.Recipient{ID: "1"}})
	ge := graphError(t, err, 100, 0)
	if !strings.Contains(ge.Message, "needs message or sender_action") {
		t.Errorf("message = %q, want the validation error", ge.Message)
	}
}

func TestRouting(t *testing.T) {
	srv := graphtest.Start(t, graphtest.Options{Version: "v25.0"})
	tests := []struct {
		name, method, path string
		wantCode           int
	}{
		{"ok", "POST", "/v25.0/" + page + "/messages", 200},
		{"me", "POST", "/v25.0/me/messages", 200},
		{"GET", "GET", "/v25.0/" + page + "/messages", 404},
		{"other edge", "POST", "/v25.0/" + page + "/feed", 404},
		{"no version", "POST", "/" + page + "/messages", 404},
		{"other version", "POST", "/v24.0/" + page + "/messages", 404},
		{"page name", "POST", "/v25.0/mypage/messages", 404},
	}
	body, _ := json.Marshal(text("1"))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), tt.method, srv.URL()+tt.path, strings.NewReader(string(body)))
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("HTTP %d, want %d", resp.StatusCode, tt.wantCode)
			}
			if tt.wantCode == 404 {
				if e := decodeError(t, resp); e.Code != 100 {
					t.Errorf("error %+v, want code 100", e)
				}
			}
		})
	}
	if n := srv.CallCount(); n != len(tests) {
		t.Errorf("CallCount = %d, want %d: every call is recorded", n, len(tests))
	}
}

// TestCloseReleasesHang checks that Close does not wait for a hanging
// answer, and that WaitCalls returns when the server closes.
func TestCloseReleasesHang(t *testing.T) {
	srv := graphtest.NewServer(graphtest.Options{})
	defer srv.Close()
	srv.SetDefault(graphtest.Hang())
	client, err := srv.NewClient(graphapi.ClientOptions{Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := client.Send(context.Background(), page, token, text("1"))
		errc <- err
	}()
	if err := srv.WaitCalls(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	wantReset(t, <-errc)
	if err := srv.WaitCalls(t.Context(), 2); !errors.Is(err, graphtest.ErrClosed) {
		t.Errorf("WaitCalls after Close = %v, want ErrClosed", err)
	}
}

func TestLatency(t *testing.T) {
	const latency = 50 * time.Millisecond
	srv := graphtest.Start(t, graphtest.Options{Latency: latency})
	start := time.Now()
	mustSend(t, srv.Client(t), page, text("1"))
	if d := time.Since(start); d < latency {
		t.Errorf("answered after %v, want at least %v", d, latency)
	}
}

func TestRawBodyAndHeaders(t *testing.T) {
	srv := graphtest.Start(t, graphtest.Options{})
	srv.SetDefault(graphtest.Raw(201, "application/json", `{"recipient_id":"1","message_id":"m_custom"}`).WithHeader("X-Test", "yes"))

	body, _ := json.Marshal(text("1"))
	req, _ := http.NewRequestWithContext(t.Context(), "POST", srv.URL()+"/v25.0/1/messages", strings.NewReader(string(body)))
	req.Header.Set("Authorization", "Bearer x")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 201 || resp.Header.Get("X-Test") != "yes" || resp.Header.Get("Content-Type") != "application/json" ||
		string(got) != `{"recipient_id":"1","message_id":"m_custom"}` {
		t.Errorf("HTTP %d %v %s, want the Raw answer byte for byte", resp.StatusCode, resp.Header, got)
	}
	if c := srv.Calls()[0]; c.Status != 201 || c.MessageID != "" {
		t.Errorf("recorded Status %d MessageID %q, want 201 and none (Raw bodies are not parsed)", c.Status, c.MessageID)
	}
}
