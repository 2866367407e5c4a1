package pages

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pagesend/pagesend/graphapi"
)

// Recognisable token values; no output may ever contain them.
const (
	tokA = "EAAsecret123"
	tokB = "EAAsecret456"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func mustParse(t *testing.T, data string, env map[string]string) *Config {
	t.Helper()
	cfg, err := Parse([]byte(data), envOf(env))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return cfg
}

func TestParseValid(t *testing.T) {
	type want struct {
		def, defMedia Limit
		text, media   Limit // of page "1"
		token         string
		hasToken      bool
		tokenEnv      string
		missing       []string
	}
	std := want{def: Limit{20, 20}, defMedia: Limit{10, 10}, text: Limit{20, 20}, media: Limit{10, 10}}
	with := func(f func(*want)) want { w := std; f(&w); return w }
	tests := []struct {
		name string
		data string
		env  map[string]string
		want want
	}{
		{
			name: "defaults filled",
			data: `{"pages": [{"id": "1", "access_token": "EAAsecret123"}]}`,
			want: with(func(w *want) { w.token, w.hasToken = tokA, true }),
		},
		{
			name: "default bursts follow default rates",
			data: `{"default_rate": 2.5, "default_media_rate": 0.5, "pages": [{"id": "1", "access_token": "EAAsecret123"}]}`,
			want: with(func(w *want) {
				w.def, w.defMedia, w.text, w.media = Limit{2.5, 3}, Limit{0.5, 1}, Limit{2.5, 3}, Limit{0.5, 1}
				w.token, w.hasToken = tokA, true
			}),
		},
		{
			name: "page overrides",
			data: `{"default_rate": 20, "default_burst": 20, "default_media_rate": 10, "default_media_burst": 10,
				"pages": [{"id": "1", "name": "shop", "access_token": " EAAsecret123\n", "rate": 40, "burst": 41, "media_rate": 5, "media_burst": 6}]}`,
			want: with(func(w *want) {
				w.text, w.media = Limit{40, 41}, Limit{5, 6}
				w.token, w.hasToken = tokA, true
			}),
		},
		{
			name: "page rate without burst takes default burst",
			data: `{"default_burst": 7, "pages": [{"id": "1", "access_token": "EAAsecret123", "rate": 40, "media_burst": 2}]}`,
			want: with(func(w *want) {
				w.def, w.text, w.media = Limit{20, 7}, Limit{40, 7}, Limit{10, 2}
				w.token, w.hasToken = tokA, true
			}),
		},
		{
			name: "token from injected getenv",
			data: `{"pages": [{"id": "1", "access_token_env": "PAGE_1_TOKEN"}]}`,
			env:  map[string]string{"PAGE_1_TOKEN": tokB + "\n"},
			want: with(func(w *want) { w.token, w.hasToken, w.tokenEnv = tokB, true, "PAGE_1_TOKEN" }),
		},
		{
			name: "env var unset loads without token",
			data: `{"pages": [{"id": "1", "access_token_env": "PAGE_1_TOKEN"}]}`,
			want: with(func(w *want) { w.tokenEnv, w.missing = "PAGE_1_TOKEN", []string{"1"} }),
		},
		{
			name: "env var empty loads without token",
			data: `{"pages": [{"id": "1", "access_token_env": "PAGE_1_TOKEN"}]}`,
			env:  map[string]string{"PAGE_1_TOKEN": "  "},
			want: with(func(w *want) { w.tokenEnv, w.missing = "PAGE_1_TOKEN", []string{"1"} }),
		},
		{
			name: "no pages",
			data: `{}`,
			want: std, // page "1" is unknown: defaults, no token
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mustParse(t, tt.data, tt.env)
			w := tt.want
			if cfg.Default != w.def || cfg.DefaultMedia != w.defMedia {
				t.Errorf("defaults = %v, %v; want %v, %v", cfg.Default, cfg.DefaultMedia, w.def, w.defMedia)
			}
			if text, media := cfg.Limits("1"); text != w.text || media != w.media {
				t.Errorf("Limits(1) = %v, %v; want %v, %v", text, media, w.text, w.media)
			}
			tok, ok := cfg.Token("1")
			if string(tok) != w.token || ok != w.hasToken {
				t.Errorf("Token(1) = %q, %v; want %q, %v", string(tok), ok, w.token, w.hasToken)
			}
			if p, _ := cfg.Page("1"); p.TokenEnv != w.tokenEnv {
				t.Errorf("TokenEnv = %q, want %q", p.TokenEnv, w.tokenEnv)
			}
			if got := cfg.MissingTokens(); !slices.Equal(got, w.missing) {
				t.Errorf("MissingTokens = %v, want %v", got, w.missing)
			}
		})
	}
}

