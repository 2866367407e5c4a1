package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pagesend/pagesend/internal/redistest"
)

const apiTestKey = "producer:0123456789abcdef0123456789abcdef-api-test"

func TestAPIHelp(t *testing.T) {
	code, out, _ := runCmd(t, "", nil, "api", "--help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, w := range []string{"PAGESEND_API_ADDR", "PAGESEND_REDIS_URL", "PAGESEND_API_KEYS", "PAGESEND_API_READONLY_KEYS",
		"PAGESEND_API_MAX_BODY", "PAGESEND_LOG_LEVEL", "PAGESEND_LOG_FORMAT", "--shutdown-timeout", "(default :8080)", "Environment only"} {
		if !strings.Contains(out, w) {
			t.Errorf("api --help lacks %s:\n%s", w, out)
		}
	}
	if _, out, _ := runCmd(t, "", nil, "help"); !strings.Contains(out, "  api ") {
		t.Errorf("the command list lacks api:\n%s", out)
	}
}

func TestAPIConfigErrors(t *testing.T) {
	short := "tiny:s3cret-but-short"
	tests := []struct {
		vars map[string]string
		want string
	}{
		{nil, "PAGESEND_API_KEYS"},
		{map[string]string{"PAGESEND_API_KEYS": short}, "PAGESEND_API_KEYS: key 1"},
		{map[string]string{"PAGESEND_API_KEYS": apiTestKey, "PAGESEND_API_READONLY_KEYS": "reader:" + strings.TrimPrefix(apiTestKey, "producer:")}, "same secret"},
		{map[string]string{"PAGESEND_API_KEYS": apiTestKey, "PAGESEND_API_MAX_BODY": "0"}, "PAGESEND_API_MAX_BODY"},
		{map[string]string{"PAGESEND_API_KEYS": apiTestKey, "PAGESEND_API_MAX_BODY": "1MB"}, "PAGESEND_API_MAX_BODY"},
	}
	for _, tt := range tests {
		code, _, errOut := runCmd(t, "", tt.vars, "api")
		if code == 0 || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d, %q; want %q", tt.vars, code, errOut, tt.want)
		}
		if strings.Contains(errOut, "s3cret") || strings.Contains(errOut, "0123456789abcdef") {
			t.Errorf("the error shows a key: %q", errOut)
		}
	}
}

// TestAPIProcessSIGTERM runs `pagesend api` as a real process, enqueues
// through it, and checks SIGTERM stops it cleanly without logging the key.
func TestAPIProcessSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("process test")
	}
	rs := redistest.Start(t, redistest.Options{})
	addr := freeAddr(t)
	cmd := exec.Command(os.Args[0], "api")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.Env = append(os.Environ(), "PAGESEND_TEST_AS_MAIN=1", "PAGESEND_REDIS_URL="+rs.URL(), "PAGESEND_API_ADDR="+addr,
		"PAGESEND_API_KEYS="+apiTestKey, "PAGESEND_LOG_FORMAT=text")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
	})
	waitHealthy(t, "http://"+addr)
	_, secret, _ := strings.Cut(apiTestKey, ":")
	req, _ := http.NewRequest("POST", "http://"+addr+"/v1/messages",
		strings.NewReader(`{"page_id":"1","request":{"recipient":{"id":"2"},"sender_action":"typing_on"}}`))
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("still running 15 s after SIGTERM\n%s", logs.String())
	}
	out := logs.String()
	if !strings.Contains(out, "api server stopped") || !strings.Contains(out, "key=producer") {
		t.Errorf("logs:\n%s", out)
	}
	if strings.Contains(out, secret) {
		t.Errorf("the key is in the logs:\n%s", out)
	}
}

