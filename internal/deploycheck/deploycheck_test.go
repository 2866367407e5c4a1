package deploycheck

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	dto "github.com/prometheus/client_model/go"

	"github.com/pagesend/pagesend/internal/pages"
	"github.com/pagesend/pagesend/metrics"
)

// Paths inside the repository.
const (
	alertsFile      = "deploy/prometheus/alerts.yml"
	alertTestsFile  = "deploy/prometheus/alerts_test.yml"
	prometheusFile  = "deploy/prometheus/prometheus.yml"
	dashboardFile   = "deploy/grafana/dashboards/pagesend.json"
	datasourcesFile = "deploy/grafana/provisioning/datasources/prometheus.yml"
	dashProvFile    = "deploy/grafana/provisioning/dashboards/dashboards.yml"
	composeFile     = "docker-compose.yml"
	dockerfile      = "Dockerfile"
	envExampleFile  = ".env.example"
	readmeFile      = "README.md"
)

// contractMetrics is the metric table of DESIGN.md ("Metrics every
// dashboard and alert relies on"): each must be watched by an alert rule
// or a dashboard panel. README.md's Metrics table, read by the test, may
// add more.
var contractMetrics = []string{
	"pagesend_messages_total",
	"pagesend_graph_errors_total",
	"pagesend_graph_request_duration_seconds",
	"pagesend_ratelimit_wait_seconds",
	"pagesend_page_paused",
	"pagesend_page_token_invalid",
}

// prometheusSynthetic are series Prometheus makes itself for every target.
var prometheusSynthetic = []string{"up", "scrape_duration_seconds", "scrape_samples_scraped"}

// requiredAlerts are the alerts the runbooks and docs refer to, with the
// severity each must carry.
var requiredAlerts = map[string]string{
	"PagesendPageTokenInvalid":    "critical",
	"PagesendPageThrottled":       "warning",
	"PagesendDeadLetterGrowth":    "warning",
	"PagesendQueueBacklogGrowing": "warning",
	"PagesendNoWorkerScraped":     "critical",
	"PagesendPagePaused":          "critical",
	"PagesendGraphErrorsHigh":     "warning",
}

// root is the repository root: the nearest directory above the test's
// working directory that holds go.mod.
func root(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the working directory")
		}
		dir = parent
	}
}

func read(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// registered gathers a registry built as the worker builds it
// (internal/app: metrics.NewRegistry, metrics.New, metrics.NewQueueCollector)
// and returns every metric family name with its type. Vectors and
// histograms without a series are absent from Gather, so each Metrics
// method is called once for a dummy Page first, and the queue collector
// reads a fake inspector with one readable and one failing queue (so its
// error counter has a series too).
func registered(t *testing.T) map[string]dto.MetricType {
	t.Helper()
	reg := metrics.NewRegistry("test")
	m := metrics.New(reg)
	const page = "deploycheck"
	m.Message(page, metrics.OutcomeSent)
	m.Rescheduled(page, metrics.ReasonRateLimit)
	m.GraphError(page, "613")
	m.GraphDuration(page, time.Millisecond)
	m.RateLimitWait(page, time.Millisecond)
	m.SetPaused(page, "throttled", true)
	m.SetTokenInvalid(page, true)
	m.DuplicateSuppressed(page)
	reg.MustRegister(metrics.NewQueueCollector(fakeInspector{}))

	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]dto.MetricType{}
	for _, f := range families {
		out[f.GetName()] = f.GetType()
	}
	// The queue collector must really export what it says it does.
	for _, name := range metrics.QueueMetricNames {
		if _, ok := out[name]; !ok {
			t.Errorf("metrics.QueueMetricNames lists %s but the queue collector did not export it", name)
		}
	}
	for _, name := range prometheusSynthetic {
		out[name] = dto.MetricType_GAUGE
	}
	return out
}

type fakeInspector struct{}

func (fakeInspector) Queues() ([]string, error) { return []string{"default", "broken"}, nil }

func (fakeInspector) GetQueueInfo(q string) (*asynq.QueueInfo, error) {
	if q == "broken" {
		return nil, errors.New("NOSCRIPT: simulated failure")
	}
	return &asynq.QueueInfo{Queue: q, Size: 3, Pending: 2, Archived: 1, Latency: time.Second}, nil
}

