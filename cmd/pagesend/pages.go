package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pagesend/pagesend/graphapi"
	"github.com/pagesend/pagesend/ratelimit"
	"github.com/pagesend/pagesend/shard"
)

func runPages(ctx context.Context, args []string, e env) error {
	c := newCommand("pages", "pagesend pages status [PAGE_ID] | pause PAGE_ID [--for D] [--note TEXT] | resume PAGE_ID",
		"See and change Pages' pause state, which every worker shares through Redis.\n"+
			"  status            list paused Pages (or one Page's state)\n"+
			"  pause PAGE_ID     stop sending for a Page; its messages wait, nothing is lost\n"+
			"  resume PAGE_ID    lift any pause (a broken token's too, once it is replaced)", e.getenv)
	com := addCommon(c)
	forD := c.fs.Duration("for", 0, "pause: lift by itself after this long (0: until resumed)")
	note := c.fs.String("note", "", "pause: a note for other operators")
	if err := c.parse(args, e.stdout); err != nil {
		return err
	}
	rest := c.args
	if len(rest) == 0 {
		return usageErr("pages needs status, pause or resume")
	}
	verb, rest := rest[0], rest[1:]
	var pageID string
	switch {
	case verb == "status" && len(rest) <= 1:
		if len(rest) == 1 {
			pageID = rest[0]
		}
	case (verb == "pause" || verb == "resume") && len(rest) == 1:
		pageID = rest[0]
	default:
		return usageErr("pages %s: see pagesend pages --help", verb)
	}
	if pageID != "" && !isPageID(pageID) {
		return usageErr("%q is not a numeric Page id", pageID)
	}
	shards, _, err := com.targets()
	if err != nil {
		return usageErr("%v", err)
	}
	var all []*ratelimit.Pauses
	for _, sh := range shards {
		rdb, ok := sh.Redis.MakeRedisClient().(redis.UniversalClient)
		if !ok {
			return fmt.Errorf("unsupported Redis option %T", sh.Redis)
		}
		defer rdb.Close()
		all = append(all, ratelimit.NewPauses(rdb, ""))
	}
	// A Page's pause lives on its shard; the list is every shard's.
	pauses := all[0]
	if pageID != "" {
		pauses = all[shard.Pick(shard.Names(shards), pageID)]
	}

	switch verb {
	case "pause":
		p := ratelimit.Pause{PageID: pageID, Reason: ratelimit.ReasonManual, Detail: *note, Since: time.Now().UTC()}
		if *forD > 0 {
			p.Until = p.Since.Add(*forD)
		}
		if err := pauses.Pause(ctx, p); err != nil {
			return err
		}
		cur, err := pauses.Get(ctx, pageID)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "page %s paused: %s\n", pageID, describe(cur))
	case "resume":
		lifted, err := pauses.Resume(ctx, pageID)
		if err != nil {
			return err
		}
		if lifted == nil {
			fmt.Fprintf(e.stdout, "page %s was not paused\n", pageID)
			return nil
		}
		fmt.Fprintf(e.stdout, "page %s resumed (was %s)\n", pageID, describe(lifted))
	case "status":
		var list []ratelimit.Pause
		if pageID != "" {
			p, err := pauses.Get(ctx, pageID)
			if err != nil {
				return err
			}
			if p == nil {
				fmt.Fprintf(e.stdout, "page %s: sending (not paused)\n", pageID)
				return nil
			}
			list = []ratelimit.Pause{*p}
		} else {
			for _, ps := range all {
				l, err := ps.List(ctx)
				if err != nil {
					return err
				}
				list = append(list, l...)
			}
		}
		if len(list) == 0 {
			fmt.Fprintln(e.stdout, "no Page is paused")
			return nil
		}
		tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PAGE\tREASON\tSINCE\tUNTIL\tDETAIL")
		for _, p := range list {
			until := "resumed by hand"
			if !p.Until.IsZero() {
				until = p.Until.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.PageID, p.Reason, p.Since.UTC().Format(time.RFC3339), until, p.Detail)
		}
		tw.Flush()
	}
	return nil
}

func describe(p *ratelimit.Pause) string {
	if p == nil {
		return "not paused"
	}
	s := string(p.Reason)
	if !p.Until.IsZero() {
		s += ", until " + p.Until.UTC().Format(time.RFC3339)
	} else {
		s += ", until resumed"
	}
	if p.Detail != "" {
		s += " — " + p.Detail
	}
	return s
}

// isPageID reports whether s can be a Page id.
func isPageID(s string) bool { return graphapi.IsNumericID(s) }
