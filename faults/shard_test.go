//go:build faults

package faults

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/pagesend/pagesend/enqueue"
	"github.com/pagesend/pagesend/graphapi/graphtest"
	"github.com/pagesend/pagesend/internal/redisopt"
	"github.com/pagesend/pagesend/internal/redistest"
	"github.com/pagesend/pagesend/shard"
)

// Scenario 6: Pages sharded over three redis-servers (AOF, everysec); two
// `pagesend worker` processes, each with PAGESEND_REDIS_SHARDS naming all
// three, so each runs one asynq worker per shard. Jobs for 60 Pages are
// enqueued through enqueue.NewShardedClient, then, mid-load, one shard's
// redis-server is killed with kill -9 and restarted on the same port and
// directory 6 s later. The other two shards must keep delivering while it
// is down; the workers are not restarted and must reconnect to it by
// themselves; every job must be delivered. Tasks whose acknowledgement was
// lost at the kill stay active until asynq's lease recovery (about 1–2
// min), so the scenario waits for that, polling, and no longer.
//
// It also notes how many Pages would move if a fourth shard were added:
// rendezvous hashing should move about 1/4 of them, all to the new shard.
func TestShardRedisKill(t *testing.T) {
	t.Parallel()
	const (
		nPages      = 60
		perPage     = 50 // jobs per Page: 3,000 in all
		workers     = 2
		concurrency = 4 // per shard, per worker: 8 sends in flight per shard
		victim      = 1 // the shard killed: s2
		// Longer than the worker's 5 s of retries to write a send's
		// record, so the sends in flight at the kill lose it and their
		// acks may fail: the path that waits for lease recovery.
		minOutage = 6 * time.Second
		firstRcpt = 6000000
	)
	names := []string{"s1", "s2", "s3"}
	row, record := scenario(t, "6", "sharded: one shard's Redis killed")
	defer record()
	// Every wait below is bounded by its own limit and by this budget.
	budget := time.Now().Add(215 * time.Second)
	limit := func(d time.Duration) time.Duration { return max(0, min(d, time.Until(budget))) }

	var pages []page
	for i := range nPages {
		id := strconv.Itoa(6000 + i)
		pages = append(pages, page{ID: id, Token: "EAAfaultsShard" + id, Rate: 5000})
	}
	// newRig's redis-server is shard s1; s2 and s3 share its fake Graph
	// API and pages file, each with its own inspector.
	base := newRig(t, rigOptions{Pages: pages, Latency: 20 * time.Millisecond, AppendOnly: true})
	rigs := []*rig{base}
	for range names[1:] {
		rs := redistest.Start(t, redistest.Options{AppendOnly: true})
		in := asynq.NewInspector(asynq.RedisClientOpt{Addr: rs.Addr()})
		t.Cleanup(func() { in.Close() })
		rigs = append(rigs, &rig{t: t, redis: rs, fake: base.fake, pages: pages, pagesFile: base.pagesFile, in: in})
	}
	var spec []string
	for i, n := range names {
		spec = append(spec, n+"="+rigs[i].redis.URL())
	}
	shardSpec := strings.Join(spec, " ")
	// Parsed as the binary parses PAGESEND_REDIS_SHARDS.
	shards, err := shard.Parse(shardSpec, redisopt.ParseURL)
	if err != nil {
		t.Fatal(err)
	}

	// The jobs, Page after Page in turn; one recipient per job.
	pageShard := map[string]int{}
	pagesPer := make([]int, len(names))
	for _, p := range pages {
		s := shard.Pick(names, p.ID)
		pageShard[p.ID] = s
		pagesPer[s]++
	}
	var js []enqueue.Job
	for j := range perPage {
		for k, p := range pages {
			jb := jobs(p, firstRcpt+k*perPage+j, 1)[0]
			jb.IdempotencyKey = "6-" + jb.Request.Recipient.ID
			js = append(js, jb)
		}
	}
	rcpts := recipients(js)
	rcptShard := map[string]int{}
	rcptsBy := make([][]string, len(names))
	for i, jb := range js {
		s := pageShard[jb.PageID]
		rcptShard[rcpts[i]] = s
		rcptsBy[s] = append(rcptsBy[s], rcpts[i])
	}
	row.note("pages per shard %s, jobs per shard %s (shard.Pick)", perShard(names, pagesPer), perShard(names, lens(rcptsBy)))

	ctx, cancel := context.WithTimeout(context.Background(), limit(60*time.Second))
	defer cancel()
	prod := &producer{c: enqueue.NewShardedClient(shards, enqueue.Options{}), jobs: js, acked: make([]time.Time, len(js))}
	defer prod.close()
	if err := prod.enqueueAll(ctx, 0, len(js)); err != nil {
		t.Fatalf("enqueue: %v (%d of %d acknowledged)", err, prod.ackedCount(), len(js))
	}
	row.Sent = prod.ackedCount()
	enqueued := time.Now()
	for s, r := range rigs {
		q, err := r.queues()
		if err != nil || q.open() != len(rcptsBy[s]) {
			t.Fatalf("shard %s holds %v (%v), want %d jobs: the sharded client did not follow shard.Pick", names[s], q, err, len(rcptsBy[s]))
		}
	}
	if !waitAOFSynced(rigs[victim].redis.Client(t), enqueued, limit(10*time.Second)) {
		t.Fatalf("shard %s: the AOF never reported its fsync done", names[victim])
	}

	env := []string{"PAGESEND_REDIS_SHARDS=" + shardSpec, "PAGESEND_CONCURRENCY=" + strconv.Itoa(concurrency)}
	var ws []*workerProc
	for i := range workers {
		ws = append(ws, base.startWorker(fmt.Sprintf("w%d", i+1), env...))
	}
	rw := watchReady(ws[0])
	defer rw.close()

	// Kill once the victim has delivered a quarter of its jobs.
	killAt := len(rcptsBy[victim]) / 4
	var atKill []int
	if !waitUntil(limit(60*time.Second), func() bool {
		atKill = deliveredBy(base.tally(), rcptsBy)
		return atKill[victim] >= killAt
	}) {
		t.Fatalf("shard %s delivered only %d of %d jobs in 60s", names[victim], atKill[victim], len(rcptsBy[victim]))
	}
	// Each worker's sends for the victim's Pages, counted from here: at
	// most concurrency of them can have been in flight at the kill, so a
	// worker that sends more after it has gone back to the restarted shard.
	// (Scraped now: with a shard down /metrics is slow, its queue
	// collector waiting on the dead Redis.)
	sentBefore := victimSends(t, ws, pageShard, victim)
	if err := rigs[victim].redis.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	callsAtKill := base.fake.CallCount()

	// Down for at least minOutage, until w1's /readyz has said 503 and
	// each healthy shard has delivered since the kill (bounded).
	var outage []int
	held := waitUntil(limit(30*time.Second), func() bool {
		outage = okCallsByShard(base.fake.Calls(), rcptShard, len(names), killed, time.Now())
		if time.Since(killed) < minOutage || !saw(rw.history(), http.StatusServiceUnavailable, killed) {
			return false
		}
		for s := range names {
			if s != victim && outage[s] == 0 {
				return false
			}
		}
		return true
	})
	aliveInOutage := countAlive(ws)
	if err := rigs[victim].redis.Restart(); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	outage = okCallsByShard(base.fake.Calls(), rcptShard, len(names), killed, restarted)
	restored, restoreErr := rigs[victim].queues()
	up, upOK := rw.waitFor(http.StatusOK, limit(30*time.Second))

	// Settle: every job delivered and no task open on any shard (tasks
	// whose ack was lost at the kill wait for asynq's lease recovery).
	var qs []queueState
	var at15 queueState // the victim's queues 15 s after the restart
	var qerr error
	settled := pollUntil(limit(150*time.Second), 250*time.Millisecond, func() bool {
		qs, qerr = shardQueues(rigs)
		if qerr != nil {
			return false
		}
		if time.Since(restarted) < 15*time.Second {
			at15 = qs[victim]
		}
		for s, q := range qs {
			if q.open() != 0 || q.Completed+q.Archived < len(rcptsBy[s]) {
				return false
			}
		}
		d, _ := base.tally().count(rcpts)
		return d == len(rcpts)
	})
	settledAt := time.Now()
	if qs == nil || qerr != nil {
		qs, qerr = shardQueues(rigs)
	}
	sentAfter := victimSends(t, ws, pageShard, victim)
	calls := base.fake.Calls()
	tl := base.tally()

	row.Delivered, row.Duplicated = tl.count(rcpts)
	row.Lost = row.Sent - row.Delivered
	dups := make([]int, len(names))
	for s := range names {
		_, dups[s] = tl.count(rcptsBy[s])
	}
	for _, q := range qs {
		row.DeadLettered += q.Archived
	}
	left := make([]int, len(names))
	for s := range names {
		left[s] = len(rcptsBy[s]) - atKill[s]
	}
	lastFirst, lastAny, resumed := victimTimes(calls, rcptShard, victim, restarted)
	perWorker := make([]string, len(ws))
	for i, w := range ws {
		perWorker[i] = fmt.Sprintf("%s %.0f", w.name, sentAfter[i]-sentBefore[i])
	}
	alive := countAlive(ws)

	row.note("killed %s after it delivered %d of its %d jobs (%d calls in all); jobs left per shard then %s",
		names[victim], atKill[victim], len(rcptsBy[victim]), callsAtKill, perShard(names, left))
	row.note("down %v: successful calls per shard meanwhile %s", restarted.Sub(killed).Round(100*time.Millisecond), perShard(names, outage))
	row.note("AOF restored %d of %d tasks of %s (%d of them active: leased when it died)",
		restored.open()+restored.Completed+restored.Archived, len(rcptsBy[victim]), names[victim], restored.Active)
	row.note("%s; 200 %v after the restart", readySummary(rw.history(), killed), up.At.Sub(restarted).Round(100*time.Millisecond))
	row.note("%d of %d workers alive, none restarted; sends for %s's Pages since the kill per worker (at most %d were in flight then): %s",
		alive, workers, names[victim], concurrency, strings.Join(perWorker, ", "))
	row.note("%s after the restart: first call %v, last job delivered %v, last successful call %v; all shards settled %v",
		names[victim], since(resumed, restarted), since(lastFirst, restarted), since(lastAny, restarted), settledAt.Sub(restarted).Round(time.Second))
	if at15.open() > 0 {
		row.note("15s after the restart %s still had %d open (%v), waiting for asynq's lease recovery", names[victim], at15.open(), at15)
	}
	row.note("duplicates per shard %s", perShard(names, dups))
	row.note("worker logs: %d sent-records not written, %d acks left to asynq's syncer",
		sumLogs(ws, "could not record the send"), sumLogs(ws, "Will retry syncing"))
	moved, movedAll, wrong := addShardMoves(names, pages, 100000)
	row.note("a 4th shard would move %d of %d Pages (%.1f%%) and %.2f%% of 100000 synthetic ids (ideal 25%%)",
		moved, len(pages), 100*float64(moved)/float64(len(pages)), 100*movedAll)

	if !held {
		t.Errorf("while %s was down (%v): /readyz 503 seen=%v, successful calls per shard %s",
			names[victim], restarted.Sub(killed).Round(100*time.Millisecond), saw(rw.history(), http.StatusServiceUnavailable, killed), perShard(names, outage))
	}
	for s := range names {
		if s != victim && outage[s] == 0 {
			t.Errorf("shard %s made no successful call while %s was down", names[s], names[victim])
		}
	}
	if aliveInOutage != workers || alive != workers {
		t.Errorf("workers alive: %d during the outage, %d at the end; want %d", aliveInOutage, alive, workers)
	}
	if restoreErr != nil {
		t.Errorf("queue state of %s after the restart: %v", names[victim], restoreErr)
	} else if got := restored.open() + restored.Completed + restored.Archived; got != len(rcptsBy[victim]) {
		t.Errorf("after the restart %s holds %d tasks, want %d: %v", names[victim], got, len(rcptsBy[victim]), restored)
	}
	if !upOK {
		t.Errorf("/readyz did not come back to 200 after the restart: %v", rw.history())
	}
	if !settled {
		t.Errorf("not settled %v after the restart: %v (%v); no success for %v",
			settledAt.Sub(restarted).Round(time.Second), qs, qerr, tl.missing(rcpts))
	}
	if row.Lost > 0 {
		t.Errorf("%d jobs lost, e.g. %v", row.Lost, tl.missing(rcpts))
	}
	if row.DeadLettered > 0 {
		t.Errorf("%d tasks dead-lettered; none should be", row.DeadLettered)
	}
	for s := range names {
		if s != victim && dups[s] > 0 {
			t.Errorf("shard %s, never down, has %d duplicates", names[s], dups[s])
		}
	}
	if dups[victim] > workers*concurrency {
		t.Errorf("%s: %d duplicates, more than the %d sends that can be in flight on it", names[victim], dups[victim], workers*concurrency)
	}
	if left[victim] > 0 {
		for i, w := range ws {
			if sentAfter[i]-sentBefore[i] <= concurrency {
				t.Errorf("worker %s sent %.0f messages for %s since the kill, no more than it had in flight then: it did not reconnect",
					w.name, sentAfter[i]-sentBefore[i], names[victim])
			}
		}
	}
	if wrong > 0 {
		t.Errorf("adding a 4th shard moved %d ids between old shards; rendezvous hashing moves ids only to the new one", wrong)
	}
}

