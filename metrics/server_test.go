package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// startServer starts an ops server on a free loopback port and stops it
// when the test ends, failing the test if it does not stop cleanly.
func startServer(t *testing.T, opts ServerOptions) (base string, s *Server, stop func() error) {
	t.Helper()
	opts.Addr = "127.0.0.1:0"
	s = NewServer(opts)
	ctx, cancel := context.WithCancel(t.Context())
	addr, err := s.Start(ctx)
	if err != nil {
		cancel()
		t.Fatalf("Start: %v", err)
	}
	var stopped atomic.Bool
	stop = func() error {
		cancel()
		stopped.Store(true)
		return s.Wait()
	}
	t.Cleanup(func() {
		if stopped.Load() {
			return
		}
		if err := stop(); err != nil {
			t.Errorf("Wait after cancel: %v", err)
		}
	})
	return "http://" + addr, s, stop
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	return do(t, http.MethodGet, url)
}

func do(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp.StatusCode, string(body)
}

func TestServerEndpoints(t *testing.T) {
	reg := NewRegistry("test")
	m := New(reg)
	m.Message("111", OutcomeSent)
	monitor := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "monitor saw %s", r.URL.Path)
	})
	base, s, _ := startServer(t, ServerOptions{
		Registry: reg,
		Mounts:   map[string]http.Handler{"/monitor/": monitor},
	})
	if got := "http://" + s.Addr(); got != base {
		t.Errorf("Addr() = %q, want the address Start returned, %q", got, base)
	}

	tests := []struct {
		method, path string
		wantCode     int
		wantBody     string // substring
	}{
		{"GET", "/healthz", 200, "ok"},
		{"HEAD", "/healthz", 200, ""},
		{"GET", "/readyz", 200, "ok"},
		{"GET", "/metrics", 200, `pagesend_messages_total{outcome="sent",page_id="111"} 1`},
		{"GET", "/metrics", 200, `pagesend_build_info{goversion=`},
		{"GET", "/metrics", 200, "go_goroutines"},
		{"GET", "/metrics", 200, "promhttp_metric_handler_requests_total"},
		{"GET", "/monitor/queues/default", 200, "monitor saw /monitor/queues/default"},
		{"GET", "/", 200, "/monitor/"},
		{"GET", "/nope", 404, ""},
		{"GET", "/healthz/extra", 404, ""},
		{"POST", "/healthz", 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			code, body := do(t, tt.method, base+tt.path)
			if code != tt.wantCode {
				t.Errorf("status = %d, want %d; body:\n%s", code, tt.wantCode, body)
			}
			if !strings.Contains(body, tt.wantBody) {
				t.Errorf("body does not contain %q:\n%s", tt.wantBody, body)
			}
		})
	}
	if _, body := get(t, base+"/healthz"); body != "ok" {
		t.Errorf("/healthz body = %q, want exactly %q", body, "ok")
	}
}

func TestServerReadyz(t *testing.T) {
	var readyErr atomic.Pointer[error]
	base, _, _ := startServer(t, ServerOptions{
		Ready: func(ctx context.Context) error {
			if p := readyErr.Load(); p != nil {
				return *p
			}
			return nil
		},
	})

	if code, body := get(t, base+"/readyz"); code != 200 || body != "ok" {
		t.Errorf("ready: /readyz = %d %q, want 200 \"ok\"", code, body)
	}

	notReady := errors.New("redis: dial tcp 127.0.0.1:6379: connect: connection refused")
	readyErr.Store(&notReady)
	if code, body := get(t, base+"/readyz"); code != 503 || body != notReady.Error() {
		t.Errorf("not ready: /readyz = %d %q, want 503 %q", code, body, notReady.Error())
	}
	// Liveness does not depend on readiness.
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz while not ready = %d, want 200", code)
	}

	readyErr.Store(nil)
	if code, _ := get(t, base+"/readyz"); code != 200 {
		t.Errorf("ready again: /readyz = %d, want 200", code)
	}
}

func TestServerReadyzTimeout(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	base, _, _ := startServer(t, ServerOptions{
		ReadyTimeout: 50 * time.Millisecond,
		Ready: func(context.Context) error {
			<-release // a check that ignores its context
			return nil
		},
	})
	// A client deadline far above ReadyTimeout, so a handler that waits for
	// the check fails the test instead of hanging it.
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(base + "/readyz")
	if err != nil {
		t.Fatalf("/readyz: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 503 || !strings.Contains(string(body), "did not finish within 50ms") {
		t.Errorf("/readyz = %d %q, want 503 and a timeout reason", resp.StatusCode, body)
	}
}

func TestServerReadyzContextDeadline(t *testing.T) {
	base, _, _ := startServer(t, ServerOptions{
		Ready: func(ctx context.Context) error {
			dl, ok := ctx.Deadline()
			if !ok {
				return errors.New("no deadline")
			}
			if left := time.Until(dl); left > DefaultReadyTimeout {
				return fmt.Errorf("deadline in %s, want ≤ %s", left, DefaultReadyTimeout)
			}
			return nil
		},
	})
	if code, body := get(t, base+"/readyz"); code != 200 {
		t.Errorf("/readyz = %d %q, want 200", code, body)
	}
}

// failingCollector fails every scrape, as asynq's queue collector does now
// and then.
type failingCollector struct{ desc *prometheus.Desc }

func (c failingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }
func (c failingCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.NewInvalidMetric(c.desc, errors.New("queue stats failed"))
}

func TestServerMetricsSurviveFailingCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	New(reg).Message("111", OutcomeDropped)
	reg.MustRegister(failingCollector{prometheus.NewDesc("asynq_queue_size", "test", nil, nil)})
	base, _, _ := startServer(t, ServerOptions{Registry: reg})
	code, body := get(t, base+"/metrics")
	if code != 200 || !strings.Contains(body, `pagesend_messages_total{outcome="dropped",page_id="111"} 1`) {
		t.Errorf("/metrics = %d, want 200 with pagesend_messages_total; body:\n%s", code, body)
	}
}

