package graphtest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pagesend/pagesend/graphapi"
	"github.com/pagesend/pagesend/graphapi/graphtest"
)

const (
	page  = "1234"
	token = "page-token"
)

// text is a valid request with a text message to recipient id.
func text(id string) *graphapi.Request {
	return &graphapi.Request{
		Recipient:     &graphapi.Recipient{ID: id},
		MessagingType: "UPDATE",
		Message:       &graphapi.Message{Text: "hello"},
	}
}

func send(t *testing.T, c *graphapi.Client, pageID string, req *graphapi.Request) (*graphapi.SendResponse, error) {
	t.Helper()
	return c.Send(t.Context(), pageID, token, req)
}

func mustSend(t *testing.T, c *graphapi.Client, pageID string, req *graphapi.Request) *graphapi.SendResponse {
	t.Helper()
	resp, err := send(t, c, pageID, req)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	return resp
}

// graphError asserts that err is a *graphapi.Error with the code and
// subcode.
func graphError(t *testing.T, err error, code, subcode int) *graphapi.Error {
	t.Helper()
	var ge *graphapi.Error
	if !errors.As(err, &ge) {
		t.Fatalf("err = %v (%T), want *graphapi.Error %d/%d", err, err, code, subcode)
	}
	if ge.Code != code || ge.Subcode != subcode {
		t.Fatalf("err = %v, want code %d/%d", ge, code, subcode)
	}
	if ge.FBTraceID == "" {
		t.Errorf("err = %v: no fbtrace_id", ge)
	}
	return ge
}

// clock is a settable Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestDefaultAnswer(t *testing.T) {
	srv := graphtest.Start(t, graphtest.Options{})
	client := srv.Client(t)
	tests := []struct {
		name          string
		req           *graphapi.Request
		wantRecipient string
		wantMessageID string
		wantThreadKey string
	}{
		{"id", text("6789"), "6789", "m_1", ""},
		{"user_ref", &graphapi.Request{
			Recipient: &graphapi.Recipient{UserRef: "ref-1"}, MessagingType: "RESPONSE",
			Message: &graphapi.Message{Text: "hi"},
		}, "", "m_2", ""},
		{"thread_key", &graphapi.Request{
			Recipient: &graphapi.Recipient{ThreadKey: "t-9"}, MessagingType: "RESPONSE",
			Message: &graphapi.Message{Text: "hi"},
		}, "", "m_3", "t-9"},
		{"sender_action", &graphapi.Request{
			Recipient: &graphapi.Recipient{ID: "6789"}, SenderAction: "typing_on",
		}, "6789", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := mustSend(t, client, page, tt.req)
			if resp.RecipientID != tt.wantRecipient || resp.MessageID != tt.wantMessageID || resp.ThreadKey != tt.wantThreadKey {
				t.Errorf("resp = %+v, want recipient_id %q, message_id %q, thread_key %q",
					resp, tt.wantRecipient, tt.wantMessageID, tt.wantThreadKey)
			}
		})
	}
}

