package httpapi

import (
	"bytes"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pagesend/pagesend/graphapi"
	"github.com/pagesend/pagesend/internal/job"
)

// TestDocumentListsExactlyTheRoutes checks the document against the
// handler: the same routes, public exactly where the handler asks for no
// key, and 401/403 documented where it does.
func TestDocumentListsExactlyTheRoutes(t *testing.T) {
	e := newEnv(t)
	var documented []string
	for tmpl, ops := range testDoc.paths {
		for m := range ops {
			documented = append(documented, strings.ToUpper(m)+" "+tmpl)
		}
	}
	slices.Sort(documented)
	served := e.api.Routes()
	slices.Sort(served)
	if !slices.Equal(documented, served) {
		t.Fatalf("the document lists\n  %s\nthe handler serves\n  %s", strings.Join(documented, "\n  "), strings.Join(served, "\n  "))
	}
	for _, r := range e.api.routes {
		method, path, _ := strings.Cut(r.pattern, " ")
		op := testDoc.paths[path][strings.ToLower(method)].(map[string]any)
		sec, hasSec := op["security"].([]any)
		public := hasSec && len(sec) == 0
		if public != (r.need == scopeNone) {
			t.Errorf("%s: document says public=%v, handler needs scope %d", r.pattern, public, r.need)
		}
		responses := op["responses"].(map[string]any)
		if r.need != scopeNone && responses["401"] == nil {
			t.Errorf("%s needs a key but documents no 401", r.pattern)
		}
		if (r.need == scopeWrite) != (responses["403"] != nil) {
			t.Errorf("%s: 403 documented=%v, but write scope=%v", r.pattern, responses["403"] != nil, r.need == scopeWrite)
		}
		if op["operationId"] == nil || op["summary"] == nil {
			t.Errorf("%s: no operationId or summary", r.pattern)
		}
	}
	// Every documented route answers with its own handler, not the
	// catch-all.
	for _, p := range served {
		method, path, _ := strings.Cut(p, " ")
		path = strings.NewReplacer("{id}", "1234").Replace(path)
		r := e.do(method, path, nil, nil)
		if r.Status == 404 && r.str("error") == codeNotFound && r.str("message") == "no such route; see /openapi.json" {
			t.Errorf("%s: answered by the catch-all", p)
		}
	}
}

// TestDocumentSchemas checks the document is well formed for the checker:
// OpenAPI 3.1, every $ref resolves, every keyword is one the checker
// enforces, and every required property exists.
func TestDocumentSchemas(t *testing.T) {
	if v := testDoc.root["openapi"]; v != "3.1.0" {
		t.Errorf("openapi = %v", v)
	}
	n := 0
	testDoc.walkSchemas(func(path string, s map[string]any) {
		n++
		for k := range s {
			if !slices.Contains(schemaKeywords, k) && !slices.Contains(schemaAnnotations, k) {
				t.Errorf("%s: keyword %q is not enforced by the tests' checker", path, k)
			}
		}
		if ref, ok := s["$ref"].(string); ok {
			if _, err := testDoc.resolve(ref); err != nil {
				t.Errorf("%s: %v", path, err)
			}
			if len(s) > 1 {
				t.Errorf("%s: keywords beside $ref", path)
			}
		}
		props, _ := s["properties"].(map[string]any)
		req, _ := s["required"].([]any)
		for _, r := range req {
			if _, ok := props[r.(string)]; !ok {
				t.Errorf("%s: required %q is not a property", path, r)
			}
		}
		if s["type"] == "object" && props != nil && s["additionalProperties"] != false {
			t.Errorf("%s: objects must say additionalProperties: false, so a drift in field names fails the tests", path)
		}
	})
	if n < 30 {
		t.Errorf("walked only %d schemas", n)
	}
}

// TestDocumentMatchesGoTypes checks that each schema names exactly the
// JSON fields of the Go type it describes, and that a response schema
// requires exactly the fields that are always present (no omitempty).
func TestDocumentMatchesGoTypes(t *testing.T) {
	requestTypes := map[string]any{
		"Job":               job.Job{},
		"SendRequest":       graphapi.Request{},
		"Recipient":         graphapi.Recipient{},
		"Name":              graphapi.Name{},
		"Message":           graphapi.Message{},
		"DynamicText":       graphapi.DynamicText{},
		"Attachment":        graphapi.Attachment{},
		"QuickReply":        graphapi.QuickReply{},
		"QuickReplyData":    graphapi.QuickReplyData{},
		"Template":          graphapi.Template{},
		"TemplateLanguage":  graphapi.TemplateLanguage{},
		"TemplateComponent": graphapi.TemplateComponent{},
		"TemplateParameter": graphapi.TemplateParameter{},
		"ThreadControl":     graphapi.ThreadControl{},
	}
	responseTypes := map[string]any{
		"Enqueued":     Enqueued{},
		"EnqueuedList": enqueuedBody{},
		"Status":       Status{},
		"Resumed":      Resumed{},
		"LiftedPause":  LiftedPause{},
		"Problem":      Problem{},
	}
	schema := func(name string) (props []string, required []string) {
		s, err := testDoc.resolve("#/components/schemas/" + name)
		if err != nil {
			t.Fatal(err)
		}
		props = slices.Sorted(maps.Keys(s["properties"].(map[string]any)))
		req, _ := s["required"].([]any)
		for _, r := range req {
			required = append(required, r.(string))
		}
		slices.Sort(required)
		return props, required
	}
	for name, v := range requestTypes {
		fields, _ := jsonFields(reflect.TypeOf(v))
		if props, _ := schema(name); !slices.Equal(props, fields) {
			t.Errorf("schema %s has %v, Go type %T has %v", name, props, v, fields)
		}
	}
	for name, v := range responseTypes {
		fields, always := jsonFields(reflect.TypeOf(v))
		props, req := schema(name)
		if !slices.Equal(props, fields) {
			t.Errorf("schema %s has %v, Go type %T has %v", name, props, v, fields)
		}
		if !slices.Equal(req, always) {
			t.Errorf("schema %s requires %v, Go type %T always has %v", name, req, v, always)
		}
	}
	// The error schemas together name exactly errorBody's fields.
	var union []string
	for _, name := range []string{"Error", "Invalid", "DeadLettered", "Unavailable"} {
		props, req := schema(name)
		union = append(union, props...)
		if !slices.Contains(req, "error") || !slices.Contains(req, "message") {
			t.Errorf("schema %s must require error and message", name)
		}
	}
	slices.Sort(union)
	fields, _ := jsonFields(reflect.TypeOf(errorBody{}))
	if union = slices.Compact(union); !slices.Equal(union, fields) {
		t.Errorf("error schemas name %v, errorBody has %v", union, fields)
	}
	// Every error code the handlers use is in the Error schema's enum.
	errSchema, _ := testDoc.resolve("#/components/schemas/Error")
	enum := errSchema["properties"].(map[string]any)["error"].(map[string]any)["enum"].([]any)
	for _, c := range []string{codeInvalid, codeUnauthorized, codeForbidden, codeNotFound, codeNotPaused, codeMethodNotAllowed,
		codeDeadLettered, codeTooLarge, codeUnsupportedType, codeUnavailable, codeInternal} {
		if !slices.Contains(enum, any(c)) {
			t.Errorf("error code %q is not in the Error schema's enum", c)
		}
	}
}

