package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

const (
	procPage  = "1001"
	procToken = "EAAprocessTestToken"
)

// startWorkerProcess runs `pagesend worker` as a real child process (this
// test binary acting as main) and returns it with its log buffer.
func startWorkerProcess(t *testing.T, redisURL, graphURL, pagesFile, opsAddr string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "worker")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.Env = append(os.Environ(),
		"PAGESEND_TEST_AS_MAIN=1",
		"PAGESEND_REDIS_URL="+redisURL,
		"PAGESEND_GRAPH_URL="+graphURL,
		"PAGESEND_PAGES_FILE="+pagesFile,
		"PAGESEND_OPS_ADDR="+opsAddr,
		"PAGESEND_CONCURRENCY=20",
		"PAGESEND_SHUTDOWN_TIMEOUT=10s",
		"PAGESEND_LOG_LEVEL=info",
		"PROC_TEST_TOKEN="+procToken,
	)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, &logs
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

// TestWorkerProcessSIGTERMLosesNothing runs the real binary under load,
// sends it SIGTERM, and checks it exits cleanly within its shutdown
// timeout, that its ops server answered while it ran, and that a second
// worker delivers every message that was left.
func TestWorkerProcessSIGTERMLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("process test")
	}
	rs := redistest.Start(t, redistest.Options{})
	fake := graphtest.Start(t, graphtest.Options{Tokens: map[string]string{procPage: procToken}, Latency: 40 * time.Millisecond})
	pagesFile := filepath.Join(t.TempDir(), "pages.json")
	os.WriteFile(pagesFile, []byte(`{"default_rate": 1000, "default_burst": 1000, "pages": [{"id": "`+procPage+`", "access_token_env": "PROC_TEST_TOKEN"}]}`), 0o600)

	enq := enqueue.NewClient(asynq.RedisClientOpt{Addr: rs.Addr()})
	defer enq.Close()
	const n = 400
	jobs := make([]enqueue.Job, n)
	for i := range jobs {
		jobs[i] = enqueue.Job{PageID: procPage, Request: &graphapi.Request{
			Recipient: &graphapi.Recipient{ID: fmt.Sprint(10000 + i)}, MessagingType: "UPDATE",
			Message: &graphapi.Message{Text: "load"},
		}}
	}
	infos, err := enq.EnqueueBatch(context.Background(), jobs)
	if err != nil {
		t.Fatal(err)
	}

	ops := freeAddr(t)
	cmd, logs := startWorkerProcess(t, rs.URL(), fake.URL(), pagesFile, ops)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := fake.WaitCalls(ctx, 60); err != nil {
		t.Fatalf("%v\nworker logs:\n%s", err, logs)
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/monitor/", "/monitor/api/queues"} {
		resp, err := http.Get("http://" + ops + path)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("GET %s: %v %v", path, resp, err)
		} else {
			resp.Body.Close()
		}
	}

	sent := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	took := time.Since(sent)
	if err != nil {
		t.Fatalf("worker exited with %v after SIGTERM\nlogs:\n%s", err, logs)
	}
	if took > 10*time.Second+3*time.Second {
		t.Errorf("exit took %v, shutdown timeout is 10s", took)
	}
	atStop := fake.CallCount()
	if atStop >= n {
		t.Fatalf("all %d sent before SIGTERM: the test needs more load", n)
	}
	if strings.Contains(logs.String(), procToken) {
		t.Error("the worker logged the access token")
	}

	cmd2, logs2 := startWorkerProcess(t, rs.URL(), fake.URL(), pagesFile, "")
	in := asynq.NewInspector(asynq.RedisClientOpt{Addr: rs.Addr()})
	defer in.Close()
	eventually(t, 60*time.Second, "every task to complete", func() bool {
		q, err := in.GetQueueInfo(job.QueueDefault)
		return err == nil && q.Completed == n
	})
	cmd2.Process.Signal(syscall.SIGTERM)
	if err := cmd2.Wait(); err != nil {
		t.Errorf("second worker: %v\n%s", err, logs2)
	}
	seen := map[string]int{}
	for _, c := range fake.Calls() {
		seen[c.Recipient]++
	}
	dups := 0
	for i := range n {
		switch k := seen[fmt.Sprint(10000+i)]; {
		case k == 0:
			t.Errorf("message %d (%s) never sent", i, infos[i].ID)
		case k > 1:
			dups += k - 1
		}
	}
	t.Logf("SIGTERM after %d of %d sends; exited in %v; %d duplicate sends after restart", atStop, n, took.Round(time.Millisecond), dups)
}
