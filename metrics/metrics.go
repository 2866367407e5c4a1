package metrics

import (
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

// Values of the outcome label of pagesend_messages_total.
const (
	OutcomeSent         = "sent"          // the Graph API accepted the message
	OutcomeDropped      = "dropped"       // permanent failure, not worth retrying (bad recipient, policy)
	OutcomeDeadLettered = "dead_lettered" // retries exhausted; the task is archived
	OutcomeRetried      = "retried"       // a transient failure; the task will run again
)

// Values of the reason label of pagesend_messages_rescheduled_total.
const (
	ReasonRateLimit = "ratelimit" // the Page's token bucket wait was too long to park a worker
	ReasonPaused    = "paused"    // the Page is paused for every worker
	ReasonThrottled = "throttled" // Meta throttled the Page or the call
	ReasonOrder     = "order"     // an earlier message to the same recipient is undelivered
	ReasonRedis     = "redis"     // Redis did not answer the checks before a send
)

// MaxLabelLen is the longest label value, in bytes, that [Metrics] records;
// longer values are cut (on a rune boundary). Page ids are short numeric
// strings, so only garbage is ever cut.
const MaxLabelLen = 64

// Bucket upper bounds, in seconds.
var (
	// Graph API calls: a fast Send API call takes tens of milliseconds, the
	// HTTP client gives up after about 20 s.
	graphDurationBuckets = []float64{0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20}
	// Token bucket waits: from immediate to a reschedule of about a minute.
	rateLimitWaitBuckets = []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}
)

// Metrics holds pagesend's collectors. Create it with [New]; its methods are
// safe for concurrent use. A nil *Metrics is valid: every method does
// nothing, so packages can run without metrics.
type Metrics struct {
	reg prometheus.Registerer

	messages      *prometheus.CounterVec
	rescheduled   *prometheus.CounterVec
	graphErrors   *prometheus.CounterVec
	graphDuration *prometheus.HistogramVec
	rateLimitWait *prometheus.HistogramVec
	pagePaused    *prometheus.GaugeVec
	tokenInvalid  *prometheus.GaugeVec
	duplicates    *prometheus.CounterVec
}

// New creates pagesend's collectors and registers them on reg. A nil reg
// means a new private registry, handy in tests (see [Metrics.Gatherer]).
// Calling New twice with the same registry returns collectors that share
// the already registered series. New panics if reg holds a different
// collector under one of pagesend's names, which is a programming error.
func New(reg prometheus.Registerer) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	return &Metrics{
		reg: reg,
		messages: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pagesend_messages_total",
			Help: "Messages finished by a worker attempt, by Page and outcome: sent, dropped (permanent failure), dead_lettered (retries exhausted) or retried (transient failure, will run again).",
		}, []string{"page_id", "outcome"})),
		rescheduled: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pagesend_messages_rescheduled_total",
			Help: "Messages put back in the queue for later without calling the Graph API, by Page and reason: ratelimit (the wait for a send slot was too long), paused (the Page is paused), throttled (Meta throttled the Page), order (waiting for an earlier message to the same recipient) or redis (Redis did not answer the checks before the send).",
		}, []string{"page_id", "reason"})),
		graphErrors: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pagesend_graph_errors_total",
			Help: "Failed Graph API calls, by Page and error code: a Graph error code such as 613, http_<status> for an HTTP error without one, or timeout.",
		}, []string{"page_id", "code"})),
		graphDuration: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pagesend_graph_request_duration_seconds",
			Help:    "Duration of Graph API Send calls, by Page, including failed ones.",
			Buckets: graphDurationBuckets,
		}, []string{"page_id"})),
		rateLimitWait: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pagesend_ratelimit_wait_seconds",
			Help:    "Time a message waited for its Page's rate limit before sending, by Page; a wait too long to park a worker is counted as the delay of the reschedule.",
			Buckets: rateLimitWaitBuckets,
		}, []string{"page_id"})),
		pagePaused: register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pagesend_page_paused",
			Help: "1 while a Page is paused for every worker, by Page and reason (for example throttled or manual); the series disappears when the pause ends.",
		}, []string{"page_id", "reason"})),
		tokenInvalid: register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pagesend_page_token_invalid",
			Help: "1 when the Graph API rejected a Page's access token (error 190) and a new token is needed; 0 once a call with the token succeeds again.",
		}, []string{"page_id"})),
		duplicates: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pagesend_duplicates_suppressed_total",
			Help: "Redelivered tasks (after a crash or a lost lease) whose message had already been sent, completed without calling the Graph API again, by Page.",
		}, []string{"page_id"})),
	}
}

