package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/pagesend/pagesend/enqueue"
	"github.com/pagesend/pagesend/internal/job"
)

// maxEnqueueInput bounds what `pagesend enqueue` reads: 10,000 jobs of a
// kilobyte, with room to spare.
const maxEnqueueInput = 32 << 20

func runEnqueue(ctx context.Context, args []string, e env) error {
	c := newCommand("enqueue", "pagesend enqueue [-f FILE] [flags]",
		"Read send jobs from FILE or standard input — one JSON object, or one per line\n"+
			"(JSON lines) — validate them all, then enqueue them all. Prints one task id per\n"+
			"line. If any job is invalid, nothing is enqueued, each problem is printed with\n"+
			"its job and field, and the exit status is 1. A job whose idempotency_key is\n"+
			"already queued is not stored again; its id is printed all the same.", e.getenv)
	com := addCommon(c)
	retention := c.duration("retention", "PAGESEND_RETENTION", enqueue.DefaultRetention, "how long a finished message (its result, its idempotency key) is kept")
	file := c.fs.String("f", "-", `file of jobs; "-" for standard input`)
	if err := c.parse(args, e.stdout); err != nil {
		return err
	}
	if len(c.args) > 0 {
		return usageErr("enqueue takes no arguments (use -f FILE), got %q", c.args)
	}
	in := e.stdin
	if *file != "-" {
		f, err := os.Open(*file)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	jobs, err := readJobs(in)
	if err != nil {
		return err
	}
	if len(jobs) == 0 {
		return errors.New("no jobs in the input")
	}
	shards, _, err := com.targets()
	if err != nil {
		return usageErr("%v", err)
	}
	client := enqueue.NewShardedClient(shards, enqueue.Options{Retention: *retention})
	defer client.Close()
	infos, err := client.EnqueueBatch(ctx, jobs)
	for _, info := range infos {
		fmt.Fprintln(e.stdout, info.ID)
		if info.Duplicate {
			fmt.Fprintf(e.stderr, "%s: duplicate idempotency_key, already queued; not stored again\n", info.ID)
		}
	}
	return err
}

// inputError lists every invalid job of the input with its line.
type inputError struct{ problems []string }

func (e *inputError) Error() string {
	return fmt.Sprintf("%d problem(s), nothing enqueued:\n  %s", len(e.problems), strings.Join(e.problems, "\n  "))
}

// readJobs reads one JSON object or a stream of them (JSON lines) and
// validates each, reporting every problem with the line its job starts on.
func readJobs(r io.Reader) ([]enqueue.Job, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxEnqueueInput+1))
	if err != nil {
		return nil, fmt.Errorf("read jobs: %w", err)
	}
	if len(data) > maxEnqueueInput {
		return nil, fmt.Errorf("input over %d MiB; split it", maxEnqueueInput>>20)
	}
	var (
		jobs []enqueue.Job
		bad  []string
	)
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		start := dec.InputOffset()
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if err == io.EOF {
			break
		}
		line := lineOf(data, start)
		if err != nil {
			bad = append(bad, fmt.Sprintf("line %d: invalid JSON: %v", line, strings.TrimPrefix(err.Error(), "json: ")))
			break // the stream cannot be resynchronised
		}
		j, err := job.ParseJob(raw)
		if err != nil {
			bad = append(bad, fmt.Sprintf("line %d: %v", line, err))
			continue
		}
		jobs = append(jobs, *j)
	}
	if len(bad) > 0 {
		return nil, &inputError{bad}
	}
	return jobs, nil
}

// lineOf is the 1-based line of the first non-space byte at or after off.
func lineOf(data []byte, off int64) int {
	for off < int64(len(data)) && strings.ContainsRune(" \t\r\n", rune(data[off])) {
		off++
	}
	return bytes.Count(data[:off], []byte("\n")) + 1
}
