package ratelimit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Reason says why a Page is paused.
type Reason string

const (
	// ReasonTokenInvalid: Graph error 190, the Page's token is broken.
	// Lifted by `pagesend pages resume` or a token reload.
	ReasonTokenInvalid Reason = "token_invalid"
	// ReasonTokenMissing: no token is configured for the Page. Lifted by
	// `pagesend pages resume` or a token reload.
	ReasonTokenMissing Reason = "token_missing"
	// ReasonThrottled: a throttling error (613, 4, 17, 32, 80001, 80006)
	// or usage headers near 100%. It lifts by itself at Until.
	ReasonThrottled Reason = "throttled"
	// ReasonPolicy: errors 368, 2022, 10/1893063 or 10904 block the Page
	// until a person has looked at it.
	ReasonPolicy Reason = "policy"
	// ReasonManual: an operator ran `pagesend pages pause`.
	ReasonManual Reason = "manual"
)

// Pause records that no worker may call Meta for a Page.
type Pause struct {
	// PageID is the paused Page.
	PageID string `json:"page_id"`
	// Reason says why.
	Reason Reason `json:"reason"`
	// Detail explains the reason for people, such as the Graph error's
	// text with its code and fbtrace_id. It must never hold a token.
	Detail string `json:"detail,omitempty"`
	// Since is when the pause began.
	Since time.Time `json:"since"`
	// Until is when the pause lifts by itself; zero means it lasts until
	// resumed. Pauses stores it with millisecond precision, rounded up.
	Until time.Time `json:"until,omitzero"`
	// TokenFingerprint, on a token pause, identifies the token that was
	// rejected (graphapi.Fingerprint: a short hash, not the token), so a
	// worker that holds a different token — after a reload or a restart —
	// knows the pause no longer applies.
	TokenFingerprint string `json:"token_fp,omitempty"`
}

// Active reports whether the pause is in force at now: it has no Until, or
// Until is after now.
func (p Pause) Active(now time.Time) bool {
	return p.Until.IsZero() || p.Until.After(now)
}

// pauseRecord is a Pause as stored in Redis. UntilMS repeats Until in Unix
// milliseconds (0 when there is none) so the Lua scripts can compare
// pauses without parsing RFC 3339 or needing Redis 7's PEXPIRETIME. A
// record without it counts as lasting forever.
type pauseRecord struct {
	Pause
	UntilMS int64 `json:"until_ms,omitempty"`
}

// Pauses keeps Page pauses in Redis, shared by every worker process using
// the same Redis and prefix. Each pause is a JSON string at
// "<prefix>:pause:<pageID>", with a PEXPIREAT at its Until when it has one,
// so throttle pauses vanish by themselves; the set "<prefix>:paused" lists
// the paused Page ids for List, which drops ids whose pause has expired.
// The scripts touch both keys, so Pauses needs a single Redis primary (or
// Sentinel), not Cluster, as asynq does.
//
// Expiry is also checked against this process's clock, so a server whose
// keys expire late (miniredis only expires when told to) still lifts
// pauses on time. A Pauses is safe for concurrent use.
type Pauses struct {
	rdb       redis.UniversalClient
	keyPrefix string // "<prefix>:pause:"
	setKey    string // "<prefix>:paused"
	// now is the clock, time.Now when nil; tests replace it.
	now func() time.Time
}

// NewPauses returns the Pauses stored in rdb under prefix; an empty prefix
// means "pagesend".
func NewPauses(rdb redis.UniversalClient, prefix string) *Pauses {
	if prefix == "" {
		prefix = "pagesend"
	}
	return &Pauses{rdb: rdb, keyPrefix: prefix + ":pause:", setKey: prefix + ":paused"}
}

// pauseScript stores a pause unless the existing one lasts at least as
// long; an undecodable existing value is replaced. KEYS: pause key, set key. ARGV: record JSON, until in Unix ms (0:
// forever), page id. It returns 1 when it stored the pause, 0 when it kept
// the existing one.
var pauseScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then
  local ok, old = pcall(cjson.decode, cur)
  if ok and type(old) == 'table' then
    local oldUntil = tonumber(old['until_ms']) or 0
    local newUntil = tonumber(ARGV[2])
    if oldUntil == 0 or (newUntil ~= 0 and oldUntil >= newUntil) then
      return 0
    end
  end
