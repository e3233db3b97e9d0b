// Package deploy holds deployment files (Dockerfiles, compose, the
// Grafana dashboard, Prometheus alerting rules); its test checks the
// dashboard and the rules against docs/metrics.md.
package deploy

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// documented returns the names of docs/metrics.md's tables and their
// types (histogram, counter, gauge).
func documented(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	re := regexp.MustCompile("(?m)^\\| `(shoal_[a-z_]+)` \\| ([a-z]+) \\|")
	for _, m := range re.FindAllStringSubmatch(string(data), -1) {
		out[m[1]] = m[2]
	}
	if len(out) < 50 {
		t.Fatalf("only %d names in docs/metrics.md", len(out))
	}
	return out
}

var metricRef = regexp.MustCompile(`\bshoal_[a-z_]+\b`)

// undocumented returns the shoal_ names expr uses that docs/metrics.md
// does not list (a histogram's _bucket, _sum and _count series count as
// its name), and the number of names it uses.
func undocumented(expr string, doc map[string]string) (bad []string, n int) {
	for _, name := range metricRef.FindAllString(expr, -1) {
		n++
		if doc[name] != "" {
			continue
		}
		base := name
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(name, suf); ok && doc[b] == "histogram" {
				base = b
			}
		}
		if doc[base] == "" {
			bad = append(bad, name)
		}
	}
	return bad, n
}

type dashboard struct {
	Title      string  `json:"title"`
	UID        string  `json:"uid"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	GridPos struct{ H, W, X, Y int } `json:"gridPos"`
}

// TestGrafanaDashboard parses the dashboard: unique panel ids, every
// graph panel has queries, every query names documented metrics only,
// and the panels the dashboard promises are there.
func TestGrafanaDashboard(t *testing.T) {
	data, err := os.ReadFile("grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	if d.Title == "" || d.UID == "" {
		t.Fatal("no title or uid")
	}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}
	doc := documented(t)
	ids := map[int]bool{}
	titles := map[string]bool{}
	used := map[string]bool{}
	varRef := regexp.MustCompile(`\$(\w+)`)
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		titles[p.Title] = true
		if p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: grid position %+v", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			bad, n := undocumented(tg.Expr, doc)
			if n == 0 {
				t.Errorf("panel %q query %s uses no shoal_ metric: %s", p.Title, tg.RefID, tg.Expr)
			}
			if len(bad) > 0 {
				t.Errorf("panel %q uses names not in docs/metrics.md: %v", p.Title, bad)
			}
			for _, m := range metricRef.FindAllString(tg.Expr, -1) {
				used[m] = true
			}
			for _, m := range varRef.FindAllStringSubmatch(tg.Expr, -1) {
				if !vars[m[1]] && !strings.HasPrefix(m[1], "__") {
					t.Errorf("panel %q: undefined variable $%s", p.Title, m[1])
				}
			}
		}
	}
	// What the dashboard is for (issue 9): ops/s, latency p99, memory,
	// clients, replication lag, migrations, failovers, proxy errors.
	for _, m := range []string{
		"shoal_server_command_duration_seconds_count", "shoal_server_command_duration_seconds_bucket",
		"shoal_proxy_command_duration_seconds_bucket", "shoal_server_memory_used_bytes", "shoal_server_memory_max_bytes",
		"shoal_server_connected_clients", "shoal_server_replica_lag_seconds", "shoal_manager_migrations_in_progress",
		"shoal_server_migration_sent_bytes_total", "shoal_manager_failovers_total", "shoal_proxy_backend_errors_total",
	} {
		if !used[m] {
			t.Errorf("no panel uses %s", m)
		}
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// TestPrometheusAlerts parses the alerting rules: every rule has a
// name, an expression over documented metrics only, a valid duration,
// a severity and a summary; the alerts the issue asks for exist.
func TestPrometheusAlerts(t *testing.T) {
	data, err := os.ReadFile("prometheus-alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&rf); err != nil {
		t.Fatalf("prometheus-alerts.yml: %v", err)
	}
	doc := documented(t)
	alerts := map[string]bool{}
	for _, g := range rf.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q: no name or no rules", g.Name)
		}
		for _, r := range g.Rules {
			if r.Alert == "" || alerts[r.Alert] {
				t.Errorf("group %s: alert name %q missing or repeated", g.Name, r.Alert)
			}
			alerts[r.Alert] = true
			bad, n := undocumented(r.Expr, doc)
			if n == 0 {
				t.Errorf("%s uses no shoal_ metric: %s", r.Alert, r.Expr)
			}
			if len(bad) > 0 {
				t.Errorf("%s uses names not in docs/metrics.md: %v", r.Alert, bad)
			}
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("%s: for %q: %v", r.Alert, r.For, err)
				}
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: severity %q", r.Alert, s)
			}
			if r.Annotations["summary"] == "" {
				t.Errorf("%s: no summary", r.Alert)
			}
		}
	}
	var names []string
	for n := range alerts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, want := range []string{"ShoalPrimaryDown", "ShoalPrimaryWithoutLease", "ShoalReplicaLagHigh",
		"ShoalMemoryNearMax", "ShoalMigrationStuck", "ShoalManagerWithoutLeader"} {
		if !alerts[want] {
			t.Errorf("no alert %s (have %v)", want, names)
		}
	}
}

// TestPromtoolCheckRules runs `promtool check rules` when promtool is
// installed (Debian: the prometheus package) on the alerting rules, and
// on the dashboard's queries made recording rules (Grafana's variables
// replaced by values), so that both parse as PromQL.
func TestPromtoolCheckRules(t *testing.T) {
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not in PATH")
	}
	out, err := exec.Command(path, "check", "rules", "prometheus-alerts.yml").CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	t.Logf("%s", out)

	data, err := os.ReadFile("grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	vars := strings.NewReplacer("$__rate_interval", "1m", "$__range", "1h",
		"$server_job", ".*", "$manager_job", ".*", "$proxy_job", ".*")
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			rules = append(rules, rule{Record: "dashboard:panel" + strconv.Itoa(p.ID) + ":" + tg.RefID, Expr: vars.Replace(tg.Expr)})
		}
	}
	b, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(path, "check", "rules", f).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules (the dashboard's queries): %v\n%s", err, out)
	}
	t.Logf("dashboard: %s", out)
}
