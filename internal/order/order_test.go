package order_test

import (
	"context"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/pagesend/pagesend/internal/order"
	"github.com/pagesend/pagesend/internal/redistest"
)

func TestJoinCheckLeave(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	rdb := srv.Client(t)
	c := order.New(rdb, order.Options{TTL: time.Hour})
	ctx := context.Background()
	const conv = "1:abc"
	now := time.Now()
	a, b, cc := order.Member("default", "a", now), order.Member("default", "b", now), order.Member("high", "c", now)

	join := func(m string, wait bool) order.Joined {
		t.Helper()
		j, err := c.Join(ctx, conv, m, wait, 0)
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	check := func(m string) order.Status {
		t.Helper()
		st, err := c.Check(ctx, conv, m)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	leave := func(m string) string {
		t.Helper()
		next, err := c.Leave(ctx, conv, m)
		if err != nil {
			t.Fatal(err)
		}
		return next
	}

	if j := join(a, true); !j.Added || !j.Head {
		t.Fatalf("first join = %+v, want added head", j)
	}
	if j := join(b, true); !j.Added || j.Head {
		t.Fatalf("second join = %+v, want added, not head", j)
	}
	join(cc, false)
	if j := join(a, true); j.Added || !j.Head {
		t.Fatalf("joining again = %+v, want not added, head", j)
	}
	if st := check(a); st.State != order.Head {
		t.Errorf("a: %+v, want head", st)
	}
	st := check(cc)
	if st.State != order.Wait || st.HeadMember != a || st.HeadSince.UnixMilli() != now.UnixMilli() {
		t.Errorf("c: %+v, want waiting behind a since %v", st, now)
	}
	if st := check(order.Member("default", "zzz", now)); st.State != order.Free {
		t.Errorf("a member not in the conversation: %+v, want free", st)
	}
	// a leaves: b (registered at join) is woken; c is not its turn yet.
	if next := leave(a); next != b {
		t.Errorf("a left, woke %q, want b", next)
	}
	// b leaves without having checked: c registered when it checked.
	if next := leave(b); next != cc {
		t.Errorf("b left, woke %q, want c", next)
	}
	if st := check(cc); st.State != order.Head {
		t.Errorf("c: %+v, want head", st)
	}
	if next := leave(cc); next != "" {
		t.Errorf("c left, woke %q, want nobody", next)
	}
	if next := leave(cc); next != "" { // twice is harmless
		t.Errorf("c left twice, woke %q", next)
	}
	if n, err := c.Len(ctx, conv); err != nil || n != 0 {
		t.Errorf("len %d %v", n, err)
	}
	if keys := rdb.Keys(ctx, "pagesend:conv:*").Val(); len(keys) != 0 {
		t.Errorf("an empty conversation left keys %v", keys)
	}
	// A new conversation starts its numbering over, and keeps its keys
	// for the TTL.
	join(order.Member("default", "d", now), true)
	if ttl := rdb.PTTL(ctx, "pagesend:conv:{"+conv+"}").Val(); ttl <= 59*time.Minute || ttl > time.Hour {
		t.Errorf("TTL %v, want about an hour", ttl)
	}
}

func TestMember(t *testing.T) {
	at := time.UnixMilli(1763913600123)
	m := order.Member("default", "key:with:colons", at)
	if q, id, got := order.SplitMember(m); q != "default" || id != "key:with:colons" || !got.Equal(at) {
		t.Errorf("split %q = %q, %q, %v", m, q, id, got)
	}
}

// A conversation of one message is one small key: the waiters' hash is
// made only when a message has to wait.
func TestOneMessageIsOneKey(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	rdb := srv.Client(t)
	c := order.New(rdb, order.Options{})
	ctx := context.Background()
	if _, err := c.Join(ctx, "1:x", order.Member("default", "t1", time.Now()), true, 0); err != nil {
		t.Fatal(err)
	}
	if keys := rdb.Keys(ctx, "pagesend:conv:*").Val(); len(keys) != 1 {
		t.Errorf("keys %v, want only the sorted set", keys)
	}
}

// The pipelined forms send scripts by SHA; on a Redis that has not seen
// them (restarted, failed over, SCRIPT FLUSH) they fall back to loading.
func TestQueuedScriptsSurviveScriptFlush(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	rdb := srv.Client(t)
	c := order.New(rdb, order.Options{})
	ctx := context.Background()
	now := time.Now()
	a, b := order.Member("default", "a", now), order.Member("default", "b", now)
	for _, m := range []string{a, b} {
		if _, err := c.Join(ctx, "1:f", m, true, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	pipe := rdb.Pipeline()
	check := c.QueueCheck(ctx, pipe, "1:f", b)
	_, _ = pipe.Exec(ctx)
	if st, err := check(); err != nil || st.State != order.Wait || st.HeadMember != a {
		t.Fatalf("check after a flush = %+v, %v; want b waiting behind a", st, err)
	}
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	pipe = rdb.Pipeline()
	leave := c.QueueLeave(ctx, pipe, "1:f", a)
	_, _ = pipe.Exec(ctx)
	if next, err := leave(); err != nil || next != b {
		t.Fatalf("leave after a flush = %q, %v; want b woken", next, err)
	}
}

func TestJoinKeepsAScheduledHeadPastTheTTL(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	rdb := srv.Client(t)
	c := order.New(rdb, order.Options{TTL: time.Hour})
	ctx := context.Background()
	if _, err := c.Join(ctx, "1:s", order.Member("default", "later", time.Now()), false, 48*time.Hour); err != nil {
		t.Fatal(err)
	}
	if ttl := rdb.PTTL(ctx, "pagesend:conv:{1:s}").Val(); ttl < 48*time.Hour {
		t.Errorf("TTL %v, want at least the 48 h the message is held plus the TTL", ttl)
	}
}

func TestWakeMovesOnlyWaitingTasks(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	opt := asynq.RedisClientOpt{Addr: srv.Addr()}
	cl := asynq.NewClient(opt)
	defer cl.Close()
	in := asynq.NewInspector(opt)
	defer in.Close()
	ctx := context.Background()
	waiting, err := cl.Enqueue(asynq.NewTask("t", nil), asynq.TaskID("waiting"), asynq.ProcessIn(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := order.Wake(ctx, in, order.Member("default", waiting.ID, time.Now())); err != nil {
		t.Fatal(err)
	}
	if ti, _ := in.GetTaskInfo("default", "waiting"); ti == nil || ti.State != asynq.TaskStatePending {
		t.Errorf("a scheduled waiter after Wake: %v, want pending", stateOf(ti))
	}
	// An archived task is an operator's (or a dead letter's): Wake leaves it.
	if _, err := cl.Enqueue(asynq.NewTask("t", nil), asynq.TaskID("archived"), asynq.ProcessIn(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := in.ArchiveTask("default", "archived"); err != nil {
		t.Fatal(err)
	}
	if err := order.Wake(ctx, in, order.Member("default", "archived", time.Now())); err != nil {
		t.Fatal(err)
	}
	if ti, _ := in.GetTaskInfo("default", "archived"); ti == nil || ti.State != asynq.TaskStateArchived {
		t.Errorf("an archived task after Wake: %v, want archived", stateOf(ti))
	}
}

func stateOf(ti *asynq.TaskInfo) any {
	if ti == nil {
		return "missing"
	}
	return ti.State
}
