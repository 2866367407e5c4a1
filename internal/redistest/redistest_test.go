package redistest

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestStartServesCommands(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts Options
		// check runs extra assertions against the started server.
		check func(t *testing.T, s *Server, c *redis.Client)
	}{
		{name: "default", opts: Options{}},
		{
			name: "append only",
			opts: Options{AppendOnly: true},
			check: func(t *testing.T, s *Server, c *redis.Client) {
				wantConfig(t, c, "appendonly", "yes")
				wantConfig(t, c, "appendfsync", "everysec")
			},
		},
		{
			name: "extra args",
			opts: Options{Args: []string{"--maxmemory", "10mb"}},
			check: func(t *testing.T, s *Server, c *redis.Client) {
				wantConfig(t, c, "maxmemory", strconv.Itoa(10<<20))
			},
		},
		{
			name: "no snapshots",
			opts: Options{},
			check: func(t *testing.T, s *Server, c *redis.Client) {
				wantConfig(t, c, "save", "")
				wantConfig(t, c, "appendonly", "no")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := Start(t, tt.opts)
			host, port, err := net.SplitHostPort(s.Addr())
			if err != nil || host != "127.0.0.1" {
				t.Fatalf("Addr() = %q, want 127.0.0.1:PORT", s.Addr())
			}
			if port == "6379" {
				t.Fatalf("Addr() = %q uses the default redis port", s.Addr())
			}
			if want := "redis://" + s.Addr() + "/0"; s.URL() != want {
				t.Errorf("URL() = %q, want %q", s.URL(), want)
			}
			if s.Socket() != "" {
				t.Errorf("Socket() = %q without UnixSocket, want empty", s.Socket())
			}

			c := s.Client(t)
			ctx := context.Background()
			if got, err := c.Ping(ctx).Result(); err != nil || got != "PONG" {
				t.Fatalf("PING = %q, %v; want PONG", got, err)
			}
			if err := c.Set(ctx, "greeting", "hello", 0).Err(); err != nil {
				t.Fatalf("SET: %v", err)
			}
			if got, err := c.Get(ctx, "greeting").Result(); err != nil || got != "hello" {
				t.Fatalf("GET = %q, %v; want hello", got, err)
			}
			if tt.check != nil {
				tt.check(t, s, c)
			}
			if !strings.Contains(s.LogTail(100), "Ready to accept connections") {
				t.Errorf("LogTail lacks the ready line:\n%s", s.LogTail(100))
			}
		})
	}
}

func TestServersAreIsolated(t *testing.T) {
	t.Parallel()
	a, b := Start(t, Options{}), Start(t, Options{})
	if a.Addr() == b.Addr() {
		t.Fatalf("both servers listen on %s", a.Addr())
	}
	ctx := context.Background()
	if err := a.Client(t).Set(ctx, "only-in-a", "1", 0).Err(); err != nil {
		t.Fatalf("SET on a: %v", err)
	}
	if err := b.Client(t).Get(ctx, "only-in-a").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("GET on b = %v, want redis.Nil", err)
	}
}

func TestStopRefusesConnections(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{UnixSocket: true})
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	waitRefused(t, s.Addr())
	if _, err := os.Stat(s.dir); !os.IsNotExist(err) {
		t.Errorf("temp dir %s still exists after Stop (stat: %v)", s.dir, err)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if err := s.Kill(); err != nil {
		t.Errorf("Kill after Stop: %v", err)
	}
}

func TestKillRestartKeepsAppendOnlyData(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{AppendOnly: true})
	addr := s.Addr()
	ctx := context.Background()
	c := s.Client(t)
	if err := c.ConfigSet(ctx, "appendfsync", "always").Err(); err != nil {
		t.Fatalf("CONFIG SET appendfsync always: %v", err)
	}
	if err := c.Set(ctx, "durable", "yes", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}

	if err := s.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	waitRefused(t, addr)
	if err := s.Kill(); err != nil {
		t.Errorf("second Kill: %v", err)
	}
	if err := s.Restart(); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if s.Addr() != addr {
		t.Fatalf("Addr() after Restart = %q, want %q", s.Addr(), addr)
	}
	if got, err := s.Client(t).Get(ctx, "durable").Result(); err != nil || got != "yes" {
		t.Fatalf("GET after Kill+Restart = %q, %v; want yes\n%s", got, err, s.LogTail(20))
	}
}

