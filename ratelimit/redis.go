package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a Limiter whose buckets live in Redis, so that every worker
// process using the same Redis shares each Page's limit: N processes
// together send at the Page's rate, not N times it.
//
// # Algorithm
//
// Each bucket is one key holding its theoretical arrival time (TAT) — the
// generic cell rate algorithm (GCRA), which is a token bucket stored as a
// single timestamp. With emission interval T = 1/rate and burst B, a
// permit asked for at time now is granted for time max(TAT, now) − (B−1)·T;
// granting it moves TAT on by T. Reserve runs this in one Lua script, with
// Redis's own clock (TIME), so processes on different hosts with skewed
// clocks still agree. A permit up to maxWait in the future is granted and
// the caller sleeps until then; a later one is refused and nothing is
// taken, and the caller is told a slot one interval after the last refused
// caller's (as Local does), so a backlog comes back at the rate tokens
// appear.
//
// # Error bound
//
// Decisions are exact in Redis time: over any window of length W the
// permits granted number at most B + W/T. What reaches Meta can bunch a
// little more, because each permit's holder then sleeps (Go timer, well
// under a millisecond late) and makes an HTTP call whose latency varies: a
// window may see up to B + (W + J)/T sends, where J is the spread of that
// latency. With W = 1 s and J of a few tens of milliseconds that is a
// percent or two above the rate. One script call (one round trip, ~0.1 ms
// on loopback) is made per send; that is small beside a Graph call, so
// there is no local pre-reservation to go wrong when processes come and go.
//
// # Adaptive slowdown
//
// SlowDown multiplies a Page's rates by a factor below one for a while
// (the worker does this when Meta's usage headers run high); the factor is
// a key with a TTL, read by the same script, so the whole fleet slows down
// together and speeds up again when it expires.
type Redis struct {
	rdb    redis.UniversalClient
	limits LimitFunc
	prefix string
}

var _ Limiter = (*Redis)(nil)

// NewRedis returns a Limiter over rdb whose buckets take their limits
// from limits (nil: every Page unlimited). Keys start with prefix
// ("pagesend" when empty): "<prefix>:rl:<page>:<kind>".
func NewRedis(rdb redis.UniversalClient, limits LimitFunc, prefix string) *Redis {
	if prefix == "" {
		prefix = "pagesend"
	}
	return &Redis{rdb: rdb, limits: limits, prefix: prefix}
}

// gcraScript reserves one permit. KEYS: tat, slot, factor. ARGV: rate per
// second, burst, max wait in µs. Returns {granted 0/1, wait µs}.
var gcraScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local rate = tonumber(ARGV[1])
local f = redis.call('GET', KEYS[3])
if f then
  local fv = tonumber(f)
  if fv and fv > 0 and fv < 1 then rate = rate * fv end
end
local T = 1000000 / rate
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tat < now then tat = now end
local wait = tat - (burst - 1) * T - now
if wait < 0 then wait = 0 end
if wait <= tonumber(ARGV[3]) then
  local nt = tat + T
  redis.call('SET', KEYS[1], string.format('%.0f', nt), 'PX', math.floor((nt - now) / 1000) + 1000)
  return {1, math.floor(wait)}
end
local at = now + wait
local slot = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
if slot >= at then at = slot + T end
redis.call('SET', KEYS[2], string.format('%.0f', at), 'PX', math.floor((at - now) / 1000) + 1000)
return {0, math.floor(at - now)}
`)

// Reserve implements Limiter with one round trip to Redis.
func (r *Redis) Reserve(ctx context.Context, pageID string, kind Kind, maxWait time.Duration) (time.Duration, bool, error) {
	if !kind.valid() {
		return 0, false, fmt.Errorf("reserve for page %s: %w", pageID, errUnknownKind(kind))
	}
	var lim Limit
	if r.limits != nil {
		text, media := r.limits(pageID)
		lim = text
		if kind == Media {
			lim = media
		}
	}
	if lim.Rate <= 0 {
		return 0, true, nil // unlimited
	}
	if lim.Burst < 1 {
		return DisabledWait, false, nil
	}
	base := r.prefix + ":rl:" + pageID + ":" + kind.String()
	keys := []string{base, base + ":slot", r.factorKey(pageID)}
	res, err := gcraScript.Run(ctx, r.rdb, keys,
		strconv.FormatFloat(lim.Rate, 'g', -1, 64), lim.Burst, max(maxWait, 0).Microseconds()).Int64Slice()
	if err != nil {
		return 0, false, fmt.Errorf("rate limit for page %s: %w", pageID, err)
	}
	if len(res) != 2 {
		return 0, false, fmt.Errorf("rate limit for page %s: unexpected script reply %v", pageID, res)
	}
	return time.Duration(res[1]) * time.Microsecond, res[0] == 1, nil
}

// SlowDown multiplies the Page's rates by factor (between 0 and 1) for d,
// for every process. A later call replaces an earlier one.
func (r *Redis) SlowDown(ctx context.Context, pageID string, factor float64, d time.Duration) error {
	if factor <= 0 || factor >= 1 || d <= 0 {
		return fmt.Errorf("slow down page %s: factor %v for %v: want 0 < factor < 1 and a positive duration", pageID, factor, d)
	}
	return r.rdb.Set(ctx, r.factorKey(pageID), strconv.FormatFloat(factor, 'g', -1, 64), d).Err()
}

// Factor returns the Page's current slowdown factor: 1 when none.
func (r *Redis) Factor(ctx context.Context, pageID string) (float64, error) {
	v, err := r.rdb.Get(ctx, r.factorKey(pageID)).Float64()
	if err == redis.Nil {
		return 1, nil
	}
	if err != nil {
		return 1, err
	}
	return v, nil
}

func (r *Redis) factorKey(pageID string) string { return r.prefix + ":rl:" + pageID + ":factor" }
