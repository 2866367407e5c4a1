package worker_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/pagesend/pagesend/enqueue"
	"github.com/pagesend/pagesend/graphapi"
	"github.com/pagesend/pagesend/graphapi/graphtest"
	"github.com/pagesend/pagesend/internal/job"
	"github.com/pagesend/pagesend/internal/order"
	"github.com/pagesend/pagesend/worker"
)

// delivered returns, per recipient, the texts of the calls the fake
// answered with success, in the order it received them.
func delivered(s *graphtest.Server) map[string][]string {
	out := map[string][]string{}
	for _, c := range s.Calls() {
		if c.Status == 200 && c.Request != nil && c.Request.Message != nil {
			out[c.Recipient] = append(out[c.Recipient], c.Request.Message.Text)
		}
	}
	return out
}

// orderViolations counts, for texts "0", "1", … delivered to one
// recipient, the deliveries of a message after a later one of the same
// conversation was delivered.
func orderViolations(texts []string) int {
	bad, last := 0, -1
	for _, s := range texts {
		n, _ := strconv.Atoi(s)
		if n < last {
			bad++
		}
		last = max(last, n)
	}
	return bad
}

func TestOrderHoldsAcrossWorkersUnderFaults(t *testing.T) {
	h := newHarness(t, harnessOptions{fakeTokens: tokens, fleet: true})
	h.startOtherWorker()
	const recipients, each = 6, 25
	// One call in ten fails with an HTML 503 (retried with backoff), and
	// three 613s pause the Page for every worker (each pause twice the
	// last), on call numbers picked at random, so which message each
	// lands on is up to the scheduling.
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 1; n <= recipients*each*2; n++ {
		if rng.IntN(10) == 0 {
			h.fake.ScriptCall(n, graphtest.Raw(503, "text/html", "<html>busy</html>"))
		}
	}
	for _, n := range []int{20, 60, 100} {
		h.fake.ScriptCall(n, graphtest.Fail(613, 0))
	}
	var infos []enqueue.Info
	for i := range each {
		for r := range recipients {
			infos = append(infos, h.enqueue(textJob(page, fmt.Sprint(900+r), strconv.Itoa(i))))
		}
	}
	for _, info := range infos {
		if ti := h.final(info); ti.State != asynq.TaskStateCompleted {
			t.Fatalf("task %s ended %v: %s", info.ID, ti.State, ti.LastErr)
		}
	}
	got := delivered(h.fake)
	for r := range recipients {
		texts := got[fmt.Sprint(900+r)]
		if v := orderViolations(texts); v != 0 {
			t.Errorf("recipient %d: %d order violations in %v", 900+r, v, texts)
		}
		if len(texts) < each {
			t.Errorf("recipient %d: %d delivered, want %d", 900+r, len(texts), each)
		}
	}
	if n := h.messages(page, "sent"); n != recipients*each {
		t.Errorf("sent = %v, want %d", n, recipients*each)
	}
}

func TestFinishedMessageReleasesItsConversation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer graphtest.Answer
		state  asynq.TaskState
	}{
		{"dead-lettered", graphtest.Fail(100, 0), asynq.TaskStateArchived},
		{"dropped", graphtest.Fail(551, 0), asynq.TaskStateCompleted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{fakeTokens: tokens})
			h.fake.ScriptRecipient("9", tc.answer)
			first := h.enqueue(textJob(page, "9", "0"))
			rest := []enqueue.Info{h.enqueue(textJob(page, "9", "1")), h.enqueue(textJob(page, "9", "2"))}
			if ti := h.final(first); ti.State != tc.state {
				t.Fatalf("first ended %v, want %v", ti.State, tc.state)
			}
			for _, info := range rest {
				if ti := h.final(info); ti.State != asynq.TaskStateCompleted || result(t, ti).Outcome != job.OutcomeSent {
					t.Fatalf("task %s ended %v (%s), want sent", info.ID, ti.State, ti.Result)
				}
			}
			if got := delivered(h.fake)["9"]; fmt.Sprint(got) != "[1 2]" {
				t.Errorf("delivered %v, want [1 2]", got)
			}
		})
	}
}

func TestWaitingConversationHoldsNoWorkerSlot(t *testing.T) {
	// Two slots. Conversation A's first message is told to come back in
	// an hour (429 Retry-After); its ten followers must wait without
	// holding a slot, while B and C go through, and A's unordered message
	// too.
	h := newHarness(t, harnessOptions{fakeTokens: tokens, worker: func(o *worker.Options) { o.Concurrency = 2 }})
	h.fake.ScriptRecipient("101", graphtest.TooManyRequests(time.Hour))
	head := h.enqueue(textJob(page, "101", "0"))
	eventually(t, 10*time.Second, "A's first call", func() bool { return len(recipientCalls(h.fake, "101")) == 1 })
	var waiting, others []enqueue.Info
	for i := 1; i <= 10; i++ {
		waiting = append(waiting, h.enqueue(textJob(page, "101", strconv.Itoa(i))))
		others = append(others, h.enqueue(textJob(page, "102", strconv.Itoa(i))), h.enqueue(textJob(page, "103", strconv.Itoa(i))))
	}
	free := textJob(page, "101", "unordered")
	free.Ordered = new(bool)
	others = append(others, h.enqueue(free))
	for _, info := range others {
		if ti := h.final(info); ti.State != asynq.TaskStateCompleted {
			t.Fatalf("task %s ended %v", info.ID, ti.State)
		}
	}
	got := delivered(h.fake)
	if fmt.Sprint(got["101"]) != "[unordered]" {
		t.Fatalf("A delivered %v while its first message waits, want only the unordered one", got["101"])
	}
	for _, info := range waiting {
		ti, err := h.in.GetTaskInfo(info.Queue, info.ID)
		if err != nil || (ti.State != asynq.TaskStateScheduled && ti.State != asynq.TaskStateRetry) {
			t.Fatalf("waiting task %s: %v %v, want scheduled or retry", info.ID, stateOrNil(ti), err)
		}
	}

	// Let A's first message go now: the rest follow, in order.
	if err := h.in.RunTask(head.Queue, head.ID); err != nil {
		t.Fatal(err)
	}
	for _, info := range waiting {
		h.final(info)
	}
	want := "[unordered 0 1 2 3 4 5 6 7 8 9 10]"
	if got := fmt.Sprint(delivered(h.fake)["101"]); got != want {
		t.Errorf("A delivered %s, want %s", got, want)
	}
}

