// Package app wires pagesend's packages into a running worker service: the
// token store, the Graph client, the rate limiter, the metrics registry,
// the asynq worker and the ops server. cmd/pagesend's worker and demo
// commands both use it, so the demo runs exactly what production runs.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/pagesend/pagesend/graphapi"
	"github.com/pagesend/pagesend/internal/monitor"
	"github.com/pagesend/pagesend/internal/pages"
	"github.com/pagesend/pagesend/metrics"
	"github.com/pagesend/pagesend/ratelimit"
	"github.com/pagesend/pagesend/shard"
	"github.com/pagesend/pagesend/worker"
)

// Config is what a worker service needs. Redis (or Shards) and Store are
// required; every other zero value is documented beside it.
type Config struct {
	// Redis is the queue's Redis.
	Redis asynq.RedisConnOpt
	// Shards, when set, replaces Redis: the service runs one worker per
	// shard (each with Worker.Concurrency slots, its own rate limiter and
	// pause state on that shard), consuming from every shard. Producers
	// must be given the same shard names (enqueue.NewShardedClient).
	Shards []shard.Shard
	// Store holds the Page tokens and limits.
	Store *pages.Store
	// Graph configures the Graph API client (base URL, version, app
	// secret, timeout). Its zero value talks to the real Graph API.
	Graph graphapi.ClientOptions
	// OpsAddr is the ops server's address. "" disables the ops server.
	OpsAddr string
	// Mounts are extra handlers on the ops server.
	Mounts map[string]http.Handler
	// Monitor, when set, mounts the asynqmon UI at /monitor/ on the ops
	// server; its Redis is filled in.
	Monitor *monitor.Options
	// Version is reported in pagesend_build_info.
	Version string
	// Logger logs. Nil: slog.Default().
	Logger *slog.Logger
	// LocalLimiter keeps each Page's buckets in this process instead of in
	// Redis: N processes then send at N times the rate. Zero: the
	// fleet-wide limiter (ratelimit.Redis).
	LocalLimiter bool
	// Worker tunes the worker; Redis, Graph, Tokens, Limiter, Pauses,
	// Metrics and Logger are filled in by NewService.
	Worker worker.Options
}

// Service is a worker with everything around it. With shards, Worker,
// Limiter and Pauses are the first shard's; Parts has them all.
type Service struct {
	Worker   *worker.Worker
	Store    *pages.Store
	Limiter  ratelimit.Limiter
	Pauses   *ratelimit.Pauses
	Metrics  *metrics.Metrics
	Registry *prometheus.Registry
	Ops      *metrics.Server
	Parts    []*Part

	cfg     Config
	log     *slog.Logger
	closers []func() error
}

// Part is the service's worker on one shard.
type Part struct {
	Shard   string
	Worker  *worker.Worker
	Limiter ratelimit.Limiter
	Pauses  *ratelimit.Pauses
	rdb     redis.UniversalClient
}

