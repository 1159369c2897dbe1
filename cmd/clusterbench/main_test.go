package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clusterd/clusterd/bench"
)

func TestMain(m *testing.M) {
	// The run re-executes this binary for its helper processes.
	if bench.IsChild() {
		bench.RunChild()
		return
	}
	os.Exit(m.Run())
}

// TestQuickRunReportsEveryFigure runs the whole harness small and checks the
// results, never a timing: every figure is there with a value (or says why
// not), and the JSON and markdown files are written.
func TestQuickRunReportsEveryFigure(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every benchmark scenario")
	}
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	if err := run([]string{"--quick", "--out", out}, &stdout, &stderr); err != nil {
		t.Fatalf("clusterbench --quick: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Quick    bool     `json:"quick"`
		Failures []string `json:"failures"`
		Machine  struct {
			CPUs      int    `json:"cpus"`
			GoVersion string `json:"go_version"`
		} `json:"machine"`
		Figures []struct {
			ID    string   `json:"id"`
			Value *float64 `json:"value"`
			Floor string   `json:"floor"`
			Ratio *float64 `json:"ratio"`
			Note  string   `json:"note"`
		} `json:"figures"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("results.json is not valid JSON: %v", err)
	}
	if !rep.Quick || len(rep.Failures) > 0 || rep.Machine.CPUs == 0 || rep.Machine.GoVersion == "" {
		t.Fatalf("report header: quick=%v failures=%v machine=%+v", rep.Quick, rep.Failures, rep.Machine)
	}
	got := map[string]int{}
	for i, f := range rep.Figures {
		got[f.ID] = i
	}
	for _, id := range bench.FigureIDs() {
		i, ok := got[id]
		if !ok {
			t.Errorf("figure %s missing from results.json", id)
			continue
		}
		f := rep.Figures[i]
		switch {
		case f.Value == nil && f.Note == "":
			t.Errorf("figure %s has no value and no note saying why", id)
		case f.Value != nil && f.Floor != "" && f.Ratio == nil:
			t.Errorf("figure %s has a floor (%s) but no ratio", id, f.Floor)
		case f.Value == nil && !strings.HasPrefix(id, "status."):
			t.Errorf("figure %s has no value: %s", id, f.Note)
		}
	}
	md, err := os.ReadFile(filepath.Join(out, "results.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| figure |", "cluster_get_routes p50"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("results.md lacks %q", want)
		}
	}
	if !strings.Contains(stdout.String(), "floor: NATS echo p50") {
		t.Errorf("the table was not printed:\n%s", stdout.String())
	}
}
