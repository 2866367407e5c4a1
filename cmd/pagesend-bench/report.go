package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// results is everything one run measured; it is what -out writes.
type results struct {
	Machine   machine             `json:"machine"`
	Config    config              `json:"config"`
	Started   time.Time           `json:"started"`
	Runtime   float64             `json:"runtime_seconds"`
	Figures   []figure            `json:"figures"`
	Scenarios map[string]scenario `json:"scenarios"`
	Errors    []string            `json:"errors,omitempty"`
	Warnings  []string            `json:"warnings,omitempty"`
}

// scenario is one scenario's raw measurements, beyond its figures.
type scenario struct {
	Title   string  `json:"title"`
	Seconds float64 `json:"seconds"`
	// OtherBusyCores is the machine's busy time not spent by this
	// harness, its redis-servers or its worker processes, over the
	// scenario's wall time: other work on the machine.
	OtherBusyCores float64        `json:"other_busy_cores"`
	Details        map[string]any `json:"details"`
}

// figure is one reported number, with its target when it has one.
type figure struct {
	Scenario string  `json:"scenario"`
	Name     string  `json:"figure"`
	Value    float64 `json:"value"`
	Unit     string  `json:"unit"`
	// Target: Op is "<=" or ">=" against TargetValue; empty Op means
	// the figure is informational.
	Op          string  `json:"target_op,omitempty"`
	TargetValue float64 `json:"target,omitempty"`
	Met         *bool   `json:"met,omitempty"`
	Note        string  `json:"note,omitempty"`
}

func (r *results) add(f figure) {
	if f.Op != "" && !math.IsNaN(f.Value) {
		met := f.Value >= f.TargetValue
		if f.Op == "<=" {
			met = f.Value <= f.TargetValue
		}
		f.Met = &met
	} else if f.Op != "" {
		met := false
		f.Met = &met
	}
	r.Figures = append(r.Figures, f)
}

// formatValue prints a value with precision fit for its unit.
func formatValue(v float64, unit string) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a"
	}
	switch unit {
	case "ratio":
		return fmt.Sprintf("%.3f", v)
	case "ms":
		if v < 10 {
			return fmt.Sprintf("%.2f ms", v)
		}
		return fmt.Sprintf("%.1f ms", v)
	case "MB":
		return fmt.Sprintf("%.1f MB", v)
	case "msgs/s":
		return fmt.Sprintf("%.0f msgs/s", v)
	case "":
		return fmt.Sprintf("%g", v)
	}
	return fmt.Sprintf("%.0f %s", v, unit)
}

func formatTarget(f figure) string {
	if f.Op == "" {
		return ""
	}
	op := "≥"
	if f.Op == "<=" {
		op = "≤"
	}
	return op + " " + strings.TrimSuffix(formatValue(f.TargetValue, f.Unit), ".000")
}

// printTable prints the machine and one row per figure.
func printTable(w io.Writer, r *results) {
	m := r.Machine
	fmt.Fprintf(w, "\npagesend-bench — %s, %d CPU (%s), %s, Redis %s, %s\n",
		m.Date, m.NProc, m.CPUModel, m.GoVersion, m.RedisVersion, m.OS)
	if r.Config.Quick {
		fmt.Fprintln(w, "QUICK run: smoke sizes, figures are not meaningful")
	}
	for _, warn := range r.Warnings {
		fmt.Fprintln(w, "WARNING:", warn)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tfigure\tvalue\ttarget\tmet\tnote")
	fmt.Fprintln(tw, "--------\t------\t-----\t------\t---\t----")
	for _, f := range r.Figures {
		met := ""
		if f.Met != nil {
			met = "✗"
			if *f.Met {
				met = "✓"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", f.Scenario, f.Name, formatValue(f.Value, f.Unit), formatTarget(f), met, f.Note)
	}
	tw.Flush()
	for _, e := range r.Errors {
		fmt.Fprintf(w, "ERROR: %s\n", e)
	}
	fmt.Fprintf(w, "\ntotal runtime %.1f s\n", r.Runtime)
}

// markdownTable renders the figures as the README's table.
func markdownTable(r *results) string {
	var b strings.Builder
	b.WriteString("| scenario | figure | value | target | met | note |\n| --- | --- | --- | --- | --- | --- |\n")
	for _, f := range r.Figures {
		met := ""
		if f.Met != nil {
			met = "✗"
			if *f.Met {
				met = "✓"
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", f.Scenario, f.Name, formatValue(f.Value, f.Unit), formatTarget(f), met, f.Note)
	}
	return b.String()
}

func writeJSON(path string, r *results) error {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return err
	}
	md := strings.TrimSuffix(path, filepath.Ext(path)) + ".md"
	return os.WriteFile(md, []byte(machineLine(r)+"\n\n"+markdownTable(r)), 0o644)
}

func machineLine(r *results) string {
	m := r.Machine
	return fmt.Sprintf("Measured %s on %d × %s, %s, %s, Redis %s (pagesend %s); total runtime %.0f s.",
		m.Date, m.NProc, m.CPUModel, m.OS, m.GoVersion, m.RedisVersion, m.Commit, r.Runtime)
}

// NaN-safe JSON: encoding/json refuses NaN, so figures that could not be
// measured are written as null.
func (f figure) MarshalJSON() ([]byte, error) {
	type plain figure
	var v any = plain(f)
	if math.IsNaN(f.Value) || math.IsInf(f.Value, 0) {
		v = struct {
			plain
			Value *float64 `json:"value"`
		}{plain: plain(f)}
	}
	return json.Marshal(v)
}