// resolve maps a name used in PromQL to the registered family it reads:
// itself, or a histogram's or summary's _bucket/_sum/_count series.
func resolve(name string, reg map[string]dto.MetricType) (string, bool) {
	if _, ok := reg[name]; ok {
		return name, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		typ, known := reg[base]
		if known && (typ == dto.MetricType_HISTOGRAM || typ == dto.MetricType_SUMMARY ||
			(suffix != "_bucket" && typ == dto.MetricType_GAUGE_HISTOGRAM)) {
			return base, true
		}
	}
	return "", false
}

// --- alert rules -----------------------------------------------------------

func alertRules(t *testing.T) []rule {
	t.Helper()
	rules, err := parseRules(read(t, alertsFile))
	if err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}
	if len(rules) == 0 {
		t.Fatalf("%s: no rules found", alertsFile)
	}
	return rules
}

func TestAlertRules(t *testing.T) {
	rules := alertRules(t)
	seen := map[string]bool{}
	for _, r := range rules {
		where := fmt.Sprintf("%s:%d %s", alertsFile, r.line, r.name)
		if seen[r.name] {
			t.Errorf("%s: duplicate rule name", where)
		}
		seen[r.name] = true
		if r.fields["alert"] == "" {
			continue // a recording rule
		}
		if !strings.HasPrefix(r.name, "Pagesend") {
			t.Errorf("%s: alert names start with Pagesend", where)
		}
		if strings.TrimSpace(r.fields["expr"]) == "" {
			t.Errorf("%s: no expr", where)
		}
		switch sev := r.fields["severity"]; sev {
		case "critical", "warning", "info":
		default:
			t.Errorf("%s: severity %q, want critical, warning or info", where, sev)
		}
		for _, k := range []string{"summary", "description", "runbook"} {
			if len(strings.TrimSpace(r.fields[k])) < 10 {
				t.Errorf("%s: annotation %s missing or too short", where, k)
			}
		}
		if f, ok := r.fields["for"]; ok && !regexp.MustCompile(`^(\d+[smhdwy])+$`).MatchString(f) {
			t.Errorf("%s: for: %q is not a duration", where, f)
		}
	}
	byName := map[string]rule{}
	for _, r := range rules {
		byName[r.name] = r
	}
	for name, sev := range requiredAlerts {
		r, ok := byName[name]
		if !ok {
			t.Errorf("%s: alert %s is missing", alertsFile, name)
			continue
		}
		if r.fields["severity"] != sev {
			t.Errorf("%s: severity %q, want %q", name, r.fields["severity"], sev)
		}
	}

	// Specifics the docs promise.
	tok := byName["PagesendPageTokenInvalid"].fields
	if !strings.Contains(tok["expr"], "pagesend_page_token_invalid") || !strings.Contains(tok["expr"], "== 1") {
		t.Errorf("PagesendPageTokenInvalid expr %q does not test pagesend_page_token_invalid == 1", tok["expr"])
	}
	if tok["for"] != "0m" {
		t.Errorf("PagesendPageTokenInvalid for: %q, want 0m (fire at once)", tok["for"])
	}
	for _, want := range []string{"{{ $labels.page_id }}", "SIGHUP", "pagesend pages resume"} {
		if !strings.Contains(tok["summary"]+tok["description"]+tok["runbook"], want) {
			t.Errorf("PagesendPageTokenInvalid annotations do not mention %q", want)
		}
	}
	for _, code := range []string{"613", "4", "17", "32", "80001", "80006"} {
		if !regexp.MustCompile(`code=~"[^"]*\b` + code + `\b`).MatchString(byName["PagesendPageThrottled"].fields["expr"]) {
			t.Errorf("PagesendPageThrottled does not match throttling code %s", code)
		}
	}
	if !strings.Contains(byName["PagesendPagePaused"].fields["expr"], `reason="policy"`) {
		t.Error(`PagesendPagePaused does not select reason="policy"`)
	}
	dl := byName["PagesendDeadLetterGrowth"].fields
	if !strings.Contains(dl["expr"], `outcome="dead_lettered"`) && !strings.Contains(dl["expr"], `state="archived"`) {
		t.Error("PagesendDeadLetterGrowth watches neither dead_lettered messages nor archived tasks")
	}
	if !strings.Contains(dl["description"]+dl["runbook"], "10,000") {
		t.Error("PagesendDeadLetterGrowth does not warn about asynq's 10,000-task archive cap")
	}
	// asynq_* series are the same shared queues seen by every replica:
	// summing them over instances multiplies them by the replica count.
	sumAsynq := regexp.MustCompile(`\bsum\s*(?:(?:by|without)\s*\([^)]*\)\s*)?\(\s*(?:[a-z_]+\s*\(\s*)*asynq_`)
	for _, r := range rules {
		if sumAsynq.MatchString(r.fields["expr"]) {
			t.Errorf("%s: sums asynq_* over replicas; use max by (queue)", r.name)
		}
	}
}

