package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/pagesend/pagesend/graphapi"
	"github.com/pagesend/pagesend/internal/app"
	"github.com/pagesend/pagesend/internal/monitor"
	"github.com/pagesend/pagesend/internal/pages"
	"github.com/pagesend/pagesend/worker"
)

func runWorker(ctx context.Context, args []string, e env) error {
	c := newCommand("worker", "pagesend worker [flags]",
		"Consume send jobs from Redis and deliver them to the Graph API under each Page's\n"+
			"rate limit. Serves /metrics, /healthz and /readyz on the ops address. Reloads\n"+
			"the pages file on SIGHUP; on SIGTERM or Ctrl-C stops taking work, lets\n"+
			"in-flight sends finish within the shutdown timeout, and leaves the rest queued.", e.getenv)
	com := addCommon(c)
	graphURL := c.str("graph-url", "PAGESEND_GRAPH_URL", graphapi.DefaultBaseURL, "Graph API base URL")
	graphVersion := c.str("graph-version", "PAGESEND_GRAPH_VERSION", graphapi.DefaultVersion, "Graph API version in the path")
	graphTimeout := c.duration("graph-timeout", "PAGESEND_GRAPH_TIMEOUT", graphapi.DefaultTimeout, "timeout of one Graph call")
	pagesFile := c.str("pages-file", "PAGESEND_PAGES_FILE", "", "pages file (JSON): Page tokens and rate limits (required)")
	proofTime := c.boolean("appsecret-time", "PAGESEND_APPSECRET_TIME", false, "use the timestamped appsecret_proof (with appsecret_time)")
	concurrency := c.integer("concurrency", "PAGESEND_CONCURRENCY", worker.DefaultConcurrency, "sends in flight at once in this process")
	opsAddr := c.str("ops-addr", "PAGESEND_OPS_ADDR", ":9321", `ops HTTP server address ("" to disable)`)
	shutdown := c.duration("shutdown-timeout", "PAGESEND_SHUTDOWN_TIMEOUT", worker.DefaultShutdownTimeout, "how long in-flight sends may finish after SIGTERM")
	maxWait := c.duration("max-wait", "PAGESEND_MAX_WAIT", worker.DefaultMaxWait, "longest in-process wait for a rate-limit token; longer waits reschedule the task")
	backoffBase := c.duration("backoff-base", "PAGESEND_BACKOFF_BASE", worker.DefaultBackoffBase, "retry backoff: first delay bound (doubles each attempt, full jitter)")
	backoffCap := c.duration("backoff-cap", "PAGESEND_BACKOFF_CAP", worker.DefaultBackoffCap, "retry backoff: largest delay bound")
	throttlePause := c.duration("throttle-pause", "PAGESEND_THROTTLE_PAUSE", worker.DefaultThrottlePause, "pause after a throttling error when Meta gives no hint; doubles per episode within the hour")
	sentTTL := c.duration("sent-record-ttl", "PAGESEND_SENT_RECORD_TTL", worker.DefaultSentRecordTTL, "how long a send's record (task id → message id) is kept against redeliveries; an hour is ample, it must outlive a crash's lease recovery (1–2 min)")
	dedup := c.boolean("suppress-duplicates", "PAGESEND_SUPPRESS_DUPLICATES", true, "record each send in Redis before acknowledging it, so a redelivered task is not sent twice")
	ui := c.boolean("ui", "PAGESEND_UI", true, "serve the asynqmon queue UI at /monitor/ on the ops server")
	uiUser := c.str("ui-user", "PAGESEND_UI_USER", "", "with PAGESEND_UI_PASSWORD: basic auth for /monitor/")
	uiReadOnly := c.str("ui-readonly", "PAGESEND_UI_READONLY", "auto", "true, false, or auto: read-only unless basic auth is set")
	uiShowText := c.boolean("ui-show-text", "PAGESEND_UI_SHOW_TEXT", false, "show message text in the UI (hidden by default)")
	promURL := c.str("prometheus-url", "PAGESEND_PROMETHEUS_URL", "", "Prometheus URL for the UI's queue charts")
	appSecret := c.secretEnv("PAGESEND_APP_SECRET", "app secret; when set every call carries appsecret_proof")
	uiPassword := c.secretEnv("PAGESEND_UI_PASSWORD", "with PAGESEND_UI_USER: basic auth for /monitor/")
	if err := c.parse(args, e.stdout); err != nil {
		return err
	}
	if len(c.args) > 0 {
		return usageErr("worker takes no arguments, got %q", c.args)
	}
	if *pagesFile == "" {
		return usageErr("worker needs a pages file: set PAGESEND_PAGES_FILE or --pages-file")
	}
	var mon *monitor.Options
	if *ui {
		mon = &monitor.Options{User: *uiUser, Password: graphapi.Secret(uiPassword), ShowText: *uiShowText, PrometheusURL: *promURL}
		auth := *uiUser != "" && uiPassword != ""
		switch *uiReadOnly {
		case "auto":
			mon.Writable = auth
		case "true", "false":
			mon.Writable = *uiReadOnly == "false"
		default:
			return usageErr("PAGESEND_UI_READONLY=%q: want true, false or auto", *uiReadOnly)
		}
		if (*uiUser == "") != (uiPassword == "") {
			return usageErr("set both PAGESEND_UI_USER and PAGESEND_UI_PASSWORD, or neither")
		}
	}
	log, err := com.logger(e.stderr)
	if err != nil {
		return usageErr("%v", err)
	}
	shards, sharded, err := com.targets()
	if err != nil {
		return usageErr("%v", err)
	}
	store, err := pages.OpenStore(*pagesFile, e.getenv)
	if err != nil {
		return err
	}
	if missing := store.Config().MissingTokens(); len(missing) > 0 {
		log.Warn("pages without a token: their messages wait, paused, until one is configured", "pages", missing)
	}
	cfg := app.Config{
		Store: store,
		Graph: graphapi.ClientOptions{
			BaseURL:       *graphURL,
			Version:       *graphVersion,
			Timeout:       *graphTimeout,
			AppSecret:     graphapi.Secret(appSecret),
			AppSecretTime: *proofTime,
			UserAgent:     "pagesend/" + version,
		},
		OpsAddr: *opsAddr,
		Monitor: mon,
		Version: version,
		Logger:  log,
		Worker: worker.Options{
			Concurrency:     *concurrency,
			ShutdownTimeout: *shutdown,
			MaxWait:         *maxWait,
			BackoffBase:     *backoffBase,
			BackoffCap:      *backoffCap,

			ThrottlePause:               *throttlePause,
			DisableDuplicateSuppression: !*dedup,
			SentRecordTTL:               *sentTTL,
		},
	}
	if sharded {
		cfg.Shards = shards
	} else {
		cfg.Redis = shards[0].Redis
	}
	svc, err := app.NewService(cfg)
	if err != nil {
		return err
	}
	log.Info("worker starting", "version", version, "pages", len(store.Config().PageIDs()), "concurrency", *concurrency, "shards", len(shards), "ops_addr", *opsAddr)
	if err := svc.Run(ctx, true); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("worker: %w", err)
	}
	log.Info("worker stopped")
	return nil
}
