package enqueue_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/pagesend/pagesend/enqueue"
	"github.com/pagesend/pagesend/graphapi"
	"github.com/pagesend/pagesend/internal/job"
	"github.com/pagesend/pagesend/internal/order"
	"github.com/pagesend/pagesend/internal/redistest"
	"github.com/pagesend/pagesend/shard"
)

func newClient(t *testing.T) (*enqueue.Client, *asynq.Inspector) {
	t.Helper()
	srv := redistest.Start(t, redistest.Options{})
	opt := asynq.RedisClientOpt{Addr: srv.Addr()}
	c := enqueue.NewClient(opt)
	in := asynq.NewInspector(opt)
	t.Cleanup(func() { c.Close(); in.Close() })
	return c, in
}

func textJob(page, recipient, text string) enqueue.Job {
	return enqueue.Job{
		PageID: page,
		Request: &graphapi.Request{
			Recipient:     &graphapi.Recipient{ID: recipient},
			MessagingType: "UPDATE",
			Message:       &graphapi.Message{Text: text},
		},
	}
}

func queueSizes(t *testing.T, in *asynq.Inspector) map[string]int {
	t.Helper()
	qs, err := in.Queues()
	if err != nil {
		t.Fatal(err)
	}
	sizes := map[string]int{}
	for _, q := range qs {
		info, err := in.GetQueueInfo(q)
		if err != nil {
			t.Fatal(err)
		}
		sizes[q] = info.Size
	}
	return sizes
}

