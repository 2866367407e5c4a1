package main

import (
	"context"
	"fmt"
	"slices"
	"text/tabwriter"

	"github.com/hibiken/asynq"

	"github.com/pagesend/pagesend/internal/job"
	"github.com/pagesend/pagesend/internal/pages"
	"github.com/pagesend/pagesend/internal/redisopt"
	"github.com/pagesend/pagesend/shard"
)

func runShards(ctx context.Context, args []string, e env) error {
	c := newCommand("shards", "pagesend shards [--next 'NAME=URL …'] [--queued] [PAGE_ID …]",
		"Show which shard each Page lives on (the pages file's Pages, or those named),\n"+
			"and with --next, which Pages a new shard list would move: the plan for\n"+
			"adding or removing a shard (docs/sharding.md). --queued also counts each\n"+
			"moving Page's unfinished tasks on its current shard (it reads every\n"+
			"unfinished task there: use it to see a drain through, not in a loop).", e.getenv)
	com := addCommon(c)
	pagesFile := c.str("pages-file", "PAGESEND_PAGES_FILE", "", "the pages file whose Pages to place (or name Pages as arguments)")
	next := c.fs.String("next", "", "a new shard list, NAME=URL entries separated by spaces")
	queued := c.fs.Bool("queued", false, "with --next: count each moving Page's unfinished tasks on its current shard")
	if err := c.parse(args, e.stdout); err != nil {
		return err
	}
	ids := c.args
	for _, id := range ids {
		if !isPageID(id) {
			return usageErr("%q is not a numeric Page id", id)
		}
	}
	if len(ids) == 0 {
		if *pagesFile == "" {
			return usageErr("shards needs Page ids or PAGESEND_PAGES_FILE")
		}
		cfg, err := pages.LoadFile(*pagesFile, e.getenv)
		if err != nil {
			return err
		}
		ids = cfg.PageIDs()
	}
	cur, _, err := com.targets()
	if err != nil {
		return usageErr("%v", err)
	}
	names := shard.Names(cur)
	if *next == "" {
		count := map[string]int{}
		tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PAGE\tSHARD")
		for _, id := range ids {
			s := names[shard.Pick(names, id)]
			count[s]++
			fmt.Fprintf(tw, "%s\t%s\n", id, s)
		}
		tw.Flush()
		for _, n := range names {
			fmt.Fprintf(e.stdout, "shard %s: %d of %d Pages\n", n, count[n], len(ids))
		}
		return nil
	}

	nextShards, err := shard.Parse(*next, func(u string) (asynq.RedisConnOpt, error) {
		return redisopt.Parse(redisopt.Settings{URL: u})
	})
	if err != nil {
		return usageErr("--next: %v", err)
	}
	nextNames := shard.Names(nextShards)
	type move struct{ page, from, to string }
	var moves []move
	for _, id := range ids {
		from, to := names[shard.Pick(names, id)], nextNames[shard.Pick(nextNames, id)]
		if from != to {
			moves = append(moves, move{id, from, to})
		}
	}
	var open map[string]int
	if *queued && len(moves) > 0 {
		if open, err = openTasks(ctx, cur, func(page string) bool {
			return slices.ContainsFunc(moves, func(m move) bool { return m.page == page })
		}); err != nil {
			return err
		}
	}
	tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
	header := "PAGE\tFROM\tTO"
	if *queued {
		header += "\tUNFINISHED ON FROM"
	}
	fmt.Fprintln(tw, header)
	for _, m := range moves {
		if *queued {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", m.page, m.from, m.to, open[m.page])
		} else {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", m.page, m.from, m.to)
		}
	}
	tw.Flush()
	fmt.Fprintf(e.stdout, "%d of %d Pages move (%.1f%%)\n", len(moves), len(ids), 100*float64(len(moves))/float64(max(len(ids), 1)))
	return nil
}

// openTasks counts, per Page that want accepts, the unfinished tasks
// (pending, scheduled, retry, active) on the given shards.
func openTasks(ctx context.Context, shards []shard.Shard, want func(string) bool) (map[string]int, error) {
	out := map[string]int{}
	for _, sh := range shards {
		in := asynq.NewInspector(sh.Redis)
		queues, err := in.Queues()
		if err != nil {
			in.Close()
			return nil, fmt.Errorf("shard %s: %w", sh.Name, err)
		}
		for _, q := range queues {
			lists := []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){
				in.ListPendingTasks, in.ListScheduledTasks, in.ListRetryTasks, in.ListActiveTasks,
			}
			for _, list := range lists {
				for page := 1; ctx.Err() == nil; page++ {
					tasks, err := list(q, asynq.PageSize(1000), asynq.Page(page))
					if err != nil {
						in.Close()
						return nil, fmt.Errorf("shard %s queue %s: %w", sh.Name, q, err)
					}
					for _, t := range tasks {
						if t.Type != job.TaskType {
							continue
						}
						if p := job.PeekPageID(t.Payload); want(p) {
							out[p]++
						}
					}
					if len(tasks) < 1000 {
						break
					}
				}
			}
		}
		in.Close()
	}
	return out, ctx.Err()
}