// jsonFields lists a struct's JSON field names, and those without
// omitempty or omitzero.
func jsonFields(t reflect.Type) (all, always []string) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		all = append(all, name)
		if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") {
			always = append(always, name)
		}
	}
	slices.Sort(all)
	slices.Sort(always)
	return all, always
}

// TestDocumentCopy keeps api/openapi.json, the copy for readers of the
// repository, equal to the embedded document.
func TestDocumentCopy(t *testing.T) {
	cp, err := os.ReadFile("../../api/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cp, Document) {
		t.Fatal("api/openapi.json differs from internal/httpapi/openapi.json: cp internal/httpapi/openapi.json api/openapi.json")
	}
}

// TestServedDocument: /openapi.json needs no key and is the document.
func TestServedDocument(t *testing.T) {
	e := newEnv(t)
	r := e.get("/openapi.json", "")
	if r.Status != 200 || !bytes.Equal(r.Body, Document) {
		t.Fatalf("GET /openapi.json: %d, %d bytes", r.Status, len(r.Body))
	}
}

// TestCheckerCatchesDrift makes sure the checker the conformance tests
// rely on fails on the drifts it is there to catch.
func TestCheckerCatchesDrift(t *testing.T) {
	ref := func(n string) any { return map[string]any{"$ref": "#/components/schemas/" + n} }
	tests := []struct {
		schema string
		body   string
		want   string // "" for valid
	}{
		{"Enqueued", `{"id":"a","queue":"high","duplicate":false,"process_at":"2026-01-02T03:04:05Z"}`, ""},
		{"Enqueued", `{"id":"a","queue":"high"}`, `"duplicate" is required`},
		{"Enqueued", `{"id":"a","queue":"high","duplicate":false,"processAt":"x"}`, "processAt: not in the schema"},
		{"Enqueued", `{"id":"a","queue":"urgent","duplicate":false}`, "is not one of"},
		{"Enqueued", `{"id":"a","queue":"high","duplicate":"no"}`, "want type boolean"},
		{"Enqueued", `{"id":"a","queue":"high","duplicate":false,"process_at":"tomorrow"}`, "not an RFC 3339"},
		{"EnqueuedList", `{"messages":[]}`, "0 items, at least 1"},
		{"Status", `{"id":"a","queue":"low","state":"done","failed_attempts":0}`, "is not one of"},
		{"Status", `{"id":"a","queue":"low","state":"pending","failed_attempts":1.5}`, "want type integer"},
		{"Job", `{"page_id":"12x","request":{"recipient":{"id":"1"}}}`, "does not match"},
		{"Batch", `{"jobs":[{"page_id":"1","request":{"recipient":{"id":"1"},"message":{"Text":"x"}}}]}`, "jobs[0].request.message.Text: not in the schema"},
		{"Invalid", `{"error":"invalid","message":"m","problems":[{"job":-1,"path":"","message":"x"}]}`, "below the minimum"},
	}
	for _, tt := range tests {
		v, err := decodeJSON([]byte(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		errs := testDoc.validate(ref(tt.schema), v, "")
		got := strings.Join(errs, "; ")
		switch {
		case tt.want == "" && len(errs) > 0:
			t.Errorf("%s %s: %s", tt.schema, tt.body, got)
		case tt.want != "" && !strings.Contains(got, tt.want):
			t.Errorf("%s %s: got %q, want %q", tt.schema, tt.body, got, tt.want)
		}
	}
	// oneOf: a body that is neither a job nor a batch, or both.
	body := map[string]any{"oneOf": []any{ref("Job"), ref("Batch")}}
	for _, b := range []string{`{"jobs":[],"page_id":"1"}`, `{}`} {
		v, _ := decodeJSON([]byte(b))
		if errs := testDoc.validate(body, v, ""); len(errs) == 0 {
			t.Errorf("%s passed oneOf", b)
		}
	}
	if errs := testDoc.validate(map[string]any{"type": "string", "const": "x"}, "y", ""); len(errs) == 0 {
		t.Error("an unknown keyword passed")
	}
}
