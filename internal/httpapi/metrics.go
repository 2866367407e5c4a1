package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// routeUnmatched labels requests no route matched (404 and 405 answers),
// so that scanning the server cannot create a series per path.
const routeUnmatched = "unmatched"

// apiMetrics are the API's collectors. Their names are a contract like
// those of the metrics package: add, don't rename.
type apiMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	enqueued *prometheus.CounterVec
}

func newAPIMetrics(reg prometheus.Registerer) *apiMetrics {
	m := &apiMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pagesend_api_requests_total",
			Help: `HTTP API requests answered, by route (the pattern, such as "GET /v1/messages/{id}", or "unmatched") and status code.`,
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pagesend_api_request_duration_seconds",
			Help:    "Time to answer an HTTP API request, by route, from its headers read to its answer written.",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		enqueued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pagesend_api_jobs_enqueued_total",
			Help: "Jobs taken by POST /v1/messages, by outcome: new (stored) or duplicate (its idempotency_key was already queued; nothing stored).",
		}, []string{"outcome"}),
	}
	reg.MustRegister(m.requests, m.duration, m.enqueued)
	for _, o := range []string{"new", "duplicate"} {
		m.enqueued.WithLabelValues(o) // export 0 before the first job, so rate() works from the start
	}
	return m
}

func (m *apiMetrics) jobs(newJobs, duplicates int) {
	m.enqueued.WithLabelValues("new").Add(float64(newJobs))
	m.enqueued.WithLabelValues("duplicate").Add(float64(duplicates))
}

// observe records one answered request.
func (m *apiMetrics) observe(route string, code int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
}

// statusRecorder remembers the status code written through it.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) status() int {
	if s.code == 0 {
		return http.StatusOK
	}
	return s.code
}

// Unwrap lets http.ResponseController reach the connection.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
