package httpapi

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/pagesend/pagesend/internal/job"
	"github.com/pagesend/pagesend/internal/redistest"
	"github.com/pagesend/pagesend/shard"
)

// queued counts the tasks in every queue.
func (e *testEnv) queued() int {
	e.t.Helper()
	qs, err := e.in.Queues()
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, q := range qs {
		info, err := e.in.GetQueueInfo(q)
		if err != nil {
			e.t.Fatal(err)
		}
		n += info.Size
	}
	return n
}

func TestPostOneJob(t *testing.T) {
	e := newEnv(t)
	before := time.Now().Add(-time.Second)
	r := e.post("/v1/messages", writeSecret, textJob("1234567890", "6789", "Your order shipped"))
	if r.Status != http.StatusAccepted {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	id := r.str("messages.0.id")
	if id == "" || r.str("messages.0.queue") != job.QueueDefault || dig(r.JSON, "messages.0.duplicate") != false {
		t.Errorf("answer %s", r.Body)
	}
	if at, err := time.Parse(time.RFC3339Nano, r.str("messages.0.process_at")); err != nil || at.Before(before) {
		t.Errorf("process_at %q", r.str("messages.0.process_at"))
	}
	if loc := r.Header.Get("Location"); loc != "/v1/messages/"+id {
		t.Errorf("Location %q", loc)
	}
	ti, err := e.in.GetTaskInfo(job.QueueDefault, id)
	if err != nil {
		t.Fatal(err)
	}
	p, err := job.DecodePayload(ti.Payload)
	if err != nil || p.PageID != "1234567890" || p.Request.Message.Text != "Your order shipped" {
		t.Errorf("stored payload %+v, %v", p, err)
	}
}

func TestPostIdempotencyKey(t *testing.T) {
	e := newEnv(t)
	body := textJob("1234567890", "6789", "once", "idempotency_key", "order-42-shipped", "priority", "high")
	first := e.post("/v1/messages", writeSecret, body)
	if first.Status != http.StatusAccepted || first.str("messages.0.id") != "order-42-shipped" || first.str("messages.0.queue") != "high" {
		t.Fatalf("first: %d %s", first.Status, first.Body)
	}
	again := e.post("/v1/messages", writeSecret, body)
	if again.Status != http.StatusOK || dig(again.JSON, "messages.0.duplicate") != true || again.str("messages.0.state") != "pending" {
		t.Fatalf("again: %d %s; want 200 with a pending duplicate", again.Status, again.Body)
	}
	if n := e.queued(); n != 1 {
		t.Errorf("%d tasks stored, want 1", n)
	}
	// A batch with one new job and one duplicate is 202, the duplicate
	// marked.
	mixed := `{"jobs":[` + body + `,` + textJob("1234567890", "6789", "new", "idempotency_key", "order-43") + `]}`
	r := e.post("/v1/messages", writeSecret, mixed)
	if r.Status != http.StatusAccepted || dig(r.JSON, "messages.0.duplicate") != true || dig(r.JSON, "messages.1.duplicate") != false {
		t.Fatalf("mixed: %d %s", r.Status, r.Body)
	}
	// Every job a duplicate: 200, nothing stored.
	r = e.post("/v1/messages", writeSecret, mixed)
	if r.Status != http.StatusOK || r.Header.Get("Location") != "" {
		t.Fatalf("all duplicates: %d %s", r.Status, r.Body)
	}
	if n := e.queued(); n != 2 {
		t.Errorf("%d tasks stored, want 2", n)
	}
}

// TestKeyWithSlash: an idempotency key may hold "/"; its Location is
// escaped and leads back to it.
func TestKeyWithSlash(t *testing.T) {
	e := newEnv(t)
	r := e.post("/v1/messages", writeSecret, textJob("1", "2", "x", "idempotency_key", "orders/42?shipped"))
	if r.Status != http.StatusAccepted || r.Header.Get("Location") != "/v1/messages/orders%2F42%3Fshipped" {
		t.Fatalf("%d %s Location %q", r.Status, r.Body, r.Header.Get("Location"))
	}
	if r := e.get(r.Header.Get("Location"), readSecret); r.Status != http.StatusOK || r.str("id") != "orders/42?shipped" {
		t.Fatalf("GET Location: %d %s", r.Status, r.Body)
	}
}

func TestPostBatch(t *testing.T) {
	e := newEnv(t)
	sendAt := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	body := `{"jobs":[` +
		textJob("1", "11", "a", "priority", "high") + "," +
		textJob("1", "12", "b") + "," +
		textJob("1", "13", "c", "priority", "low", "send_at", sendAt.Format(time.RFC3339)) + `]}`
	r := e.post("/v1/messages", writeSecret, body)
	if r.Status != http.StatusAccepted {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	for i, q := range []string{"high", "default", "low"} {
		if got := r.str(fmt.Sprintf("messages.%d.queue", i)); got != q {
			t.Errorf("job %d went to %q, want %q", i, got, q)
		}
	}
	if got := r.str("messages.2.process_at"); got != sendAt.Format(time.RFC3339) {
		t.Errorf("scheduled process_at %q, want %s", got, sendAt.Format(time.RFC3339))
	}
	if r.Header.Get("Location") != "" {
		t.Error("Location on a batch")
	}
	if n := e.queued(); n != 3 {
		t.Errorf("%d stored, want 3", n)
	}
}

// TestPostInvalid: every problem of every job, with its job and path, and
// nothing stored.
func TestPostInvalid(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxJobs = 3 })
	long := strings.Repeat("x", 2001)
	badJob := `{"page_id":"1","priority":"urgent","request":{"recipient":{"id":"2"},"messaging_type":"UPDATE","message":{"text":"` + long + `"}}}`
	unknown := `{"page_id":"1","request":{"recipient":{"id":"2"},"messaging_type":"UPDATE","message":{"Text":"hi"}}}`
	type problem struct {
		job  int // -1: none
		path string
		msg  string
	}
	tests := []struct {
		name string
		body string
		want []problem
	}{
		{"one job", badJob, []problem{{0, "priority", `"urgent" is not one of`}, {0, "request.message.text", "2001 characters, at most 2000"}}},
		{"batch", `{"jobs":[` + textJob("1", "2", "fine") + `,` + badJob + `,` + unknown + `]}`, []problem{
			{1, "priority", "is not one of"}, {1, "request.message.text", "at most 2000"},
			{2, "request.message.Text", `unknown field (did you mean "text"?)`}}},
		{"not JSON", `{"page_id":`, []problem{{0, "", "invalid JSON"}}},
		{"empty", ``, []problem{{-1, "", "empty body"}}},
		{"array", `[` + textJob("1", "2", "x") + `]`, []problem{{-1, "", `want a job object, or {"jobs": [...]}`}}},
		{"no jobs", `{"jobs":[]}`, []problem{{-1, "jobs", "at least one job"}}},
		{"too many jobs", `{"jobs":[` + strings.Repeat(textJob("1", "2", "x")+",", 3) + textJob("1", "2", "x") + `]}`, []problem{{-1, "jobs", "4 jobs, at most 3"}}},
		{"batch with other keys", `{"jobs":[` + textJob("1", "2", "x") + `],"page_id":"1"}`, []problem{{-1, "page_id", "unknown field"}}},
		{"a job is not an object", `{"jobs":[42]}`, []problem{{0, "", ""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.post("/v1/messages", writeSecret, tt.body)
			if r.Status != http.StatusBadRequest || r.str("error") != "invalid" {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
			probs, _ := r.JSON["problems"].([]any)
			for _, w := range tt.want {
				found := false
				for _, p := range probs {
					pm := p.(map[string]any)
					j, hasJob := pm["job"]
					jobOK := (w.job < 0 && !hasJob) || (w.job >= 0 && fmt.Sprint(j) == fmt.Sprint(w.job))
					if jobOK && pm["path"] == w.path && strings.Contains(pm["message"].(string), w.msg) {
						found = true
					}
				}
				if !found {
					t.Errorf("no problem %+v in %s", w, r.Body)
				}
			}
			if len(probs) < len(tt.want) {
				t.Errorf("%d problems, want %d", len(probs), len(tt.want))
			}
		})
	}
	if n := e.queued(); n != 0 {
		t.Errorf("invalid requests stored %d tasks", n)
	}
}

func TestPostBodyLimits(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxBody = 4096 })
	big := `{"jobs":[` + strings.Repeat(textJob("1", "2", strings.Repeat("y", 500))+",", 8) + textJob("1", "2", "z") + `]}`
	if len(big) <= 4096 {
		t.Fatalf("test body is only %d bytes", len(big))
	}
	h := func(ct string) http.Header {
		return http.Header{"Content-Type": {ct}, "Authorization": {"Bearer " + writeSecret}}
	}
	r := e.do("POST", "/v1/messages", []byte(big), h("application/json"))
	if r.Status != http.StatusRequestEntityTooLarge || r.str("error") != "too_large" {
		t.Errorf("declared length: %d %s", r.Status, r.Body)
	}
	// Without a Content-Length (chunked), MaxBytesReader stops it.
	req, _ := http.NewRequest("POST", e.url+"/v1/messages", io.MultiReader(strings.NewReader(big)))
	req.Header = h("application/json")
	if r := e.send(req, []byte(big)); r.Status != http.StatusRequestEntityTooLarge || r.str("error") != "too_large" {
		t.Errorf("chunked: %d %s", r.Status, r.Body)
	}
	for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin1", "application/jsonx"} {
		r := e.do("POST", "/v1/messages", []byte(textJob("1", "2", "x")), h(ct))
		if r.Status != http.StatusUnsupportedMediaType || r.str("error") != "unsupported_media_type" {
			t.Errorf("Content-Type %q: %d %s", ct, r.Status, r.Body)
		}
	}
	if n := e.queued(); n != 0 {
		t.Errorf("refused requests stored %d tasks", n)
	}
	r = e.do("POST", "/v1/messages", []byte(textJob("1", "2", "x")), h("application/json; charset=UTF-8"))
	if r.Status != http.StatusAccepted {
		t.Errorf("charset=UTF-8: %d %s", r.Status, r.Body)
	}
}

