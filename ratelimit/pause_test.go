package ratelimit

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pagesend/pagesend/internal/redistest"
)

// newTestPauses starts a private redis-server and returns Pauses on it
// under the default prefix, with its client for inspecting keys.
func newTestPauses(t *testing.T) (*Pauses, *redis.Client) {
	t.Helper()
	srv := redistest.Start(t, redistest.Options{})
	rdb := srv.Client(t)
	return NewPauses(rdb, ""), rdb
}

// msNow returns the current time rounded down to the millisecond, which
// Pauses keeps exactly.
func msNow() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

// wantPause fails unless got is want, comparing times with Equal.
func wantPause(t *testing.T, got *Pause, want Pause) {
	t.Helper()
	if got == nil {
		t.Fatalf("pause = nil; want %+v", want)
	}
	if got.PageID != want.PageID || got.Reason != want.Reason || got.Detail != want.Detail ||
		!got.Since.Equal(want.Since) || !got.Until.Equal(want.Until) {
		t.Fatalf("pause = %+v; want %+v", *got, want)
	}
}

// mustPause stores pa or fails the test.
func mustPause(t *testing.T, p *Pauses, pa Pause) {
	t.Helper()
	if err := p.Pause(context.Background(), pa); err != nil {
		t.Fatalf("Pause(%+v): %v", pa, err)
	}
}

// mustGet returns the page's pause or fails the test.
func mustGet(t *testing.T, p *Pauses, page string) *Pause {
	t.Helper()
	got, err := p.Get(context.Background(), page)
	if err != nil {
		t.Fatalf("Get(%s): %v", page, err)
	}
	return got
}

func TestPauseGetRoundTrip(t *testing.T) {
	now := msNow()
	tests := []struct {
		name    string
		pause   Pause
		wantTTL bool // the key expires by itself
	}{
		{
			name:  "manual without until",
			pause: Pause{PageID: "42", Reason: ReasonManual, Detail: "by ops", Since: now},
		},
		{
			name:  "token invalid",
			pause: Pause{PageID: "42", Reason: ReasonTokenInvalid, Detail: "(#190/460) session invalid fbtrace_id=Ab1", Since: now},
		},
		{
			name:    "throttled with until",
			pause:   Pause{PageID: "42", Reason: ReasonThrottled, Detail: "(#613) calls exceeded", Since: now, Until: now.Add(time.Hour)},
			wantTTL: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, rdb := newTestPauses(t)
			ctx := context.Background()
			if got := mustGet(t, p, "42"); got != nil {
				t.Fatalf("Get before Pause = %+v; want nil", *got)
			}
			mustPause(t, p, tt.pause)
			wantPause(t, mustGet(t, p, "42"), tt.pause)

			ttl, err := rdb.PTTL(ctx, "pagesend:pause:42").Result()
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.wantTTL && (ttl <= 0 || ttl > time.Until(tt.pause.Until)+time.Second):
				t.Errorf("PTTL = %v; want > 0 and about %v", ttl, time.Until(tt.pause.Until))
			case !tt.wantTTL && ttl != -1: // go-redis reports "no expiry" as -1ns
				t.Errorf("PTTL = %v; want no expiry", ttl)
			}
			if ok, err := rdb.SIsMember(ctx, "pagesend:paused", "42").Result(); err != nil || !ok {
				t.Errorf("SISMEMBER pagesend:paused 42 = %v, %v; want true", ok, err)
			}
		})
	}
}

func TestPauseStoredFormat(t *testing.T) {
	p, rdb := newTestPauses(t)
	since := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	mustPause(t, p, Pause{PageID: "42", Reason: ReasonManual, Since: since})
	data, err := rdb.Get(context.Background(), "pagesend:pause:42").Bytes()
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("stored value %s: %v", data, err)
	}
	want := map[string]any{"page_id": "42", "reason": "manual", "since": "2026-01-02T15:04:05Z"}
	if len(got) != len(want) {
		t.Fatalf("stored %s; want exactly the fields %v", data, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("stored %s: %s = %v; want %v", data, k, got[k], v)
		}
	}
}

