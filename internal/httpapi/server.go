package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/pagesend/pagesend/internal/httpserve"
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
	srv  *httpserve.Server
}

// NewServer returns a server for opts.
func NewServer(opts ServerOptions) *Server {
	if opts.Addr == "" {
		opts.Addr = DefaultAddr
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = DefaultShutdownTimeout
	}
	return &Server{opts: opts, srv: httpserve.New(httpserve.Options{
		Name:              "api server",
		Addr:              opts.Addr,
		Handler:           opts.Handler,
		ShutdownTimeout:   opts.ShutdownTimeout,
		Logger:            opts.Logger,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
	})}
}

// Start listens and returns the bound address once connections can be
// made, serving them in the background. When ctx ends the server stops
// accepting, lets requests in flight finish within ShutdownTimeout, and
// Wait reports the result.
func (s *Server) Start(ctx context.Context) (string, error) {
	if s.opts.Handler == nil {
		return "", errors.New("httpapi: ServerOptions.Handler is required")
	}
	return s.srv.Start(ctx)
}

// Wait blocks until a started server has stopped, and returns nil after a
// clean shutdown.
func (s *Server) Wait() error { return s.srv.Wait() }

// ListenAndServe is Start followed by Wait.
func (s *Server) ListenAndServe(ctx context.Context) error {
	if _, err := s.Start(ctx); err != nil {
		return err
	}
	return s.Wait()
}

// Addr is the bound address once started ("" before).
func (s *Server) Addr() string { return s.srv.Addr() }
