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
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/hibiken/asynq"

	"github.com/pagesend/pagesend/internal/redisopt"
	"github.com/pagesend/pagesend/shard"
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
  shards    which shard each Page lives on, and what a new shard list moves
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
	case "shards":
		err = runShards(ctx, rest, e)
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
	cmd         *command
	redisURL    *string
	redisShards *string
	logLevel    *string
	logFormat   *string

	// Explicit Redis settings; they replace the URL's parts.
	redisSentinels        *string
	redisMaster           *string
	redisSentinelUsername *string
	redisUsername         *string
	redisTLS              *bool
	redisPassword         string // environment only
	redisSentinelPassword string // environment only
}

func addCommon(c *command) *common {
	return &common{
		cmd:         c,
		redisURL:    c.str("redis-url", "PAGESEND_REDIS_URL", redisopt.DefaultURL, "Redis URL: redis://, rediss:// (TLS), redis-socket://, or redis-sentinel://HOST:PORT,HOST:PORT,…/DB?master=NAME"),
		redisShards: c.str("redis-shards", "PAGESEND_REDIS_SHARDS", "", "several Redis primaries: NAME=URL entries separated by spaces; each Page lives on one (rendezvous hash of its id over the names); replaces PAGESEND_REDIS_URL"),
		logLevel:    c.str("log-level", "PAGESEND_LOG_LEVEL", "info", "debug, info, warn or error"),
		logFormat:   c.str("log-format", "PAGESEND_LOG_FORMAT", "json", "json or text"),

		redisSentinels:        c.str("redis-sentinels", "PAGESEND_REDIS_SENTINELS", "", "Redis Sentinel addresses, HOST:PORT comma-separated; without a redis-sentinel:// URL they select Sentinel"),
		redisMaster:           c.str("redis-master", "PAGESEND_REDIS_MASTER", "", "master name the sentinels monitor (replaces the URL's master=)"),
		redisSentinelUsername: c.str("redis-sentinel-username", "PAGESEND_REDIS_SENTINEL_USERNAME", "", "user for the sentinels, with PAGESEND_REDIS_SENTINEL_PASSWORD"),
		redisUsername:         c.str("redis-username", "PAGESEND_REDIS_USERNAME", "", "Redis ACL user (replaces the URL's)"),
		redisTLS:              c.boolean("redis-tls", "PAGESEND_REDIS_TLS", false, "TLS to Redis and the sentinels, as rediss:// or tls=true"),
		redisPassword:         c.secretEnv("PAGESEND_REDIS_PASSWORD", "Redis password (replaces the URL's)"),
		redisSentinelPassword: c.secretEnv("PAGESEND_REDIS_SENTINEL_PASSWORD", "password for the sentinels, when they have requirepass"),
	}
}

// redis turns the Redis settings into a connection option. Its errors
// never quote the URL or a password, as redisopt guarantees.
func (c *common) redis() (asynq.RedisConnOpt, error) {
	s := redisopt.Settings{
		MasterName:       *c.redisMaster,
		SentinelUsername: *c.redisSentinelUsername,
		SentinelPassword: c.redisSentinelPassword,
		Username:         *c.redisUsername,
		Password:         c.redisPassword,
		TLS:              *c.redisTLS,
	}
	// The URL counts only when it was given: with PAGESEND_REDIS_SENTINELS
	// alone, the default redis:// URL must not get in the way.
	c.cmd.fs.Visit(func(f *flag.Flag) {
		if f.Name == "redis-url" {
			s.URL = *c.redisURL
		}
	})
	if *c.redisSentinels != "" {
		s.SentinelAddrs = strings.Split(*c.redisSentinels, ",")
	}
	opt, err := redisopt.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("PAGESEND_REDIS_URL / PAGESEND_REDIS_*: %w", err)
	}
	return opt, nil
}

// targets returns the Redis shards to use: those of PAGESEND_REDIS_SHARDS
// (sharded is true), or the one Redis of PAGESEND_REDIS_URL and the
// explicit settings. Each shard's URL stands alone: the explicit
// PAGESEND_REDIS_* settings apply to PAGESEND_REDIS_URL only.
func (c *common) targets() (shards []shard.Shard, sharded bool, err error) {
	if strings.TrimSpace(*c.redisShards) == "" {
		opt, err := c.redis()
		if err != nil {
			return nil, false, err
		}
		return []shard.Shard{{Name: "default", Redis: opt}}, false, nil
	}
	shards, err = shard.Parse(*c.redisShards, func(u string) (asynq.RedisConnOpt, error) {
		return redisopt.Parse(redisopt.Settings{URL: u})
	})
	if err != nil {
		return nil, false, fmt.Errorf("PAGESEND_REDIS_SHARDS: %w", err)
	}
	return shards, true, nil
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