func waitHealthy(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/healthz did not answer: %v", base, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestREADMEHTTPAPIExamples runs the shell blocks of README's "HTTP API"
// section as written — the key export, `pagesend api &`, the heredoc, each
// curl, `pagesend pages pause` — against a private Redis (and a free
// port instead of 8080), and checks every curl's status and the values
// its "# → STATUS {…}" comment shows.
func TestREADMEHTTPAPIExamples(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	script := readmeBlocks(t, string(data), "## HTTP API")
	rs := redistest.Start(t, redistest.Options{})
	sh := &readmeShell{t: t, vars: map[string]string{}, files: map[string]string{},
		addr: freeAddr(t), redisURL: rs.URL(), logs: &lockedBuffer{}}
	sh.run(script)
	sh.stop()
	if sh.curls < 6 {
		t.Errorf("ran %d curl examples; the section has more", sh.curls)
	}
}

// readmeBlocks returns the ```sh blocks of a README section, in order.
func readmeBlocks(t *testing.T, readme, heading string) []string {
	t.Helper()
	start := strings.Index(readme, "\n"+heading+"\n")
	if start < 0 {
		t.Fatalf("README has no %q section", heading)
	}
	section := readme[start+len(heading)+2:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	var lines []string
	in := false
	for _, l := range strings.Split(section, "\n") {
		switch {
		case !in && l == "```sh":
			in = true
		case in && l == "```":
			in = false
		case in:
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		t.Fatalf("no sh blocks in %q", heading)
	}
	return lines
}

// readmeShell runs the few shell forms README's examples use, and refuses
// anything else so the examples cannot drift into something untested.
type readmeShell struct {
	t        *testing.T
	vars     map[string]string
	files    map[string]string
	addr     string
	redisURL string
	logs     *lockedBuffer
	cancel   context.CancelFunc
	bgDone   chan int
	curls    int
	last     *http.Response
	lastBody []byte
	pending  string // the curl awaiting its "# →" line
}

func (sh *readmeShell) run(lines []string) {
	t := sh.t
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		for strings.HasSuffix(line, `\`) && i+1 < len(lines) {
			i++
			line = strings.TrimSuffix(line, `\`) + " " + strings.TrimSpace(lines[i])
		}
		line = strings.ReplaceAll(line, "redis://127.0.0.1:6379/0", sh.redisURL)
		line = strings.ReplaceAll(line, "http://127.0.0.1:8080", "http://"+sh.addr)
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "# → "):
			sh.expect(strings.TrimPrefix(trimmed, "# → "))
			continue
		case trimmed == "" || strings.HasPrefix(trimmed, "#"):
			continue
		}
		if sh.pending != "" {
			t.Errorf("README: %q has no \"# → STATUS\" line after it", sh.pending)
			sh.pending = ""
		}
		words := sh.words(trimmed)
		switch {
		case len(words) == 2 && words[0] == "export" && strings.Contains(words[1], "="):
			k, v, _ := strings.Cut(words[1], "=")
			sh.vars[k] = v
		case len(words) == 4 && words[0] == "cat" && words[1] == ">" && strings.HasPrefix(words[3], "<<"):
			tag := strings.TrimPrefix(words[3], "<<") // the quotes are gone: <<'JSON' is <<JSON
			var body []string
			for i++; i < len(lines) && lines[i] != tag; i++ {
				body = append(body, lines[i])
			}
			sh.files[words[2]] = strings.Join(body, "\n") + "\n"
		case words[0] == "curl":
			sh.curl(words[1:])
			sh.pending = trimmed
		case slicesIndex(words, "./cmd/pagesend") > 0:
			sh.pagesend(words)
		default:
			t.Fatalf("README: the test cannot run %q; keep the examples to export, cat <<, curl and go run ./cmd/pagesend", trimmed)
		}
	}
	if sh.pending != "" {
		t.Errorf("README: %q has no \"# → STATUS\" line after it", sh.pending)
	}
}

func slicesIndex(s []string, v string) int {
	for i, w := range s {
		if w == v {
			return i
		}
	}
	return -1
}

// words splits a line as sh would for these examples: quotes, $VAR,
// ${VAR}, $(openssl rand -hex N), and a trailing "# comment".
func (sh *readmeShell) words(line string) []string {
	var (
		words []string
		cur   strings.Builder
		has   bool
	)
	expand := func(i int) int { // at '$'; returns the index after the expansion
		rest := line[i+1:]
		if strings.HasPrefix(rest, "(") {
			end := strings.Index(rest, ")")
			cmd := strings.Fields(rest[1:end])
			if len(cmd) != 4 || cmd[0] != "openssl" || cmd[1] != "rand" || cmd[2] != "-hex" {
				sh.t.Fatalf("README: cannot run $(%s)", rest[1:end])
			}
			n, _ := strconv.Atoi(cmd[3])
			b := make([]byte, n)
			rand.Read(b)
			cur.WriteString(hex.EncodeToString(b))
			return i + 1 + end + 1
		}
		name := regexp.MustCompile(`^(\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Za-z_][A-Za-z0-9_]*)`).FindString(rest)
		if name == "" {
			cur.WriteByte('$')
			return i + 1
		}
		v, ok := sh.vars[strings.Trim(name, "{}")]
		if !ok {
			sh.t.Fatalf("README: $%s is not set", name)
		}
		cur.WriteString(v)
		return i + 1 + len(name)
	}
	for i := 0; i < len(line); {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			if has {
				words = append(words, cur.String())
				cur.Reset()
				has = false
			}
			i++
		case c == '#' && !has:
			i = len(line)
		case c == '\'':
			end := strings.IndexByte(line[i+1:], '\'')
			cur.WriteString(line[i+1 : i+1+end])
			has, i = true, i+end+2
		case c == '"':
			has = true
			for i++; i < len(line) && line[i] != '"'; {
				switch {
				case line[i] == '$':
					i = expand(i)
				case line[i] == '\\' && i+1 < len(line):
					cur.WriteByte(line[i+1])
					i += 2
				default:
					cur.WriteByte(line[i])
					i++
				}
			}
			i++
		case c == '$':
			has, i = true, expand(i)
		default:
			cur.WriteByte(c)
			has, i = true, i+1
		}
	}
	if has {
		words = append(words, cur.String())
	}
	return words
}

// pagesend runs "[VAR=value…] go run ./cmd/pagesend ARGS [&]" in-process;
// with "&" it runs until the test ends (the API server).
func (sh *readmeShell) pagesend(words []string) {
	t := sh.t
	vars := map[string]string{"PAGESEND_API_ADDR": sh.addr, "PAGESEND_LOG_FORMAT": "text"}
	for k, v := range sh.vars {
		vars[k] = v
	}
	for len(words) > 0 && strings.Contains(words[0], "=") {
		k, v, _ := strings.Cut(words[0], "=")
		vars[k], words = v, words[1:]
	}
	if len(words) < 3 || strings.Join(words[:3], " ") != "go run ./cmd/pagesend" {
		t.Fatalf("README: cannot run %q", strings.Join(words, " "))
	}
	args := words[3:]
	background := len(args) > 0 && args[len(args)-1] == "&"
	getenv := func(k string) string { return vars[k] }
	if !background {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, env{strings.NewReader(""), &out, &errb, getenv}); code != 0 {
			t.Fatalf("README: pagesend %v: exit %d\n%s%s", args, code, out.String(), errb.String())
		}
		return
	}
	if sh.cancel != nil {
		t.Fatal("README: two background commands")
	}
	ctx, cancel := context.WithCancel(context.Background())
	sh.cancel, sh.bgDone = cancel, make(chan int, 1)
	go func() {
		sh.bgDone <- run(ctx, args[:len(args)-1], env{strings.NewReader(""), sh.logs, sh.logs, getenv})
	}()
	t.Cleanup(func() { cancel() })
	waitHealthy(t, "http://"+sh.addr)
}

// curl runs the curl options the examples use; any other is an error.
func (sh *readmeShell) curl(args []string) {
	t := sh.t
	sh.curls++
	method, url := "", ""
	var body io.Reader
	h := http.Header{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		next := func() string {
			if i+1 >= len(args) {
				t.Fatalf("README: curl %s needs a value", a)
			}
			i++
			return args[i]
		}
		switch {
		case a == "-sS" || a == "-s" || a == "-S":
		case a == "-H":
			k, v, ok := strings.Cut(next(), ":")
			if !ok {
				t.Fatalf("README: curl -H %q", args[i])
			}
			h.Add(k, strings.TrimSpace(v))
		case a == "-X":
			method = next()
		case a == "--data" || a == "-d":
			d := next()
			if name, ok := strings.CutPrefix(d, "@"); ok {
				f, ok := sh.files[name]
				if !ok {
					t.Fatalf("README: --data @%s: no such file", name)
				}
				d = strings.NewReplacer("\r", "", "\n", "").Replace(f) // as curl --data @file does
			}
			body = strings.NewReader(d)
			if method == "" {
				method = "POST"
			}
			if h.Get("Content-Type") == "" {
				h.Set("Content-Type", "application/x-www-form-urlencoded") // curl's default, so a missing -H shows
			}
		case strings.HasPrefix(a, "http://"):
			url = a
		default:
			t.Fatalf("README: curl option %q is not understood by the test", a)
		}
	}
	if method == "" {
		method = "GET"
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("README: curl %v: %v", args, err)
	}
	defer resp.Body.Close()
	sh.last = resp
	sh.lastBody, _ = io.ReadAll(resp.Body)
}

var pairRE = regexp.MustCompile(`"(\w+)":("(?:[^"\\]|\\.)*"|true|false|-?[0-9]+)`)

// expect checks the last curl's answer against "STATUS {json…}": the
// status, and every "key":value pair shown, except values elided with …
// and timestamps, is in the answer.
func (sh *readmeShell) expect(want string) {
	t := sh.t
	if sh.last == nil || sh.pending == "" {
		t.Fatalf("README: %q follows no curl", want)
	}
	cmd := sh.pending
	sh.pending = ""
	code, shown, _ := strings.Cut(want, " ")
	if strconv.Itoa(sh.last.StatusCode) != code {
		t.Errorf("README: %s\nanswered %d %s, the README shows %s", cmd, sh.last.StatusCode, sh.lastBody, want)
		return
	}
	var answer any
	if err := json.Unmarshal(sh.lastBody, &answer); err != nil {
		t.Errorf("README: %s: answer is not JSON: %s", cmd, sh.lastBody)
		return
	}
	have := map[string]bool{}
	var flatten func(v any)
	flatten = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				b, _ := json.Marshal(e)
				have[fmt.Sprintf("%q:%s", k, b)] = true
				flatten(e)
			}
		case []any:
			for _, e := range x {
				flatten(e)
			}
		}
	}
	flatten(answer)
	timestamp := regexp.MustCompile(`^"\d{4}-\d\d-\d\dT`)
	for _, m := range pairRE.FindAllStringSubmatch(shown, -1) {
		if strings.Contains(m[2], "…") || timestamp.MatchString(m[2]) {
			continue
		}
		if pair := fmt.Sprintf("%q:%s", m[1], m[2]); !have[pair] {
			t.Errorf("README: %s\nshows %s, the answer has not: %s", cmd, pair, sh.lastBody)
		}
	}
}

// stop ends the background API server and checks it exits cleanly and
// never logged the key.
func (sh *readmeShell) stop() {
	t := sh.t
	if sh.cancel == nil {
		t.Fatal("README: no `pagesend api &` in the examples")
	}
	sh.cancel()
	select {
	case code := <-sh.bgDone:
		if code != 0 {
			t.Errorf("pagesend api exited %d:\n%s", code, sh.logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("pagesend api did not stop")
	}
	if key := sh.vars["KEY"]; key == "" || strings.Contains(sh.logs.String(), key) {
		t.Errorf("KEY unset, or in the logs:\n%s", sh.logs.String())
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
