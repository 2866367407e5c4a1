package metrics

import (
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMessageCounts(t *testing.T) {
	m := New(nil)
	m.Message("111", OutcomeSent)
	m.Message("111", OutcomeSent)
	m.Message("111", OutcomeRetried)
	m.Message("222", OutcomeDropped)
	m.Message("222", OutcomeDeadLettered)
	m.Rescheduled("111", ReasonRateLimit)
	m.Rescheduled("111", ReasonRateLimit)
	m.Rescheduled("222", ReasonPaused)
	m.GraphError("111", "613")
	m.GraphError("111", "613")
	m.GraphError("222", "http_503")
	m.GraphError("222", "timeout")

	tests := []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"sent 111", m.messages.WithLabelValues("111", "sent"), 2},
		{"retried 111", m.messages.WithLabelValues("111", "retried"), 1},
		{"dropped 222", m.messages.WithLabelValues("222", "dropped"), 1},
		{"dead_lettered 222", m.messages.WithLabelValues("222", "dead_lettered"), 1},
		{"rescheduled ratelimit 111", m.rescheduled.WithLabelValues("111", "ratelimit"), 2},
		{"rescheduled paused 222", m.rescheduled.WithLabelValues("222", "paused"), 1},
		{"graph error 613", m.graphErrors.WithLabelValues("111", "613"), 2},
		{"graph error http_503", m.graphErrors.WithLabelValues("222", "http_503"), 1},
		{"graph error timeout", m.graphErrors.WithLabelValues("222", "timeout"), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := testutil.ToFloat64(tt.c); got != tt.want {
				t.Errorf("value = %v, want %v", got, tt.want)
			}
		})
	}

	const want = `
# HELP pagesend_messages_total Messages finished by a worker attempt, by Page and outcome: sent, dropped (permanent failure), dead_lettered (retries exhausted) or retried (transient failure, will run again).
# TYPE pagesend_messages_total counter
pagesend_messages_total{outcome="dead_lettered",page_id="222"} 1
pagesend_messages_total{outcome="dropped",page_id="222"} 1
pagesend_messages_total{outcome="retried",page_id="111"} 1
pagesend_messages_total{outcome="sent",page_id="111"} 2
`
	if err := testutil.GatherAndCompare(m.Gatherer(), strings.NewReader(want), "pagesend_messages_total"); err != nil {
		t.Error(err)
	}
}

func TestHistograms(t *testing.T) {
	m := New(nil)
	m.GraphDuration("111", 30*time.Millisecond)
	m.GraphDuration("111", 1500*time.Millisecond)
	m.GraphDuration("111", 25*time.Second) // past the last bucket
	m.RateLimitWait("111", 0)
	m.RateLimitWait("111", 45*time.Second)
	m.RateLimitWait("111", -time.Second) // clock step: counts as 0

	const want = `
# HELP pagesend_graph_request_duration_seconds Duration of Graph API Send calls, by Page, including failed ones.
# TYPE pagesend_graph_request_duration_seconds histogram
pagesend_graph_request_duration_seconds_bucket{page_id="111",le="0.02"} 0
pagesend_graph_request_duration_seconds_bucket{page_id="111",le="0.05"} 1
pagesend_graph_request_duration_seconds_bucket{page_id="111",le="0.1"} 1
pagesend_graph_request_duration_seconds_bucket{page_id="111",le="0.25"} 1
pagesend_graph_request_duration_seconds_bucket{page_id="111",le="0.5"} 1
pagesend_graph_request_duration_seconds_bucket{page_id="111",le="1"} 1
pagesend_graph_request_duration_seconds_bucket{page_id="111",le="2.5"} 2
pagesend_graph_request_duration_seconds_bucket{page_id="111",le="5"} 2
pagesend_graph_request_duration_seconds_bucket{page_id="111",le="10"} 2
pagesend_graph_request_duration_seconds_bucket{page_id="111",le="20"} 2
pagesend_graph_request_duration_seconds_bucket{page_id="111",le="+Inf"} 3
pagesend_graph_request_duration_seconds_sum{page_id="111"} 26.53
pagesend_graph_request_duration_seconds_count{page_id="111"} 3
# HELP pagesend_ratelimit_wait_seconds Time a message waited for its Page's rate limit before sending, by Page; a wait too long to park a worker is counted as the delay of the reschedule.
# TYPE pagesend_ratelimit_wait_seconds histogram
pagesend_ratelimit_wait_seconds_bucket{page_id="111",le="0.001"} 2
pagesend_ratelimit_wait_seconds_bucket{page_id="111",le="0.005"} 2
pagesend_ratelimit_wait_seconds_bucket{page_id="111",le="0.01"} 2
pagesend_ratelimit_wait_seconds_bucket{page_id="111",le="0.025"} 2
pagesend_ratelimit_wait_seconds_bucket{page_id="111",le="0.05"} 2
pagesend_ratelimit_wait_seconds_bucket{page_id="111",le="0.1"} 2
pagesend_ratelimit_wait_seconds_bucket{page_id="111",le="0.25"} 2
pagesend_ratelimit_wait_seconds_bucket{page_id="111",le="0.5"} 2
pagesend_ratelimit_wait_seconds_bucket{page_id="111",le="1"} 2
pagesend_ratelimit_wait_seconds_bucket{page_id="111",le="2.5"} 2
pagesend_ratelimit_wait_seconds_bucket{page_id="111",le="5"} 2
pagesend_ratelimit_wait_seconds_bucket{page_id="111",le="10"} 2
pagesend_ratelimit_wait_seconds_bucket{page_id="111",le="30"} 2
pagesend_ratelimit_wait_seconds_bucket{page_id="111",le="60"} 3
pagesend_ratelimit_wait_seconds_bucket{page_id="111",le="+Inf"} 3
pagesend_ratelimit_wait_seconds_sum{page_id="111"} 45
pagesend_ratelimit_wait_seconds_count{page_id="111"} 3
`
	if err := testutil.GatherAndCompare(m.Gatherer(), strings.NewReader(want),
		"pagesend_graph_request_duration_seconds", "pagesend_ratelimit_wait_seconds"); err != nil {
		t.Error(err)
	}
}

