package pages

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pagesend/pagesend/graphapi"
)

const baseFile = `{"pages": [
	{"id": "1", "access_token": "EAAsecret123"},
	{"id": "2", "access_token_env": "PAGE_2_TOKEN", "rate": 5},
	{"id": "3", "access_token": "EAAsecret123"}]}`

// openStore writes data to a temp pages file and opens a Store on it,
// reading variables from env (which the test may change before Reload).
func openStore(t *testing.T, data string, env map[string]string) (*Store, string) {
	t.Helper()
	path := writeFile(t, t.TempDir(), data)
	s, err := OpenStore(path, envOf(env))
	if err != nil {
		t.Fatalf("OpenStore: %v", err)
	}
	return s, path
}

func TestReloadReportsChanges(t *testing.T) {
	tests := []struct {
		name string
		data string
		env  string // new PAGE_2_TOKEN
		want Changes
	}{
		{name: "nothing", data: baseFile, env: tokB},
		{
			name: "token rotated in file",
			data: strings.Replace(baseFile, `"id": "1", "access_token": "EAAsecret123"`, `"id": "1", "access_token": "EAAsecret789"`, 1),
			env:  tokB,
			want: Changes{TokenChanged: []string{"1"}},
		},
		{
			name: "token rotated in environment",
			data: baseFile,
			env:  "EAAsecret789",
			want: Changes{TokenChanged: []string{"2"}},
		},
		{
			name: "token gone from environment",
			data: baseFile,
			want: Changes{TokenChanged: []string{"2"}},
		},
		{
			name: "page added and removed",
			data: strings.Replace(baseFile, `"id": "3"`, `"id": "4", "rate": 7`, 1),
			env:  tokB,
			want: Changes{TokenChanged: []string{"3", "4"}, Added: []string{"4"}, Removed: []string{"3"}, LimitsChanged: []string{"4"}},
		},
		{
			name: "page limits",
			data: strings.Replace(baseFile, `"rate": 5`, `"rate": 5, "media_burst": 2`, 1),
			env:  tokB,
			want: Changes{LimitsChanged: []string{"2"}},
		},
		{
			name: "defaults",
			data: `{"default_rate": 9, ` + strings.TrimPrefix(baseFile, "{"),
			env:  tokB,
			// Page 2 sets its own rate but takes the new default burst.
			want: Changes{LimitsChanged: []string{"1", "2", "3"}, DefaultsChanged: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"PAGE_2_TOKEN": tokB}
			s, path := openStore(t, baseFile, env)
			before := s.Config()
			writeFile(t, filepath.Dir(path), tt.data)
			env["PAGE_2_TOKEN"] = tt.env
			got, err := s.Reload()
			if err != nil {
				t.Fatalf("Reload: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Changes = %+v\n     want %+v", got, tt.want)
			}
			if got.Empty() != reflect.DeepEqual(tt.want, Changes{}) {
				t.Errorf("Empty() = %v", got.Empty())
			}
			if s.Config() == before {
				t.Error("Reload kept the old snapshot")
			}
			if tok, _ := before.Token("2"); tok != tokB {
				t.Error("Reload changed the old snapshot")
			}
		})
	}
}

func TestReloadPicksUpNewToken(t *testing.T) {
	s, path := openStore(t, `{"pages": [{"id": "1", "access_token": "EAAsecret123"}]}`, nil)
	writeFile(t, filepath.Dir(path), `{"pages": [{"id": "1", "access_token": "EAAsecret456", "rate": 3}]}`)
	if _, err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if tok, ok := s.Token("1"); !ok || tok != tokB {
		t.Error("Token(1) is not the new token")
	}
	if text, _ := s.Limits("1"); text != (Limit{3, 20}) {
		t.Errorf("Limits(1) = %v", text)
	}
}