// TestPostKeyOfDeadLetteredJob: 409 names the job; the jobs before it are
// stored and listed, it and those after are not.
func TestPostKeyOfDeadLetteredJob(t *testing.T) {
	e := newEnv(t)
	dead := textJob("1", "2", "fixed", "idempotency_key", "order-7")
	if r := e.post("/v1/messages", writeSecret, dead); r.Status != http.StatusAccepted {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	if err := e.in.ArchiveTask(job.QueueDefault, "order-7"); err != nil {
		t.Fatal(err)
	}
	batch := `{"jobs":[` + textJob("1", "2", "a", "idempotency_key", "order-8") + "," + dead + "," + textJob("1", "2", "c", "idempotency_key", "order-9") + `]}`
	r := e.post("/v1/messages", writeSecret, batch)
	if r.Status != http.StatusConflict || r.str("error") != "dead_lettered" || fmt.Sprint(dig(r.JSON, "job")) != "1" ||
		r.str("messages.0.id") != "order-8" || dig(r.JSON, "messages.1") != nil || !strings.Contains(r.str("message"), "order-7") {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	if _, err := e.in.GetTaskInfo(job.QueueDefault, "order-9"); err == nil {
		t.Error("the job after the refused one was stored")
	}
	// A single job: 409 without messages.
	r = e.post("/v1/messages", writeSecret, dead)
	if r.Status != http.StatusConflict || r.JSON["messages"] != nil {
		t.Fatalf("single: %d %s", r.Status, r.Body)
	}
	// Once the archived task is deleted the key is free again.
	if err := e.in.DeleteTask(job.QueueDefault, "order-7"); err != nil {
		t.Fatal(err)
	}
	if r := e.post("/v1/messages", writeSecret, dead); r.Status != http.StatusAccepted {
		t.Fatalf("after delete: %d %s", r.Status, r.Body)
	}
}

func TestAuth(t *testing.T) {
	e := newEnv(t)
	job1 := textJob("1", "2", "x")
	tests := []struct {
		name, method, path, auth string
		want                     int
		challenge                string
	}{
		{"no key", "POST", "/v1/messages", "", 401, `Bearer realm="pagesend"`},
		{"unknown key", "POST", "/v1/messages", "Bearer " + otherSecret, 401, `error="invalid_token"`},
		{"key as basic auth", "POST", "/v1/messages", "Basic " + writeSecret, 401, `Bearer realm="pagesend"`},
		{"empty bearer", "GET", "/v1/messages/x", "Bearer ", 401, `Bearer realm="pagesend"`},
		{"prefix of a key", "GET", "/v1/messages/x", "Bearer " + writeSecret[:20], 401, "invalid_token"},
		{"read-only key enqueues", "POST", "/v1/messages", "Bearer " + readSecret, 403, "insufficient_scope"},
		{"read-only key resumes", "POST", "/v1/pages/1/resume", "Bearer " + readSecret, 403, "insufficient_scope"},
		{"no key resumes", "POST", "/v1/pages/1/resume", "", 401, `Bearer realm="pagesend"`},
		{"read-only key reads", "GET", "/v1/messages/x", "Bearer " + readSecret, 404, ""},
		{"write key reads", "GET", "/v1/messages/x", "bearer " + writeSecret, 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{"Content-Type": {"application/json"}}
			if tt.auth != "" {
				h.Set("Authorization", tt.auth)
			}
			var body []byte
			if tt.method == "POST" && strings.HasSuffix(tt.path, "messages") {
				body = []byte(job1)
			}
			r := e.do(tt.method, tt.path, body, h)
			if r.Status != tt.want {
				t.Fatalf("%d %s, want %d", r.Status, r.Body, tt.want)
			}
			if got := r.Header.Get("WWW-Authenticate"); !strings.Contains(got, tt.challenge) || (tt.challenge == "") != (got == "") {
				t.Errorf("WWW-Authenticate %q, want %q", got, tt.challenge)
			}
		})
	}
	if n := e.queued(); n != 0 {
		t.Errorf("refused requests stored %d tasks", n)
	}
	if r := e.post("/v1/messages", writeSecret, job1); r.Status != http.StatusAccepted {
		t.Fatalf("write key: %d", r.Status)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, `"key":"producer"`) || !strings.Contains(logs, `"key":"fp:`) {
		t.Errorf("the log does not name the keys used:\n%s", logs)
	}
}

func TestRedisDown(t *testing.T) {
	e := newEnv(t)
	if r := e.get("/readyz", ""); r.Status != http.StatusOK {
		t.Fatalf("readyz with Redis up: %d", r.Status)
	}
	if err := e.redis.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*reply{
		e.post("/v1/messages", writeSecret, textJob("1", "2", "x")),
		e.get("/v1/messages/some-id", readSecret),
		e.post("/v1/pages/1/resume", writeSecret, ""),
	} {
		if r.Status != http.StatusServiceUnavailable || r.Header.Get("Retry-After") != "5" || r.str("error") != "unavailable" {
			t.Errorf("%d %s (Retry-After %q)", r.Status, r.Body, r.Header.Get("Retry-After"))
		}
	}
	if r := e.get("/readyz", ""); r.Status != http.StatusServiceUnavailable || !strings.Contains(string(r.Body), "redis") {
		t.Errorf("readyz: %d %s", r.Status, r.Body)
	}
	if r := e.get("/healthz", ""); r.Status != http.StatusOK {
		t.Errorf("healthz: %d", r.Status)
	}
}

func TestUnmatchedRoutes(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		method, path string
		want         int
		allow        string
	}{
		{"GET", "/", 404, ""},
		{"GET", "/v1/nothing", 404, ""},
		{"GET", "/v1/messages", 405, "POST"},
		{"DELETE", "/v1/messages/abc", 405, "GET"},
		{"GET", "/v1/pages/1/resume", 405, "POST"},
		{"POST", "/healthz", 405, "GET"},
	}
	for _, tt := range tests {
		r := e.do(tt.method, tt.path, nil, nil)
		if r.Status != tt.want || r.Header.Get("Allow") != tt.allow || r.JSON == nil {
			t.Errorf("%s %s: %d Allow %q %s", tt.method, tt.path, r.Status, r.Header.Get("Allow"), r.Body)
		}
	}
}