// --- dashboard -------------------------------------------------------------

type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Datasource *datasourceRef  `json:"datasource"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource *datasourceRef `json:"datasource"`
	Targets    []struct {
		RefID      string         `json:"refId"`
		Expr       string         `json:"expr"`
		Datasource *datasourceRef `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's panels
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	var d dashboard
	if err := json.Unmarshal([]byte(read(t, dashboardFile)), &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// allPanels flattens rows' nested panels.
func (d dashboard) allPanels() []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// queries returns every PromQL string of the dashboard: panel targets and
// query variables (a plain string, or the {"query": …} object of newer
// Grafana versions), keyed by where they are.
func (d dashboard) queries(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range d.allPanels() {
		for _, tg := range p.Targets {
			out[fmt.Sprintf("panel %d %q target %s", p.ID, p.Title, tg.RefID)] = tg.Expr
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q string
		if err := json.Unmarshal(v.Query, &q); err != nil {
			var obj struct {
				Query string `json:"query"`
			}
			if err := json.Unmarshal(v.Query, &obj); err != nil {
				t.Errorf("variable %s: query is neither a string nor {\"query\": …}", v.Name)
			}
			q = obj.Query
		}
		out["variable "+v.Name] = q
		if v.Definition != "" && v.Definition != q {
			t.Errorf("variable %s: definition %q differs from query %q", v.Name, v.Definition, q)
		}
	}
	return out
}

func TestDashboard(t *testing.T) {
	d := loadDashboard(t)
	if d.UID != "pagesend" {
		t.Errorf("uid = %q, want pagesend", d.UID)
	}
	if d.Title == "" {
		t.Error("no title")
	}
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion = %d, want ≥ 36 (datasource references by uid)", d.SchemaVersion)
	}
	ids := map[int]bool{}
	nonRow := 0
	for _, p := range d.allPanels() {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Title == "" {
			t.Errorf("panel %d has no title", p.ID)
		}
		if p.Type == "row" {
			continue
		}
		nonRow++
		if p.Datasource == nil || p.Datasource.UID != "prometheus" {
			t.Errorf("panel %d %q: datasource %+v, want uid prometheus", p.ID, p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %d %q has no target", p.ID, p.Title)
		}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %d %q target %s has no expr", p.ID, p.Title, tg.RefID)
			}
			if tg.Datasource != nil && tg.Datasource.UID != "prometheus" {
				t.Errorf("panel %d %q target %s: datasource uid %q", p.ID, p.Title, tg.RefID, tg.Datasource.UID)
			}
		}
	}
	if nonRow == 0 {
		t.Fatal("no panels")
	}

	q := d.queries(t)
	if got := q["variable page_id"]; got != "label_values(pagesend_messages_total, page_id)" {
		t.Errorf("variable page_id query = %q, want label_values(pagesend_messages_total, page_id)", got)
	}
	perPage := 0
	for _, expr := range q {
		if strings.Contains(expr, "$page_id") {
			perPage++
		}
	}
	if perPage < 3 {
		t.Errorf("only %d queries use $page_id", perPage)
	}
	// Panels the runbooks point at.
	titles := map[string]bool{}
	for _, p := range d.allPanels() {
		titles[p.Title] = true
	}
	for _, want := range []string{"Send rate by outcome", "Graph error codes", "Graph API latency", "Rate-limit wait",
		"Rescheduled by reason", "Queue depth by state", "Queue latency", "Paused Pages", "Pages with an invalid token"} {
		if !titles[want] {
			t.Errorf("no panel titled %q", want)
		}
	}
}

// --- metric names ----------------------------------------------------------

// usedMetrics maps every metric family the rules and the dashboard read to
// the places that read it, and reports names the worker does not register.
func usedMetrics(t *testing.T) map[string][]string {
	t.Helper()
	reg := registered(t)
	used := map[string][]string{}
	check := func(where, expr string) {
		names, err := metricNames(expr)
		if err != nil {
			t.Errorf("%s: %v", where, err)
			return
		}
		for _, n := range names {
			fam, ok := resolve(n, reg)
			if !ok {
				t.Errorf("%s uses %s, which the worker does not register (typo, or a metric renamed?)", where, n)
				continue
			}
			used[fam] = append(used[fam], where)
		}
	}
	for _, r := range alertRules(t) {
		check(fmt.Sprintf("%s: %s", alertsFile, r.name), r.fields["expr"])
	}
	for where, expr := range loadDashboard(t).queries(t) {
		check(dashboardFile+": "+where, expr)
	}
	return used
}

