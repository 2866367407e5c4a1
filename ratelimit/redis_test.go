package ratelimit

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/pagesend/pagesend/internal/redistest"
)

func newRedisLimiter(t *testing.T, text, media Limit) (*Redis, redis.UniversalClient) {
	t.Helper()
	rdb := redistest.Start(t, redistest.Options{}).Client(t)
	return NewRedis(rdb, same(text, media), ""), rdb
}

// within reports whether d is within tol of want.
func within(d, want, tol time.Duration) bool { return d >= want-tol && d <= want+tol }

func TestRedisReserveBurstThenSpacing(t *testing.T) {
	l, _ := newRedisLimiter(t, Limit{Rate: 10, Burst: 3}, Limit{Rate: 1, Burst: 1})
	ctx := context.Background()
	for i := range 3 {
		if wait, ok, err := l.Reserve(ctx, "p1", Text, 0); err != nil || !ok || wait != 0 {
			t.Fatalf("burst permit %d: %v %v %v", i, wait, ok, err)
		}
	}
	// Refused callers take nothing and are spread one interval apart.
	const tol = 30 * time.Millisecond
	w1, ok1, _ := l.Reserve(ctx, "p1", Text, 0)
	w2, ok2, _ := l.Reserve(ctx, "p1", Text, 0)
	if ok1 || ok2 || !within(w1, 100*time.Millisecond, tol) || !within(w2, 200*time.Millisecond, tol) {
		t.Fatalf("refused: %v %v, %v %v; want ~100ms and ~200ms", w1, ok1, w2, ok2)
	}
	// A caller who may wait gets the next token, not one behind the refused.
	if w, ok, _ := l.Reserve(ctx, "p1", Text, time.Second); !ok || !within(w, 100*time.Millisecond, tol) {
		t.Fatalf("waiting caller: %v %v; want ~100ms", w, ok)
	}
	// Media is its own bucket; other Pages too.
	if _, ok, _ := l.Reserve(ctx, "p1", Media, 0); !ok {
		t.Error("media bucket was not full")
	}
	if _, ok, _ := l.Reserve(ctx, "p2", Text, 0); !ok {
		t.Error("another Page's bucket was not full")
	}
}

func TestRedisReserveEdgeCases(t *testing.T) {
	ctx := context.Background()
	l, _ := newRedisLimiter(t, Limit{Rate: 0}, Limit{Rate: 5, Burst: 0})
	for range 100 {
		if _, ok, err := l.Reserve(ctx, "p", Text, 0); !ok || err != nil {
			t.Fatal("rate 0 is unlimited")
		}
	}
	if w, ok, _ := l.Reserve(ctx, "p", Media, time.Hour); ok || w != DisabledWait {
		t.Errorf("burst 0: %v %v", w, ok)
	}
	if _, _, err := l.Reserve(ctx, "p", Kind(7), 0); err == nil {
		t.Error("unknown kind accepted")
	}
}

// TestRedisFleetNeverExceedsBucket runs several "processes" (limiters on
// their own connections) against one Redis as hard as they can; the
// permits granted, counted by when they may be used, never exceed burst +
// rate × span.
func TestRedisFleetNeverExceedsBucket(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	lim := Limit{Rate: 50, Burst: 1}
	const procs, workers = 3, 8
	var (
		mu    sync.Mutex
		times []time.Time
	)
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	var refused atomic.Int64
	for range procs {
		l := NewRedis(srv.Client(t), same(lim, lim), "")
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					wait, ok, err := l.Reserve(ctx, "hot", Text, 100*time.Millisecond)
					if err != nil {
						return
					}
					if !ok {
						refused.Add(1)
						Sleep(ctx, min(wait, 50*time.Millisecond))
						continue
					}
					at := time.Now().Add(wait)
					if Sleep(ctx, wait) != nil {
						at = time.Time{} // reserved but the run ended: still counted
					}
					mu.Lock()
					times = append(times, at)
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	if len(times) < 20 || refused.Load() == 0 {
		t.Fatalf("the test did not load the bucket: %d permits, %d refusals", len(times), refused.Load())
	}
	// Every permit granted during the run, including ones for up to
	// maxWait after it: at most burst + rate × (run + maxWait), plus one
	// for rounding.
	max := lim.Burst + int(lim.Rate*1.6) + 1
	if len(times) > max {
		t.Fatalf("%d permits in a 1.5 s run at 50/s burst 1 across %d processes, at most %d allowed", len(times), procs, max)
	}
	t.Logf("%d permits, %d refusals, %d processes × %d goroutines", len(times), refused.Load(), procs, workers)
}

func TestRedisSlowDown(t *testing.T) {
	l, _ := newRedisLimiter(t, Limit{Rate: 10, Burst: 1}, Limit{Rate: 10, Burst: 1})
	ctx := context.Background()
	if f, err := l.Factor(ctx, "p"); err != nil || f != 1 {
		t.Fatalf("factor before = %v, %v", f, err)
	}
	if err := l.SlowDown(ctx, "p", 0.5, time.Minute); err != nil {
		t.Fatal(err)
	}
	if f, _ := l.Factor(ctx, "p"); f != 0.5 {
		t.Fatalf("factor = %v", f)
	}
	l.Reserve(ctx, "p", Text, 0)
	if w, ok, _ := l.Reserve(ctx, "p", Text, 0); ok || !within(w, 200*time.Millisecond, 30*time.Millisecond) {
		t.Errorf("at half rate the next token is %v away (ok=%v), want ~200ms", w, ok)
	}
	for _, bad := range []float64{0, 1, 1.5, -1} {
		if err := l.SlowDown(ctx, "p", bad, time.Minute); err == nil {
			t.Errorf("SlowDown(%v) accepted", bad)
		}
	}
}

// The demo runs on miniredis; the script must work there too.
func TestRedisOnMiniredis(t *testing.T) {
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	l := NewRedis(rdb, same(Limit{Rate: 10, Burst: 2}, Limit{Rate: 10, Burst: 2}), "")
	ctx := context.Background()
	for i := range 2 {
		if _, ok, err := l.Reserve(ctx, "p", Text, 0); err != nil || !ok {
			t.Fatalf("permit %d on miniredis: %v %v", i, ok, err)
		}
	}
	if _, ok, err := l.Reserve(ctx, "p", Text, 0); err != nil || ok {
		t.Fatalf("third permit on miniredis: %v %v", ok, err)
	}
}
