package demo

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pagesend/pagesend/internal/job"
	"github.com/pagesend/pagesend/internal/testwait"
)

// syncBuffer lets the test read what Run has printed so far while Run is
// still writing.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func logger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func TestRunEveryOutcomeAsExpected(t *testing.T) {
	var out syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	sum, err := Run(ctx, Options{Duration: time.Millisecond, OpsAddr: "127.0.0.1:0", Out: &out, Logger: logger(t)})
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}

	if sum.Mismatches != 0 {
		t.Errorf("Mismatches = %d", sum.Mismatches)
	}
	want := map[string]bool{}
	for _, s := range samples() {
		want[s.expected] = true
	}
	rows := map[string]Row{}
	for _, r := range sum.Rows {
		rows[r.Label] = r
		delete(want, r.Expected)
		if !r.OK {
			t.Errorf("row %+v not OK", r)
		}
	}
	if len(want) > 0 {
		t.Errorf("expected outcomes missing from the rows: %v", want)
	}
	if n := sum.Counts[job.OutcomeSent]; n < 8 {
		t.Errorf("sent = %d, want at least 8", n)
	}
	if n := sum.Counts[job.OutcomeDropped]; n != 2 {
		t.Errorf("dropped = %d, want 2", n)
	}
	if n := sum.Counts[job.OutcomeDeadLettered]; n != 1 {
		t.Errorf("dead_lettered = %d, want 1", n)
	}
	for _, o := range outcomeOrder {
		if sum.Metrics[o] != sum.Counts[o] {
			t.Errorf("pagesend_messages_total{outcome=%s} = %d, table has %d", o, sum.Metrics[o], sum.Counts[o])
		}
	}

	stale := 0
	for _, r := range sum.Rows {
		if r.PageID == pageStale {
			stale++
			if r.Calls < 1 || r.Outcome != job.OutcomeSent {
				t.Errorf("stale-token row %+v: want sent with at least one call", r)
			}
		}
	}
	if stale != 3 {
		t.Errorf("%d rows for page %s, want 3", stale, pageStale)
	}
	for label, calls := range map[string]int{"throttled (613)": 2, "unavailable (551)": 1, "window closed (10901)": 1, "idempotent x2": 1} {
		if r, ok := rows[label]; !ok || r.Calls != calls {
			t.Errorf("row %q = %+v, want %d calls", label, r, calls)
		}
	}

	text := out.String()
	for _, s := range []string{
		"keeps nothing",
		"nothing reaches Facebook",
		"LABEL", "EXPECTED", "GRAPH CALLS",
		"token rejected (190) → paused",
		"→ resumed",
		"all 14 outcomes as expected",
		"agrees with the table",
	} {
		if !strings.Contains(text, s) {
			t.Errorf("output lacks %q", s)
		}
	}
	if sum.OpsAddr == "" || strings.HasSuffix(sum.OpsAddr, ":0") {
		t.Errorf("OpsAddr = %q", sum.OpsAddr)
	}
}

// TestOpsServerWhileRunning checks the ops endpoints answer during the
// demo, and that a busy address falls back to a free port.
func TestOpsServerWhileRunning(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	var out syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan *Summary, 1)
	go func() {
		sum, err := Run(ctx, Options{OpsAddr: busy.Addr().String(), Out: &out, Logger: logger(t)})
		if err != nil {
			t.Error(err)
		}
		done <- sum
	}()

	var addr string
	waitFor(t, 60*time.Second, "the summary and the serving line", func() bool {
		s := out.String()
		if i := strings.Index(s, "ops server up at http://"); i >= 0 {
			addr = strings.Fields(s[i+len("ops server up at http://"):])[0]
			return true
		}
		return false
	})
	if !strings.Contains(out.String(), "is busy; using 127.0.0.1:0") {
		t.Errorf("no fallback notice in:\n%s", out.String())
	}
	if addr == busy.Addr().String() {
		t.Fatalf("serving on the busy address %s", addr)
	}
	for path, want := range map[string]string{"/healthz": "", "/readyz": "", "/metrics": "pagesend_messages_total", "/monitor/api/queues": "default"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("GET %s = %d, body lacks %q", path, resp.StatusCode, want)
		}
	}

	cancel() // Ctrl-C
	select {
	case sum := <-done:
		if sum == nil || sum.Mismatches != 0 || sum.OpsAddr != addr {
			t.Errorf("summary %+v", sum)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// waitFor waits for cond, polling with a deadline.
var waitFor = testwait.Until
