package topology

import (
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// Lines as nats-server 2.15 writes them (captured from real runs of the
// node tests), and what each tells.
func TestClassifyLinkLines(t *testing.T) {
	for _, c := range []struct {
		line               string
		kind, link, remote string
		fatal              bool
	}{
		{`127.0.0.1:41872 - rid:9 - Remote server has a duplicate name: "same-hub"`, FaultDuplicateName, "route", "127.0.0.1", true},
		{`127.0.0.1:14932 - rid:7 - Router connection closed: Client Closed - Remote: n1-hub`, FaultDuplicateName, "route", "127.0.0.1:14932", true},
		{`127.0.0.1:41880 - rid:11 - authentication error - User "cluster_user"`, FaultCredentials, "route", "127.0.0.1", true},
		{`127.0.0.1:41880 - lid:12 - authentication error - User "cluster_user"`, FaultCredentials, "leafnode", "127.0.0.1", true},
		{`127.0.0.1:14932 - rid:8 - Route Error 'Authorization Violation'`, FaultCredentials, "route", "127.0.0.1:14932", true},
		{`127.0.0.1:14931 - lid:3 - Leafnode Error 'Authorization Violation'`, FaultCredentials, "leafnode", "127.0.0.1:14931", true},
		{`127.0.0.1:56666 - rid:7 - TLS route handshake error: remote error: tls: bad certificate`, FaultTLS, "route", "127.0.0.1", true},
		{`127.0.0.1:14931 - lid:4 - TLS leafnode handshake error: tls: failed to verify certificate: x509: certificate signed by unknown authority`, FaultTLS, "leafnode", "127.0.0.1", true},
		{`127.0.0.1:44120 - rid:6 - Router connection closed: Cluster Name Conflict`, FaultClusterName, "route", "127.0.0.1", true},
		{`127.0.0.1:34731 - rid:9 - Router connection closed: Client Closed`, FaultRefused, "route", "127.0.0.1:34731", false},
		{`Error trying to connect to route (attempt 3): dial tcp 127.0.0.1:1: connect: connection refused`, FaultUnreachable, "route", "127.0.0.1:1", false},
		{`Error trying to connect as leafnode to remote server "127.0.0.1:2" (attempt 1): dial tcp 127.0.0.1:2: connect: connection refused`, FaultUnreachable, "leafnode", "127.0.0.1:2", false},
	} {
		f, ok := classify("n1-hub", c.line)
		if !ok || f.Kind != c.kind || f.Link != c.link || f.Remote != c.remote || f.Fatal != c.fatal || f.Message == "" {
			t.Errorf("%s\n  -> %+v %v", c.line, f, ok)
		}
	}
	for _, line := range []string{
		`127.0.0.1:14932 - rid:7 - Router connection closed: Client Closed - Remote: n2-hub`, // another node: a normal close
		`127.0.0.1:50000 - cid:5 - authentication error - User "app"`,                        // a client, not a link
		`Server is ready`,
		`127.0.0.1:14932 - rid:7 - Route connection created`,
		`127.0.0.1:14932 - rid:7 - Router connection closed: Client Closed - Remote: n2-hub`, // a peer that stopped
	} {
		if f, ok := classify("n1-hub", line); ok {
			t.Errorf("%s\n  -> %+v", line, f)
		}
	}
}

// A fault counts from its third report, is said once at warn, ends when
// reports stop, and a deleted route's fault ends with the route.
func TestLinkFaultsLifecycle(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	f := NewLinkFaults("n1", zap.New(core))
	now := time.Unix(1000, 0)
	f.now = func() time.Time { return now }
	auth := `127.0.0.1:14932 - rid:8 - Route Error 'Authorization Violation'`
	for i := 0; i < 2; i++ {
		if !f.Observe("hub", auth) {
			t.Fatal("not explained")
		}
		now = now.Add(time.Second)
	}
	if len(f.Active()) != 0 || logs.Len() != 0 {
		t.Fatalf("active after two reports: %v", f.Active())
	}
	for i := 0; i < 5; i++ {
		f.Observe("hub", auth)
		now = now.Add(time.Second)
	}
	act := f.Active()
	if len(act) != 1 || act[0].Count != 7 || !act[0].Fatal {
		t.Fatalf("active: %+v", act)
	}
	if logs.Len() != 1 || logs.All()[0].Message != "link problem" || logs.All()[0].Level != zapcore.WarnLevel ||
		!strings.Contains(logs.All()[0].ContextMap()["reason"].(string), "clustering.password must be the same on every node") {
		t.Fatalf("logs: %v", logs.All())
	}
	now = now.Add(faultExpiry + time.Second)
	if len(f.Active()) != 0 {
		t.Fatal("not expired")
	}
	dial := `Error trying to connect to route (attempt 3): dial tcp 127.0.0.1:1: connect: connection refused`
	for i := 0; i < 3; i++ {
		f.Observe("hub", dial)
	}
	now = now.Add(30 * time.Second) // backoff: still active between reports
	if len(f.Active()) != 1 {
		t.Fatal("unreachable fault expired between backoff reports")
	}
	// A refused route is created, then closed, again and again: it stays.
	for i := 0; i < 4; i++ {
		f.Observe("hub", `127.0.0.1:7 - rid:9 - Route connection created`)
		f.Observe("hub", `127.0.0.1:7 - rid:9 - Router connection closed: Client Closed`)
	}
	if act := f.Active(); len(act) != 2 || act[0].Kind != FaultRefused {
		t.Fatalf("refused route: %+v", act)
	}
	f.Retain("route", []string{"127.0.0.1:1"})
	// The node there comes up: the link is created, the fault ends.
	f.Observe("hub", `127.0.0.1:1 - rid:12 - Route connection created`)
	if len(f.Active()) != 0 {
		t.Fatal("unreachable fault kept after the route came up")
	}
	for i := 0; i < 3; i++ {
		f.Observe("hub", dial)
	}
	f.Retain("route", []string{"127.0.0.1:2"})
	if len(f.Active()) != 0 {
		t.Fatal("fault of a deleted route kept")
	}
	if f.Observe("hub", "Server is ready") {
		t.Fatal("explained an ordinary line")
	}
}
