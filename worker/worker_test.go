package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pagesend/pagesend/enqueue"
	"github.com/pagesend/pagesend/graphapi"
	"github.com/pagesend/pagesend/graphapi/graphtest"
	"github.com/pagesend/pagesend/internal/job"
	"github.com/pagesend/pagesend/internal/pages"
	"github.com/pagesend/pagesend/ratelimit"
	"github.com/pagesend/pagesend/worker"
)

const page = "1001"

var tokens = map[string]string{page: "EAApage1001token", "1002": "EAApage1002token"}

func TestSent(t *testing.T) {
	h := newHarness(t, harnessOptions{fakeTokens: tokens})
	info := h.enqueue(textJob(page, "6789", "Your order shipped"))
	ti := h.final(info)
	if ti.State != asynq.TaskStateCompleted {
		t.Fatalf("state = %v (%s)", ti.State, ti.LastErr)
	}
	calls := h.fake.Calls()
	if len(calls) != 1 {
		t.Fatalf("fake got %d calls, want 1", len(calls))
	}
	c := calls[0]
	if c.PageID != page || c.Token != tokens[page] || c.Request == nil || c.Request.Message.Text != "Your order shipped" {
		t.Errorf("call = page %s token ok=%v request %+v", c.PageID, c.Token == tokens[page], c.Request)
	}
	r := result(t, ti)
	if r.Outcome != job.OutcomeSent || r.MessageID != c.MessageID || r.RecipientID != "6789" || r.Attempts != 1 {
		t.Errorf("result = %+v, want sent with %s", r, c.MessageID)
	}
	if got := h.messages(page, "sent"); got != 1 {
		t.Errorf("pagesend_messages_total{outcome=sent} = %v, want 1", got)
	}
}

func TestThrottledThenSent(t *testing.T) {
	h := newHarness(t, harnessOptions{fakeTokens: tokens})
	h.fake.ScriptRecipient("6789", graphtest.Fail(613, 0))
	ti := h.final(h.enqueue(textJob(page, "6789", "after the throttle")))
	if ti.State != asynq.TaskStateCompleted || result(t, ti).Outcome != job.OutcomeSent {
		t.Fatalf("state = %v result %s", ti.State, ti.Result)
	}
	calls := recipientCalls(h.fake, "6789")
	if len(calls) != 2 {
		t.Fatalf("fake got %d calls, want 613 then success", len(calls))
	}
	if gap := calls[1].Time.Sub(calls[0].Time); gap < h.opts.ThrottlePause {
		t.Errorf("second call %v after the 613, want at least the %v pause", gap, h.opts.ThrottlePause)
	}
	if ti.Retried != 0 {
		t.Errorf("Retried = %d: a throttling wait used up an attempt", ti.Retried)
	}
	if got := metricValue(t, h.reg, "pagesend_graph_errors_total", map[string]string{"page_id": page, "code": "613"}); got != 1 {
		t.Errorf("graph_errors{code=613} = %v, want 1", got)
	}
}

func TestDroppedAfterOneCall(t *testing.T) {
	h := newHarness(t, harnessOptions{fakeTokens: tokens})
	h.fake.ScriptRecipient("551", graphtest.Fail(551, 0))
	h.fake.ScriptRecipient("10901", graphtest.Fail(10901, 0))
	for _, tc := range []struct {
		recipient string
		code      int
	}{{"551", 551}, {"10901", 10901}} {
		ti := h.final(h.enqueue(textJob(page, tc.recipient, "hello?")))
		if ti.State != asynq.TaskStateCompleted {
			t.Errorf("%s: state %v, want completed as dropped", tc.recipient, ti.State)
			continue
		}
		r := result(t, ti)
		if r.Outcome != job.OutcomeDropped || r.Code != tc.code || r.FBTraceID == "" || r.Reason == "" {
			t.Errorf("%s: result %+v", tc.recipient, r)
		}
		if n := len(recipientCalls(h.fake, tc.recipient)); n != 1 {
			t.Errorf("%s: %d calls, want exactly 1", tc.recipient, n)
		}
	}
	if got := h.messages(page, "dropped"); got != 2 {
		t.Errorf("dropped = %v, want 2", got)
	}
}

