package ratelimit

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock, safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

var testStart = time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newTestLocal returns a Local on a fake clock starting at testStart.
func newTestLocal(limits LimitFunc) (*Local, *fakeClock) {
	clock := &fakeClock{t: testStart}
	l := NewLocal(limits)
	l.now = clock.Now
	return l, clock
}

// same returns a LimitFunc giving every Page the same limits.
func same(text, media Limit) LimitFunc {
	return func(string) (Limit, Limit) { return text, media }
}

// step is one Reserve and what it must return.
type step struct {
	advance  time.Duration // moved on the clock before the call
	page     string        // "p1" when empty
	kind     Kind
	maxWait  time.Duration
	repeat   int // the call is made this many times (1 when 0)
	wantWait time.Duration
	// waitStep is added to wantWait for each repeated call: refused
	// callers are spread one token interval apart.
	waitStep time.Duration
	wantOK   bool
}

// runSteps makes the steps' calls on l and checks each result.
func runSteps(t *testing.T, l *Local, clock *fakeClock, steps []step) {
	t.Helper()
	for i, s := range steps {
		clock.Advance(s.advance)
		page := s.page
		if page == "" {
			page = "p1"
		}
		for n := range max(s.repeat, 1) {
			wait, ok, err := l.Reserve(context.Background(), page, s.kind, s.maxWait)
			if err != nil {
				t.Fatalf("step %d call %d: Reserve(%s, %s, %v): %v", i, n, page, s.kind, s.maxWait, err)
			}
			want := s.wantWait + time.Duration(n)*s.waitStep
			if !near(wait, want) || ok != s.wantOK {
				t.Fatalf("step %d call %d: Reserve(%s, %s, %v) = %v, %v; want %v, %v",
					i, n, page, s.kind, s.maxWait, wait, ok, want, s.wantOK)
			}
		}
	}
}

// near reports whether two waits agree within a microsecond: x/time/rate
// computes them in floating point.
func near(a, b time.Duration) bool {
	d := a - b
	return d > -time.Microsecond && d < time.Microsecond
}

func TestLocalReserve(t *testing.T) {
	const ms = time.Millisecond
	tests := []struct {
		name  string
		limit Limit
		steps []step
	}{
		{
			name:  "burst is immediate, then one token per 1/rate",
			limit: Limit{Rate: 10, Burst: 3},
			steps: []step{
				{repeat: 3, wantOK: true},
				{maxWait: time.Second, wantWait: 100 * ms, wantOK: true},
				{maxWait: time.Second, wantWait: 200 * ms, wantOK: true},
			},
		},
		{
			name:  "a wait beyond maxWait takes nothing",
			limit: Limit{Rate: 10, Burst: 1},
			steps: []step{
				{wantOK: true},
				// Refused callers are told to come back spread out, one
				// token interval apart, and take no token...
				{maxWait: 50 * ms, repeat: 3, wantWait: 100 * ms, waitStep: 100 * ms},
				// ...so a caller who may wait gets the first token.
				{maxWait: time.Second, wantWait: 100 * ms, wantOK: true},
				{maxWait: time.Second, wantWait: 200 * ms, wantOK: true},
				// The next refused caller queues behind the last slot given.
				{maxWait: 150 * ms, wantWait: 400 * ms},
				// Once the slots are in the past they are forgotten.
				{advance: time.Second, repeat: 1, wantOK: true},
				{wantWait: 100 * ms},
			},
		},
		{
			name:  "maxWait equal to the wait is enough",
			limit: Limit{Rate: 4, Burst: 1},
			steps: []step{
				{wantOK: true},
				{maxWait: 250 * ms, wantWait: 250 * ms, wantOK: true},
			},
		},
		{
			name:  "tokens refill with time up to burst",
			limit: Limit{Rate: 10, Burst: 2},
			steps: []step{
				{repeat: 2, wantOK: true},
				{wantWait: 100 * ms},
				{advance: 100 * ms, wantOK: true},
				{wantWait: 100 * ms},
				{advance: time.Hour, repeat: 2, wantOK: true},
				{wantWait: 100 * ms},
			},
		},
		{
			name:  "negative maxWait counts as zero",
			limit: Limit{Rate: 10, Burst: 1},
			steps: []step{
				{maxWait: -time.Second, wantOK: true},
				{maxWait: -time.Second, wantWait: 100 * ms},
			},
		},
		{
			name:  "zero rate is unlimited",
			limit: Limit{Rate: 0, Burst: 0},
			steps: []step{{repeat: 1000, wantOK: true}},
		},
		{
			name:  "negative rate is unlimited",
			limit: Limit{Rate: -1, Burst: 1},
			steps: []step{{repeat: 1000, wantOK: true}},
		},
		{
			name:  "zero burst never sends",
			limit: Limit{Rate: 10, Burst: 0},
			steps: []step{
				{maxWait: time.Hour, wantWait: DisabledWait},
				{advance: time.Hour, maxWait: time.Hour, wantWait: DisabledWait},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l, clock := newTestLocal(same(tt.limit, tt.limit))
			runSteps(t, l, clock, tt.steps)
		})
	}
}

