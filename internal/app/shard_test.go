package app

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/pagesend/pagesend/enqueue"
	"github.com/pagesend/pagesend/graphapi"
	"github.com/pagesend/pagesend/graphapi/graphtest"
	"github.com/pagesend/pagesend/internal/pages"
	"github.com/pagesend/pagesend/internal/redistest"
	"github.com/pagesend/pagesend/internal/testwait"
	"github.com/pagesend/pagesend/shard"
	"github.com/pagesend/pagesend/worker"
)

// Three independent redis-servers: the producer spreads 30 Pages over
// them, one service consumes from all three, and each shard's Pages are
// sent from that shard alone.
func TestServiceConsumesEveryShard(t *testing.T) {
	var shards []shard.Shard
	for _, name := range []string{"a", "b", "c"} {
		rs := redistest.Start(t, redistest.Options{})
		shards = append(shards, shard.Shard{Name: name, Redis: asynq.RedisClientOpt{Addr: rs.Addr()}})
	}
	fake := graphtest.Start(t, graphtest.Options{})
	lim := pages.Limit{Rate: 1000, Burst: 1000}
	const n = 30
	tokens := map[string]graphapi.Secret{}
	for i := range n {
		tokens[strconv.Itoa(2000+i)] = "tok"
	}
	svc, err := NewService(Config{
		Shards: shards,
		Store:  pages.NewStore(pages.NewConfig(lim, lim, nil, tokens)),
		Graph:  graphapi.ClientOptions{BaseURL: fake.URL(), Timeout: 2 * time.Second},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Worker: worker.Options{PollInterval: 20 * time.Millisecond, ForwardInterval: 100 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	if _, err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer svc.Shutdown()
	if len(svc.Parts) != 3 {
		t.Fatalf("%d parts, want one per shard", len(svc.Parts))
	}

	c := enqueue.NewShardedClient(shards, enqueue.Options{})
	defer c.Close()
	perShard := map[string]int{}
	for i := range n {
		page := strconv.Itoa(2000 + i)
		j := enqueue.Job{PageID: page, Request: &graphapi.Request{Recipient: &graphapi.Recipient{ID: "1"}, MessagingType: "UPDATE", Message: &graphapi.Message{Text: "hi"}}}
		if _, err := c.Enqueue(context.Background(), j); err != nil {
			t.Fatal(err)
		}
		perShard[shards[shard.Pick(shard.Names(shards), page)].Name]++
	}
	testwait.Until(t, 20*time.Second, "every message sent", func() bool { return fake.CallCount() >= n })

	for _, sh := range shards {
		if perShard[sh.Name] == 0 {
			t.Fatalf("no page hashed to shard %s: %v", sh.Name, perShard)
		}
		in := asynq.NewInspector(sh.Redis)
		testwait.Until(t, 10*time.Second, "shard "+sh.Name+"'s messages to complete", func() bool {
			info, err := in.GetQueueInfo("default")
			return err == nil && info.Completed == perShard[sh.Name] && info.Size == perShard[sh.Name]
		})
		in.Close()
	}
	// Each shard's queue series carries its name.
	mfs, err := svc.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]bool{}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "asynq_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "shard" {
					labels[lp.GetValue()] = true
				}
			}
		}
	}
	if len(labels) != 3 {
		t.Errorf("shard labels on queue metrics: %v, want a, b and c", labels)
	}
	if err := svc.Ready(context.Background()); err != nil {
		t.Errorf("Ready: %v", err)
	}
}
