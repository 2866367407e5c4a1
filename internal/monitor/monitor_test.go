package monitor

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/pagesend/pagesend/enqueue"
	"github.com/pagesend/pagesend/graphapi"
	"github.com/pagesend/pagesend/internal/job"
	"github.com/pagesend/pagesend/internal/redistest"
)

const secretText = "Your secret order 42 shipped"

func TestFormatPayload(t *testing.T) {
	j := enqueue.Job{PageID: "1001", IdempotencyKey: "k1", Request: &graphapi.Request{
		Recipient: &graphapi.Recipient{ID: "6789"}, MessagingType: "UPDATE",
		Message: &graphapi.Message{Text: secretText, QuickReplies: []graphapi.QuickReply{{ContentType: "user_email"}}},
	}}
	data, err := job.NewPayload(&j, j.SendAt).Encode()
	if err != nil {
		t.Fatal(err)
	}
	hidden := FormatPayload(data, false)
	if strings.Contains(hidden, "secret") {
		t.Errorf("text shown while hidden: %s", hidden)
	}
	for _, want := range []string{`"page_id":"1001"`, `"recipient":"id:6789"`, `"kind":"text + 1 quick replies"`, `[hidden: 28 characters`, `"idempotency_key":"k1"`} {
		if !strings.Contains(hidden, want) {
			t.Errorf("%s lacks %s", hidden, want)
		}
	}
	if shown := FormatPayload(data, true); !strings.Contains(shown, secretText) {
		t.Errorf("text not shown when asked: %s", shown)
	}
	if bad := FormatPayload([]byte("{garbage"), false); !strings.HasPrefix(bad, "undecodable job (8 bytes)") {
		t.Errorf("undecodable = %q", bad)
	}
}

// ui serves a UI over a private Redis holding one pending job.
func ui(t *testing.T, opts Options) (*httptest.Server, string) {
	t.Helper()
	rs := redistest.Start(t, redistest.Options{})
	opts.Redis = asynq.RedisClientOpt{Addr: rs.Addr()}
	c := enqueue.NewClient(opts.Redis)
	defer c.Close()
	info, err := c.Enqueue(context.Background(), enqueue.Job{PageID: "1001", Request: &graphapi.Request{
		Recipient: &graphapi.Recipient{ID: "6789"}, MessagingType: "UPDATE", Message: &graphapi.Message{Text: secretText},
	}})
	if err != nil {
		t.Fatal(err)
	}
	h := New(opts)
	mux := http.NewServeMux()
	mux.Handle(Path, h)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { srv.Close(); h.Close() })
	return srv, info.ID
}

func do(t *testing.T, method, url string, auth []string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if auth != nil {
		req.SetBasicAuth(auth[0], auth[1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestUIShowsJobsWithoutText(t *testing.T) {
	srv, id := ui(t, Options{})
	code, body := do(t, "GET", srv.URL+"/monitor/", nil)
	if code != 200 || !strings.Contains(body, "<div id=\"root\"") && !strings.Contains(body, "root") {
		t.Fatalf("GET /monitor/: %d %.200s", code, body)
	}
	code, body = do(t, "GET", srv.URL+"/monitor/api/queues/default/pending_tasks", nil)
	if code != 200 {
		t.Fatalf("pending tasks: %d %s", code, body)
	}
	var resp struct {
		Tasks []struct {
			ID      string `json:"id"`
			Payload string `json:"payload"`
		} `json:"tasks"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil || len(resp.Tasks) != 1 || resp.Tasks[0].ID != id {
		t.Fatalf("tasks = %s (%v)", body, err)
	}
	if p := resp.Tasks[0].Payload; strings.Contains(p, "secret") || !strings.Contains(p, "id:6789") {
		t.Errorf("payload shown as %s", p)
	}
	// Read-only by default: asynqmon refuses changes.
	if code, _ := do(t, "DELETE", srv.URL+"/monitor/api/queues/default/pending_tasks/"+id, nil); code != http.StatusMethodNotAllowed {
		t.Errorf("DELETE in read-only mode: %d, want 405", code)
	}
}

func TestUIBasicAuthAndWritable(t *testing.T) {
	srv, id := ui(t, Options{User: "ops", Password: "hunter2", Writable: true})
	for _, auth := range [][]string{nil, {"ops", "wrong"}, {"admin", "hunter2"}} {
		if code, _ := do(t, "GET", srv.URL+"/monitor/api/queues", auth); code != http.StatusUnauthorized {
			t.Errorf("auth %v: %d, want 401", auth, code)
		}
	}
	good := []string{"ops", "hunter2"}
	if code, body := do(t, "GET", srv.URL+"/monitor/api/queues", good); code != 200 || !strings.Contains(body, "default") {
		t.Errorf("with auth: %d %s", code, body)
	}
	if code, body := do(t, "DELETE", srv.URL+"/monitor/api/queues/default/pending_tasks/"+id, good); code != http.StatusNoContent && code != http.StatusOK {
		t.Errorf("DELETE when writable: %d %s", code, body)
	}
}
