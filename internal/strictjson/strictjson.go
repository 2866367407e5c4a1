// Package strictjson decodes JSON into Go structs while refusing keys the
// struct does not declare, and reports every problem with its JSON path
// (request.message.quick_replies[3].colour) rather than stopping at the
// first one as encoding/json's DisallowUnknownFields does.
//
// Keys must match a field's json tag exactly. encoding/json matches keys
// case-insensitively, which would silently turn {"Text": …} into {"text": …}
// and send Meta something the producer did not write.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"
	"sync"
)

// Problem is one thing wrong with the input, at a JSON path.
type Problem struct {
	Path    string // e.g. "request.message.text"
	Message string // e.g. "unknown field"
}

// String is "path: message".
func (p Problem) String() string { return p.Path + ": " + p.Message }

var (
	rawMessageType  = reflect.TypeOf(json.RawMessage(nil))
	unmarshalerType = reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()
)

// Decode unmarshals data into v (a pointer to a struct) and returns every
// unknown key and type mismatch it finds, with paths starting at root (""
// for paths that start with the top-level key). A
// syntax error is returned as a single problem at root. Decode never
// panics on any input.
func Decode(data []byte, root string, v any) []Problem {
	var tree any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&tree); err != nil {
		return []Problem{{Path: root, Message: "invalid JSON: " + syntaxMessage(err)}}
	}
	if rest := bytes.TrimSpace(data[dec.InputOffset():]); len(rest) > 0 {
		return []Problem{{Path: root, Message: "invalid JSON: more than one value"}}
	}
	var probs []Problem
	walk(root, tree, reflect.TypeOf(v), &probs)
	if len(probs) > 0 {
		return probs
	}
	if err := json.Unmarshal(data, v); err != nil {
		return []Problem{typeProblem(root, err)}
	}
	return nil
}

func syntaxMessage(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s (at byte %d)", strings.TrimPrefix(se.Error(), "json: "), se.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "unexpected end of input"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func typeProblem(root string, err error) Problem {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		path := root
		if te.Field != "" {
			path = join(root, te.Field)
		}
		return Problem{Path: path, Message: fmt.Sprintf("expected %s, got %s", kindName(te.Type), te.Value)}
	}
	return Problem{Path: root, Message: strings.TrimPrefix(err.Error(), "json: ")}
}

func kindName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	}
	return t.String()
}

// walk compares the decoded tree with the Go type and records keys that
// have no field. Type mismatches are left to json.Unmarshal.
func walk(path string, v any, t reflect.Type, probs *[]Problem) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == rawMessageType {
		return
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		// Types with their own decoding (time.Time) report errors without
		// a path; decode the value alone to put one on it.
		raw, err := json.Marshal(v)
		if err == nil {
			err = reflect.New(t).Interface().(json.Unmarshaler).UnmarshalJSON(raw)
		}
		if err != nil {
			*probs = append(*probs, Problem{Path: path, Message: strings.TrimPrefix(err.Error(), "json: ")})
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return
		}
		fields := fieldsOf(t)
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			f, ok := fields.byName[k]
			if !ok {
				msg := "unknown field"
				if name, ok := fields.byFold[strings.ToLower(k)]; ok {
					msg = fmt.Sprintf("unknown field (did you mean %q?)", name)
				}
				*probs = append(*probs, Problem{Path: join(path, k), Message: msg})
				continue
			}
			walk(join(path, k), obj[k], f, probs)
		}
	case reflect.Slice, reflect.Array:
		arr, ok := v.([]any)
		if !ok {
			return
		}
		for i, e := range arr {
			walk(fmt.Sprintf("%s[%d]", path, i), e, t.Elem(), probs)
		}
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			return
		}
		for k, e := range obj {
			walk(join(path, k), e, t.Elem(), probs)
		}
	}
}

// join appends a key to a path; an empty root gives bare keys ("page_id").
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

type fieldSet struct {
	byName map[string]reflect.Type
	byFold map[string]string
}

var fieldCache sync.Map // reflect.Type → *fieldSet

func fieldsOf(t reflect.Type) *fieldSet {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.(*fieldSet)
	}
	fs := &fieldSet{byName: map[string]reflect.Type{}, byFold: map[string]string{}}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() && !f.Anonymous {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			et := f.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				// encoding/json promotes an untagged embedded struct's fields.
				inner := fieldsOf(et)
				for n, ft := range inner.byName {
					fs.byName[n] = ft
					fs.byFold[strings.ToLower(n)] = n
				}
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		fs.byName[name] = f.Type
		fs.byFold[strings.ToLower(name)] = name
	}
	actual, _ := fieldCache.LoadOrStore(t, fs)
	return actual.(*fieldSet)
}
