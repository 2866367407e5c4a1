package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/pagesend/pagesend/internal/job"
	"github.com/pagesend/pagesend/internal/redistest"
	"github.com/pagesend/pagesend/internal/testwait"
)

// TestMain lets the test binary act as the pagesend binary, so process
// tests (SIGTERM) run the real main without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("PAGESEND_TEST_AS_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// runCmd runs a command in-process with the given environment.
func runCmd(t *testing.T, stdin string, vars map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	getenv := func(k string) string { return vars[k] }
	code = run(context.Background(), args, env{strings.NewReader(stdin), &out, &errb, getenv})
	return code, out.String(), errb.String()
}

func TestHelpListsVariables(t *testing.T) {
	tests := map[string][]string{
		"worker":  {"PAGESEND_REDIS_URL", "PAGESEND_GRAPH_URL", "PAGESEND_GRAPH_VERSION", "PAGESEND_PAGES_FILE", "PAGESEND_APPSECRET_TIME", "PAGESEND_CONCURRENCY", "PAGESEND_OPS_ADDR", "PAGESEND_LOG_LEVEL", "PAGESEND_LOG_FORMAT", "PAGESEND_APP_SECRET", "--shutdown-timeout"},
		"enqueue": {"PAGESEND_REDIS_URL", "-f"},
		"pages":   {"PAGESEND_REDIS_URL", "status", "pause", "resume", "--for"},
		"demo":    {"--duration", "PAGESEND_OPS_ADDR"},
	}
	for cmd, want := range tests {
		code, out, _ := runCmd(t, "", nil, cmd, "--help")
		if code != 0 {
			t.Errorf("%s --help: exit %d", cmd, code)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s --help lacks %s:\n%s", cmd, w, out)
			}
		}
	}
	if code, _, errOut := runCmd(t, "", nil, "frobnicate"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Errorf("unknown command: exit %d, %q", code, errOut)
	}
}

func TestBadEnvironmentIsAnError(t *testing.T) {
	code, _, errOut := runCmd(t, "", map[string]string{"PAGESEND_CONCURRENCY": "lots", "PAGESEND_PAGES_FILE": "x"}, "worker")
	if code == 0 || !strings.Contains(errOut, "PAGESEND_CONCURRENCY") {
		t.Errorf("exit %d, %q", code, errOut)
	}
	code, _, errOut = runCmd(t, "", nil, "worker")
	if code != 2 || !strings.Contains(errOut, "PAGESEND_PAGES_FILE") {
		t.Errorf("worker without pages file: exit %d, %q", code, errOut)
	}
}

func TestRedisURLErrorsHideThePassword(t *testing.T) {
	for _, u := range []string{"redis://:s3cr%t@localhost:6379/0", "mysql://:s3cret@localhost/0"} {
		code, _, errOut := runCmd(t, "", map[string]string{"PAGESEND_REDIS_URL": u}, "pages", "status")
		if code != 2 || strings.Contains(errOut, "s3cr") || !strings.Contains(errOut, "PAGESEND_REDIS_URL") {
			t.Errorf("%s: exit %d, %q", u, code, errOut)
		}
	}
}

