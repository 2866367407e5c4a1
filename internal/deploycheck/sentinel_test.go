package deploycheck

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/pagesend/pagesend/internal/redisopt"
)

// Files of the compose profile "sentinel".
const (
	sentinelProfile  = "sentinel"
	sentinelConfFile = "deploy/redis/sentinel.conf"
	replicaConfFile  = "deploy/redis/replica.conf"
	sentinelDocFile  = "docs/sentinel.md"
)

// composeVarRE matches a compose interpolation with a default,
// ${NAME:-default} or ${NAME-default}, as a whole value.
var composeVarRE = regexp.MustCompile(`^\$\{([A-Za-z_][A-Za-z0-9_]*):?-(.*)\}$`)

// composeDefault returns the value compose gives v when its variable is
// not set: the default of "${NAME:-default}"; any other value unchanged.
func composeDefault(v string) string {
	if m := composeVarRE.FindStringSubmatch(v); m != nil {
		return m[2]
	}
	return v
}

func TestComposeDefault(t *testing.T) {
	for in, want := range map[string]string{
		"redis://redis:6379/0":                      "redis://redis:6379/0",
		"${WORKER_REDIS_URL:-redis://redis:6379/0}": "redis://redis:6379/0",
		"${X-a}": "a",
		"${X}":   "${X}",
	} {
		if got := composeDefault(in); got != want {
			t.Errorf("composeDefault(%q) = %q, want %q", in, got, want)
		}
	}
}

// confLines reads a redis/sentinel config file into its directive lines,
// each split into fields.
func confLines(t *testing.T, path string) [][]string {
	t.Helper()
	var out [][]string
	for _, line := range strings.Split(read(t, path), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Fields(line))
	}
	return out
}

// directive returns the arguments of the first line starting with words.
func directive(lines [][]string, words ...string) ([]string, bool) {
	for _, l := range lines {
		if len(l) >= len(words) && slices.Equal(l[:len(words)], words) {
			return l[len(words):], true
		}
	}
	return nil, false
}

