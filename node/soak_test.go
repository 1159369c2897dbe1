package node_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clusterd/clusterd/node"
	"github.com/clusterd/clusterd/node/nodetest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The soak (#19): three real clusterd processes, every pair replicating
// every data table both ways; every node publishes transactions at a steady
// rate, an operator on every node polls cluster_status and flips
// set_node_replication for other tables, and one node after another is
// killed with SIGKILL and restarted. At the end every acknowledged
// transaction must be on every node exactly once, and no operation may
// answer >= 500 while every node is up.
//
// `task soak` runs it for minutes (SOAK_DURATION, SOAK_KILL_EVERY,
// SOAK_RATE, SOAK_OUT); without SOAK_DURATION a short version runs with the
// tests.

type soakConfig struct {
	Duration   time.Duration
	KillEvery  time.Duration
	Rate       int // transactions a second per node
	DataTables int
	FlipTables int
	OpEvery    time.Duration
}

func (c soakConfig) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]any{"duration": c.Duration.String(), "kill_every": c.KillEvery.String(),
		"rate_per_node": c.Rate, "data_tables": c.DataTables, "flip_tables": c.FlipTables, "op_every": c.OpEvery.String()})
}

type soakLatency struct {
	Count int     `json:"count"`
	P50MS float64 `json:"p50_ms"`
	P99MS float64 `json:"p99_ms"`
	MaxMS float64 `json:"max_ms"`
}

type soakUsage struct {
	Goroutines int     `json:"goroutines"`
	RSSMB      float64 `json:"rss_mb"`
}

type soakReport struct {
	Config       soakConfig             `json:"config"`
	Acknowledged int64                  `json:"acknowledged"`
	Lost         int                    `json:"lost"`
	Duplicated   int                    `json:"duplicated"`
	Kills        int                    `json:"kills"`
	Operations   map[string]int         `json:"operations"` // "<op> <status>" (status 0: no reply)
	DuringKill   map[string]int         `json:"operations_during_kill"`
	Latency      map[string]soakLatency `json:"latency"` // per operation, while every node is up
	Slowest      []string               `json:"slowest,omitempty"`
	Failures     []string               `json:"failures_while_all_up,omitempty"`
	Idle         map[string]soakUsage   `json:"idle"`  // before the workload
	Start        map[string]soakUsage   `json:"start"` // once it has run a while
	End          map[string]soakUsage   `json:"end"`
	// Samples: usage through the run (every eighth of it), to tell a
	// plateau from a leak.
	Samples []map[string]soakUsage `json:"samples"`
}

func soakSettings(t *testing.T) (soakConfig, bool) {
	c := soakConfig{Duration: 8 * time.Second, KillEvery: 4 * time.Second, Rate: 50, DataTables: 4, FlipTables: 4, OpEvery: 200 * time.Millisecond}
	env := func(k string) string { return os.Getenv(k) }
	full := env("SOAK_DURATION") != ""
	if full {
		c = soakConfig{Duration: 4 * time.Minute, KillEvery: time.Minute, Rate: 250, DataTables: 20, FlipTables: 10, OpEvery: 200 * time.Millisecond}
	}
	for k, d := range map[string]*time.Duration{"SOAK_DURATION": &c.Duration, "SOAK_KILL_EVERY": &c.KillEvery} {
		if v := env(k); v != "" {
			x, err := time.ParseDuration(v)
			if err != nil {
				t.Fatalf("%s: %v", k, err)
			}
			*d = x
		}
	}
	if v := env("SOAK_RATE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("SOAK_RATE: %v", err)
		}
		c.Rate = n
	}
	return c, full
}

type soakNode struct {
	p   *nodetest.Proc
	tok string
}

func (n *soakNode) name() string { return n.p.Cfg.Clustering.NodeName }