func TestInvalidParameterDeadLettered(t *testing.T) {
	h := newHarness(t, harnessOptions{fakeTokens: tokens})
	h.fake.ScriptRecipient("100", graphtest.Fail(100, 0))
	ti := h.final(h.enqueue(textJob(page, "100", "bad")))
	if ti.State != asynq.TaskStateArchived {
		t.Fatalf("state = %v, want archived", ti.State)
	}
	if !strings.Contains(ti.LastErr, "graph error 100") {
		t.Errorf("LastErr = %q", ti.LastErr)
	}
	if r := result(t, ti); r.Outcome != job.OutcomeDeadLettered || r.Code != 100 {
		t.Errorf("result = %+v", r)
	}
	if n := len(recipientCalls(h.fake, "100")); n != 1 {
		t.Errorf("%d calls, want 1", n)
	}
	// Re-runnable: an operator fixes the cause and runs it again.
	h.fake.ScriptRecipient("100") // no more scripted errors
	if err := h.in.RunTask(ti.Queue, ti.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "re-run to complete", func() bool {
		ti, err := h.in.GetTaskInfo(ti.Queue, ti.ID)
		return err == nil && ti.State == asynq.TaskStateCompleted
	})
}

func TestBrokenTokenPausesPageUntilReload(t *testing.T) {
	// The store holds a stale token for page 1001; the fake wants another.
	stale := map[string]graphapi.Secret{page: "EAAstale", "1002": graphapi.Secret(tokens["1002"])}
	h := newHarness(t, harnessOptions{fakeTokens: tokens, storeTokens: stale})
	var infos []string
	for i := range 5 {
		infos = append(infos, h.enqueue(textJob(page, "77"+string(rune('0'+i)), "waiting for a token")).ID)
	}
	other := h.enqueue(textJob("1002", "6789", "unaffected"))

	if ti := h.final(other); ti.State != asynq.TaskStateCompleted {
		t.Fatalf("the other Page's message: %v", ti.State)
	}
	pauses := h.w.Pauses()
	eventually(t, 10*time.Second, "page to be paused", func() bool {
		p, err := pauses.Get(context.Background(), page)
		return err == nil && p != nil && p.Reason == ratelimit.ReasonTokenInvalid
	})
	if v := metricValue(t, h.reg, "pagesend_page_token_invalid", map[string]string{"page_id": page}); v != 1 {
		t.Errorf("token_invalid gauge = %v, want 1", v)
	}
	// While paused, tasks keep being rescheduled but the fake sees no call.
	callsAtPause := len(h.fake.CallsFor(page))
	resched := func() float64 {
		return metricValue(t, h.reg, "pagesend_messages_rescheduled_total", map[string]string{"page_id": page})
	}
	r0 := resched()
	eventually(t, 10*time.Second, "paused tasks to be looked at again", func() bool { return resched() >= r0+5 })
	if n := len(h.fake.CallsFor(page)); n != callsAtPause {
		t.Fatalf("fake got %d calls for the paused Page, had %d at the pause", n, callsAtPause)
	}
	for _, id := range infos {
		ti, err := h.in.GetTaskInfo(job.QueueDefault, id)
		if err != nil || ti.State == asynq.TaskStateArchived || ti.State == asynq.TaskStateCompleted || ti.Retried != 0 {
			t.Fatalf("task %s while paused: %+v %v", id, ti, err)
		}
	}

	// The operator fixes the token; the reload lifts the pause.
	h.store.Replace(pages.NewConfig(pages.Limit{Rate: 1000, Burst: 1000}, pages.Limit{Rate: 1000, Burst: 1000}, nil,
		map[string]graphapi.Secret{page: graphapi.Secret(tokens[page]), "1002": graphapi.Secret(tokens["1002"])}))
	for _, id := range infos {
		ti := h.final(taskRef(id))
		if ti.State != asynq.TaskStateCompleted || result(t, ti).Outcome != job.OutcomeSent {
			t.Errorf("task %s after reload: %v %s", id, ti.State, ti.Result)
		}
	}
	if p, _ := pauses.Get(context.Background(), page); p != nil {
		t.Errorf("still paused: %+v", p)
	}
	eventually(t, 5*time.Second, "alert gauge to clear", func() bool {
		return metricValue(t, h.reg, "pagesend_page_token_invalid", map[string]string{"page_id": page}) == 0
	})
}