func TestRestart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		before func(*Server) error // brings the server into the state Restart starts from
	}{
		{name: "while running", before: func(*Server) error { return nil }},
		{name: "after Stop", before: (*Server).Stop},
		{name: "after Kill", before: (*Server).Kill},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := Start(t, Options{})
			addr := s.Addr()
			ctx := context.Background()
			if err := s.Client(t).Set(ctx, "volatile", "1", 0).Err(); err != nil {
				t.Fatalf("SET: %v", err)
			}
			if err := tt.before(s); err != nil {
				t.Fatalf("before Restart: %v", err)
			}
			if err := s.Restart(); err != nil {
				t.Fatalf("Restart: %v", err)
			}
			if s.Addr() != addr {
				t.Fatalf("Addr() after Restart = %q, want %q", s.Addr(), addr)
			}
			// Without AppendOnly nothing survives a restart.
			if err := s.Client(t).Get(ctx, "volatile").Err(); !errors.Is(err, redis.Nil) {
				t.Fatalf("GET after Restart = %v, want redis.Nil", err)
			}
		})
	}
}

func TestUnixSocket(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{UnixSocket: true})
	if s.Socket() == "" || len(s.Socket()) >= maxSocketPath {
		t.Fatalf("Socket() = %q, want a path shorter than %d bytes", s.Socket(), maxSocketPath)
	}
	c := redis.NewClient(&redis.Options{Network: "unix", Addr: s.Socket()})
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	if err := c.Set(ctx, "via", "unix", 0).Err(); err != nil {
		t.Fatalf("SET over unix socket: %v", err)
	}
	// Same server over TCP.
	if got, err := s.Client(t).Get(ctx, "via").Result(); err != nil || got != "unix" {
		t.Fatalf("GET over TCP = %q, %v; want unix", got, err)
	}
}

func TestStartProcess(t *testing.T) {
	t.Parallel()
	s, err := StartProcess(Options{})
	if err != nil {
		t.Fatalf("StartProcess: %v", err)
	}
	defer s.Stop()
	conn, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", s.Addr(), err)
	}
	_ = conn.Close()
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	waitRefused(t, s.Addr())
}

func TestStartProcessReportsEarlyExit(t *testing.T) {
	t.Parallel()
	s, err := StartProcess(Options{Args: []string{"--no-such-directive", "1"}})
	if err == nil {
		s.Stop()
		t.Fatal("StartProcess with a bad directive succeeded")
	}
	msg := err.Error()
	if !strings.Contains(msg, "exited during startup") || !strings.Contains(msg, "no-such-directive") {
		t.Fatalf("error lacks the exit and the log tail:\n%s", msg)
	}
	if errors.Is(err, errPortInUse) {
		t.Errorf("config error reported as port in use: %v", err)
	}
}

func TestStartDetectsTakenPort(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dir, err := os.MkdirTemp("", "rt")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bin := lookRedis(t)
	s := &Server{
		opts:    Options{StartTimeout: 5 * time.Second},
		bin:     bin,
		dir:     dir,
		logPath: filepath.Join(dir, "redis.log"),
	}
	s.setPort(l.Addr().(*net.TCPAddr).Port)
	err = s.start()
	if !errors.Is(err, errPortInUse) {
		t.Fatalf("start on a taken port = %v, want errPortInUse", err)
	}
}

// TestMissingBinary cannot run in parallel: it empties PATH.
func TestMissingBinary(t *testing.T) {
	t.Setenv("PATH", "")
	_, err := StartProcess(Options{})
	if err == nil || !strings.Contains(err.Error(), "make test") || !strings.Contains(err.Error(), "apt-get install redis-server") {
		t.Fatalf("StartProcess without redis-server on PATH = %v, want install hint", err)
	}
}

func lookRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("%s: %v", installHint, err)
	}
	return bin
}

func wantConfig(t *testing.T, c *redis.Client, key, want string) {
	t.Helper()
	got, err := c.ConfigGet(context.Background(), key).Result()
	if err != nil {
		t.Fatalf("CONFIG GET %s: %v", key, err)
	}
	if got[key] != want {
		t.Errorf("CONFIG GET %s = %q, want %q", key, got[key], want)
	}
}

// waitRefused polls addr until connections are refused.
func waitRefused(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, 250*time.Millisecond)
		if errors.Is(err, syscall.ECONNREFUSED) {
			return
		}
		if err == nil {
			_ = conn.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not refusing connections (last dial: %v)", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