func (n *soakNode) conn(t *testing.T) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", n.p.Cfg.Clustering.LeafServer.Network.Port),
		nats.UserInfo(n.p.Cfg.Clustering.LeafServer.Operator.User, n.p.Cfg.Clustering.LeafServer.Operator.Password), nats.MaxReconnects(-1),
		nats.ReconnectWait(50*time.Millisecond), nats.RetryOnFailedConnect(true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// request sends an operation; status 0 means no reply (the node was down).
func soakRequest(nc *nats.Conn, tok, op string, body any) (int, string) {
	b, _ := json.Marshal(body)
	msg := nats.NewMsg("ops.cluster." + op)
	msg.Data = b
	msg.Header.Set("Authorization", "Bearer "+tok)
	resp, err := nc.RequestMsg(msg, 5*time.Second)
	if err != nil {
		return 0, err.Error()
	}
	status := 200
	if code := resp.Header.Get("Nats-Service-Error-Code"); code != "" {
		status, _ = strconv.Atoi(code)
	}
	return status, string(resp.Data)
}

// usage reads goroutines and resident memory from the node's /metrics.
func (n *soakNode) usage() soakUsage {
	var u soakUsage
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", n.p.Cfg.OperationsAPI.Network.Port))
	if err != nil {
		return u
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		v, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "go_goroutines":
			u.Goroutines = int(v)
		case "process_resident_memory_bytes":
			u.RSSMB = v / (1 << 20)
		}
	}
	return u
}

// killWindows records when a node was down, so that operations overlapping
// a kill (and the restart's settling) are told apart from the rest.
type killWindows struct {
	mu   sync.Mutex
	wins [][2]time.Time // end zero: still open
}

func (k *killWindows) open(at time.Time) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.wins = append(k.wins, [2]time.Time{at})
	return len(k.wins) - 1
}

func (k *killWindows) close(i int, at time.Time) {
	k.mu.Lock()
	k.wins[i][1] = at
	k.mu.Unlock()
}

func (k *killWindows) overlaps(start, end time.Time) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, w := range k.wins {
		if start.Before(w[1]) || w[1].IsZero() {
			if !end.Before(w[0]) {
				return true
			}
		}
	}
	return false
}

