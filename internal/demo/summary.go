package demo

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hibiken/asynq"

	"github.com/pagesend/pagesend/graphapi/graphtest"
	"github.com/pagesend/pagesend/internal/job"
)

// outcomeOrder is the order totals are printed in; other outcomes (states
// of unfinished tasks) follow, sorted.
var outcomeOrder = []string{job.OutcomeSent, job.OutcomeDropped, job.OutcomeDeadLettered}

// summarize turns what the demo saw into a Summary.
func (d *demo) summarize(ctx context.Context, tasks []*task) *Summary {
	calls := map[string][]graphtest.Call{}
	for _, c := range d.fake.Calls() {
		calls[c.Recipient] = append(calls[c.Recipient], c)
	}
	sum := &Summary{
		Counts:     map[string]int{},
		Metrics:    d.messageMetrics(),
		GraphCalls: d.fake.CallCount(),
		Elapsed:    time.Since(d.start),
		OpsAddr:    d.opsAddr,
	}
	for _, t := range tasks {
		r := d.row(ctx, t, calls[t.recipient])
		sum.Rows = append(sum.Rows, r)
		sum.Counts[r.Outcome]++
		if !r.OK {
			sum.Mismatches++
		}
	}
	return sum
}

// row reports one task: its outcome, a short detail, and whether both and
// the fake's calls for its recipient are what the sample expects.
func (d *demo) row(ctx context.Context, t *task, calls []graphtest.Call) Row {
	r := Row{Label: t.label, PageID: t.page, Recipient: t.recipient, Expected: t.expected, Calls: len(calls)}
	var res *job.Result
	switch {
	case t.ti == nil:
		r.Outcome, r.Detail = "unknown", short(fmt.Sprint(t.err))
	case t.ti.State == asynq.TaskStateCompleted || t.ti.State == asynq.TaskStateArchived:
		res, _ = job.DecodeResult(t.ti.Result)
		r.Outcome = job.OutcomeDeadLettered
		if t.ti.State == asynq.TaskStateCompleted {
			r.Outcome = "completed (no result)"
			if res != nil {
				r.Outcome = res.Outcome
			}
		}
		r.Detail = d.finishedDetail(t, res, calls)
	default:
		r.Outcome, r.Detail = t.ti.State.String(), d.pendingDetail(ctx, t)
	}

	r.OK = r.Outcome == t.outcome
	if t.code != 0 {
		r.OK = r.OK && res != nil && res.Code == t.code
	}
	if t.calls > 0 {
		r.OK = r.OK && r.Calls == t.calls
	} else {
		r.OK = r.OK && r.Calls >= 1
	}
	if !t.sendAt.IsZero() {
		// Scheduled: never early.
		r.OK = r.OK && len(calls) > 0 && !calls[0].Time.Before(t.sendAt)
	}
	if t.idempotencyKey != "" {
		r.OK = r.OK && t.dup != nil && t.dup.Duplicate
	}
	if t.heldByPause {
		r.OK = r.OK && d.pauseHit
	}
	return r
}

// finishedDetail describes a completed or archived task.
func (d *demo) finishedDetail(t *task, res *job.Result, calls []graphtest.Call) string {
	if res == nil {
		return short(t.ti.LastErr)
	}
	var parts []string
	switch {
	case res.Outcome != job.OutcomeSent:
		parts = append(parts, graphReason(res))
	case res.MessageID != "":
		parts = append(parts, res.MessageID)
	default:
		parts = append(parts, "no message id (sender action)")
	}
	if t.retried != "" && res.Outcome == job.OutcomeSent && len(calls) > 1 {
		parts = append(parts, t.retried)
	}
	if !t.sendAt.IsZero() && len(calls) > 0 {
		parts = append(parts, fmt.Sprintf("sent %.1fs after enqueue", calls[0].Time.Sub(t.enqueuedAt).Seconds()))
	}
	if t.dup != nil {
		if t.dup.Duplicate {
			parts = append(parts, "2nd enqueue: duplicate")
		} else {
			parts = append(parts, "2nd enqueue stored a copy")
		}
	}
	if t.heldByPause {
		rejected := 0
		for _, c := range calls {
			if c.Token != tokenStaleNew {
				rejected++
			}
		}
		switch rejected {
		case 0:
		case 1:
			parts = append(parts, "1 call with the old token → 190")
		default:
			parts = append(parts, fmt.Sprintf("%d calls with the old token → 190", rejected))
		}
		if d.pauseHit {
			parts = append(parts, "held until the token was fixed")
		}
	}
	return strings.Join(parts, "; ")
}

