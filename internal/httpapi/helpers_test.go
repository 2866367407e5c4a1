package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pagesend/pagesend/internal/redistest"
	"github.com/pagesend/pagesend/internal/testwait"
	"github.com/pagesend/pagesend/metrics"
)

// Test keys: long enough for ParseKeys, recognisable in a leaked log.
const (
	writeSecret = "w-5ecret-0123456789abcdef0123456789abcdef"
	readSecret  = "r-5ecret-0123456789abcdef0123456789abcdef"
	otherSecret = "x-5ecret-0123456789abcdef0123456789abcdef"
)

// testDoc is the embedded OpenAPI document, parsed once.
var testDoc *openAPI

// answered records every documented answer the tests received, as
// "METHOD /template STATUS"; TestMain fails a full run that missed one.
var answered = struct {
	sync.Mutex
	seen map[string]bool
}{seen: map[string]bool{}}

func TestMain(m *testing.M) {
	doc, err := parseOpenAPI(Document)
	if err != nil {
		fmt.Fprintln(os.Stderr, "openapi.json:", err)
		os.Exit(1)
	}
	testDoc = doc
	code := m.Run()
	if code == 0 && fullRun() {
		if missing := unanswered(); len(missing) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: no test received these answers the OpenAPI document promises:\n  %s\n", strings.Join(missing, "\n  "))
			code = 1
		}
	}
	os.Exit(code)
}

// fullRun reports whether every test ran (no -run, -skip or -short).
func fullRun() bool {
	for _, name := range []string{"test.run", "test.skip"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return false
		}
	}
	return !testing.Short()
}

func unanswered() []string {
	answered.Lock()
	defer answered.Unlock()
	var missing []string
	for tmpl, ops := range testDoc.paths {
		for m, op := range ops {
			for code := range op.(map[string]any)["responses"].(map[string]any) {
				k := strings.ToUpper(m) + " " + tmpl + " " + code
				if !answered.seen[k] {
					missing = append(missing, k)
				}
			}
		}
	}
	slices.Sort(missing)
	return missing
}

// testEnv is an API on a private redis-server, served by a real Server on
// a loopback port.
type testEnv struct {
	t       *testing.T
	redis   *redistest.Server
	opt     asynq.RedisClientOpt
	api     *API
	url     string
	in      *asynq.Inspector
	reg     *prometheus.Registry
	logs    *syncBuffer
	client  *http.Client
	stopped bool
}

func newEnv(t *testing.T, tune ...func(*Options)) *testEnv {
	t.Helper()
	rs := redistest.Start(t, redistest.Options{})
	opt := asynq.RedisClientOpt{Addr: rs.Addr(), DialTimeout: 250 * time.Millisecond, ReadTimeout: time.Second}
	logs := &syncBuffer{}
	keys, err := ParseKeys("producer:"+writeSecret, false)
	if err != nil {
		t.Fatal(err)
	}
	ro, err := ParseKeys(readSecret, true)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{
		Redis:        opt,
		Keys:         append(keys, ro...),
		Registry:     metrics.NewRegistry("test"),
		Logger:       slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		RedisTimeout: 5 * time.Second,
	}
	for _, f := range tune {
		f(&opts)
	}
	api, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := NewServer(ServerOptions{Addr: "127.0.0.1:0", Handler: api, ShutdownTimeout: 5 * time.Second})
	addr, err := srv.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	in := asynq.NewInspector(opt)
	e := &testEnv{t: t, redis: rs, opt: opt, api: api, url: "http://" + addr, in: in, reg: opts.Registry, logs: logs,
		client: &http.Client{Timeout: 30 * time.Second}}
	t.Cleanup(func() {
		cancel()
		if err := srv.Wait(); err != nil {
			t.Errorf("server: %v", err)
		}
		api.Close()
		in.Close()
		for _, secret := range []string{writeSecret, readSecret, otherSecret} {
			if strings.Contains(logs.String(), secret) {
				t.Errorf("a key is in the logs:\n%s", logs.String())
			}
		}
	})
	return e
}

// reply is one answer, with its JSON body decoded (numbers as
// json.Number) when it is JSON.
type reply struct {
	Status int
	Header http.Header
	Body   []byte
	JSON   map[string]any
}

// str reads a string at a dotted path ("messages.0.id").
func (r *reply) str(path string) string {
	v := dig(r.JSON, path)
	s, _ := v.(string)
	return s
}

