// Package redistest starts private redis-server processes for tests.
//
// Each Server is a real redis-server child process with its own temporary
// directory (holding its log, its unix socket and, with AppendOnly, its AOF)
// listening on a free loopback port chosen at start; it never uses a shared
// server or port 6379. Start ties a server to one test and stops it at the
// test's cleanup; StartProcess does the same for TestMain or benchmark
// harnesses, whose caller must call Stop. A server is ready when Start
// returns: it has answered PING, and the answer came from this process. Kill
// and Restart let fault tests crash the server and bring it back on the same
// port and directory. On Linux the child gets SIGKILL if the test binary
// dies, so no server outlives its tests. All methods are safe for concurrent
// use, and tests may start servers in parallel.
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	defaultStartTimeout = 10 * time.Second
	stopTimeout         = 10 * time.Second
	pollInterval        = 10 * time.Millisecond
	portAttempts        = 5
	logTailLines        = 30
	maxSocketPath       = 100 // sun_path is 108 bytes on Linux, 104 on macOS
)

const installHint = "redis-server is not on PATH: run `make test` (or scripts/ensure-redis.sh), " +
	"or install it with `apt-get install redis-server`"

// errPortInUse marks a start that failed because another process took the
// chosen port between picking it and redis-server binding it.
var errPortInUse = errors.New("port already in use")

// Options configures a server. The zero value is a plain in-memory server on
// a free loopback TCP port.
type Options struct {
	// UnixSocket makes the server also listen on a unix socket in its
	// temporary directory; Socket returns its path.
	UnixSocket bool
	// AppendOnly enables the append-only file (appendfsync everysec), so
	// data survives Kill and Restart once it has been fsynced.
	AppendOnly bool
	// Args are extra redis-server config arguments, such as
	// "--maxmemory", "10mb". They come last, so they override the defaults;
	// they must not change the port, bind address, dir or logfile.
	Args []string
	// StartTimeout bounds how long a start or restart waits for the server
	// to answer PING. Zero means 10s.
	StartTimeout time.Duration
}

// Server is a private redis-server process. Create it with Start or
// StartProcess.
type Server struct {
	opts    Options
	bin     string
	dir     string
	logPath string
	socket  string
	port    int
	addr    string

	mu      sync.Mutex
	proc    *proc // running process, nil when stopped or killed
	removed bool  // Stop has removed dir
}

// proc is one run of redis-server.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once cmd.Wait has returned
	err  error         // cmd.Wait's result; read only after done is closed
}

// Start starts a server for the duration of tb and registers its Stop as a
// cleanup. It fails the test with the server's log tail if the server
// cannot start, including when redis-server is not installed.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s, err := StartProcess(opts)
	if err != nil {
		tb.Fatalf("%v", err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("redistest: redis-server %s log tail:\n%s", s.addr, s.LogTail(logTailLines))
		}
		if err := s.Stop(); err != nil {
			tb.Errorf("%v", err)
		}
	})
	return s
}

// StartProcess starts a server without a testing.TB, for TestMain and
// benchmark harnesses. The caller must call Stop. Errors include the
// server's log tail.
func StartProcess(opts Options) (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redistest: %s: %w", installHint, err)
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = defaultStartTimeout
	}
	dir, err := os.MkdirTemp("", "rt")
	if err != nil {
		return nil, fmt.Errorf("redistest: create temp dir: %w", err)
	}
	s := &Server{
		opts:    opts,
		bin:     bin,
		dir:     dir,
		logPath: filepath.Join(dir, "redis.log"),
	}
	if opts.UnixSocket {
		s.socket = filepath.Join(dir, "redis.sock")
		if len(s.socket) >= maxSocketPath {
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("redistest: unix socket path %q is too long (set TMPDIR to a shorter directory)", s.socket)
		}
	}
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
		s.setPort(port)
		err = s.start()
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, errPortInUse) || attempt == portAttempts {
			_ = os.RemoveAll(dir)
			return nil, err
		}
	}
}

