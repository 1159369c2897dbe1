package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/clusterd/clusterd/node"
	"github.com/clusterd/clusterd/storage"
	"github.com/clusterd/clusterd/topology"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// member is a clusterd node running in this process, with a client
// connection to its leaf server and a super_user token.
type member struct {
	n   *node.Node
	nc  *nats.Conn
	js  jetstream.JetStream
	tok string
}

var nodeSeq atomic.Int64

// startNode starts an in-process node with ephemeral ports and its data in
// a fresh directory.
func (r *runner) startNode(name string, routeTo *member) (*member, error) {
	cfg := node.Default()
	cfg.RootPath = filepath.Join(r.dir, "nodes", strconv.FormatInt(nodeSeq.Add(1), 10)+"-"+name)
	cfg.Clustering.NodeName = name
	cfg.Clustering.Password = benchPassword
	cfg.OperationsAPI.Network.Host, cfg.OperationsAPI.Network.Port = "127.0.0.1", 0
	cfg.Clustering.HubServer.Network = node.Network{Host: "127.0.0.1", Port: 0}
	cfg.Clustering.HubServer.LeafNodes.Network.Port = 0
	cfg.Clustering.HubServer.Cluster.Network.Port = 0
	cfg.Clustering.LeafServer.Network.Port = 0
	cfg.Clustering.RequestTimeout = r.sz.requestTimeout
	if routeTo != nil {
		cfg.Clustering.HubServer.Cluster.Network.Routes = []node.RouteConfig{{Host: "127.0.0.1", Port: routeTo.n.Servers.Ports().Cluster}}
	}
	n, err := node.Start(r.ctx, cfg, node.Options{Log: zap.NewNop()})
	if err != nil {
		return nil, err
	}
	m := &member{n: n}
	if m.nc, err = nats.Connect(n.LeafURL(), nats.UserInfo(n.OperatorUser(), n.OperatorPassword())); err != nil {
		_ = n.Close()
		return nil, err
	}
	m.js, _ = jetstream.New(m.nc)
	if m.tok, err = n.Token("admin", "super_user", time.Hour); err != nil {
		m.close()
		return nil, err
	}
	return m, nil
}

func (m *member) close() {
	if m == nil {
		return
	}
	if m.nc != nil {
		m.nc.Close()
	}
	_ = m.n.Close()
}

func (m *member) name() string { return m.n.Name() }

// opMsg builds an operation request.
func opMsg(tok, op string, body []byte) *nats.Msg {
	msg := nats.NewMsg("ops.cluster." + op)
	if tok != "" {
		msg.Header.Set("Authorization", "Bearer "+tok)
	}
	msg.Data = body
	return msg
}

// replyOK fails on an error reply.
func replyOK(m *nats.Msg) error {
	if code := m.Header.Get("Nats-Service-Error-Code"); code != "" {
		return fmt.Errorf("status %s: %s", code, m.Data)
	}
	return nil
}

// call runs an operation and fails unless it answers 200.
func call(nc *nats.Conn, tok, op string, body any) ([]byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	resp, err := nc.RequestMsg(opMsg(tok, op, b), 30*time.Second)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := replyOK(resp); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return resp.Data, nil
}

func (m *member) op(op string, body any) ([]byte, error) { return call(m.nc, m.tok, op, body) }

func sub(table string) map[string]any {
	return map[string]any{"table": table, "subscribe": true, "publish": true}
}

func subs(tables []string) []any {
	out := make([]any, len(tables))
	for i, t := range tables {
		out[i] = sub(t)
	}
	return out
}

func tableNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("t%04d", i)
	}
	return out
}

// probeTables picks one table per replication lane, so transactions on
// them prove every lane of a peer flows.
func probeTables(tables []string) []string {
	seen := map[int]bool{}
	var out []string
	shards := topology.LaneCount(len(tables))
	for _, t := range tables {
		s := topology.ShardOf(storage.TableKey{Database: "data", Table: t}, shards)
		if !seen[s] {
			seen[s] = true
			out = append(out, t)
		}
	}
	return out
}

func meshed(ms ...*member) bool {
	for _, m := range ms {
		if len(m.n.Servers.RoutedPeers()) != len(ms)-1 {
			return false
		}
	}
	return true
}

// txnCounts returns how many transactions a node's stream holds per subject.
func txnCounts(ctx context.Context, js jetstream.JetStream) (map[string]uint64, error) {
	s, err := js.Stream(ctx, topology.TxnStreamName)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter("txn.>"))
	if err != nil {
		return nil, err
	}
	return info.State.Subjects, nil
}

// holdsAll says whether a node holds exactly want[subject] transactions on
// every subject of want; more is an error (a duplicate).
func holdsAll(ctx context.Context, js jetstream.JetStream, want map[string]uint64) (bool, error) {
	have, err := txnCounts(ctx, js)
	if err != nil {
		return false, nil // the stream may not be back yet
	}
	ok := true
	for subj, n := range want {
		if have[subj] > n {
			return false, fmt.Errorf("%s holds %d transactions, want %d (duplicated)", subj, have[subj], n)
		}
		if have[subj] < n {
			ok = false
		}
	}
	return ok, nil
}

func waitHolds(ctx context.Context, timeout time.Duration, what string, js jetstream.JetStream, want map[string]uint64) error {
	var ferr error
	err := waitFor(timeout, 5*time.Millisecond, what, func() bool {
		ok, err := holdsAll(ctx, js, want)
		if err != nil {
			ferr = err
			return true
		}
		return ok
	})
	if ferr != nil {
		return ferr
	}
	return err
}

// publishProbes publishes one transaction on each probe table from m's node.
func publishProbes(ctx context.Context, js jetstream.JetStream, origin string, probes []string, tag string) error {
	for _, t := range probes {
		if _, err := js.Publish(ctx, "txn.data."+t+"."+origin, []byte(tag)); err != nil {
			return fmt.Errorf("publish on %s: %w", origin, err)
		}
	}
	return nil
}

// wantFrom is the probe subjects of origins, each expected n times.
func wantFrom(origins []string, probes []string, n uint64) map[string]uint64 {
	out := map[string]uint64{}
	for _, o := range origins {
		for _, t := range probes {
			out["txn.data."+t+"."+o] = n
		}
	}
	return out
}

// createTables creates tables on a node, one request each (as a data
// service would).
func createTables(nc *nats.Conn, tok string, tables []string) error {
	for _, t := range tables {
		if _, err := call(nc, tok, "create_table", map[string]any{"table": t}); err != nil {
			return err
		}
	}
	return nil
}

func hasOperation(n *node.Node, op string) bool {
	for _, o := range n.Ops.Operations() {
		if o.Name == op {
			return true
		}
	}
	return false
}

func others(all []string, not string) []string {
	var out []string
	for _, s := range all {
		if s != not {
			out = append(out, s)
		}
	}
	return out
}

func joinErrs(errs []error) error {
	var msgs []string
	for _, e := range errs {
		if e != nil {
			msgs = append(msgs, e.Error())
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(msgs, "; "))
}