func TestMetricNamesAreRegistered(t *testing.T) {
	used := usedMetrics(t)
	if len(used) < len(contractMetrics) {
		t.Fatalf("only %d metric names found in the rules and dashboard", len(used))
	}
	contract := slices.Clone(contractMetrics)
	readme := readmeMetrics(t)
	if len(readme) < len(contractMetrics) {
		t.Errorf("%s: read only %d metrics from its Metrics table (%v)", readmeFile, len(readme), readme)
	}
	for _, n := range readme {
		if !slices.Contains(contract, n) {
			contract = append(contract, n)
		}
	}
	for _, n := range contract {
		if len(used[n]) == 0 {
			t.Errorf("contract metric %s is used by no alert rule and no dashboard panel", n)
		}
	}
	if testing.Verbose() {
		names := make([]string, 0, len(used))
		for n := range used {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			t.Logf("%-45s %d uses", n, len(used[n]))
		}
	}
}

// readmeMetrics reads the metric names of README.md's "## Metrics" table.
func readmeMetrics(t *testing.T) []string {
	t.Helper()
	_, after, ok := strings.Cut(read(t, readmeFile), "\n## Metrics\n")
	if !ok {
		t.Errorf("%s has no ## Metrics section", readmeFile)
		return nil
	}
	section, _, _ := strings.Cut(after, "\n## ")
	var out []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_:][a-z0-9_:]*)` \\|").FindAllStringSubmatch(section, -1) {
		out = append(out, m[1])
	}
	return out
}

// --- compose, Prometheus and Grafana provisioning ---------------------------

func composeDoc(t *testing.T) ynode {
	t.Helper()
	doc := parseYAMLish(read(t, composeFile))
	if len(doc) == 0 {
		t.Fatalf("%s is empty", composeFile)
	}
	return doc
}

// publishedPorts returns the host ports of a compose service's ports list
// ("9090:9090", "127.0.0.1:6379:6379", "3000:3000/tcp") mapped to their
// container ports.
func publishedPorts(svc ynode) map[string]string {
	ports, _ := svc.list("ports")
	out := map[string]string{}
	for _, p := range ports {
		p, _, _ = strings.Cut(p, "/")
		parts := strings.Split(p, ":")
		if len(parts) >= 2 {
			out[parts[len(parts)-2]] = parts[len(parts)-1]
		}
	}
	return out
}

// mounts returns a service's short-syntax volumes as target → source.
func mounts(svc ynode) map[string]string {
	vols, _ := svc.list("volumes")
	out := map[string]string{}
	for _, v := range vols {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 {
			out[parts[1]] = parts[0]
		}
	}
	return out
}

func isBind(source string) bool {
	return strings.HasPrefix(source, ".") || strings.HasPrefix(source, "/") || strings.HasPrefix(source, "~")
}

func TestCompose(t *testing.T) {
	dir := root(t)
	doc := composeDoc(t)
	services, ok := doc.at("services")
	if !ok {
		t.Fatal("no services")
	}
	want := map[string][]string{
		"redis":      {"image", "command", "volumes", "healthcheck"},
		"worker":     {"build", "command", "environment", "env_file", "volumes", "deploy", "depends_on"},
		"prometheus": {"image", "command", "volumes", "ports"},
		"grafana":    {"image", "environment", "volumes", "ports", "depends_on"},
	}
	svc := map[string]ynode{}
	for name, keys := range want {
		s, ok := services.at(name)
		if !ok {
			t.Errorf("service %s is missing", name)
			continue
		}
		svc[name] = s
		for _, k := range keys {
			if !slices.Contains(s.keys(), k) {
				t.Errorf("service %s has no %s", name, k)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// Volumes: bind sources exist in the repository, named ones are declared.
	declared, _ := doc.at("volumes")
	for name, s := range svc {
		vols, _ := s.list("volumes")
		for _, v := range vols {
			src, _, _ := strings.Cut(v, ":")
			switch {
			case strings.HasPrefix(src, "/") || strings.HasPrefix(src, "~"):
				t.Errorf("service %s mounts %s: use a path relative to the repository", name, src)
			case isBind(src):
				if _, err := os.Stat(filepath.Join(dir, src)); err != nil {
					t.Errorf("service %s mounts %s, which does not exist in the repository", name, src)
				}
			default:
				if !slices.Contains(declared.keys(), src) {
					t.Errorf("service %s uses volume %s, not declared under top-level volumes", name, src)
				}
			}
		}
	}

	// redis: Redis 7, durable, with a health check the worker waits for.
	redis := svc["redis"]
	if img, _ := redis.scalar("image"); !strings.HasPrefix(img, "redis:7") {
		t.Errorf("redis image %q, want redis:7…", img)
	}
	cmd, _ := redis.list("command")
	if i := slices.Index(cmd, "--appendonly"); i < 0 || i+1 >= len(cmd) || cmd[i+1] != "yes" {
		t.Errorf("redis command %q does not turn on --appendonly yes", cmd)
	}
	if i := slices.Index(cmd, "--appendfsync"); i < 0 || i+1 >= len(cmd) || cmd[i+1] != "everysec" {
		t.Errorf("redis command %q does not set --appendfsync everysec", cmd)
	}
	if m := mounts(redis); m["/data"] == "" {
		t.Error("redis keeps no volume at /data: the queues would not survive a restart")
	}
	if test, _ := redis.mustAt(t, "healthcheck").list("test"); !slices.Contains(test, "redis-cli") || !slices.Contains(test, "ping") {
		t.Errorf("redis healthcheck %q is not redis-cli ping", test)
	}

	// worker: built from the Dockerfile, configured like the README says.
	worker := svc["worker"]
	ctxDir, dockerfileName := ".", "Dockerfile"
	if v, _ := worker.scalar("build"); v != "" {
		ctxDir = v
	} else {
		b := worker.mustAt(t, "build")
		if v, ok := b.scalar("context"); ok {
			ctxDir = v
		}
		if v, ok := b.scalar("dockerfile"); ok {
			dockerfileName = v
		}
	}
	if filepath.Clean(ctxDir) != "." || dockerfileName != dockerfile {
		t.Errorf("worker builds %s in %s, want %s in the repository root", dockerfileName, ctxDir, dockerfile)
	}
	if _, err := os.Stat(filepath.Join(dir, ctxDir, dockerfileName)); err != nil {
		t.Errorf("worker's Dockerfile: %v", err)
	}
	if c, _ := worker.list("command"); !slices.Equal(c, []string{"worker"}) {
		t.Errorf("worker command %q, want [worker]", c)
	}
	env, _ := worker.mapOrList("environment")
	for k, v := range map[string]string{
		"PAGESEND_REDIS_URL":  "redis://redis:6379/0",
		"PAGESEND_PAGES_FILE": "/etc/pagesend/pages.json",
		"PAGESEND_OPS_ADDR":   ":9321",
	} {
		// ${VAR:-default}: the value without VAR set (the sentinel
		// profile sets WORKER_REDIS_URL; see sentinel_test.go).
		if composeDefault(env[k]) != v {
			t.Errorf("worker %s = %q, want %q", k, env[k], v)
		}
	}
	for k := range env {
		if strings.Contains(k, "TOKEN") || strings.Contains(k, "SECRET") {
			t.Errorf("worker sets %s in docker-compose.yml: secrets belong in .env", k)
		}
	}
	pagesSrc := mounts(worker)[env["PAGESEND_PAGES_FILE"]]
	if pagesSrc == "" {
		t.Errorf("nothing mounted at PAGESEND_PAGES_FILE %s", env["PAGESEND_PAGES_FILE"])
	} else if vols, _ := worker.list("volumes"); !slices.ContainsFunc(vols, func(v string) bool {
		return strings.HasPrefix(v, pagesSrc+":") && strings.HasSuffix(v, ":ro")
	}) {
		t.Errorf("the pages file %s is not mounted read-only", pagesSrc)
	}
	envFiles, nodes := worker.mustAt(t, "env_file").items()
	usesDotEnv := false
	for i := range envFiles {
		p := envFiles[i]
		if nodes[i] != nil {
			p, _ = nodes[i].scalar("path")
		}
		usesDotEnv = usesDotEnv || p == ".env"
	}
	if v, _ := worker.scalar("env_file"); v == ".env" {
		usesDotEnv = true
	}
	if !usesDotEnv {
		t.Error("worker does not read .env (env_file) for its secrets")
	}
	replicas := 1
	if v, ok := worker.mustAt(t, "deploy").scalar("replicas"); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Errorf("deploy.replicas %q: %v", v, err)
		}
		replicas = n
	}
	if replicas < 2 {
		t.Errorf("worker replicas = %d, want ≥ 2 (the fleet-wide rate limit is the point)", replicas)
	}
	// With several replicas, each needs its own host port: a range at
	// least as wide as the replica count, else they collide.
	if ports, ok := worker.list("ports"); ok && replicas > 1 {
		for _, p := range ports {
			m := regexp.MustCompile(`(\d+)-(\d+):9321`).FindStringSubmatch(p)
			if m == nil {
				t.Errorf("worker publishes %s, a single host port, with %d replicas: they would collide", p, replicas)
				continue
			}
			lo, _ := strconv.Atoi(m[1])
			hi, _ := strconv.Atoi(m[2])
			if hi-lo+1 < replicas {
				t.Errorf("worker host port range %s-%s is narrower than %d replicas", m[1], m[2], replicas)
			}
		}
	}
	if v, _ := worker.mustAt(t, "depends_on", "redis").scalar("condition"); v != "service_healthy" {
		t.Errorf("worker depends_on redis condition %q, want service_healthy", v)
	}

	// Prometheus and Grafana are published on their usual ports.
	for name, port := range map[string]string{"prometheus": "9090", "grafana": "3000"} {
		if got := publishedPorts(svc[name])[port]; got != port {
			t.Errorf("%s does not publish port %s (ports %v)", name, port, publishedPorts(svc[name]))
		}
	}
	if deps, _ := svc["grafana"].list("depends_on"); !slices.Contains(deps, "prometheus") {
		if _, ok := svc["grafana"].at("depends_on", "prometheus"); !ok {
			t.Error("grafana does not depend on prometheus")
		}
	}

	checkPrometheus(t, svc["prometheus"], env["PAGESEND_OPS_ADDR"])
	checkGrafana(t, svc["grafana"])
}

// checkPrometheus ties prometheus.yml to the compose file: the config is
// where the container reads it, its rule files exist next to it, and the
// scrape job finds every worker replica on the ops port.
func checkPrometheus(t *testing.T, svc ynode, opsAddr string) {
	t.Helper()
	dir := root(t)
	cmd, _ := svc.list("command")
	configPath := "/etc/prometheus/prometheus.yml" // the image's default
	for _, a := range cmd {
		if v, ok := strings.CutPrefix(a, "--config.file="); ok {
			configPath = v
		}
	}
	src := mounts(svc)[filepath.Dir(configPath)]
	if src == "" || filepath.Join(src, filepath.Base(configPath)) != filepath.Clean(prometheusFile) {
		t.Errorf("prometheus reads %s, but %s is not mounted there (mounts %v)", configPath, prometheusFile, mounts(svc))
	}

	cfg := parseYAMLish(read(t, prometheusFile))
	if v, _ := cfg.mustAt(t, "global").scalar("scrape_interval"); v != "15s" {
		t.Errorf("global scrape_interval = %q, want 15s", v)
	}
	ruleFiles, _ := cfg.list("rule_files")
	if !slices.Contains(ruleFiles, filepath.Base(alertsFile)) {
		t.Errorf("rule_files %q does not load %s", ruleFiles, filepath.Base(alertsFile))
	}
	for _, f := range ruleFiles {
		if filepath.IsAbs(f) {
			t.Errorf("rule_files entry %s is absolute: keep it relative to prometheus.yml so it resolves in the repository and the container", f)
		} else if m, _ := filepath.Glob(filepath.Join(dir, filepath.Dir(prometheusFile), f)); len(m) == 0 {
			t.Errorf("rule_files entry %s matches no file next to %s", f, prometheusFile)
		}
	}

	_, port, _ := strings.Cut(opsAddr, ":")
	_, jobs := cfg.mustAt(t, "scrape_configs").items()
	var job ynode
	for _, j := range jobs {
		if name, _ := j.scalar("job_name"); name == "pagesend" {
			job = j
		}
	}
	if job == nil {
		t.Fatal(`prometheus.yml has no job_name: pagesend (the alerts select up{job="pagesend"})`)
	}
	if p, ok := job.scalar("metrics_path"); ok && p != "/metrics" {
		t.Errorf("pagesend job metrics_path = %q, want /metrics", p)
	}
	found := false
	if _, sds := job.mustAtOr("dns_sd_configs").items(); len(sds) > 0 {
		for _, sd := range sds {
			names, _ := sd.list("names")
			typ, _ := sd.scalar("type")
			p, _ := sd.scalar("port")
			if slices.Contains(names, "worker") && (typ == "A" || typ == "AAAA") && p == port {
				found = true
			}
		}
	}
	_, statics := job.mustAtOr("static_configs").items()
	for _, sc := range statics {
		targets, _ := sc.list("targets")
		found = found || slices.Contains(targets, "worker:"+port)
	}
	if !found {
		t.Errorf("the pagesend job neither resolves the worker service (dns_sd_configs type A, port %s) nor scrapes worker:%s", port, port)
	}
	// Alert expressions select the same job name.
	for _, r := range alertRules(t) {
		for _, m := range regexp.MustCompile(`job="([^"]*)"`).FindAllStringSubmatch(r.fields["expr"], -1) {
			if m[1] != "pagesend" {
				t.Errorf("%s selects job %q, but the scrape job is pagesend", r.name, m[1])
			}
		}
	}
}