// NewService builds a Service from cfg without starting anything.
func NewService(cfg Config) (*Service, error) {
	shards := cfg.Shards
	if len(shards) == 0 && cfg.Redis != nil {
		shards = []shard.Shard{{Name: "default", Redis: cfg.Redis}}
	}
	if len(shards) == 0 || cfg.Store == nil {
		return nil, errors.New("app: Config.Redis (or Shards) and Config.Store are required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	client, err := graphapi.NewClient(cfg.Graph)
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, log: log, Store: cfg.Store}
	s.Registry = metrics.NewRegistry(cfg.Version)
	s.Metrics = metrics.New(s.Registry)
	limits := func(id string) (ratelimit.Limit, ratelimit.Limit) {
		text, media := s.Store.Limits(id)
		return ratelimit.Limit(text), ratelimit.Limit(media)
	}
	labelled := len(cfg.Shards) > 0 // series and logs name their shard
	for _, sh := range shards {
		rdb, ok := sh.Redis.MakeRedisClient().(redis.UniversalClient)
		if !ok {
			s.Close()
			return nil, fmt.Errorf("app: shard %s: unsupported Redis option %T", sh.Name, sh.Redis)
		}
		s.closers = append(s.closers, rdb.Close)
		p := &Part{Shard: sh.Name, rdb: rdb, Pauses: ratelimit.NewPauses(rdb, "")}
		inspector := asynq.NewInspectorFromRedisClient(rdb)
		reg := prometheus.Registerer(s.Registry)
		if labelled {
			reg = prometheus.WrapRegistererWith(prometheus.Labels{"shard": sh.Name}, reg)
		}
		reg.MustRegister(metrics.NewQueueCollector(inspector))
		if cfg.LocalLimiter {
			p.Limiter = ratelimit.NewLocal(limits)
		} else {
			p.Limiter = ratelimit.NewRedis(rdb, limits, "")
		}
		wo := cfg.Worker
		wo.Redis, wo.Graph, wo.Tokens = sh.Redis, client, s.Store
		wo.Limiter, wo.Pauses, wo.Metrics, wo.Logger = p.Limiter, p.Pauses, s.Metrics, log
		if labelled {
			wo.Logger = log.With("shard", sh.Name)
		}
		if p.Worker, err = worker.New(wo); err != nil {
			s.Close()
			return nil, fmt.Errorf("shard %s: %w", sh.Name, err)
		}
		s.Parts = append(s.Parts, p)
	}
	first := s.Parts[0]
	s.Worker, s.Limiter, s.Pauses = first.Worker, first.Limiter, first.Pauses
	s.Store.OnChange(s.applyChanges)
	if cfg.OpsAddr != "" {
		mounts := map[string]http.Handler{}
		for p, h := range cfg.Mounts {
			mounts[p] = h
		}
		if cfg.Monitor != nil {
			mo := *cfg.Monitor
			mo.Redis = shards[0].Redis // the UI shows the first shard
			ui := monitor.New(mo)
			s.closers = append(s.closers, ui.Close)
			mounts[monitor.Path] = ui
		}
		s.Ops = metrics.NewServer(metrics.ServerOptions{
			Addr:     cfg.OpsAddr,
			Registry: s.Registry,
			Ready:    s.Ready,
			Mounts:   mounts,
			Logger:   log,
		})
	}
	return s, nil
}

// applyChanges follows a token store reload: new limits for the buckets,
// and token pauses lifted for Pages whose token was replaced.
func (s *Service) applyChanges(c pages.Changes) {
	for _, p := range s.Parts {
		// ratelimit.Redis reads the limits on every call; a Local keeps
		// them in its buckets and must be told.
		if l, ok := p.Limiter.(*ratelimit.Local); ok {
			if c.DefaultsChanged {
				l.Update(nil)
			} else if len(c.LimitsChanged) > 0 {
				l.Update(c.LimitsChanged)
			}
		}
		if len(c.TokenChanged) > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			p.Worker.TokensChanged(ctx, c.TokenChanged)
			cancel()
		}
	}
}

// Ready reports whether the service can work: Redis answers and the token
// store is loaded. It backs /readyz.
func (s *Service) Ready(ctx context.Context) error {
	if !s.Store.Loaded() {
		return errors.New("token store not loaded")
	}
	for _, p := range s.Parts {
		if err := p.rdb.Ping(ctx).Err(); err != nil {
			if len(s.Parts) > 1 {
				return fmt.Errorf("redis (shard %s): %w", p.Shard, err)
			}
			return fmt.Errorf("redis: %w", err)
		}
	}
	return nil
}

// Start starts the ops server (when configured) and the worker. It returns
// the ops server's bound address, or "".
func (s *Service) Start(ctx context.Context) (string, error) {
	var addr string
	if s.Ops != nil {
		var err error
		if addr, err = s.Ops.Start(ctx); err != nil {
			return "", err
		}
	}
	for _, p := range s.Parts {
		if err := p.Worker.Start(); err != nil {
			return "", err
		}
	}
	return addr, nil
}

// Run starts the service, reloads the token store on SIGHUP (when
// watchSIGHUP), and runs until ctx is done; then it stops taking work,
// lets in-flight sends finish within the worker's shutdown timeout, and
// stops the ops server.
func (s *Service) Run(ctx context.Context, watchSIGHUP bool) error {
	if _, err := s.Start(ctx); err != nil {
		return err
	}
	if watchSIGHUP {
		go s.Store.WatchSIGHUP(ctx, s.log)
	}
	<-ctx.Done()
	s.log.Info("stopping: finishing in-flight sends")
	s.Shutdown()
	var err error
	if s.Ops != nil {
		err = s.Ops.Wait()
	}
	s.Close()
	return err
}

// Shutdown stops every shard's worker: no new work, in-flight sends
// finish within the shutdown timeout (all shards at once), the rest go
// back to their queues.
func (s *Service) Shutdown() {
	var wg sync.WaitGroup
	for _, p := range s.Parts {
		wg.Add(1)
		go func() { defer wg.Done(); p.Worker.Shutdown() }()
	}
	wg.Wait()
}

// Close releases the service's own Redis connections.
func (s *Service) Close() {
	for _, c := range s.closers {
		c()
	}
	s.closers = nil
}