func TestMissingTokenIsAnAlertNotACrash(t *testing.T) {
	h := newHarness(t, harnessOptions{fakeTokens: tokens, storeTokens: map[string]graphapi.Secret{}})
	info := h.enqueue(textJob(page, "6789", "no token yet"))
	eventually(t, 10*time.Second, "token_missing pause", func() bool {
		p, _ := h.w.Pauses().Get(context.Background(), page)
		return p != nil && p.Reason == ratelimit.ReasonTokenMissing
	})
	if n := h.fake.CallCount(); n != 0 {
		t.Fatalf("fake got %d calls without a token", n)
	}
	h.store.Replace(pages.NewConfig(pages.Limit{Rate: 1000, Burst: 1000}, pages.Limit{Rate: 1000, Burst: 1000}, nil,
		map[string]graphapi.Secret{page: graphapi.Secret(tokens[page])}))
	if ti := h.final(info); ti.State != asynq.TaskStateCompleted {
		t.Fatalf("after the token arrived: %v", ti.State)
	}
}

func TestManualResume(t *testing.T) {
	h := newHarness(t, harnessOptions{fakeTokens: tokens})
	ctx := context.Background()
	if err := h.w.Pauses().Pause(ctx, ratelimit.Pause{PageID: page, Reason: ratelimit.ReasonManual, Since: time.Now()}); err != nil {
		t.Fatal(err)
	}
	info := h.enqueue(textJob(page, "6789", "held"))
	eventually(t, 10*time.Second, "the task to be rescheduled", func() bool {
		return metricValue(t, h.reg, "pagesend_messages_rescheduled_total", map[string]string{"page_id": page}) >= 2
	})
	if h.fake.CallCount() != 0 {
		t.Fatal("a paused Page was called")
	}
	// A token reload does not lift a manual pause.
	h.w.TokensChanged(ctx, []string{page})
	if p, _ := h.w.Pauses().Get(ctx, page); p == nil {
		t.Fatal("token reload lifted a manual pause")
	}
	if _, err := h.w.Pauses().Resume(ctx, page); err != nil {
		t.Fatal(err)
	}
	if ti := h.final(info); ti.State != asynq.TaskStateCompleted {
		t.Fatalf("after resume: %v", ti.State)
	}
}

func TestIdempotentEnqueueSendsOnce(t *testing.T) {
	h := newHarness(t, harnessOptions{fakeTokens: tokens})
	j := textJob(page, "6789", "only once")
	j.IdempotencyKey = "order-42-shipped"
	first := h.enqueue(j)
	second := h.enqueue(j)
	if !second.Duplicate {
		t.Fatal("second enqueue was not a duplicate")
	}
	h.final(first)
	// Kept after completion (retention), so the key still deduplicates.
	if third := h.enqueue(j); !third.Duplicate {
		t.Error("enqueue after completion stored the job again")
	}
	if n := h.fake.CallCount(); n != 1 {
		t.Errorf("fake got %d calls, want 1", n)
	}
}

func TestScheduledNotBeforeItsTime(t *testing.T) {
	h := newHarness(t, harnessOptions{fakeTokens: tokens})
	j := textJob(page, "6789", "at nine")
	j.SendAt = time.Now().Add(1500 * time.Millisecond)
	ti := h.final(h.enqueue(j))
	if ti.State != asynq.TaskStateCompleted {
		t.Fatalf("state %v", ti.State)
	}
	calls := h.fake.Calls()
	if len(calls) != 1 || calls[0].Time.Before(j.SendAt) {
		t.Fatalf("calls %v, want one at or after %v", calls, j.SendAt)
	}
}