// waitAOFSynced waits until what was written before t is fsynced to the
// AOF (appendfsync everysec: a second has passed and nothing is pending).
func waitAOFSynced(rdb *redis.Client, t time.Time, deadline time.Duration) bool {
	return waitUntil(deadline, func() bool {
		if time.Since(t) < 1100*time.Millisecond {
			return false
		}
		info, err := rdb.Info(context.Background(), "persistence").Result()
		return err == nil && strings.Contains(info, "aof_enabled:1") &&
			strings.Contains(info, "aof_pending_bio_fsync:0") && strings.Contains(info, "aof_buffer_length:0")
	})
}

// pollUntil is waitUntil with its own interval, for checks that cost
// Redis round trips on every shard.
func pollUntil(deadline, every time.Duration, cond func() bool) bool {
	end := time.Now().Add(deadline)
	for {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
		time.Sleep(every)
	}
}

// shardQueues is the queue state of each shard.
func shardQueues(rigs []*rig) ([]queueState, error) {
	out := make([]queueState, len(rigs))
	for i, r := range rigs {
		q, err := r.queues()
		if err != nil {
			return nil, err
		}
		out[i] = q
	}
	return out, nil
}

// deliveredBy counts, per shard, the jobs with a successful call.
func deliveredBy(tl tally, rcptsBy [][]string) []int {
	out := make([]int, len(rcptsBy))
	for s, rs := range rcptsBy {
		out[s], _ = tl.count(rs)
	}
	return out
}

