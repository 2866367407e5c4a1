package pages

import (
	"log/slog"
	"slices"
)

// Changes is what a Reload or Replace changed. Each list holds page ids,
// sorted. A page's token and limits are compared as Config.Token and
// Config.Limits report them, so a page that appears or disappears is also
// listed under TokenChanged (token newly set or now missing) and under
// LimitsChanged when its limits differ from the defaults.
type Changes struct {
	TokenChanged  []string // token now different: rotated, newly set or gone
	Added         []string // pages now in the file that were not before
	Removed       []string // pages no longer in the file
	LimitsChanged []string // text or media limit now different

	// DefaultsChanged reports that Default or DefaultMedia changed; pages
	// not in the file get the new defaults.
	DefaultsChanged bool
}

// Empty reports whether nothing changed.
func (c Changes) Empty() bool {
	return len(c.TokenChanged)+len(c.Added)+len(c.Removed)+len(c.LimitsChanged) == 0 && !c.DefaultsChanged
}

// LogValue logs the non-empty lists; they hold page ids only.
func (c Changes) LogValue() slog.Value {
	var attrs []slog.Attr
	add := func(key string, ids []string) {
		if len(ids) > 0 {
			attrs = append(attrs, slog.Any(key, ids))
		}
	}
	add("added", c.Added)
	add("removed", c.Removed)
	add("token_changed", c.TokenChanged)
	add("limits_changed", c.LimitsChanged)
	if c.DefaultsChanged {
		attrs = append(attrs, slog.Bool("defaults_changed", true))
	}
	if len(attrs) == 0 {
		return slog.StringValue("none")
	}
	return slog.GroupValue(attrs...)
}

// diff compares two snapshots; old may be nil (nothing loaded before).
func diff(old, cur *Config) Changes {
	var ch Changes
	oldIDs, curIDs := old.PageIDs(), cur.PageIDs()
	for _, id := range curIDs {
		if _, ok := old.Page(id); !ok {
			ch.Added = append(ch.Added, id)
		}
	}
	for _, id := range oldIDs {
		if _, ok := cur.Page(id); !ok {
			ch.Removed = append(ch.Removed, id)
		}
	}
	all := slices.Compact(slices.Sorted(slices.Values(append(oldIDs, curIDs...))))
	for _, id := range all {
		// Plain != is enough: these are our own values, and only the
		// verdict leaves this function.
		ot, _ := old.Token(id)
		nt, _ := cur.Token(id)
		if ot != nt {
			ch.TokenChanged = append(ch.TokenChanged, id)
		}
		oText, oMedia := old.Limits(id)
		nText, nMedia := cur.Limits(id)
		if oText != nText || oMedia != nMedia {
			ch.LimitsChanged = append(ch.LimitsChanged, id)
		}
	}
	if old == nil || old.Default != cur.Default || old.DefaultMedia != cur.DefaultMedia {
		ch.DefaultsChanged = true
	}
	return ch
}