func TestPauseDefaultsAndErrors(t *testing.T) {
	p, _ := newTestPauses(t)
	now := msNow()
	p.now = func() time.Time { return now }

	mustPause(t, p, Pause{PageID: "42", Reason: ReasonManual})
	wantPause(t, mustGet(t, p, "42"), Pause{PageID: "42", Reason: ReasonManual, Since: now})

	// Until is kept in milliseconds, rounded up so the pause never ends early.
	until := now.Add(time.Hour + time.Nanosecond)
	mustPause(t, p, Pause{PageID: "43", Reason: ReasonThrottled, Since: now, Until: until})
	wantPause(t, mustGet(t, p, "43"), Pause{PageID: "43", Reason: ReasonThrottled, Since: now, Until: now.Add(time.Hour + time.Millisecond)})

	for _, pa := range []Pause{{Reason: ReasonManual}, {PageID: "42"}} {
		if err := p.Pause(context.Background(), pa); err == nil {
			t.Errorf("Pause(%+v) = nil; want an error", pa)
		}
	}
}

func TestPauseExpiry(t *testing.T) {
	ctx := context.Background()

	t.Run("until already passed", func(t *testing.T) {
		t.Parallel()
		p, rdb := newTestPauses(t)
		now := msNow()
		mustPause(t, p, Pause{PageID: "42", Reason: ReasonThrottled, Since: now.Add(-time.Hour), Until: now.Add(-time.Second)})
		if got := mustGet(t, p, "42"); got != nil {
			t.Fatalf("Get = %+v; want nil", *got)
		}
		if n, err := rdb.Exists(ctx, "pagesend:pause:42").Result(); err != nil || n != 0 {
			t.Errorf("EXISTS = %d, %v; want 0", n, err)
		}
	})

	t.Run("until passes on the clock before the key expires", func(t *testing.T) {
		t.Parallel()
		p, _ := newTestPauses(t)
		now := msNow()
		mustPause(t, p, Pause{PageID: "42", Reason: ReasonThrottled, Since: now, Until: now.Add(time.Minute)})
		p.now = func() time.Time { return now.Add(time.Minute) }
		if got := mustGet(t, p, "42"); got != nil {
			t.Fatalf("Get after Until = %+v; want nil", *got)
		}
	})

	t.Run("redis expires the key at until", func(t *testing.T) {
		t.Parallel()
		p, rdb := newTestPauses(t)
		now := msNow()
		mustPause(t, p, Pause{PageID: "42", Reason: ReasonThrottled, Since: now, Until: now.Add(200 * time.Millisecond)})
		for deadline := time.Now().Add(5 * time.Second); ; {
			n, err := rdb.Exists(ctx, "pagesend:pause:42").Result()
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the pause key still exists 5s after its Until")
			}
			time.Sleep(10 * time.Millisecond) // poll interval
		}
		if time.Now().Before(now.Add(200 * time.Millisecond)) {
			t.Error("the pause key expired before its Until")
		}
	})
}

func TestPauseLongerWins(t *testing.T) {
	now := msNow()
	hour := now.Add(time.Hour)
	throttle := func(until time.Time, detail string) Pause {
		return Pause{PageID: "42", Reason: ReasonThrottled, Detail: detail, Since: now, Until: until}
	}
	forever := func(r Reason) Pause { return Pause{PageID: "42", Reason: r, Detail: string(r), Since: now} }
	tests := []struct {
		name          string
		first, second Pause
		wantSecond    bool
	}{
		{name: "manual not replaced by throttle", first: forever(ReasonManual), second: throttle(hour, "613")},
		{name: "token invalid not replaced by throttle", first: forever(ReasonTokenInvalid), second: throttle(hour, "613")},
		{name: "policy not replaced by throttle", first: forever(ReasonPolicy), second: throttle(hour, "613")},
		{name: "throttle replaced by longer throttle", first: throttle(hour, "short"), second: throttle(hour.Add(time.Minute), "long"), wantSecond: true},
		{name: "throttle not replaced by shorter throttle", first: throttle(hour, "long"), second: throttle(hour.Add(-time.Minute), "short")},
		{name: "equal throttles keep the first", first: throttle(hour, "first"), second: throttle(hour, "second")},
		{name: "throttle replaced by token invalid", first: throttle(hour, "613"), second: forever(ReasonTokenInvalid), wantSecond: true},
		{name: "throttle replaced by manual", first: throttle(hour, "613"), second: forever(ReasonManual), wantSecond: true},
		{name: "pauses without until keep the first", first: forever(ReasonManual), second: forever(ReasonTokenInvalid)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, rdb := newTestPauses(t)
			mustPause(t, p, tt.first)
			mustPause(t, p, tt.second)
			want := tt.first
			if tt.wantSecond {
				want = tt.second
			}
			wantPause(t, mustGet(t, p, "42"), want)

			// The key's expiry follows the pause that won.
			ttl, err := rdb.PTTL(context.Background(), "pagesend:pause:42").Result()
			if err != nil {
				t.Fatal(err)
			}
			if want.Until.IsZero() != (ttl == -1) {
				t.Errorf("PTTL = %v for a pause with Until %v", ttl, want.Until)
			}
			if !want.Until.IsZero() && ttl < time.Until(want.Until)-time.Second {
				t.Errorf("PTTL = %v; want about %v", ttl, time.Until(want.Until))
			}
		})
	}
}