// Addr returns the server's TCP address, "127.0.0.1:PORT".
func (s *Server) Addr() string { return s.addr }

// Socket returns the server's unix socket path, or "" without
// Options.UnixSocket.
func (s *Server) Socket() string { return s.socket }

// URL returns a redis URL for database 0, "redis://127.0.0.1:PORT/0".
func (s *Server) URL() string { return "redis://" + s.addr + "/0" }

// Client returns a go-redis client for the server's TCP address, closed at
// tb's cleanup.
func (s *Server) Client(tb testing.TB) *redis.Client {
	tb.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.addr})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// Stop shuts the server down gracefully (SHUTDOWN NOSAVE, then SIGKILL if
// it has not exited within 10s), waits for it to exit and removes its
// temporary directory. It is idempotent, and safe after Kill.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.removed {
		return nil
	}
	err := s.shutdown()
	if rmErr := os.RemoveAll(s.dir); rmErr != nil && err == nil {
		err = fmt.Errorf("redistest: remove %s: %w", s.dir, rmErr)
	}
	s.removed = true
	return err
}

// Kill sends SIGKILL to the server and waits until the process is reaped.
// It keeps the server's directory, so Restart can recover from the
// append-only file. Killing a server that is not running does nothing.
func (s *Server) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return nil
	}
	p := s.proc
	s.proc = nil
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("redistest: kill redis-server %s: %w", s.addr, err)
	}
	<-p.done
	return nil
}

// Restart starts the server again on the same port and directory and waits
// until it is ready. A running server is first shut down gracefully; after
// Stop the server starts again with an empty, recreated directory.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.shutdown(); err != nil {
		return err
	}
	if s.removed {
		if err := os.Mkdir(s.dir, 0o700); err != nil {
			return fmt.Errorf("redistest: recreate %s: %w", s.dir, err)
		}
		s.removed = false
	}
	return s.start()
}

// LogTail returns the last n lines of the server's log file, which also
// holds the process's stdout and stderr. It returns "" once Stop has removed
// the log.
func (s *Server) LogTail(n int) string {
	data, err := os.ReadFile(s.logPath)
	if err != nil || n <= 0 {
		return ""
	}
	return lastLines(string(data), n)
}

func (s *Server) setPort(port int) {
	s.port = port
	s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// start launches redis-server on s.port and waits until it is ready. On
// failure the process is reaped and the error carries the new log lines; it
// wraps errPortInUse if the port was taken. The caller holds s.mu or owns s.
func (s *Server) start() error {
	return s.startArgs(s.args(), "redis-server")
}

// startArgs launches s.bin with args and waits until it answers on s.addr;
// what names it in errors. See start.
func (s *Server) startArgs(args []string, what string) error {
	var logOffset int64
	if fi, err := os.Stat(s.logPath); err == nil {
		logOffset = fi.Size()
	}
	p, err := s.launch(args)
	if err != nil {
		return err
	}
	if err := s.waitReady(p); err != nil {
		if killErr := p.cmd.Process.Kill(); killErr != nil && !errors.Is(killErr, os.ErrProcessDone) {
			err = errors.Join(err, killErr)
		}
		<-p.done
		newLog := s.logSince(logOffset)
		if portTaken(newLog) {
			err = fmt.Errorf("%w: %w", errPortInUse, err)
		}
		return fmt.Errorf("redistest: %s on %s did not start: %w\n--- %s log (last %d lines) ---\n%s",
			what, s.addr, err, what, logTailLines, lastLines(newLog, logTailLines))
	}
	s.proc = p
	return nil
}

func (s *Server) launch(args []string) (*proc, error) {
	logFile, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("redistest: open log: %w", err)
	}
	defer logFile.Close() // the child keeps its own descriptor

	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.dir
	// Messages printed before redis opens its logfile, such as config
	// errors, land in the same file.
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("redistest: run %s: %w", s.bin, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (s *Server) args() []string {
	appendOnly := "no"
	if s.opts.AppendOnly {
		appendOnly = "yes"
	}
	args := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--logfile", s.logPath,
		"--daemonize", "no",
		"--save", "",
		"--appendonly", appendOnly,
		"--appendfsync", "everysec",
	}
	if s.socket != "" {
		args = append(args, "--unixsocket", s.socket, "--unixsocketperm", "700")
	}
	return append(args, s.opts.Args...)
}

// waitReady polls until this process answers PING on s.addr, the process
// exits, or the start timeout passes.
func (s *Server) waitReady(p *proc) error {
	deadline := time.Now().Add(s.opts.StartTimeout)
	for {
		select {
		case <-p.done:
			if p.err != nil {
				return fmt.Errorf("process exited during startup: %w", p.err)
			}
			return errors.New("process exited during startup")
		default:
		}
		err := probe(s.addr, p.cmd.Process.Pid)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %w", s.opts.StartTimeout, err)
		}
		select {
		case <-p.done:
		case <-time.After(pollInterval):
		}
	}
}

