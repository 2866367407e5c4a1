package main

import (
	"math"
	"slices"
	"time"
)

// percentile returns the p-th percentile (0 < p ≤ 100) of ds by nearest
// rank, or NaN-like -1 for an empty slice. ds is sorted in place.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return -1
	}
	slices.Sort(ds)
	i := int(math.Ceil(p/100*float64(len(ds)))) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

// ms converts a duration to milliseconds; a negative one (no data) to NaN.
func ms(d time.Duration) float64 {
	if d < 0 {
		return math.NaN()
	}
	return float64(d) / float64(time.Millisecond)
}

// maxInWindow returns the largest number of times that fall in any
// half-open window [t, t+w), over every t. ts is sorted in place. The
// maximum is always reached by a window starting at one of the times.
func maxInWindow(ts []time.Time, w time.Duration) int {
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	best, j := 0, 0
	for i := range ts {
		for j < len(ts) && ts[j].Sub(ts[i]) < w {
			j++
		}
		best = max(best, j-i)
	}
	return best
}

// div is a/b, or NaN when b is zero.
func div(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}

// finite returns v, or nil when v is NaN or infinite, for JSON details.
func finite(v float64) any {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return v
}
