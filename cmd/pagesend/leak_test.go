package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/pagesend/pagesend/enqueue"
	"github.com/pagesend/pagesend/graphapi"
	"github.com/pagesend/pagesend/graphapi/graphtest"
	"github.com/pagesend/pagesend/internal/job"
	"github.com/pagesend/pagesend/internal/redistest"
	"github.com/pagesend/pagesend/ratelimit"
)

// Recognisable secrets: if any of them (or a telltale piece of one) shows
// up anywhere it must not, the scan names the place.
const (
	leakToken      = "EA" + "AleakTestToken0123456789abcdefXYZ" // split so repo scans for real tokens stay quiet
	leakAppSecret  = "appsecret-LEAK-canary-42"
	leakUIUser     = "leak-operator"
	leakUIPassword = "ui-pass-LEAK-7"

	leakTokenEnv   = "LEAK_TEST_PAGE_TOKEN"
	leakUnsetEnv   = "LEAK_TEST_UNSET_TOKEN" // never set: token_missing
	leakPageSend   = "2001"                  // sends, 551 drop, 100 dead-letters
	leakPage190    = "2002"                  // Meta answers 190 and echoes the token
	leakPage613    = "2003"                  // throttled
	leakPageNoTok  = "2004"                  // its token variable is unset
	rcpt551        = "5510001"
	rcpt100        = "1000001"
	rcpt100Echo    = "1000002"
	rcpt190        = "1900001"
	rcpt613        = "6130001"
	rcptEnqueueCmd = "7770001"
	echo190Message = "Malformed access token " + leakToken
	echo100Message = "(#100) Invalid parameter: the access_token " + leakToken + " is not valid for this call"
)

// needle is one string that must not appear.
type needle struct{ name, value string }

func leakNeedles() []needle {
	proof := graphapi.AppSecretProof(leakAppSecret, leakToken)
	return []needle{
		{"page token", leakToken},
		{"page token (fragment)", "leakTestToken"},
		{"app secret", leakAppSecret},
		{"app secret (fragment)", "LEAK-canary"},
		{"UI password", leakUIPassword},
		{"UI password (fragment)", "pass-LEAK"},
		{"UI basic-auth credentials (base64)", base64.StdEncoding.EncodeToString([]byte(leakUIUser + ":" + leakUIPassword))},
		{"appsecret_proof", proof},
		{"appsecret_proof (first 16 hex digits)", proof[:16]},
	}
}

// leakScanner looks for every needle in what it is given and remembers
// where it found one, with the text around it (the secret itself replaced
// by its name, so the report is readable).
type leakScanner struct {
	needles  []needle
	findings []string
	items    map[string]int // category → items scanned
	bytes    map[string]int // category → bytes scanned
}

func newLeakScanner(needles []needle) *leakScanner {
	return &leakScanner{needles: needles, items: map[string]int{}, bytes: map[string]int{}}
}

// scan checks data, found in category at where ("redis", `key "x" field "msg"`).
func (s *leakScanner) scan(category, where string, data []byte) {
	s.items[category]++
	s.bytes[category] += len(data)
	for _, n := range s.needles {
		off := 0
		for {
			i := bytes.Index(data[off:], []byte(n.value))
			if i < 0 {
				break
			}
			i += off
			s.findings = append(s.findings, fmt.Sprintf("LEAK of %s in %s: %s: …%s…", n.name, category, where, s.context(data, i, len(n.value))))
			off = i + len(n.value)
		}
	}
}

func (s *leakScanner) scanString(category, where, data string) {
	s.scan(category, where, []byte(data))
}

// context is the text around data[i:i+n], secrets named rather than shown.
func (s *leakScanner) context(data []byte, i, n int) string {
	const around = 100
	from, to := max(0, i-around), min(len(data), i+n+around)
	return fmt.Sprintf("%q", hideSecrets(string(data[from:to])))
}

