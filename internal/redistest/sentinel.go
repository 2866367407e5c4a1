package redistest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultMasterName is the master name a SentinelGroup's sentinels monitor
// its primary under, unless SentinelOptions.MasterName says otherwise.
const DefaultMasterName = "pagesend"

// Defaults for SentinelOptions.
const (
	DefaultReplicas        = 1
	DefaultSentinels       = 3
	DefaultDownAfter       = time.Second
	DefaultFailoverTimeout = 5 * time.Second
)

// SentinelOptions configures a SentinelGroup. The zero value is one
// primary, one replica and three sentinels monitoring the primary as
// "pagesend" with quorum 2, which consider it down after 1 s without an
// answer and give a failover 5 s.
type SentinelOptions struct {
	// MasterName is the name the sentinels monitor the primary under.
	// Empty means DefaultMasterName.
	MasterName string
	// Replicas is how many replicas follow the primary. Zero means
	// DefaultReplicas; a failover needs at least one.
	Replicas int
	// Sentinels is how many sentinels watch the group. Zero means
	// DefaultSentinels.
	Sentinels int
	// Quorum is how many sentinels must agree that the primary is down
	// before a failover starts. Zero means a majority of Sentinels.
	Quorum int
	// DownAfter is the sentinels' down-after-milliseconds: how long the
	// primary may not answer before a sentinel considers it down. Zero
	// means DefaultDownAfter.
	DownAfter time.Duration
	// FailoverTimeout is the sentinels' failover-timeout, which also
	// spaces retries of a failed failover. Zero means
	// DefaultFailoverTimeout.
	FailoverTimeout time.Duration
	// Server configures the primary and the replicas (AppendOnly, extra
	// Args, StartTimeout, UnixSocket). Its StartTimeout also bounds each
	// sentinel's start, and three times it the wait for the replicas to
	// synchronise and the sentinels to find each other.
	Server Options
}

func (o SentinelOptions) withDefaults() SentinelOptions {
	if o.MasterName == "" {
		o.MasterName = DefaultMasterName
	}
	if o.Replicas <= 0 {
		o.Replicas = DefaultReplicas
	}
	if o.Sentinels <= 0 {
		o.Sentinels = DefaultSentinels
	}
	if o.Quorum <= 0 {
		o.Quorum = o.Sentinels/2 + 1
	}
	if o.DownAfter <= 0 {
		o.DownAfter = DefaultDownAfter
	}
	if o.FailoverTimeout <= 0 {
		o.FailoverTimeout = DefaultFailoverTimeout
	}
	if o.Server.StartTimeout <= 0 {
		o.Server.StartTimeout = defaultStartTimeout
	}
	return o
}

// SentinelGroup is a Redis Sentinel setup of private processes: a primary,
// its replicas and the sentinels that watch them, each a redis-server on
// its own free loopback port (never 6379). Clients find the primary
// through the sentinels (URL, SentinelAddrs); KillPrimary and WaitFailover
// let fault tests crash the primary and wait for the sentinels to promote
// a replica. Create it with StartSentinel or StartSentinelProcess. Its
// methods are safe for concurrent use.
type SentinelGroup struct {
	opts      SentinelOptions
	servers   []*Server // primary first, as started
	sentinels []*Server // run with --sentinel; never Restart them

	mu sync.Mutex
	sc []*redis.SentinelClient // one per sentinel, created on first use
}

// StartSentinel starts a group for the duration of tb and registers its
// Stop as a cleanup. It fails the test with the log tails if the group
// cannot start.
func StartSentinel(tb testing.TB, opts SentinelOptions) *SentinelGroup {
	tb.Helper()
	g, err := StartSentinelProcess(opts)
	if err != nil {
		tb.Fatalf("%v", err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("redistest: sentinel group logs:\n%s", g.LogTails(logTailLines))
		}
		if err := g.Stop(); err != nil {
			tb.Errorf("%v", err)
		}
	})
	return g
}

// StartSentinelProcess starts a group without a testing.TB, for TestMain
// and harnesses; the caller must call Stop. It returns once every replica
// has synchronised with the primary and every sentinel knows the replicas
// and the other sentinels, so a failover can happen from then on.
func StartSentinelProcess(opts SentinelOptions) (g *SentinelGroup, err error) {
	opts = opts.withDefaults()
	g = &SentinelGroup{opts: opts}
	defer func() {
		if err != nil {
			err = errors.Join(err, g.Stop())
		}
	}()
	// Diskless sync without delay: a replica syncs at once instead of
	// after redis 7's 5 s wait for more replicas.
	dataOpts := opts.Server
	dataOpts.Args = append([]string{"--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"}, opts.Server.Args...)
	primary, err := StartProcess(dataOpts)
	if err != nil {
		return g, err
	}
	g.servers = append(g.servers, primary)
	host, port, _ := strings.Cut(primary.Addr(), ":")
	for range opts.Replicas {
		ro := dataOpts
		ro.Args = append(append([]string(nil), dataOpts.Args...), "--replicaof", host, port)
		r, err := StartProcess(ro)
		if err != nil {
			return g, err
		}
		g.servers = append(g.servers, r)
	}
	// Sentinels find each other through hello messages every 2 s; on a
	// loaded machine that takes a while.
	ctx, cancel := context.WithTimeout(context.Background(), 3*opts.Server.StartTimeout)
	defer cancel()
	if err := g.waitSynced(ctx, primary); err != nil {
		return g, err
	}
	for range opts.Sentinels {
		s, err := startSentinelServer(opts, primary.Addr())
		if err != nil {
			return g, err
		}
		g.sentinels = append(g.sentinels, s)
	}
	if err := g.waitFormed(ctx); err != nil {
		return g, err
	}
	return g, nil
}