func TestSetPaused(t *testing.T) {
	m := New(nil)
	m.SetPaused("111", "throttled", true)
	m.SetPaused("111", "manual", true)
	m.SetPaused("222", "throttled", true)
	if got := testutil.CollectAndCount(m.pagePaused); got != 3 {
		t.Fatalf("series after 3 pauses = %d, want 3", got)
	}
	if got := testutil.ToFloat64(m.pagePaused.WithLabelValues("111", "throttled")); got != 1 {
		t.Errorf("paused{111,throttled} = %v, want 1", got)
	}

	m.SetPaused("111", "throttled", false)
	m.SetPaused("333", "never-paused", false) // deleting a missing series is fine

	const want = `
# HELP pagesend_page_paused 1 while a Page is paused for every worker, by Page and reason (for example throttled or manual); the series disappears when the pause ends.
# TYPE pagesend_page_paused gauge
pagesend_page_paused{page_id="111",reason="manual"} 1
pagesend_page_paused{page_id="222",reason="throttled"} 1
`
	if err := testutil.CollectAndCompare(m.pagePaused, strings.NewReader(want)); err != nil {
		t.Error(err)
	}

	m.SetPaused("111", "manual", false)
	m.SetPaused("222", "throttled", false)
	if got := testutil.CollectAndCount(m.pagePaused); got != 0 {
		t.Errorf("series after every pause ended = %d, want 0", got)
	}
}

func TestSetTokenInvalid(t *testing.T) {
	m := New(nil)
	steps := []struct {
		invalid bool
		want    float64
	}{{true, 1}, {true, 1}, {false, 0}, {true, 1}, {false, 0}}
	for i, s := range steps {
		m.SetTokenInvalid("111", s.invalid)
		if got := testutil.ToFloat64(m.tokenInvalid); got != s.want {
			t.Errorf("step %d: SetTokenInvalid(%v): gauge = %v, want %v", i, s.invalid, got, s.want)
		}
	}
	// The series stays at 0 so that the alert resolves.
	if got := testutil.CollectAndCount(m.tokenInvalid); got != 1 {
		t.Errorf("series = %d, want 1", got)
	}
}

func TestNilMetricsIsNoOp(t *testing.T) {
	var m *Metrics
	m.Message("1", OutcomeSent)
	m.Rescheduled("1", ReasonPaused)
	m.GraphError("1", "613")
	m.GraphDuration("1", time.Second)
	m.RateLimitWait("1", time.Second)
	m.SetPaused("1", "manual", true)
	m.SetPaused("1", "manual", false)
	m.SetTokenInvalid("1", true)
	if g := m.Gatherer(); g != nil {
		t.Errorf("nil Metrics Gatherer() = %v, want nil", g)
	}
}

