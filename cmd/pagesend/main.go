// Command pagesend delivers outbound Facebook Page messages reliably.
//
//	pagesend worker                       consume jobs and deliver them
//	pagesend enqueue [-f FILE]            validate and enqueue jobs (JSON or JSON lines)
//	pagesend pages status|pause|resume    see and change Page pause state
//	pagesend demo [--duration D]          the whole pipeline on an embedded Redis and a fake Graph API
//
// Every setting is an environment variable; the flag of the same name
// overrides it. Run `pagesend COMMAND --help` for each command's settings.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/hibiken/asynq"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// env is what a command may touch of the outside world, so tests can run
// commands in-process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

const mainUsage = `pagesend delivers outbound Facebook Page messages reliably.

Usage: pagesend COMMAND [flags]

Commands:
  worker    consume jobs and deliver them; serves /metrics, /healthz, /readyz, /monitor/
  enqueue   validate jobs (one JSON object, or JSON lines) and enqueue them
  pages     status | pause | resume PAGE_ID: the shared Page pause state
  demo      run everything on an embedded Redis and a fake Graph API
  api       serve the HTTP enqueue API (POST /v1/messages, GET /v1/messages/{id})
  version   print the version

Every setting is an environment variable (PAGESEND_…); the flag of the
same name overrides it. "pagesend COMMAND --help" lists them.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], env{os.Stdin, os.Stdout, os.Stderr, defaultGetenv}))
}

// run executes one command and returns the exit status.
func run(ctx context.Context, args []string, e env) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, mainUsage)
		return 2
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "worker":
		err = runWorker(ctx, rest, e)
	case "enqueue":
		err = runEnqueue(ctx, rest, e)
	case "pages":
		err = runPages(ctx, rest, e)
	case "demo":
		err = runDemo(ctx, rest, e)
	case "api":
		err = runAPI(ctx, rest, e)
	case "version", "--version":
		fmt.Fprintln(e.stdout, "pagesend", version)
	case "help", "-h", "--help":
		fmt.Fprint(e.stdout, mainUsage)
	default:
		fmt.Fprintf(e.stderr, "pagesend: unknown command %q\n\n%s", cmd, mainUsage)
		return 2
	}
	switch {
	case err == nil, errors.Is(err, errHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(e.stderr, "pagesend: %v\n", err)
		return 2
	default:
		fmt.Fprintf(e.stderr, "pagesend %s: %v\n", args[0], err)
		return 1
	}
}

// errUsage marks errors in how a command was called (exit status 2).
var errUsage = errors.New("usage")

func usageErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, a...))
}

// common holds the settings every command that talks to Redis has.
type common struct {
	redisURL  *string
	logLevel  *string
	logFormat *string
}

func addCommon(c *command) *common {
	return &common{
		redisURL:  c.str("redis-url", "PAGESEND_REDIS_URL", "redis://127.0.0.1:6379/0", "Redis URL: redis://, rediss:// (TLS), redis-socket://, redis-sentinel://"),
		logLevel:  c.str("log-level", "PAGESEND_LOG_LEVEL", "info", "debug, info, warn or error"),
		logFormat: c.str("log-format", "PAGESEND_LOG_FORMAT", "json", "json or text"),
	}
}

// redis parses the Redis URL. Its errors never quote the URL, which may
// hold a password (url.Parse's errors quote their input).
func (c *common) redis() (asynq.RedisConnOpt, error) {
	u, err := url.Parse(*c.redisURL)
	if err != nil {
		return nil, errors.New("PAGESEND_REDIS_URL is not a valid URL (percent-encode special characters in the password)")
	}
	opt, err := asynq.ParseRedisURI(*c.redisURL)
	if err != nil {
		return nil, fmt.Errorf("PAGESEND_REDIS_URL: unsupported URL (scheme %q; want redis, rediss, redis-socket or redis-sentinel)", u.Scheme)
	}
	return opt, nil
}

func (c *common) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(*c.logLevel)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", *c.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(*c.logFormat) {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want json or text", *c.logFormat)
}
