package deploycheck

// A small reader for the subset of YAML the deployment files are written
// in, so the checks need no YAML library (go.mod has none): block maps,
// block lists (of scalars or of maps), flow lists of scalars ([a, "b"]),
// quoted and plain one-line scalars, and block scalars (| and >). Anything
// else it does not understand makes the reading test fail rather than be
// misread silently.

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// yline is one meaningful line: no blank or comment-only lines, no
// trailing comment.
type yline struct {
	n      int // 1-based line number in the file
	indent int
	text   string
}

// ynode is a block of lines; its entries are the lines at the indentation
// of its first line, each owning the more indented lines that follow.
type ynode []yline

func parseYAMLish(data string) ynode {
	var out ynode
	for i, raw := range strings.Split(strings.ReplaceAll(data, "\r\n", "\n"), "\n") {
		text := strings.TrimRight(stripComment(raw), " \t")
		trimmed := strings.TrimLeft(text, " ")
		if trimmed == "" || trimmed == "---" {
			continue
		}
		out = append(out, yline{n: i + 1, indent: len(text) - len(trimmed), text: trimmed})
	}
	return out
}

// stripComment removes a " #" comment that is not inside quotes.
func stripComment(s string) string {
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t'):
			return s[:i]
		}
	}
	return s
}

type yentry struct {
	line  yline
	child ynode
}

func (b ynode) entries() []yentry {
	if len(b) == 0 {
		return nil
	}
	base := b[0].indent
	var out []yentry
	for i := 0; i < len(b); {
		e := yentry{line: b[i]}
		j := i + 1
		for j < len(b) && b[j].indent > base {
			j++
		}
		e.child = b[i+1 : j]
		out = append(out, e)
		i = j
	}
	return out
}

// splitKey splits "key: value" or "key:"; ok is false for anything else
// (a list item, a flow value, a bare scalar).
var keyRE = regexp.MustCompile(`^("[^"]*"|'[^']*'|[^\s"'\[\]{}#,-][^:#]*?):(?:\s+(.*))?$`)

func splitKey(text string) (key, value string, ok bool) {
	m := keyRE.FindStringSubmatch(text)
	if m == nil {
		return "", "", false
	}
	return unquote(m[1]), m[2], true
}

// get returns the value on a key's line and the block under it.
func (b ynode) get(key string) (value string, child ynode, ok bool) {
	for _, e := range b.entries() {
		if k, v, isKey := splitKey(e.line.text); isKey && k == key {
			return v, e.child, true
		}
	}
	return "", nil, false
}

// at follows a path of keys through nested maps.
func (b ynode) at(keys ...string) (ynode, bool) {
	cur := b
	for _, k := range keys {
		_, child, ok := cur.get(k)
		if !ok {
			return nil, false
		}
		cur = child
	}
	return cur, true
}

// scalar returns the unquoted one-line value of key.
func (b ynode) scalar(key string) (string, bool) {
	v, _, ok := b.get(key)
	return unquote(v), ok
}

// keys lists the keys of a block map.
func (b ynode) keys() []string {
	var out []string
	for _, e := range b.entries() {
		if k, _, ok := splitKey(e.line.text); ok {
			out = append(out, k)
		}
	}
	return out
}

// items returns the items of a block list: for a scalar item, value is the
// unquoted scalar and node is empty; for a map item ("- key: v" and more
// keys below), node is the item's map.
func (b ynode) items() (values []string, nodes []ynode) {
	for _, e := range b.entries() {
		t := e.line.text
		if t != "-" && !strings.HasPrefix(t, "- ") {
			continue
		}
		rest := strings.TrimSpace(strings.TrimPrefix(t, "-"))
		var node ynode
		if _, _, isMap := splitKey(rest); isMap {
			node = append(ynode{{n: e.line.n, indent: e.line.indent + 2, text: rest}}, e.child...)
			rest = ""
		} else if len(e.child) > 0 {
			node = e.child
		}
		values = append(values, unquote(rest))
		nodes = append(nodes, node)
	}
	return values, nodes
}

