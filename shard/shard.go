// Package shard spreads Pages over several independent Redis primaries
// (each may be a Sentinel group). A Page lives on exactly one shard — its
// queue, rate-limit buckets, pause state and conversations — chosen by
// rendezvous (highest random weight) hashing of its id against the
// shards' names: every process that knows the same shard names picks the
// same shard, with no table to keep in sync, and adding a shard moves only
// the Pages that now hash highest to it (about 1/N of them), never a Page
// from one old shard to another.
//
// Shards are named, and the name — not the URL — is what is hashed, so a
// shard's address or password can change without moving any Page.
package shard

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/hibiken/asynq"
)

// Shard is one Redis primary (or Sentinel group) and its stable name.
type Shard struct {
	Name  string
	Redis asynq.RedisConnOpt
}

// Pick returns the index of the shard, among names, that pageID belongs
// to: the one with the highest hash of (name, pageID). It returns 0 for a
// single shard and -1 for none.
func Pick(names []string, pageID string) int {
	if len(names) == 1 {
		return 0 // nothing to choose: no hashing on the common path
	}
	best, bestScore := -1, uint64(0)
	for i, n := range names {
		if s := score(n, pageID); best < 0 || s > bestScore {
			best, bestScore = i, s
		}
	}
	return best
}

// score is a 64-bit FNV-1a hash of name, a separator and pageID, mixed
// with a finaliser so nearby ids spread evenly.
func score(name, pageID string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	h.Write([]byte{0})
	h.Write([]byte(pageID))
	x := h.Sum64()
	// splitmix64's finaliser.
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// Names returns the shards' names.
func Names(shards []Shard) []string {
	out := make([]string, len(shards))
	for i, s := range shards {
		out[i] = s.Name
	}
	return out
}

// Parse reads a shard list: whitespace-separated NAME=URL entries
// ("a=redis://10.0.0.1:6379/0 b=redis-sentinel://…"), each URL read by
// parseURL. Names are 1–32 letters, digits, '-' or '_', unique. Errors
// name the entry by its name or position, never its URL (which may hold a
// password).
func Parse(spec string, parseURL func(string) (asynq.RedisConnOpt, error)) ([]Shard, error) {
	var out []Shard
	seen := map[string]bool{}
	for i, f := range strings.Fields(spec) {
		name, url, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("shard %d: want NAME=URL", i+1)
		}
		if !validName(name) {
			return nil, fmt.Errorf("shard %d: name %q: want 1-32 letters, digits, '-' or '_'", i+1, name)
		}
		if seen[name] {
			return nil, fmt.Errorf("shard %q named twice", name)
		}
		seen[name] = true
		opt, err := parseURL(url)
		if err != nil {
			return nil, fmt.Errorf("shard %q: %w", name, err)
		}
		out = append(out, Shard{Name: name, Redis: opt})
	}
	if len(out) == 0 {
		return nil, errors.New("no shards: want NAME=URL entries separated by spaces")
	}
	return out, nil
}

func validName(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
