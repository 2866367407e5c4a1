package app

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/pagesend/pagesend/graphapi"
	"github.com/pagesend/pagesend/internal/pages"
	"github.com/pagesend/pagesend/internal/redistest"
	"github.com/pagesend/pagesend/ratelimit"
)

func TestReadyFollowsRedis(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	lim := pages.Limit{Rate: 1, Burst: 1}
	svc, err := NewService(Config{
		Redis:  asynq.RedisClientOpt{Addr: rs.Addr(), DialTimeout: 200 * time.Millisecond},
		Store:  pages.NewStore(pages.NewConfig(lim, lim, nil, map[string]graphapi.Secret{"1": "tok"})),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	ctx := context.Background()
	if err := svc.Ready(ctx); err != nil {
		t.Fatalf("Ready with Redis up: %v", err)
	}
	if err := rs.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := svc.Ready(ctx); err == nil || !strings.HasPrefix(err.Error(), "redis: ") {
		t.Fatalf("Ready with Redis down = %v, want a redis error", err)
	}
	if err := rs.Restart(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for svc.Ready(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("not ready 10s after Redis came back: %v", svc.Ready(ctx))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestReloadAppliesLimitsAndLiftsTokenPauses(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	lim := pages.Limit{Rate: 1, Burst: 1}
	store := pages.NewStore(pages.NewConfig(lim, lim, nil, map[string]graphapi.Secret{"1": "old"}))
	svc, err := NewService(Config{
		Redis:  asynq.RedisClientOpt{Addr: rs.Addr()},
		Store:  store,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	ctx := context.Background()

	// Burst 1: a second token is a second away.
	if _, ok, _ := svc.Limiter.Reserve(ctx, "1", ratelimit.Text, 0); !ok {
		t.Fatal("first token refused")
	}
	if _, ok, _ := svc.Limiter.Reserve(ctx, "1", ratelimit.Text, 0); ok {
		t.Fatal("second token granted at 1/s burst 1")
	}
	if err := svc.Pauses.Pause(ctx, ratelimit.Pause{PageID: "1", Reason: ratelimit.ReasonTokenInvalid, Since: time.Now()}); err != nil {
		t.Fatal(err)
	}

	big := pages.Limit{Rate: 1000, Burst: 1000}
	store.Replace(pages.NewConfig(big, big, nil, map[string]graphapi.Secret{"1": "new"}))

	if p, err := svc.Pauses.Get(ctx, "1"); err != nil || p != nil {
		t.Errorf("pause after a token change = %+v, %v; want lifted", p, err)
	}
	// At 1/s the next token is ~1 s away; at 1000/s it is ~1 ms away.
	if wait, ok, _ := svc.Limiter.Reserve(ctx, "1", ratelimit.Text, 100*time.Millisecond); !ok {
		t.Errorf("new limits not applied after reload: wait %v", wait)
	}
}
