package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
)

// This file is a small JSON Schema checker for the subset of JSON Schema
// the OpenAPI document uses. A keyword it does not know is an error, not
// something it skips, so the document cannot promise what the tests do
// not check.

// schemaKeywords are the keywords the checker understands; the rest of a
// schema's keys must be annotations.
var (
	schemaKeywords = []string{"$ref", "type", "properties", "required", "additionalProperties", "items", "enum",
		"minItems", "maxItems", "minLength", "maxLength", "pattern", "format", "minimum", "oneOf"}
	schemaAnnotations = []string{"description", "title", "example", "examples"}
)

// openAPI is the parsed document.
type openAPI struct {
	root  map[string]any
	paths map[string]map[string]any // path template → method (lower case) → operation
}

func parseOpenAPI(data []byte) (*openAPI, error) {
	var root map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&root); err != nil {
		return nil, err
	}
	doc := &openAPI{root: root, paths: map[string]map[string]any{}}
	paths, _ := root["paths"].(map[string]any)
	for p, item := range paths {
		ops := map[string]any{}
		for m, op := range item.(map[string]any) {
			ops[m] = op
		}
		doc.paths[p] = ops
	}
	return doc, nil
}

// decodeJSON decodes with numbers kept as json.Number, so integers are
// checked exactly.
func decodeJSON(data []byte) (any, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("more than one JSON value")
	}
	return v, nil
}

// resolve follows a local $ref ("#/components/schemas/Job").
func (d *openAPI) resolve(ref string) (map[string]any, error) {
	if !strings.HasPrefix(ref, "#/") {
		return nil, fmt.Errorf("$ref %q: only local references are supported", ref)
	}
	var cur any = d.root
	for _, part := range strings.Split(ref[2:], "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("$ref %q does not resolve", ref)
		}
		if cur, ok = m[part]; !ok {
			return nil, fmt.Errorf("$ref %q does not resolve", ref)
		}
	}
	m, ok := cur.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("$ref %q is not a schema", ref)
	}
	return m, nil
}

// validate checks v against schema and returns every violation, each with
// its JSON path. Errors in the schema itself are violations too.
func (d *openAPI) validate(schema any, v any, path string) []string {
	s, ok := schema.(map[string]any)
	if !ok {
		return []string{fmt.Sprintf("%s: schema is not an object", path)}
	}
	var errs []string
	fail := func(format string, a ...any) { errs = append(errs, path+": "+fmt.Sprintf(format, a...)) }
	for k := range s {
		if !slices.Contains(schemaKeywords, k) && !slices.Contains(schemaAnnotations, k) {
			fail("schema keyword %q is not supported by the test's checker", k)
		}
	}
	if ref, ok := s["$ref"].(string); ok {
		target, err := d.resolve(ref)
		if err != nil {
			return append(errs, path+": "+err.Error())
		}
		return append(errs, d.validate(target, v, path)...)
	}
	if t, ok := s["type"]; ok && !hasType(t, v) {
		fail("want type %v, got %s", t, kindOf(v))
		return errs
	}
	if enum, ok := s["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return jsonEqual(e, v) }) {
		fail("%v is not one of %v", v, enum)
	}
	if oneOf, ok := s["oneOf"].([]any); ok {
		var matched int
		var sub []string
		for i, alt := range oneOf {
			es := d.validate(alt, v, path)
			if len(es) == 0 {
				matched++
			} else {
				sub = append(sub, fmt.Sprintf("alternative %d: %s", i, strings.Join(es, "; ")))
			}
		}
		if matched != 1 {
			fail("matches %d of oneOf's alternatives, want exactly 1 (%s)", matched, strings.Join(sub, " | "))
		}
	}
	switch x := v.(type) {
	case map[string]any:
		errs = append(errs, d.validateObject(s, x, path)...)
	case []any:
		if n, ok := intOf(s["minItems"]); ok && len(x) < n {
			fail("%d items, at least %d", len(x), n)
		}
		if n, ok := intOf(s["maxItems"]); ok && len(x) > n {
			fail("%d items, at most %d", len(x), n)
		}
		if items, ok := s["items"]; ok {
			for i, e := range x {
				errs = append(errs, d.validate(items, e, fmt.Sprintf("%s[%d]", path, i))...)
			}
		}
	case string:
		n := len([]rune(x))
		if m, ok := intOf(s["minLength"]); ok && n < m {
			fail("%d characters, at least %d", n, m)
		}
		if m, ok := intOf(s["maxLength"]); ok && n > m {
			fail("%d characters, at most %d", n, m)
		}
		if p, ok := s["pattern"].(string); ok {
			re, err := regexp.Compile(p)
			if err != nil {
				fail("pattern %q: %v", p, err)
			} else if !re.MatchString(x) {
				fail("%q does not match %s", x, p)
			}
		}
		if f, ok := s["format"].(string); ok {
			switch f {
			case "date-time":
				if _, err := time.Parse(time.RFC3339Nano, x); err != nil {
					fail("%q is not an RFC 3339 date-time", x)
				}
			default:
				fail("format %q is not supported by the test's checker", f)
			}
		}
	case json.Number:
		if m, ok := s["minimum"].(json.Number); ok {
			mf, _ := m.Float64()
			if xf, _ := x.Float64(); xf < mf {
				fail("%s is below the minimum %s", x, m)
			}
		}
	}
	return errs
}