func dig(v any, path string) any {
	for _, p := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

// post sends a JSON body with the given key ("" for none).
func (e *testEnv) post(path, secret, body string) *reply {
	e.t.Helper()
	h := http.Header{"Content-Type": {"application/json"}}
	if secret != "" {
		h.Set("Authorization", "Bearer "+secret)
	}
	return e.do("POST", path, []byte(body), h)
}

// get sends a GET with the given key ("" for none).
func (e *testEnv) get(path, secret string) *reply {
	e.t.Helper()
	h := http.Header{}
	if secret != "" {
		h.Set("Authorization", "Bearer "+secret)
	}
	return e.do("GET", path, nil, h)
}

// do sends a request and checks the exchange against the OpenAPI
// document: the answer's status must be documented for the route, its
// Content-Type one the document gives, its body valid against the
// schema, its required headers present; and a request the server took
// (2xx) must itself be valid against the document.
func (e *testEnv) do(method, path string, body []byte, h http.Header) *reply {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if body == nil {
		req.Body = nil
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	return e.send(req, body)
}

// send sends req, whose body is body, and checks the exchange as do does.
func (e *testEnv) send(req *http.Request, body []byte) *reply {
	e.t.Helper()
	method, path := req.Method, req.URL.RequestURI()
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read answer: %v", method, path, err)
	}
	r := &reply{Status: resp.StatusCode, Header: resp.Header, Body: data}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "application/json" {
		v, err := decodeJSON(data)
		if err != nil {
			e.t.Errorf("%s %s: %d answer is not JSON: %v\n%s", method, path, r.Status, err, data)
		}
		r.JSON, _ = v.(map[string]any)
	}
	for _, msg := range conformance(req.URL, method, body, r) {
		e.t.Errorf("OpenAPI: %s %s → %d: %s\nbody: %s", method, path, r.Status, msg, data)
	}
	return r
}

// conformance lists how an exchange departs from the document.
func conformance(u *url.URL, method string, reqBody []byte, r *reply) []string {
	var errs []string
	tmpl, op := testDoc.match(method, u.EscapedPath())
	if op == nil {
		// No route: the catch-all's JSON 404, or 405 for a path served
		// with another method.
		want := http.StatusNotFound
		if tmpl != "" {
			want = http.StatusMethodNotAllowed
			if r.Header.Get("Allow") == "" {
				errs = append(errs, "405 without Allow")
			}
		}
		if r.Status != want {
			errs = append(errs, fmt.Sprintf("undocumented route answered %d, want %d", r.Status, want))
		}
		return append(errs, checkBody(map[string]any{"$ref": "#/components/schemas/Error"}, r)...)
	}
	code := strconv.Itoa(r.Status)
	answered.Lock()
	answered.seen[method+" "+tmpl+" "+code] = true
	answered.Unlock()

	resp, ok := op["responses"].(map[string]any)[code].(map[string]any)
	if !ok {
		return append(errs, fmt.Sprintf("status %s is not documented for %s %s", code, method, tmpl))
	}
	content, _ := resp["content"].(map[string]any)
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mc, ok := content[mt].(map[string]any); {
	case content == nil && len(r.Body) > 0:
		errs = append(errs, "a body where the document says none")
	case content != nil && !ok:
		errs = append(errs, fmt.Sprintf("Content-Type %q; the document gives %v", mt, slices.Sorted(maps.Keys(content))))
	case ok && mt == "application/json":
		errs = append(errs, checkBody(mc["schema"], r)...)
	case ok:
		if s, _ := mc["schema"].(map[string]any); s["type"] != "string" {
			errs = append(errs, "a non-JSON body needs a string schema")
		}
	}
	headers, _ := resp["headers"].(map[string]any)
	for name, hd := range headers {
		hd := hd.(map[string]any)
		v := r.Header.Get(name)
		if v == "" {
			if hd["required"] == true {
				errs = append(errs, "header "+name+" is required")
			}
			continue
		}
		if s, _ := hd["schema"].(map[string]any); s["type"] == "integer" {
			if _, err := strconv.Atoi(v); err != nil {
				errs = append(errs, fmt.Sprintf("header %s: %q is not an integer", name, v))
			}
		}
	}
	if r.Status >= 200 && r.Status < 300 {
		errs = append(errs, checkRequest(op, u, reqBody)...)
	}
	return errs
}

func checkBody(schema any, r *reply) []string {
	v, err := decodeJSON(r.Body)
	if err != nil {
		return []string{"body is not JSON: " + err.Error()}
	}
	return testDoc.validate(schema, v, "")
}

// checkRequest checks a request the server took against the operation:
// its body against the requestBody schema, its query against the query
// parameters.
func checkRequest(op map[string]any, u *url.URL, body []byte) []string {
	var errs []string
	rb, ok := op["requestBody"].(map[string]any)
	switch {
	case ok:
		mc := rb["content"].(map[string]any)["application/json"].(map[string]any)
		v, err := decodeJSON(body)
		if err != nil {
			return []string{"accepted a request body that is not JSON"}
		}
		for _, e := range testDoc.validate(mc["schema"], v, "") {
			errs = append(errs, "accepted request body: "+e)
		}
	case len(body) > 0:
		errs = append(errs, "accepted a body the document does not describe")
	}
	params, _ := op["parameters"].([]any)
	for key, vals := range u.Query() {
		i := slices.IndexFunc(params, func(p any) bool {
			pm := p.(map[string]any)
			return pm["in"] == "query" && pm["name"] == key
		})
		if i < 0 {
			errs = append(errs, "query parameter "+key+" is not documented")
			continue
		}
		for _, v := range vals {
			for _, e := range testDoc.validate(params[i].(map[string]any)["schema"], v, key) {
				errs = append(errs, "accepted query: "+e)
			}
		}
	}
	return errs
}

// syncBuffer is a bytes.Buffer safe for a logger and a test at once.
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

// eventually waits for cond, polling with a deadline.
var eventually = testwait.Until

// textJob is a valid job as JSON.
func textJob(page, recipient, text string, extra ...string) string {
	j := map[string]any{
		"page_id": page,
		"request": map[string]any{
			"recipient":      map[string]any{"id": recipient},
			"messaging_type": "UPDATE",
			"message":        map[string]any{"text": text},
		},
	}
	for i := 0; i+1 < len(extra); i += 2 {
		j[extra[i]] = extra[i+1]
	}
	b, _ := json.Marshal(j)
	return string(b)
}
