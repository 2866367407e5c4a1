package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pagesend/pagesend/internal/httpserve"
)

// DefaultOpsAddr is the ops server's address when none is configured
// (PAGESEND_OPS_ADDR in DESIGN.md).
const DefaultOpsAddr = ":9321"

// Defaults of the ServerOptions durations.
const (
	DefaultReadyTimeout    = 2 * time.Second
	DefaultShutdownTimeout = 5 * time.Second
)

// The ops server's own endpoints; Mounts cannot take these paths.
var builtinPaths = []string{"/", "/metrics", "/healthz", "/readyz"}

// ErrServerNotStarted is returned by [Server.Wait] when [Server.Start] has
// not succeeded.
var ErrServerNotStarted = httpserve.ErrNotStarted

// ServerOptions configures the ops server. The zero value serves an empty
// registry on DefaultOpsAddr and is always ready.
type ServerOptions struct {
	// Addr is the TCP address to listen on, such as ":9321" or
	// "127.0.0.1:0" (any free port; see Server.Addr). "" means
	// DefaultOpsAddr.
	Addr string

	// Registry is served at /metrics. nil means a fresh NewRegistry(""),
	// which holds only the Go, process and build info metrics.
	Registry *prometheus.Registry

	// Ready reports whether the process can do its work (Redis reachable,
	// tokens loaded). /readyz answers 200 "ok" when it returns nil and 503
	// with the error's text otherwise. It gets a context that ends after
	// ReadyTimeout. nil means always ready.
	Ready func(ctx context.Context) error

	// ReadyTimeout bounds a Ready call; past it /readyz answers 503. 0 means
	// DefaultReadyTimeout.
	ReadyTimeout time.Duration

	// ShutdownTimeout bounds the graceful shutdown after the context given
	// to Start ends; connections still open then are closed. 0 means
	// DefaultShutdownTimeout.
	ShutdownTimeout time.Duration

	// Mounts are extra handlers by http.ServeMux pattern, usually a path
	// prefix ending in "/" such as "/monitor/" for asynqmon. A pattern must
	// start with "/" and must not be one of the built-in paths.
	Mounts map[string]http.Handler

	// Logger receives start, stop and error messages. nil discards them.
	Logger *slog.Logger
}

// Server is the ops HTTP server: /metrics, /healthz, /readyz, the Mounts,
// and a plain-text index at /. Its life is Start, which listens at once and
// serves in the background until its context ends, then Wait, which returns
// once the server has shut down. ListenAndServe does both. A Server runs
// once.
type Server struct {
	opts    ServerOptions
	log     *slog.Logger
	handler http.Handler
	srv     *httpserve.Server
}

// NewServer returns a server for opts. It panics if a Mounts pattern is
// invalid or clashes with a built-in path, as http.ServeMux does, since
// that is a programming error.
func NewServer(opts ServerOptions) *Server {
	if opts.Addr == "" {
		opts.Addr = DefaultOpsAddr
	}
	if opts.Registry == nil {
		opts.Registry = NewRegistry("")
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = DefaultReadyTimeout
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = DefaultShutdownTimeout
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: opts, log: log}
	s.handler = s.newMux()
	s.srv = httpserve.New(httpserve.Options{
		Name:              "ops server",
		Addr:              opts.Addr,
		Handler:           s.handler,
		ShutdownTimeout:   opts.ShutdownTimeout,
		Logger:            log,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	})
	return s
}

// Handler returns the server's routes, for tests or for serving them from
// another http.Server.
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) newMux() *http.ServeMux {
	mux := http.NewServeMux()
	metrics := promhttp.HandlerFor(s.opts.Registry, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		// asynq's queue collector fails as a whole now and then (see
		// notes/asynq-facts.md §4); serve everything else rather than a 500.
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      s.opts.Registry, // counts promhttp_metric_handler_errors_total
	})
	mux.Handle("GET /metrics", promhttp.InstrumentMetricHandler(s.opts.Registry, metrics))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mounts := s.mountPatterns()
	for _, pattern := range mounts {
		mux.Handle(pattern, s.opts.Mounts[pattern])
	}
	index := indexText(mounts)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, index)
	})
	return mux
}

// mountPatterns returns the Mounts patterns, checked and sorted.
func (s *Server) mountPatterns() []string {
	patterns := make([]string, 0, len(s.opts.Mounts))
	for p, h := range s.opts.Mounts {
		if !strings.HasPrefix(p, "/") || slices.Contains(builtinPaths, p) || h == nil {
			panic(fmt.Sprintf("metrics: invalid ops server mount %q: want a path such as \"/monitor/\" with a handler, not a built-in path", p))
		}
		patterns = append(patterns, p)
	}
	slices.Sort(patterns)
	return patterns
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.opts.Ready == nil {
		writeText(w, http.StatusOK, "ok")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.ReadyTimeout)
	defer cancel()
	// Run the check aside so that one ignoring its context cannot hold the
	// probe past the timeout; the cancelled context tells it to stop.
	res := make(chan error, 1)
	go func() { res <- s.opts.Ready(ctx) }()
	var err error
	select {
	case err = <-res:
	case <-ctx.Done():
		err = fmt.Errorf("readiness check did not finish within %s", s.opts.ReadyTimeout)
	}
	if err != nil {
		s.log.Debug("not ready", "err", err)
		writeText(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	writeText(w, http.StatusOK, "ok")
}

// indexText is the plain-text page served at /.
func indexText(mounts []string) string {
	var b strings.Builder
	b.WriteString("pagesend ops server\n\n")
	b.WriteString("/metrics  Prometheus metrics\n")
	b.WriteString("/healthz  200 while the process runs\n")
	b.WriteString("/readyz   200 when ready to work, 503 and the reason otherwise\n")
	for _, p := range mounts {
		b.WriteString(p + "\n")
	}
	return b.String()
}

func writeText(w http.ResponseWriter, code int, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}

// Start listens on the configured address and returns the bound address
// (useful with port 0) once connections can be made, serving them in the
// background. When ctx ends the server shuts down gracefully, waiting up to
// ShutdownTimeout for requests in flight; Wait reports the result. Start
// fails if the address cannot be bound or the server was already started.
func (s *Server) Start(ctx context.Context) (addr string, err error) {
	return s.srv.Start(ctx)
}

// Wait blocks until a started server has stopped and returns nil after a
// clean shutdown, or why it stopped otherwise. It returns
// ErrServerNotStarted at once if Start has not succeeded.
func (s *Server) Wait() error { return s.srv.Wait() }

// ListenAndServe is Start followed by Wait: it serves until ctx ends, then
// shuts down, and returns nil after a clean shutdown.
func (s *Server) ListenAndServe(ctx context.Context) error {
	if _, err := s.Start(ctx); err != nil {
		return err
	}
	return s.Wait()
}

// Addr returns the address the server is bound to once Start has listened
// (the real port when the configured one was 0), and "" before.
func (s *Server) Addr() string { return s.srv.Addr() }