func TestEnqueueCommand(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	vars := map[string]string{"PAGESEND_REDIS_URL": srv.URL()}
	in := asynq.NewInspector(asynq.RedisClientOpt{Addr: srv.Addr()})
	defer in.Close()
	size := func() int {
		info, err := in.GetQueueInfo(job.QueueDefault)
		if err != nil {
			return 0
		}
		return info.Size
	}

	// One bad job among good ones: nothing is enqueued, every problem named
	// with its line.
	lines := `{"page_id":"1","request":{"recipient":{"id":"2"},"messaging_type":"UPDATE","message":{"text":"ok"}}}
{"page_id":"1","request":{"recipient":{"id":"2"},"messaging_type":"UPDATE","message":{"text":"` + strings.Repeat("x", 2001) + `"}}}

{"page_id":"x","request":{"recipient":{"id":"2"},"sender_action":"typing_on"}}
`
	code, out, errOut := runCmd(t, lines, vars, "enqueue")
	if code != 1 || out != "" {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	for _, w := range []string{"2 problem(s), nothing enqueued", "line 2: invalid request: request.message.text: 2001 characters, at most 2000", "line 4: invalid request: page_id: not a numeric Page id"} {
		if !strings.Contains(errOut, w) {
			t.Errorf("stderr lacks %q:\n%s", w, errOut)
		}
	}
	if n := size(); n != 0 {
		t.Fatalf("%d tasks stored after a refused batch", n)
	}

	// JSON lines: one id per line; a duplicate key prints its id again.
	good := `{"page_id":"1","idempotency_key":"k-1","request":{"recipient":{"id":"2"},"messaging_type":"UPDATE","message":{"text":"a"}}}
{"page_id":"1","request":{"recipient":{"id":"3"},"messaging_type":"UPDATE","message":{"text":"b"}}}
{"page_id":"1","idempotency_key":"k-1","request":{"recipient":{"id":"2"},"messaging_type":"UPDATE","message":{"text":"a"}}}
`
	code, out, errOut = runCmd(t, good, vars, "enqueue")
	ids := strings.Fields(out)
	if code != 0 || len(ids) != 3 || ids[0] != "k-1" || ids[2] != "k-1" || !strings.Contains(errOut, "duplicate") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if n := size(); n != 2 {
		t.Errorf("%d tasks stored, want 2", n)
	}

	// A single pretty-printed object from a file.
	f := t.TempDir() + "/job.json"
	os.WriteFile(f, []byte("{\n  \"page_id\": \"1\",\n  \"request\": {\"recipient\": {\"id\": \"4\"}, \"sender_action\": \"mark_seen\"}\n}\n"), 0o600)
	if code, out, errOut := runCmd(t, "", vars, "enqueue", "-f", f); code != 0 || len(strings.Fields(out)) != 1 {
		t.Errorf("file: exit %d %q %q", code, out, errOut)
	}
	if code, _, errOut := runCmd(t, "", vars, "enqueue"); code != 1 || !strings.Contains(errOut, "no jobs") {
		t.Errorf("empty input: exit %d %q", code, errOut)
	}
	if code, _, errOut := runCmd(t, "{\"page_id\":", vars, "enqueue"); code != 1 || !strings.Contains(errOut, "line 1: invalid JSON") {
		t.Errorf("broken JSON: exit %d %q", code, errOut)
	}
}

func TestPagesCommand(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	vars := map[string]string{"PAGESEND_REDIS_URL": srv.URL()}
	steps := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"pages", "status"}, 0, "no Page is paused"},
		{[]string{"pages", "pause", "123", "--note", "maintenance"}, 0, "page 123 paused: manual, until resumed — maintenance"},
		{[]string{"pages", "pause", "456", "--for", "1h"}, 0, "page 456 paused: manual, until "},
		{[]string{"pages", "status"}, 0, "123   manual"},
		{[]string{"pages", "status", "123"}, 0, "maintenance"},
		{[]string{"pages", "resume", "123"}, 0, "page 123 resumed (was manual"},
		{[]string{"pages", "status", "123"}, 0, "page 123: sending (not paused)"},
		{[]string{"pages", "resume", "123"}, 0, "page 123 was not paused"},
		{[]string{"pages", "pause"}, 2, ""},
		{[]string{"pages", "pause", "abc"}, 2, ""},
		{[]string{"pages", "explode", "1"}, 2, ""},
	}
	for _, s := range steps {
		code, out, errOut := runCmd(t, "", vars, s.args...)
		if code != s.code || !strings.Contains(out, s.want) {
			t.Errorf("%v: exit %d (want %d), stdout %q, stderr %q", s.args, code, s.code, out, errOut)
		}
	}
}

// eventually waits for cond, polling with a deadline.
var eventually = testwait.Until

func TestEnqueueRetention(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	vars := map[string]string{"PAGESEND_REDIS_URL": rs.URL(), "PAGESEND_RETENTION": "1h"}
	code, out, errOut := runCmd(t, `{"page_id":"1","request":{"recipient":{"id":"2"},"sender_action":"typing_on"}}`, vars, "enqueue")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	in := asynq.NewInspector(asynq.RedisClientOpt{Addr: rs.Addr()})
	defer in.Close()
	ti, err := in.GetTaskInfo("default", strings.TrimSpace(out))
	if err != nil || ti.Retention != time.Hour {
		t.Errorf("task %+v, %v; want a retention of 1h", ti, err)
	}
}
