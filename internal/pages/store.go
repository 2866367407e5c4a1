package pages

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/pagesend/pagesend/graphapi"
)

// Store holds the current Config and swaps it atomically on Reload or
// Replace. Lookups never block on a reload, and work in flight keeps the
// snapshot it took with Config. The zero Store has no config (Loaded is
// false, Token reports false, Limits are zero) and no file to reload; a
// Store must not be copied after first use.
type Store struct {
	cur    atomic.Pointer[Config]
	path   string              // "" when built by NewStore
	getenv func(string) string // for Reload

	// swapMu serialises swaps so callbacks see changes in the order they
	// happened.
	swapMu sync.Mutex

	cbMu      sync.Mutex
	callbacks []func(Changes)
}

// NewStore returns a Store holding cfg, which may be nil for "not loaded
// yet". It has no file, so Reload fails; use Replace.
func NewStore(cfg *Config) *Store {
	s := &Store{}
	if cfg != nil {
		s.cur.Store(cfg)
	}
	return s
}

// OpenStore loads the pages file at path (see LoadFile) and returns a Store
// that Reload re-reads from the same path with the same getenv.
func OpenStore(path string, getenv func(string) string) (*Store, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	cfg, err := LoadFile(path, getenv)
	if err != nil {
		return nil, err
	}
	s := &Store{path: path, getenv: getenv}
	s.cur.Store(cfg)
	return s, nil
}

// Config returns the current snapshot, or nil before one is loaded. It
// must not be modified.
func (s *Store) Config() *Config { return s.cur.Load() }

// Loaded reports whether a config is in place; the worker's /readyz uses it.
func (s *Store) Loaded() bool { return s.cur.Load() != nil }

// Token returns the page's token from the current config; see Config.Token.
func (s *Store) Token(pageID string) (graphapi.Secret, bool) { return s.cur.Load().Token(pageID) }

// Limits returns the page's limits from the current config; see
// Config.Limits.
func (s *Store) Limits(pageID string) (text, media Limit) { return s.cur.Load().Limits(pageID) }

// errNoFile is returned by Reload on a Store that was not opened from a file.
var errNoFile = errors.New("reload pages: store has no pages file")

// Reload re-reads the pages file with the path and getenv given to
// OpenStore. On error the old config stays in force and the error is
// returned. On success the new config takes effect, OnChange callbacks run,
// and Reload returns what changed.
func (s *Store) Reload() (Changes, error) {
	if s.path == "" {
		return Changes{}, errNoFile
	}
	s.swapMu.Lock()
	defer s.swapMu.Unlock()
	cfg, err := LoadFile(s.path, s.getenv)
	if err != nil {
		return Changes{}, err
	}
	return s.swapLocked(cfg), nil
}

// Replace swaps in a config built in code, runs the OnChange callbacks and
// returns what changed, as Reload does. cfg must not be nil.
func (s *Store) Replace(cfg *Config) Changes {
	if cfg == nil {
		panic("pages: Store.Replace with nil Config")
	}
	s.swapMu.Lock()
	defer s.swapMu.Unlock()
	return s.swapLocked(cfg)
}

func (s *Store) swapLocked(cfg *Config) Changes {
	old := s.cur.Swap(cfg)
	ch := diff(old, cfg)
	s.cbMu.Lock()
	cbs := slices.Clone(s.callbacks)
	s.cbMu.Unlock()
	for _, fn := range cbs {
		fn(ch)
	}
	return ch
}

// OnChange registers fn to run after every successful Reload or Replace,
// even one that changed nothing. Callbacks run synchronously, in
// registration order, before Reload or Replace returns; they must not call
// Reload or Replace themselves.
func (s *Store) OnChange(fn func(Changes)) {
	s.cbMu.Lock()
	defer s.cbMu.Unlock()
	s.callbacks = append(s.callbacks, fn)
}

// String describes the store by its file and current config, never tokens.
func (s *Store) String() string {
	return fmt.Sprintf("pages store (file %q): %v", s.path, s.cur.Load())
}

// Format prints String for every verb, so no formatting path walks into
// the config behind the pointer.
func (s *Store) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }

// LogValue gives log/slog the file and current config, never tokens.
func (s *Store) LogValue() slog.Value {
	return slog.GroupValue(slog.String("path", s.path), slog.Any("config", s.cur.Load()))
}

// WatchSIGHUP reloads the pages file on every SIGHUP until ctx is done,
// logging each outcome to log (nil means slog.Default()) by page ids and
// counts, never tokens. A failed reload is logged and the old config stays.
// It blocks; run it in its own goroutine.
func (s *Store) WatchSIGHUP(ctx context.Context, log *slog.Logger) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGHUP)
	defer signal.Stop(sig)
	s.watch(ctx, log, sig)
}

// watch is WatchSIGHUP with the signal channel passed in, for tests.
func (s *Store) watch(ctx context.Context, log *slog.Logger, sig <-chan os.Signal) {
	if log == nil {
		log = slog.Default()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-sig:
		}
		ch, err := s.Reload()
		if err != nil {
			log.Error("pages file reload failed; keeping the previous pages", "path", s.path, "err", err)
			continue
		}
		cfg := s.Config()
		log.Info("pages file reloaded", "path", s.path, "pages", len(cfg.PageIDs()),
			"missing_token", cfg.MissingTokens(), "changes", ch)
	}
}
