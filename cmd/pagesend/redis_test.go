package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/pagesend/pagesend/graphapi/graphtest"
	"github.com/pagesend/pagesend/internal/job"
	"github.com/pagesend/pagesend/internal/redistest"
)

// redisSettings parses args and vars as a Redis command would and returns
// its connection option.
func redisSettings(vars map[string]string, args ...string) (asynq.RedisConnOpt, error) {
	c := newCommand("test", "test", "test", func(k string) string { return vars[k] })
	com := addCommon(c)
	if err := c.parse(args, io.Discard); err != nil {
		return nil, err
	}
	return com.redis()
}

func TestRedisSettings(t *testing.T) {
	sentinels := []string{"10.0.0.1:26379", "10.0.0.2:26379", "10.0.0.3:26380"}
	tests := []struct {
		name string
		vars map[string]string
		args []string
		want asynq.RedisConnOpt
	}{
		{name: "default", want: asynq.RedisClientOpt{Addr: "127.0.0.1:6379"}},
		{
			name: "redis URL",
			vars: map[string]string{"PAGESEND_REDIS_URL": "redis://:pw@10.0.0.9:6380/2"},
			want: asynq.RedisClientOpt{Addr: "10.0.0.9:6380", Password: "pw", DB: 2},
		},
		{
			name: "redis URL, password and user from their own settings",
			vars: map[string]string{"PAGESEND_REDIS_URL": "redis://10.0.0.9:6380/2", "PAGESEND_REDIS_USERNAME": "app", "PAGESEND_REDIS_PASSWORD": "pw"},
			want: asynq.RedisClientOpt{Addr: "10.0.0.9:6380", Username: "app", Password: "pw", DB: 2},
		},
		{
			name: "sentinel URL keeps the db",
			vars: map[string]string{"PAGESEND_REDIS_URL": "redis-sentinel://:pw@10.0.0.1,10.0.0.2,10.0.0.3:26380/4?master=pagesend"},
			want: asynq.RedisFailoverClientOpt{MasterName: "pagesend", SentinelAddrs: sentinels, Password: "pw", DB: 4},
		},
		{
			name: "explicit sentinel settings, no URL",
			vars: map[string]string{
				"PAGESEND_REDIS_SENTINELS": "10.0.0.1:26379, 10.0.0.2,10.0.0.3:26380", "PAGESEND_REDIS_MASTER": "pagesend",
				"PAGESEND_REDIS_SENTINEL_USERNAME": "watcher", "PAGESEND_REDIS_SENTINEL_PASSWORD": "spw",
				"PAGESEND_REDIS_USERNAME": "app", "PAGESEND_REDIS_PASSWORD": "pw", "PAGESEND_REDIS_TLS": "true",
			},
			want: asynq.RedisFailoverClientOpt{
				MasterName: "pagesend", SentinelAddrs: sentinels, SentinelUsername: "watcher", SentinelPassword: "spw",
				Username: "app", Password: "pw", TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12},
			},
		},
		{
			name: "flags win over the environment",
			vars: map[string]string{"PAGESEND_REDIS_SENTINELS": "10.9.9.9", "PAGESEND_REDIS_MASTER": "other"},
			args: []string{"--redis-sentinels", strings.Join(sentinels, ","), "--redis-master", "pagesend", "--redis-url", "redis-sentinel:///6"},
			want: asynq.RedisFailoverClientOpt{MasterName: "pagesend", SentinelAddrs: sentinels, DB: 6},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := redisSettings(tt.vars, tt.args...)
			if err != nil {
				t.Fatalf("redis(): %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("redis() =\n %#v\nwant\n %#v", got, tt.want)
			}
		})
	}
}

// Canaries for TestRedisErrorsHideSecrets: no output may show any of them.
const (
	canaryURLPassword      = "urlPW-LEAK-31"
	canaryRedisPassword    = "redisPW-LEAK-32"
	canarySentinelPassword = "sentinelPW-LEAK-33"
)