func TestLocalBucketsAreIndependent(t *testing.T) {
	limits := func(page string) (Limit, Limit) {
		if page == "slow" {
			return Limit{Rate: 1, Burst: 1}, Limit{Rate: 0.5, Burst: 1}
		}
		return Limit{Rate: 10, Burst: 1}, Limit{Rate: 2, Burst: 1}
	}
	l, clock := newTestLocal(limits)
	runSteps(t, l, clock, []step{
		{page: "p1", kind: Text, wantOK: true},
		{page: "p1", kind: Text, wantWait: 100 * time.Millisecond},
		// The Media bucket of the same Page is still full.
		{page: "p1", kind: Media, wantOK: true},
		{page: "p1", kind: Media, wantWait: 500 * time.Millisecond},
		// So are another Page's, with that Page's own limits.
		{page: "p2", kind: Text, wantOK: true},
		{page: "slow", kind: Text, wantOK: true},
		{page: "slow", kind: Text, wantWait: time.Second},
		{page: "slow", kind: Media, wantOK: true},
		{page: "slow", kind: Media, wantWait: 2 * time.Second},
		// And p1's buckets were not touched by the others: its next
		// refused caller is spread behind the first.
		{page: "p1", kind: Text, wantWait: 200 * time.Millisecond},
	})
}

// limitTable is a LimitFunc whose limits a test can change.
type limitTable struct {
	mu sync.Mutex
	m  map[string]Limit // text limits by page; media is the same
}

func (lt *limitTable) set(page string, lim Limit) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	lt.m[page] = lim
}

func (lt *limitTable) limits(page string) (Limit, Limit) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	return lt.m[page], lt.m[page]
}

func TestLocalUpdate(t *testing.T) {
	const ms = time.Millisecond
	slow := Limit{Rate: 1, Burst: 1}
	tests := []struct {
		name   string
		before map[string]Limit
		steps  []step // run before the update
		after  map[string]Limit
		update []string
		check  []step // run after the update
	}{
		{
			name:   "rate raised for all pages",
			before: map[string]Limit{"p1": slow},
			steps:  []step{{wantOK: true}, {wantWait: time.Second}},
			after:  map[string]Limit{"p1": {Rate: 10, Burst: 1}},
			check:  []step{{wantWait: 100 * ms}, {kind: Media, wantOK: true}, {kind: Media, wantWait: 100 * ms}},
		},
		{
			name:   "only the named pages",
			before: map[string]Limit{"p1": slow, "p2": slow},
			steps:  []step{{page: "p1", wantOK: true}, {page: "p2", wantOK: true}},
			after:  map[string]Limit{"p1": {Rate: 10, Burst: 1}, "p2": {Rate: 10, Burst: 1}},
			update: []string{"p1"},
			check:  []step{{page: "p1", wantWait: 100 * ms}, {page: "p2", wantWait: time.Second}},
		},
		{
			name:   "burst lowered",
			before: map[string]Limit{"p1": {Rate: 10, Burst: 5}},
			after:  map[string]Limit{"p1": {Rate: 10, Burst: 1}},
			check:  []step{{wantOK: true}, {wantWait: 100 * ms}},
		},
		{
			name:   "limited to unlimited",
			before: map[string]Limit{"p1": slow},
			steps:  []step{{wantOK: true}},
			after:  map[string]Limit{"p1": {}},
			check:  []step{{repeat: 100, wantOK: true}},
		},
		{
			name:   "unlimited to limited starts full",
			before: map[string]Limit{"p1": {}},
			steps:  []step{{repeat: 100, wantOK: true}},
			after:  map[string]Limit{"p1": {Rate: 10, Burst: 2}},
			check:  []step{{repeat: 2, wantOK: true}, {wantWait: 100 * ms}},
		},
		{
			name:   "unknown pages get the new limits when first used",
			before: map[string]Limit{"p1": slow},
			after:  map[string]Limit{"p1": {Rate: 10, Burst: 1}},
			update: []string{"p9"},
			check:  []step{{wantOK: true}, {wantWait: 100 * ms}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lt := &limitTable{m: map[string]Limit{}}
			for p, lim := range tt.before {
				lt.set(p, lim)
			}
			l, clock := newTestLocal(lt.limits)
			runSteps(t, l, clock, tt.steps)
			for p, lim := range tt.after {
				lt.set(p, lim)
			}
			l.Update(tt.update)
			runSteps(t, l, clock, tt.check)
		})
	}
}