func TestReloadBrokenFileKeepsOldConfig(t *testing.T) {
	for name, data := range map[string]string{
		"invalid JSON":  `{"pages": [`,
		"invalid value": `{"pages": [{"id": "1", "access_token": "EAAsecret456", "burst": 0}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			s, path := openStore(t, `{"pages": [{"id": "1", "access_token": "EAAsecret123"}]}`, nil)
			calls := 0
			s.OnChange(func(Changes) { calls++ })
			before := s.Config()
			writeFile(t, filepath.Dir(path), data)
			_, err := s.Reload()
			if err == nil || !strings.HasPrefix(err.Error(), "pages file "+path+": ") {
				t.Fatalf("Reload err = %v, want a pages file error", err)
			}
			assertNoSecrets(t, err.Error())
			if s.Config() != before || calls != 0 {
				t.Errorf("failed reload swapped the config (%v) or ran callbacks (%d)", s.Config() != before, calls)
			}
			if tok, _ := s.Token("1"); tok != tokA {
				t.Error("old token no longer served")
			}
		})
	}
}

func TestStoreWithoutFile(t *testing.T) {
	var zero Store
	if zero.Loaded() {
		t.Error("zero Store reports loaded")
	}
	if _, ok := zero.Token("1"); ok {
		t.Error("zero Store has a token")
	}
	if text, media := zero.Limits("1"); text != (Limit{}) || media != (Limit{}) {
		t.Error("zero Store has limits")
	}
	if _, err := zero.Reload(); !errors.Is(err, errNoFile) {
		t.Errorf("Reload err = %v", err)
	}
	s := NewStore(nil)
	if s.Loaded() {
		t.Error("NewStore(nil) reports loaded")
	}
	ch := s.Replace(NewConfig(Limit{1, 1}, Limit{1, 1}, []Page{{ID: "1"}}, map[string]graphapi.Secret{"1": tokA}))
	if !s.Loaded() || !reflect.DeepEqual(ch.Added, []string{"1"}) || !ch.DefaultsChanged {
		t.Errorf("after Replace: loaded %v, changes %+v", s.Loaded(), ch)
	}
}

func TestOnChangeCallbacks(t *testing.T) {
	s, path := openStore(t, `{"pages": [{"id": "1", "access_token": "EAAsecret123"}]}`, nil)
	var got []string
	for _, name := range []string{"first", "second"} {
		s.OnChange(func(ch Changes) { got = append(got, fmt.Sprintf("%s %v", name, ch.TokenChanged)) })
	}
	writeFile(t, filepath.Dir(path), `{"pages": [{"id": "1", "access_token": "EAAsecret456"}]}`)
	if _, err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	s.Replace(s.Config()) // no change; callbacks still run
	want := []string{"first [1]", "second [1]", "first []", "second []"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("callbacks ran as %q, want %q", got, want)
	}
}

// syncBuffer lets a watcher goroutine log while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}
func (b *syncBuffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.b.String() }

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWatchReloadsOnSignal(t *testing.T) {
	s, path := openStore(t, `{"pages": [{"id": "1", "access_token": "EAAsecret123"}]}`, nil)
	dir := filepath.Dir(path)
	var logs syncBuffer
	ctx, cancel := context.WithCancel(t.Context())
	sig := make(chan os.Signal)
	done := make(chan struct{})
	go func() { defer close(done); s.watch(ctx, slog.New(slog.NewJSONHandler(&logs, nil)), sig) }()

	writeFile(t, dir, `{"pages": [{"id": "1", "access_token": "EAAsecret456"}, {"id": "2", "access_token_env": "UNSET"}]}`)
	sig <- syscall.SIGHUP
	waitFor(t, "the new token", func() bool { tok, _ := s.Token("1"); return tok == tokB })
	waitFor(t, "the reload log", func() bool { return strings.Contains(logs.String(), `"msg":"pages file reloaded"`) })

	writeFile(t, dir, `{"pages": [{"id": "x", "access_token": "EAAsecret123"}]}`)
	sig <- syscall.SIGHUP
	waitFor(t, "the failure log", func() bool { return strings.Contains(logs.String(), "reload failed") })
	if tok, _ := s.Token("1"); tok != tokB {
		t.Error("failed reload replaced the token")
	}

	cancel()
	<-done
	out := logs.String()
	for _, want := range []string{`"pages":2`, `"missing_token":["2"]`, `"token_changed":["1"]`, `"added":["2"]`, `pages[0].id: must be a numeric`} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %s:\n%s", want, out)
		}
	}
	assertNoSecrets(t, out)
}

func TestWatchSIGHUP(t *testing.T) {
	// Our own registration keeps a SIGHUP that arrives before WatchSIGHUP
	// has registered from killing the test binary; we resend until the
	// watcher has seen one.
	mine := make(chan os.Signal, 1)
	signal.Notify(mine, syscall.SIGHUP)
	defer signal.Stop(mine)

	s, path := openStore(t, `{"pages": [{"id": "1", "access_token": "EAAsecret123"}]}`, nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); s.WatchSIGHUP(ctx, slog.New(slog.DiscardHandler)) }()
	writeFile(t, filepath.Dir(path), `{"pages": [{"id": "1", "access_token": "EAAsecret456"}]}`)

	deadline := time.Now().Add(5 * time.Second)
	for tok, _ := s.Token("1"); tok != tokB; tok, _ = s.Token("1") {
		if time.Now().After(deadline) {
			t.Fatal("WatchSIGHUP did not reload")
		}
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
}

func TestConcurrentLookupsDuringReplace(t *testing.T) {
	cfgs := []*Config{
		NewConfig(Limit{1, 1}, Limit{1, 1}, []Page{{ID: "1"}}, map[string]graphapi.Secret{"1": tokA}),
		NewConfig(Limit{2, 2}, Limit{2, 2}, []Page{{ID: "1"}, {ID: "2"}}, map[string]graphapi.Secret{"1": tokB, "2": tokB}),
	}
	s := NewStore(cfgs[0])
	s.OnChange(func(Changes) {}) // exercise the callback path under -race
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 16 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				// A snapshot is self-consistent: token and limits agree.
				cfg := s.Config()
				tok, ok := cfg.Token("1")
				text, _ := cfg.Limits("1")
				if !ok || (tok == tokA) != (text.Rate == 1) {
					t.Errorf("inconsistent snapshot: token ok %v, limit %v", ok, text)
					return
				}
				_, _ = s.Token("2")
				_, _ = s.Limits("2")
				_ = s.Loaded()
			}
		})
	}
	for i := range 2000 {
		s.Replace(cfgs[i%2])
	}
	close(stop)
	readers.Wait()
}
