package node_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/clusterd/clusterd/node/nodetest"
)

// natsCLI finds the nats CLI (github.com/nats-io/natscli/nats@v0.5.0, which
// .ci/run installs) on PATH or in $(go env GOPATH)/bin.
func natsCLI(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("nats"); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, dir := range filepath.SplitList(strings.TrimSpace(string(out))) {
			p := filepath.Join(dir, "bin", "nats")
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	t.Skip("nats CLI not found; install it with: go install github.com/nats-io/natscli/nats@v0.5.0")
	return ""
}

func TestNatsCLIAgainstANode(t *testing.T) {
	bin := natsCLI(t)
	n := nodetest.StartNamed(t, "cli")
	tok := nodetest.SuperUser(t, n)
	home := t.TempDir() // no user contexts
	nats := func(args ...string) string {
		t.Helper()
		args = append([]string{"--server", n.LeafURL(), "--user", n.OperatorUser(), "--password", n.OperatorPassword()}, args...)
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home, "NATS_CONTEXT=")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("nats %s: %v\n%s", strings.Join(args[6:], " "), err, out)
		}
		return string(out)
	}

	out := nats("req", "ops.cluster.cluster_get_routes", "{}", "-H", "Authorization:Bearer "+tok)
	if !strings.Contains(out, `{"hub":[],"leaf":[]}`) || strings.Contains(out, "Nats-Service-Error") {
		t.Fatalf("nats req cluster_get_routes:\n%s", out)
	}
	out = nats("req", "ops.cluster.cluster_set_routes", `{"server":"hub","routes":[{"host":"127.0.0.1","port":"9"}]}`, "-H", "Authorization:Bearer "+tok)
	if !strings.Contains(out, `{"message":"cluster routes successfully set","set":[{"host":"127.0.0.1","port":9}],"skipped":[]}`) {
		t.Fatalf("nats req cluster_set_routes:\n%s", out)
	}
	out = nats("req", "ops.cluster.cluster_delete_routes", `{"routes":[{"host":"127.0.0.1"}]}`, "-H", "Authorization:Bearer "+tok)
	for _, want := range []string{"Nats-Service-Error-Code: 400", "Nats-Service-Error: 'routes[0].port' is required", `{"error":"'routes[0].port' is required"}`} {
		if !strings.Contains(out, want) {
			t.Fatalf("nats req with a bad body: want %q in\n%s", want, out)
		}
	}
	out = nats("req", "ops.cluster.cluster_get_routes", "{}")
	if !strings.Contains(out, "Nats-Service-Error-Code: 401") || !strings.Contains(out, `{"error":"Must login"}`) {
		t.Fatalf("nats req without a token:\n%s", out)
	}

	if out := nats("micro", "ls"); !strings.Contains(out, "clusterd") || !strings.Contains(out, "clusterd clustering operations for node cli") {
		t.Fatalf("nats micro ls:\n%s", out)
	}
	var services []struct {
		Name     string            `json:"name"`
		Metadata map[string]string `json:"metadata"`
	}
	if err := json.Unmarshal([]byte(nats("micro", "ls", "--json")), &services); err != nil {
		t.Fatal(err)
	}
	if len(services) != 1 || services[0].Name != "clusterd" || services[0].Metadata["node"] != "cli" {
		t.Fatalf("nats micro ls --json: %+v", services)
	}

	var info struct {
		Info struct {
			Endpoints []struct {
				Name    string `json:"name"`
				Subject string `json:"subject"`
			} `json:"endpoints"`
		} `json:"info"`
	}
	if err := json.Unmarshal([]byte(nats("micro", "info", "clusterd", "--json")), &info); err != nil {
		t.Fatal(err)
	}
	var names, want []string
	for _, e := range info.Info.Endpoints {
		names = append(names, e.Name)
		if e.Subject != "ops.cluster."+e.Name {
			t.Errorf("endpoint %s listens on %s", e.Name, e.Subject)
		}
	}
	for _, op := range n.Ops.Operations() {
		want = append(want, op.Name)
	}
	slices.Sort(names)
	slices.Sort(want)
	if !slices.Equal(names, want) || !slices.Contains(names, "cluster_set_routes") || !slices.Contains(names, "cluster_get_routes") || !slices.Contains(names, "cluster_delete_routes") {
		t.Fatalf("endpoints %v, want every operation %v", names, want)
	}

	out = nats("micro", "stats", "clusterd", "--json")
	var stats []struct {
		Endpoints []struct {
			Name        string `json:"name"`
			NumRequests int    `json:"num_requests"`
		} `json:"endpoints"`
	}
	if err := json.Unmarshal([]byte(out), &stats); err != nil {
		t.Fatalf("nats micro stats --json: %v\n%s", err, out)
	}
	got := map[string]int{}
	for _, s := range stats {
		for _, e := range s.Endpoints {
			got[e.Name] += e.NumRequests
		}
	}
	if got["cluster_get_routes"] != 2 || got["cluster_set_routes"] != 1 || got["cluster_delete_routes"] != 1 {
		t.Fatalf("nats micro stats: %v\n%s", got, out)
	}
}
