package metrics

import (
	"sync"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
)

// QueueInspector is the part of *asynq.Inspector the queue collector uses.
type QueueInspector interface {
	Queues() ([]string, error)
	GetQueueInfo(queue string) (*asynq.QueueInfo, error)
}

// QueueCollector exports asynq's queue state on every scrape, under the
// metric names of github.com/hibiken/asynq/x/metrics so existing asynq
// dashboards work unchanged.
//
// It replaces x/metrics' collector because of asynq issue #728: in v0.26.0
// a task deleted while GetQueueInfo samples memory makes the call fail, and
// x/metrics then exports nothing for any queue. This collector retries
// such a queue once and, if it still fails, skips only that queue and
// counts pagesend_queue_scrape_errors_total, so one racing task cannot
// blank the whole dashboard.
type QueueCollector struct {
	in     QueueInspector
	errors *prometheus.CounterVec

	enqueued, size, latency, memory, paused *prometheus.Desc
	processed, failed                       *prometheus.Desc
	mu                                      sync.Mutex // one scrape at a time: each costs Redis work
}

// QueueMetricNames are the metric names a QueueCollector exports.
var QueueMetricNames = []string{
	"asynq_tasks_enqueued_total",
	"asynq_queue_size",
	"asynq_queue_latency_seconds",
	"asynq_queue_memory_usage_approx_bytes",
	"asynq_tasks_processed_total",
	"asynq_tasks_failed_total",
	"asynq_queue_paused_total",
	"pagesend_queue_scrape_errors_total",
}

// NewQueueCollector returns a collector over in. Register it on the
// registry the ops server exposes.
func NewQueueCollector(in QueueInspector) *QueueCollector {
	q := []string{"queue"}
	return &QueueCollector{
		in: in,
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pagesend_queue_scrape_errors_total",
			Help: "Times reading a queue's state from Redis failed during a scrape; that queue's asynq_* series were missing from that scrape.",
		}, q),
		enqueued: prometheus.NewDesc("asynq_tasks_enqueued_total",
			"Tasks in the queue by state (a gauge, named as asynq's x/metrics names it).", []string{"queue", "state"}, nil),
		size:    prometheus.NewDesc("asynq_queue_size", "Tasks in the queue, all states.", q, nil),
		latency: prometheus.NewDesc("asynq_queue_latency_seconds", "How long the oldest pending task has waited.", q, nil),
		memory:  prometheus.NewDesc("asynq_queue_memory_usage_approx_bytes", "Approximate Redis memory the queue uses (sampled).", q, nil),
		paused:  prometheus.NewDesc("asynq_queue_paused_total", "1 if the queue is paused in asynq, else 0.", q, nil),
		processed: prometheus.NewDesc("asynq_tasks_processed_total",
			"Tasks processed (succeeded or failed) since the queue was created.", q, nil),
		failed: prometheus.NewDesc("asynq_tasks_failed_total",
			"Task attempts that failed since the queue was created.", q, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *QueueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.enqueued, c.size, c.latency, c.memory, c.paused, c.processed, c.failed} {
		ch <- d
	}
	c.errors.Describe(ch)
}

// Collect implements prometheus.Collector.
func (c *QueueCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	queues, err := c.in.Queues()
	if err != nil {
		c.errors.WithLabelValues("").Inc()
	}
	for _, q := range queues {
		info, err := c.in.GetQueueInfo(q)
		if err != nil {
			info, err = c.in.GetQueueInfo(q) // #728 is a race; a second read usually passes
		}
		if err != nil {
			c.errors.WithLabelValues(label(q)).Inc()
			continue
		}
		c.collectQueue(ch, info)
	}
	c.errors.Collect(ch)
}

func (c *QueueCollector) collectQueue(ch chan<- prometheus.Metric, info *asynq.QueueInfo) {
	q := label(info.Queue)
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for state, n := range map[string]int{
		"active": info.Active, "pending": info.Pending, "scheduled": info.Scheduled,
		"retry": info.Retry, "archived": info.Archived, "completed": info.Completed,
		"aggregating": info.Aggregating,
	} {
		gauge(c.enqueued, float64(n), q, state)
	}
	gauge(c.size, float64(info.Size), q)
	gauge(c.latency, info.Latency.Seconds(), q)
	gauge(c.memory, float64(info.MemoryUsage), q)
	paused := 0.0
	if info.Paused {
		paused = 1
	}
	gauge(c.paused, paused, q)
	ch <- prometheus.MustNewConstMetric(c.processed, prometheus.CounterValue, float64(info.ProcessedTotal), q)
	ch <- prometheus.MustNewConstMetric(c.failed, prometheus.CounterValue, float64(info.FailedTotal), q)
}