func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("process soak")
	}
	cfg, full := soakSettings(t)
	const settle = 3 * time.Second // after a restart: routes and sources come back
	names := []string{"k1", "k2", "k3"}
	var nodes []*soakNode
	var first node.Config
	for i, name := range names {
		c := nodetest.ProcConfig(t, name)
		if i == 0 {
			first = c
		} else {
			c.Clustering.HubServer.Cluster.Network.Routes = []node.RouteConfig{{Host: "127.0.0.1", Port: first.Clustering.HubServer.Cluster.Network.Port}}
		}
		p := nodetest.StartProc(t, c)
		nodes = append(nodes, &soakNode{p: p, tok: p.Token(t)})
	}
	opsNC := make([]*nats.Conn, len(nodes))
	for i, n := range nodes {
		opsNC[i] = n.conn(t)
	}
	mustOp := func(i int, op string, body any) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			status, rep := soakRequest(opsNC[i], nodes[i].tok, op, body)
			if status == 200 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s on %s: %d %s", op, nodes[i].name(), status, rep)
			}
			time.Sleep(100 * time.Millisecond) // the mesh may still be forming
		}
	}
	table := func(prefix string, i int) string { return fmt.Sprintf("%s%d", prefix, i) }
	var dataSubs, flipSubs []any
	for i := range cfg.DataTables {
		dataSubs = append(dataSubs, sub(table("s", i), true, true))
	}
	for i := range cfg.FlipTables {
		flipSubs = append(flipSubs, sub(table("f", i), true, true))
	}
	for i := range nodes {
		for j := range cfg.DataTables {
			mustOp(i, "create_table", map[string]any{"table": table("s", j)})
		}
		for j := range cfg.FlipTables {
			mustOp(i, "create_table", map[string]any{"table": table("f", j)})
		}
	}
	for i := range nodes {
		for j := i + 1; j < len(nodes); j++ {
			mustOp(i, "add_node", map[string]any{"node_name": nodes[j].name(), "subscriptions": append(slices.Clone(dataSubs), flipSubs...)})
		}
	}
	rep := soakReport{Config: cfg, Operations: map[string]int{}, DuringKill: map[string]int{}, Latency: map[string]soakLatency{},
		Idle: map[string]soakUsage{}, Start: map[string]soakUsage{}, End: map[string]soakUsage{}}
	for _, n := range nodes {
		rep.Idle[n.name()] = n.usage()
	}

	ctx, cancel := context.WithTimeout(context.Background(), cfg.Duration)
	defer cancel()
	var wins killWindows
	var wg sync.WaitGroup

	// Publishers: per node, round robin over the data tables, each
	// transaction retried with its message id until acknowledged.
	type key struct{ origin, table string }
	var ackMu sync.Mutex
	acked := map[key][]int{}
	var ackedTotal atomic.Int64
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			js, _ := jetstream.New(n.conn(t))
			tick := time.NewTicker(time.Second / time.Duration(cfg.Rate))
			defer tick.Stop()
			for seq := 0; ; seq++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				tb := table("s", seq%cfg.DataTables)
				id := fmt.Sprintf("%s-%s-%d", n.name(), tb, seq)
				for ctx.Err() == nil {
					pctx, pcancel := context.WithTimeout(context.Background(), time.Second)
					_, err := js.Publish(pctx, "txn.data."+tb+"."+n.name(), []byte(id), jetstream.WithMsgID(id))
					pcancel()
					if err == nil {
						ackMu.Lock()
						acked[key{n.name(), tb}] = append(acked[key{n.name(), tb}], seq)
						ackMu.Unlock()
						ackedTotal.Add(1)
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}

	// Operators: on every node, cluster_status and set_node_replication of
	// a flip table about another node, every OpEvery.
	var opMu sync.Mutex
	type timed struct {
		d    time.Duration
		what string
	}
	took := map[string][]timed{}
	record := func(op string, status int, body string, start time.Time) {
		end := time.Now()
		opMu.Lock()
		defer opMu.Unlock()
		k := fmt.Sprintf("%s %d", op, status)
		if wins.overlaps(start, end.Add(settle)) || wins.overlaps(start.Add(-settle), end) {
			rep.DuringKill[k]++
			return
		}
		rep.Operations[k]++
		took[op] = append(took[op], timed{end.Sub(start), fmt.Sprintf("%s %s %v %d", start.Format("15:04:05.000"), op, end.Sub(start).Round(time.Millisecond), status)})
		if status >= 500 || status == 0 {
			rep.Failures = append(rep.Failures, fmt.Sprintf("%s +%v %s: %d %s", start.Format("15:04:05.000"), end.Sub(start).Round(time.Millisecond), op, status, body))
		}
	}
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc := opsNC[i]
			rng := rand.New(rand.NewPCG(uint64(i), 19))
			tick := time.NewTicker(cfg.OpEvery)
			defer tick.Stop()
			for k := 0; ; k++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				start := time.Now()
				if k%2 == 0 {
					status, body := soakRequest(nc, n.tok, "cluster_status", map[string]any{})
					record("cluster_status", status, body, start)
					continue
				}
				peer := nodes[(i+1+rng.IntN(len(nodes)-1))%len(nodes)].name()
				body := map[string]any{"node_name": peer, "subscriptions": []any{
					sub(table("f", rng.IntN(cfg.FlipTables)), rng.IntN(2) == 0, rng.IntN(2) == 0)}}
				status, reply := soakRequest(nc, n.tok, "set_node_replication", body)
				record("set_node_replication", status, reply, start)
			}
		}()
	}

	// Usage through the run.
	wg.Add(1)
	go func() {
		defer wg.Done()
		every := max(cfg.Duration/8, 2*time.Second)
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(every):
			}
			sample := map[string]soakUsage{}
			for _, n := range nodes {
				sample[n.name()] = n.usage()
			}
			opMu.Lock()
			rep.Samples = append(rep.Samples, sample)
			opMu.Unlock()
		}
	}()

	// Usage once the workload has run a while (before the first kill).
	warm := min(10*time.Second, cfg.KillEvery/2)
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-ctx.Done():
		case <-time.After(warm):
		}
		for _, n := range nodes {
			u := n.usage()
			opMu.Lock()
			rep.Start[n.name()] = u
			opMu.Unlock()
		}
	}()

	// The killer: one node after another.
	for k := 0; ; k++ {
		select {
		case <-ctx.Done():
		case <-time.After(cfg.KillEvery):
			victim := nodes[(k+1)%len(nodes)]
			w := wins.open(time.Now())
			victim.p.Kill()
			rep.Kills++
			time.Sleep(200 * time.Millisecond)
			victim.p.Restart()
			wins.close(w, time.Now())
			continue
		}
		break
	}
	cancel()
	wg.Wait()
	rep.Acknowledged = ackedTotal.Load()
	// Usage at the end of the workload (before the check's own readers).
	for _, n := range nodes {
		rep.End[n.name()] = n.usage()
	}

	// Every acknowledged transaction on every node exactly once.
	readers := make([]*nats.Conn, len(nodes))
	for i, n := range nodes {
		readers[i] = n.conn(t)
	}
	for i, n := range nodes {
		for k, seqs := range acked {
			subject := "txn.data." + k.table + "." + k.origin
			deadline := time.Now().Add(60 * time.Second)
			for countOn(t, readers[i], subject) < len(seqs) && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			seen := map[string]int{}
			for _, p := range memPayloads(t, readers[i], subject) {
				seen[p]++
			}
			for _, s := range seqs {
				id := fmt.Sprintf("%s-%s-%d", k.origin, k.table, s)
				switch c := seen[id]; {
				case c == 0:
					rep.Lost++
					if rep.Lost <= 5 {
						t.Errorf("%s lost %s", n.name(), id)
					}
				case c > 1:
					rep.Duplicated++
					if rep.Duplicated <= 5 {
						t.Errorf("%s holds %s %d times", n.name(), id, c)
					}
				}
			}
		}
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	var all []timed
	for op, ts := range took {
		slices.SortFunc(ts, func(a, b timed) int { return int(a.d - b.d) })
		rep.Latency[op] = soakLatency{Count: len(ts), P50MS: ms(ts[len(ts)/2].d), P99MS: ms(ts[min(len(ts)-1, len(ts)*99/100)].d), MaxMS: ms(ts[len(ts)-1].d)}
		all = append(all, ts...)
	}
	slices.SortFunc(all, func(a, b timed) int { return int(b.d - a.d) })
	for _, x := range all[:min(10, len(all))] {
		rep.Slowest = append(rep.Slowest, x.what)
	}
	out, _ := json.MarshalIndent(rep, "", "  ")
	t.Logf("soak report:\n%s", out)
	if path := os.Getenv("SOAK_OUT"); path != "" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
			_ = os.WriteFile(path, out, 0o644)
		}
	}
	if rep.Acknowledged == 0 {
		t.Fatal("no transaction was acknowledged")
	}
	if rep.Lost > 0 || rep.Duplicated > 0 {
		t.Errorf("%d lost, %d duplicated of %d acknowledged", rep.Lost, rep.Duplicated, rep.Acknowledged)
	}
	if len(rep.Failures) > 0 {
		t.Errorf("%d operations answered >= 500 (or not at all) while every node was up:\n%s", len(rep.Failures), strings.Join(rep.Failures, "\n"))
	}
	if full {
		t.Logf("full soak: %v, kill every %v", cfg.Duration, cfg.KillEvery)
	}
}

// memPayloads reads every payload of subject from a node's txn stream
// through an in-memory ordered consumer (a file-backed one can trip a data
// race inside nats-server while the stream's sources change).
func memPayloads(t *testing.T, nc *nats.Conn, subject string) []string {
	t.Helper()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, "txn")
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		t.Fatal(err)
	}
	return fetchPayloads(t, ctx, c)
}
