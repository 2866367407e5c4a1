package graphtest

import (
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/pagesend/pagesend/graphapi"
	"golang.org/x/time/rate"
)

// MaxBodyBytes bounds the request bodies the fake reads. Send API bodies are
// a few kilobytes at most; a larger one is answered with error 100.
const MaxBodyBytes = 1 << 20

// Options configures a Server. The zero value accepts any non-empty token
// on any Page at any version, demands no appsecret_proof, enforces no rate
// limit and answers at once.
type Options struct {
	// Tokens maps a Page id to the access token the fake demands for it
	// (Authorization: Bearer …). A missing token is answered with error 190,
	// a wrong one with 190/467, and a Page not in the map with 100/33 ("does
	// not exist"). Calls to /me/messages go to the Page whose token they
	// carry. Nil means any non-empty token is accepted for any Page.
	Tokens map[string]string
	// AppSecret, when set, makes every call carry appsecret_proof equal to
	// graphapi.AppSecretProof(AppSecret, token), or the timestamped
	// graphapi.AppSecretProofAt with an appsecret_time within five minutes
	// of Now; otherwise the call is answered with error 100.
	AppSecret string
	// Latency is added before every answer. The wait ends early when the
	// client goes away or the server closes.
	Latency time.Duration
	// Version, when set, is the only path version served ("v25.0"); calls
	// to another get HTTP 404 with error 100. Zero serves any version.
	Version string
	// Rate and Burst are the token bucket of every Page not configured with
	// SetRate, in calls per second. Zero Rate means no limit; a Burst below
	// 1 is taken as 1.
	Rate  float64
	Burst int
	// MaxCalls bounds how many calls are kept for Calls; older ones are
	// forgotten (CallCount still counts them). Zero keeps every call, which
	// long benchmarks may not want.
	MaxCalls int
	// Now is the clock for rate limiting, appsecret_time and Call.Time.
	// Zero means time.Now.
	Now func() time.Time
}

// Server is a running fake Graph API. Create it with NewServer or Start;
// its methods are safe for concurrent use.
type Server struct {
	opts   Options
	ts     *httptest.Server
	byTok  map[string]string // token → Page id, for /me
	done   chan struct{}     // closed by Close: releases hanging answers
	once   sync.Once
	traceP string // fbtrace_id prefix, random per server

	mu         sync.Mutex
	count      int // calls since start or ClearCalls
	msgSeq     uint64
	traceSeq   uint64
	calls      []Call
	wake       chan struct{} // non-nil while WaitCalls waits; closed on a call
	limits     map[string]*rate.Limiter
	byCall     map[int]Answer
	byRcpt     map[string][]Answer
	byPage     map[string][]Answer
	def        Answer
	transports []*http.Transport
}

// NewServer starts a fake on a loopback port, like httptest.NewServer. The
// caller must Close it.
func NewServer(opts Options) *Server {
	s := &Server{
		opts:   opts,
		done:   make(chan struct{}),
		traceP: randomPrefix(),
		limits: make(map[string]*rate.Limiter),
		byCall: make(map[int]Answer),
		byRcpt: make(map[string][]Answer),
		byPage: make(map[string][]Answer),
	}
	if s.opts.Now == nil {
		s.opts.Now = time.Now
	}
	if opts.Tokens != nil {
		s.opts.Tokens = make(map[string]string, len(opts.Tokens))
		s.byTok = make(map[string]string, len(opts.Tokens))
		for page, tok := range opts.Tokens {
			s.opts.Tokens[page] = tok
			// Two Pages with one token: /me picks the smaller id, so the
			// choice does not depend on map order.
			if prev, ok := s.byTok[tok]; !ok || page < prev {
				s.byTok[tok] = page
			}
		}
	}
	s.ts = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Start starts a fake for one test or benchmark and closes it at its
// cleanup.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s := NewServer(opts)
	tb.Cleanup(s.Close)
	return s
}

// URL is the base URL to give graphapi.ClientOptions.BaseURL, e.g.
// "http://127.0.0.1:40123", without a version.
func (s *Server) URL() string { return s.ts.URL }

// Close releases calls still waiting on Hang, SlowBody or Latency (their
// connections are dropped), shuts the server down, and closes the idle
// connections of clients made with NewClient. It may be called more than
// once.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.done)
		s.ts.Close()
		s.mu.Lock()
		ts := s.transports
		s.transports = nil
		s.mu.Unlock()
		for _, t := range ts {
			t.CloseIdleConnections()
		}
	})
}

// NewClient returns a graphapi.Client that calls this fake. It fills the
// zero fields of opts from the server: BaseURL, Version, AppSecret and Now
// (so timestamped proofs use the fake's clock), and a Transport of its own
// whose idle connections Close closes. To test a client that lacks the app
// secret, use graphapi.NewClient with BaseURL set to URL.
func (s *Server) NewClient(opts graphapi.ClientOptions) (*graphapi.Client, error) {
	opts.BaseURL = s.URL()
	if opts.Version == "" {
		opts.Version = s.opts.Version
	}
	if opts.AppSecret == "" {
		opts.AppSecret = graphapi.Secret(s.opts.AppSecret)
	}
	if opts.Now == nil {
		opts.Now = s.opts.Now
	}
	if opts.Transport == nil {
		t := graphapi.NewTransport()
		s.mu.Lock()
		s.transports = append(s.transports, t)
		s.mu.Unlock()
		opts.Transport = t
	}
	return graphapi.NewClient(opts)
}

// Client is NewClient with default options for a test: it fails tb if the
// client cannot be made.
func (s *Server) Client(tb testing.TB) *graphapi.Client {
	tb.Helper()
	c, err := s.NewClient(graphapi.ClientOptions{})
	if err != nil {
		tb.Fatalf("graphtest: %v", err)
	}
	return c
}

// serve handles one call: check it, decide its answer and record it under
// the lock, then deliver the answer outside it.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	c := Call{Time: s.opts.Now(), Method: r.Method, Path: r.URL.Path}
	body, bodyErr := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	c.Body = body
	if mbe := (*http.MaxBytesError)(nil); errors.As(bodyErr, &mbe) {
		bodyErr = errors.New("request body over 1 MiB")
	}
	if bodyErr == nil {
		req, err := graphapi.DecodeRequest(body)
		if err == nil {
			c.Request = req
			c.Recipient = recipientOf(req)
			err = req.Validate()
		}
		bodyErr = err
	}
	rejected, ok := s.check(r, &c)
	p := s.decide(&c, rejected, ok, bodyErr)
	s.deliver(w, r, p)
}

// randomPrefix makes fbtrace_ids differ between servers, as Meta's do
// between calls; a counter after it keeps them unique within one.
func randomPrefix() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 8)
	for i := range b {
		b[i] = alphabet[rand.IntN(len(alphabet))]
	}
	return string(b)
}