// graphReason is a dropped or dead-lettered result's Graph error in
// brief: "551: This person isn't available right now." The reason text
// stored on the result is the whole *graphapi.Error; the table keeps the
// code and Meta's message and leaves the rest (fbtrace_id, HTTP status)
// to the logs and the task's result.
func graphReason(res *job.Result) string {
	if res.Code == 0 {
		return short(res.Reason)
	}
	msg := res.Reason
	if _, after, ok := strings.Cut(msg, "): "); ok {
		msg = after
	}
	if before, _, ok := strings.Cut(msg, " ["); ok {
		msg = before
	}
	code := fmt.Sprint(res.Code)
	if res.Subcode != 0 {
		code += fmt.Sprintf("/%d", res.Subcode)
	}
	return short(code + ": " + msg)
}

// pendingDetail says why a task has not finished: its Page's pause, or
// its last error.
func (d *demo) pendingDetail(ctx context.Context, t *task) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if p, err := d.svc.Pauses.Get(ctx, t.page); err == nil && p != nil {
		return "paused: " + string(p.Reason)
	}
	if t.ti.LastErr != "" {
		return short(t.ti.LastErr)
	}
	return "not finished"
}

// messageMetrics reads pagesend_messages_total from the service's
// registry, summed over Pages, by outcome.
func (d *demo) messageMetrics() map[string]int {
	out := map[string]int{}
	mfs, err := d.svc.Registry.Gather()
	if err != nil {
		d.log.Warn("gather metrics", "err", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "pagesend_messages_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "outcome" {
					out[lp.GetValue()] += int(m.GetCounter().GetValue())
				}
			}
		}
	}
	return out
}

// printSummary prints the table, the totals and the cross-checks.
func (d *demo) printSummary(sum *Summary) {
	settled := len(sum.Rows) - unfinished(sum)
	d.printf("\nsummary: %d of %d jobs settled after %.1fs\n\n", settled, len(sum.Rows), sum.Elapsed.Seconds())
	tw := tabwriter.NewWriter(d.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LABEL\tPAGE\tEXPECTED\tOUTCOME\tGRAPH CALLS\tOK\tDETAIL")
	for _, r := range sum.Rows {
		ok := "✓"
		if !r.OK {
			ok = "✗"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", r.Label, r.PageID, r.Expected, r.Outcome, r.Calls, ok, r.Detail)
	}
	tw.Flush()

	d.printf("\ntotals: %s\n", formatCounts(sum.Counts, false))
	if sum.Mismatches == 0 {
		d.printf("all %d outcomes as expected\n", len(sum.Rows))
	} else {
		d.printf("%d mismatches (rows marked ✗)\n", sum.Mismatches)
	}
	d.printf("fake Graph API: %d calls in all (rejected ones included)\n", sum.GraphCalls)
	agree := "agrees with the table"
	for _, o := range outcomeOrder {
		if sum.Metrics[o] != sum.Counts[o] {
			agree = "differs from the table"
		}
	}
	d.printf("metrics pagesend_messages_total: %s — %s\n", formatCounts(sum.Metrics, true), agree)
}

// formatCounts prints counts as "sent 11, dropped 2, dead_lettered 1",
// the main outcomes always (zero included), others when present.
func formatCounts(counts map[string]int, all bool) string {
	var parts []string
	for _, o := range outcomeOrder {
		parts = append(parts, fmt.Sprintf("%s %d", o, counts[o]))
	}
	var rest []string
	for o, n := range counts {
		if !slices.Contains(outcomeOrder, o) && (all || n > 0) {
			rest = append(rest, fmt.Sprintf("%s %d", o, n))
		}
	}
	slices.Sort(rest)
	return strings.Join(append(parts, rest...), ", ")
}

func unfinished(sum *Summary) int {
	n := 0
	for o, c := range sum.Counts {
		if !slices.Contains(outcomeOrder, o) {
			n += c
		}
	}
	return n
}

// short cuts a reason to fit a table cell.
func short(s string) string {
	const max = 70
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > max {
		return string(r[:max-1]) + "…"
	}
	return s
}