func TestUndecodableDeadLetteredWorkerStaysHealthy(t *testing.T) {
	h := newHarness(t, harnessOptions{fakeTokens: tokens})
	c := asynq.NewClient(h.opt)
	defer c.Close()
	bad := []string{`not json`, `{"v":1,"page_id":"1001","request":{"recipient":{}}}`, `{"v":9}`}
	var ids []string
	for _, p := range bad {
		ti, err := c.Enqueue(asynq.NewTask(job.TaskType, []byte(p)), asynq.MaxRetry(5), asynq.Retention(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ti.ID)
	}
	for _, id := range ids {
		ti := h.final(taskRef(id))
		if ti.State != asynq.TaskStateArchived || !strings.Contains(ti.LastErr, "undecodable job") || ti.Retried != 0 {
			t.Errorf("task %s: state %v retried %d err %q", id, ti.State, ti.Retried, ti.LastErr)
		}
	}
	if ti := h.final(h.enqueue(textJob(page, "6789", "still working"))); ti.State != asynq.TaskStateCompleted {
		t.Fatalf("worker unhealthy after bad tasks: %v", ti.State)
	}
	if n := h.fake.CallCount(); n != 1 {
		t.Errorf("fake got %d calls, want only the good job's", n)
	}
}

// panicky panics for one Page.
type panicky struct {
	worker.Sender
	page string
}

func (p panicky) Send(ctx context.Context, pageID string, tok graphapi.Secret, req *graphapi.Request) (*graphapi.SendResponse, error) {
	if pageID == p.page {
		panic("boom")
	}
	return p.Sender.Send(ctx, pageID, tok, req)
}

func TestPanicDeadLettered(t *testing.T) {
	h := newHarness(t, harnessOptions{fakeTokens: tokens, worker: func(o *worker.Options) {
		o.Graph = panicky{Sender: o.Graph, page: "1002"}
	}})
	ti := h.final(h.enqueue(textJob("1002", "6789", "kaboom")))
	if ti.State != asynq.TaskStateArchived || !strings.Contains(ti.LastErr, "panic: boom") {
		t.Fatalf("state %v err %q", ti.State, ti.LastErr)
	}
	if ti := h.final(h.enqueue(textJob(page, "6789", "fine"))); ti.State != asynq.TaskStateCompleted {
		t.Fatalf("after a panic: %v", ti.State)
	}
}

func TestTransientRetriedThenRetriesExhausted(t *testing.T) {
	h := newHarness(t, harnessOptions{fakeTokens: tokens})
	h.fake.ScriptRecipient("500", graphtest.Raw(502, "text/html", "<html>bad gateway</html>"), graphtest.Fail(1200, 0))
	ti := h.final(h.enqueue(textJob(page, "500", "eventually")))
	if ti.State != asynq.TaskStateCompleted || ti.Retried != 2 {
		t.Fatalf("state %v retried %d, want completed after 2 retries", ti.State, ti.Retried)
	}
	if r := result(t, ti); r.Attempts != 3 {
		t.Errorf("attempts = %d, want 3", r.Attempts)
	}

	// Code 2 is retried at most 3 times in all.
	h.fake.ScriptRecipient("2", graphtest.Fail(2, 0), graphtest.Fail(2, 0), graphtest.Fail(2, 0), graphtest.Fail(2, 0))
	ti = h.final(h.enqueue(textJob(page, "2", "gives up")))
	if ti.State != asynq.TaskStateArchived || !strings.Contains(ti.LastErr, "gave up after 3 attempts") {
		t.Errorf("code 2: state %v err %q", ti.State, ti.LastErr)
	}
	if n := len(recipientCalls(h.fake, "2")); n != 3 {
		t.Errorf("code 2: %d calls, want 3", n)
	}
}

func TestRateLimitReschedulesInsteadOfWaiting(t *testing.T) {
	h := newHarness(t, harnessOptions{fakeTokens: tokens, limit: pages.Limit{Rate: 5, Burst: 1}, worker: func(o *worker.Options) {
		o.MaxWait = 50 * time.Millisecond
	}})
	var infos []string
	for i := range 8 {
		infos = append(infos, h.enqueue(textJob(page, "9"+string(rune('0'+i)), "paced")).ID)
	}
	for _, id := range infos {
		if ti := h.final(taskRef(id)); ti.State != asynq.TaskStateCompleted || ti.Retried != 0 {
			t.Fatalf("task %s: %v retried %d", id, ti.State, ti.Retried)
		}
	}
	if r := metricValue(t, h.reg, "pagesend_messages_rescheduled_total", map[string]string{"page_id": page, "reason": "ratelimit"}); r == 0 {
		t.Error("no task was rescheduled for the rate limit")
	}
	// The bucket held: no more than burst + rate·t calls in any window.
	calls := h.fake.CallsFor(page)
	for i := range calls {
		n := 0
		for j := i; j < len(calls) && calls[j].Time.Sub(calls[i].Time) < time.Second; j++ {
			n++
		}
		if n > 1+5 {
			t.Fatalf("%d calls within one second from call %d, limit 5/s burst 1", n, i)
		}
	}
}

func TestShutdownMidLoadLosesNothing(t *testing.T) {
	h := newHarness(t, harnessOptions{fakeTokens: tokens, fake: graphtest.Options{Latency: 30 * time.Millisecond}})
	const n = 200
	var infos []string
	for i := range n {
		infos = append(infos, h.enqueue(textJob(page, "5"+itoa(i), "load")).ID)
	}
	if err := h.fake.WaitCalls(ctxTimeout(t, 20*time.Second), 40); err != nil {
		t.Fatal(err)
	}
	h.w.Shutdown()
	stoppedAt := h.fake.CallCount()
	if stoppedAt >= n {
		t.Fatalf("all %d sent before the shutdown; the test needs a slower fake", stoppedAt)
	}
	h.w = h.startWorker()
	for _, id := range infos {
		if ti := h.final(taskRef(id)); ti.State != asynq.TaskStateCompleted {
			t.Fatalf("task %s: %v", id, ti.State)
		}
	}
	seen := map[string]int{}
	for _, c := range h.fake.Calls() {
		seen[c.Recipient]++
	}
	dups := 0
	for i := range n {
		switch k := seen["5"+itoa(i)]; {
		case k == 0:
			t.Errorf("recipient %d never called", i)
		case k > 1:
			dups += k - 1
		}
	}
	t.Logf("shutdown after %d of %d calls; %d duplicate calls after restart", stoppedAt, n, dups)
}

func taskRef(id string) enqueue.Info { return enqueue.Info{ID: id, Queue: job.QueueDefault} }

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestMetricsCountEveryOutcome drives a mix of outcomes through the worker
// and reads exact counts back from the registry.
func TestMetricsCountEveryOutcome(t *testing.T) {
	h := newHarness(t, harnessOptions{fakeTokens: tokens})
	h.fake.ScriptRecipient("551", graphtest.Fail(551, 0))
	h.fake.ScriptRecipient("100", graphtest.Fail(100, 0))
	h.fake.ScriptRecipient("502", graphtest.Raw(502, "text/html", "<html>bad gateway</html>"))
	var infos []enqueue.Info
	for _, r := range []string{"1", "2", "3", "551", "100", "502"} {
		infos = append(infos, h.enqueue(textJob(page, r, "count me")))
	}
	for _, info := range infos {
		h.final(info)
	}
	counts := map[string]map[string]string{
		"pagesend_messages_total":     {"sent": "4", "dropped": "1", "dead_lettered": "1", "retried": "1"},
		"pagesend_graph_errors_total": {"551": "1", "100": "1", "http_502": "1"},
	}
	label := map[string]string{"pagesend_messages_total": "outcome", "pagesend_graph_errors_total": "code"}
	for name, want := range counts {
		for value, n := range want {
			got := metricValue(t, h.reg, name, map[string]string{"page_id": page, label[name]: value})
			if fmt.Sprint(got) != n {
				t.Errorf("%s{%s=%q} = %v, want %s", name, label[name], value, got, n)
			}
		}
	}
	calls := float64(h.fake.CallCount())
	for _, name := range []string{"pagesend_graph_request_duration_seconds", "pagesend_ratelimit_wait_seconds"} {
		if got := histogramCount(t, h.reg, name, page); got != calls {
			t.Errorf("%s count = %v, want %v (one per Graph call)", name, got, calls)
		}
	}
}

func histogramCount(t *testing.T, g prometheus.Gatherer, name, pageID string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "page_id" && lp.GetValue() == pageID {
					return float64(m.GetHistogram().GetSampleCount())
				}
			}
		}
	}
	return 0
}

