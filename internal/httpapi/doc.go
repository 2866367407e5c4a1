// Package httpapi is `pagesend api`: a stateless HTTP front to the enqueue
// package, so services that do not speak Go (or Redis) can hand pagesend
// their send jobs. Every request goes straight to Redis and nothing is kept
// in the process, so any number of replicas can run behind a load balancer.
//
// The routes, their bodies and every status they answer are described by
// the OpenAPI 3.1 document embedded in the package (openapi.json, served at
// /openapi.json); the package's tests check every response they receive
// against it, and that it lists exactly the routes the handler serves:
//
//	POST /v1/messages                 enqueue one job, or a batch {"jobs": [...]}
//	GET  /v1/messages/{id}            where a message is: scheduled, pending, active, retry, completed, archived
//	POST /v1/pages/{id}/resume        lift a Page's pause
//	GET  /openapi.json                the document (no auth)
//	GET  /healthz, /readyz, /metrics  for orchestrators and Prometheus (no auth)
//
// A batch is validated as a whole before anything is stored: one invalid
// job and the answer is 400 listing every problem of every job, with its
// index and JSON path, and nothing is enqueued. A stored batch answers 202
// if any job was new, and 200 if every job's idempotency_key was already
// queued (a retry of a request that succeeded).
//
// Callers authenticate with a bearer token, one of the configured Keys.
// Keys carry a scope: a read-only key may GET but any POST with it is 403.
// Tokens are compared in constant time over their SHA-256 digests, and
// only a key's name is ever logged.
//
// Message text never leaves Redis through this API: a message's status
// tells its Page, the kind of recipient (id, phone_number, …), its state
// and outcome, never its text or the recipient's identifier.
package httpapi