func TestEnqueueStoresValidJob(t *testing.T) {
	c, in := newClient(t)
	ctx := context.Background()
	before := time.Now()
	info, err := c.Enqueue(ctx, textJob("1234", "6789", "hello"))
	if err != nil {
		t.Fatal(err)
	}
	if info.ID == "" || info.Queue != job.QueueDefault || info.Duplicate || info.ProcessAt.Before(before.Add(-time.Second)) {
		t.Errorf("info = %+v", info)
	}
	ti, err := in.GetTaskInfo(job.QueueDefault, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ti.State != asynq.TaskStatePending || ti.Type != job.TaskType || ti.MaxRetry != enqueue.DefaultMaxAttempts || ti.Retention != enqueue.DefaultRetention {
		t.Errorf("task = state %v type %q maxretry %d retention %v", ti.State, ti.Type, ti.MaxRetry, ti.Retention)
	}
	p, err := job.DecodePayload(ti.Payload)
	if err != nil {
		t.Fatalf("stored payload does not decode: %v\n%s", err, ti.Payload)
	}
	if p.PageID != "1234" || p.Request.Message.Text != "hello" || p.EnqueuedAt.IsZero() {
		t.Errorf("payload = %+v", p)
	}
}

func TestEnqueueRefusesInvalidJob(t *testing.T) {
	c, in := newClient(t)
	j := textJob("page-one", "6789", strings.Repeat("x", 2001))
	j.Priority = "urgent"
	_, err := c.Enqueue(context.Background(), j)
	var ve *graphapi.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("got %v, want *graphapi.ValidationError", err)
	}
	for _, want := range []string{"page_id: not a numeric Page id", `priority: "urgent" is not one of`, "request.message.text: 2001 characters, at most 2000"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if sizes := queueSizes(t, in); len(sizes) != 0 {
		t.Errorf("something was stored: %v", sizes)
	}
	if _, err := c.Enqueue(context.Background(), enqueue.Job{PageID: "1"}); err == nil || !strings.Contains(err.Error(), "request: required") {
		t.Errorf("job without request: %v", err)
	}
}

func TestEnqueueIdempotencyKey(t *testing.T) {
	c, in := newClient(t)
	ctx := context.Background()
	j := textJob("1234", "6789", "once")
	j.IdempotencyKey = "order-42-shipped"
	first, err := c.Enqueue(ctx, j)
	if err != nil {
		t.Fatal(err)
	}
	if first.ID != "order-42-shipped" || first.Duplicate {
		t.Fatalf("first = %+v", first)
	}
	second, err := c.Enqueue(ctx, j)
	if err != nil {
		t.Fatalf("duplicate enqueue returned an error: %v", err)
	}
	if !second.Duplicate || second.ID != first.ID {
		t.Errorf("second = %+v, want a duplicate of %s", second, first.ID)
	}
	if sizes := queueSizes(t, in); sizes[job.QueueDefault] != 1 {
		t.Errorf("queue sizes = %v, want one task", sizes)
	}
}

func TestEnqueueScheduleAndPriority(t *testing.T) {
	c, in := newClient(t)
	ctx := context.Background()
	j := textJob("1234", "6789", "later")
	j.SendAt = time.Now().Add(time.Hour).Truncate(time.Second).Add(300 * time.Millisecond)
	wantAt := j.SendAt.Truncate(time.Second).Add(time.Second) // rounded up, never early
	j.Priority = "HIGH"
	info, err := c.Enqueue(ctx, j)
	if err != nil {
		t.Fatal(err)
	}
	if info.Queue != job.QueueHigh || !info.ProcessAt.Equal(wantAt) {
		t.Errorf("info = %+v, want queue high at %v", info, wantAt)
	}
	ti, err := in.GetTaskInfo(job.QueueHigh, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ti.State != asynq.TaskStateScheduled || !ti.NextProcessAt.Equal(wantAt) {
		t.Errorf("task state %v at %v", ti.State, ti.NextProcessAt)
	}
	// A send_at in the past is due now (another recipient: one waiting
	// behind the scheduled message would be held for its turn).
	j = textJob("1234", "6790", "now")
	j.SendAt = time.Now().Add(-time.Hour)
	j.Priority = "low"
	info, err = c.Enqueue(ctx, j)
	if err != nil {
		t.Fatal(err)
	}
	if ti, _ := in.GetTaskInfo(job.QueueLow, info.ID); ti == nil || ti.State != asynq.TaskStatePending {
		t.Errorf("past send_at: task %+v, want pending", ti)
	}
}

func TestEnqueueOrderedWaitsForItsTurn(t *testing.T) {
	c, in := newClient(t)
	ctx := context.Background()
	first, err := c.Enqueue(ctx, textJob("1234", "6789", "one"))
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.Enqueue(ctx, textJob("1234", "6789", "two"))
	if err != nil {
		t.Fatal(err)
	}
	unordered := textJob("1234", "6789", "whenever")
	unordered.Ordered = new(bool)
	third, err := c.Enqueue(ctx, unordered)
	if err != nil {
		t.Fatal(err)
	}
	other, err := c.Enqueue(ctx, textJob("1234", "9999", "elsewhere"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		info enqueue.Info
		want asynq.TaskState
	}{
		{"head of its conversation", first, asynq.TaskStatePending},
		{"behind the head: scheduled until woken", second, asynq.TaskStateScheduled},
		{"ordered: false", third, asynq.TaskStatePending},
		{"another recipient", other, asynq.TaskStatePending},
	} {
		ti, err := in.GetTaskInfo(tc.info.Queue, tc.info.ID)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if ti.State != tc.want {
			t.Errorf("%s: state %v, want %v", tc.name, ti.State, tc.want)
		}
	}
	// The waiting job is due now as far as its producer can tell.
	if time.Since(second.ProcessAt) > time.Minute || time.Until(second.ProcessAt) > time.Second {
		t.Errorf("waiting job's ProcessAt = %v, want about now", second.ProcessAt)
	}
}

func TestEnqueueDuplicateKeyLeavesNoPhantomInTheConversation(t *testing.T) {
	c, in := newClient(t)
	ctx := context.Background()
	j := textJob("1234", "6789", "once")
	j.IdempotencyKey = "k-1"
	if _, err := c.Enqueue(ctx, j); err != nil {
		t.Fatal(err)
	}
	// Finish the message as a worker would — its member leaves the
	// conversation, its task stays (retention) — then enqueue the same key
	// again: a duplicate, which must not leave a member behind that
	// nothing would ever remove.
	convs := c.Conversations(j.PageID)
	ti, err := in.GetTaskInfo(job.QueueDefault, "k-1")
	if err != nil {
		t.Fatal(err)
	}
	p, err := job.DecodePayload(ti.Payload)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := convs.Leave(ctx, j.Conversation(), order.Member(job.QueueDefault, "k-1", p.EnqueuedAt)); err != nil {
		t.Fatal(err)
	}
	again, err := c.Enqueue(ctx, j)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Duplicate {
		t.Fatalf("info = %+v, want a duplicate", again)
	}
	if n, err := convs.Len(ctx, j.Conversation()); err != nil || n != 0 {
		t.Errorf("conversation has %d members (err %v), want 0", n, err)
	}
	if sizes := queueSizes(t, in); sizes[job.QueueDefault] != 1 {
		t.Errorf("queue sizes = %v, want the one task", sizes)
	}
}

func TestEnqueueBatch(t *testing.T) {
	c, in := newClient(t)
	ctx := context.Background()
	bad := []enqueue.Job{textJob("1", "2", "ok"), textJob("1", "x", "bad recipient"), textJob("", "2", "no page")}
	_, err := c.EnqueueBatch(ctx, bad)
	var be *enqueue.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("got %v, want *BatchError", err)
	}
	if be.Total != 3 || len(be.Invalid) != 2 || be.Invalid[0].Index != 1 || be.Invalid[1].Index != 2 {
		t.Errorf("batch error = %+v", be)
	}
	if !strings.Contains(err.Error(), "job 1: invalid request: request.recipient.id") {
		t.Errorf("message = %q", err)
	}
	if sizes := queueSizes(t, in); len(sizes) != 0 {
		t.Fatalf("an invalid batch stored %v", sizes)
	}

	good := []enqueue.Job{textJob("1", "2", "a"), textJob("1", "3", "b"), textJob("1", "4", "c")}
	infos, err := c.EnqueueBatch(ctx, good)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 3 || infos[0].ID == infos[1].ID {
		t.Errorf("infos = %+v", infos)
	}
	if sizes := queueSizes(t, in); sizes[job.QueueDefault] != 3 {
		t.Errorf("sizes = %v", sizes)
	}
}

func TestEnqueueRedisDown(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := enqueue.NewClient(asynq.RedisClientOpt{Addr: srv.Addr(), DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	infos, err := c.EnqueueBatch(context.Background(), []enqueue.Job{textJob("1", "2", "a")})
	var pe *enqueue.PartialError
	if !errors.As(err, &pe) || pe.Enqueued != 0 || len(infos) != 0 {
		t.Errorf("got %v %v, want a PartialError with nothing enqueued", infos, err)
	}
}

func TestEnqueueKeyOfDeadLetteredJob(t *testing.T) {
	c, in := newClient(t)
	ctx := context.Background()
	j := textJob("1234", "6789", "fixed")
	j.IdempotencyKey = "order-7"
	if _, err := c.Enqueue(ctx, j); err != nil {
		t.Fatal(err)
	}
	if err := in.ArchiveTask(job.QueueDefault, "order-7"); err != nil {
		t.Fatal(err)
	}
	info, err := c.Enqueue(ctx, j)
	if !errors.Is(err, enqueue.ErrKeyDeadLettered) || info.State != "archived" {
		t.Fatalf("got %+v, %v; want ErrKeyDeadLettered", info, err)
	}
	// After the operator deletes the archived task the key is free again.
	if err := in.DeleteTask(job.QueueDefault, "order-7"); err != nil {
		t.Fatal(err)
	}
	if info, err := c.Enqueue(ctx, j); err != nil || info.Duplicate {
		t.Fatalf("after delete: %+v, %v", info, err)
	}
}

func TestShardedClientPutsEachPageOnItsShard(t *testing.T) {
	servers := []*redistest.Server{redistest.Start(t, redistest.Options{}), redistest.Start(t, redistest.Options{})}
	shards := []shard.Shard{
		{Name: "a", Redis: asynq.RedisClientOpt{Addr: servers[0].Addr()}},
		{Name: "b", Redis: asynq.RedisClientOpt{Addr: servers[1].Addr()}},
	}
	c := enqueue.NewShardedClient(shards, enqueue.Options{})
	t.Cleanup(func() { c.Close() })
	ins := []*asynq.Inspector{asynq.NewInspector(shards[0].Redis), asynq.NewInspector(shards[1].Redis)}
	t.Cleanup(func() { ins[0].Close(); ins[1].Close() })
	per := [2]int{}
	for i := range 40 {
		page := strconv.Itoa(1000 + i)
		info, err := c.Enqueue(context.Background(), textJob(page, "6789", "hi"))
		if err != nil {
			t.Fatal(err)
		}
		want := shard.Pick([]string{"a", "b"}, page)
		per[want]++
		if _, err := ins[want].GetTaskInfo(info.Queue, info.ID); err != nil {
			t.Errorf("page %s: task not on shard %s: %v", page, shards[want].Name, err)
		}
		if _, err := ins[1-want].GetTaskInfo(info.Queue, info.ID); err == nil {
			t.Errorf("page %s: task also on shard %s", page, shards[1-want].Name)
		}
	}
	if per[0] == 0 || per[1] == 0 {
		t.Errorf("pages per shard %v: want both used", per)
	}
}
