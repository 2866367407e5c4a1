package pages

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/pagesend/pagesend/graphapi"
	"github.com/pagesend/pagesend/internal/strictjson"
)

// Defaults used when the pages file leaves them out. The media rate is
// Meta's limit of 10 audio/video calls/s per Page (Messenger Platform
// rate-limiting page); the text rate stays well under its 300/s.
const (
	DefaultRate      = 20.0
	DefaultMediaRate = 10.0
)

// MaxFileSize is the largest pages file Parse and LoadFile accept, in bytes.
const MaxFileSize = 1_000_000

// Error is returned by Parse and LoadFile when the pages file is invalid.
// It lists every problem found, so one edit can fix them all. Problem paths
// are relative to the top of the file ("pages[2].id"); a problem with the
// file as a whole has an empty path. Neither paths nor messages include
// values from the file.
type Error struct {
	File     string // the file's path; "" when from Parse
	Problems []strictjson.Problem
}

// Error formats the problems as
// "pages file /x/pages.json: pages[2].id: duplicate of pages[0]; …".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("pages file")
	if e.File != "" {
		b.WriteString(" " + e.File)
	}
	b.WriteString(": ")
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		if p.Path != "" {
			b.WriteString(p.Path + ": ")
		}
		b.WriteString(p.Message)
	}
	return b.String()
}

// fileJSON is the pages file as written. Pointers tell "absent" from zero.
type fileJSON struct {
	DefaultRate       *float64   `json:"default_rate"`
	DefaultBurst      *int       `json:"default_burst"`
	DefaultMediaRate  *float64   `json:"default_media_rate"`
	DefaultMediaBurst *int       `json:"default_media_burst"`
	Pages             []pageJSON `json:"pages"`
}

type pageJSON struct {
	ID             string          `json:"id"`
	Name           string          `json:"name"`
	AccessToken    graphapi.Secret `json:"access_token"`
	AccessTokenEnv string          `json:"access_token_env"`
	Rate           *float64        `json:"rate"`
	Burst          *int            `json:"burst"`
	MediaRate      *float64        `json:"media_rate"`
	MediaBurst     *int            `json:"media_burst"`
}

// root is the path strictjson gives the top of the file; Error leaves it out.
const root = "pages_file"

// LoadFile reads and parses the pages file at path; see Parse. getenv
// looks up access_token_env variables; nil means os.Getenv.
func LoadFile(path string, getenv func(string) string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read pages file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read pages file: %w", err)
	}
	cfg, err := Parse(data, getenv)
	if e, ok := errors.AsType[*Error](err); ok {
		e.File = path
	}
	return cfg, err
}

// Parse decodes a pages file. Unknown keys, type mismatches and invalid
// values are all reported together in an *Error. getenv looks up
// access_token_env variables; nil means os.Getenv. A variable that is unset
// or empty leaves that page without a token (Token reports false) rather
// than failing the parse. Surrounding whitespace is trimmed from tokens.
func Parse(data []byte, getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if len(data) > MaxFileSize {
		return nil, &Error{Problems: []strictjson.Problem{{Message: fmt.Sprintf("larger than %d bytes", MaxFileSize)}}}
	}
	var raw fileJSON
	probs := strictjson.Decode(data, root, &raw)
	if len(probs) > 0 {
		// Unknown keys stop strictjson before it fills raw. If the file
		// otherwise decodes, validate it too so every problem shows at once.
		if json.Unmarshal(data, &raw) != nil {
			return nil, &Error{Problems: relative(probs)}
		}
	}
	cfg, tokens, invalid := build(&raw, getenv)
	probs = append(relative(probs), invalid...)
	if len(probs) > 0 {
		return nil, &Error{Problems: probs}
	}
	cfg.finish(tokens)
	return cfg, nil
}

// relative strips the root from strictjson's paths.
func relative(probs []strictjson.Problem) []strictjson.Problem {
	out := make([]strictjson.Problem, len(probs))
	for i, p := range probs {
		p.Path = strings.TrimPrefix(strings.TrimPrefix(p.Path, root), ".")
		out[i] = p
	}
	return out
}