func TestLabel(t *testing.T) {
	long := strings.Repeat("9", 100)
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"page id", "104857600000001", "104857600000001"},
		{"exactly max", long[:MaxLabelLen], long[:MaxLabelLen]},
		{"too long", long, long[:MaxLabelLen]},
		// "é" is 2 bytes: 63 ASCII bytes then é would end at byte 65, so it goes.
		{"rune boundary", long[:63] + "é" + "x", long[:63]},
		{"invalid utf-8", "12\xff34", "12\uFFFD34"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := label(tt.in)
			if got != tt.want {
				t.Errorf("label(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if len(got) > MaxLabelLen {
				t.Errorf("len = %d, want ≤ %d", len(got), MaxLabelLen)
			}
		})
	}
}

func TestLabelValuesTruncated(t *testing.T) {
	m := New(nil)
	long := strings.Repeat("7", 200)
	m.Message(long, OutcomeSent)
	m.Message(long+"different tail", OutcomeSent) // same first 64 bytes: same series
	m.Message("bad\xffid", OutcomeSent)           // would panic in client_golang unsanitised
	m.SetPaused(long, "manual", true)
	m.SetPaused(long, "manual", false)

	if got := testutil.ToFloat64(m.messages.WithLabelValues(long[:MaxLabelLen], OutcomeSent)); got != 2 {
		t.Errorf("truncated series = %v, want 2", got)
	}
	if got := testutil.CollectAndCount(m.messages); got != 2 {
		t.Errorf("series = %d, want 2", got)
	}
	if got := testutil.CollectAndCount(m.pagePaused); got != 0 {
		t.Errorf("paused series after unpause of a long id = %d, want 0", got)
	}
}

func TestNewSameRegistryTwice(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, b := New(reg), New(reg)
	a.Message("1", OutcomeSent)
	b.Message("1", OutcomeSent)
	if got := testutil.ToFloat64(a.messages.WithLabelValues("1", OutcomeSent)); got != 2 {
		t.Errorf("shared counter = %v, want 2", got)
	}
}

func TestNewPanicsOnConflictingCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "pagesend_messages_total", Help: "other"}))
	defer func() {
		if recover() == nil {
			t.Error("New did not panic on a conflicting collector")
		}
	}()
	New(reg)
}

func TestConcurrentUpdates(t *testing.T) {
	m := New(nil)
	const goroutines, each = 16, 500
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range each {
				m.Message("1", OutcomeSent)
				m.RateLimitWait("1", time.Millisecond)
				m.SetPaused("1", "throttled", true)
				m.SetPaused("1", "throttled", false)
			}
		})
	}
	wg.Wait()
	if got := testutil.ToFloat64(m.messages.WithLabelValues("1", OutcomeSent)); got != goroutines*each {
		t.Errorf("count = %v, want %d", got, goroutines*each)
	}
}

func TestNewRegistry(t *testing.T) {
	reg := NewRegistry("1.2.3")
	m := New(reg)
	m.Message("1", OutcomeSent)

	want := `
# HELP pagesend_build_info Always 1; the labels tell which pagesend version, built with which Go version, is running.
# TYPE pagesend_build_info gauge
pagesend_build_info{goversion="` + runtime.Version() + `",version="1.2.3"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "pagesend_build_info"); err != nil {
		t.Error(err)
	}
	for _, name := range []string{"go_goroutines", "pagesend_build_info", "pagesend_messages_total"} {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n == 0 {
			t.Errorf("%s: %d series, err %v; want some", name, n, err)
		}
	}
	if got := m.Gatherer(); got != prometheus.Gatherer(reg) {
		t.Errorf("Gatherer() = %v, want the registry passed to New", got)
	}
}

func TestNewRegistryUnknownVersion(t *testing.T) {
	reg := NewRegistry("")
	if n, err := testutil.GatherAndCount(reg, "pagesend_build_info"); err != nil || n != 1 {
		t.Errorf("pagesend_build_info: %d series, err %v; want 1", n, err)
	}
}

// TestLint runs promlint on every pagesend metric: names, units and help
// text follow the Prometheus conventions.
func TestLint(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newBuildInfo("1.0.0"))
	m := New(reg)
	m.Message("1", OutcomeSent)
	m.Rescheduled("1", ReasonPaused)
	m.GraphError("1", "613")
	m.GraphDuration("1", time.Second)
	m.RateLimitWait("1", time.Second)
	m.SetPaused("1", "manual", true)
	m.SetTokenInvalid("1", true)
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}
