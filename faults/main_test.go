//go:build faults

package faults

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"
)

// pagesendBin is the `pagesend` binary the scenarios run: $FAULTS_PAGESEND_BIN,
// or one TestMain builds from ./cmd/pagesend.
var pagesendBin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	pagesendBin = os.Getenv("FAULTS_PAGESEND_BIN")
	if pagesendBin == "" {
		dir, err := os.MkdirTemp("", "pagesend-faults")
		if err != nil {
			fmt.Fprintln(os.Stderr, "faults:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		pagesendBin = filepath.Join(dir, "pagesend")
		gotool := os.Getenv("GO")
		if gotool == "" {
			gotool = "go"
		}
		build := exec.Command(gotool, "build", "-o", pagesendBin, "github.com/pagesend/pagesend/cmd/pagesend")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "faults: building pagesend:", err)
			return 1
		}
	}
	start := time.Now()
	code := m.Run()
	rows := results.sorted()
	if len(rows) > 0 {
		fmt.Printf("\nfault scenarios (%v):\n", time.Since(start).Round(time.Second))
		printTable(os.Stdout, rows)
		if path := os.Getenv("FAULTS_TABLE"); path != "" {
			if err := writeTSV(path, rows); err != nil {
				fmt.Fprintln(os.Stderr, "faults:", err)
				code = 1
			}
		}
	}
	for _, r := range rows {
		if r.Lost > 0 || !r.OK {
			code = max(code, 1)
		}
	}
	return code
}

// row is one scenario's line in the final table.
type row struct {
	ID           string // sorts the table: "1a", "2", …
	Name         string
	Sent         int
	Delivered    int
	Duplicated   int
	Lost         int
	DeadLettered int
	OK           bool
	Notes        []string
	Took         time.Duration
}

type resultSet struct {
	mu   sync.Mutex
	rows []*row
}

var results resultSet

func (s *resultSet) add(r *row) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rows = append(s.rows, r)
}

func (s *resultSet) sorted() []row {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]row, 0, len(s.rows))
	for _, r := range s.rows {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b row) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// scenario starts a row for t; the returned func records it (status from
// t.Failed) and must be deferred, so a t.Fatal still lands in the table.
func scenario(t *testing.T, id, name string) (*row, func()) {
	r := &row{ID: id, Name: name}
	start := time.Now()
	return r, func() {
		r.Took = time.Since(start)
		r.OK = !t.Failed() && r.Lost == 0
		t.Logf("RESULT %s %s: sent=%d delivered=%d duplicated=%d lost=%d dead-lettered=%d ok=%v took=%v; %s",
			r.ID, r.Name, r.Sent, r.Delivered, r.Duplicated, r.Lost, r.DeadLettered, r.OK, r.Took.Round(time.Second), strings.Join(r.Notes, "; "))
		results.add(r)
	}
}

func (r *row) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

func (r row) status() string {
	if r.OK {
		return "ok"
	}
	return "FAIL"
}

func printTable(w io.Writer, rows []row) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tsent\tdelivered\tduplicated\tlost\tdead-lettered\tstatus\ttook\tnotes")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s %s\t%d\t%d\t%d\t%d\t%d\t%s\t%v\t%s\n", r.ID, r.Name, r.Sent, r.Delivered, r.Duplicated, r.Lost,
			r.DeadLettered, r.status(), r.Took.Round(time.Second), strings.Join(r.Notes, "; "))
	}
	tw.Flush()
}

// writeTSV writes the rows for faults/run.sh, which adds the fuzz and
// govulncheck rows and prints the final table.
func writeTSV(path string, rows []row) error {
	var b strings.Builder
	for _, r := range rows {
		notes := strings.ReplaceAll(strings.Join(r.Notes, "; "), "\t", " ")
		fmt.Fprintf(&b, "%s %s\t%d\t%d\t%d\t%d\t%d\t%s\t%v\t%s\n", r.ID, r.Name, r.Sent, r.Delivered, r.Duplicated, r.Lost,
			r.DeadLettered, r.status(), r.Took.Round(time.Second), notes)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