func stateOrNil(ti *asynq.TaskInfo) any {
	if ti == nil {
		return nil
	}
	return ti.State
}

func TestSequenceResumesAfterLastDelivered(t *testing.T) {
	h := newHarness(t, harnessOptions{fakeTokens: tokens})
	// The second request fails once; the retry must not send the first
	// again.
	h.fake.ScriptRecipient("7", graphtest.OK(), graphtest.Raw(503, "text/html", "<html>down</html>"))
	seq := enqueue.Job{PageID: page}
	for _, text := range []string{"hello", "here is your receipt", "anything else?"} {
		seq.Requests = append(seq.Requests, &graphapi.Request{
			Recipient: &graphapi.Recipient{ID: "7"}, MessagingType: "RESPONSE", Message: &graphapi.Message{Text: text},
		})
	}
	info := h.enqueue(seq)
	after := h.enqueue(textJob(page, "7", "after the sequence"))
	ti := h.final(info)
	res := result(t, ti)
	if res.Outcome != job.OutcomeSent || len(res.MessageIDs) != 3 || res.MessageID != res.MessageIDs[2] {
		t.Fatalf("result = %+v, want sent with three message ids", res)
	}
	h.final(after)
	var texts []string
	for _, c := range recipientCalls(h.fake, "7") {
		texts = append(texts, fmt.Sprintf("%s:%d", c.Request.Message.Text, c.Status))
	}
	want := "[hello:200 here is your receipt:503 here is your receipt:200 anything else?:200 after the sequence:200]"
	if got := fmt.Sprint(texts); got != want {
		t.Errorf("calls %s\nwant  %s", got, want)
	}
}

func TestOrphanedHeadIsReleased(t *testing.T) {
	// A producer died between joining the conversation and storing its
	// task: the member is there, the task is not. The next message must
	// not wait for it forever.
	h := newHarness(t, harnessOptions{fakeTokens: tokens, worker: func(o *worker.Options) {
		o.OrderOrphanGrace = 200 * time.Millisecond
		o.OrderRecheck = 100 * time.Millisecond
	}})
	enq := enqueue.NewClientWithOptions(h.opt, enqueue.Options{OrderRecheck: time.Second})
	t.Cleanup(func() { enq.Close() })
	j := textJob(page, "5", "after the orphan")
	conv := j.Conversation()
	convs := enq.Conversations(j.PageID)
	if _, err := convs.Join(context.Background(), conv, order.Member("default", "never-stored", time.Now().Add(-time.Minute)), false, 0); err != nil {
		t.Fatal(err)
	}
	info, err := enq.Enqueue(context.Background(), j)
	if err != nil {
		t.Fatal(err)
	}
	if ti := h.final(info); ti.State != asynq.TaskStateCompleted {
		t.Fatalf("ended %v: %s", ti.State, ti.LastErr)
	}
	if n, err := convs.Len(context.Background(), conv); err != nil || n != 0 {
		t.Errorf("conversation still has %d members (%v)", n, err)
	}
}

func TestStaleMemberOfARetriedEnqueueIsReleased(t *testing.T) {
	// A producer's first enqueue joined the conversation, then failed
	// (its reply was lost); its retry with the same key joined again and
	// stored the task. The first member is the head, and its task id is
	// alive — but it is not that task's member, so it must not hold the
	// conversation.
	h := newHarness(t, harnessOptions{fakeTokens: tokens, worker: func(o *worker.Options) {
		o.OrderOrphanGrace = 200 * time.Millisecond
		o.OrderRecheck = 100 * time.Millisecond
	}})
	enq := enqueue.NewClientWithOptions(h.opt, enqueue.Options{OrderRecheck: time.Second})
	t.Cleanup(func() { enq.Close() })
	j := textJob(page, "6", "retried")
	j.IdempotencyKey = "retried-1"
	convs := enq.Conversations(j.PageID)
	stale := order.Member("default", "retried-1", time.Now().Add(-time.Minute))
	if _, err := convs.Join(context.Background(), j.Conversation(), stale, false, 0); err != nil {
		t.Fatal(err)
	}
	info, err := enq.Enqueue(context.Background(), j)
	if err != nil {
		t.Fatal(err)
	}
	if ti := h.final(info); ti.State != asynq.TaskStateCompleted {
		t.Fatalf("ended %v: %s", ti.State, ti.LastErr)
	}
	if n, err := convs.Len(context.Background(), j.Conversation()); err != nil || n != 0 {
		t.Errorf("conversation still has %d members (%v)", n, err)
	}
}
