package metrics_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/pagesend/pagesend/metrics"
)

func ExampleMetrics() {
	reg := metrics.NewRegistry("v1.0.0")
	m := metrics.New(reg)

	// A worker records what happened to each message.
	m.RateLimitWait("1234", 3*time.Millisecond)
	m.GraphDuration("1234", 180*time.Millisecond)
	m.Message("1234", metrics.OutcomeSent)
	m.GraphError("1234", "613")
	m.Message("1234", metrics.OutcomeRetried)
	m.SetPaused("1234", "throttled", true)

	// Packages may hold a nil *Metrics: it records nothing.
	var none *metrics.Metrics
	none.Message("1234", metrics.OutcomeSent)

	// Print a few lines of what /metrics serves.
	rec := httptest.NewRecorder()
	srv := metrics.NewServer(metrics.ServerOptions{Registry: reg})
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for line := range strings.Lines(rec.Body.String()) {
		if strings.HasPrefix(line, "pagesend_messages_total") ||
			strings.HasPrefix(line, "pagesend_graph_errors_total") ||
			strings.HasPrefix(line, "pagesend_page_paused") {
			fmt.Print(line)
		}
	}
	// Output:
	// pagesend_graph_errors_total{code="613",page_id="1234"} 1
	// pagesend_messages_total{outcome="retried",page_id="1234"} 1
	// pagesend_messages_total{outcome="sent",page_id="1234"} 1
	// pagesend_page_paused{page_id="1234",reason="throttled"} 1
}

func ExampleServer() {
	reg := metrics.NewRegistry("v1.0.0")
	m := metrics.New(reg)
	m.Message("1234", metrics.OutcomeSent)

	srv := metrics.NewServer(metrics.ServerOptions{
		Addr:     "127.0.0.1:0", // any free port; the worker uses PAGESEND_OPS_ADDR
		Registry: reg,
		Ready:    func(ctx context.Context) error { return nil }, // e.g. ping Redis
		Mounts: map[string]http.Handler{
			"/monitor/": http.NotFoundHandler(), // asynqmon, in the worker
		},
	})
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	addr, err := srv.Start(ctx) // listening once Start returns
	if err != nil {
		fmt.Println(err)
		return
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println("healthz:", resp.StatusCode)

	stop()                           // shuts the server down gracefully …
	fmt.Println("wait:", srv.Wait()) // … and Wait reports how it ended
	// Output:
	// healthz: 200
	// wait: <nil>
}