// list returns key's value as a list of scalars, written either as a flow
// list on the key's line or as a block list below it.
func (b ynode) list(key string) ([]string, bool) {
	v, child, ok := b.get(key)
	if !ok {
		return nil, false
	}
	if strings.HasPrefix(v, "[") {
		return flowList(v), true
	}
	if v != "" { // a single scalar, as compose allows for some keys
		return []string{unquote(v)}, true
	}
	vals, _ := child.items()
	return vals, true
}

// mapOrList reads compose's two spellings of a string map: "KEY: value"
// lines or "- KEY=value" items.
func (b ynode) mapOrList(key string) (map[string]string, bool) {
	_, child, ok := b.get(key)
	if !ok {
		return nil, false
	}
	out := map[string]string{}
	for _, e := range child.entries() {
		if k, v, isKey := splitKey(e.line.text); isKey {
			out[k] = unquote(v)
		}
	}
	vals, _ := child.items()
	for _, it := range vals {
		k, v, _ := strings.Cut(it, "=")
		out[k] = v
	}
	return out, true
}

func flowList(v string) []string {
	v = strings.TrimSpace(v)
	v = strings.TrimSuffix(strings.TrimPrefix(v, "["), "]")
	var out []string
	var quote byte
	start := 0
	for i := 0; i <= len(v); i++ {
		if i == len(v) || (quote == 0 && v[i] == ',') {
			if item := strings.TrimSpace(v[start:i]); item != "" {
				out = append(out, unquote(item))
			}
			start = i + 1
			continue
		}
		switch c := v[i]; {
		case quote != 0 && c == quote:
			quote = 0
		case quote == 0 && (c == '"' || c == '\''):
			quote = c
		}
	}
	return out
}

func unquote(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		if u, err := strconv.Unquote(s); err == nil {
			return u
		}
		return s[1 : len(s)-1]
	}
	if len(s) >= 2 && s[0] == '\'' && s[len(s)-1] == '\'' {
		return strings.ReplaceAll(s[1:len(s)-1], "''", "'")
	}
	return s
}

// rule is one alerting or recording rule of a Prometheus rules file.
type rule struct {
	name   string // alert or record name
	line   int
	fields map[string]string // every key inside the rule, by its last name: expr, for, severity, summary, …
}

var blockScalarRE = regexp.MustCompile(`^[|>][+-]?[1-9]?[+-]?$`)

// parseRules reads the rules of a Prometheus rules file line by line,
// block scalars (expr: |) included. A line inside a rule that is neither
// a key nor part of a block scalar (a multi-line plain scalar, say) is an
// error: the file must stay within what this reader understands.
func parseRules(data string) ([]rule, error) {
	lines := strings.Split(strings.ReplaceAll(data, "\r\n", "\n"), "\n")
	var rules []rule
	var cur *rule
	dash := -1
	for i := 0; i < len(lines); i++ {
		raw := lines[i]
		text := strings.TrimRight(stripComment(raw), " \t")
		trimmed := strings.TrimLeft(text, " ")
		if trimmed == "" {
			continue
		}
		indent := len(text) - len(trimmed)
		if strings.HasPrefix(trimmed, "- ") && (cur == nil || indent <= dash) {
			k, v, ok := splitKey(strings.TrimPrefix(trimmed, "- "))
			if ok && (k == "alert" || k == "record") {
				rules = append(rules, rule{name: unquote(v), line: i + 1, fields: map[string]string{k: unquote(v)}})
				cur, dash = &rules[len(rules)-1], indent
				continue
			}
			cur = nil // another list item at the rules' level or above: a new group
		}
		if cur == nil {
			continue
		}
		if indent <= dash {
			cur = nil
			continue
		}
		k, v, ok := splitKey(strings.TrimPrefix(trimmed, "- "))
		if !ok {
			return nil, fmt.Errorf("line %d: not a key or a block scalar line: %q", i+1, raw)
		}
		if blockScalarRE.MatchString(v) {
			var body []string
			for i+1 < len(lines) {
				next := lines[i+1]
				nt := strings.TrimLeft(next, " ")
				if nt != "" && len(next)-len(nt) <= indent {
					break
				}
				body = append(body, strings.TrimSpace(next))
				i++
			}
			sep := "\n"
			if v[0] == '>' {
				sep = " "
			}
			v = strings.TrimSpace(strings.Join(body, sep))
		} else {
			v = unquote(v)
		}
		if _, dup := cur.fields[k]; dup {
			return nil, fmt.Errorf("line %d: rule %s has key %q twice", i+1, cur.name, k)
		}
		cur.fields[k] = v
	}
	return rules, nil
}

