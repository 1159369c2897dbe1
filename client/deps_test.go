package client_test

import (
	"os/exec"
	"strings"
	"testing"
)

// A service that imports the client builds only what the client needs:
// nats.go and token minting, never the node's router, metrics or their
// protobuf.
func TestClientDependenciesStayLight(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps listed too little to be right:\n%s", out)
	}
	for _, d := range deps {
		for _, banned := range []string{
			"github.com/ThreeDotsLabs/watermill", "github.com/prometheus/", "google.golang.org/protobuf",
			"github.com/clusterd/clusterd/events", "github.com/clusterd/clusterd/node", "github.com/dgraph-io/badger",
		} {
			if strings.HasPrefix(d, banned) {
				t.Errorf("the client package depends on %s", d)
			}
		}
	}
}
