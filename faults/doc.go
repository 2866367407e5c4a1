// Package faults is pagesend's fault suite: it runs the real `pagesend
// worker` binary as child processes against private redis-servers (loopback,
// free ports, never 6379) and the in-process fake Graph API, injects faults —
// SIGKILL of a worker mid-load, kill -9 and restart of Redis (AOF, everysec),
// Graph hangs, resets, HTML 5xx, 429s, slow bodies, a garbled 2xx and a
// throttling storm, SIGTERM under load, ordered conversations through a
// SIGKILL (1c), kill -9 of a Sentinel group's primary (5), and one shard
// of three going down (6) — and checks that nothing is lost.
//
// The scenarios are tests behind the build tag `faults`, so `go test ./...`
// and `make test` skip them; `make faults` runs them (with the fuzz targets
// and govulncheck) through faults/run.sh and prints one table:
//
//	scenario  sent  delivered  duplicated  lost  dead-lettered  notes
//
// sent is jobs enqueued and acknowledged by Redis; delivered is distinct
// jobs (each job has its own recipient) the fake answered with a success;
// duplicated is successful calls beyond the first for a job; lost is sent
// jobs neither delivered nor dead-lettered by design, and must be 0.
//
// To run one scenario by hand:
//
//	go test -tags faults -count=1 -v -run 'TestWorkerSIGKILL' ./faults
package faults
