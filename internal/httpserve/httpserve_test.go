package httpserve

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"
)

func TestServeUntilCancelled(t *testing.T) {
	s := New(Options{Name: "test server", Addr: "127.0.0.1:0", ShutdownTimeout: time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hi") })})
	if err := s.Wait(); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("Wait before Start = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr, err := s.Start(ctx)
	if err != nil || addr == "" || s.Addr() != addr {
		t.Fatalf("Start = %q, %v", addr, err)
	}
	if _, err := s.Start(ctx); err == nil {
		t.Error("second Start succeeded")
	}
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "hi" {
		t.Errorf("body %q", b)
	}
	cancel()
	if err := s.Wait(); err != nil {
		t.Errorf("Wait after cancel = %v, want a clean shutdown", err)
	}
	if _, err := http.Get("http://" + addr + "/"); err == nil {
		t.Error("still serving after shutdown")
	}
}

// A request outliving the shutdown timeout is covered by metrics server
// tests (TestServerShutdownTimeout), which run through this code.