end
redis.call('SET', KEYS[1], ARGV[1])
if ARGV[2] ~= '0' then redis.call('PEXPIREAT', KEYS[1], ARGV[2]) end
redis.call('SADD', KEYS[2], ARGV[3])
return 1
`)

// Pause pauses pa.PageID for every worker. If the Page is already paused,
// the pause that lasts longer wins: a pause without Until lasts forever,
// otherwise the later Until lasts longer, and on a tie the existing pause
// stays. So a throttle pause never replaces a manual, policy or token
// pause, a longer throttle replaces a shorter one, and any pause without
// Until replaces a throttle. The check and the write are one atomic step.
//
// A zero Since is set to now. A pause whose Until has already passed is
// not stored. PageID and Reason must not be empty.
func (p *Pauses) Pause(ctx context.Context, pa Pause) error {
	if pa.PageID == "" || pa.Reason == "" {
		return fmt.Errorf("pause page %q: page id and reason are required", pa.PageID)
	}
	now := p.clock()
	if !pa.Active(now) {
		return nil
	}
	if pa.Since.IsZero() {
		pa.Since = now
	}
	pa.Since = pa.Since.UTC()
	rec := pauseRecord{Pause: pa}
	if !pa.Until.IsZero() {
		// Round up: the key must not expire before Until.
		ns := pa.Until.UnixNano()
		rec.UntilMS = ns / 1e6
		if ns%1e6 > 0 {
			rec.UntilMS++
		}
		rec.Until = time.UnixMilli(rec.UntilMS).UTC()
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("pause page %s: %w", pa.PageID, err)
	}
	keys := []string{p.key(pa.PageID), p.setKey}
	err = pauseScript.Run(ctx, p.rdb, keys, data, rec.UntilMS, pa.PageID).Err()
	if err != nil {
		return fmt.Errorf("pause page %s: %w", pa.PageID, err)
	}
	return nil
}

// Get returns the Page's active pause, or nil, nil when it is not paused
// (or its pause has expired). It costs one GET: the worker calls it
// before every send.
func (p *Pauses) Get(ctx context.Context, pageID string) (*Pause, error) {
	data, err := p.rdb.Get(ctx, p.key(pageID)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get pause of page %s: %w", pageID, err)
	}
	return p.active(pageID, data)
}

// resumeScript deletes a pause if its reason is one of ARGV[2:], or
// whatever its reason when ARGV has only the page id. KEYS: pause key, set
// key. ARGV: page id, reasons... It returns the deleted JSON, or false.
var resumeScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then return false end
if #ARGV > 1 then
  local ok, p = pcall(cjson.decode, cur)
  if not ok or type(p) ~= 'table' then return false end
  local match = false
  for i = 2, #ARGV do
    if p['reason'] == ARGV[i] then match = true end
  end
  if not match then return false end
end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return cur
`)

// Resume lifts the Page's pause, whatever its reason, and returns the
// pause it lifted: nil if the Page was not paused.
func (p *Pauses) Resume(ctx context.Context, pageID string) (*Pause, error) {
	pa, err := p.resume(ctx, pageID, nil)
	if err != nil {
		return nil, fmt.Errorf("resume page %s: %w", pageID, err)
	}
	return pa, nil
}

// ResumeIf lifts the Page's pause only if its reason is one of reasons,
// and reports whether it lifted one; the check and the delete are one
// atomic step. A token reload uses it to lift token_invalid and
// token_missing pauses but never a manual or policy one. With no reasons
// it lifts nothing.
func (p *Pauses) ResumeIf(ctx context.Context, pageID string, reasons ...Reason) (bool, error) {
	if len(reasons) == 0 {
		return false, nil
	}
	pa, err := p.resume(ctx, pageID, reasons)
	if err != nil {
		return false, fmt.Errorf("resume page %s if %v: %w", pageID, reasons, err)
	}
	return pa != nil, nil
}

// resume runs resumeScript; nil reasons lifts any pause. It returns the
// lifted pause if it was still active.
func (p *Pauses) resume(ctx context.Context, pageID string, reasons []Reason) (*Pause, error) {
	args := make([]any, 0, 1+len(reasons))
	args = append(args, pageID)
	for _, r := range reasons {
		args = append(args, string(r))
	}
	data, err := resumeScript.Run(ctx, p.rdb, []string{p.key(pageID), p.setKey}, args...).Text()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return p.active(pageID, []byte(data))
}

// dropStaleScript removes page ids from the set whose pause key no longer
// exists. KEYS: set key, then the pause keys. ARGV: the page ids, in the
// same order. Checking inside the script keeps a Page paused again since
// List read it from being dropped.
var dropStaleScript = redis.NewScript(`
for i = 1, #ARGV do
  if redis.call('EXISTS', KEYS[i + 1]) == 0 then redis.call('SREM', KEYS[1], ARGV[i]) end
end
return 0
`)

