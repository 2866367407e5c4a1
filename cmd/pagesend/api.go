package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/pagesend/pagesend/enqueue"
	"github.com/pagesend/pagesend/internal/httpapi"
	"github.com/pagesend/pagesend/metrics"
)

func runAPI(ctx context.Context, args []string, e env) error {
	c := newCommand("api", "pagesend api [flags]",
		"Serve the HTTP enqueue API: POST /v1/messages (one job, or {\"jobs\": [...]}),\n"+
			"GET /v1/messages/{id}, POST /v1/pages/{id}/resume, with /openapi.json, /healthz,\n"+
			"/readyz and /metrics. Stateless: run as many replicas as you like against one\n"+
			"Redis. Callers send \"Authorization: Bearer <key>\"; keys are \"name:secret\" or\n"+
			"bare secrets (at least 32 bytes), comma-separated so they can be rotated. On\n"+
			"SIGTERM or Ctrl-C stops accepting and lets requests in flight finish.", e.getenv)
	com := addCommon(c)
	addr := c.str("api-addr", "PAGESEND_API_ADDR", httpapi.DefaultAddr, "HTTP address to listen on")
	retention := c.duration("retention", "PAGESEND_RETENTION", enqueue.DefaultRetention, "how long a finished message (its result, its idempotency key) is kept")
	maxBody := c.integer("api-max-body", "PAGESEND_API_MAX_BODY", httpapi.DefaultMaxBody, "largest request body in bytes; larger ones get 413")
	shutdown := c.duration("shutdown-timeout", "PAGESEND_SHUTDOWN_TIMEOUT", httpapi.DefaultShutdownTimeout, "how long requests in flight may finish after SIGTERM")
	keysEnv := c.secretEnv("PAGESEND_API_KEYS", "API keys that may enqueue, resume and read: name:secret or secret, comma-separated")
	readOnlyEnv := c.secretEnv("PAGESEND_API_READONLY_KEYS", "API keys that may only GET (a POST with one is 403)")
	if err := c.parse(args, e.stdout); err != nil {
		return err
	}
	if len(c.args) > 0 {
		return usageErr("api takes no arguments, got %q", c.args)
	}
	if *maxBody <= 0 {
		return usageErr("PAGESEND_API_MAX_BODY=%d: want a positive number of bytes", *maxBody)
	}
	keys, err := httpapi.ParseKeys(keysEnv, false)
	if err != nil {
		return usageErr("PAGESEND_API_KEYS: %v", err)
	}
	readOnly, err := httpapi.ParseKeys(readOnlyEnv, true)
	if err != nil {
		return usageErr("PAGESEND_API_READONLY_KEYS: %v", err)
	}
	keys = append(keys, readOnly...)
	if len(keys) == 0 {
		return usageErr("api needs keys: set PAGESEND_API_KEYS (e.g. producer:$(openssl rand -hex 32))")
	}
	log, err := com.logger(e.stderr)
	if err != nil {
		return usageErr("%v", err)
	}
	shards, _, err := com.targets()
	if err != nil {
		return usageErr("%v", err)
	}
	api, err := httpapi.New(httpapi.Options{
		Shards:   shards,
		Enqueue:  enqueue.Options{Retention: *retention},
		Keys:     keys,
		MaxBody:  int64(*maxBody),
		Registry: metrics.NewRegistry(version),
		Logger:   log,
	})
	if err != nil {
		return usageErr("%v", err)
	}
	defer api.Close()
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.Name
		if k.ReadOnly {
			names[i] += " (read-only)"
		}
	}
	log.Info("api starting", "version", version, "addr", *addr, "keys", names, "max_body", *maxBody)
	srv := httpapi.NewServer(httpapi.ServerOptions{Addr: *addr, Handler: api, ShutdownTimeout: *shutdown, Logger: log})
	if err := srv.ListenAndServe(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("api: %w", err)
	}
	return nil
}