// TestLocalUpdateUnlimitedTwice covers two updates at one instant while a
// bucket is unlimited: refilling at rate.Inf over a zero interval would
// give NaN tokens and then let everything through.
func TestLocalUpdateUnlimitedTwice(t *testing.T) {
	lt := &limitTable{m: map[string]Limit{"p1": {}}}
	l, clock := newTestLocal(lt.limits)
	runSteps(t, l, clock, []step{{wantOK: true}})
	lt.set("p1", Limit{Burst: 5})
	l.Update(nil)
	lt.set("p1", Limit{Rate: 10, Burst: 2})
	l.Update(nil)
	l.Update(nil)
	runSteps(t, l, clock, []step{{repeat: 2, wantOK: true}, {wantWait: 100 * time.Millisecond}})
}

// TestLocalConcurrentNeverExceedsRate has many goroutines reserve at once
// while the fake clock moves on in rounds. Within a round the clock stands
// still, so each grant's send time is exactly that round's now plus its
// wait, and the grants can be checked against the bucket's bound: by any
// time s, at most burst + rate·(s − start) sends.
func TestLocalConcurrentNeverExceedsRate(t *testing.T) {
	const (
		rate       = 64.0
		burst      = 8
		interval   = time.Second / 64 // one token, exact in float64
		rounds     = 40
		goroutines = 16
		calls      = 8 // per goroutine and round: more than the tokens there are
	)
	tests := []struct {
		name    string
		maxWait time.Duration
	}{
		{name: "maxWait zero", maxWait: 0},
		{name: "maxWait three tokens", maxWait: 3 * interval},
		{name: "maxWait between tokens", maxWait: interval * 5 / 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lim := Limit{Rate: rate, Burst: burst}
			l, clock := newTestLocal(same(lim, lim))
			var (
				mu    sync.Mutex
				sends []time.Time // send time of each grant
			)
			for r := range rounds {
				if r > 0 {
					clock.Advance(interval)
				}
				now := clock.Now()
				var wg sync.WaitGroup
				for range goroutines {
					wg.Go(func() {
						for range calls {
							wait, ok, err := l.Reserve(context.Background(), "p1", Text, tt.maxWait)
							if err != nil {
								t.Error(err)
								return
							}
							if ok != (wait <= tt.maxWait) {
								t.Errorf("Reserve = %v, %v with maxWait %v", wait, ok, tt.maxWait)
							}
							if ok {
								mu.Lock()
								sends = append(sends, now.Add(wait))
								mu.Unlock()
							}
						}
					})
				}
				wg.Wait()
			}
			slices.SortFunc(sends, time.Time.Compare)
			for i, s := range sends {
				allowed := burst + rate*s.Sub(testStart).Seconds()
				if float64(i+1) > allowed+1e-6 {
					t.Fatalf("grant %d sends at start+%v; at most %.2f allowed by then", i+1, s.Sub(testStart), allowed)
				}
			}
			// Every token that existed by the last round was handed out:
			// concurrency lost none.
			elapsed := clock.Now().Sub(testStart)
			wantAtLeast := burst + int(rate*elapsed.Seconds())
			if len(sends) < wantAtLeast {
				t.Errorf("%d grants; want at least %d (burst + rate·elapsed)", len(sends), wantAtLeast)
			}
			if most := burst + int(rate*(elapsed+tt.maxWait).Seconds()); len(sends) > most {
				t.Errorf("%d grants; want at most %d", len(sends), most)
			}
		})
	}
}

func TestLocalReserveErrors(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		kind    Kind
		wantErr error
	}{
		{name: "unknown kind", ctx: context.Background(), kind: Kind(7)},
		{name: "context done", ctx: canceled, kind: Text, wantErr: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, _ := newTestLocal(nil)
			_, ok, err := l.Reserve(tt.ctx, "p1", tt.kind, time.Second)
			if err == nil || ok {
				t.Fatalf("Reserve = ok %v, err %v; want an error", ok, err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v; want %v", err, tt.wantErr)
			}
		})
	}
}

func TestLocalZeroValueIsUnlimited(t *testing.T) {
	var l Local
	for range 100 {
		wait, ok, err := l.Reserve(context.Background(), "p1", Media, 0)
		if wait != 0 || !ok || err != nil {
			t.Fatalf("Reserve = %v, %v, %v; want 0, true, nil", wait, ok, err)
		}
	}
	l.Update(nil)
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{Text: "text", Media: "media", Kind(5): "Kind(5)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q; want %q", int(k), got, want)
		}
	}
}

func TestSleep(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	short, cancelShort := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancelShort()
	tests := []struct {
		name string
		ctx  context.Context
		d    time.Duration
		want error
	}{
		{name: "zero", ctx: context.Background(), d: 0},
		{name: "negative", ctx: context.Background(), d: -time.Second},
		{name: "elapses", ctx: context.Background(), d: time.Millisecond},
		{name: "context already done", ctx: canceled, d: time.Hour, want: context.Canceled},
		{name: "context ends first", ctx: short, d: time.Hour, want: context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Sleep(tt.ctx, tt.d); !errors.Is(err, tt.want) {
				t.Errorf("Sleep(%v) = %v; want %v", tt.d, err, tt.want)
			}
		})
	}
}