// List returns every active pause, sorted by page id. Page ids in the set
// whose pause has expired are removed from it on the way.
func (p *Pauses) List(ctx context.Context) ([]Pause, error) {
	ids, err := p.rdb.SMembers(ctx, p.setKey).Result()
	if err != nil {
		return nil, fmt.Errorf("list pauses: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	slices.Sort(ids)
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = p.key(id)
	}
	vals, err := p.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("list pauses: %w", err)
	}
	var (
		list      []Pause
		staleKeys = []string{p.setKey}
		staleIDs  []any
	)
	for i, v := range vals {
		s, ok := v.(string)
		if !ok {
			staleKeys = append(staleKeys, keys[i])
			staleIDs = append(staleIDs, ids[i])
			continue
		}
		pa, err := p.active(ids[i], []byte(s))
		if err != nil {
			return nil, fmt.Errorf("list pauses: %w", err)
		}
		if pa != nil {
			list = append(list, *pa)
		}
	}
	if len(staleIDs) > 0 {
		if err := dropStaleScript.Run(ctx, p.rdb, staleKeys, staleIDs...).Err(); err != nil {
			return nil, fmt.Errorf("list pauses: drop expired ids: %w", err)
		}
	}
	slices.SortFunc(list, func(a, b Pause) int { return strings.Compare(a.PageID, b.PageID) })
	return list, nil
}

// GetWith reads the Page's pause together with other keys in one round
// trip (MGET), for a caller that needs both on its hot path. It returns
// the pause as Get does and the other keys' values (nil where missing).
func (p *Pauses) GetWith(ctx context.Context, pageID string, keys ...string) (*Pause, []any, error) {
	return p.QueueGetWith(ctx, p.rdb, pageID, keys...)()
}

// QueueGetWith is GetWith for a pipeline: it queues the read on pipe (or
// runs it, if pipe is a client) and returns the function that decodes the
// answer once the pipeline has run, so a caller can fold other commands
// into the same round trip.
func (p *Pauses) QueueGetWith(ctx context.Context, pipe redis.Cmdable, pageID string, keys ...string) func() (*Pause, []any, error) {
	cmd := pipe.MGet(ctx, append([]string{p.key(pageID)}, keys...)...)
	return func() (*Pause, []any, error) { return p.decodeWith(pageID, cmd) }
}

func (p *Pauses) decodeWith(pageID string, cmd *redis.SliceCmd) (*Pause, []any, error) {
	vals, err := cmd.Result()
	if err != nil {
		return nil, nil, fmt.Errorf("get pause of page %s: %w", pageID, err)
	}
	var pa *Pause
	if s, ok := vals[0].(string); ok {
		if pa, err = p.active(pageID, []byte(s)); err != nil {
			return nil, nil, err
		}
	}
	return pa, vals[1:], nil
}

// active decodes a stored pause and returns it if it is active now.
func (p *Pauses) active(pageID string, data []byte) (*Pause, error) {
	var pa Pause
	if err := json.Unmarshal(data, &pa); err != nil {
		return nil, fmt.Errorf("decode pause of page %s: %w", pageID, err)
	}
	if !pa.Active(p.clock()) {
		return nil, nil
	}
	return &pa, nil
}

func (p *Pauses) key(pageID string) string { return p.keyPrefix + pageID }

func (p *Pauses) clock() time.Time {
	if p.now != nil {
		return p.now()
	}
	return time.Now()
}

// CountThrottle records a throttling error for a Page and returns how
// many throttle episodes it has had within window (counting this one), for
// every worker. Errors less than episodeGap after the episode's first are
// the same episode (concurrent sends all get a 613 back at once) and do
// not count again. The worker doubles the Page's pause with each episode
// (Meta publishes no backoff formula, and says calling while throttled
// extends the throttle).
func (p *Pauses) CountThrottle(ctx context.Context, pageID string, window, episodeGap time.Duration) (int64, error) {
	key := p.keyPrefix + pageID + ":throttles"
	fresh, err := p.rdb.SetNX(ctx, key+":episode", 1, max(episodeGap, time.Millisecond)).Result()
	if err != nil {
		return 0, fmt.Errorf("count throttle of page %s: %w", pageID, err)
	}
	if !fresh {
		n, err := p.rdb.Get(ctx, key).Int64()
		if errors.Is(err, redis.Nil) {
			return 1, nil
		}
		if err != nil {
			return 0, fmt.Errorf("count throttle of page %s: %w", pageID, err)
		}
		return max(n, 1), nil
	}
	n, err := p.rdb.Incr(ctx, key).Result()
	if err == nil && n == 1 {
		// The first throttle opens the window. (EXPIRE NX would do this in
		// one call, but needs Redis 7; asynq needs only 6.2.)
		err = p.rdb.Expire(ctx, key, window).Err()
	}
	if err != nil {
		return 0, fmt.Errorf("count throttle of page %s: %w", pageID, err)
	}
	return n, nil
}
