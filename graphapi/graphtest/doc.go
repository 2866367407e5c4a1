// Package graphtest runs an in-process fake of the Graph API messages edge,
// POST /{version}/{page-id}/messages, for tests, benchmarks, fault suites and
// `pagesend demo`.
//
// A Server is an httptest server that answers the way Meta does. Each call
// goes through Meta's checks in order — the route, the access token (error
// 190), appsecret_proof (100), the Page's rate limit (613), the body as
// graphapi.DecodeRequest and (*graphapi.Request).Validate see it (100) — and
// a call that passes them all gets the next scripted Answer for its call
// number, its recipient or its Page, or else the default answer: a success
// whose message ids count up per server ("m_1", "m_2", …), so output is
// deterministic. Scripts are queues, consumed in order; when one runs out the
// default applies again. Answers cover Meta's errors (Fail), proxies' pages
// (Raw, TooManyRequests) and the network's faults (Hang, Reset, SlowBody).
// Every call, rejected or not, is recorded as a Call that tests read with
// Calls or wait for with WaitCalls.
//
// Start ties a server to a test:
//
//	srv := graphtest.Start(t, graphtest.Options{Tokens: map[string]string{"1234": "page-token"}})
//	srv.ScriptRecipient("6789", graphtest.Fail(551, 0))
//	client := srv.Client(t)
//	_, err := client.Send(ctx, "1234", "page-token", req) // *graphapi.Error, code 551
//
// A Server is safe for concurrent use and keeps no global state; it does no
// per-call logging, so benchmarks measure the client rather than the fake.
package graphtest
