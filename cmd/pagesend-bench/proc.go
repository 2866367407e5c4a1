package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// workerProc is one `pagesend worker` process.
type workerProc struct {
	cmd  *exec.Cmd
	ops  string
	logs *syncBuffer
	done chan struct{} // closed when the process has exited
	err  error         // cmd.Wait's result, read after done
}

// pagesFile writes a pages file with the given Pages (rate, burst) and a
// large default, and returns its path in dir.
func pagesFile(dir string, limits map[string][2]float64) (string, error) {
	type page struct {
		ID          string  `json:"id"`
		AccessToken string  `json:"access_token"`
		Rate        float64 `json:"rate"`
		Burst       int     `json:"burst"`
	}
	f := struct {
		DefaultRate  float64 `json:"default_rate"`
		DefaultBurst int     `json:"default_burst"`
		Pages        []page  `json:"pages"`
	}{DefaultRate: 1000, DefaultBurst: 1000}
	for id, l := range limits {
		f.Pages = append(f.Pages, page{ID: id, AccessToken: benchToken, Rate: l[0], Burst: int(l[1])})
	}
	data, err := json.Marshal(f)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "pages.json")
	return path, os.WriteFile(path, data, 0o600)
}

// startWorkerProc runs `pagesend worker` with the production defaults
// except the addresses and a shorter shutdown timeout, and waits until its
// /readyz answers 200.
func (b *bench) startWorkerProc(ctx context.Context, redisURL, graphURL, pages string, extraEnv ...string) (*workerProc, error) {
	ops, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(b.cfg.Pagesend, "worker")
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.Env = append(os.Environ(),
		"PAGESEND_REDIS_URL="+redisURL,
		"PAGESEND_GRAPH_URL="+graphURL,
		"PAGESEND_PAGES_FILE="+pages,
		"PAGESEND_OPS_ADDR="+ops,
		"PAGESEND_SHUTDOWN_TIMEOUT=5s",
		"PAGESEND_LOG_FORMAT=text",
	)
	cmd.Env = append(cmd.Env, extraEnv...)
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s worker: %w", b.cfg.Pagesend, err)
	}
	p := &workerProc{cmd: cmd, ops: ops, logs: logs, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-p.done:
			return nil, fmt.Errorf("worker process exited during startup (%v):\n%s", p.err, p.logs.tail(20))
		default:
		}
		resp, err := client.Get("http://" + ops + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			p.kill()
			return nil, fmt.Errorf("worker process not ready after 20s (last: %v):\n%s", err, p.logs.tail(20))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for the process to exit, killing it after
// 15 s. It reports an exit other than a clean one.
func (p *workerProc) stop() error {
	select {
	case <-p.done:
		return p.exitErr()
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.exitErr()
	case <-time.After(15 * time.Second):
		p.kill()
		return fmt.Errorf("worker %d did not exit within 15 s of SIGTERM; killed:\n%s", p.cmd.Process.Pid, p.logs.tail(20))
	}
}

func (p *workerProc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

func (p *workerProc) exitErr() error {
	if p.err != nil {
		return fmt.Errorf("worker %d: %v:\n%s", p.cmd.Process.Pid, p.err, p.logs.tail(20))
	}
	return nil
}

// status reads a field of /proc/PID/status, in kB for memory fields.
func (p *workerProc) status(field string) (int64, error) {
	n := procField("/proc/"+strconv.Itoa(p.cmd.Process.Pid)+"/status", field)
	if n < 0 {
		return 0, fmt.Errorf("no %s in /proc/%d/status", field, p.cmd.Process.Pid)
	}
	return n, nil
}

// stopAll stops every process at once.
func stopAll(ps []*workerProc) error {
	errs := make([]error, len(ps))
	var wg sync.WaitGroup
	for i, p := range ps {
		if p == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = p.stop()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// syncBuffer collects a child's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) tail(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	lines := strings.Split(strings.TrimRight(s.b.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