func TestParseUsesOSEnvWhenGetenvNil(t *testing.T) {
	t.Setenv("PAGESEND_TEST_PAGE_TOKEN", tokA)
	cfg, err := Parse([]byte(`{"pages": [{"id": "1", "access_token_env": "PAGESEND_TEST_PAGE_TOKEN"}]}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok, ok := cfg.Token("1"); !ok || string(tok) != tokA {
		t.Errorf("Token(1) = %v, %v; want the env value", tok, ok)
	}
}

func TestConfigLookups(t *testing.T) {
	cfg := mustParse(t, `{"default_rate": 5, "pages": [
		{"id": "30", "access_token": "EAAsecret123", "name": "c"},
		{"id": "1000", "access_token_env": "UNSET"},
		{"id": "200", "access_token": "EAAsecret456", "rate": 1}]}`, nil)
	if got, want := cfg.PageIDs(), []string{"1000", "200", "30"}; !slices.Equal(got, want) {
		t.Errorf("PageIDs = %v, want %v", got, want)
	}
	if got := cfg.Pages[0].Name; got != "c" {
		t.Errorf("Pages keep file order; Pages[0].Name = %q", got)
	}
	for _, id := range []string{"1000", "999", ""} {
		if _, ok := cfg.Token(id); ok {
			t.Errorf("Token(%q) reported a token", id)
		}
	}
	if text, media := cfg.Limits("999"); text != (Limit{5, 5}) || media != (Limit{10, 10}) {
		t.Errorf("Limits(unknown) = %v, %v; want the defaults", text, media)
	}
	var nilCfg *Config
	if _, ok := nilCfg.Token("30"); ok || nilCfg.PageIDs() != nil {
		t.Error("nil Config has pages")
	}
}

func TestNewConfig(t *testing.T) {
	def, media := Limit{20, 20}, Limit{10, 10}
	cfg := NewConfig(def, media,
		[]Page{{ID: "1"}, {ID: "2", Text: Limit{Rate: 40}, Media: Limit{Burst: 3}}},
		map[string]graphapi.Secret{"1": tokA, "2": "", "3": tokB})
	if text, m := cfg.Limits("2"); text != (Limit{40, 20}) || m != (Limit{10, 3}) {
		t.Errorf("Limits(2) = %v, %v", text, m)
	}
	if tok, ok := cfg.Token("1"); !ok || tok != tokA {
		t.Error("Token(1) missing")
	}
	if _, ok := cfg.Token("2"); ok {
		t.Error("empty token reported present")
	}
	// A token for a page not listed adds the page with default limits.
	if tok, ok := cfg.Token("3"); !ok || tok != tokB {
		t.Error("Token(3) missing")
	}
	if text, m := cfg.Limits("3"); text != def || m != media {
		t.Errorf("Limits(3) = %v, %v; want the defaults", text, m)
	}
	if ids := cfg.PageIDs(); len(ids) != 3 {
		t.Errorf("PageIDs = %v, want 1, 2, 3", ids)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		data string
		want string // the whole message
	}{
		{
			name: "every problem at once",
			data: `{"default_rate": 0, "default_media_burst": 0, "pages": [
				{"id": "1", "access_token": "EAAsecret123"},
				{"access_token": "EAAsecret123", "rate": -1, "burst": 0},
				{"id": "1", "access_token": "EAAsecret456", "media_rate": 0, "media_burst": -2},
				{"id": "EAAsecret123", "access_token": "EAAsecret123", "access_token_env": "TOK"},
				{"id": "4"},
				{"id": "5", "access_token_env": "EAAsecret123-x"}]}`,
			want: "pages file: default_rate: must be greater than 0; default_media_burst: must be at least 1; " +
				"pages[1].id: required; pages[1].rate: must be greater than 0; pages[1].burst: must be at least 1; " +
				"pages[2].id: duplicate of pages[0]; pages[2].media_rate: must be greater than 0; pages[2].media_burst: must be at least 1; " +
				"pages[3].id: must be a numeric Page id (digits only); pages[3]: set access_token or access_token_env, not both; " +
				"pages[4]: set access_token or access_token_env; " +
				"pages[5].access_token_env: must be an environment variable name (letters, digits, _)",
		},
		{
			name: "unknown keys with paths, and the rest still checked",
			data: `{"default_rates": 5, "pages": [{"id": "1", "access_token": "EAAsecret123", "Rate": 4, "burst": 0}]}`,
			want: "pages file: default_rates: unknown field; pages[0].Rate: unknown field (did you mean \"rate\"?); " +
				"pages[0].burst: must be at least 1",
		},
		{
			name: "wrong type",
			data: `{"pages": [{"id": "1", "access_token": "EAAsecret123", "burst": "EAAsecret456"}]}`,
			want: "pages file: pages.burst: expected integer, got string",
		},
		{
			name: "unknown key and wrong type",
			data: `{"pages": [{"id": 1, "token": "EAAsecret123"}]}`,
			want: "pages file: pages[0].token: unknown field",
		},
		{
			name: "invalid JSON",
			data: `{"pages": [{"id": "1", "access_token": "EAAsecret123"}`,
			want: "pages file: invalid JSON: unexpected end of input",
		},
		{
			name: "too large",
			data: `{"pages": []}` + strings.Repeat(" ", MaxFileSize),
			want: "pages file: larger than 1000000 bytes",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tt.data), envOf(map[string]string{"TOK": tokB}))
			if err == nil {
				t.Fatalf("Parse succeeded: %v", cfg)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error\n got: %s\nwant: %s", got, tt.want)
			}
			var pe *Error
			if !errors.As(err, &pe) || len(pe.Problems) == 0 {
				t.Errorf("error %T is not an *Error with problems", err)
			}
			assertNoSecrets(t, err.Error(), fmt.Sprintf("%+v|%#v", err, err))
		})
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadFile(filepath.Join(dir, "absent.json"), nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: err = %v, want fs.ErrNotExist", err)
	}
	path := writeFile(t, dir, `{"pages": [{"id": "1", "access_token": "EAAsecret123"}, {"id": "1", "access_token": "EAAsecret123"}]}`)
	_, err := LoadFile(path, nil)
	if want := "pages file " + path + ": pages[1].id: duplicate of pages[0]"; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
	writeFile(t, dir, `{"pages": []}`+strings.Repeat(" ", 2*MaxFileSize))
	if _, err := LoadFile(path, nil); err == nil || !strings.HasSuffix(err.Error(), "larger than 1000000 bytes") {
		t.Errorf("large file: err = %v", err)
	}
}

// TestNothingPrintsTokens prints a Config and a Store every way a careless
// caller might and checks no token comes out.
func TestNothingPrintsTokens(t *testing.T) {
	cfg := mustParse(t, `{"pages": [{"id": "1", "access_token": "EAAsecret123"}, {"id": "2", "access_token_env": "T"}]}`,
		map[string]string{"T": tokB})
	store := NewStore(cfg)
	type holder struct {
		c Config
		p *Config
	}
	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%d", "%x", "%q"} {
		for _, v := range []any{cfg, *cfg, holder{*cfg, cfg}, []*Config{cfg}, store, cfg.Pages} {
			out = append(out, fmt.Sprintf(verb, v))
		}
	}
	var logs bytes.Buffer
	for _, h := range []slog.Handler{slog.NewJSONHandler(&logs, nil), slog.NewTextHandler(&logs, nil)} {
		slog.New(h).Info("loaded", "cfg", cfg, "store", store, "changes", store.Replace(cfg))
	}
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, logs.String(), string(js))
	assertNoSecrets(t, out...)
	if s := cfg.String(); !strings.Contains(s, "[1 2]") {
		t.Errorf("String() = %q, want the page ids", s)
	}
}

func assertNoSecrets(t *testing.T, outputs ...string) {
	t.Helper()
	for _, o := range outputs {
		for _, tok := range []string{tokA, tokB} {
			if strings.Contains(o, tok) {
				t.Errorf("output contains token %s: %s", tok[:6]+"…", o)
			}
		}
	}
}

func writeFile(t *testing.T, dir, data string) string {
	t.Helper()
	path := filepath.Join(dir, "pages.json")
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