// TestRedisErrorsHideSecrets runs every Redis command with broken Redis
// settings that carry passwords, in the URL and in the secret variables,
// and checks that neither the error nor anything else printed shows them.
func TestRedisErrorsHideSecrets(t *testing.T) {
	pagesFile := filepath.Join(t.TempDir(), "pages.json")
	if err := os.WriteFile(pagesFile, []byte(`{"pages": []}`), 0o600); err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{
		"PAGESEND_REDIS_PASSWORD":          canaryRedisPassword,
		"PAGESEND_REDIS_SENTINEL_PASSWORD": canarySentinelPassword,
		"PAGESEND_PAGES_FILE":              pagesFile,
		"PAGESEND_API_KEYS":                "producer:0123456789abcdef0123456789abcdef",
	}
	// enqueue reads and checks its jobs before it looks at Redis.
	jobLine := `{"page_id":"1","request":{"recipient":{"id":"2"},"messaging_type":"UPDATE","message":{"text":"x"}}}`
	pw := canaryURLPassword
	settings := map[string]map[string]string{
		"bad escape":                    {"PAGESEND_REDIS_URL": "redis-sentinel://:" + pw + "%zz@s1/0?master=m"},
		"slash in the password":         {"PAGESEND_REDIS_URL": "redis-sentinel://:urlPW/LEAK-31@s1/0?master=m"},
		"question mark in the password": {"PAGESEND_REDIS_URL": "redis-sentinel://:urlPW?LEAK-31@s1/0?master=m"},
		"hash in the password":          {"PAGESEND_REDIS_URL": "redis://:urlPW#LEAK-31@h:6379/0"},
		"bad db":                        {"PAGESEND_REDIS_URL": "redis-sentinel://:" + pw + "@s1/x?master=m"},
		"no master":                     {"PAGESEND_REDIS_URL": "redis-sentinel://:" + pw + "@s1/0"},
		"unknown parameter":             {"PAGESEND_REDIS_URL": "redis-sentinel://s1/0?master=m&password=" + pw},
		"sentinels with a redis URL":    {"PAGESEND_REDIS_URL": "redis://:" + pw + "@h:6379/0", "PAGESEND_REDIS_SENTINELS": "s1"},
		"bad sentinel address":          {"PAGESEND_REDIS_SENTINELS": "s1,s2:port", "PAGESEND_REDIS_MASTER": "m"},
		"unsupported scheme":            {"PAGESEND_REDIS_URL": "mysql://:" + pw + "@h/0"},
	}
	commands := [][]string{{"worker"}, {"enqueue"}, {"pages", "status"}, {"api"}}
	pieces := []string{canaryURLPassword, canaryRedisPassword, canarySentinelPassword, "LEAK", "urlPW", "redisPW", "sentinelPW"}
	for name, vars := range settings {
		for _, args := range commands {
			t.Run(name+"/"+strings.Join(args, " "), func(t *testing.T) {
				all := map[string]string{}
				for k, v := range secrets {
					all[k] = v
				}
				for k, v := range vars {
					all[k] = v
				}
				code, out, errOut := runCmd(t, jobLine, all, args...)
				if code != 2 || !strings.Contains(errOut, "PAGESEND_REDIS") {
					t.Errorf("exit %d, stderr %q; want 2 and the settings named", code, errOut)
				}
				for _, p := range pieces {
					if strings.Contains(out+errOut, p) {
						t.Errorf("output shows a password (%q): stdout %q, stderr %q", p, out, errOut)
					}
				}
			})
		}
	}

	// Help lists the secret variables, never their values, and offers no
	// flag for them.
	code, out, _ := runCmd(t, "", secrets, "worker", "--help")
	for _, want := range []string{"PAGESEND_REDIS_PASSWORD", "PAGESEND_REDIS_SENTINEL_PASSWORD", "PAGESEND_REDIS_SENTINELS", "PAGESEND_REDIS_MASTER"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("worker --help: exit %d, lacks %s", code, want)
		}
	}
	for _, p := range pieces {
		if strings.Contains(out, p) {
			t.Errorf("worker --help shows a password (%q)", p)
		}
	}
	for _, flag := range []string{"--redis-password", "--redis-sentinel-password"} {
		if code, _, _ := runCmd(t, "", secrets, "pages", "status", flag, "x"); code != 2 {
			t.Errorf("%s is accepted as a flag (exit %d): secrets must be environment only", flag, code)
		}
	}
}