// taskState reads a task's state straight from asynq.
func (e *testEnv) taskState(queue, id string) asynq.TaskState {
	e.t.Helper()
	ti, err := e.in.GetTaskInfo(queue, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return ti.State
}

func TestPostSequenceAndUnordered(t *testing.T) {
	e := newEnv(t)
	seq := `{"page_id": "1234567890", "ordered": false, "requests": [
		{"recipient": {"id": "6789"}, "messaging_type": "RESPONSE", "sender_action": "typing_on"},
		{"recipient": {"id": "6789"}, "messaging_type": "RESPONSE", "message": {"text": "Here it is"}}]}`
	r := e.post("/v1/messages", writeSecret, seq)
	if r.Status != http.StatusAccepted {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	ti, err := e.in.GetTaskInfo(job.QueueDefault, r.str("messages.0.id"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := job.DecodePayload(ti.Payload)
	if err != nil || len(p.Requests) != 2 || p.Conv() != "" {
		t.Errorf("stored payload %+v, %v; want two requests, unordered", p, err)
	}

	for _, tc := range []struct{ body, path string }{
		{`{"page_id": "1", "requests": []}`, "requests"},
		{`{"page_id": "1", "request": {"recipient": {"id": "2"}, "messaging_type": "UPDATE", "message": {"text": "a"}},
		   "requests": [{"recipient": {"id": "2"}, "messaging_type": "UPDATE", "message": {"text": "b"}}]}`, "requests"},
		{`{"page_id": "1", "requests": [{"recipient": {"id": "2"}, "messaging_type": "UPDATE", "message": {"text": "a"}},
		   {"recipient": {"id": "3"}, "messaging_type": "UPDATE", "message": {"text": "b"}}]}`, "requests[1].recipient"},
	} {
		r := e.post("/v1/messages", writeSecret, tc.body)
		if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), `"path":"`+tc.path+`"`) {
			t.Errorf("%s: status %d %s, want 400 naming %s", tc.body, r.Status, r.Body, tc.path)
		}
	}
}

func TestShardedAPI(t *testing.T) {
	other := redistest.Start(t, redistest.Options{})
	var shards []shard.Shard
	e := newEnv(t, func(o *Options) {
		shards = []shard.Shard{{Name: "a", Redis: o.Redis}, {Name: "b", Redis: asynq.RedisClientOpt{Addr: other.Addr()}}}
		o.Shards = shards
	})
	ins := []*asynq.Inspector{e.in, asynq.NewInspector(shards[1].Redis)}
	t.Cleanup(func() { ins[1].Close() })
	used := map[int]bool{}
	for i := range 12 {
		page := fmt.Sprint(3000 + i)
		r := e.post("/v1/messages", writeSecret, textJob(page, "6789", "hi"))
		if r.Status != http.StatusAccepted {
			t.Fatalf("status %d: %s", r.Status, r.Body)
		}
		id := r.str("messages.0.id")
		want := shard.Pick([]string{"a", "b"}, page)
		used[want] = true
		if _, err := ins[want].GetTaskInfo(job.QueueDefault, id); err != nil {
			t.Errorf("page %s: not on shard %s: %v", page, shards[want].Name, err)
		}
		if g := e.get("/v1/messages/"+id, readSecret); g.Status != http.StatusOK || g.str("page_id") != page {
			t.Errorf("GET on shard %s: %d %s", shards[want].Name, g.Status, g.Body)
		}
	}
	if len(used) != 2 {
		t.Errorf("shards used: %v, want both", used)
	}
}

func TestStatusOfSequence(t *testing.T) {
	e := newEnv(t)
	r := e.post("/v1/messages", writeSecret, `{"page_id": "1234567890", "requests": [
		{"recipient": {"user_ref": "u1"}, "sender_action": "typing_on"},
		{"recipient": {"user_ref": "u1"}, "messaging_type": "RESPONSE", "message": {"text": "hi"}}]}`)
	if r.Status != http.StatusAccepted {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	g := e.get("/v1/messages/"+r.str("messages.0.id"), readSecret)
	if g.Status != http.StatusOK || g.str("recipient") != "user_ref" || g.str("state") != "pending" {
		t.Errorf("GET %d %s", g.Status, g.Body)
	}
}