// okCallsByShard counts successful calls that arrived in [from, to], by
// the shard of their recipient.
func okCallsByShard(calls []graphtest.Call, rcptShard map[string]int, n int, from, to time.Time) []int {
	out := make([]int, n)
	for _, c := range calls {
		s, ok := rcptShard[c.Recipient]
		if ok && c.Status == http.StatusOK && c.MessageID != "" && !c.Time.Before(from) && !c.Time.After(to) {
			out[s]++
		}
	}
	return out
}

// victimTimes returns, for the jobs of shard victim, when the last of them
// was first delivered, when the last successful call for any of them
// arrived, and when the first call of any kind arrived after restarted.
func victimTimes(calls []graphtest.Call, rcptShard map[string]int, victim int, restarted time.Time) (lastFirst, lastAny, resumed time.Time) {
	first := map[string]time.Time{}
	for _, c := range calls {
		if s, ok := rcptShard[c.Recipient]; !ok || s != victim {
			continue
		}
		if c.Time.After(restarted) && (resumed.IsZero() || c.Time.Before(resumed)) {
			resumed = c.Time
		}
		if c.Status != http.StatusOK || c.MessageID == "" {
			continue
		}
		if f, ok := first[c.Recipient]; !ok || c.Time.Before(f) {
			first[c.Recipient] = c.Time
		}
		if c.Time.After(lastAny) {
			lastAny = c.Time
		}
	}
	for _, f := range first {
		if f.After(lastFirst) {
			lastFirst = f
		}
	}
	return lastFirst, lastAny, resumed
}