// TestSentinelEveryCommand runs the commands against a Sentinel group
// whose primary wants an ACL user and whose sentinels want their own:
// enqueue, pages and the worker (queues, pause state and rate limiter)
// must all use the primary the sentinels name, in the URL's database.
func TestSentinelEveryCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("process test")
	}
	const (
		db                   = 3
		redisUser, redisPass = "app", "app-pass"
		sentUser, sentPass   = "watcher", "watch-pass"
	)
	g := redistest.StartSentinel(t, redistest.SentinelOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	primary, err := g.Primary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lockDown(t, g, redisUser, redisPass, sentUser, sentPass)

	url := strings.Replace(g.URL(db), "redis-sentinel://", "redis-sentinel://"+redisUser+":"+redisPass+"@", 1)
	vars := map[string]string{
		"PAGESEND_REDIS_URL":               url,
		"PAGESEND_REDIS_SENTINEL_USERNAME": sentUser,
		"PAGESEND_REDIS_SENTINEL_PASSWORD": sentPass,
	}
	// The same through the explicit settings.
	explicit := map[string]string{
		"PAGESEND_REDIS_URL":       fmt.Sprintf("redis-sentinel:///%d", db),
		"PAGESEND_REDIS_SENTINELS": strings.Join(g.SentinelAddrs(), ","),
		"PAGESEND_REDIS_MASTER":    g.MasterName(),
		"PAGESEND_REDIS_USERNAME":  redisUser, "PAGESEND_REDIS_PASSWORD": redisPass,
		"PAGESEND_REDIS_SENTINEL_USERNAME": sentUser, "PAGESEND_REDIS_SENTINEL_PASSWORD": sentPass,
	}
	direct := redis.NewClient(&redis.Options{Addr: primary.Addr(), DB: db, Username: redisUser, Password: redisPass})
	defer direct.Close()

	for name, vs := range map[string]map[string]string{"url": vars, "explicit": explicit} {
		if code, out, errOut := runCmd(t, "", vs, "pages", "pause", "123", "--note", name); code != 0 || !strings.Contains(out, "paused") {
			t.Fatalf("%s: pages pause: exit %d, %q %q", name, code, out, errOut)
		}
		if v, err := direct.Get(ctx, "pagesend:pause:123").Result(); err != nil || !strings.Contains(v, name) {
			t.Errorf("%s: the pause is not in db %d of the primary: %q, %v", name, db, v, err)
		}
		if code, out, errOut := runCmd(t, "", vs, "pages", "resume", "123"); code != 0 || !strings.Contains(out, "resumed") {
			t.Errorf("%s: pages resume: exit %d, %q %q", name, code, out, errOut)
		}
	}

	// Without the sentinels' credentials nothing gets through, and the
	// error shows no password.
	noSentinelAuth := map[string]string{"PAGESEND_REDIS_URL": url}
	code, out, errOut := runCmd(t, "", noSentinelAuth, "pages", "status")
	if code == 0 || strings.Contains(out+errOut, redisPass) {
		t.Errorf("without sentinel credentials: exit %d, stdout %q, stderr %q; want a failure without the password", code, out, errOut)
	}

	jobLine := `{"page_id":"` + procPage + `","request":{"recipient":{"id":"42"},"messaging_type":"UPDATE","message":{"text":"via sentinel"}}}`
	if code, out, errOut := runCmd(t, jobLine, explicit, "enqueue"); code != 0 || len(strings.Fields(out)) != 1 {
		t.Fatalf("enqueue: exit %d, %q %q", code, out, errOut)
	}
	in := asynq.NewInspector(asynq.RedisClientOpt{Addr: primary.Addr(), DB: db, Username: redisUser, Password: redisPass})
	defer in.Close()
	if q, err := in.GetQueueInfo(job.QueueDefault); err != nil || q.Pending != 1 {
		t.Fatalf("db %d of the primary: queue %+v, %v; want 1 pending", db, q, err)
	}

	fake := graphtest.Start(t, graphtest.Options{Tokens: map[string]string{procPage: procToken}})
	pagesFile := filepath.Join(t.TempDir(), "pages.json")
	pages := `{"default_rate": 50, "default_burst": 50, "pages": [{"id": "` + procPage + `", "access_token_env": "PROC_TEST_TOKEN"}]}`
	if err := os.WriteFile(pagesFile, []byte(pages), 0o600); err != nil {
		t.Fatal(err)
	}
	w := exec.Command(os.Args[0], "worker")
	var logs syncBuffer
	w.Stdout, w.Stderr = &logs, &logs
	w.Env = append(os.Environ(), "PAGESEND_TEST_AS_MAIN=1", "PAGESEND_GRAPH_URL="+fake.URL(), "PAGESEND_PAGES_FILE="+pagesFile,
		"PAGESEND_OPS_ADDR=", "PAGESEND_UI=false", "PAGESEND_LOG_LEVEL=warn", "PROC_TEST_TOKEN="+procToken)
	for k, v := range vars {
		w.Env = append(w.Env, k+"="+v)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if w.ProcessState == nil {
			_ = w.Process.Kill()
			_ = w.Wait()
		}
	}()
	if err := fake.WaitCalls(ctx, 1); err != nil {
		t.Fatalf("the worker sent nothing: %v\n%s", err, logs.String())
	}
	eventually(t, 20*time.Second, "the task to complete in db 3 of the primary", func() bool {
		q, err := in.GetQueueInfo(job.QueueDefault)
		return err == nil && q.Completed == 1
	})
	keys, err := direct.Keys(ctx, "pagesend:rl:"+procPage+":*").Result()
	if err != nil || len(keys) == 0 {
		t.Errorf("no rate-limiter keys for page %s in db %d of the primary: %v, %v", procPage, db, keys, err)
	}
	if err := w.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := w.Wait(); err != nil {
		t.Errorf("worker: %v\n%s", err, logs.String())
	}
	if strings.Contains(logs.String(), redisPass) || strings.Contains(logs.String(), sentPass) {
		t.Errorf("the worker logged a Redis password:\n%s", logs.String())
	}
}