// mustAtOr is at without failing: an empty node when the path is absent.
func (b ynode) mustAtOr(keys ...string) ynode {
	n, _ := b.at(keys...)
	return n
}

// checkGrafana ties Grafana's provisioning to the compose file and to the
// dashboard's datasource uid.
func checkGrafana(t *testing.T, svc ynode) {
	t.Helper()
	m := mounts(svc)
	if src := m["/etc/grafana/provisioning"]; filepath.Clean(src) != "deploy/grafana/provisioning" {
		t.Errorf("grafana provisioning mount source %q, want ./deploy/grafana/provisioning", src)
	}

	ds := parseYAMLish(read(t, datasourcesFile))
	_, items := ds.mustAt(t, "datasources").items()
	ok := false
	for _, d := range items {
		uid, _ := d.scalar("uid")
		typ, _ := d.scalar("type")
		url, _ := d.scalar("url")
		if uid == "prometheus" && typ == "prometheus" {
			ok = true
			if url != "http://prometheus:9090" {
				t.Errorf("datasource prometheus url %q, want http://prometheus:9090 (the compose service)", url)
			}
		}
	}
	if !ok {
		t.Errorf("%s has no prometheus datasource with uid prometheus", datasourcesFile)
	}

	prov := parseYAMLish(read(t, dashProvFile))
	_, providers := prov.mustAt(t, "providers").items()
	if len(providers) == 0 {
		t.Fatalf("%s has no providers", dashProvFile)
	}
	path, _ := providers[0].mustAt(t, "options").scalar("path")
	if typ, _ := providers[0].scalar("type"); typ != "file" {
		t.Errorf("dashboard provider type %q, want file", typ)
	}
	if src := m[path]; filepath.Clean(src) != filepath.Dir(dashboardFile) {
		t.Errorf("dashboards are read from %s, where %s is not mounted (mounts %v)", path, filepath.Dir(dashboardFile), m)
	}
	env, _ := svc.mapOrList("environment")
	if home := env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]; home != "" && home != path+"/"+filepath.Base(dashboardFile) {
		t.Errorf("home dashboard %s is not the provisioned %s", home, path+"/"+filepath.Base(dashboardFile))
	}
}