func TestPauseReplacesUndecodableValue(t *testing.T) {
	p, rdb := newTestPauses(t)
	if err := rdb.Set(context.Background(), "pagesend:pause:42", "not json", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Get(context.Background(), "42"); err == nil {
		t.Fatal("Get of an undecodable pause = nil error; want one")
	}
	pa := Pause{PageID: "42", Reason: ReasonThrottled, Since: msNow(), Until: msNow().Add(time.Hour)}
	mustPause(t, p, pa)
	wantPause(t, mustGet(t, p, "42"), pa)
}

func TestResume(t *testing.T) {
	p, rdb := newTestPauses(t)
	ctx := context.Background()
	pa := Pause{PageID: "42", Reason: ReasonPolicy, Detail: "(#368) blocked", Since: msNow()}
	mustPause(t, p, pa)

	lifted, err := p.Resume(ctx, "42")
	if err != nil {
		t.Fatal(err)
	}
	wantPause(t, lifted, pa)
	if got := mustGet(t, p, "42"); got != nil {
		t.Errorf("Get after Resume = %+v; want nil", *got)
	}
	if ok, err := rdb.SIsMember(ctx, "pagesend:paused", "42").Result(); err != nil || ok {
		t.Errorf("SISMEMBER after Resume = %v, %v; want false", ok, err)
	}
	again, err := p.Resume(ctx, "42")
	if err != nil || again != nil {
		t.Errorf("second Resume = %v, %v; want nil, nil", again, err)
	}
}

func TestResumeIf(t *testing.T) {
	tokenReasons := []Reason{ReasonTokenInvalid, ReasonTokenMissing}
	tests := []struct {
		name       string
		paused     Reason // "" for no pause
		reasons    []Reason
		wantLifted bool
	}{
		{name: "token invalid lifted", paused: ReasonTokenInvalid, reasons: tokenReasons, wantLifted: true},
		{name: "token missing lifted", paused: ReasonTokenMissing, reasons: tokenReasons, wantLifted: true},
		{name: "manual kept", paused: ReasonManual, reasons: tokenReasons},
		{name: "policy kept", paused: ReasonPolicy, reasons: tokenReasons},
		{name: "throttled kept", paused: ReasonThrottled, reasons: tokenReasons},
		{name: "throttled lifted when asked", paused: ReasonThrottled, reasons: []Reason{ReasonThrottled}, wantLifted: true},
		{name: "no reasons lift nothing", paused: ReasonTokenInvalid},
		{name: "not paused", reasons: tokenReasons},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, _ := newTestPauses(t)
			var pa Pause
			if tt.paused != "" {
				pa = Pause{PageID: "42", Reason: tt.paused, Since: msNow()}
				if tt.paused == ReasonThrottled {
					pa.Until = msNow().Add(time.Hour)
				}
				mustPause(t, p, pa)
			}
			lifted, err := p.ResumeIf(context.Background(), "42", tt.reasons...)
			if err != nil {
				t.Fatal(err)
			}
			if lifted != tt.wantLifted {
				t.Errorf("ResumeIf(%v) = %v; want %v", tt.reasons, lifted, tt.wantLifted)
			}
			got := mustGet(t, p, "42")
			if tt.paused == "" || tt.wantLifted {
				if got != nil {
					t.Errorf("Get after ResumeIf = %+v; want nil", *got)
				}
				return
			}
			wantPause(t, got, pa)
		})
	}
}