func TestTokens(t *testing.T) {
	srv := graphtest.Start(t, graphtest.Options{Tokens: map[string]string{page: token, "555": "other-token"}})
	client := srv.Client(t)

	t.Run("right token", func(t *testing.T) {
		mustSend(t, client, page, text("1"))
	})
	t.Run("wrong token", func(t *testing.T) {
		_, err := client.Send(t.Context(), page, "other-token", text("1"))
		ge := graphError(t, err, 190, 467)
		if ge.HTTPStatus != 400 || ge.Type != "OAuthException" {
			t.Errorf("err = %v, want HTTP 400 OAuthException", ge)
		}
	})
	t.Run("unknown page", func(t *testing.T) {
		_, err := send(t, client, "999", text("1"))
		graphError(t, err, 100, 33)
	})
	t.Run("me", func(t *testing.T) {
		srv.ClearCalls()
		_, err := client.Send(t.Context(), "me", "other-token", text("1"))
		if err != nil {
			t.Fatal(err)
		}
		if got := srv.Calls()[0].PageID; got != "555" {
			t.Errorf("PageID = %q, want 555 (the page of the token)", got)
		}
	})
	t.Run("missing token", func(t *testing.T) {
		// graphapi.Client refuses an empty token, so post by hand.
		resp, err := http.Post(srv.URL()+"/v25.0/"+page+"/messages", "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		e := decodeError(t, resp)
		if resp.StatusCode != 400 || e.Code != 190 || e.Subcode != 0 {
			t.Errorf("HTTP %d %+v, want 400 code 190 without subcode", resp.StatusCode, e)
		}
	})
}

type wireError struct {
	Message string `json:"message"`
	Type    string `json:"type"`
	Code    int    `json:"code"`
	Subcode int    `json:"error_subcode"`
}

func decodeError(t *testing.T, resp *http.Response) wireError {
	t.Helper()
	var body struct {
		Error wireError `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("decode error body: %v", err)
	}
	return body.Error
}

func TestAppSecret(t *testing.T) {
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	srv := graphtest.Start(t, graphtest.Options{AppSecret: "app-secret", Now: clk.Now})
	tests := []struct {
		name    string
		opts    graphapi.ClientOptions
		wantErr bool
	}{
		{"no proof", graphapi.ClientOptions{}, true},
		{"wrong secret", graphapi.ClientOptions{AppSecret: "other"}, true},
		{"plain proof", graphapi.ClientOptions{AppSecret: "app-secret"}, false},
		{"timestamped proof", graphapi.ClientOptions{AppSecret: "app-secret", AppSecretTime: true, Now: clk.Now}, false},
		{"timestamped proof, 4 minutes old", graphapi.ClientOptions{AppSecret: "app-secret", AppSecretTime: true,
			Now: func() time.Time { return clk.Now().Add(-4 * time.Minute) }}, false},
		{"timestamped proof, expired", graphapi.ClientOptions{AppSecret: "app-secret", AppSecretTime: true,
			Now: func() time.Time { return clk.Now().Add(-6 * time.Minute) }}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// graphapi.NewClient, not srv.NewClient, which would fill in
			// the app secret.
			tt.opts.BaseURL = srv.URL()
			client, err := graphapi.NewClient(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer client.CloseIdleConnections()
			_, err = send(t, client, page, text("1"))
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				return
			}
			ge := graphError(t, err, 100, 0)
			if ge.Type != "GraphMethodException" || !strings.Contains(ge.Message, "appsecret_proof") {
				t.Errorf("err = %v, want a GraphMethodException about appsecret_proof", ge)
			}
		})
	}
}

func TestRateLimit(t *testing.T) {
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	srv := graphtest.Start(t, graphtest.Options{Now: clk.Now})
	srv.SetRate(page, 2, 3) // 2 calls/s, bursts of 3
	client := srv.Client(t)

	for i := range 3 {
		if _, err := send(t, client, page, text("1")); err != nil {
			t.Fatalf("call %d within burst: %v", i+1, err)
		}
	}
	_, err := send(t, client, page, text("1"))
	ge := graphError(t, err, 613, 0)
	if ge.HTTPStatus != 400 || ge.Type != "OAuthException" || ge.Message != "Calls to this api have exceeded the rate limit." {
		t.Errorf("err = %v, want Meta's 613", ge)
	}
	if got, want := ge.Usage.RegainAccessIn(), 500*time.Millisecond; got != want {
		t.Errorf("RegainAccessIn = %v, want %v (one call at 2/s)", got, want)
	}
	if b := ge.Usage.Business; len(b) != 1 || b[0].BusinessID != page || b[0].CallCount != 100 || b[0].Type != "messenger" {
		t.Errorf("Usage.Business = %+v, want one messenger entry for page %s at 100%%", b, page)
	}

	mustSend(t, client, "999", text("1")) // other Pages have no limit
	clk.Add(500 * time.Millisecond)
	mustSend(t, client, page, text("1")) // the bucket refilled one call

	// Rejected calls are recorded too.
	if got := srv.CallsFor(page)[3].Status; got != 400 {
		t.Errorf("throttled call recorded with status %d, want 400", got)
	}
}

func TestScripts(t *testing.T) {
	srv := graphtest.Start(t, graphtest.Options{})
	client := srv.Client(t)
	srv.ScriptRecipient("42", graphtest.Fail(551, 0), graphtest.Fail(2, 0).Transient())
	srv.ScriptPage("777", graphtest.Fail(368, 0))

	type want struct {
		code, status int
		transient    bool
	}
	steps := []struct {
		pageID, recipient string
		want              want // code 0: success
	}{
		{page, "42", want{551, 400, false}},
		{page, "43", want{}}, // other recipients are not scripted
		{"777", "42", want{2, 500, true}},
		{page, "42", want{}}, // script used up: default
		{"777", "42", want{368, 400, false}},
		{"777", "42", want{}},
	}
	for i, st := range steps {
		_, err := send(t, client, st.pageID, text(st.recipient))
		if st.want.code == 0 {
			if err != nil {
				t.Fatalf("step %d: %v, want success", i, err)
			}
			continue
		}
		ge := graphError(t, err, st.want.code, 0)
		if ge.HTTPStatus != st.want.status || ge.IsTransient != st.want.transient {
			t.Errorf("step %d: %v (transient %v), want HTTP %d transient %v", i, ge, ge.IsTransient, st.want.status, st.want.transient)
		}
	}
}

func TestScriptCallAndDefault(t *testing.T) {
	srv := graphtest.Start(t, graphtest.Options{})
	client := srv.Client(t)
	srv.ScriptCall(2, graphtest.Fail(613, 1996).WithRegain(3))
	srv.ScriptRecipient("1", graphtest.Fail(551, 0)) // call 2's script wins; this one waits

	mustSend(t, client, page, text("2"))
	_, err := send(t, client, page, text("1"))
	ge := graphError(t, err, 613, 1996)
	if got := ge.Usage.RegainAccessIn(); got != 3*time.Minute {
		t.Errorf("RegainAccessIn = %v, want 3m", got)
	}
	_, err = send(t, client, page, text("1"))
	graphError(t, err, 551, 0)

	srv.SetDefault(graphtest.Fail(10903, 0))
	_, err = send(t, client, page, text("1"))
	ge = graphError(t, err, 10903, 0)
	if ge.Message != "This user cant reply to this activity" {
		t.Errorf("message = %q", ge.Message)
	}
}

func TestCallsRecorded(t *testing.T) {
	srv := graphtest.Start(t, graphtest.Options{AppSecret: "s"})
	client := srv.Client(t)
	mustSend(t, client, page, text("6789"))
	mustSend(t, client, "555", text("1"))

	calls := srv.Calls()
	if len(calls) != 2 {
		t.Fatalf("%d calls, want 2", len(calls))
	}
	c := calls[0]
	if c.N != 1 || c.Method != "POST" || c.Path != "/v25.0/1234/messages" || c.Version != "v25.0" ||
		c.PageID != page || c.Token != token || c.Recipient != "6789" || c.Status != 200 || c.MessageID != "m_1" ||
		c.Proof != graphapi.AppSecretProof("s", token) || c.Time.IsZero() {
		t.Errorf("call = %+v", c)
	}
	if c.Request == nil || c.Request.Message.Text != "hello" || !strings.Contains(string(c.Body), `"text":"hello"`) {
		t.Errorf("Request = %+v, Body = %s", c.Request, c.Body)
	}
	if got := srv.CallsFor("555"); len(got) != 1 || got[0].N != 2 {
		t.Errorf("CallsFor(555) = %+v, want call 2", got)
	}

	srv.ClearCalls()
	if n := srv.CallCount(); n != 0 || len(srv.Calls()) != 0 {
		t.Errorf("after ClearCalls: CallCount %d, %d calls", n, len(srv.Calls()))
	}
	if resp := mustSend(t, client, page, text("1")); resp.MessageID != "m_3" || srv.Calls()[0].N != 1 {
		t.Errorf("after ClearCalls: message id %q (want m_3), N %d (want 1)", resp.MessageID, srv.Calls()[0].N)
	}
}

func TestMaxCalls(t *testing.T) {
	srv := graphtest.Start(t, graphtest.Options{MaxCalls: 3})
	client := srv.Client(t)
	for range 10 {
		mustSend(t, client, page, text("1"))
	}
	calls := srv.Calls()
	if len(calls) != 3 || calls[0].N != 8 || calls[2].N != 10 || srv.CallCount() != 10 {
		t.Errorf("kept calls %v, count %d; want calls 8-10 of 10", callNumbers(calls), srv.CallCount())
	}
}

func callNumbers(calls []graphtest.Call) []int {
	ns := make([]int, len(calls))
	for i, c := range calls {
		ns[i] = c.N
	}
	return ns
}

func TestWaitCalls(t *testing.T) {
	srv := graphtest.Start(t, graphtest.Options{})
	client := srv.Client(t)
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			_, err := client.Send(context.Background(), page, token, text(fmt.Sprint(i+1)))
			errs <- err
		})
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := srv.WaitCalls(ctx, n); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	ids := map[string]bool{}
	for _, c := range srv.Calls() {
		ids[c.MessageID] = true
	}
	if len(ids) != n {
		t.Errorf("%d distinct message ids, want %d", len(ids), n)
	}

	short, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if err := srv.WaitCalls(short, n+1); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitCalls for a call that never comes = %v, want DeadlineExceeded", err)
	}
}

func BenchmarkSend(b *testing.B) {
	srv := graphtest.Start(b, graphtest.Options{Tokens: map[string]string{page: token}, MaxCalls: 1000})
	client := srv.Client(b)
	req := text("6789")
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := client.Send(context.Background(), page, token, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
