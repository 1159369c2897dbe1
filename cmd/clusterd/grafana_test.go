package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/clusterd/clusterd/node/nodetest"
)

var metricRef = regexp.MustCompile(`\b((?:clusterd|process|go)_[a-zA-Z0-9_]+)\b`)

// dashboardMetrics returns every metric name the dashboard's queries and
// variables use, with the panels that use it.
func dashboardMetrics(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir, "grafana", "clusterd-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	uses := map[string][]string{}
	for _, p := range d.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, m := range metricRef.FindAllString(tg.Expr, -1) {
				uses[m] = append(uses[m], p.Title)
			}
		}
	}
	for _, v := range d.Templating.List {
		for _, m := range metricRef.FindAllString(v.Definition, -1) {
			uses[m] = append(uses[m], "variable")
		}
	}
	return uses
}

// exportedMetrics scrapes a node's /metrics and returns the sample names.
func exportedMetrics(t *testing.T, port int) map[string]bool {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name := line
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name = line[:i]
		}
		out[name] = true
	}
	return out
}

// Every metric the Grafana dashboard queries is one a running pair of
// replicating nodes really exports: a renamed metric breaks this test, not
// the operator's dashboard.
func TestGrafanaDashboardQueriesExportedMetrics(t *testing.T) {
	uses := dashboardMetrics(t)
	if len(uses) < 8 {
		t.Fatalf("the dashboard queries only %v", uses)
	}
	a, _ := replicatedPair(t)
	nodetest.Op(t, a, "cluster_status", map[string]any{})
	var missing []string
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		have := exportedMetrics(t, a.HTTPPort())
		missing = missing[:0]
		for m := range uses {
			if !have[m] {
				missing = append(missing, fmt.Sprintf("%s (in %s)", m, strings.Join(uses[m], ", ")))
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			break
		}
	}
	sort.Strings(missing)
	t.Fatalf("the dashboard queries metrics a running node does not export: %v", missing)
}