// lockDown gives every data server of g an ACL user (the default user
// keeps working, for the harness and replication), and every sentinel its
// own user with the default user switched off, so a client reaches the
// sentinels only with the sentinel credentials. The sentinels' default
// user is back on before g stops.
func lockDown(t *testing.T, g *redistest.SentinelGroup, redisUser, redisPass, sentUser, sentPass string) {
	t.Helper()
	ctx := context.Background()
	for _, s := range g.Servers() {
		if err := s.Client(t).Do(ctx, "ACL", "SETUSER", redisUser, "on", ">"+redisPass, "~*", "&*", "+@all").Err(); err != nil {
			t.Fatalf("ACL SETUSER on %s: %v", s.Addr(), err)
		}
	}
	for _, addr := range g.SentinelAddrs() {
		c := redis.NewClient(&redis.Options{Addr: addr})
		err := c.Do(ctx, "ACL", "SETUSER", sentUser, "on", ">"+sentPass, "+@all").Err()
		if err == nil {
			err = c.Do(ctx, "ACL", "SETUSER", "default", "off").Err()
		}
		c.Close()
		if err != nil {
			t.Fatalf("ACL on sentinel %s: %v", addr, err)
		}
		t.Cleanup(func() {
			c := redis.NewClient(&redis.Options{Addr: addr, Username: sentUser, Password: sentPass})
			defer c.Close()
			if err := c.Do(ctx, "ACL", "SETUSER", "default", "on").Err(); err != nil {
				t.Errorf("ACL on sentinel %s: %v", addr, err)
			}
		})
	}
}
