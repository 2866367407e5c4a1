package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Local is a Limiter whose buckets live in this process, one
// golang.org/x/time/rate.Limiter per Page and Kind. N processes together
// allow N times the rate — the fleet-wide limiter comes later.
//
// Buckets are created lazily, full, from the LimitFunc the first time a
// Page is seen, and kept for the life of the Local; after a config reload,
// Update applies the new limits to the buckets that exist. The zero value
// is usable and has no limits: every Reserve succeeds at once. A Local is
// safe for concurrent use.
type Local struct {
	limits LimitFunc
	// now is the clock, time.Now when nil; tests replace it so they
	// need not sleep.
	now func() time.Time

	// mu guards buckets, and is also held across each read of the clock
	// and the bucket call that uses it: rate.Limiter takes a time that
	// goes backwards as its new "last" and then counts the same interval
	// twice, so the times it sees must be in order.
	mu      sync.Mutex
	buckets map[pageKey]*rate.Limiter
	// slots holds, per bucket, the time the last refused caller was told
	// to come back; see Reserve.
	slots map[pageKey]time.Time
}

// pageKey names one bucket.
type pageKey struct {
	page string
	kind Kind
}

var _ Limiter = (*Local)(nil)

// NewLocal returns a Local whose buckets take their limits from limits. A
// nil limits leaves every Page unlimited.
func NewLocal(limits LimitFunc) *Local {
	return &Local{limits: limits, buckets: make(map[pageKey]*rate.Limiter), slots: make(map[pageKey]time.Time)}
}

// Reserve implements Limiter. It returns an error only when ctx is already
// done or kind is unknown; it never blocks. maxWait below zero counts as
// zero.
func (l *Local) Reserve(ctx context.Context, pageID string, kind Kind, maxWait time.Duration) (time.Duration, bool, error) {
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	if !kind.valid() {
		return 0, false, fmt.Errorf("reserve for page %s: %w", pageID, errUnknownKind(kind))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock()
	b := l.bucket(pageID, kind)
	r := b.ReserveN(now, 1)
	if !r.OK() {
		// Only a bucket whose burst is below one token refuses outright.
		return DisabledWait, false, nil
	}
	wait := r.DelayFrom(now)
	if wait > max(maxWait, 0) {
		// Give the token back, so the caller's later Reserve sees the
		// same queue and not one slot further on.
		r.CancelAt(now)
		return l.slot(pageKey{pageID, kind}, now, wait, b.Limit()), false, nil
	}
	return wait, true, nil
}

// slot spreads refused callers out: each is told to come back one token
// interval after the one refused before it, rather than all at the moment
// the next token appears. A backlog of a thousand tasks on a Page at 10/s
// then returns at about 10 tasks a second, each finding a token, instead
// of all thousand at once, of which one gets it and the rest are
// rescheduled again. Slots from the past are forgotten. l.mu must be held.
func (l *Local) slot(k pageKey, now time.Time, wait time.Duration, lim rate.Limit) time.Duration {
	if l.slots == nil {
		l.slots = make(map[pageKey]time.Time)
	}
	at := now.Add(wait)
	if prev, ok := l.slots[k]; ok && !prev.Before(at) && lim > 0 && lim != rate.Inf {
		at = prev.Add(time.Duration(float64(time.Second) / float64(lim)))
	}
	l.slots[k] = at
	return at.Sub(now)
}

// Update re-reads the limits of the given Pages from the LimitFunc and
// applies them to the Pages' existing buckets, keeping the tokens they
// hold (up to the new Burst). A nil pageIDs updates every Page this Local
// has seen; Pages it has not seen yet get their limits when first used.
// Call it after a config reload.
func (l *Local) Update(pageIDs []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if pageIDs == nil {
		for k := range l.buckets {
			pageIDs = append(pageIDs, k.page)
		}
	}
	now := l.clock()
	for _, id := range pageIDs {
		text, media := l.limitsOf(id)
		l.update(now, pageKey{id, Text}, text)
		l.update(now, pageKey{id, Media}, media)
	}
}

// update applies lim to the bucket k if it exists. l.mu must be held.
func (l *Local) update(now time.Time, k pageKey, lim Limit) {
	b, ok := l.buckets[k]
	if !ok {
		return
	}
	delete(l.slots, k) // spacing from the old rate no longer holds
	r, burst := lim.rate()
	if b.Limit() == r && b.Burst() == burst {
		return
	}
	if b.Limit() == rate.Inf {
		// An unlimited bucket counts no tokens; refilling it at an
		// infinite rate over a zero interval gives NaN tokens (0 × Inf),
		// which would let every later send through. It was never short
		// of tokens, so a new full bucket is the same thing.
		l.buckets[k] = rate.NewLimiter(r, burst)
		return
	}
	// Burst first, while the old rate is still finite, for the same
	// NaN reason when the new rate is rate.Inf.
	b.SetBurstAt(now, burst)
	b.SetLimitAt(now, r)
}

// bucket returns the bucket k, creating it full if needed. l.mu must be
// held.
func (l *Local) bucket(pageID string, kind Kind) *rate.Limiter {
	k := pageKey{pageID, kind}
	if b, ok := l.buckets[k]; ok {
		return b
	}
	if l.buckets == nil {
		l.buckets = make(map[pageKey]*rate.Limiter)
	}
	text, media := l.limitsOf(pageID)
	lim := text
	if kind == Media {
		lim = media
	}
	b := rate.NewLimiter(lim.rate())
	l.buckets[k] = b
	return b
}

// limitsOf returns the Page's limits; none without a LimitFunc.
func (l *Local) limitsOf(pageID string) (text, media Limit) {
	if l.limits == nil {
		return Limit{}, Limit{}
	}
	return l.limits(pageID)
}

func (l *Local) clock() time.Time {
	if l.now != nil {
		return l.now()
	}
	return time.Now()
}

// rate converts lim to x/time/rate terms: a Rate of zero or less (or NaN)
// is rate.Inf, and a negative Burst is zero.
func (lim Limit) rate() (rate.Limit, int) {
	if !(lim.Rate > 0) {
		return rate.Inf, max(lim.Burst, 0)
	}
	return rate.Limit(lim.Rate), max(lim.Burst, 0)
}

// errUnknownKind reports a Kind that is neither Text nor Media.
func errUnknownKind(k Kind) error {
	return errors.New("unknown bucket kind " + k.String())
}