// shutdown stops the running process, if any, with SHUTDOWN NOSAVE and
// waits for it to exit, killing it after stopTimeout. It keeps s.dir. The
// caller holds s.mu.
func (s *Server) shutdown() error {
	p := s.proc
	if p == nil {
		return nil
	}
	s.proc = nil
	if err := sendShutdown(s.addr); err != nil {
		// Not reachable over TCP: SIGTERM is redis's other graceful path.
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(stopTimeout):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	return fmt.Errorf("redistest: redis-server %s did not exit within %v of SHUTDOWN; killed it", s.addr, stopTimeout)
}

func (s *Server) logSince(offset int64) string {
	data, err := os.ReadFile(s.logPath)
	if err != nil || offset > int64(len(data)) {
		return ""
	}
	return string(data[offset:])
}

// probe reports whether the redis-server with process id pid answers PING
// at addr. Checking the pid guards against another server that grabbed the
// port while ours failed to bind it.
func probe(addr string, pid int) error {
	conn, err := net.DialTimeout("tcp", addr, 250*time.Millisecond)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(500 * time.Millisecond)); err != nil {
		return err
	}
	if _, err := io.WriteString(conn, "PING\r\nINFO server\r\n"); err != nil {
		return fmt.Errorf("send PING: %w", err)
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		return fmt.Errorf("read PING reply: %w", err)
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING replied %q", strings.TrimSpace(line))
	}
	line, err = r.ReadString('\n')
	if err != nil {
		return fmt.Errorf("read INFO reply: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "$")))
	if !strings.HasPrefix(line, "$") || err != nil || n < 0 {
		return fmt.Errorf("INFO replied %q", strings.TrimSpace(line))
	}
	info := make([]byte, n+2)
	if _, err := io.ReadFull(r, info); err != nil {
		return fmt.Errorf("read INFO reply: %w", err)
	}
	if !strings.Contains(string(info), "\nprocess_id:"+strconv.Itoa(pid)+"\r\n") {
		return fmt.Errorf("%s is served by another redis-server", addr)
	}
	return nil
}

// sendShutdown sends SHUTDOWN NOSAVE. On success redis closes the
// connection without replying.
func sendShutdown(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	_, err = io.WriteString(conn, "SHUTDOWN NOSAVE\r\n")
	return err
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("redistest: find a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		if err := l.Close(); err != nil {
			return 0, fmt.Errorf("redistest: release port %d: %w", port, err)
		}
		if port != 6379 {
			return port, nil
		}
	}
}

// portTaken reports whether a redis log says the TCP port could not be bound.
func portTaken(log string) bool {
	return strings.Contains(log, "Could not create server TCP listening socket") ||
		strings.Contains(strings.ToLower(log), "failed listening on port")
}

func lastLines(text string, n int) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
