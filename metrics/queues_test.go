package metrics

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pagesend/pagesend/internal/redistest"
)

// flakyInspector fails GetQueueInfo for a queue a set number of times.
type flakyInspector struct {
	infos map[string]*asynq.QueueInfo
	fails map[string]int
}

func (f *flakyInspector) Queues() ([]string, error) {
	return []string{"default", "high"}, nil
}

func (f *flakyInspector) GetQueueInfo(q string) (*asynq.QueueInfo, error) {
	if f.fails[q] > 0 {
		f.fails[q]--
		return nil, errors.New("NOKEY: MEMORY USAGE of a vanished task (#728)")
	}
	return f.infos[q], nil
}

func TestQueueCollectorSurvives728(t *testing.T) {
	in := &flakyInspector{
		infos: map[string]*asynq.QueueInfo{
			"default": {Queue: "default", Size: 5, Pending: 3, Archived: 2, Latency: 1500 * time.Millisecond, ProcessedTotal: 10, FailedTotal: 1},
			"high":    {Queue: "high", Size: 1, Pending: 1, Paused: true},
		},
		fails: map[string]int{"default": 1, "high": 2},
	}
	c := NewQueueCollector(in)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)

	// default fails once (retried, exported); high fails twice (skipped,
	// counted) — and its failure does not blank default.
	want := `
# HELP asynq_queue_size Tasks in the queue, all states.
# TYPE asynq_queue_size gauge
asynq_queue_size{queue="default"} 5
# HELP asynq_queue_latency_seconds How long the oldest pending task has waited.
# TYPE asynq_queue_latency_seconds gauge
asynq_queue_latency_seconds{queue="default"} 1.5
# HELP pagesend_queue_scrape_errors_total Times reading a queue's state from Redis failed during a scrape; that queue's asynq_* series were missing from that scrape.
# TYPE pagesend_queue_scrape_errors_total counter
pagesend_queue_scrape_errors_total{queue="high"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "asynq_queue_size", "asynq_queue_latency_seconds", "pagesend_queue_scrape_errors_total"); err != nil {
		t.Fatal(err)
	}
	// Next scrape: high reads fine again.
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP asynq_queue_paused_total 1 if the queue is paused in asynq, else 0.
# TYPE asynq_queue_paused_total gauge
asynq_queue_paused_total{queue="default"} 0
asynq_queue_paused_total{queue="high"} 1
`), "asynq_queue_paused_total"); err != nil {
		t.Fatal(err)
	}
}

func TestQueueCollectorOnRealRedis(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	opt := asynq.RedisClientOpt{Addr: rs.Addr()}
	client := asynq.NewClient(opt)
	defer client.Close()
	for range 3 {
		if _, err := client.Enqueue(asynq.NewTask("t", nil), asynq.Queue("default")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := client.Enqueue(asynq.NewTask("t", nil), asynq.Queue("low"), asynq.ProcessIn(time.Hour)); err != nil {
		t.Fatal(err)
	}
	in := asynq.NewInspector(opt)
	defer in.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewQueueCollector(in))
	want := `
# HELP asynq_tasks_enqueued_total Tasks in the queue by state (a gauge, named as asynq's x/metrics names it).
# TYPE asynq_tasks_enqueued_total gauge
asynq_tasks_enqueued_total{queue="default",state="active"} 0
asynq_tasks_enqueued_total{queue="default",state="aggregating"} 0
asynq_tasks_enqueued_total{queue="default",state="archived"} 0
asynq_tasks_enqueued_total{queue="default",state="completed"} 0
asynq_tasks_enqueued_total{queue="default",state="pending"} 3
asynq_tasks_enqueued_total{queue="default",state="retry"} 0
asynq_tasks_enqueued_total{queue="default",state="scheduled"} 0
asynq_tasks_enqueued_total{queue="low",state="active"} 0
asynq_tasks_enqueued_total{queue="low",state="aggregating"} 0
asynq_tasks_enqueued_total{queue="low",state="archived"} 0
asynq_tasks_enqueued_total{queue="low",state="completed"} 0
asynq_tasks_enqueued_total{queue="low",state="pending"} 0
asynq_tasks_enqueued_total{queue="low",state="retry"} 0
asynq_tasks_enqueued_total{queue="low",state="scheduled"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "asynq_tasks_enqueued_total"); err != nil {
		t.Fatal(err)
	}
	n, err := testutil.GatherAndCount(reg, QueueMetricNames...)
	if err != nil || n == 0 {
		t.Fatalf("GatherAndCount = %d, %v", n, err)
	}
}