func TestYAMLishReader(t *testing.T) {
	doc := parseYAMLish(`# comment
services:
  web:
    image: "nginx:1"   # trailing comment
    command: ["a", 'b c', d]
    ports:
      - "8080:80"
      - 127.0.0.1:9000:9000
    environment:
      A: "1"
      B: x:y
    env_file:
      - path: .env
        required: false
  db:
    environment:
      - C=3
`)
	web, ok := doc.at("services", "web")
	if !ok {
		t.Fatal("services.web not found")
	}
	if got, want := strings.Join(doc.mustAt(t, "services").keys(), ","), "web,db"; got != want {
		t.Errorf("service keys = %s, want %s", got, want)
	}
	if v, _ := web.scalar("image"); v != "nginx:1" {
		t.Errorf("image = %q", v)
	}
	if l, _ := web.list("command"); strings.Join(l, "|") != "a|b c|d" {
		t.Errorf("command = %q", l)
	}
	if l, _ := web.list("ports"); strings.Join(l, "|") != "8080:80|127.0.0.1:9000:9000" {
		t.Errorf("ports = %q", l)
	}
	if env, _ := web.mapOrList("environment"); env["A"] != "1" || env["B"] != "x:y" {
		t.Errorf("environment = %v", env)
	}
	if env, _ := doc.mustAt(t, "services", "db").mapOrList("environment"); env["C"] != "3" {
		t.Errorf("db environment = %v", env)
	}
	_, nodes := web.mustAt(t, "env_file").items()
	if len(nodes) != 1 {
		t.Fatalf("env_file items = %d, want 1", len(nodes))
	}
	if p, _ := nodes[0].scalar("path"); p != ".env" {
		t.Errorf("env_file path = %q", p)
	}
	if r, _ := nodes[0].scalar("required"); r != "false" {
		t.Errorf("env_file required = %q", r)
	}

	rules, err := parseRules(`groups:
  - name: g
    rules:
      - alert: One
        expr: a == 1
        for: 0m
        labels:
          severity: critical
        annotations:
          summary: "x: {{ $labels.page_id }}"
          description: >-
            first
            second
      - alert: Two
        expr: |
          sum(a)
            > 0
  - name: h
    rules:
      - record: r:a
        expr: 'sum(b{x="y"})'
`)
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 3 {
		t.Fatalf("rules = %d, want 3", len(rules))
	}
	for i, want := range []map[string]string{
		{"alert": "One", "expr": "a == 1", "for": "0m", "severity": "critical", "summary": "x: {{ $labels.page_id }}", "description": "first second"},
		{"alert": "Two", "expr": "sum(a)\n> 0"},
		{"record": "r:a", "expr": `sum(b{x="y"})`},
	} {
		for k, v := range want {
			if got := rules[i].fields[k]; got != v {
				t.Errorf("rule %d %s = %q, want %q", i, k, got, v)
			}
		}
	}
	if _, err := parseRules("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: a\n          and b\n"); err == nil {
		t.Error("a multi-line plain scalar was accepted")
	}
}

func (b ynode) mustAt(t *testing.T, keys ...string) ynode {
	t.Helper()
	n, ok := b.at(keys...)
	if !ok {
		t.Fatalf("%s not found", strings.Join(keys, "."))
	}
	return n
}