// build fills in defaults, checks values and collects tokens. Problems
// name paths only; no value from the file is ever echoed, since a token
// pasted into the wrong field must not reach a log.
func build(raw *fileJSON, getenv func(string) string) (*Config, map[string]graphapi.Secret, []strictjson.Problem) {
	var probs []strictjson.Problem
	bad := func(path, msg string) { probs = append(probs, strictjson.Problem{Path: path, Message: msg}) }

	def := limitOf(raw.DefaultRate, raw.DefaultBurst, DefaultRate, 0)
	defMedia := limitOf(raw.DefaultMediaRate, raw.DefaultMediaBurst, DefaultMediaRate, 0)
	checkLimit(raw.DefaultRate, raw.DefaultBurst, "default_rate", "default_burst", bad)
	checkLimit(raw.DefaultMediaRate, raw.DefaultMediaBurst, "default_media_rate", "default_media_burst", bad)

	cfg := &Config{Default: def, DefaultMedia: defMedia, Pages: make([]Page, 0, len(raw.Pages))}
	tokens := make(map[string]graphapi.Secret, len(raw.Pages))
	seen := make(map[string]int, len(raw.Pages))
	for i, rp := range raw.Pages {
		at := fmt.Sprintf("pages[%d]", i)
		switch {
		case rp.ID == "":
			bad(at+".id", "required")
		case !digits(rp.ID):
			bad(at+".id", "must be a numeric Page id (digits only)")
		default:
			if j, dup := seen[rp.ID]; dup {
				bad(at+".id", fmt.Sprintf("duplicate of pages[%d]", j))
			} else {
				seen[rp.ID] = i
			}
		}

		p := Page{
			ID:    rp.ID,
			Name:  rp.Name,
			Text:  limitOf(rp.Rate, rp.Burst, def.Rate, def.Burst),
			Media: limitOf(rp.MediaRate, rp.MediaBurst, defMedia.Rate, defMedia.Burst),
		}
		checkLimit(rp.Rate, rp.Burst, at+".rate", at+".burst", bad)
		checkLimit(rp.MediaRate, rp.MediaBurst, at+".media_rate", at+".media_burst", bad)

		token := graphapi.Secret(strings.TrimSpace(string(rp.AccessToken)))
		switch {
		case token != "" && rp.AccessTokenEnv != "":
			bad(at, "set access_token or access_token_env, not both")
		case token == "" && rp.AccessTokenEnv == "":
			bad(at, "set access_token or access_token_env")
		case rp.AccessTokenEnv != "" && !envName(rp.AccessTokenEnv):
			bad(at+".access_token_env", "must be an environment variable name (letters, digits, _)")
		case rp.AccessTokenEnv != "":
			p.TokenEnv = rp.AccessTokenEnv
			token = graphapi.Secret(strings.TrimSpace(getenv(rp.AccessTokenEnv)))
		}
		if token != "" {
			tokens[rp.ID] = token
		}
		cfg.Pages = append(cfg.Pages, p)
	}
	return cfg, tokens, probs
}

// limitOf returns the limit a file entry describes: rate and burst where
// given, else defRate and defBurst. defBurst 0 means one second's worth of
// the rate, as for the file-wide defaults.
func limitOf(rate *float64, burst *int, defRate float64, defBurst int) Limit {
	l := Limit{Rate: defRate, Burst: defBurst}
	if rate != nil {
		l.Rate = *rate
	}
	if burst != nil {
		l.Burst = *burst
	} else if defBurst == 0 {
		l.Burst = ceilBurst(l.Rate)
	}
	return l
}

// checkLimit checks the values the file sets. Values it leaves out come
// from checked defaults, so a bad default is reported once, not per page.
func checkLimit(rate *float64, burst *int, ratePath, burstPath string, bad func(path, msg string)) {
	if rate != nil && !(*rate > 0) {
		bad(ratePath, "must be greater than 0")
	}
	if burst != nil && *burst < 1 {
		bad(burstPath, "must be at least 1")
	}
}

func digits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

func envName(s string) bool {
	for i, r := range s {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return s != ""
}
