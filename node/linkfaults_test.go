package node_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clusterd/clusterd/node"
	"github.com/clusterd/clusterd/node/nodetest"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func getURL(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func readyz(t *testing.T, n *node.Node) (int, string) {
	return getURL(t, fmt.Sprintf("http://127.0.0.1:%d/readyz", n.HTTPPort()))
}

func linkProblems(t *testing.T, n *node.Node) []map[string]any {
	t.Helper()
	var rep struct {
		LinkProblems []map[string]any `json:"link_problems"`
	}
	r := httpOp(t, n, "cluster_status", map[string]any{})
	if err := json.Unmarshal(r.Body, &rep); err != nil {
		t.Fatalf("cluster_status: %v: %s", err, r.Body)
	}
	return rep.LinkProblems
}

// warnLines returns the messages of log entries at warn and above.
func warnLines(logs *observer.ObservedLogs) []string {
	var out []string
	for _, e := range logs.All() {
		if e.Level >= zapcore.WarnLevel {
			line := e.Message
			for _, f := range e.Context {
				if f.Key == "reason" {
					line += " reason=" + f.String
				}
			}
			out = append(out, line)
		}
	}
	return out
}

func countMsg(logs *observer.ObservedLogs, msg string) int {
	return logs.FilterMessage(msg).Len()
}

// Mistakes between two nodes are named where the operator looks: /readyz
// (503), cluster_status' link_problems, /metrics and one warn line in
// clusterd's words on each end; nats-server's own repeated lines are at
// debug. When the route goes, the node is ready again.
func TestMeshMistakesAreNamed(t *testing.T) {
	ca, other := newCA(t, "ca"), newCA(t, "other-ca")
	for _, tc := range []struct {
		name       string
		kind       string
		a, b       func(*testing.T) node.Config
		aSays      string // in a's (the accepting end's) message
		bSays      string // in b's (the dialling end's) message
		rawNoise   string // a raw nats-server line that must not be at warn
		acceptSide bool   // a (routed to) sees it too
	}{
		{
			name: "two nodes with one name", kind: "duplicate_name",
			a:     func(t *testing.T) node.Config { return nodetest.Config(t, "same") },
			b:     func(t *testing.T) node.Config { return nodetest.Config(t, "same") },
			aSays: "joins the mesh with this node's own name 'same': node names must be unique in a mesh; give one of the two nodes another clustering.nodeName",
			bSays: "reaches a node with this node's own name 'same'", rawNoise: "duplicate name", acceptSide: true,
		},
		{
			name: "cluster passwords differ", kind: "credentials",
			a: func(t *testing.T) node.Config { return nodetest.Config(t, "pa") },
			b: func(t *testing.T) node.Config {
				c := nodetest.Config(t, "pb")
				c.Clustering.Password = "another-secret"
				return c
			},
			aSays: "with a cluster user or password this node does not accept: clustering.user and clustering.password must be the same on every node",
			bSays: "is refused: the node there does not accept this node's cluster user or password", rawNoise: "Authorization Violation", acceptSide: true,
		},
		{
			name: "cluster names differ", kind: "cluster_name",
			a: func(t *testing.T) node.Config { return nodetest.Config(t, "ca1") },
			b: func(t *testing.T) node.Config {
				c := nodetest.Config(t, "cb1")
				c.Clustering.HubServer.Cluster.Name = "another"
				return c
			},
			aSays: "clustering.hubServer.cluster.name must be the same on every node of a mesh",
			bSays: "clustering.hubServer.cluster.name must be the same on every node of a mesh", rawNoise: "Cluster Name Conflict", acceptSide: true,
		},
		{
			name: "TLS from another CA", kind: "tls",
			a:     func(t *testing.T) node.Config { return tlsConfig(t, ca, "ta") },
			b:     func(t *testing.T) node.Config { return tlsConfig(t, other, "tb") },
			aSays: "every node's clustering.tls certificate must be signed by a CA the others trust",
			bSays: "every node's clustering.tls certificate must be signed by a CA the others trust", rawNoise: "handshake error", acceptSide: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, alogs := nodetest.StartLogged(t, tc.a(t))
			b, blogs := nodetest.StartLogged(t, tc.b(t))
			httpOp(t, b, "cluster_set_routes", map[string]any{"server": "hub", "routes": []any{nodetest.ClusterRoute(a)}})
			check := func(n *node.Node, logs *observer.ObservedLogs, says string) {
				nodetest.Eventually(t, 60*time.Second, "/readyz 503 naming the "+tc.kind+" problem on "+n.Name(), func() bool {
					code, body := readyz(t, n)
					return code == 503 && strings.Contains(body, "link problem: ") && strings.Contains(body, says)
				})
				probs := linkProblems(t, n)
				if len(probs) == 0 || probs[0]["kind"] != tc.kind || !strings.Contains(probs[0]["message"].(string), says) || probs[0]["fatal"] != true {
					t.Fatalf("%s link_problems: %v", n.Name(), probs)
				}
				_, metrics := getURL(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", n.HTTPPort()))
				if !strings.Contains(metrics, `clusterd_link_problems{kind="`+tc.kind+`"} `) || strings.Contains(metrics, `clusterd_link_problems{kind="`+tc.kind+`"} 0`) {
					t.Fatalf("%s metrics lack the problem:\n%s", n.Name(), grepLines(metrics, "clusterd_link_problems"))
				}
				warns := warnLines(logs)
				if c := countMsg(logs, "link problem"); c != 1 {
					t.Fatalf("%s: %d 'link problem' lines, want 1; warn lines: %q", n.Name(), c, warns)
				}
				for _, w := range warns {
					if strings.Contains(w, tc.rawNoise) {
						t.Fatalf("%s: raw nats-server line at warn: %q", n.Name(), w)
					}
				}
			}
			check(b, blogs, tc.bSays)
			if tc.acceptSide {
				check(a, alogs, tc.aSays)
			}
			// The route goes: both ends are ready again once the reports stop.
			httpOp(t, b, "cluster_delete_routes", map[string]any{"routes": []any{nodetest.ClusterRoute(a)}})
			for _, n := range []*node.Node{a, b} {
				nodetest.Eventually(t, 60*time.Second, n.Name()+" ready again", func() bool {
					code, _ := readyz(t, n)
					return code == 200 && len(linkProblems(t, n)) == 0
				})
			}
		})
	}
}

// TLS on one node only: the TLS node is unready with a tls problem; the
// plain-text node, whose routes are closed before they are set up, reports
// that (not fatal: it cannot tell why).
func TestTLSOnOneNodeOnlyIsNamedOnBothEnds(t *testing.T) {
	ca := newCA(t, "ca")
	a, _ := nodetest.StartLogged(t, tlsConfig(t, ca, "tls1"))
	b, blogs := nodetest.StartLogged(t, nodetest.Config(t, "plain1"))
	defer func() {
		if t.Failed() {
			seen := map[string]int{}
			for _, e := range blogs.All() {
				if strings.Contains(e.Message, "rid:") {
					m := e.Message[strings.Index(e.Message, "rid:"):]
					m = m[strings.Index(m, " - ")+3:]
					seen[m]++
				}
			}
			t.Logf("plain node's route lines: %v", seen)
		}
	}()
	httpOp(t, b, "cluster_set_routes", map[string]any{"server": "hub", "routes": []any{nodetest.ClusterRoute(a)}})
	var pa, pb []map[string]any
	defer func() {
		if t.Failed() {
			t.Logf("TLS node's problems: %v\nplain node's problems: %v", pa, pb)
		}
	}()
	nodetest.Eventually(t, 60*time.Second, "both ends to name it", func() bool {
		pa, pb = linkProblems(t, a), linkProblems(t, b)
		return len(pa) == 1 && pa[0]["kind"] == "tls" && len(pb) == 1 && pb[0]["kind"] == "refused" &&
			strings.Contains(pb[0]["message"].(string), "clustering.tls must be set on all nodes or on none")
	})
	if code, _ := readyz(t, a); code != 503 {
		t.Fatalf("TLS node /readyz %d", code)
	}
	if code, body := readyz(t, b); code != 200 {
		t.Fatalf("plain node /readyz %d %s", code, body)
	}
}

// A route to an address where nothing listens is reported (cluster_status,
// one warn line) but does not make the node unready: the other end may just
// be down.
func TestRouteToNothingIsReportedNotFatal(t *testing.T) {
	a, logs := nodetest.StartLogged(t, nodetest.Config(t, "lonely"))
	dead := nodetest.FreePort(t)
	httpOp(t, a, "cluster_set_routes", map[string]any{"server": "hub", "routes": []any{map[string]any{"host": "127.0.0.1", "port": dead}}})
	nodetest.Eventually(t, 60*time.Second, "the unreachable route in cluster_status", func() bool {
		p := linkProblems(t, a)
		return len(p) == 1 && p[0]["kind"] == "unreachable" && p[0]["fatal"] == false &&
			strings.Contains(p[0]["message"].(string), fmt.Sprintf("nothing answers at hub route 127.0.0.1:%d", dead))
	})
	if code, body := readyz(t, a); code != 200 {
		t.Fatalf("/readyz %d %s", code, body)
	}
	if c := countMsg(logs, "link problem"); c != 1 {
		t.Fatalf("%d link problem lines; warn lines: %q", c, warnLines(logs))
	}
	for _, w := range warnLines(logs) {
		if strings.Contains(w, "Error trying to connect") {
			t.Fatalf("raw line at warn: %q", w)
		}
	}
	// Deleting the route ends the problem at once.
	httpOp(t, a, "cluster_delete_routes", map[string]any{"routes": []any{map[string]any{"host": "127.0.0.1", "port": dead}}})
	nodetest.Eventually(t, 30*time.Second, "no link problem", func() bool { return len(linkProblems(t, a)) == 0 })
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// httpOp runs an operation over HTTP (works for TLS nodes too) and fails the
// test unless it succeeds.
func httpOp(t *testing.T, n *node.Node, operation string, body map[string]any) nodetest.Reply {
	t.Helper()
	b := map[string]any{"operation": operation}
	for k, v := range body {
		b[k] = v
	}
	r := nodetest.HTTP(t, n, nodetest.SuperUser(t, n), b)
	if r.Status != 200 {
		t.Fatalf("%s on %s: %d %s", operation, n.Name(), r.Status, r.Body)
	}
	return r
}

// A route to a node that is down is reported while it is down, and no
// longer once that node is up and the route links (not only after the
// fault's 65 s expiry).
func TestRouteToNothingEndsWhenTheNodeComesUp(t *testing.T) {
	a := nodetest.StartNamed(t, "waiting")
	port := nodetest.FreePort(t)
	httpOp(t, a, "cluster_set_routes", map[string]any{"server": "hub", "routes": []any{map[string]any{"host": "127.0.0.1", "port": port}}})
	nodetest.Eventually(t, 60*time.Second, "the unreachable route", func() bool {
		p := linkProblems(t, a)
		return len(p) == 1 && p[0]["kind"] == "unreachable"
	})
	cfg := nodetest.Config(t, "late")
	cfg.Clustering.HubServer.Cluster.Network.Port = port
	nodetest.Start(t, cfg)
	start := time.Now()
	nodetest.Eventually(t, 50*time.Second, "the problem to end once the route links", func() bool {
		return len(linkProblems(t, a)) == 0 && len(a.Servers.RoutedPeers()) == 1
	})
	t.Logf("ended %v after the node came up", time.Since(start).Round(100*time.Millisecond))
}
