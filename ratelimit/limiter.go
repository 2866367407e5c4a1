package ratelimit

import (
	"context"
	"strconv"
	"time"
)

// Kind selects a Page's bucket: Meta allows 300 calls/s per Page for text,
// links, reactions and stickers but only 10/s for audio and video
// (Messenger Platform rate-limiting page), so each Page has a Text and a
// Media bucket with limits of their own.
type Kind int

const (
	// Text is the bucket for text, links, reactions, stickers, sender
	// actions and every other send that is not audio or video.
	Text Kind = iota
	// Media is the slower bucket for audio and video sends.
	Media
)

// String returns "text" or "media", or "Kind(N)" for an unknown kind.
func (k Kind) String() string {
	switch k {
	case Text:
		return "text"
	case Media:
		return "media"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// valid reports whether k is Text or Media.
func (k Kind) valid() bool { return k == Text || k == Media }

// Limit is the size of one token bucket: it refills at Rate tokens per
// second and holds at most Burst tokens, so up to Burst sends may go at
// once after a quiet spell. The zero value is unlimited.
type Limit struct {
	// Rate is the refill rate in tokens per second; zero or less means
	// unlimited (rate.Inf), and Burst is then ignored.
	Rate float64
	// Burst is the bucket's capacity. With a positive Rate, a Burst of
	// zero or less allows no send at all.
	Burst int
}

// Limiter hands out send permits per Page. Implementations are safe for
// concurrent use.
type Limiter interface {
	// Reserve takes one token from the page's bucket of the given kind if
	// it will be available within maxWait, and returns how long the caller
	// must wait before sending (0 = now). If the token would arrive later
	// than maxWait, nothing is taken, ok is false, and wait says when a
	// token will be available (the caller reschedules the task for then).
	// A token once taken stays taken, even if the caller then gives up.
	Reserve(ctx context.Context, pageID string, kind Kind, maxWait time.Duration) (wait time.Duration, ok bool, err error)
}

// LimitFunc returns the limits of a Page (text and media buckets). It is
// called when a Limiter first sees a Page, and again for that Page on
// Local.Update; it must be safe for concurrent use.
type LimitFunc func(pageID string) (text, media Limit)

// DisabledWait is the wait a Limiter reports, with ok false, for a bucket
// that can never hold a token (a positive Rate with a Burst of zero): no
// token will ever exist, so the caller should come back after a config
// reload may have changed the limit, not spin.
const DisabledWait = time.Minute

// Sleep waits for d, or until ctx is done, whichever comes first. It
// returns ctx.Err() if ctx is done first (or already), and nil otherwise.
// The worker calls it with the wait Reserve returned.
func Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil || d <= 0 {
		return err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
