package redistest

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestSentinelGroupFormsOnPrivatePorts(t *testing.T) {
	t.Parallel()
	g := StartSentinel(t, SentinelOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if n := len(g.Servers()); n != 1+DefaultReplicas {
		t.Errorf("%d servers, want %d", n, 1+DefaultReplicas)
	}
	if n := len(g.SentinelAddrs()); n != DefaultSentinels {
		t.Errorf("%d sentinels, want %d", n, DefaultSentinels)
	}
	seen := map[string]bool{}
	for _, addr := range append(g.SentinelAddrs(), g.Servers()[0].Addr(), g.Servers()[1].Addr()) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host != "127.0.0.1" || port == "6379" || port == "26379" {
			t.Errorf("address %q: want 127.0.0.1 and a private port", addr)
		}
		if seen[addr] {
			t.Errorf("address %s used twice", addr)
		}
		seen[addr] = true
	}
	want := "redis-sentinel://" + strings.Join(g.SentinelAddrs(), ",") + "/3?master=pagesend"
	if got := g.URL(3); got != want {
		t.Errorf("URL(3) = %q, want %q", got, want)
	}

	p, err := g.Primary(ctx)
	if err != nil {
		t.Fatalf("Primary: %v", err)
	}
	if p != g.Servers()[0] {
		t.Errorf("Primary = %s, want the first server %s", p.Addr(), g.Servers()[0].Addr())
	}
	for _, addr := range g.SentinelAddrs() {
		if role, err := roleOf(ctx, addr); err != nil || role != "sentinel" {
			t.Errorf("ROLE of %s = %q, %v; want sentinel", addr, role, err)
		}
		m, err := redis.NewSentinelClient(&redis.Options{Addr: addr}).Master(ctx, "pagesend").Result()
		if err != nil {
			t.Fatalf("SENTINEL MASTER on %s: %v", addr, err)
		}
		if m["quorum"] != "2" || m["down-after-milliseconds"] != "1000" || m["failover-timeout"] != "5000" {
			t.Errorf("sentinel %s: quorum %s, down-after %s ms, failover-timeout %s ms; want 2, 1000, 5000",
				addr, m["quorum"], m["down-after-milliseconds"], m["failover-timeout"])
		}
	}
	if role, err := roleOf(ctx, g.Servers()[1].Addr()); err != nil || role != "slave" {
		t.Errorf("ROLE of the replica = %q, %v; want slave", role, err)
	}
}

func TestSentinelGroupFailover(t *testing.T) {
	t.Parallel()
	g := StartSentinel(t, SentinelOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: g.MasterName(), SentinelAddrs: g.SentinelAddrs(), DB: 2})
	defer c.Close()
	if err := c.Set(ctx, "before", "kill", 0).Err(); err != nil {
		t.Fatalf("SET through the sentinels: %v", err)
	}
	// WAIT: the replica has the key before the primary dies.
	if n, err := c.Wait(ctx, 1, 5*time.Second).Result(); err != nil || n != 1 {
		t.Fatalf("WAIT 1 = %d, %v", n, err)
	}

	old, err := g.KillPrimary(ctx)
	if err != nil {
		t.Fatalf("KillPrimary: %v", err)
	}
	if old != g.Servers()[0] {
		t.Errorf("killed %s, want the first server %s", old.Addr(), g.Servers()[0].Addr())
	}
	killed := time.Now()
	p, err := g.WaitFailover(ctx, old)
	if err != nil {
		t.Fatalf("WaitFailover: %v\n%s", err, g.LogTails(20))
	}
	t.Logf("new primary %s %v after the kill", p.Addr(), time.Since(killed).Round(10*time.Millisecond))
	if p != g.Servers()[1] {
		t.Errorf("new primary %s, want the replica %s", p.Addr(), g.Servers()[1].Addr())
	}

	// The same client, not recreated, finds the new primary by itself.
	var got string
	err = pollUntil(ctx, func() error {
		var err error
		got, err = c.Get(ctx, "before").Result()
		if err == nil {
			err = c.Set(ctx, "after", "failover", 0).Err()
		}
		return err
	})
	if err != nil || got != "kill" {
		t.Fatalf("after the failover GET = %q, %v; want kill", got, err)
	}
	direct := redis.NewClient(&redis.Options{Addr: p.Addr(), DB: 2})
	defer direct.Close()
	if v, err := direct.Get(ctx, "after").Result(); err != nil || v != "failover" {
		t.Errorf("the new primary holds after = %q, %v; want failover in db 2", v, err)
	}
}

func TestSentinelGroupStopRemovesEverything(t *testing.T) {
	t.Parallel()
	g, err := StartSentinelProcess(SentinelOptions{Sentinels: 1, Quorum: 1})
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, s := range append(g.Servers(), g.sentinels...) {
		dirs = append(dirs, s.dir)
	}
	addrs := append(g.SentinelAddrs(), g.Servers()[0].Addr())
	if err := g.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	for _, a := range addrs {
		waitRefused(t, a)
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists after Stop (stat: %v)", d, err)
		}
	}
	if err := g.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}