// victimSends sums, per worker, pagesend_messages_total{outcome="sent"}
// over the Pages of shard victim (-1 when /metrics does not answer).
func victimSends(t *testing.T, ws []*workerProc, pageShard map[string]int, victim int) []float64 {
	out := make([]float64, len(ws))
	for i, w := range ws {
		byPage, err := sentByPage(w)
		if err != nil {
			t.Errorf("worker %s /metrics: %v", w.name, err)
			out[i] = -1
			continue
		}
		for p, v := range byPage {
			if s, ok := pageShard[p]; ok && s == victim {
				out[i] += v
			}
		}
	}
	return out
}

// sentByPage reads a worker's pagesend_messages_total{outcome="sent"} by
// page_id.
func sentByPage(w *workerProc) (map[string]float64, error) {
	resp, err := opsClient.Get("http://" + w.ops + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "pagesend_messages_total{") || !strings.Contains(line, `outcome="sent"`) {
			continue
		}
		_, rest, _ := strings.Cut(line, `page_id="`)
		pageID, _, ok := strings.Cut(rest, `"`)
		f := strings.Fields(line[strings.LastIndexByte(line, '}')+1:])
		if !ok || len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return nil, fmt.Errorf("%q: %v", line, err)
		}
		out[pageID] += v
	}
	return out, sc.Err()
}