// MasterName returns the name the sentinels monitor the primary under.
func (g *SentinelGroup) MasterName() string { return g.opts.MasterName }

// SentinelAddrs returns the sentinels' addresses, "127.0.0.1:PORT".
func (g *SentinelGroup) SentinelAddrs() []string {
	out := make([]string, len(g.sentinels))
	for i, s := range g.sentinels {
		out[i] = s.Addr()
	}
	return out
}

// URL returns a redis-sentinel URL for database db:
// "redis-sentinel://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3/DB?master=NAME".
func (g *SentinelGroup) URL(db int) string {
	return "redis-sentinel://" + strings.Join(g.SentinelAddrs(), ",") + "/" + strconv.Itoa(db) + "?master=" + g.opts.MasterName
}

// Servers returns the primary and the replicas, in the order they were
// started (the first was the primary at start). Kill and Restart work on
// them as on any Server; a restarted former primary is turned into a
// replica by the sentinels.
func (g *SentinelGroup) Servers() []*Server { return append([]*Server(nil), g.servers...) }

// Primary returns the server a majority of the sentinels name as the
// primary, once it also says it is one (ROLE master).
func (g *SentinelGroup) Primary(ctx context.Context) (*Server, error) {
	addr, err := g.majorityAddr(ctx)
	if err != nil {
		return nil, err
	}
	s := g.server(addr)
	if s == nil {
		return nil, fmt.Errorf("redistest: the sentinels name %s, which is not in the group", addr)
	}
	if role, err := roleOf(ctx, addr); err != nil || role != "master" {
		return nil, fmt.Errorf("redistest: the sentinels name %s as primary, but its role is %q (%v)", addr, role, err)
	}
	return s, nil
}

// KillPrimary sends SIGKILL to the current primary, waits until it is
// reaped, and returns it. The sentinels notice after DownAfter.
func (g *SentinelGroup) KillPrimary(ctx context.Context) (*Server, error) {
	p, err := g.Primary(ctx)
	if err != nil {
		return nil, err
	}
	return p, p.Kill()
}

// WaitFailover polls until a majority of the sentinels name a primary
// other than old and that server says it is the primary (ROLE master), and
// returns it; or until ctx is done.
func (g *SentinelGroup) WaitFailover(ctx context.Context, old *Server) (*Server, error) {
	var last error
	for {
		p, err := g.Primary(ctx)
		if err == nil && p != old {
			return p, nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("redistest: no failover away from %s: %w (last: %v)", old.Addr(), ctx.Err(), last)
		case <-time.After(pollInterval * 5):
		}
	}
}

// LogTails returns the last n lines of every process's log, each under a
// heading naming its role and address.
func (g *SentinelGroup) LogTails(n int) string {
	var b strings.Builder
	for i, s := range g.servers {
		fmt.Fprintf(&b, "--- redis-server %d %s ---\n%s\n", i, s.Addr(), s.LogTail(n))
	}
	for i, s := range g.sentinels {
		fmt.Fprintf(&b, "--- sentinel %d %s ---\n%s\n", i, s.Addr(), s.LogTail(n))
	}
	return b.String()
}

// Stop stops the sentinels, then the servers, and removes their
// directories. It is idempotent.
func (g *SentinelGroup) Stop() error {
	g.mu.Lock()
	var errs []error
	for _, c := range g.sc {
		if c != nil {
			errs = append(errs, c.Close())
		}
	}
	g.sc = nil
	g.mu.Unlock()
	for _, s := range g.sentinels {
		errs = append(errs, s.Stop())
	}
	for _, s := range g.servers {
		errs = append(errs, s.Stop())
	}
	return errors.Join(errs...)
}

func (g *SentinelGroup) server(addr string) *Server {
	for _, s := range g.servers {
		if s.Addr() == addr {
			return s
		}
	}
	return nil
}

// clients returns one sentinel client per sentinel.
func (g *SentinelGroup) clients() []*redis.SentinelClient {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.sc == nil {
		for _, s := range g.sentinels {
			g.sc = append(g.sc, redis.NewSentinelClient(&redis.Options{
				Addr: s.Addr(), DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1,
			}))
		}
	}
	return g.sc
}

