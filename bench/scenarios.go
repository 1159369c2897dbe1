package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/clusterd/clusterd/auth"
	"github.com/clusterd/clusterd/events"
	"github.com/clusterd/clusterd/node"
	"github.com/clusterd/clusterd/storage"
	"github.com/clusterd/clusterd/topology"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// clusterdTrio runs three in-process nodes a, b, c (a holds subscriptions
// with b and c) and measures reads, cluster_status, mutations, rejected
// requests, replication and subscription convergence on them.
func (r *runner) clusterdTrio() error {
	ctx, cancel := context.WithTimeout(r.ctx, 10*time.Minute)
	defer cancel()
	a, err := r.startNode("a", nil)
	if err != nil {
		return err
	}
	defer a.close()
	b, err := r.startNode("b", a)
	if err != nil {
		return err
	}
	defer b.close()
	c, err := r.startNode("c", a)
	if err != nil {
		return err
	}
	defer c.close()
	if err := waitFor(10*time.Second, time.Millisecond, "mesh of a, b, c", func() bool { return meshed(a, b, c) }); err != nil {
		return err
	}
	clients := r.sz.tableClients
	tables := append(tableNames(clients), "lat", "tput")
	for _, m := range []*member{a, b} {
		if err := createTables(m.nc, m.tok, tables); err != nil {
			return err
		}
	}
	if err := createTables(c.nc, c.tok, tables[:1]); err != nil {
		return err
	}
	if _, err := a.op("add_node", map[string]any{"node_name": "b", "subscriptions": subs(tables)}); err != nil {
		return err
	}
	if _, err := a.op("add_node", map[string]any{"node_name": "c", "subscriptions": subs(tables[:1])}); err != nil {
		return err
	}
	// Measure a settled cluster: every node sourcing from its peers.
	err = waitFor(time.Minute, 5*time.Millisecond, "replication converged", func() bool {
		for _, m := range []*member{a, b, c} {
			for _, p := range m.n.Repl.Status() {
				if !p.Converged || p.Sources == 0 {
					return false
				}
			}
			if len(m.n.Repl.Status()) == 0 {
				return false
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	time.Sleep(r.sz.settle)

	if err := r.rejected(a); err != nil {
		return err
	}

	// Reads.
	conns, err := dial(a.n.LeafURL(), 32, nats.UserInfo(a.n.OperatorUser(), a.n.OperatorPassword()))
	if err != nil {
		return err
	}
	defer closeAll(conns)
	get := func(int) *nats.Msg { return opMsg(a.tok, "cluster_get_routes", []byte(`{}`)) }
	// The reads' floor is an echo on the same server (a's leaf server, the
	// responder connected in-process as clusterd's own connections are, in
	// the requesters' account, the requests carrying the same header),
	// measured in rounds alternating with the reads so that both see the
	// same load on this shared machine. The reads cross from the operator's
	// account into clusterd's (a service import).
	resp, err := a.n.Servers.ProxyConn(topology.AppAccount(a.n.OperatorUser()), "bench-echo")
	if err != nil {
		return err
	}
	defer resp.Close()
	if err := serveEcho(resp, "bench.echo"); err != nil {
		return err
	}
	echo := func(int) *nats.Msg {
		m := nats.NewMsg("bench.echo")
		m.Header.Set("Authorization", "Bearer "+a.tok)
		m.Data = []byte(`{}`)
		return m
	}
	const rounds = 5
	var echoOne, readOne, echoMany, readMany loadResult
	for i := 0; i < rounds; i++ {
		for _, step := range []struct {
			msg   func(int) *nats.Msg
			check func(*nats.Msg) error
			one   *loadResult
			many  *loadResult
		}{{echo, nil, &echoOne, &echoMany}, {get, replyOK, &readOne, &readMany}} {
			one, err := requestLoad(conns[:1], step.msg, r.sz.warm, 0, max(1, r.sz.reqCount/rounds), step.check)
			if err != nil {
				return fmt.Errorf("reads and their echo floor: %w", err)
			}
			many, err := requestLoad(conns, step.msg, r.sz.warm/2, r.sz.loadDur/rounds, 0, step.check)
			if err != nil {
				return fmt.Errorf("reads and their echo floor (32): %w", err)
			}
			step.one.lat = append(step.one.lat, one.lat...)
			step.many.lat = append(step.many.lat, many.lat...)
			step.many.rate += many.rate / rounds
		}
	}
	r.set("floor.echo_node.p50", us(pct(echoOne.lat, 50)))
	r.set("floor.echo_node.p99", us(pct(echoOne.lat, 99)))
	r.set("floor.echo_node.p50_32", us(pct(echoMany.lat, 50)))
	r.set("floor.echo_node.p99_32", us(pct(echoMany.lat, 99)))
	r.set("floor.echo_node.rate_32", echoMany.rate)
	r.set("read.p50", us(pct(readOne.lat, 50)), fmt.Sprintf("%d reads and %d echoes in %d alternating rounds.", len(readOne.lat), len(echoOne.lat), rounds))
	r.set("read.p99", us(pct(readOne.lat, 99)))
	r.set("read.p50_32", us(pct(readMany.lat, 50)))
	r.set("read.p99_32", us(pct(readMany.lat, 99)))
	r.set("read.rate_32", readMany.rate)

	if hasOperation(a.n, "cluster_status") {
		status := func(int) *nats.Msg { return opMsg(a.tok, "cluster_status", []byte(`{}`)) }
		check := func(m *nats.Msg) error {
			if err := replyOK(m); err != nil {
				return err
			}
			var st struct {
				Connections []json.RawMessage `json:"connections"`
			}
			if err := json.Unmarshal(m.Data, &st); err != nil || len(st.Connections) != 2 {
				return fmt.Errorf("cluster_status without 2 connections: %s", m.Data)
			}
			return nil
		}
		res, err := requestLoad(conns[:1], status, r.sz.warm, 0, r.sz.statusCount, check)
		if err != nil {
			return fmt.Errorf("cluster_status: %w", err)
		}
		r.set("status.p50", us(pct(res.lat, 50)))
		r.set("status.p99", us(pct(res.lat, 99)))
	} else {
		r.note("status.p50", "cluster_status is not an operation of this build (not merged yet).")
		r.note("status.p99", "cluster_status is not an operation of this build (not merged yet).")
	}

	// Replication.
	wLat, err := watch(ctx, b.js, topology.TxnStreamName, "txn.data.lat.a")
	if err != nil {
		return err
	}
	lats, err := trickle(ctx, a.js, "txn.data.lat.a", wLat, r.sz.latSamples)
	wLat.stop()
	if err != nil {
		return fmt.Errorf("replication latency: %w", err)
	}
	r.set("repl.lat_p50", ms(pct(lats, 50)))
	r.set("repl.lat_p99", ms(pct(lats, 99)))

	// Subscription convergence while the streams are small.
	toPeer, both, err := r.subscriptionTrials(ctx, a, b, "s", r.sz.startTrials)
	if err != nil {
		return err
	}
	r.set("sub.converge_p50", ms(pct(toPeer, 50)), fmt.Sprintf("%d trials: set_node_replication on a adds a new table to its subscriptions with b (a new source group on each node, as add_node makes); a transaction written on a right after the reply, until it is in b's stream. Streams hold a few hundred transactions.", len(toPeer)))
	r.set("sub.converge_max", ms(pct(toPeer, 100)))
	r.set("sub.converge_both_p50", ms(pct(both, 50)), "until transactions written on a and on b right after the reply have both reached the other node: two sources, each with its own 100–200 ms scheduling jitter.")
	t0, c0 := time.Now(), cpuTime()
	if err := publishAll(ctx, a.nc, "txn.data.tput.a", r.sz.bulk, 1024, pubWindow); err != nil {
		return err
	}
	published := time.Since(t0)
	if err := waitHolds(ctx, 2*time.Minute, "bulk on b", b.js, map[string]uint64{"txn.data.tput.a": uint64(r.sz.bulk)}); err != nil {
		return err
	}
	rate := float64(r.sz.bulk) / time.Since(t0).Seconds()
	perMsg := us(cpuTime()-c0) / float64(r.sz.bulk)
	r.set("repl.cpu", perMsg, "CPU time (user + system) of this process — publisher and the three nodes — from the first publish until all were on b, per message: a stores it, sources it out over four server hops, b stores it.")
	r.set("repl.rate_ceiling", float64(runtime.NumCPU())*1e6/perMsg,
		fmt.Sprintf("%d CPUs divided by the CPU each replicated message costs: the rate this machine could reach were replication CPU-bound with every core busy.", runtime.NumCPU()))
	r.set("repl.rate", rate,
		fmt.Sprintf("%d × 1 KiB published on a (%d in flight; publishing took %v), rate until all were in b's stream.", r.sz.bulk, pubWindow, published.Round(time.Millisecond)))
	r.set("repl.rate_bare", rate, "the same figure against bare servers doing the same on this machine: publish on x while y sources it over a leafnode link.")
	r.set("repl.rate_mesh", rate, "the same figure against a bare source between two nodes' leaf servers through their hubs (leaf→hub→route→hub→leaf), clusterd's path without clusterd.")

	// Subscription convergence again, now that the streams hold the bulk.
	toPeer, _, err = r.subscriptionTrials(ctx, a, b, "big", r.sz.bigTrials)
	if err != nil {
		return err
	}
	r.set("sub.converge_big_p50", ms(pct(toPeer, 50)), fmt.Sprintf("%d trials after %d transactions were stored on a and b: nats-server scans the stream backwards (loading every block) when a source is added, and a's look-up of b's start position waits for b's scan.", len(toPeer), r.sz.bulk))

	// Mutations: set_node_replication of a's subscription with b, each
	// client on its own table, flipping its publish flag every time: every
	// request is a real change of both nodes' records (and of b's sources,
	// which b's replication worker converges meanwhile).
	flips := make([]bool, max(clients, 1))
	mutate := func(i int) *nats.Msg {
		flips[i] = !flips[i]
		body, _ := json.Marshal(map[string]any{"node_name": "b", "subscriptions": []any{
			map[string]any{"table": tables[i], "subscribe": true, "publish": flips[i]}}})
		return opMsg(a.tok, "set_node_replication", body)
	}
	res, err := requestLoad(conns[:1], mutate, r.sz.warm, 0, r.sz.mutateCount, replyOK)
	if err != nil {
		return fmt.Errorf("set_node_replication: %w", err)
	}
	r.set("mutate.p50", us(pct(res.lat, 50)))
	r.set("mutate.p99", us(pct(res.lat, 99)))
	mconns, err := dial(a.n.LeafURL(), clients, nats.UserInfo(a.n.OperatorUser(), a.n.OperatorPassword()))
	if err != nil {
		return err
	}
	defer closeAll(mconns)
	var syncsA, syncsB int64
	counted := func(mid func()) {
		sa, sb := a.n.Store.Syncs(), b.n.Store.Syncs()
		mid()
		syncsA, syncsB = a.n.Store.Syncs()-sa, b.n.Store.Syncs()-sb
	}
	var loadErr error
	counted(func() { res, loadErr = requestLoad(mconns, mutate, 0, r.sz.loadDur, 0, replyOK) })
	if loadErr != nil {
		return fmt.Errorf("set_node_replication × %d: %w", clients, loadErr)
	}
	acks := len(res.lat)
	r.set("mutate.p50_64", us(pct(res.lat, 50)))
	r.set("mutate.p99_64", us(pct(res.lat, 99)))
	r.set("mutate.rate_64", res.rate)
	if syncsA > 0 {
		r.set("mutate.acks_per_sync_64", float64(acks)/float64(syncsA),
			fmt.Sprintf("%d acks; a synced its store %d times (each one WAL sync + one value-log sync), the peer b %d (%.2f acks per sync).",
				acks, syncsA, syncsB, float64(acks)/float64(max(syncsB, 1))))
	}

	return nil
}

// subscriptionTrials adds n new tables (prefix0, prefix1, …) to a's
// subscriptions with b, one at a time, and returns for each the time from
// the set_node_replication reply until a transaction written on a right
// after it is on the peer b (toPeer), and until transactions written on
// each node have reached the other (both: the later of the two; each
// direction is its own source, so this is the later of two start delays).
func (r *runner) subscriptionTrials(ctx context.Context, a, b *member, prefix string, n int) (toPeer, both []time.Duration, err error) {
	for i := 0; i < n; i++ {
		t := fmt.Sprintf("%s%04d", prefix, i)
		for _, m := range []*member{a, b} {
			if _, err := m.op("create_table", map[string]any{"table": t}); err != nil {
				return nil, nil, err
			}
		}
		onB, err := watch(ctx, b.js, topology.TxnStreamName, "txn.data."+t+".a")
		if err != nil {
			return nil, nil, err
		}
		onA, err := watch(ctx, a.js, topology.TxnStreamName, "txn.data."+t+".b")
		if err != nil {
			onB.stop()
			return nil, nil, err
		}
		_, err = a.op("set_node_replication", map[string]any{"node_name": "b", "subscriptions": []any{sub(t)}})
		replied := time.Now()
		if err == nil {
			_, err = a.js.Publish(ctx, "txn.data."+t+".a", []byte("first"))
		}
		if err == nil {
			_, err = b.js.Publish(ctx, "txn.data."+t+".b", []byte("first"))
		}
		var x, y arrival
		if err == nil {
			x, err = onB.next(30 * time.Second)
		}
		if err == nil {
			y, err = onA.next(30 * time.Second)
		}
		onA.stop()
		onB.stop()
		if err != nil {
			return nil, nil, fmt.Errorf("subscription %s: %w", t, err)
		}
		last := x.at
		if y.at.After(last) {
			last = y.at
		}
		toPeer = append(toPeer, x.at.Sub(replied))
		both = append(both, last.Sub(replied))
	}
	return toPeer, both, nil
}

// rejected sends requests that must be refused (bad token, wrong role,
// invalid bodies, unknown operations) and counts a's Badger commits.
func (r *runner) rejected(a *member) error {
	// Let background writes of the set-up settle first.
	last, since := a.n.Store.Commits(), time.Now()
	_ = waitFor(10*time.Second, 10*time.Millisecond, "quiet store", func() bool {
		if c := a.n.Store.Commits(); c != last {
			last, since = c, time.Now()
		}
		return time.Since(since) > 300*time.Millisecond
	})
	other, err := a.n.Token("bob", "cluster_user", time.Hour)
	if err != nil {
		return err
	}
	reqs := []struct {
		tok, op, body string
		status        string
	}{
		{"", "cluster_set_routes", `{"server":"hub","routes":[{"host":"127.0.0.1","port":1}]}`, "401"},
		{"not-a-token", "add_node", `{"node_name":"x","subscriptions":[{"table":"t0000","subscribe":true,"publish":true}]}`, "401"},
		{other, "cluster_set_routes", `{"server":"hub","routes":[{"host":"127.0.0.1","port":1}]}`, "403"},
		{other, "set_node_replication", `{"node_name":"b","subscriptions":[{"table":"t0000","subscribe":true,"publish":true}]}`, "403"},
		{a.tok, "cluster_set_routes", `{"server":"core","routes":[{"host":"","port":-1}]}`, "400"},
		{a.tok, "set_node_replication", `{"node_name":"b.c","subscriptions":[]}`, "400"},
		{a.tok, "add_node", `{"node_name":"b","subscriptions":[{"table":"t0000","subscribe":false,"publish":false}]}`, "400"},
		{a.tok, "remove_node", `{"node_name":"nobody"}`, "400"},
		{a.tok, "no_such_operation", `{}`, "400"},
		{a.tok, "create_table", `[1,2]`, "400"},
	}
	before, syncs := a.n.Store.Commits(), a.n.Store.Syncs()
	for i := 0; i < r.sz.rejected; i++ {
		for _, q := range reqs {
			resp, err := a.nc.RequestMsg(opMsg(q.tok, q.op, []byte(q.body)), 10*time.Second)
			if err != nil {
				return err
			}
			if got := resp.Header.Get("Nats-Service-Error-Code"); got != q.status {
				return fmt.Errorf("%s %s answered %q, want %s: %s", q.op, q.body, got, q.status, resp.Data)
			}
		}
	}
	n := r.sz.rejected * len(reqs)
	r.set("rejected.commits", float64(a.n.Store.Commits()-before),
		fmt.Sprintf("%d rejected requests (401, 403, 400 of %d kinds); Badger transactions meanwhile: %d.", n, len(reqs), a.n.Store.Syncs()-syncs))
	return nil
}

// clusterdRoutes: two fresh nodes per trial; cluster_set_routes on one,
// time from the reply until both hubs have the route.
func (r *runner) clusterdRoutes() error {
	var ds []time.Duration
	for i := 0; i < r.sz.routeTrials; i++ {
		a, err := r.startNode("ra", nil)
		if err != nil {
			return err
		}
		b, err := r.startNode("rb", nil)
		if err != nil {
			a.close()
			return err
		}
		_, err = b.op("cluster_set_routes", map[string]any{"server": "hub", "routes": []any{map[string]any{"host": "127.0.0.1", "port": a.n.Servers.Ports().Cluster}}})
		replied := time.Now()
		if err == nil {
			err = waitFor(10*time.Second, 200*time.Microsecond, "route up", func() bool { return meshed(a, b) })
		}
		d := time.Since(replied)
		b.close()
		a.close()
		if err != nil {
			return err
		}
		ds = append(ds, d)
	}
	r.set("route.converge_p50", ms(pct(ds, 50)), fmt.Sprintf("%d trials, a fresh pair of nodes each.", len(ds)))
	r.set("route.converge_p99", ms(pct(ds, 100)))
	return nil
}

// clusterdProcs runs clusterd as real processes: an idle node's memory;
// then three nodes with N tables each, all subscribed both ways between
// every pair: memory of one of them, and a kill -9 restart of it.
func (r *runner) clusterdProcs() error {
	bin, err := r.clusterdBinary()
	if err != nil {
		return err
	}
	dir := filepath.Join(r.dir, "procs")
	keyFile := filepath.Join(dir, "issuer.key")
	key, err := issuerKey(keyFile)
	if err != nil {
		return err
	}
	tok, err := auth.Mint(key, "admin", events.SuperUser, time.Hour)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.ctx, 10*time.Minute)
	defer cancel()

	cfg, err := procConfig(dir, "idle", keyFile, r.sz.requestTimeout)
	if err != nil {
		return err
	}
	idle, err := startProc(bin, cfg)
	if err != nil {
		return err
	}
	time.Sleep(r.sz.settle)
	idleRSS, err := rssMB(idle.pid())
	idle.kill()
	if err != nil {
		return err
	}
	r.set("rss.idle", idleRSS, fmt.Sprintf("VmRSS of the clusterd process %v after /readyz, clustering enabled, no peers.", r.sz.settle))

	names := []string{"p1", "p2", "p3"}
	var procs []*proc
	defer func() {
		for _, p := range procs {
			p.kill()
		}
	}()
	for i, name := range names {
		cfg, err := procConfig(dir, name, keyFile, r.sz.requestTimeout)
		if err != nil {
			return err
		}
		if i > 0 {
			cfg.Clustering.HubServer.Cluster.Network.Routes = []node.RouteConfig{{Host: "127.0.0.1", Port: procs[0].cfg.Clustering.HubServer.Cluster.Network.Port}}
		}
		p, err := startProc(bin, cfg)
		if err != nil {
			return err
		}
		procs = append(procs, p)
	}
	conns := make([]*nats.Conn, len(procs))
	for i, p := range procs {
		if conns[i], err = p.conn(); err != nil {
			return err
		}
		defer conns[i].Close()
	}
	tables := tableNames(r.sz.tables)
	probes := probeTables(tables)
	errs := make([]error, len(procs))
	var wg sync.WaitGroup
	for i := range procs {
		wg.Add(1)
		go func(i int) { defer wg.Done(); errs[i] = createTables(conns[i], tok, tables) }(i)
	}
	wg.Wait()
	if err := joinErrs(errs); err != nil {
		return err
	}
	for i := range procs {
		for j := i + 1; j < len(procs); j++ {
			if _, err := call(conns[i], tok, "add_node", map[string]any{"node_name": names[j], "subscriptions": subs(tables)}); err != nil {
				return err
			}
		}
	}
	jss := make([]jetstream.JetStream, len(procs))
	for i := range procs {
		jss[i], _ = jetstream.New(conns[i])
		if err := publishProbes(ctx, jss[i], names[i], probes, "1"); err != nil {
			return err
		}
	}
	for i := range procs {
		if err := waitHolds(ctx, 2*time.Minute, "probes on "+names[i], jss[i], wantFrom(others(names, names[i]), probes, 1)); err != nil {
			return err
		}
	}
	time.Sleep(r.sz.settle)
	last := len(procs) - 1
	tablesRSS, err := rssMB(procs[last].pid())
	if err != nil {
		return err
	}
	r.set("rss.tables", tablesRSS, fmt.Sprintf("N = %d: VmRSS of p3, which has %d tables subscribed both ways with p1 and p2 (%d lanes), after transactions flowed.", len(tables), len(tables), 2*topology.LaneCount(len(tables))))
	r.set("rss.per_table", (tablesRSS-idleRSS)*1024/float64(len(tables)), "(RSS with N tables − idle RSS) / N; includes Badger and JetStream state of the tables, not only replication.")

	// kill -9 p3; the others write while it is down; it restarts and
	// writes; everything must arrive exactly once.
	procs[last].kill()
	killed := time.Now()
	for i := 0; i < last; i++ {
		if err := publishProbes(ctx, jss[i], names[i], probes, "2"); err != nil {
			return err
		}
	}
	if err := procs[last].start(); err != nil {
		return err
	}
	serving := time.Since(killed)
	if err := publishProbes(ctx, jss[last], names[last], probes, "2"); err != nil {
		return err
	}
	for i := range procs {
		if err := waitHolds(ctx, 2*time.Minute, "probes on "+names[i]+" after the restart", jss[i], wantFrom(others(names, names[i]), probes, 2)); err != nil {
			return err
		}
	}
	flowing := time.Since(killed)
	r.set("restart.serving", secs(serving), fmt.Sprintf("N = %d; p3 restarted on the same data right after SIGKILL, /readyz polled every 2 ms.", len(tables)))
	r.set("restart.flowing", secs(flowing), fmt.Sprintf("until a transaction on one table of each of the %d shards, written by p1 and p2 while p3 was down and by p3 after it served, is on every other node exactly once.", len(probes)))
	return nil
}

func keysOf(tables []string) []storage.TableKey {
	out := make([]storage.TableKey, len(tables))
	for i, t := range tables {
		out[i] = storage.TableKey{Database: "data", Table: t}
	}
	return out
}

// clusterdMesh: five in-process nodes, N tables each, every table
// subscribed both ways between every pair.
func (r *runner) clusterdMesh() error {
	ctx, cancel := context.WithTimeout(r.ctx, 10*time.Minute)
	defer cancel()
	names := []string{"m1", "m2", "m3", "m4", "m5"}
	var ms []*member
	defer func() {
		for _, m := range ms {
			m.close()
		}
	}()
	for i, name := range names {
		var to *member
		if i > 0 {
			to = ms[0]
		}
		m, err := r.startNode(name, to)
		if err != nil {
			return err
		}
		ms = append(ms, m)
	}
	if err := waitFor(10*time.Second, time.Millisecond, "mesh of five", func() bool { return meshed(ms...) }); err != nil {
		return err
	}
	tables := tableNames(r.sz.tables)
	probes := probeTables(tables)
	errs := make([]error, len(ms))
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Add(1)
		go func(i int, m *member) { defer wg.Done(); errs[i] = createTables(m.nc, m.tok, tables) }(i, m)
	}
	wg.Wait()
	if err := joinErrs(errs); err != nil {
		return err
	}
	start := time.Now()
	for i, m := range ms {
		for _, o := range ms[i+1:] {
			if _, err := m.op("add_node", map[string]any{"node_name": o.name(), "subscriptions": subs(tables)}); err != nil {
				return err
			}
		}
	}
	answered := time.Since(start)
	for _, m := range ms {
		if err := publishProbes(ctx, m.js, m.name(), probes, "1"); err != nil {
			return err
		}
	}
	wantSources := topology.LaneCount(len(tables))
	for _, m := range ms {
		if err := waitHolds(ctx, 2*time.Minute, "probes on "+m.name(), m.js, wantFrom(others(names, m.name()), probes, 1)); err != nil {
			return err
		}
	}
	err := waitFor(2*time.Minute, 5*time.Millisecond, "every node converged on every peer", func() bool {
		for _, m := range ms {
			st := m.n.Repl.Status()
			if len(st) != len(ms)-1 {
				return false
			}
			for _, p := range st {
				if !p.Converged || p.Sources != wantSources {
					return false
				}
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	r.set("mesh.converge", secs(time.Since(start)), fmt.Sprintf("N = %d; the %d add_node requests were answered in %v; then a transaction on one table of each shard from every node reached every other node, and every node reports %d converged lanes per peer.", len(tables), len(ms)*(len(ms)-1)/2, answered.Round(time.Millisecond), wantSources))
	return nil
}