// addShardMoves computes, with shard.Pick, what adding a fourth shard to
// names would move: how many of pages, what fraction of n synthetic Page
// ids, and how many ids of either set would move between old shards
// (rendezvous hashing: none).
func addShardMoves(names []string, pages []page, n int) (movedPages int, movedFrac float64, wrong int) {
	more := append(append([]string(nil), names...), "s4")
	moves := func(id string) bool {
		before, after := shard.Pick(names, id), shard.Pick(more, id)
		if before != after && after != len(names) {
			wrong++
		}
		return before != after
	}
	for _, p := range pages {
		if moves(p.ID) {
			movedPages++
		}
	}
	moved := 0
	for i := range n {
		if moves(strconv.Itoa(100000000000000 + i)) {
			moved++
		}
	}
	return movedPages, float64(moved) / float64(n), wrong
}

// saw reports whether h has status code at or after t.
func saw(h []readyChange, code int, t time.Time) bool {
	for _, c := range h {
		if c.Status == code && !c.At.Before(t) {
			return true
		}
	}
	return false
}

func countAlive(ws []*workerProc) int {
	n := 0
	for _, w := range ws {
		if w.alive() {
			n++
		}
	}
	return n
}

func lens(xs [][]string) []int {
	out := make([]int, len(xs))
	for i, x := range xs {
		out[i] = len(x)
	}
	return out
}

// perShard formats counts as "s1=21 s2=19 s3=20".
func perShard(names []string, counts []int) string {
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s=%d", n, counts[i])
	}
	return strings.Join(parts, " ")
}

// since is t-from rounded, or "never" for the zero time.
func since(t, from time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Sub(from).Round(100 * time.Millisecond).String()
}