func (s *leakScanner) summary() string {
	var cats []string
	for c := range s.items {
		cats = append(cats, c)
	}
	sort.Strings(cats)
	var b strings.Builder
	for _, c := range cats {
		fmt.Fprintf(&b, "%s: %d items, %d bytes; ", c, s.items[c], s.bytes[c])
	}
	return strings.TrimSuffix(b.String(), "; ")
}

// syncBuffer collects a child process's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// recordedRequest is what the recording proxy in front of the fake saw.
type recordedRequest struct {
	uri    string
	header http.Header
}

// TestNoSecretLeaks runs the real worker binary with a Page token, an app
// secret and a UI password that are easy to recognise, drives traffic
// through every outcome — including Meta echoing the token in a 190 and a
// 100 — and then looks for the secrets (and the appsecret_proof derived
// from them) in every Redis key and value, the worker's debug logs,
// /metrics, the asynqmon API, the CLI's output and the URLs the fake Graph
// API received.
func TestNoSecretLeaks(t *testing.T) {
	if testing.Short() {
		t.Skip("process test")
	}
	needles := leakNeedles()
	proof := graphapi.AppSecretProof(leakAppSecret, leakToken)
	sc := newLeakScanner(needles)

	rs := redistest.Start(t, redistest.Options{})
	fake := graphtest.Start(t, graphtest.Options{
		Tokens:    map[string]string{leakPageSend: leakToken, leakPage190: leakToken, leakPage613: leakToken},
		AppSecret: leakAppSecret,
	})
	fake.ScriptRecipient(rcpt551, graphtest.Fail(551, 0))
	fake.ScriptRecipient(rcpt100, graphtest.Fail(100, 0))
	fake.ScriptRecipient(rcpt100Echo, graphtest.Fail(100, 0).WithMessage(echo100Message))
	fake.ScriptRecipient(rcpt190, graphtest.Fail(190, 0).WithMessage(echo190Message))
	fake.ScriptRecipient(rcpt613, graphtest.Fail(613, 0))

	// A proxy in front of the fake records each request's full URI and
	// headers: graphtest.Call keeps the path, not the query.
	fakeURL, _ := url.Parse(fake.URL())
	var (
		recMu    sync.Mutex
		recorded []recordedRequest
	)
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(fakeURL) }}
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		recMu.Lock()
		recorded = append(recorded, recordedRequest{uri: r.RequestURI, header: r.Header.Clone()})
		recMu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	defer proxy.Close()

	pagesFile := filepath.Join(t.TempDir(), "pages.json")
	pagesJSON := fmt.Sprintf(`{"default_rate": 1000, "default_burst": 1000, "pages": [
  {"id": %q, "access_token_env": %q},
  {"id": %q, "access_token_env": %q},
  {"id": %q, "access_token_env": %q},
  {"id": %q, "access_token_env": %q}
]}`, leakPageSend, leakTokenEnv, leakPage190, leakTokenEnv, leakPage613, leakTokenEnv, leakPageNoTok, leakUnsetEnv)
	if err := os.WriteFile(pagesFile, []byte(pagesJSON), 0o600); err != nil {
		t.Fatal(err)
	}

	// Every variable the worker gets; the CLI commands run with them too,
	// so a secret in their environment that strays into their output is
	// caught.
	ops := freeAddr(t)
	vars := map[string]string{
		"PAGESEND_REDIS_URL":        rs.URL(),
		"PAGESEND_GRAPH_URL":        proxy.URL,
		"PAGESEND_PAGES_FILE":       pagesFile,
		"PAGESEND_OPS_ADDR":         ops,
		"PAGESEND_CONCURRENCY":      "20",
		"PAGESEND_SHUTDOWN_TIMEOUT": "5s",
		"PAGESEND_LOG_LEVEL":        "debug",
		"PAGESEND_APP_SECRET":       leakAppSecret,
		"PAGESEND_UI_USER":          leakUIUser,
		"PAGESEND_UI_PASSWORD":      leakUIPassword,
		"PAGESEND_UI_READONLY":      "false",
		leakTokenEnv:                leakToken,
	}

	// Traffic, enqueued before the worker starts.
	jobs, normal := leakTestJobs(t)
	enq := enqueue.NewClient(asynq.RedisClientOpt{Addr: rs.Addr()})
	defer enq.Close()
	if _, err := enq.EnqueueBatch(context.Background(), jobs); err != nil {
		t.Fatal(err)
	}
	// A task no job would make: it is dead-lettered as undecodable.
	ac := asynq.NewClient(asynq.RedisClientOpt{Addr: rs.Addr()})
	defer ac.Close()
	if _, err := ac.Enqueue(asynq.NewTask(job.TaskType, []byte(`{"v":1,"page_id":"`+leakPageSend+`","request":{"recipient":{"id":"42"},"sender_action":"typing_on"},"surprise":true}`)),
		asynq.Queue(job.QueueDefault), asynq.MaxRetry(3), asynq.Retention(time.Hour)); err != nil {
		t.Fatal(err)
	}

	// The CLI, in-process, with the worker's environment. A producer that
	// wrongly puts the token into a job must see the field named, never
	// the value echoed.
	badJob := `{"page_id":"` + leakPageSend + `","access_token":"` + leakToken + `","request":{"recipient":{"id":"1"},"messaging_type":"UPDATE","message":{"text":""}}}`
	code, out, errOut := runCmd(t, badJob+"\n", vars, "enqueue")
	if code != 1 || out != "" || !strings.Contains(errOut, "access_token") || !strings.Contains(errOut, "nothing enqueued") {
		t.Errorf("enqueue of an invalid job: exit %d, stdout %q, stderr %q", code, hideSecrets(out), hideSecrets(errOut))
	}
	sc.scanString("cli", "enqueue (invalid job) stdout", out)
	sc.scanString("cli", "enqueue (invalid job) stderr", errOut)
	goodJob := `{"page_id":"` + leakPageSend + `","idempotency_key":"leak-cli-1","request":{"recipient":{"id":"` + rcptEnqueueCmd + `"},"messaging_type":"UPDATE","message":{"text":"hello from the enqueue command"}}}`
	code, out, errOut = runCmd(t, goodJob+"\n", vars, "enqueue")
	if code != 0 || strings.TrimSpace(out) != "leak-cli-1" {
		t.Errorf("enqueue of a valid job: exit %d, stdout %q, stderr %q", code, hideSecrets(out), hideSecrets(errOut))
	}
	sc.scanString("cli", "enqueue (valid job) stdout", out)
	sc.scanString("cli", "enqueue (valid job) stderr", errOut)

	wantCompleted := normal + 2 // the sends, the enqueue command's job and the 551 drop
	const wantArchived = 3      // two 100s and the undecodable task
	held := []string{leakPage190, leakPage613, leakPageNoTok}

	cmd := exec.Command(os.Args[0], "worker")
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.Env = []string{"PAGESEND_TEST_AS_MAIN=1"}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !strings.HasPrefix(k, "PAGESEND_") && k != leakUnsetEnv && k != leakTokenEnv {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})

	// Settle: every job sent, dropped or dead-lettered, except the three
	// held by their Pages' pauses (190: until resumed; 613: a minute;
	// token_missing: until a token is configured).
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer rdb.Close()
	pauses := ratelimit.NewPauses(rdb, "")
	in := asynq.NewInspector(asynq.RedisClientOpt{Addr: rs.Addr()})
	defer in.Close()
	ctx := context.Background()
	var state string
	settled := func() bool {
		var completed, archived, busy, waiting int
		qs, err := in.Queues()
		if err != nil {
			state = err.Error()
			return false
		}
		for _, q := range qs {
			info, err := in.GetQueueInfo(q)
			if err != nil {
				state = err.Error()
				return false
			}
			completed += info.Completed
			archived += info.Archived
			busy += info.Pending + info.Active
			waiting += info.Scheduled + info.Retry
		}
		state = fmt.Sprintf("completed %d/%d, archived %d/%d, pending+active %d, scheduled+retry %d", completed, wantCompleted, archived, wantArchived, busy, waiting)
		if completed != wantCompleted || archived != wantArchived || busy != 0 || waiting != len(held) {
			return false
		}
		for _, page := range held {
			p, err := pauses.Get(ctx, page)
			if err != nil || p == nil {
				state += "; page " + page + " not paused yet"
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(45 * time.Second)
	for !settled() {
		if cmd.ProcessState != nil || time.Now().After(deadline) {
			t.Fatalf("traffic did not settle: %s\nworker logs:\n%s", state, hideSecrets(logs.String()))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("settled: %s", state)

	// The pauses say what happened, and the 190's echo is scrubbed.
	wantReason := map[string]ratelimit.Reason{leakPage190: ratelimit.ReasonTokenInvalid, leakPage613: ratelimit.ReasonThrottled, leakPageNoTok: ratelimit.ReasonTokenMissing}
	for page, reason := range wantReason {
		p, _ := pauses.Get(ctx, page)
		if p == nil || p.Reason != reason {
			t.Errorf("page %s: pause %s, want reason %s", page, hideSecrets(fmt.Sprintf("%+v", p)), reason)
		}
	}
	if p, _ := pauses.Get(ctx, leakPage190); p == nil || !strings.Contains(p.Detail, "Malformed access token [redacted]") {
		t.Errorf("the 190's pause detail does not show the scrubbed echo: %s", hideSecrets(fmt.Sprintf("%+v", p)))
	}

	// pages status, with the worker's environment.
	code, out, errOut = runCmd(t, "", vars, "pages", "status")
	if code != 0 {
		t.Errorf("pages status: exit %d, %q", code, hideSecrets(errOut))
	}
	for _, w := range []string{leakPage190, "token_invalid", "Malformed access token [redacted]", leakPage613, "throttled", leakPageNoTok, "token_missing"} {
		if !strings.Contains(out, w) {
			t.Errorf("pages status lacks %q:\n%s", w, hideSecrets(out))
		}
	}
	sc.scanString("cli", "pages status stdout", out)
	sc.scanString("cli", "pages status stderr", errOut)
	code, out, errOut = runCmd(t, "", vars, "pages", "status", leakPage190)
	if code != 0 || !strings.Contains(out, "[redacted]") {
		t.Errorf("pages status %s: exit %d, %q, %q", leakPage190, code, hideSecrets(out), hideSecrets(errOut))
	}
	sc.scanString("cli", "pages status "+leakPage190+" stdout", out)
	sc.scanString("cli", "pages status "+leakPage190+" stderr", errOut)

	// Redis: every key name and every value.
	nKeys, redisText := scanRedis(t, rdb, sc)
	if nKeys <= 10 {
		t.Errorf("only %d Redis keys scanned", nKeys)
	}
	if !strings.Contains(redisText, "Malformed access token [redacted]") {
		t.Error("the scrubbed 190 message is nowhere in Redis: the echo path was not exercised")
	}
	if !strings.Contains(redisText, "the access_token [redacted] is not valid") {
		t.Error("the scrubbed 100 message is nowhere in Redis: the dead-letter echo path was not exercised")
	}

	// /metrics.
	status, metricsBody := leakGet(t, "http://"+ops+"/metrics", false)
	if status != 200 || !strings.Contains(metricsBody, "pagesend_messages_total") {
		t.Errorf("GET /metrics: %d, pagesend_messages_total present: %v", status, strings.Contains(metricsBody, "pagesend_messages_total"))
	}
	sc.scanString("metrics", "GET /metrics", metricsBody)
	for _, path := range []string{"/healthz", "/readyz"} {
		_, body := leakGet(t, "http://"+ops+path, false)
		sc.scanString("ops", "GET "+path, body)
	}

	// The UI: unauthenticated and wrongly authenticated answers, the page
	// itself, and every API listing and task.
	if status, body := leakGet(t, "http://"+ops+"/monitor/api/queues", false); status != http.StatusUnauthorized {
		t.Errorf("UI without credentials: %d", status)
	} else {
		sc.scanString("ui", "GET /monitor/api/queues without credentials", body)
	}
	archivedSeen := scanUI(t, "http://"+ops, sc)
	if archivedSeen < wantArchived {
		t.Errorf("the UI listed %d archived tasks, want %d", archivedSeen, wantArchived)
	}

	// What reached the fake: the token only in the Authorization header,
	// the proof in the query, the secret nowhere.
	calls := fake.Calls()
	if len(calls) < normal+5 {
		t.Errorf("the fake got %d calls, want at least %d", len(calls), normal+5)
	}
	for _, c := range calls {
		sc.scanString("graph-calls", fmt.Sprintf("call %d path", c.N), c.Path)
		if c.Token != leakToken {
			t.Errorf("call %d to %s: token %q, want the Page token in the Authorization header", c.N, c.Path, hideSecrets(c.Token))
		}
		if c.Proof != proof {
			t.Errorf("call %d to %s: appsecret_proof %q, want %q", c.N, c.Path, c.Proof, proof)
		}
	}
	recMu.Lock()
	reqs := append([]recordedRequest(nil), recorded...)
	recMu.Unlock()
	if len(reqs) != len(calls) {
		t.Errorf("the proxy saw %d requests, the fake %d calls", len(reqs), len(calls))
	}
	urlScan := newLeakScanner(needlesWithout(needles, "appsecret_proof", "appsecret_proof (first 16 hex digits)"))
	for i, r := range reqs {
		urlScan.scanString("graph-urls", fmt.Sprintf("request %d URI", i+1), r.uri)
		if strings.Contains(r.uri, "access_token") {
			t.Errorf("request %d: access_token in the URL %s", i+1, hideSecrets(r.uri))
		}
		if !strings.Contains(r.uri, "appsecret_proof="+proof) {
			t.Errorf("request %d: URL %s lacks the appsecret_proof", i+1, r.uri)
		}
		for k, vs := range r.header {
			if k == "Authorization" {
				if len(vs) != 1 || vs[0] != "Bearer "+leakToken {
					t.Errorf("request %d: Authorization header is not the bearer token", i+1)
				}
				continue
			}
			for _, v := range vs {
				sc.scanString("graph-headers", fmt.Sprintf("request %d header %s", i+1, k), v)
			}
		}
	}
	sc.findings = append(sc.findings, urlScan.findings...)
	for k, v := range urlScan.items {
		sc.items[k] += v
		sc.bytes[k] += urlScan.bytes[k]
	}

	// Stop the worker and read everything it wrote.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("worker exited with %v", err)
	}
	logText := logs.String()
	logLines := strings.Split(strings.TrimSpace(logText), "\n")
	debugLines := strings.Count(logText, `"level":"DEBUG"`)
	for i, line := range logLines {
		sc.scanString("logs", fmt.Sprintf("worker output line %d", i+1), line)
	}
	if len(logLines) < 10 || debugLines == 0 {
		t.Errorf("worker wrote %d lines, %d at debug level: the log scan covers too little", len(logLines), debugLines)
	}
	if !strings.Contains(logText, "Malformed access token [redacted]") {
		t.Error("the scrubbed 190 message is not in the logs: the echo path was not exercised")
	}

	t.Logf("scanned %d Redis keys, %d log lines (%d debug), %d Graph calls; %s", nKeys, len(logLines), debugLines, len(calls), sc.summary())
	for _, f := range sc.findings {
		t.Error(f)
	}
}

// leakTestJobs is the traffic: every example request of graphapi's
// testdata as a send for the Page that works (in all three priorities),
// then one job for each outcome. It returns the jobs and how many are
// plain sends.
func leakTestJobs(t *testing.T) ([]enqueue.Job, int) {
	t.Helper()
	files, _ := filepath.Glob("../../graphapi/testdata/requests/*.json")
	var jobs []enqueue.Job
	prios := []string{"", "high", "low"}
	for i, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		req, err := graphapi.ParseRequest(data)
		if err != nil {
			t.Logf("skipping %s: %v", f, err)
			continue
		}
		j := enqueue.Job{PageID: leakPageSend, Request: req, Priority: prios[i%len(prios)]}
		if i%4 == 0 {
			j.IdempotencyKey = fmt.Sprintf("leak-%d", i)
		}
		jobs = append(jobs, j)
	}
	normal := len(jobs)
	if normal < 10 {
		t.Fatalf("only %d example requests in graphapi/testdata/requests", normal)
	}
	text := func(page, rcpt string) enqueue.Job {
		return enqueue.Job{PageID: page, Request: &graphapi.Request{
			Recipient: &graphapi.Recipient{ID: rcpt}, MessagingType: "UPDATE",
			Message: &graphapi.Message{Text: "leak test message"},
		}}
	}
	jobs = append(jobs,
		text(leakPageSend, rcpt551),
		text(leakPageSend, rcpt100),
		text(leakPageSend, rcpt100Echo),
		text(leakPage190, rcpt190),
		text(leakPage613, rcpt613),
		text(leakPageNoTok, "8880001"),
	)
	return jobs, normal
}

// hideSecrets names the secrets in s instead of showing them, for failure
// messages.
func hideSecrets(s string) string {
	for _, n := range leakNeedles() {
		s = strings.ReplaceAll(s, n.value, "<"+strings.ToUpper(n.name)+">")
	}
	return s
}

func needlesWithout(ns []needle, names ...string) []needle {
	var out []needle
	for _, n := range ns {
		skip := false
		for _, name := range names {
			skip = skip || n.name == name
		}
		if !skip {
			out = append(out, n)
		}
	}
	return out
}

// scanRedis scans every key name and value and returns the number of keys
// and all the text it saw (for checking what is there).
func scanRedis(t *testing.T, rdb *redis.Client, sc *leakScanner) (int, string) {
	t.Helper()
	ctx := context.Background()
	var all strings.Builder
	seen := map[string]bool{}
	var cursor uint64
	for {
		keys, next, err := rdb.Scan(ctx, cursor, "*", 1000).Result()
		if err != nil {
			t.Fatalf("SCAN: %v", err)
		}
		for _, k := range keys {
			if seen[k] {
				continue
			}
			seen[k] = true
			sc.scanString("redis", "key name", k)
			all.WriteString(k + "\n")
			typ, err := rdb.Type(ctx, k).Result()
			if err != nil {
				t.Errorf("TYPE %s: %v", k, err)
				continue
			}
			where := fmt.Sprintf("%s key %q", typ, k)
			value := func(what string, v string) {
				sc.scanString("redis", where+" "+what, v)
				all.WriteString(v + "\n")
			}
			switch typ {
			case "none": // expired since SCAN
			case "string":
				v, err := rdb.Get(ctx, k).Result()
				if err == nil {
					value("value", v)
				}
			case "hash":
				m, err := rdb.HGetAll(ctx, k).Result()
				if err != nil {
					t.Errorf("HGETALL %s: %v", k, err)
				}
				for f, v := range m {
					value(fmt.Sprintf("field name %q", f), f)
					value(fmt.Sprintf("field %q", f), v)
				}
			case "list":
				vs, err := rdb.LRange(ctx, k, 0, -1).Result()
				if err != nil {
					t.Errorf("LRANGE %s: %v", k, err)
				}
				for i, v := range vs {
					value(fmt.Sprintf("element %d", i), v)
				}
			case "zset":
				vs, err := rdb.ZRange(ctx, k, 0, -1).Result()
				if err != nil {
					t.Errorf("ZRANGE %s: %v", k, err)
				}
				for i, v := range vs {
					value(fmt.Sprintf("member %d", i), v)
				}
			case "set":
				vs, err := rdb.SMembers(ctx, k).Result()
				if err != nil {
					t.Errorf("SMEMBERS %s: %v", k, err)
				}
				for i, v := range vs {
					value(fmt.Sprintf("member %d", i), v)
				}
			case "stream":
				msgs, err := rdb.XRange(ctx, k, "-", "+").Result()
				if err != nil {
					t.Errorf("XRANGE %s: %v", k, err)
				}
				for _, m := range msgs {
					for f, v := range m.Values {
						value(fmt.Sprintf("entry %s field %q", m.ID, f), fmt.Sprint(v))
					}
				}
			default:
				t.Errorf("Redis key %q has type %s, which the scan does not read", k, typ)
			}
		}
		cursor = next
		if cursor == 0 {
			break
		}
	}
	// The server's configuration and client list, for good measure.
	if cfg, err := rdb.ConfigGet(ctx, "*").Result(); err == nil {
		for k, v := range cfg {
			sc.scanString("redis", "CONFIG "+k, v)
		}
	}
	if cl, err := rdb.ClientList(ctx).Result(); err == nil {
		sc.scanString("redis", "CLIENT LIST", cl)
	}
	return len(seen), all.String()
}

// leakGet fetches url, with the UI's basic auth when auth is set.
func leakGet(t *testing.T, url string, auth bool) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth {
		req.SetBasicAuth(leakUIUser, leakUIPassword)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return 0, ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var hdr strings.Builder
	for k, vs := range resp.Header {
		fmt.Fprintf(&hdr, "%s: %s\n", k, strings.Join(vs, ", "))
	}
	return resp.StatusCode, hdr.String() + "\n" + string(body)
}

// scanUI walks asynqmon's API: the overview endpoints, every task listing
// of every queue, and every task on its own. It returns how many archived
// tasks it listed.
func scanUI(t *testing.T, base string, sc *leakScanner) int {
	t.Helper()
	get := func(path string) string {
		status, body := leakGet(t, base+path, true)
		if status != 200 {
			t.Errorf("GET %s: %d %s", path, status, hideSecrets(body))
		}
		sc.scanString("ui", "GET "+path, body)
		return body
	}
	get("/monitor/")
	for _, p := range []string{"/queues", "/queue_stats", "/servers", "/redis_info", "/scheduler_entries"} {
		get("/monitor/api" + p)
	}
	var queues struct {
		Queues []struct {
			Queue string `json:"queue"`
		} `json:"queues"`
	}
	if err := json.Unmarshal([]byte(bodyOf(get("/monitor/api/queues"))), &queues); err != nil || len(queues.Queues) == 0 {
		t.Fatalf("UI queue list: %v (%d queues)", err, len(queues.Queues))
	}
	archived := 0
	for _, q := range queues.Queues {
		qp := "/monitor/api/queues/" + url.PathEscape(q.Queue)
		get(qp)
		get(qp + "/groups")
		for _, st := range []string{"pending", "active", "scheduled", "retry", "archived", "completed"} {
			body := get(qp + "/" + st + "_tasks?page=1&page_size=1000")
			var list struct {
				Tasks []struct {
					ID string `json:"id"`
				} `json:"tasks"`
			}
			if err := json.Unmarshal([]byte(bodyOf(body)), &list); err != nil {
				t.Errorf("UI %s tasks of %s: %v", st, q.Queue, err)
				continue
			}
			if st == "archived" {
				archived += len(list.Tasks)
			}
			for _, task := range list.Tasks {
				get(qp + "/tasks/" + url.PathEscape(task.ID))
			}
		}
	}
	return archived
}

// bodyOf drops the headers leakGet puts before a body.
func bodyOf(s string) string {
	_, body, _ := strings.Cut(s, "\n\n")
	return body
}
