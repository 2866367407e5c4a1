package deploycheck

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// metricNames returns the metric names a PromQL expression (or a Grafana
// variable query such as label_values(metric, label)) selects, in order of
// appearance, without duplicates. It skips strings, label matchers {…},
// ranges and subqueries […], label lists of by/without/on/ignoring/
// group_left/group_right, numbers and durations, Grafana variables ($x,
// ${x}) and comments. An identifier followed by "(" must be a known
// function or aggregation: a misspelt one is an error, not a metric.
func metricNames(expr string) ([]string, error) {
	var names []string
	if err := scanPromQL(expr, &names); err != nil {
		return nil, fmt.Errorf("%w in %q", err, expr)
	}
	return names, nil
}

var (
	// promqlKeywords are identifiers that are never metric names.
	promqlKeywords = set(
		// aggregation operators
		"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
		"bottomk", "topk", "quantile", "limitk", "limit_ratio",
		// binary operators and modifiers
		"and", "or", "unless", "atan2", "bool", "offset",
		// literals
		"inf", "nan",
	)
	// labelListKeywords take a parenthesised list of label names.
	labelListKeywords = set("by", "without", "on", "ignoring", "group_left", "group_right")
	// promqlFunctions are Prometheus' functions (3.x) and Grafana's
	// variable query helpers.
	promqlFunctions = set(
		"abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh",
		"avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh",
		"count_over_time", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "deg",
		"delta", "deriv", "double_exponential_smoothing", "exp", "floor", "histogram_avg",
		"histogram_count", "histogram_fraction", "histogram_quantile", "histogram_stddev",
		"histogram_stdvar", "histogram_sum", "holt_winters", "hour", "idelta", "increase", "info",
		"irate", "label_join", "label_replace", "last_over_time", "ln", "log10", "log2",
		"mad_over_time", "max_over_time", "min_over_time", "minute", "month", "pi",
		"predict_linear", "present_over_time", "quantile_over_time", "rad", "rate", "resets",
		"round", "scalar", "sgn", "sin", "sinh", "sort", "sort_by_label", "sort_by_label_desc",
		"sort_desc", "sqrt", "stddev_over_time", "stdvar_over_time", "sum_over_time", "tan",
		"tanh", "time", "timestamp", "vector", "year", "start", "end",
		// Grafana (Prometheus data source variable queries)
		"label_values", "label_names", "metrics", "query_result",
	)
)

func set(xs ...string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

func scanPromQL(s string, out *[]string) error {
	parens := 0
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '(' || c == ')':
			if c == '(' {
				parens++
			} else if parens--; parens < 0 {
				return fmt.Errorf("unbalanced ')' at %d", i)
			}
			i++
		case c == '"' || c == '\'' || c == '`':
			j, err := skipString(s, i)
			if err != nil {
				return err
			}
			i = j
		case c == '{':
			j, err := skipGroup(s, i, '{', '}')
			if err != nil {
				return err
			}
			i = j
		case c == '[':
			j, err := skipGroup(s, i, '[', ']')
			if err != nil {
				return err
			}
			i = j
		case c == '#': // comment to the end of the line
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '$': // Grafana variable: $name or ${name}
			i++
			if i < len(s) && s[i] == '{' {
				j, err := skipGroup(s, i, '{', '}')
				if err != nil {
					return err
				}
				i = j
				continue
			}
			for i < len(s) && isIdentChar(s[i]) {
				i++
			}
		case isDigit(c) || (c == '.' && i+1 < len(s) && isDigit(s[i+1])):
			// numbers (0.99, 1e3, 0x1f) and durations (5m, 1h30m)
			for i < len(s) && (isIdentChar(s[i]) || s[i] == '.' ||
				((s[i] == '+' || s[i] == '-') && (s[i-1] == 'e' || s[i-1] == 'E'))) {
				i++
			}
		case isIdentStart(c):
			start := i
			for i < len(s) && isIdentChar(s[i]) {
				i++
			}
			id := s[start:i]
			j := i
			for j < len(s) && isSpace(s[j]) {
				j++
			}
			next := byte(0)
			if j < len(s) {
				next = s[j]
			}
			switch {
			case labelListKeywords[id]:
				if next == '(' {
					k, err := skipGroup(s, j, '(', ')')
					if err != nil {
						return err
					}
					i = k
				}
			case promqlKeywords[id]:
			case next == '(':
				if !promqlFunctions[id] {
					return fmt.Errorf("unknown function %q", id)
				}
				if id == "label_values" {
					k, err := scanLabelValues(s, j, out)
					if err != nil {
						return err
					}
					i = k
				}
			default:
				if !slices.Contains(*out, id) {
					*out = append(*out, id)
				}
			}
		default:
			i++
		}
	}
	if parens != 0 {
		return fmt.Errorf("%d unclosed '('", parens)
	}
	return nil
}

