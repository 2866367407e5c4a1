package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestQuickRun runs the whole harness at smoke sizes: every scenario runs
// and every figure comes out as a number, in the table and in the JSON. It
// asserts nothing about the values: a busy CI machine makes timings
// meaningless, and missed targets are the harness's to report.
func TestQuickRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-servers and worker processes")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "pagesend")
	build := exec.Command("go", "build", "-o", bin, "github.com/pagesend/pagesend/cmd/pagesend")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build pagesend: %v\n%s", err, out)
	}
	out := filepath.Join(dir, "results.json")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if err := run(ctx, []string{"-quick", "-pagesend", bin, "-out", out}, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	t.Log(stdout.String())

	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Machine struct {
			NProc     int    `json:"nproc"`
			CPUModel  string `json:"cpu_model"`
			GoVersion string `json:"go_version"`
			Date      string `json:"date"`
		} `json:"machine"`
		Figures []struct {
			Scenario string   `json:"scenario"`
			Name     string   `json:"figure"`
			Value    *float64 `json:"value"`
			Op       string   `json:"target_op"`
			Met      *bool    `json:"met"`
		} `json:"figures"`
		Errors []string `json:"errors"`
	}
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatalf("results.json: %v\n%s", err, data)
	}
	if res.Machine.NProc < 1 || res.Machine.CPUModel == "" || res.Machine.GoVersion == "" || res.Machine.Date == "" {
		t.Errorf("machine incomplete: %+v", res.Machine)
	}
	if len(res.Errors) > 0 {
		t.Errorf("errors: %q", res.Errors)
	}
	// Every figure with a target, by scenario and a word of its name.
	want := map[string][]string{
		"a": {"service ÷ bare asynq (1 queue)"},
		"b": {"max sends in any 1 s window", "achieved rate ÷"},
		"c": {"cold p99 with hot ÷ alone"},
		"d": {"p99"},
		"e": {"peak RSS", "per queued text job"},
	}
	for sc, names := range want {
		for _, name := range names {
			found := false
			for _, f := range res.Figures {
				if f.Scenario != sc || !strings.Contains(f.Name, name) {
					continue
				}
				found = true
				if f.Value == nil {
					t.Errorf("(%s) %s: no value", sc, f.Name)
				}
				if f.Op == "" || f.Met == nil {
					t.Errorf("(%s) %s: no target or verdict", sc, f.Name)
				}
			}
			if !found {
				t.Errorf("(%s) no figure %q in %s", sc, name, data)
			}
		}
	}
	for _, f := range res.Figures {
		if f.Value == nil {
			t.Errorf("(%s) %s: no value", f.Scenario, f.Name)
		}
	}
	if !strings.Contains(stdout.String(), "scenario") || !strings.Contains(stdout.String(), "total runtime") {
		t.Errorf("no table on stdout:\n%s", stdout.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "results.md")); err != nil {
		t.Errorf("results.md: %v", err)
	}
}
