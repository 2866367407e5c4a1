package httpapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	key := textJob("1", "2", "x", "idempotency_key", "k-1")
	e.post("/v1/messages", writeSecret, key)
	e.post("/v1/messages", writeSecret, key)
	e.post("/v1/messages", writeSecret, `{"jobs":[`+textJob("1", "2", "a")+`,`+textJob("1", "2", "b")+`]}`)
	e.post("/v1/messages", "", key)
	e.get("/v1/messages/private-looking-id-77", readSecret)
	e.get("/scan/for/admin.php", "")

	m := e.api.metrics
	for _, c := range []struct {
		route, code string
		want        float64
	}{
		{"POST /v1/messages", "202", 2},
		{"POST /v1/messages", "200", 1},
		{"POST /v1/messages", "401", 1},
		{"GET /v1/messages/{id}", "404", 1},
		{routeUnmatched, "404", 1},
	} {
		if got := testutil.ToFloat64(m.requests.WithLabelValues(c.route, c.code)); got != c.want {
			t.Errorf("requests{route=%q,code=%s} = %v, want %v", c.route, c.code, got, c.want)
		}
	}
	if got := testutil.ToFloat64(m.enqueued.WithLabelValues("new")); got != 3 {
		t.Errorf("enqueued new = %v, want 3", got)
	}
	if got := testutil.ToFloat64(m.enqueued.WithLabelValues("duplicate")); got != 1 {
		t.Errorf("enqueued duplicate = %v, want 1", got)
	}
	r := e.get("/metrics", "")
	body := string(r.Body)
	if r.Status != http.StatusOK {
		t.Fatalf("metrics: %d", r.Status)
	}
	for _, want := range []string{
		`pagesend_api_requests_total{code="202",route="POST /v1/messages"} 2`,
		`pagesend_api_request_duration_seconds_count{route="GET /v1/messages/{id}"} 1`,
		`pagesend_api_jobs_enqueued_total{outcome="duplicate"} 1`,
		`pagesend_build_info{`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, leak := range []string{"private-looking-id-77", "admin.php", writeSecret} {
		if strings.Contains(body, leak) {
			t.Errorf("/metrics shows %q", leak)
		}
	}
}
