package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"time"

	"github.com/pagesend/pagesend/enqueue"
	"github.com/pagesend/pagesend/graphapi"
	"github.com/pagesend/pagesend/graphapi/graphtest"
)

// ---------------------------------------------------------------- (f)

const pageOrder = "1006"

// orderRun is one pass of (f).
type orderRun struct {
	Ordered    bool    `json:"ordered"`
	Seconds    float64 `json:"seconds_first_to_last_send"`
	MsgsPerSec float64 `json:"msgs_per_s"`
	Calls      int     `json:"calls"`
	Faults     int     `json:"faults_answered"`
	Duplicates int     `json:"duplicate_sends"`
	Violations int     `json:"order_violations"`
}

// order measures ordered delivery: OrderN messages to OrderRecipients
// recipients through OrderWorkers worker processes, with HTML 503s and
// 613s (a short throttle) answered on random calls, once ordered (the
// default) and once with "ordered": false. It counts deliveries that
// reached a recipient after a later message to it (violations; must be 0
// when ordered) and compares the throughputs.
func (b *bench) order(ctx context.Context, r *results) (map[string]any, error) {
	cfg := b.cfg
	d := map[string]any{"messages": cfg.OrderN, "recipients": cfg.OrderRecipients, "workers": cfg.OrderWorkers,
		"graph_latency_ms": ms(cfg.OrderLatency), "faults": "2% HTML 503, 0.5% 613 with estimated_time_to_regain_access 0.01 min"}
	var runs []orderRun
	for _, ordered := range []bool{true, false} {
		run, err := b.orderRun(ctx, ordered)
		if err != nil {
			return d, err
		}
		runs = append(runs, run)
	}
	d["runs"] = runs
	o, u := runs[0], runs[1]
	r.add(figure{Scenario: "f", Name: "order violations, ordered", Value: float64(o.Violations), Unit: "count", Op: "<=", TargetValue: 0,
		Note: fmt.Sprintf("%d messages, %d recipients, %d worker processes; %d faults answered", cfg.OrderN, cfg.OrderRecipients, cfg.OrderWorkers, o.Faults)})
	r.add(figure{Scenario: "f", Name: "order violations, unordered (for comparison)", Value: float64(u.Violations), Unit: "count",
		Note: fmt.Sprintf("%d faults answered", u.Faults)})
	r.add(figure{Scenario: "f", Name: "throughput, ordered", Value: o.MsgsPerSec, Unit: "msgs/s",
		Note: fmt.Sprintf("%.1f s first to last send; %d duplicate sends", o.Seconds, o.Duplicates)})
	r.add(figure{Scenario: "f", Name: "throughput, unordered", Value: u.MsgsPerSec, Unit: "msgs/s",
		Note: fmt.Sprintf("%.1f s first to last send; %d duplicate sends", u.Seconds, u.Duplicates)})
	r.add(figure{Scenario: "f", Name: "ordered ÷ unordered throughput", Value: o.MsgsPerSec / u.MsgsPerSec, Unit: "ratio",
		Note: fmt.Sprintf("each conversation sends one message at a time: at most %d in flight, against the workers' %d slots", cfg.OrderRecipients, cfg.OrderWorkers*50)})
	return d, nil
}

func (b *bench) orderRun(ctx context.Context, ordered bool) (orderRun, error) {
	cfg := b.cfg
	run := orderRun{Ordered: ordered}
	re, err := startRedis()
	if err != nil {
		return run, err
	}
	defer re.close()
	fake := graphtest.NewServer(graphtest.Options{Latency: cfg.OrderLatency})
	defer fake.Close()
	rng := rand.New(rand.NewPCG(6, 6))
	for c := 1; c <= 3*cfg.OrderN; c++ {
		switch x := rng.IntN(1000); {
		case x < 20:
			fake.ScriptCall(c, graphtest.Raw(503, "text/html", "<html>busy</html>"))
		case x < 25:
			fake.ScriptCall(c, graphtest.Fail(613, 0).WithRegain(0.01))
		}
	}
	dir, err := os.MkdirTemp("", "pagesend-bench")
	if err != nil {
		return run, err
	}
	defer os.RemoveAll(dir)
	pf, err := pagesFile(dir, map[string][2]float64{pageOrder: {10000, 10000}})
	if err != nil {
		return run, err
	}
	procs := make([]*workerProc, cfg.OrderWorkers)
	errs := make([]error, cfg.OrderWorkers)
	for i := range procs {
		procs[i], errs[i] = b.startWorkerProc(ctx, "redis://"+re.srv.Addr()+"/0", fake.URL(), pf)
	}
	defer stopAll(procs)
	if err := errors.Join(errs...); err != nil {
		return run, err
	}

	// Message i goes to recipient i mod R, numbered i / R in its
	// conversation, so every conversation's messages are interleaved with
	// the others' in the queue.
	jobs := make([]enqueue.Job, cfg.OrderN)
	for i := range jobs {
		jobs[i] = enqueue.Job{PageID: pageOrder, Request: &graphapi.Request{
			Recipient:     &graphapi.Recipient{ID: strconv.Itoa(7000 + i%cfg.OrderRecipients)},
			MessagingType: "UPDATE",
			Message:       &graphapi.Message{Text: strconv.Itoa(i / cfg.OrderRecipients)},
		}}
		if !ordered {
			jobs[i].Ordered = new(bool)
		}
	}
	client := enqueue.NewClient(re.opt)
	defer client.Close()
	// One batch, in order: the order of enqueueing is the order promised.
	if _, err := client.EnqueueBatch(ctx, jobs); err != nil {
		return run, err
	}
	var first, last time.Time
	var delivered map[string]map[int]int
	werr := waitFor(ctx, 5*time.Minute, fmt.Sprintf("%d sends", cfg.OrderN), func() bool {
		delivered = map[string]map[int]int{}
		n := 0
		for _, c := range fake.Calls() {
			if c.Status != 200 || c.Request == nil || c.Request.Message == nil {
				continue
			}
			k, _ := strconv.Atoi(c.Request.Message.Text)
			if delivered[c.Recipient] == nil {
				delivered[c.Recipient] = map[int]int{}
			}
			if delivered[c.Recipient][k] == 0 {
				n++
			}
			delivered[c.Recipient][k]++
		}
		return n >= cfg.OrderN
	})
	if werr != nil {
		return run, werr
	}
	high := map[string]int{}
	for _, c := range fake.Calls() {
		run.Calls++
		if c.Status != 200 {
			run.Faults++
			continue
		}
		if c.Request == nil || c.Request.Message == nil {
			continue
		}
		if first.IsZero() {
			first = c.Time
		}
		last = c.Time
		k, _ := strconv.Atoi(c.Request.Message.Text)
		if h, ok := high[c.Recipient]; ok && k < h {
			run.Violations++
		}
		high[c.Recipient] = max(high[c.Recipient], k)
	}
	for _, m := range delivered {
		for _, times := range m {
			run.Duplicates += times - 1
		}
	}
	run.Seconds = last.Sub(first).Seconds()
	run.MsgsPerSec = float64(cfg.OrderN) / run.Seconds
	return run, nil
}