// TestSentinelProfile checks the compose profile "sentinel" against its
// config files and docs/sentinel.md: a replica and three sentinels that
// run only with the profile, configs that name every instance by its
// service name, a quorum that is a majority, and a documented
// WORKER_REDIS_URL that names those sentinels and the monitored master.
func TestSentinelProfile(t *testing.T) {
	dir := root(t)
	doc := composeDoc(t)
	services := doc.mustAt(t, "services")
	declared, _ := doc.at("volumes")

	var sentinels []string
	for _, name := range services.keys() {
		svc := services.mustAt(t, name)
		profiles, _ := svc.list("profiles")
		want := name == "redis-replica" || strings.HasPrefix(name, "sentinel-")
		if got := slices.Contains(profiles, sentinelProfile); got != want {
			t.Errorf("service %s: in profile %s = %v, want %v", name, sentinelProfile, got, want)
		}
		if !want {
			continue
		}
		if strings.HasPrefix(name, "sentinel-") {
			sentinels = append(sentinels, name)
		}
		if img, _ := svc.scalar("image"); !strings.HasPrefix(img, "redis:7") {
			t.Errorf("service %s image %q, want redis:7…", name, img)
		}
		if v, _ := svc.mustAt(t, "depends_on", "redis").scalar("condition"); v != "service_healthy" {
			t.Errorf("service %s depends_on redis condition %q, want service_healthy", name, v)
		}
		m := mounts(svc)
		if m["/data"] == "" || !slices.Contains(declared.keys(), m["/data"]) {
			t.Errorf("service %s keeps no declared volume at /data (mounts %v)", name, m)
		}
		for target, src := range m {
			if isBind(src) {
				if _, err := os.Stat(filepath.Join(dir, src)); err != nil {
					t.Errorf("service %s mounts %s at %s, which does not exist in the repository", name, src, target)
				}
			}
		}
		cmd, _ := svc.list("command")
		joined := strings.Join(cmd, " ")
		if name == "redis-replica" {
			if m["/etc/redis/replica.conf"] != "./"+replicaConfFile || !strings.Contains(joined, "/etc/redis/replica.conf") {
				t.Errorf("redis-replica does not run %s (command %q, mounts %v)", replicaConfFile, cmd, m)
			}
			continue
		}
		if m["/etc/redis/sentinel.conf"] != "./"+sentinelConfFile {
			t.Errorf("%s does not mount %s at /etc/redis/sentinel.conf (mounts %v)", name, sentinelConfFile, m)
		}
		// A writable copy, announced under the service's own name.
		for _, want := range []string{"cp /etc/redis/sentinel.conf /data/", "redis-server /data/sentinel.conf --sentinel", "--sentinel announce-ip " + name} {
			if !strings.Contains(joined, want) {
				t.Errorf("%s command %q lacks %q", name, cmd, want)
			}
		}
	}
	if len(sentinels) != 3 {
		t.Errorf("profile %s has %d sentinels %v, want 3", sentinelProfile, len(sentinels), sentinels)
	}

	// The primary announces its service name, for when it is a replica.
	redisCmd, _ := services.mustAt(t, "redis").list("command")
	if i := slices.Index(redisCmd, "--replica-announce-ip"); i < 0 || i+1 >= len(redisCmd) || redisCmd[i+1] != "redis" {
		t.Errorf("redis command %q does not set --replica-announce-ip redis", redisCmd)
	}

	replica := confLines(t, replicaConfFile)
	for _, want := range [][]string{
		{"replicaof", "redis", "6379"}, {"replica-announce-ip", "redis-replica"},
		{"appendonly", "yes"}, {"appendfsync", "everysec"}, {"maxmemory-policy", "noeviction"},
	} {
		if got, ok := directive(replica, want[0]); !ok || !slices.Equal(got, want[1:]) {
			t.Errorf("%s: %s %v, want %v", replicaConfFile, want[0], got, want[1:])
		}
	}

	sentinel := confLines(t, sentinelConfFile)
	for _, want := range [][]string{{"port", "26379"}, {"sentinel", "resolve-hostnames", "yes"}, {"sentinel", "announce-hostnames", "yes"}} {
		if got, ok := directive(sentinel, want[:len(want)-1]...); !ok || !slices.Equal(got, want[len(want)-1:]) {
			t.Errorf("%s: %s %v, want %v", sentinelConfFile, strings.Join(want[:len(want)-1], " "), got, want[len(want)-1:])
		}
	}
	monitor, ok := directive(sentinel, "sentinel", "monitor")
	if !ok || len(monitor) != 4 {
		t.Fatalf("%s: sentinel monitor %v, want NAME redis 6379 QUORUM", sentinelConfFile, monitor)
	}
	master := monitor[0]
	if monitor[1] != "redis" || monitor[2] != "6379" {
		t.Errorf("%s monitors %s:%s, want the redis service, redis:6379", sentinelConfFile, monitor[1], monitor[2])
	}
	if q, err := strconv.Atoi(monitor[3]); err != nil || q <= len(sentinels)/2 || q > len(sentinels) {
		t.Errorf("%s: quorum %s with %d sentinels, want a majority", sentinelConfFile, monitor[3], len(sentinels))
	}
	for _, d := range []string{"down-after-milliseconds", "failover-timeout", "parallel-syncs"} {
		if got, ok := directive(sentinel, "sentinel", d, master); !ok || len(got) != 1 {
			t.Errorf("%s: no sentinel %s for %s", sentinelConfFile, d, master)
		}
	}

	// The worker takes its URL from the variable the docs set.
	env, _ := services.mustAt(t, "worker").mapOrList("environment")
	m := composeVarRE.FindStringSubmatch(env["PAGESEND_REDIS_URL"])
	if m == nil {
		t.Fatalf("worker PAGESEND_REDIS_URL = %q, want ${VAR:-redis://redis:6379/0} for the profile to set", env["PAGESEND_REDIS_URL"])
	}
	urlRE := regexp.MustCompile(regexp.QuoteMeta(m[1]) + `=(redis-sentinel://\S+)`)
	docURL := urlRE.FindStringSubmatch(read(t, sentinelDocFile))
	if docURL == nil {
		t.Fatalf("%s does not set %s=redis-sentinel://…", sentinelDocFile, m[1])
	}
	if !strings.Contains(read(t, composeFile), m[1]+"="+docURL[1]) {
		t.Errorf("%s's comment does not show %s=%s as %s does", composeFile, m[1], docURL[1], sentinelDocFile)
	}
	opt, err := redisopt.ParseURL(docURL[1])
	if err != nil {
		t.Fatalf("%s: %s: %v", sentinelDocFile, m[1], err)
	}
	f := opt.(asynq.RedisFailoverClientOpt)
	var want []string
	for _, s := range sentinels {
		want = append(want, s+":26379")
	}
	if !slices.Equal(f.SentinelAddrs, want) || f.MasterName != master {
		t.Errorf("%s: %s names sentinels %v and master %q, want %v and %q", sentinelDocFile, m[1], f.SentinelAddrs, f.MasterName, want, master)
	}
}
