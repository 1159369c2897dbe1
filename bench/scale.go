package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/clusterd/clusterd/auth"
	"github.com/clusterd/clusterd/events"
	"github.com/clusterd/clusterd/node"
	"github.com/clusterd/clusterd/topology"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// meshSize is one full mesh of the scale step.
type meshSize struct {
	key            string // figure id part: wide (many nodes), deep (many tables)
	nodes, tables  int
	converge, rssM float64 // targets: seconds, MB (0: none)
}

// clusterdScale: full meshes of real clusterd processes (every table
// replicated both ways between every pair): first add_node → every lane
// flowing, memory, sources and consumers per node, a kill -9 restart, and
// nats-server's warnings meanwhile.
func (r *runner) clusterdScale() error {
	var errs []error
	for _, m := range r.sz.meshes {
		if err := r.scaleMesh(m); err != nil {
			errs = append(errs, fmt.Errorf("%d nodes × %d tables: %w", m.nodes, m.tables, err))
		}
	}
	return joinErrs(errs)
}

func (r *runner) scaleMesh(sz meshSize) error {
	bin, err := r.clusterdBinary()
	if err != nil {
		return err
	}
	dir := filepath.Join(r.dir, "scale-"+sz.key)
	keyFile := filepath.Join(dir, "issuer.key")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	key, err := issuerKey(keyFile)
	if err != nil {
		return err
	}
	tok, err := auth.Mint(key, "admin", events.SuperUser, time.Hour)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.ctx, 8*time.Minute)
	defer cancel()

	names := make([]string, sz.nodes)
	procs := make([]*proc, sz.nodes)
	defer func() {
		for _, p := range procs {
			if p != nil {
				p.kill()
			}
		}
	}()
	for i := range names {
		names[i] = fmt.Sprintf("s%02d", i+1)
	}
	// Started a few at a time, each routed to the first: the hubs mesh by
	// gossip.
	for i, name := range names {
		cfg, err := procConfig(dir, name, keyFile, r.sz.requestTimeout)
		if err != nil {
			return err
		}
		// nats-server's backward-scan notices are logged at debug.
		cfg.Logging.Level = "debug"
		if i > 0 {
			cfg.Clustering.HubServer.Cluster.Network.Routes = []node.RouteConfig{{Host: "127.0.0.1", Port: procs[0].cfg.Clustering.HubServer.Cluster.Network.Port}}
		}
		if procs[i], err = startProc(bin, cfg); err != nil {
			return err
		}
	}
	conns := make([]*nats.Conn, sz.nodes)
	jss := make([]jetstream.JetStream, sz.nodes)
	for i, p := range procs {
		if conns[i], err = p.conn(); err != nil {
			return err
		}
		defer conns[i].Close()
		jss[i], _ = jetstream.New(conns[i])
	}
	tables := tableNames(sz.tables)
	probes := probeTables(tables)
	if err := eachNode(sz.nodes, func(i int) error { return createTables(conns[i], tok, tables) }); err != nil {
		return err
	}
	r.logf("scale %s: %d processes up, %d tables each; adding nodes", sz.key, sz.nodes, sz.tables)

	// Every pair once, from the lower-numbered node; each node sends its
	// add_node requests one after another, the nodes at once.
	start := time.Now()
	if err := eachNode(sz.nodes, func(i int) error {
		for j := i + 1; j < sz.nodes; j++ {
			if _, err := call(conns[i], tok, "add_node", map[string]any{"node_name": names[j], "subscriptions": subs(tables)}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	answered := time.Since(start)
	if err := eachNode(sz.nodes, func(i int) error { return publishProbes(ctx, jss[i], names[i], probes, "1") }); err != nil {
		return err
	}
	if err := eachNode(sz.nodes, func(i int) error {
		return waitHolds(ctx, 4*time.Minute, "probes on "+names[i], jss[i], wantFrom(others(names, names[i]), probes, 1))
	}); err != nil {
		return err
	}
	converged := time.Since(start)
	r.set("scale."+sz.key+".converge", secs(converged), fmt.Sprintf("%d nodes × %d tables, real processes, every table both ways between every pair: the %d add_node requests (each node sending its own in turn, the nodes at once) were answered after %v; then a transaction on one table of each of the %d lanes per origin, from every node, reached every other node.",
		sz.nodes, sz.tables, sz.nodes*(sz.nodes-1)/2, answered.Round(time.Millisecond), len(probes)))

	time.Sleep(r.sz.settle)
	var rss []float64
	for _, p := range procs {
		v, err := rssMB(p.pid())
		if err != nil {
			return err
		}
		rss = append(rss, v)
	}
	sort.Float64s(rss)
	r.set("scale."+sz.key+".rss", rss[len(rss)-1], fmt.Sprintf("largest VmRSS of the %d processes after everything flowed (smallest %.1f MB, median %.1f MB).", len(rss), rss[0], rss[len(rss)/2]))
	var sources, consumers []int
	for i := range procs {
		s, err := jss[i].Stream(ctx, topology.TxnStreamName)
		if err != nil {
			return err
		}
		info := s.CachedInfo()
		sources = append(sources, len(info.Config.Sources))
		consumers = append(consumers, info.State.Consumers)
	}
	sort.Ints(sources)
	sort.Ints(consumers)
	r.set("scale."+sz.key+".sources", float64(sources[len(sources)-1]), fmt.Sprintf("JetStream sources on a node's transaction stream, most of any node (fewest %d): one lane per peer and shard of %d tables, %d lanes per peer here.", sources[0], topology.MaxLaneTables, topology.LaneCount(sz.tables)))
	r.set("scale."+sz.key+".consumers", float64(consumers[len(consumers)-1]), fmt.Sprintf("consumers a node's transaction stream holds for its peers' lanes, most of any node (fewest %d).", consumers[0]))

	// cluster_status (every peer asked, lag per table) and cluster_network
	// (every node answers) on the first node, at this size.
	for _, o := range []string{"cluster_status", "cluster_network"} {
		var ds []time.Duration
		for i := 0; i < r.sz.scaleCalls; i++ {
			t0 := time.Now()
			if _, err := call(conns[0], tok, o, map[string]any{}); err != nil {
				return fmt.Errorf("%s: %w", o, err)
			}
			ds = append(ds, time.Since(t0))
		}
		id := "scale." + sz.key + "." + strings.TrimPrefix(o, "cluster_")
		r.set(id+"_p50", ms(pct(ds, 50)), fmt.Sprintf("%d calls on %s, one after another, with %d peers × %d tables (the trio's cluster_status has 2 peers).", len(ds), names[0], sz.nodes-1, sz.tables))
		r.set(id+"_p99", ms(pct(ds, 99)))
	}

	// kill -9 the last node; the others write while it is down; it
	// restarts and writes; every lane of every pair must flow again.
	last := sz.nodes - 1
	procs[last].kill()
	killed := time.Now()
	if err := eachNode(last, func(i int) error { return publishProbes(ctx, jss[i], names[i], probes, "2") }); err != nil {
		return err
	}
	if err := procs[last].start(); err != nil {
		return err
	}
	if err := publishProbes(ctx, jss[last], names[last], probes, "2"); err != nil {
		return err
	}
	if err := eachNode(sz.nodes, func(i int) error {
		return waitHolds(ctx, 4*time.Minute, "probes on "+names[i]+" after the restart", jss[i], wantFrom(others(names, names[i]), probes, 2))
	}); err != nil {
		return err
	}
	r.set("scale."+sz.key+".restart", secs(time.Since(killed)), fmt.Sprintf("%s SIGKILLed and restarted on its data; until transactions written by the others while it was down, and by it after, on one table of each lane, are on every node exactly once.", names[last]))

	if d := os.Getenv("CLUSTERBENCH_KEEP_LOGS"); d != "" {
		for i, p := range procs {
			b, _ := os.ReadFile(p.log)
			_ = os.WriteFile(filepath.Join(d, sz.key+"-"+names[i]+".log"), b, 0o600)
		}
	}
	slow, scans, example := 0, 0, ""
	for _, p := range procs {
		b, err := os.ReadFile(p.log)
		if err != nil {
			return err
		}
		for _, l := range strings.Split(string(b), "\n") {
			switch {
			case strings.Contains(l, "took too long"):
				slow++
				if example == "" {
					example = tail(l, 300)
				}
			case strings.Contains(l, "backward scan"):
				scans++
			}
		}
	}
	note := "nats-server's \"took too long\" warnings (an internal subscription, such as a stream update, blocked) in every node's log over the whole step."
	if example != "" {
		note += " For example: " + example
	}
	r.set("scale."+sz.key+".slow", float64(slow), note)
	r.set("scale."+sz.key+".scans", float64(scans), "nats-server's \"Sourcing state is outdated; attempting to recover using backward scan\" notices over the whole step: one per new source on a stream that already holds messages — here new lanes (set-up, a restarted peer's lanes rebuilt); a table joining or leaving a flowing lane makes none.")
	return nil
}

// eachNode runs f for nodes 0..n-1 at once and joins their errors.
func eachNode(n int, f func(i int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = f(i) }()
	}
	wg.Wait()
	return joinErrs(errs)
}
