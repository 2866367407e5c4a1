package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/pagesend/pagesend/enqueue"
	"github.com/pagesend/pagesend/metrics"
	"github.com/pagesend/pagesend/ratelimit"
	"github.com/pagesend/pagesend/shard"
)

// Defaults for Options.
const (
	// DefaultMaxBody bounds a request body (PAGESEND_API_MAX_BODY): a
	// thousand text jobs fit in half of it.
	DefaultMaxBody = 1 << 20
	// DefaultMaxJobs bounds a batch. Storing a job costs a Redis round
	// trip, so a thousand take well under a second on a nearby Redis.
	DefaultMaxJobs = 1000
	// DefaultRedisTimeout bounds the Redis work of one request.
	DefaultRedisTimeout = 10 * time.Second
)

// Options configures an API. Redis and Keys are required; every other zero
// value is documented beside it.
type Options struct {
	// Redis is the queue's Redis.
	Redis asynq.RedisConnOpt
	// Shards, when set, replaces Redis: jobs go to their Page's shard
	// (enqueue.NewShardedClient), GET looks on every shard, and a resume
	// goes to the Page's shard.
	Shards []shard.Shard
	// Keys are the accepted bearer tokens; at least one.
	Keys []Key
	// MaxBody is the largest request body, in bytes; larger ones are
	// refused with 413. Zero: DefaultMaxBody.
	MaxBody int64
	// MaxJobs is the most jobs in one batch. Zero: DefaultMaxJobs.
	MaxJobs int
	// RedisTimeout bounds the Redis work of one request; past it the
	// answer is 503. Zero: DefaultRedisTimeout.
	RedisTimeout time.Duration
	// Enqueue tunes stored tasks (attempts, retention); its zero value is
	// enqueue's defaults, the same as `pagesend enqueue` uses.
	Enqueue enqueue.Options
	// Registry is served at /metrics and gets the API's collectors (one
	// API per registry: registering them twice panics). Nil:
	// metrics.NewRegistry("").
	Registry *prometheus.Registry
	// Logger logs one line per request, with the route, status, duration
	// and the name of the key used (never the key). Nil: discard.
	Logger *slog.Logger
}

// API is the HTTP API's handler. Make one with New, serve it (Server does,
// with timeouts), and Close it when done. It keeps nothing between
// requests but its Redis connections.
type API struct {
	opts    Options
	log     *slog.Logger
	keys    *keyring
	client  *enqueue.Client
	shards  []apiShard
	names   []string
	metrics *apiMetrics
	mux     *http.ServeMux
	routes  []route // in registration order
}

// apiShard is the connections to one shard.
type apiShard struct {
	inspect *asynq.Inspector
	rdb     redis.UniversalClient
	pauses  *ratelimit.Pauses
}

// shardOf is the shard of a Page.
func (a *API) shardOf(pageID string) apiShard {
	return a.shards[shard.Pick(a.names, pageID)]
}

// route is one served pattern and what it needs of a key.
type route struct {
	pattern string
	need    scope
}

// New checks opts and returns the API.
func New(opts Options) (*API, error) {
	shards := opts.Shards
	if len(shards) == 0 && opts.Redis != nil {
		shards = []shard.Shard{{Name: "default", Redis: opts.Redis}}
	}
	if len(shards) == 0 {
		return nil, errors.New("httpapi: Options.Redis (or Shards) is required")
	}
	keys, err := newKeyring(opts.Keys)
	if err != nil {
		return nil, err
	}
	var parts []apiShard
	for _, sh := range shards {
		rdb, ok := sh.Redis.MakeRedisClient().(redis.UniversalClient)
		if !ok {
			for _, p := range parts {
				p.rdb.Close()
			}
			return nil, fmt.Errorf("httpapi: shard %s: unsupported Redis option %T", sh.Name, sh.Redis)
		}
		parts = append(parts, apiShard{inspect: asynq.NewInspectorFromRedisClient(rdb), rdb: rdb, pauses: ratelimit.NewPauses(rdb, "")})
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.MaxJobs <= 0 {
		opts.MaxJobs = DefaultMaxJobs
	}
	if opts.RedisTimeout <= 0 {
		opts.RedisTimeout = DefaultRedisTimeout
	}
	if opts.Registry == nil {
		opts.Registry = metrics.NewRegistry("")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &API{
		opts:    opts,
		log:     log,
		keys:    keys,
		client:  enqueue.NewShardedClient(shards, opts.Enqueue),
		shards:  parts,
		names:   shard.Names(shards),
		metrics: newAPIMetrics(opts.Registry),
		mux:     http.NewServeMux(),
	}
	a.routeAll()
	return a, nil
}

func (a *API) routeAll() {
	a.route("POST /v1/messages", scopeWrite, a.postMessages)
	a.route("GET /v1/messages/{id}", scopeRead, a.getMessage)
	a.route("POST /v1/pages/{id}/resume", scopeWrite, a.resumePage)
	a.route("GET /openapi.json", scopeNone, serveDocument)
	a.route("GET /healthz", scopeNone, func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok")
	})
	a.route("GET /readyz", scopeNone, a.readyz)
	metricsHandler := promhttp.InstrumentMetricHandler(a.opts.Registry, promhttp.HandlerFor(a.opts.Registry, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      a.opts.Registry,
	}))
	a.route("GET /metrics", scopeNone, metricsHandler.ServeHTTP)
	// Everything else: a JSON 404, or 405 with Allow when another method
	// of the path is served. Not a route: it is neither documented nor
	// listed by routes.
	a.mux.Handle("/", a.observe(routeUnmatched, true, http.HandlerFunc(a.unmatched)))
}

