package httpapi

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

// DefaultAddr is where `pagesend api` listens unless PAGESEND_API_ADDR
// says otherwise.
const DefaultAddr = ":8080"

// The HTTP server's limits. A client that trickles its headers or body, or
// never reads its answer, holds a connection at most this long.
const (
	// ReadHeaderTimeout bounds reading a request's headers (Slowloris).
	ReadHeaderTimeout = 5 * time.Second
	// ReadTimeout bounds reading a whole request, a MaxBody body
	// included: 1 MiB in 30 s is 35 KB/s, slower than any producer.
	ReadTimeout = 30 * time.Second
	// WriteTimeout bounds a request from its headers to its answer
	// written; it exceeds DefaultRedisTimeout so a slow Redis gets its 503
	// out.
	WriteTimeout = 60 * time.Second
	// IdleTimeout closes keep-alive connections idle this long.
	IdleTimeout = 120 * time.Second
	// MaxHeaderBytes bounds request headers; a bearer key and the usual
	// headers take a few hundred bytes.
	MaxHeaderBytes = 32 << 10
	// DefaultShutdownTimeout is how long requests in flight may finish
	// after the server is told to stop.
	DefaultShutdownTimeout = 10 * time.Second
)

// ServerOptions configures a Server.
type ServerOptions struct {
	// Addr is the TCP address, such as ":8080" or "127.0.0.1:0" (any free
	// port; see Server.Addr). "": DefaultAddr.
	Addr string
	// Handler serves requests, normally an *API. Required.
	Handler http.Handler
	// ShutdownTimeout bounds the graceful shutdown; connections still
	// open then are closed. Zero: DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Logger receives start, stop and connection errors. Nil: discard.
	Logger *slog.Logger
}

// Server serves the API over HTTP with the limits above. Its life is
// Start, which listens at once and serves in the background until its
// context ends, then Wait, which returns once the server has shut down
// gracefully; ListenAndServe does both. A Server runs once.
type Server struct {
	opts ServerOptions
	log  *slog.Logger

	mu   sync.Mutex
	addr string
	done chan struct{} // closed when the server has stopped
	err  error         // why; read after done is closed
}

// NewServer returns a server for opts.
func NewServer(opts ServerOptions) *Server {
	if opts.Addr == "" {
		opts.Addr = DefaultAddr
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = DefaultShutdownTimeout
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{opts: opts, log: log}
}

// Start listens and returns the bound address once connections can be
// made, serving them in the background. When ctx ends the server stops
// accepting, lets requests in flight finish within ShutdownTimeout, and
// Wait reports the result.
func (s *Server) Start(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done != nil {
		return "", errors.New("httpapi: server already started")
	}
	if s.opts.Handler == nil {
		return "", errors.New("httpapi: ServerOptions.Handler is required")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.opts.Addr)
	if err != nil {
		return "", fmt.Errorf("api server: %w", err)
	}
	s.addr = ln.Addr().String()
	s.done = make(chan struct{})
	srv := &http.Server{
		Handler:           s.opts.Handler,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	go func() {
		defer close(s.done)
		s.err = s.serveUntil(ctx, srv, served)
	}()
	s.log.Info("api server listening", "addr", s.addr)
	return s.addr, nil
}

// serveUntil waits for ctx to end, or for Serve to fail on its own, and
// returns why the server stopped: nil after a clean shutdown.
func (s *Server) serveUntil(ctx context.Context, srv *http.Server, served <-chan error) error {
	select {
	case err := <-served:
		return fmt.Errorf("api server: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("api server stopping: finishing requests in flight", "timeout", s.opts.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		err = fmt.Errorf("api server shutdown: %w", err)
		_ = srv.Close()
	}
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = fmt.Errorf("api server: %w", serr)
	}
	s.log.Info("api server stopped", "addr", s.addr)
	return err
}

// Wait blocks until a started server has stopped, and returns nil after a
// clean shutdown.
func (s *Server) Wait() error {
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	if done == nil {
		return errors.New("httpapi: server not started")
	}
	<-done
	return s.err
}

// ListenAndServe is Start followed by Wait.
func (s *Server) ListenAndServe(ctx context.Context) error {
	if _, err := s.Start(ctx); err != nil {
		return err
	}
	return s.Wait()
}

// Addr is the bound address once started ("" before).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}
