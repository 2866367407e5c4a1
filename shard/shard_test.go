package shard

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/hibiken/asynq"
)

func TestPickIsStableAndBalanced(t *testing.T) {
	names := []string{"a", "b", "c"}
	const pages = 30000
	count := map[int]int{}
	for i := range pages {
		id := strconv.Itoa(100000000 + i)
		s := Pick(names, id)
		if again := Pick([]string{"c", "a", "b"}, id); names[s] != []string{"c", "a", "b"}[again] {
			t.Fatalf("page %s: the order of the names changed its shard", id)
		}
		count[s]++
	}
	for s, n := range count {
		if n < pages/3*9/10 || n > pages/3*11/10 {
			t.Errorf("shard %s has %d of %d pages, want within 10%% of a third", names[s], n, pages)
		}
	}
	if Pick(nil, "1") != -1 || Pick([]string{"only"}, "1") != 0 {
		t.Error("Pick with no or one shard")
	}
}

func TestAddingAShardMovesFewPages(t *testing.T) {
	old := []string{"a", "b", "c"}
	grown := []string{"a", "b", "c", "d"}
	const pages = 20000
	moved := 0
	for i := range pages {
		id := strconv.Itoa(5000000 + i*7)
		from, to := old[Pick(old, id)], grown[Pick(grown, id)]
		if from != to {
			moved++
			if to != "d" {
				t.Fatalf("page %s moved from %s to %s, an old shard", id, from, to)
			}
		}
	}
	// Ideal: a quarter of the pages move, all to the new shard.
	if moved < pages/4*9/10 || moved > pages/4*11/10 {
		t.Errorf("%d of %d pages moved, want about a quarter", moved, pages)
	}
}

func TestParse(t *testing.T) {
	ok := func(u string) (asynq.RedisConnOpt, error) {
		if strings.Contains(u, "bad") {
			return nil, errors.New("unsupported URL")
		}
		return asynq.RedisClientOpt{Addr: strings.TrimPrefix(u, "redis://")}, nil
	}
	shards, err := Parse(" a=redis://h1:6379  b_2=redis://h2:6379\n", ok)
	if err != nil || len(shards) != 2 || shards[1].Name != "b_2" || shards[1].Redis.(asynq.RedisClientOpt).Addr != "h2:6379" {
		t.Fatalf("Parse = %+v, %v", shards, err)
	}
	for _, tc := range []struct{ spec, want string }{
		{"", "no shards"},
		{"redis://h1", "shard 1: want NAME=URL"},
		{"a=redis://h1 a=redis://h2", `shard "a" named twice`},
		{"a b=redis://h", "shard 1: want NAME=URL"},
		{"no/slash=redis://h", `name "no/slash"`},
		{"a=redis://:secret@bad", `shard "a": unsupported URL`},
	} {
		_, err := Parse(tc.spec, ok)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want %q", tc.spec, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("Parse(%q) error quotes the URL: %v", tc.spec, err)
		}
	}
}