// --- image and example configuration ---------------------------------------

func TestDockerfile(t *testing.T) {
	df := read(t, dockerfile)
	gomod := read(t, "go.mod")
	goVer := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(gomod)
	if goVer == nil {
		t.Fatal("go.mod has no go directive")
	}
	froms := regexp.MustCompile(`(?m)^FROM\s+(\S+)`).FindAllStringSubmatch(df, -1)
	if len(froms) < 2 {
		t.Fatalf("want a multi-stage build, found %d FROM lines", len(froms))
	}
	if b := froms[0][1]; !strings.HasPrefix(b, "golang:"+goVer[1]) {
		t.Errorf("builder image %s does not match go.mod's go %s", b, goVer[1])
	}
	final := froms[len(froms)-1][1]
	if !strings.HasPrefix(final, "gcr.io/distroless/static") && final != "scratch" {
		t.Errorf("final image %s, want distroless/static or scratch", final)
	}
	nonroot := strings.HasSuffix(final, ":nonroot")
	_, lastStage, _ := strings.Cut(df, froms[len(froms)-1][0])
	if u := regexp.MustCompile(`(?m)^USER\s+(\S+)`).FindStringSubmatch(lastStage); u != nil {
		nonroot = !strings.HasPrefix(u[1], "0") && !strings.HasPrefix(u[1], "root")
	}
	if !nonroot {
		t.Error("the final image runs as root")
	}
	for _, want := range []string{
		"CGO_ENABLED=0", "-trimpath", "main.version=${VERSION}", "./cmd/pagesend",
		"EXPOSE 9321", `ENTRYPOINT ["/pagesend"]`, `CMD ["worker"]`,
	} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %s", want)
		}
	}
	modCopy := regexp.MustCompile(`(?m)^COPY\s+go\.mod\s+go\.sum`).FindStringIndex(df)
	download := strings.Index(df, "go mod download")
	allCopy := regexp.MustCompile(`(?m)^COPY\s+\.\s+\.`).FindStringIndex(df)
	if modCopy == nil || download < 0 || allCopy == nil || !(modCopy[0] < download && download < allCopy[0]) {
		t.Error("want COPY go.mod go.sum, then go mod download, then COPY . . (a cached module layer)")
	}
	ignore := strings.Fields(read(t, ".dockerignore"))
	for _, want := range []string{".git", "bin", ".env"} {
		if !slices.Contains(ignore, want) {
			t.Errorf(".dockerignore does not exclude %s", want)
		}
	}
}