// scanLabelValues handles label_values(label) and label_values(selector,
// label) starting at the "(" at s[open]: only the selector holds metrics.
func scanLabelValues(s string, open int, out *[]string) (int, error) {
	end, err := skipGroup(s, open, '(', ')')
	if err != nil {
		return 0, err
	}
	args := s[open+1 : end-1]
	depth, comma := 0, -1
	for k := 0; k < len(args); k++ {
		switch args[k] {
		case '"', '\'', '`':
			j, err := skipString(args, k)
			if err != nil {
				return 0, err
			}
			k = j - 1
		case '(', '{', '[':
			depth++
		case ')', '}', ']':
			depth--
		case ',':
			if depth == 0 {
				comma = k
			}
		}
	}
	if comma >= 0 {
		if err := scanPromQL(args[:comma], out); err != nil {
			return 0, err
		}
	}
	return end, nil
}

// skipString returns the index just past the string literal at s[i].
func skipString(s string, i int) (int, error) {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch {
		case s[j] == '\\' && q != '`':
			j++
		case s[j] == q:
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("unterminated string at %d", i)
}

// skipGroup returns the index just past the bracket that closes the one at
// s[i], skipping strings and nested brackets of the same kind.
func skipGroup(s string, i int, open, close byte) (int, error) {
	depth := 0
	for j := i; j < len(s); j++ {
		switch s[j] {
		case '"', '\'', '`':
			k, err := skipString(s, j)
			if err != nil {
				return 0, err
			}
			j = k - 1
		case open:
			depth++
		case close:
			depth--
			if depth == 0 {
				return j + 1, nil
			}
		}
	}
	return 0, fmt.Errorf("unbalanced %q at %d", open, i)
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}
func isIdentChar(c byte) bool { return isIdentStart(c) || isDigit(c) }
func isDigit(c byte) bool     { return '0' <= c && c <= '9' }
func isSpace(c byte) bool     { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`pagesend_page_token_invalid == 1`, []string{"pagesend_page_token_invalid"}},
		{`max by (page_id) (pagesend_page_token_invalid) == 1`, []string{"pagesend_page_token_invalid"}},
		{`histogram_quantile(0.99, sum by (le) (rate(a_bucket{page_id=~"$page_id", x="y}{("}[5m])))`, []string{"a_bucket"}},
		{`sum(rate(a_total[5m])) by (code) / on (code) group_left (x) b`, []string{"a_total", "b"}},
		{`absent(up{job="pagesend"} == 1)`, []string{"up"}},
		{`absent(a) and on() (sum(up) > 0)`, []string{"a", "up"}},
		{"x offset 5m > 1e3 and y unless z or w atan2 v", []string{"x", "y", "z", "w", "v"}},
		{`deriv(max by (queue) (q)[10m:1m]) > bool 0.5`, []string{"q"}},
		{`rate (a[$__rate_interval]) * ${factor} # c_total`, []string{"a"}},
		{`label_values(pagesend_messages_total{outcome="sent"}, page_id)`, []string{"pagesend_messages_total"}},
		{`label_values(page_id)`, nil},
		{`count_values("v", ns:rule:rate5m) or vector(0)`, []string{"ns:rule:rate5m"}},
		{`sum without (instance) (a) + sum(b) without (le)`, []string{"a", "b"}},
		{"a\n  /\nb", []string{"a", "b"}},
	} {
		got, err := metricNames(tc.expr)
		if err != nil {
			t.Errorf("metricNames(%q): %v", tc.expr, err)
			continue
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("metricNames(%q) = %q, want %q", tc.expr, got, tc.want)
		}
	}
	for _, bad := range []string{`rat(a[5m])`, `sum(a{x="}`, `histogram_quantile(0.9, a`} {
		if got, err := metricNames(bad); err == nil {
			t.Errorf("metricNames(%q) = %q, want an error", bad, got)
		} else if !strings.Contains(err.Error(), fmt.Sprintf("%q", bad)) {
			t.Errorf("metricNames(%q) error %q does not quote the expression", bad, err)
		}
	}
}