func TestServerStopsOnCancel(t *testing.T) {
	base, s, stop := startServer(t, ServerOptions{})
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Fatalf("/healthz = %d before stop", code)
	}
	done := make(chan error, 1)
	go func() { done <- stop() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Wait = %v, want nil after a clean shutdown", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return after the context was cancelled")
	}
	if conn, err := net.Dial("tcp", s.Addr()); err == nil {
		conn.Close()
		t.Errorf("%s still accepts connections after shutdown", s.Addr())
	}
	if err := s.Wait(); err != nil {
		t.Errorf("second Wait = %v, want nil", err)
	}
}

func TestServerListenAndServe(t *testing.T) {
	s := NewServer(ServerOptions{Addr: "127.0.0.1:0"})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.ListenAndServe(ctx) }()

	deadline := time.Now().Add(10 * time.Second)
	for s.Addr() == "" {
		if time.Now().After(deadline) {
			t.Fatal("ListenAndServe did not start listening")
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
	if code, _ := get(t, "http://"+s.Addr()+"/healthz"); code != 200 {
		t.Errorf("/healthz = %d, want 200", code)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ListenAndServe = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ListenAndServe did not return after cancel")
	}
}

func TestServerShutdownTimeout(t *testing.T) {
	entered := make(chan struct{})
	var once sync.Once
	release := make(chan struct{})
	defer close(release)
	left := make(chan struct{}, 1)
	hang := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { left <- struct{}{} }()
		once.Do(func() { close(entered) })
		select {
		case <-release:
		case <-r.Context().Done(): // the forced Close cancels it
		}
	})
	s := NewServer(ServerOptions{
		Addr:            "127.0.0.1:0",
		ShutdownTimeout: 50 * time.Millisecond,
		Mounts:          map[string]http.Handler{"/hang": hang},
	})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	addr, err := s.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		resp, err := http.Get("http://" + addr + "/hang")
		if err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	cancel()
	if err := s.Wait(); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait = %v, want a shutdown deadline error", err)
	}
	// Past the deadline the connection is closed, which cancels the request.
	select {
	case <-left:
	case <-time.After(5 * time.Second):
		t.Error("the hung request was not cancelled after the shutdown timeout")
	}
}

func TestServerLifecycleErrors(t *testing.T) {
	s := NewServer(ServerOptions{Addr: "127.0.0.1:0"})
	if err := s.Wait(); !errors.Is(err, ErrServerNotStarted) {
		t.Errorf("Wait before Start = %v, want ErrServerNotStarted", err)
	}
	if s.Addr() != "" {
		t.Errorf("Addr before Start = %q, want \"\"", s.Addr())
	}
	ctx, cancel := context.WithCancel(t.Context())
	addr, err := s.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Start(ctx); err == nil {
		t.Error("second Start succeeded, want an error")
	}

	busy := NewServer(ServerOptions{Addr: addr})
	if _, err := busy.Start(t.Context()); err == nil {
		t.Errorf("Start on busy %s succeeded, want an error", addr)
	}
	if err := busy.Wait(); !errors.Is(err, ErrServerNotStarted) {
		t.Errorf("Wait after a failed Start = %v, want ErrServerNotStarted", err)
	}

	cancel()
	if err := s.Wait(); err != nil {
		t.Errorf("Wait = %v", err)
	}
}

func TestNewServerDefaults(t *testing.T) {
	s := NewServer(ServerOptions{})
	if s.opts.Addr != DefaultOpsAddr || s.opts.Registry == nil ||
		s.opts.ReadyTimeout != DefaultReadyTimeout || s.opts.ShutdownTimeout != DefaultShutdownTimeout {
		t.Errorf("defaults not applied: %+v", s.opts)
	}
}

func TestNewServerRejectsBadMounts(t *testing.T) {
	h := http.NotFoundHandler()
	for _, path := range []string{"/", "/metrics", "/healthz", "/readyz", "monitor/", ""} {
		t.Run(path, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("NewServer with mount %q did not panic", path)
				}
			}()
			NewServer(ServerOptions{Mounts: map[string]http.Handler{path: h}})
		})
	}
	t.Run("nil handler", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Error("NewServer with a nil mount handler did not panic")
			}
		}()
		NewServer(ServerOptions{Mounts: map[string]http.Handler{"/monitor/": nil}})
	})
}