func TestList(t *testing.T) {
	p, rdb := newTestPauses(t)
	ctx := context.Background()

	if list, err := p.List(ctx); err != nil || len(list) != 0 {
		t.Fatalf("List of nothing = %v, %v; want empty", list, err)
	}

	now := msNow()
	want := []Pause{
		{PageID: "1", Reason: ReasonManual, Since: now},
		{PageID: "2", Reason: ReasonThrottled, Since: now, Until: now.Add(time.Hour)},
		{PageID: "3", Reason: ReasonTokenInvalid, Since: now},
	}
	for _, i := range []int{2, 0, 1} {
		mustPause(t, p, want[i])
	}
	// Page 4's pause is over on the clock below, though its key remains.
	mustPause(t, p, Pause{PageID: "4", Reason: ReasonThrottled, Since: now, Until: now.Add(time.Minute)})
	// Page 0's key expired, leaving its id in the set.
	if err := rdb.SAdd(ctx, "pagesend:paused", "0").Err(); err != nil {
		t.Fatal(err)
	}
	p.now = func() time.Time { return now.Add(2 * time.Minute) }

	list, err := p.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != len(want) {
		t.Fatalf("List = %+v; want %+v", list, want)
	}
	for i := range want {
		wantPause(t, &list[i], want[i])
	}
	members, err := rdb.SMembers(ctx, "pagesend:paused").Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(members)
	if !slices.Equal(members, []string{"1", "2", "3", "4"}) {
		t.Errorf("paused set after List = %v; want the stale id 0 dropped", members)
	}
}

// TestPausesSharedByWorkers has two workers, each with its own client and
// Pauses, see each other's pauses through one Redis; a different prefix
// is a separate namespace.
func TestPausesSharedByWorkers(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	a := NewPauses(srv.Client(t), "")
	b := NewPauses(srv.Client(t), "pagesend")
	other := NewPauses(srv.Client(t), "staging")
	ctx := context.Background()

	pa := Pause{PageID: "42", Reason: ReasonTokenInvalid, Since: msNow()}
	mustPause(t, a, pa)
	wantPause(t, mustGet(t, b, "42"), pa)
	if got := mustGet(t, other, "42"); got != nil {
		t.Errorf("other prefix sees %+v; want nil", *got)
	}

	// b's throttle does not shorten a's token pause.
	mustPause(t, b, Pause{PageID: "42", Reason: ReasonThrottled, Since: msNow(), Until: msNow().Add(time.Minute)})
	wantPause(t, mustGet(t, a, "42"), pa)

	if lifted, err := b.ResumeIf(ctx, "42", ReasonTokenInvalid); err != nil || !lifted {
		t.Fatalf("ResumeIf = %v, %v; want true", lifted, err)
	}
	if got := mustGet(t, a, "42"); got != nil {
		t.Errorf("a sees %+v after b resumed; want nil", *got)
	}

	th := Pause{PageID: "7", Reason: ReasonThrottled, Since: msNow(), Until: msNow().Add(time.Minute)}
	mustPause(t, b, th)
	list, err := a.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Fatalf("a.List = %+v; want b's pause of page 7", list)
	}
	wantPause(t, &list[0], th)
}

func TestPausesRedisDown(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	// A client that tries once, so the test does not wait out retries.
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { _ = rdb.Close() })
	p := NewPauses(rdb, "")
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := p.Get(ctx, "42"); err == nil || errors.Is(err, redis.Nil) {
		t.Errorf("Get with Redis down = %v; want a connection error", err)
	}
	if err := p.Pause(ctx, Pause{PageID: "42", Reason: ReasonManual}); err == nil {
		t.Error("Pause with Redis down = nil; want an error")
	}
}

func TestPauseGetWith(t *testing.T) {
	p, rdb := newTestPauses(t)
	ctx := context.Background()
	if err := rdb.Set(ctx, "other", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	got, vals, err := p.GetWith(ctx, "42", "other", "missing")
	if err != nil || got != nil || len(vals) != 2 || vals[0] != "v" || vals[1] != nil {
		t.Fatalf("not paused: %+v %v %v", got, vals, err)
	}
	pa := Pause{PageID: "42", Reason: ReasonManual, Since: msNow()}
	mustPause(t, p, pa)
	got, vals, err = p.GetWith(ctx, "42", "other")
	if err != nil || len(vals) != 1 || vals[0] != "v" {
		t.Fatalf("paused: %v %v", vals, err)
	}
	wantPause(t, got, pa)
}

func TestCountThrottleEpisodes(t *testing.T) {
	p, _ := newTestPauses(t)
	ctx := context.Background()
	gap := 300 * time.Millisecond
	// Five 613s from concurrent sends: one episode.
	for i := range 5 {
		if n, err := p.CountThrottle(ctx, "42", time.Hour, gap); err != nil || n != 1 {
			t.Fatalf("613 #%d of the first episode: %d, %v; want 1", i, n, err)
		}
	}
	// After the gap, a new episode.
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := p.CountThrottle(ctx, "42", time.Hour, gap)
		if err != nil {
			t.Fatal(err)
		}
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no second episode after the %v gap (count %d)", gap, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n, _ := p.CountThrottle(ctx, "7", time.Hour, gap); n != 1 {
		t.Errorf("another Page's first episode = %d", n)
	}
}
