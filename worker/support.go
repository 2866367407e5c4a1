package worker

import (
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/pagesend/pagesend/metrics"
)

// alertState remembers which Pages this process raised pause and alert
// gauges for, so it can lower them once the Page sends again — the pause
// may have been lifted by another process (`pagesend pages resume`).
type alertState struct {
	mu     sync.Mutex
	raised map[string]string // page id → pause reason
}

func (a *alertState) raise(m *metrics.Metrics, page, reason string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.raised == nil {
		a.raised = map[string]string{}
	}
	if old, ok := a.raised[page]; ok && old != reason {
		m.SetPaused(page, old, false)
	}
	a.raised[page] = reason
	m.SetPaused(page, reason, true)
	if reason == "token_invalid" || reason == "token_missing" {
		m.SetTokenInvalid(page, true)
	}
}

// clear lowers the gauges of a Page that is no longer paused. It is on the
// hot path, so the common case (nothing raised) takes only the lock.
func (a *alertState) clear(m *metrics.Metrics, page string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	reason, ok := a.raised[page]
	if !ok {
		return
	}
	delete(a.raised, page)
	m.SetPaused(page, reason, false)
	if reason == "token_invalid" || reason == "token_missing" {
		m.SetTokenInvalid(page, false)
	}
}

// redisClient makes a go-redis client from an asynq connection option,
// for the pause state that lives beside the queues.
func redisClient(opt asynq.RedisConnOpt) (redis.UniversalClient, error) {
	c, ok := opt.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		return nil, fmt.Errorf("worker: unsupported Redis connection option %T", opt)
	}
	return c, nil
}

// asynqLogger routes asynq's own log lines into slog.
type asynqLogger struct{ l *slog.Logger }

func (a asynqLogger) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...), "component", "asynq") }
func (a asynqLogger) Info(args ...any)  { a.l.Info(fmt.Sprint(args...), "component", "asynq") }
func (a asynqLogger) Warn(args ...any)  { a.l.Warn(fmt.Sprint(args...), "component", "asynq") }
func (a asynqLogger) Error(args ...any) { a.l.Error(fmt.Sprint(args...), "component", "asynq") }
func (a asynqLogger) Fatal(args ...any) {
	a.l.Error(fmt.Sprint(args...), "component", "asynq")
	os.Exit(1) // asynq calls Fatal only where it cannot go on, like log.Fatal
}
