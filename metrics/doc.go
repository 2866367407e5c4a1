// Package metrics holds pagesend's Prometheus collectors and the ops HTTP
// server that exposes them.
//
// # Collectors
//
// [New] creates every pagesend collector once and registers it on an
// explicit registry (never the global default), so tests read exact values
// with prometheus/testutil. The names and labels are a contract that
// dashboards, alerts and outside checks rely on (see DESIGN.md):
//
//	pagesend_messages_total{page_id,outcome}              counter   outcome = sent|dropped|dead_lettered|retried
//	pagesend_messages_rescheduled_total{page_id,reason}   counter   reason = ratelimit|paused
//	pagesend_graph_errors_total{page_id,code}             counter   code = "613", "http_503", "timeout", …
//	pagesend_graph_request_duration_seconds{page_id}      histogram 20 ms – 20 s
//	pagesend_ratelimit_wait_seconds{page_id}              histogram 1 ms – 60 s (includes reschedule waits)
//	pagesend_page_paused{page_id,reason}                  gauge 0/1
//	pagesend_page_token_invalid{page_id}                  gauge 0/1 (Graph error 190: the token needs replacing)
//	pagesend_build_info{version,goversion}                gauge = 1 (registered by [NewRegistry])
//
// Updates go through methods on [*Metrics]; a nil *Metrics is valid and
// records nothing, so a package can take a *Metrics and run without one.
// Every label value is made valid UTF-8 and cut to [MaxLabelLen] bytes, so a
// bad page id cannot explode cardinality or panic the process. Recipient
// ids and message text are never labels.
//
// # Ops server
//
// [Server] serves /metrics, /healthz, /readyz and a plain-text index at /,
// plus any extra handlers passed in [ServerOptions.Mounts] (the worker mounts
// asynqmon at /monitor/). Queue metrics from asynq's x/metrics collector are
// added by registering that collector on the same [*prometheus.Registry];
// /metrics keeps serving the other metrics when one collector fails.
//
// A server's life is [Server.Start] (listen now, serve in the background,
// shut down when the context ends) followed by [Server.Wait];
// [Server.ListenAndServe] does both.
package metrics