func (d *openAPI) validateObject(s map[string]any, x map[string]any, path string) []string {
	var errs []string
	props, _ := s["properties"].(map[string]any)
	if req, ok := s["required"].([]any); ok {
		for _, r := range req {
			if _, ok := x[r.(string)]; !ok {
				errs = append(errs, fmt.Sprintf("%s: %q is required", path, r))
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(x)) {
		sub := join(path, k)
		if ps, ok := props[k]; ok {
			errs = append(errs, d.validate(ps, x[k], sub)...)
			continue
		}
		switch ap := s["additionalProperties"].(type) {
		case bool:
			if !ap {
				errs = append(errs, fmt.Sprintf("%s: not in the schema (additionalProperties: false)", sub))
			}
		case map[string]any:
			errs = append(errs, d.validate(ap, x[k], sub)...)
		}
	}
	return errs
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func hasType(t any, v any) bool {
	switch t := t.(type) {
	case string:
		return isType(t, v)
	case []any:
		return slices.ContainsFunc(t, func(e any) bool { s, _ := e.(string); return isType(s, v) })
	}
	return false
}

func isType(t string, v any) bool {
	switch t {
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "null":
		return v == nil
	case "number":
		_, ok := v.(json.Number)
		return ok
	case "integer":
		n, ok := v.(json.Number)
		if !ok {
			return false
		}
		_, err := n.Int64()
		return err == nil
	}
	return false
}

func kindOf(v any) string {
	switch v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case bool:
		return "boolean"
	case json.Number:
		return "number"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

func intOf(v any) (int, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	i, err := n.Int64()
	return int(i), err == nil
}

func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// match finds the operation for a request: the path template whose
// segments match (a {param} matches one non-empty segment) and the method.
func (d *openAPI) match(method, path string) (template string, op map[string]any) {
	segs := strings.Split(path, "/")
	for tmpl, ops := range d.paths {
		tsegs := strings.Split(tmpl, "/")
		if len(tsegs) != len(segs) {
			continue
		}
		ok := true
		for i, ts := range tsegs {
			if strings.HasPrefix(ts, "{") && strings.HasSuffix(ts, "}") {
				ok = ok && segs[i] != ""
			} else {
				ok = ok && ts == segs[i]
			}
		}
		if ok {
			o, _ := ops[strings.ToLower(method)].(map[string]any)
			if method == "HEAD" && o == nil {
				o, _ = ops["get"].(map[string]any)
			}
			return tmpl, o
		}
	}
	return "", nil
}

// walkSchemas calls f on every schema object in the document: component
// schemas, parameter, header, request and response schemas, and
// everything nested in them.
func (d *openAPI) walkSchemas(f func(path string, s map[string]any)) {
	var walk func(path string, s any)
	walk = func(path string, s any) {
		m, ok := s.(map[string]any)
		if !ok {
			return
		}
		f(path, m)
		if props, ok := m["properties"].(map[string]any); ok {
			for k, p := range props {
				walk(path+".properties."+k, p)
			}
		}
		if items, ok := m["items"]; ok {
			walk(path+".items", items)
		}
		if ap, ok := m["additionalProperties"].(map[string]any); ok {
			walk(path+".additionalProperties", ap)
		}
		if alts, ok := m["oneOf"].([]any); ok {
			for i, a := range alts {
				walk(fmt.Sprintf("%s.oneOf[%d]", path, i), a)
			}
		}
	}
	comps, _ := d.root["components"].(map[string]any)
	schemas, _ := comps["schemas"].(map[string]any)
	for name, s := range schemas {
		walk("#/components/schemas/"+name, s)
	}
	for tmpl, ops := range d.paths {
		for m, op := range ops {
			o := op.(map[string]any)
			base := m + " " + tmpl
			if params, ok := o["parameters"].([]any); ok {
				for i, p := range params {
					walk(fmt.Sprintf("%s parameters[%d]", base, i), p.(map[string]any)["schema"])
				}
			}
			if rb, ok := o["requestBody"].(map[string]any); ok {
				for mt, c := range rb["content"].(map[string]any) {
					walk(base+" requestBody "+mt, c.(map[string]any)["schema"])
				}
			}
			for code, r := range o["responses"].(map[string]any) {
				resp := r.(map[string]any)
				if c, ok := resp["content"].(map[string]any); ok {
					for mt, mc := range c {
						walk(base+" "+code+" "+mt, mc.(map[string]any)["schema"])
					}
				}
				if hs, ok := resp["headers"].(map[string]any); ok {
					for h, hd := range hs {
						walk(base+" "+code+" header "+h, hd.(map[string]any)["schema"])
					}
				}
			}
		}
	}
}