// majorityAddr returns the primary address more than half the sentinels
// report.
func (g *SentinelGroup) majorityAddr(ctx context.Context) (string, error) {
	votes := map[string]int{}
	var errs []error
	for _, c := range g.clients() {
		hp, err := c.GetMasterAddrByName(ctx, g.opts.MasterName).Result()
		if err != nil || len(hp) != 2 {
			errs = append(errs, err)
			continue
		}
		votes[hp[0]+":"+hp[1]]++
	}
	for addr, n := range votes {
		if n > len(g.sentinels)/2 {
			return addr, nil
		}
	}
	return "", fmt.Errorf("redistest: no majority of %d sentinels names a primary (votes %v): %w", len(g.sentinels), votes, errors.Join(errs...))
}

// waitSynced polls until every replica's link to primary is up.
func (g *SentinelGroup) waitSynced(ctx context.Context, primary *Server) error {
	for _, r := range g.servers[1:] {
		if err := pollUntil(ctx, func() error {
			info, err := infoOf(ctx, r.Addr(), "replication")
			if err != nil {
				return err
			}
			if !strings.Contains(info, "master_port:"+strconv.Itoa(primary.port)+"\r\n") || !strings.Contains(info, "master_link_status:up") {
				return errors.New("replication link not up")
			}
			return nil
		}); err != nil {
			return fmt.Errorf("redistest: replica %s never synchronised with %s: %w", r.Addr(), primary.Addr(), err)
		}
	}
	return nil
}

// waitFormed polls until every sentinel knows every replica (and none is
// down) and every other sentinel: until then a failover could not happen.
func (g *SentinelGroup) waitFormed(ctx context.Context) error {
	for i, c := range g.clients() {
		err := pollUntil(ctx, func() error {
			m, err := c.Master(ctx, g.opts.MasterName).Result()
			if err != nil {
				return err
			}
			if m["num-slaves"] != strconv.Itoa(g.opts.Replicas) || m["num-other-sentinels"] != strconv.Itoa(len(g.sentinels)-1) {
				return fmt.Errorf("knows %s replicas and %s other sentinels", m["num-slaves"], m["num-other-sentinels"])
			}
			replicas, err := c.Replicas(ctx, g.opts.MasterName).Result()
			if err != nil {
				return err
			}
			for _, r := range replicas {
				if flags := r["flags"]; flags != "slave" {
					return fmt.Errorf("replica %s:%s has flags %s", r["ip"], r["port"], flags)
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("redistest: sentinel %s never saw the whole group: %w", g.sentinels[i].Addr(), err)
		}
	}
	return nil
}

// pollUntil calls check every pollInterval until it returns nil or ctx is
// done, and then returns check's last error.
func pollUntil(ctx context.Context, check func() error) error {
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		case <-time.After(pollInterval):
		}
	}
}

// infoOf returns a section of INFO from the server at addr.
func infoOf(ctx context.Context, addr, section string) (string, error) {
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1})
	defer c.Close()
	return c.Info(ctx, section).Result()
}

// roleOf returns the first element of ROLE ("master", "slave",
// "sentinel") from the server at addr.
func roleOf(ctx context.Context, addr string) (string, error) {
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1})
	defer c.Close()
	v, err := c.Do(ctx, "ROLE").Slice()
	if err != nil {
		return "", err
	}
	if len(v) == 0 {
		return "", errors.New("empty ROLE reply")
	}
	role, _ := v[0].(string)
	return role, nil
}

// startSentinelServer starts one sentinel watching primary. A sentinel
// needs a config file it can rewrite, so it runs as "redis-server FILE
// --sentinel" rather than with Server's command-line arguments; the
// returned Server supports Addr, LogTail, Kill and Stop, not Restart.
func startSentinelServer(opts SentinelOptions, primary string) (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redistest: %s: %w", installHint, err)
	}
	dir, err := os.MkdirTemp("", "rts")
	if err != nil {
		return nil, fmt.Errorf("redistest: create temp dir: %w", err)
	}
	s := &Server{opts: Options{StartTimeout: opts.Server.StartTimeout}, bin: bin, dir: dir, logPath: filepath.Join(dir, "redis.log")}
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
		s.setPort(port)
		err = s.startSentinel(opts, primary)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, errPortInUse) || attempt == portAttempts {
			_ = os.RemoveAll(dir)
			return nil, err
		}
	}
}

// startSentinel writes the sentinel's config for s.port, launches it and
// waits until it is ready, like Server.start.
func (s *Server) startSentinel(opts SentinelOptions, primary string) error {
	host, port, _ := strings.Cut(primary, ":")
	conf := filepath.Join(s.dir, "sentinel.conf")
	name := opts.MasterName
	text := strings.Join([]string{
		"port " + strconv.Itoa(s.port),
		"bind 127.0.0.1",
		"dir " + s.dir,
		"logfile " + s.logPath,
		"daemonize no",
		fmt.Sprintf("sentinel monitor %s %s %s %d", name, host, port, opts.Quorum),
		fmt.Sprintf("sentinel down-after-milliseconds %s %d", name, opts.DownAfter.Milliseconds()),
		fmt.Sprintf("sentinel failover-timeout %s %d", name, opts.FailoverTimeout.Milliseconds()),
		fmt.Sprintf("sentinel parallel-syncs %s 1", name),
		"",
	}, "\n")
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return fmt.Errorf("redistest: write sentinel config: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.startArgs([]string{conf, "--sentinel"}, "sentinel")
}
