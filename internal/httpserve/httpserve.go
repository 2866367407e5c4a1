// Package httpserve runs an http.Server for the life of a context: Start
// listens at once (so the caller knows the bound address, useful with port
// 0) and serves in the background; when the context ends the server stops
// accepting, lets requests in flight finish within a shutdown timeout,
// closes what is left, and Wait reports how it ended. The ops server and
// the API server share it.
package httpserve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// ErrNotStarted is returned by Wait when Start has not succeeded.
var ErrNotStarted = errors.New("server not started")

// Options configures a Server. Addr, Handler and Name are required; the
// zero limits are net/http's (none), so callers set them.
type Options struct {
	// Name appears in logs and errors: "ops server", "api server".
	Name string
	// Addr is the TCP address to listen on.
	Addr string
	// Handler serves requests.
	Handler http.Handler
	// ShutdownTimeout bounds the graceful shutdown.
	ShutdownTimeout time.Duration
	// Logger receives start, stop and connection errors. Nil: discard.
	Logger *slog.Logger
	// The http.Server limits.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	MaxHeaderBytes                                            int
}

// Server is one run of an HTTP server. A Server runs once.
type Server struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	started bool
	addr    string
	done    chan struct{} // closed when the server has stopped
	err     error         // why it stopped; read after done is closed
}

// New returns a server for opts; nothing listens until Start.
func New(opts Options) *Server {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{opts: opts, log: log}
}

// Start listens and returns the bound address once connections can be
// made, serving them in the background until ctx ends. It fails if the
// address cannot be bound or the server was already started.
func (s *Server) Start(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return "", fmt.Errorf("%s already started", s.opts.Name)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.opts.Addr)
	if err != nil {
		return "", fmt.Errorf("%s: %w", s.opts.Name, err)
	}
	s.started = true
	s.addr = ln.Addr().String()
	s.done = make(chan struct{})
	srv := &http.Server{
		Handler:           s.opts.Handler,
		ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		ReadTimeout:       s.opts.ReadTimeout,
		WriteTimeout:      s.opts.WriteTimeout,
		IdleTimeout:       s.opts.IdleTimeout,
		MaxHeaderBytes:    s.opts.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	go func() {
		defer close(s.done)
		s.err = s.serveUntil(ctx, srv, served)
	}()
	s.log.Info(s.opts.Name+" listening", "addr", s.addr)
	return s.addr, nil
}

// serveUntil waits for ctx to end, or for Serve to fail on its own, and
// returns why the server stopped: nil after a clean shutdown.
func (s *Server) serveUntil(ctx context.Context, srv *http.Server, served <-chan error) error {
	select {
	case err := <-served:
		s.log.Error(s.opts.Name+" failed", "addr", s.addr, "err", err)
		return fmt.Errorf("%s: %w", s.opts.Name, err)
	case <-ctx.Done():
	}
	s.log.Info(s.opts.Name+" stopping: finishing requests in flight", "timeout", s.opts.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		err = fmt.Errorf("%s shutdown: %w", s.opts.Name, err)
		_ = srv.Close() // drop what did not finish in time
	}
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = fmt.Errorf("%s: %w", s.opts.Name, serr)
	}
	s.log.Info(s.opts.Name+" stopped", "addr", s.addr)
	return err
}

// Wait blocks until a started server has stopped and returns nil after a
// clean shutdown, or why it stopped otherwise; ErrNotStarted at once if
// Start has not succeeded.
func (s *Server) Wait() error {
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	if done == nil {
		return ErrNotStarted
	}
	<-done
	return s.err
}

// Addr is the bound address once started ("" before).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}
