package pages

import (
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/pagesend/pagesend/graphapi"
)

// Limit is a token bucket: Rate messages per second on average, and up to
// Burst messages at once after a quiet spell.
type Limit struct {
	Rate  float64 // messages per second
	Burst int     // bucket size
}

// String formats the limit as "20/s burst 20".
func (l Limit) String() string {
	return strconv.FormatFloat(l.Rate, 'g', -1, 64) + "/s burst " + strconv.Itoa(l.Burst)
}

// Page is one Facebook Page from the pages file. It deliberately has no
// token field, so a Page can be printed, logged or shown in status output;
// use Config.Token for the token.
type Page struct {
	ID       string // numeric Page id
	Name     string // optional label, for people
	Text     Limit  // text and template messages
	Media    Limit  // audio and video attachments
	TokenEnv string // the environment variable the token came from, or ""
}

// Config is one snapshot of the pages file. Build it with Parse, LoadFile
// or NewConfig, and treat it as read-only afterwards: a Store shares it
// between goroutines. A nil *Config has no pages and zero limits.
//
// Config prints (with any fmt verb, and through log/slog) as its page ids
// and limits; tokens are never printed.
type Config struct {
	Default      Limit  // text limit for pages that set none, and for unknown pages
	DefaultMedia Limit  // media limit for pages that set none, and for unknown pages
	Pages        []Page // in file order

	index map[string]int // page id → position in Pages

	// token looks a page's token up. The tokens live in the closure, where
	// no reflective printer can reach them: fmt prints a func as an
	// address, even for a Config nested in some other value where Config's
	// own Format is not consulted. (A map, or a pointer to one, is printed
	// in full by fmt in those cases.)
	token func(pageID string) graphapi.Secret
}

// NewConfig builds a Config in code, for tests and the demo. It copies
// pages and tokens. A page whose Text or Media Rate or Burst is zero takes
// the value from def or defMedia. A token whose id is not in pages adds a
// page with the default limits; empty tokens are dropped. Page ids should
// be unique; the first of a duplicate wins. NewConfig does not validate
// otherwise.
func NewConfig(def, defMedia Limit, pages []Page, tokens map[string]graphapi.Secret) *Config {
	c := &Config{Default: def, DefaultMedia: defMedia, Pages: make([]Page, 0, len(pages)+len(tokens))}
	listed := make(map[string]bool, len(pages))
	for _, p := range pages {
		p.Text = fill(p.Text, def)
		p.Media = fill(p.Media, defMedia)
		c.Pages = append(c.Pages, p)
		listed[p.ID] = true
	}
	var extra []string
	for id, t := range tokens {
		if t != "" && !listed[id] {
			extra = append(extra, id)
		}
	}
	sort.Strings(extra)
	for _, id := range extra {
		c.Pages = append(c.Pages, Page{ID: id, Text: def, Media: defMedia})
	}
	toks := make(map[string]graphapi.Secret, len(tokens))
	for id, t := range tokens {
		if t != "" {
			toks[id] = t
		}
	}
	c.finish(toks)
	return c
}

func fill(l, def Limit) Limit {
	if l.Rate == 0 {
		l.Rate = def.Rate
	}
	if l.Burst == 0 {
		l.Burst = def.Burst
	}
	return l
}

// finish builds the index and keeps the tokens of known pages only.
func (c *Config) finish(tokens map[string]graphapi.Secret) {
	c.index = make(map[string]int, len(c.Pages))
	byPage := make(map[string]graphapi.Secret, len(tokens))
	for i, p := range c.Pages {
		if _, dup := c.index[p.ID]; dup {
			continue
		}
		c.index[p.ID] = i
		if tok := tokens[p.ID]; tok != "" {
			byPage[p.ID] = tok
		}
	}
	c.token = func(id string) graphapi.Secret { return byPage[id] }
}

// Page returns the page with the given id.
func (c *Config) Page(id string) (Page, bool) {
	if c == nil {
		return Page{}, false
	}
	i, ok := c.index[id]
	if !ok {
		return Page{}, false
	}
	return c.Pages[i], true
}

// Token returns the page's access token. It reports false when the page is
// not in the file or has no token (its access_token_env variable was unset
// or empty).
func (c *Config) Token(pageID string) (graphapi.Secret, bool) {
	if c == nil || c.token == nil {
		return "", false
	}
	t := c.token(pageID)
	return t, t != ""
}

// Limits returns the page's text and media limits: its own, or the
// defaults for a page the file does not list.
func (c *Config) Limits(pageID string) (text, media Limit) {
	if c == nil {
		return Limit{}, Limit{}
	}
	if p, ok := c.Page(pageID); ok {
		return p.Text, p.Media
	}
	return c.Default, c.DefaultMedia
}

// PageIDs returns the ids of the pages in the file, sorted.
func (c *Config) PageIDs() []string {
	if c == nil {
		return nil
	}
	ids := make([]string, 0, len(c.index))
	for id := range c.index {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// MissingTokens returns the ids of the pages that have no token, sorted.
// The worker raises the missing-token alert for each.
func (c *Config) MissingTokens() []string {
	var ids []string
	for _, id := range c.PageIDs() {
		if _, ok := c.Token(id); !ok {
			ids = append(ids, id)
		}
	}
	return ids
}

// String describes the config by page ids and limits, never tokens.
func (c *Config) String() string {
	if c == nil {
		return "pages config <nil>"
	}
	return fmt.Sprintf("pages config: %d pages [%s]; default %v, media %v",
		len(c.index), strings.Join(c.PageIDs(), " "), c.Default, c.DefaultMedia)
}

// Format prints String for every verb, including %+v and %#v, so that no
// formatting path walks into the tokens.
func (c *Config) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(c.String())) }

// LogValue gives log/slog the page ids and limits, never tokens.
func (c *Config) LogValue() slog.Value {
	if c == nil {
		return slog.StringValue("<nil>")
	}
	return slog.GroupValue(
		slog.Int("pages", len(c.index)),
		slog.Any("page_ids", c.PageIDs()),
		slog.Any("missing_token", c.MissingTokens()),
		slog.String("default", c.Default.String()),
		slog.String("default_media", c.DefaultMedia.String()),
	)
}

// ceilBurst is the burst that goes with a rate when none is given: one
// second's worth, at least 1, clamped so a huge rate cannot overflow int.
func ceilBurst(rate float64) int {
	const maxBurst = 1 << 31
	switch {
	case !(rate > 1): // also NaN
		return 1
	case rate >= maxBurst:
		return maxBurst
	}
	return int(math.Ceil(rate))
}