// TestRestartWithFixedTokenResumes: the pause records which token was
// rejected, so a worker started later with another token lifts it — no
// reload in a running process needed (Kubernetes restarts, env tokens).
func TestRestartWithFixedTokenResumes(t *testing.T) {
	stale := map[string]graphapi.Secret{page: "EAAstale"}
	h := newHarness(t, harnessOptions{fakeTokens: tokens, storeTokens: stale})
	info := h.enqueue(textJob(page, "6789", "after the restart"))
	eventually(t, 10*time.Second, "token pause", func() bool {
		p, _ := h.w.Pauses().Get(context.Background(), page)
		return p != nil && p.Reason == ratelimit.ReasonTokenInvalid && p.TokenFingerprint == graphapi.Fingerprint("EAAstale")
	})
	h.w.Shutdown()

	// A new process: its own store, holding the fixed token, and no
	// reload callback at all.
	lim := pages.Limit{Rate: 1000, Burst: 1000}
	h.opts.Tokens = pages.NewStore(pages.NewConfig(lim, lim, nil, map[string]graphapi.Secret{page: graphapi.Secret(tokens[page])}))
	h.w = h.startWorker()
	if ti := h.final(info); ti.State != asynq.TaskStateCompleted {
		t.Fatalf("after restart with a fixed token: %v", ti.State)
	}
	if p, _ := h.w.Pauses().Get(context.Background(), page); p != nil {
		t.Errorf("pause left behind: %+v", p)
	}
}

