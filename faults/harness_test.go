//go:build faults

package faults

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/pagesend/pagesend/enqueue"
	"github.com/pagesend/pagesend/graphapi"
	"github.com/pagesend/pagesend/graphapi/graphtest"
	"github.com/pagesend/pagesend/internal/job"
	"github.com/pagesend/pagesend/internal/redistest"
)

// poll is how often the scenarios look at the queue, the fake and /readyz.
const poll = 100 * time.Millisecond

// page is a Page the fake knows, with the token the worker gets from the
// environment.
type page struct {
	ID, Token string
	Rate      int // messages per second in the pages file
}

func (p page) tokenEnv() string { return "FAULTS_TOKEN_" + p.ID }

// rig is one scenario's world: its own redis-server, fake Graph API and
// pages file.
type rig struct {
	t         *testing.T
	redis     *redistest.Server
	fake      *graphtest.Server
	pages     []page
	pagesFile string
	in        *asynq.Inspector
}

type rigOptions struct {
	Pages      []page
	Latency    time.Duration
	AppendOnly bool
}

func newRig(t *testing.T, o rigOptions) *rig {
	t.Helper()
	rs := redistest.Start(t, redistest.Options{AppendOnly: o.AppendOnly})
	tokens := map[string]string{}
	var entries []string
	for _, p := range o.Pages {
		tokens[p.ID] = p.Token
		entries = append(entries, fmt.Sprintf(`{"id": %q, "access_token_env": %q, "rate": %d, "burst": %d}`, p.ID, p.tokenEnv(), p.Rate, p.Rate))
	}
	fake := graphtest.Start(t, graphtest.Options{Tokens: tokens, Latency: o.Latency})
	pagesFile := filepath.Join(t.TempDir(), "pages.json")
	body := `{"default_rate": 100, "default_burst": 100, "pages": [` + strings.Join(entries, ", ") + `]}`
	if err := os.WriteFile(pagesFile, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	in := asynq.NewInspector(asynq.RedisClientOpt{Addr: rs.Addr()})
	t.Cleanup(func() { in.Close() })
	return &rig{t: t, redis: rs, fake: fake, pages: o.Pages, pagesFile: pagesFile, in: in}
}

// jobs makes n text jobs for p, recipient ids first, first+1, …: one
// recipient per job, so the fake's calls tell which job they belong to.
func jobs(p page, first, n int) []enqueue.Job {
	out := make([]enqueue.Job, n)
	for i := range out {
		out[i] = enqueue.Job{PageID: p.ID, Request: &graphapi.Request{
			Recipient:     &graphapi.Recipient{ID: strconv.Itoa(first + i)},
			MessagingType: "UPDATE",
			Message:       &graphapi.Message{Text: "fault suite"},
		}}
	}
	return out
}

func recipients(js []enqueue.Job) []string {
	out := make([]string, len(js))
	for i, j := range js {
		out[i] = j.Request.Recipient.ID
	}
	return out
}

// enqueue stores js and returns the task ids Redis acknowledged; every one
// must be, or the scenario cannot say what was sent.
func (r *rig) enqueue(js []enqueue.Job) []string {
	r.t.Helper()
	c := enqueue.NewClient(asynq.RedisClientOpt{Addr: r.redis.Addr()})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	infos, err := c.EnqueueBatch(ctx, js)
	if err != nil {
		r.t.Fatalf("enqueue: %v (%d of %d acknowledged)", err, len(infos), len(js))
	}
	ids := make([]string, len(infos))
	for i, info := range infos {
		ids[i] = info.ID
	}
	return ids
}

// tally counts, per recipient, the calls the fake answered with success
// (HTTP 200 with a message id). A call the worker gave up on mid-answer
// (killed, timed out) still counts if the fake had decided success: Meta
// would have delivered that message.
type tally struct {
	ok    map[string]int
	calls map[string]int
}

func (r *rig) tally() tally {
	tl := tally{ok: map[string]int{}, calls: map[string]int{}}
	for _, c := range r.fake.Calls() {
		tl.calls[c.Recipient]++
		if c.Status == http.StatusOK && c.MessageID != "" {
			tl.ok[c.Recipient]++
		}
	}
	return tl
}

// delivered and duplicated over the given recipients.
func (tl tally) count(rcpts []string) (delivered, duplicated int) {
	for _, rc := range rcpts {
		if n := tl.ok[rc]; n > 0 {
			delivered++
			duplicated += n - 1
		}
	}
	return delivered, duplicated
}

// missing lists recipients without a successful call (at most 10).
func (tl tally) missing(rcpts []string) []string {
	var out []string
	for _, rc := range rcpts {
		if tl.ok[rc] == 0 && len(out) < 10 {
			out = append(out, rc)
		}
	}
	return out
}

// queueState sums the task states of every queue.
type queueState struct {
	Pending, Active, Scheduled, Retry, Archived, Completed int
}

func (q queueState) open() int { return q.Pending + q.Active + q.Scheduled + q.Retry }

func (q queueState) String() string {
	return fmt.Sprintf("pending=%d active=%d scheduled=%d retry=%d archived=%d completed=%d",
		q.Pending, q.Active, q.Scheduled, q.Retry, q.Archived, q.Completed)
}

func (r *rig) queues() (queueState, error) {
	var s queueState
	names, err := r.in.Queues()
	if err != nil {
		return s, err
	}
	for _, q := range names {
		info, err := r.in.GetQueueInfo(q)
		if err != nil {
			return s, err
		}
		s.Pending += info.Pending
		s.Active += info.Active
		s.Scheduled += info.Scheduled
		s.Retry += info.Retry
		s.Archived += info.Archived
		s.Completed += info.Completed
	}
	return s, nil
}

// waitSettled polls until every one of n tasks is completed or archived
// and the fake has seen a success for each recipient in want, or the
// deadline passes. It returns the last state seen and whether it settled.
func (r *rig) waitSettled(n int, want []string, deadline time.Duration) (queueState, bool) {
	end := time.Now().Add(deadline)
	var q queueState
	for {
		var err error
		q, err = r.queues()
		if err == nil && q.open() == 0 && q.Completed+q.Archived >= n {
			if d, _ := r.tally().count(want); d == len(want) {
				return q, true
			}
		}
		if time.Now().After(end) {
			return q, false
		}
		time.Sleep(poll)
	}
}

// archived returns the task ids in the archive (dead letters) of every
// queue.
func (r *rig) archived() map[string]string {
	out := map[string]string{}
	for q := range job.Queues {
		tasks, err := r.in.ListArchivedTasks(q, asynq.PageSize(1000))
		if err != nil {
			continue
		}
		for _, ti := range tasks {
			out[ti.ID] = ti.LastErr
		}
	}
	return out
}

// activeTasks is how many tasks Redis holds as active (leased).
func (r *rig) activeTasks() int {
	n := 0
	for q := range job.Queues {
		tasks, err := r.in.ListActiveTasks(q, asynq.PageSize(1000))
		if err == nil {
			n += len(tasks)
		}
	}
	return n
}

// --- worker processes ---

// workerProc is one `pagesend worker` child process.
type workerProc struct {
	t       *testing.T
	name    string
	cmd     *exec.Cmd
	ops     string // ops server address
	logPath string
	done    chan struct{}
	err     error // cmd.Wait's result, after done
}

// startWorker runs the real binary against r with the base settings below,
// overridden or extended by env ("KEY=value"), and waits until /readyz
// answers 200.
func (r *rig) startWorker(name string, env ...string) *workerProc {
	r.t.Helper()
	ops := freeAddr(r.t)
	logPath := filepath.Join(r.t.TempDir(), name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		r.t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(pagesendBin, "worker")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = sysProcAttr()
	base := []string{
		"PATH=" + os.Getenv("PATH"),
		"PAGESEND_REDIS_URL=" + r.redis.URL(),
		"PAGESEND_GRAPH_URL=" + r.fake.URL(),
		"PAGESEND_PAGES_FILE=" + r.pagesFile,
		"PAGESEND_OPS_ADDR=" + ops,
		"PAGESEND_UI=false",
		"PAGESEND_CONCURRENCY=50",
		"PAGESEND_SHUTDOWN_TIMEOUT=10s",
		"PAGESEND_BACKOFF_BASE=200ms",
		"PAGESEND_BACKOFF_CAP=2s",
		"PAGESEND_LOG_LEVEL=warn",
	}
	for _, p := range r.pages {
		base = append(base, p.tokenEnv()+"="+p.Token)
	}
	cmd.Env = mergeEnv(base, env)
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	w := &workerProc{t: r.t, name: name, cmd: cmd, ops: ops, logPath: logPath, done: make(chan struct{})}
	go func() {
		w.err = cmd.Wait()
		close(w.done)
	}()
	r.t.Cleanup(func() {
		if w.alive() {
			_ = cmd.Process.Kill()
			<-w.done
		}
		if r.t.Failed() {
			r.t.Logf("worker %s log tail:\n%s", name, w.logTail(40))
		}
	})
	end := time.Now().Add(20 * time.Second)
	for {
		if code, _ := w.readyz(); code == http.StatusOK {
			return w
		}
		if !w.alive() || time.Now().After(end) {
			r.t.Fatalf("worker %s not ready (alive=%v)\n%s", name, w.alive(), w.logTail(40))
		}
		time.Sleep(poll / 2)
	}
}

// mergeEnv returns base with each KEY=value of over replacing base's.
func mergeEnv(base, over []string) []string {
	out := append([]string(nil), base...)
	for _, kv := range over {
		k, _, _ := strings.Cut(kv, "=")
		replaced := false
		for i, b := range out {
			if strings.HasPrefix(b, k+"=") {
				out[i], replaced = kv, true
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}

func (w *workerProc) alive() bool {
	select {
	case <-w.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the process to be reaped.
func (w *workerProc) kill() {
	w.t.Helper()
	if err := w.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		w.t.Fatalf("kill %s: %v", w.name, err)
	}
	<-w.done
}

// terminate sends SIGTERM and waits up to limit for the exit. It returns
// how long the exit took and the exit error; it fails t (and kills the
// process) past limit.
func (w *workerProc) terminate(limit time.Duration) (time.Duration, error) {
	w.t.Helper()
	start := time.Now()
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		w.t.Fatalf("SIGTERM %s: %v", w.name, err)
	}
	select {
	case <-w.done:
		return time.Since(start), w.err
	case <-time.After(limit):
		_ = w.cmd.Process.Kill()
		<-w.done
		w.t.Fatalf("worker %s still running %v after SIGTERM; killed it", w.name, limit)
		return 0, nil
	}
}

func (w *workerProc) logTail(n int) string {
	data, err := os.ReadFile(w.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// logCount counts log lines containing s.
func (w *workerProc) logCount(s string) int {
	data, _ := os.ReadFile(w.logPath)
	return strings.Count(string(data), s)
}

// logCountSince counts JSON log lines containing s logged at or after t.
func (w *workerProc) logCountSince(s string, t time.Time) int {
	data, _ := os.ReadFile(w.logPath)
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.Contains(line, s) {
			continue
		}
		var rec struct {
			Time time.Time `json:"time"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && !rec.Time.Before(t) {
			n++
		}
	}
	return n
}

var opsClient = &http.Client{Timeout: 2 * time.Second}

// readyz returns /readyz's status and body (0 when the server does not
// answer).
func (w *workerProc) readyz() (int, string) {
	resp, err := opsClient.Get("http://" + w.ops + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// metric sums the samples of a Prometheus metric on /metrics (-1 if the
// server does not answer).
func (w *workerProc) metric(name string) float64 {
	resp, err := opsClient.Get("http://" + w.ops + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(f) > 0 {
			v, _ := strconv.ParseFloat(f[0], 64)
			sum += v
		}
	}
	return sum
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// --- the counting proxy ---

// callProxy sits between the worker and the fake and counts calls in
// flight: started and not yet answered. It knows when a call ends — which
// the fake's record (taken when the answer is decided) does not — and
// whether it ended because the caller went away. Use it only with answers
// a proxy passes through unchanged (not Reset).
type callProxy struct {
	srv      *http.Server
	url      string
	inFlight atomic.Int64
	started  atomic.Int64
	aborted  atomic.Int64 // the caller went away before the answer
}

func startProxy(t *testing.T, target string) *callProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 200, IdleConnTimeout: 30 * time.Second}
	rp.ErrorLog = nil
	rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) { w.WriteHeader(http.StatusBadGateway) }
	p := &callProxy{}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.started.Add(1)
		p.inFlight.Add(1)
		defer p.inFlight.Add(-1)
		rp.ServeHTTP(w, r)
		if r.Context().Err() != nil {
			p.aborted.Add(1)
		}
	})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.url = "http://" + l.Addr().String()
	go p.srv.Serve(l)
	t.Cleanup(func() { p.srv.Close() })
	return p
}

// --- /readyz watcher ---

// readyWatch polls a worker's /readyz and keeps each change of status.
type readyWatch struct {
	mu      sync.Mutex
	changes []readyChange
	stop    chan struct{}
	done    chan struct{}
}

type readyChange struct {
	At     time.Time
	Status int
	Body   string
}

func watchReady(w *workerProc) *readyWatch {
	rw := &readyWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(rw.done)
		last := -1
		for {
			code, body := w.readyz()
			if code != last {
				rw.mu.Lock()
				rw.changes = append(rw.changes, readyChange{At: time.Now(), Status: code, Body: body})
				rw.mu.Unlock()
				last = code
			}
			select {
			case <-rw.stop:
				return
			case <-time.After(poll):
			}
		}
	}()
	return rw
}

func (rw *readyWatch) history() []readyChange {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	return append([]readyChange(nil), rw.changes...)
}

// waitFor polls until the latest status is code or the deadline passes.
func (rw *readyWatch) waitFor(code int, deadline time.Duration) (readyChange, bool) {
	end := time.Now().Add(deadline)
	for {
		h := rw.history()
		if len(h) > 0 && h[len(h)-1].Status == code {
			return h[len(h)-1], true
		}
		if time.Now().After(end) {
			return readyChange{}, false
		}
		time.Sleep(poll / 2)
	}
}

func (rw *readyWatch) close() {
	close(rw.stop)
	<-rw.done
}

// waitUntil polls cond until it holds or the deadline passes.
func waitUntil(deadline time.Duration, cond func() bool) bool {
	end := time.Now().Add(deadline)
	for {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
		time.Sleep(poll / 2)
	}
}