func TestExamplePagesFile(t *testing.T) {
	dir := root(t)
	src := mounts(composeDoc(t).mustAt(t, "services", "worker"))["/etc/pagesend/pages.json"]
	if src == "" {
		t.Fatal("no pages file mounted into the worker")
	}
	raw := read(t, src)
	if strings.Contains(raw, `"access_token"`) {
		t.Errorf("%s holds an access_token: use access_token_env, tokens belong in .env", src)
	}
	cfg, err := pages.LoadFile(filepath.Join(dir, src), func(string) string { return "" })
	if err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	if len(cfg.PageIDs()) == 0 {
		t.Errorf("%s configures no Page", src)
	}

	example := read(t, envExampleFile)
	vars := map[string]string{}
	for _, line := range strings.Split(example, "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "#"))
		if k, v, ok := strings.Cut(line, "="); ok && regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`).MatchString(k) {
			vars[k] = v
		}
	}
	var file struct {
		Pages []struct {
			ID             string `json:"id"`
			AccessTokenEnv string `json:"access_token_env"`
		} `json:"pages"`
	}
	if err := json.Unmarshal([]byte(raw), &file); err != nil {
		t.Fatal(err)
	}
	for _, p := range file.Pages {
		if p.AccessTokenEnv == "" {
			t.Errorf("page %s has no access_token_env", p.ID)
			continue
		}
		v, ok := vars[p.AccessTokenEnv]
		if !ok {
			t.Errorf("%s does not document %s (the token of page %s)", envExampleFile, p.AccessTokenEnv, p.ID)
		} else if v != "" {
			t.Errorf("%s gives %s a value: leave tokens empty in the example", envExampleFile, p.AccessTokenEnv)
		}
	}
	for _, want := range []string{"PAGESEND_APP_SECRET", "GRAFANA_ADMIN_PASSWORD"} {
		if _, ok := vars[want]; !ok {
			t.Errorf("%s does not document %s", envExampleFile, want)
		}
	}
	if v := vars["PAGESEND_APP_SECRET"]; v != "" {
		t.Errorf("%s gives PAGESEND_APP_SECRET a value", envExampleFile)
	}
}

// --- promtool --------------------------------------------------------------

func TestPromtool(t *testing.T) {
	dir := root(t)
	run := func(t *testing.T, args ...string) {
		t.Helper()
		path, err := exec.LookPath("promtool")
		if err != nil {
			t.Skip("promtool not installed (apt-get install prometheus); skipping " + strings.Join(args, " "))
		}
		cmd := exec.Command(path, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
	}
	t.Run("check rules", func(t *testing.T) { run(t, "check", "rules", alertsFile) })
	t.Run("check config", func(t *testing.T) { run(t, "check", "config", prometheusFile) })
	t.Run("test rules", func(t *testing.T) { run(t, "test", "rules", alertTestsFile) })
	t.Run("dashboard queries parse", func(t *testing.T) {
		// Each dashboard query as a recording rule, Grafana variables
		// replaced by values, so promtool parses them too.
		type rec struct {
			Record string `json:"record"`
			Expr   string `json:"expr"`
		}
		var recs []rec
		vars := strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h", "$page_id", ".*")
		q := loadDashboard(t).queries(t)
		keys := make([]string, 0, len(q))
		for k := range q {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			if strings.HasPrefix(q[k], "label_values(") {
				continue // Grafana's, not PromQL
			}
			recs = append(recs, rec{Record: fmt.Sprintf("dashboard:query_%d", i), Expr: vars.Replace(q[k])})
		}
		file := map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": recs}}}
		b, err := json.Marshal(file) // JSON is YAML
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), "dashboard-rules.yml")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		run(t, "check", "rules", p)
	})
}