func TestHighUsagePausesPage(t *testing.T) {
	h := newHarness(t, harnessOptions{fakeTokens: tokens})
	h.fake.ScriptRecipient("4242", graphtest.OK().WithHeader(graphapi.HeaderAppUsage, `{"call_count":97,"total_time":10,"total_cputime":10}`))
	first := h.final(h.enqueue(textJob(page, "4242", "near the limit")))
	if first.State != asynq.TaskStateCompleted {
		t.Fatalf("first: %v", first.State)
	}
	p, err := h.w.Pauses().Get(context.Background(), page)
	if err != nil || p == nil || p.Reason != ratelimit.ReasonThrottled || !strings.Contains(p.Detail, "97%") {
		t.Fatalf("pause after 97%% usage = %+v, %v", p, err)
	}
	second := h.final(h.enqueue(textJob(page, "4343", "waits for the pause")))
	calls := h.fake.Calls()
	if second.State != asynq.TaskStateCompleted || len(calls) != 2 {
		t.Fatalf("second: %v, %d calls", second.State, len(calls))
	}
	if gap := calls[1].Time.Sub(calls[0].Time); gap < h.opts.ThrottlePause {
		t.Errorf("second call %v after the first, want at least the %v pause", gap, h.opts.ThrottlePause)
	}
}

func TestSenderActionWithoutIDsIsSent(t *testing.T) {
	h := newHarness(t, harnessOptions{fakeTokens: tokens})
	j := enqueue.Job{PageID: page, Request: &graphapi.Request{Recipient: &graphapi.Recipient{UserRef: "ref-1"}, SenderAction: "typing_on"}}
	ti := h.final(h.enqueue(j))
	if ti.State != asynq.TaskStateCompleted || result(t, ti).Outcome != job.OutcomeSent {
		t.Fatalf("state %v result %s", ti.State, ti.Result)
	}
	if n := h.fake.CallCount(); n != 1 {
		t.Errorf("%d calls, want 1", n)
	}
}

// TestRedeliveredSendIsNotRepeated: a task that comes back after its send
// was recorded (as after a crash between the Graph call and the ack)
// completes without a second call; with suppression off it is sent again.
func TestRedeliveredSendIsNotRepeated(t *testing.T) {
	for _, disabled := range []bool{false, true} {
		t.Run(fmt.Sprintf("disabled=%v", disabled), func(t *testing.T) {
			h := newHarness(t, harnessOptions{fakeTokens: tokens, worker: func(o *worker.Options) {
				o.DisableDuplicateSuppression = disabled
			}})
			j := textJob(page, "6789", "once, please")
			j.IdempotencyKey = "redelivered-1"
			first := h.final(h.enqueue(j))
			firstID := result(t, first).MessageID
			// Redeliver: the same task id runs again.
			if err := h.in.DeleteTask(first.Queue, first.ID); err != nil {
				t.Fatal(err)
			}
			again := h.final(h.enqueue(j))
			wantCalls := 1
			if disabled {
				wantCalls = 2
			}
			if n := h.fake.CallCount(); n != wantCalls {
				t.Fatalf("fake got %d calls, want %d", n, wantCalls)
			}
			r := result(t, again)
			if !disabled && (r.Outcome != job.OutcomeSent || r.MessageID != firstID) {
				t.Errorf("redelivered result = %+v, want the first send's %s", r, firstID)
			}
			suppressed := metricValue(t, h.reg, "pagesend_duplicates_suppressed_total", map[string]string{"page_id": page})
			if want := map[bool]float64{false: 1, true: 0}[disabled]; suppressed != want {
				t.Errorf("duplicates_suppressed = %v, want %v", suppressed, want)
			}
		})
	}
}
