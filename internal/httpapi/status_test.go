package httpapi

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/pagesend/pagesend/graphapi"
	"github.com/pagesend/pagesend/graphapi/graphtest"
	"github.com/pagesend/pagesend/internal/job"
	"github.com/pagesend/pagesend/worker"
)

type tokens map[string]graphapi.Secret

func (t tokens) Token(page string) (graphapi.Secret, bool) {
	s, ok := t[page]
	return s, ok
}

// startWorker runs the real worker against a fake Graph API until the
// test ends.
func (e *testEnv) startWorker(fake *graphtest.Server, pages ...string) {
	e.t.Helper()
	client, err := graphapi.NewClient(graphapi.ClientOptions{BaseURL: fake.URL(), Timeout: 30 * time.Second})
	if err != nil {
		e.t.Fatal(err)
	}
	toks := tokens{}
	for _, p := range pages {
		toks[p] = graphapi.Secret("EAA-token-" + p)
	}
	w, err := worker.New(worker.Options{
		Redis:           e.opt,
		Graph:           client,
		Tokens:          toks,
		Logger:          slog.New(slog.DiscardHandler),
		Concurrency:     4,
		PollInterval:    20 * time.Millisecond,
		ForwardInterval: 100 * time.Millisecond,
		ShutdownTimeout: time.Second,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(w.Shutdown)
}

// enqueue posts one job and returns its id.
func (e *testEnv) enqueue(body string) string {
	e.t.Helper()
	r := e.post("/v1/messages", writeSecret, body)
	if r.Status != http.StatusAccepted {
		e.t.Fatalf("enqueue: %d %s", r.Status, r.Body)
	}
	return r.str("messages.0.id")
}

// status polls GET /v1/messages/{id} until its state is want.
func (e *testEnv) status(id, want string) *reply {
	e.t.Helper()
	var r *reply
	eventually(e.t, 20*time.Second, id+" in state "+want, func() bool {
		r = e.get("/v1/messages/"+id, readSecret)
		return r.Status == http.StatusOK && r.str("state") == want
	})
	return r
}

// TestMessageStates follows messages through every state with the real
// worker and a fake Graph API, and checks the answers never carry the
// text or the recipient.
func TestMessageStates(t *testing.T) {
	e := newEnv(t)
	fake := graphtest.Start(t, graphtest.Options{})
	const page, secretText = "1234567890", "secret words only the recipient reads"
	job := func(recipient string, extra ...string) string { return textJob(page, recipient, secretText, extra...) }

	sendAt := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	scheduled := e.enqueue(job("4242424201", "send_at", sendAt.Format(time.RFC3339), "idempotency_key", "later-1"))
	sent := e.enqueue(job("4242424202", "priority", "low"))
	dropped := e.enqueue(job("4242424203"))
	dead := e.enqueue(job("4242424204"))
	retried := e.enqueue(job("4242424205"))
	hung := e.enqueue(job("4242424206"))
	phone := e.enqueue(`{"page_id":"` + page + `","request":{"recipient":{"phone_number":"+1(212)555-2368"},"messaging_type":"UPDATE","message":{"text":"` + secretText + `"}}}`)

	r := e.status(sent, "pending")
	if r.str("page_id") != page || r.str("recipient") != "id" || r.str("queue") != "low" || r.str("process_at") == "" || r.str("enqueued_at") == "" {
		t.Errorf("pending: %s", r.Body)
	}
	if r := e.status(phone, "pending"); r.str("recipient") != "phone_number" {
		t.Errorf("phone recipient: %s", r.Body)
	}
	r = e.status(scheduled, "scheduled")
	if r.str("process_at") != sendAt.Format(time.RFC3339) || r.str("id") != "later-1" {
		t.Errorf("scheduled: %s", r.Body)
	}

	fake.ScriptRecipient("4242424203", graphtest.Fail(551, 0))
	fake.ScriptRecipient("4242424204", graphtest.Fail(100, 0))
	fake.ScriptRecipient("4242424205", graphtest.Raw(503, "text/plain", "unavailable\n").WithHeader("Retry-After", "3600"))
	fake.ScriptRecipient("4242424206", graphtest.Hang())
	e.startWorker(fake, page)

	r = e.status(sent, "completed")
	if r.str("outcome") != "sent" || !strings.HasPrefix(r.str("message_id"), "m_") || r.str("finished_at") == "" {
		t.Errorf("sent: %s", r.Body)
	}
	r = e.status(dropped, "completed")
	if r.str("outcome") != "dropped" || fmt.Sprint(dig(r.JSON, "code")) != "551" || r.str("reason") == "" || r.str("fbtrace_id") == "" {
		t.Errorf("dropped: %s", r.Body)
	}
	r = e.status(dead, "archived")
	if r.str("outcome") != "dead_lettered" || fmt.Sprint(dig(r.JSON, "code")) != "100" || r.str("reason") == "" || r.str("finished_at") == "" {
		t.Errorf("dead-lettered: %s", r.Body)
	}
	r = e.status(retried, "retry")
	next, err := time.Parse(time.RFC3339, r.str("next_attempt_at"))
	if err != nil || next.Before(time.Now().Add(50*time.Minute)) || r.str("last_error") == "" || r.str("last_failed_at") == "" ||
		fmt.Sprint(dig(r.JSON, "failed_attempts")) != "1" {
		t.Errorf("retry: %s", r.Body)
	}
	r = e.status(hung, "active")
	if r.str("outcome") != "" {
		t.Errorf("active: %s", r.Body)
	}

	for _, id := range []string{scheduled, sent, dropped, dead, retried, hung, phone} {
		for _, q := range []string{"", "?queue=default", "?queue=low"} {
			r := e.get("/v1/messages/"+id+q, writeSecret)
			if r.Status == http.StatusOK && (strings.Contains(string(r.Body), "secret words") || strings.Contains(string(r.Body), "42424242") || strings.Contains(string(r.Body), "555-2368")) {
				t.Errorf("%s: the answer shows the text or the recipient: %s", id, r.Body)
			}
		}
	}
	// ?queue= narrows the search.
	if r := e.get("/v1/messages/"+sent+"?queue=high", readSecret); r.Status != http.StatusNotFound {
		t.Errorf("?queue=high for a low message: %d", r.Status)
	}
	if r := e.get("/v1/messages/"+sent+"?queue=urgent", readSecret); r.Status != http.StatusBadRequest || r.str("problems.0.path") != "queue" {
		t.Errorf("?queue=urgent: %d %s", r.Status, r.Body)
	}
}

func TestMessageUnknown(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"no-such-id", "a%20b", strings.Repeat("k", 201), "%E2%80%8B"} {
		if r := e.get("/v1/messages/"+id, readSecret); r.Status != http.StatusNotFound || r.str("error") != "not_found" {
			t.Errorf("%q: %d %s", id, r.Status, r.Body)
		}
	}
	// Another application's task in the same Redis is not a message.
	c := asynq.NewClient(e.opt)
	defer c.Close()
	if _, err := c.Enqueue(asynq.NewTask("other:thing", nil), asynq.TaskID("theirs"), asynq.Queue(job.QueueDefault)); err != nil {
		t.Fatal(err)
	}
	if r := e.get("/v1/messages/theirs", readSecret); r.Status != http.StatusNotFound {
		t.Errorf("another app's task: %d %s", r.Status, r.Body)
	}
}