// register registers c on reg, or returns the collector already registered
// under the same description.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	panic("metrics: " + err.Error())
}

// Gatherer returns the registry the collectors were registered on, when it
// can be gathered (a *prometheus.Registry, including the private one New
// makes for a nil registerer), so tests elsewhere can read values with
// testutil.GatherAndCompare. It returns nil for a nil *Metrics.
func (m *Metrics) Gatherer() prometheus.Gatherer {
	if m == nil {
		return nil
	}
	g, _ := m.reg.(prometheus.Gatherer)
	return g
}

// Message counts one message that finished a worker attempt with outcome,
// one of the Outcome constants.
func (m *Metrics) Message(pageID, outcome string) {
	if m == nil {
		return
	}
	m.messages.WithLabelValues(label(pageID), label(outcome)).Inc()
}

// Rescheduled counts one message put back in the queue without a Graph API
// call, for one of the Reason values.
func (m *Metrics) Rescheduled(pageID, reason string) {
	if m == nil {
		return
	}
	m.rescheduled.WithLabelValues(label(pageID), label(reason)).Inc()
}

// DuplicateSuppressed counts one redelivered task completed without a
// second Graph call because its send was already recorded.
func (m *Metrics) DuplicateSuppressed(pageID string) {
	if m == nil {
		return
	}
	m.duplicates.WithLabelValues(label(pageID)).Inc()
}

// GraphError counts one failed Graph API call. code must come from a small
// set: a Graph error code ("613", "190"), "http_<status>" or "timeout";
// never an error message.
func (m *Metrics) GraphError(pageID, code string) {
	if m == nil {
		return
	}
	m.graphErrors.WithLabelValues(label(pageID), label(code)).Inc()
}

// GraphDuration records the duration of one Graph API call.
func (m *Metrics) GraphDuration(pageID string, d time.Duration) {
	if m == nil {
		return
	}
	m.graphDuration.WithLabelValues(label(pageID)).Observe(seconds(d))
}

// RateLimitWait records how long a message waited, or will wait after a
// reschedule, for its Page's rate limit. Record 0 for a message that did
// not wait, so the histogram's count is the number of rate limit checks.
func (m *Metrics) RateLimitWait(pageID string, d time.Duration) {
	if m == nil {
		return
	}
	m.rateLimitWait.WithLabelValues(label(pageID)).Observe(seconds(d))
}

// SetPaused marks a Page as paused (1) for reason. Unpausing deletes the
// series rather than setting 0, so a pause that ended, perhaps for a reason
// that will not recur, leaves nothing stale behind.
func (m *Metrics) SetPaused(pageID, reason string, paused bool) {
	if m == nil {
		return
	}
	pageID, reason = label(pageID), label(reason)
	if paused {
		m.pagePaused.WithLabelValues(pageID, reason).Set(1)
		return
	}
	m.pagePaused.DeleteLabelValues(pageID, reason)
}

// SetTokenInvalid sets the error-190 gauge of a Page: 1 when its token was
// rejected, 0 when it works again. The series is kept at 0 rather than
// deleted so that alerts on it resolve instead of going stale.
func (m *Metrics) SetTokenInvalid(pageID string, invalid bool) {
	if m == nil {
		return
	}
	v := 0.0
	if invalid {
		v = 1
	}
	m.tokenInvalid.WithLabelValues(label(pageID)).Set(v)
}

// label makes s a safe label value: valid UTF-8 (client_golang panics on
// anything else) of at most MaxLabelLen bytes.
func label(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if len(s) <= MaxLabelLen {
		return s
	}
	n := MaxLabelLen
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// seconds converts d to seconds for a histogram; a negative duration, which
// only a clock step can produce, counts as 0.
func seconds(d time.Duration) float64 {
	if d < 0 {
		return 0
	}
	return d.Seconds()
}