// route serves h at pattern behind auth for need, counted and logged
// under the pattern (never the raw path, which would let any caller mint
// metric series).
func (a *API) route(pattern string, need scope, h http.HandlerFunc) {
	a.routes = append(a.routes, route{pattern, need})
	var handler http.Handler = h
	if need != scopeNone {
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			name, ok := a.authorize(w, r, need)
			if name != "" {
				annotate(r, slog.String("key", name))
			}
			if ok {
				h(w, r)
			}
		})
	}
	a.mux.Handle(pattern, a.observe(pattern, need == scopeNone, handler))
}

// requestNotes collects what a handler wants in its request's log line.
type requestNotes struct{ attrs []any }

type notesKey struct{}

// annotate adds attributes to the request's log line.
func annotate(r *http.Request, attrs ...slog.Attr) {
	if n, ok := r.Context().Value(notesKey{}).(*requestNotes); ok {
		for _, a := range attrs {
			n.attrs = append(n.attrs, a)
		}
	}
}

// observe counts, times and logs every answer of h under route. Probes
// (quiet) log successful answers at debug level only.
func (a *API) observe(route string, quiet bool, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		notes := &requestNotes{}
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), notesKey{}, notes)))
		code, d := rec.status(), time.Since(start)
		a.metrics.observe(route, code, d)
		level := slog.LevelInfo
		switch {
		case code >= 500:
			level = slog.LevelWarn
		case quiet && code < 400:
			level = slog.LevelDebug
		}
		args := append([]any{"method", r.Method, "route", route, "code", code, "duration", d, "remote", r.RemoteAddr}, notes.attrs...)
		a.log.Log(r.Context(), level, "request", args...)
	})
}

// ServeHTTP serves the API's routes.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// Routes returns the patterns the API serves ("POST /v1/messages", …),
// which the OpenAPI document must list exactly.
func (a *API) Routes() []string {
	patterns := make([]string, len(a.routes))
	for i, r := range a.routes {
		patterns[i] = r.pattern
	}
	return patterns
}

// Close releases the API's Redis connections.
func (a *API) Close() error {
	errs := []error{a.client.Close()}
	for _, p := range a.shards {
		errs = append(errs, p.rdb.Close())
	}
	return errors.Join(errs...)
}

// Ready reports whether Redis answers; it backs /readyz.
func (a *API) Ready(ctx context.Context) error {
	for i, p := range a.shards {
		if err := p.rdb.Ping(ctx).Err(); err != nil {
			if len(a.shards) > 1 {
				return fmt.Errorf("redis (shard %s): %w", a.names[i], err)
			}
			return fmt.Errorf("redis: %w", err)
		}
	}
	return nil
}

func (a *API) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), min(a.opts.RedisTimeout, 2*time.Second))
	defer cancel()
	if err := a.Ready(ctx); err != nil {
		writeText(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	writeText(w, http.StatusOK, "ok")
}

func (a *API) unmatched(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := a.mux.Handler(probe); pattern != "/" && pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, http.StatusMethodNotAllowed, codeMethodNotAllowed, r.Method+" is not served here; use "+strings.Join(allow, " or "))
		return
	}
	writeError(w, http.StatusNotFound, codeNotFound, "no such route; see /openapi.json")
}

// redisCtx is the context of a request's Redis work: it outlives a
// client that hangs up, so a batch is not left half stored because its
// producer gave up, and it is bounded by RedisTimeout.
func (a *API) redisCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(r.Context()), a.opts.RedisTimeout)
}

func writeText(w http.ResponseWriter, code int, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body + "\n"))
}
