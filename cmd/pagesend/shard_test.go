package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/pagesend/pagesend/graphapi/graphtest"
	"github.com/pagesend/pagesend/internal/job"
	"github.com/pagesend/pagesend/internal/redistest"
	"github.com/pagesend/pagesend/shard"
)

// TestShardedCommands runs the real binary as a worker over three
// redis-servers (PAGESEND_REDIS_SHARDS), enqueues through the CLI with the
// same shards, and checks that each Page's messages were stored and
// completed on its own shard, and that `pages pause` lands on the Page's
// shard.
func TestShardedCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("process test")
	}
	names := []string{"s1", "s2", "s3"}
	var spec []string
	var servers []*redistest.Server
	for _, n := range names {
		rs := redistest.Start(t, redistest.Options{})
		servers = append(servers, rs)
		spec = append(spec, n+"="+rs.URL())
	}
	shards := strings.Join(spec, " ")
	fake := graphtest.Start(t, graphtest.Options{})
	pagesFile := filepath.Join(t.TempDir(), "pages.json")
	os.WriteFile(pagesFile, []byte(`{"default_rate": 1000, "default_burst": 1000, "pages": [`+pageEntries(4000, 24)+`]}`), 0o600)

	var lines []string
	per := map[int]int{}
	for i := range 24 {
		page := fmt.Sprint(4000 + i)
		per[shard.Pick(names, page)]++
		lines = append(lines, `{"page_id":"`+page+`","request":{"recipient":{"id":"1"},"messaging_type":"UPDATE","message":{"text":"hi"}}}`)
	}
	vars := map[string]string{"PAGESEND_REDIS_SHARDS": shards}
	if code, _, errOut := runCmd(t, strings.Join(lines, "\n"), vars, "enqueue"); code != 0 {
		t.Fatalf("enqueue: exit %d: %s", code, errOut)
	}

	cmd := exec.Command(os.Args[0], "worker")
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.Env = append(os.Environ(), "PAGESEND_TEST_AS_MAIN=1", "PAGESEND_REDIS_SHARDS="+shards,
		"PAGESEND_GRAPH_URL="+fake.URL(), "PAGESEND_PAGES_FILE="+pagesFile, "PAGESEND_OPS_ADDR=", "SHARD_TEST_TOKEN=tok")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := fake.WaitCalls(ctx, 24); err != nil {
		t.Fatalf("%v\nworker log:\n%s", err, logs.String())
	}
	for i, rs := range servers {
		in := asynq.NewInspector(asynq.RedisClientOpt{Addr: rs.Addr()})
		eventually(t, 10*time.Second, "shard "+names[i]+" to finish", func() bool {
			q, err := in.GetQueueInfo(job.QueueDefault)
			return per[i] == 0 || (err == nil && q.Completed == per[i] && q.Size == per[i])
		})
		in.Close()
	}

	// A pause goes to the Page's shard, and status finds it there.
	page := "4005"
	if code, out, errOut := runCmd(t, "", vars, "pages", "pause", page); code != 0 {
		t.Fatalf("pause: %d %s %s", code, out, errOut)
	}
	home := servers[shard.Pick(names, page)]
	if n := home.Client(t).Exists(context.Background(), "pagesend:pause:"+page).Val(); n != 1 {
		t.Errorf("pause of page %s not on its shard", page)
	}
	if _, out, _ := runCmd(t, "", vars, "pages", "status"); !strings.Contains(out, page) {
		t.Errorf("status does not list the paused page: %s", out)
	}
}

func pageEntries(first, n int) string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf(`{"id": "%d", "access_token_env": "SHARD_TEST_TOKEN"}`, first+i))
	}
	return strings.Join(out, ", ")
}

func TestShardsPlan(t *testing.T) {
	a, b, c := redistest.Start(t, redistest.Options{}), redistest.Start(t, redistest.Options{}), redistest.Start(t, redistest.Options{})
	cur := "a=" + a.URL() + " b=" + b.URL()
	next := cur + " c=" + c.URL()
	var ids []string
	moving := map[string]bool{}
	for i := range 40 {
		id := fmt.Sprint(7000 + i)
		ids = append(ids, id)
		if shard.Pick([]string{"a", "b", "c"}, id) == 2 {
			moving[id] = true
		}
	}
	if len(moving) == 0 {
		t.Fatal("no Page moves to c: pick other ids")
	}
	// Two unfinished tasks for one moving Page on its current shard.
	var mover string
	for id := range moving {
		mover = id
		break
	}
	vars := map[string]string{"PAGESEND_REDIS_SHARDS": cur}
	job := `{"page_id":"` + mover + `","ordered":false,"request":{"recipient":{"id":"1"},"messaging_type":"UPDATE","message":{"text":"hi"}}}`
	if code, _, errOut := runCmd(t, job+"\n"+job, vars, "enqueue"); code != 0 {
		t.Fatalf("enqueue: %s", errOut)
	}

	code, out, errOut := runCmd(t, "", vars, append([]string{"shards", "--next", next, "--queued"}, ids...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := fmt.Sprintf("%d of 40 Pages move", len(moving))
	if !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
	for id := range moving {
		if !strings.Contains(out, id) {
			t.Errorf("moving Page %s not listed:\n%s", id, out)
		}
	}
	if !regexpMatch(`(?m)^`+mover+`\s+[ab]\s+c\s+2$`, out) {
		t.Errorf("Page %s should show 2 unfinished tasks:\n%s", mover, out)
	}
	if strings.Contains(out+errOut, "redis://") {
		t.Errorf("output quotes a URL:\n%s", out)
	}
}

func regexpMatch(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }
