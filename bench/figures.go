package bench

import "fmt"

// Targets of issue 5, as checks over a figure's value, its ratio to its
// floor, and every floor measured in the run.
func atMostRatio(x float64) func(v, ratio float64, _ map[string]float64) (bool, string) {
	return func(_, ratio float64, _ map[string]float64) (bool, string) {
		return ratio <= x, fmt.Sprintf("≤ %g× floor", x)
	}
}

func atLeastRatio(x float64) func(v, ratio float64, _ map[string]float64) (bool, string) {
	return func(_, ratio float64, _ map[string]float64) (bool, string) {
		return ratio >= x, fmt.Sprintf("≥ %g× floor", x)
	}
}

func atMost(x float64, unit string) func(v, ratio float64, _ map[string]float64) (bool, string) {
	return func(v, _ float64, _ map[string]float64) (bool, string) {
		return v <= x, fmt.Sprintf("≤ %g %s", x, unit)
	}
}

func atLeast(x float64, unit string) func(v, ratio float64, _ map[string]float64) (bool, string) {
	return func(v, _ float64, _ map[string]float64) (bool, string) {
		return v >= x, fmt.Sprintf("≥ %g %s", x, unit)
	}
}

// mutateTarget: ack p50 ≤ echo p50 + 1.3 × synced-write p50.
func mutateTarget(v, _ float64, floors map[string]float64) (bool, string) {
	echo, okE := floors["floor.echo.p50"]
	sync, okS := floors["floor.badger.sync_p50"]
	if !okE || !okS {
		return false, "≤ echo p50 + 1.3 × synced write p50 (floors missing)"
	}
	limit := echo + 1.3*sync
	return v <= limit, fmt.Sprintf("≤ echo p50 + 1.3 × sync p50 = %s µs", fmtNum(limit))
}

// catalogue is every figure of a run, in report order, without values.
func catalogue() []*Figure {
	return []*Figure{
		// Floors.
		{ID: "floor.echo.p50", Name: "floor: NATS echo p50, 1 requester", Unit: "µs"},
		{ID: "floor.echo.p99", Name: "floor: NATS echo p99, 1 requester", Unit: "µs"},
		{ID: "floor.echo.p50_32", Name: "floor: NATS echo p50, 32 requesters", Unit: "µs"},
		{ID: "floor.echo.p99_32", Name: "floor: NATS echo p99, 32 requesters", Unit: "µs"},
		{ID: "floor.echo.rate_32", Name: "floor: NATS echo throughput, 32 requesters", Unit: "req/s"},
		{ID: "floor.badger.sync_p50", Name: "floor: synced Badger write p50", Unit: "µs"},
		{ID: "floor.badger.sync2_p50", Name: "floor: two synced writes side by side (two stores, one disk) p50", Unit: "µs"},
		{ID: "floor.badger.rate_64", Name: "floor: synced Badger writes, 64 writers", Unit: "writes/s"},
		{ID: "floor.mesh.p50", Name: "floor: echo across two nodes' servers (leaf→hub→hub→leaf) p50", Unit: "µs"},
		{ID: "floor.mesh.repl_rate", Name: "floor: bare source across two nodes' servers while publishing (1 KiB): rate until all in", Unit: "msgs/s"},
		{ID: "floor.mutate", Name: "floor: echo + mesh echo + two side-by-side synced writes", Unit: "µs"},
		{ID: "floor.js.pub_p50", Name: "floor: JetStream publish p50 (1 KiB, file)", Unit: "µs"},
		{ID: "floor.js.pub_rate", Name: "floor: JetStream publish throughput (1 KiB, file)", Unit: "msgs/s"},
		{ID: "floor.js.pub_cpu", Name: "floor: CPU per published message (1 KiB, file)", Unit: "µs"},
		{ID: "floor.source.start_p50", Name: "floor: new bare source, creation → first message p50", Unit: "ms"},
		{ID: "floor.source.join_p50", Name: "floor: table joining a flowing durable-consumer source (filter update on the origin) → first message p50", Unit: "ms"},
		{ID: "floor.source.start_big_p50", Name: "floor: new bare source on a stream holding the bulk p50", Unit: "ms"},
		{ID: "floor.source.catchup_rate", Name: "floor: bare source catch-up across a leafnode link", Unit: "msgs/s"},
		{ID: "floor.source.repl_rate", Name: "floor: publish on x while y sources it (1 KiB): rate until all on y", Unit: "msgs/s"},
		{ID: "floor.source.lat_p50", Name: "floor: bare source latency p50 (publish → visible)", Unit: "ms"},
		{ID: "floor.source.lat_p99", Name: "floor: bare source latency p99 (publish → visible)", Unit: "ms"},
		{ID: "floor.route.up_p50", Name: "floor: bare route reload → connected p50", Unit: "ms"},
		{ID: "floor.rss.servers", Name: "floor: RSS of hub + leaf servers alone (process)", Unit: "MB"},

		// clusterd.
		{ID: "floor.echo_node.p50", Name: "floor: echo on the node's own leaf server, alternating with the reads, p50, 1 requester", Unit: "µs"},
		{ID: "floor.echo_node.p99", Name: "floor: echo on the node's own leaf server, p99, 1 requester", Unit: "µs"},
		{ID: "floor.echo_node.p50_32", Name: "floor: echo on the node's own leaf server, p50, 32 requesters", Unit: "µs"},
		{ID: "floor.echo_node.p99_32", Name: "floor: echo on the node's own leaf server, p99, 32 requesters", Unit: "µs"},
		{ID: "floor.echo_node.rate_32", Name: "floor: echo on the node's own leaf server, throughput, 32 requesters", Unit: "req/s"},
		{ID: "read.p50", Name: "cluster_get_routes p50, 1 requester", Unit: "µs", Floor: "floor.echo_node.p50", check: atMostRatio(1.5), Ref: "4 ms"},
		{ID: "read.p99", Name: "cluster_get_routes p99, 1 requester", Unit: "µs", Floor: "floor.echo_node.p99", check: atMostRatio(2)},
		{ID: "read.p50_32", Name: "cluster_get_routes p50, 32 requesters", Unit: "µs", Floor: "floor.echo_node.p50_32", check: atMostRatio(1.5)},
		{ID: "read.p99_32", Name: "cluster_get_routes p99, 32 requesters", Unit: "µs", Floor: "floor.echo_node.p99_32", check: atMostRatio(2)},
		{ID: "read.rate_32", Name: "cluster_get_routes throughput, 32 requesters", Unit: "req/s", Floor: "floor.echo_node.rate_32", check: atLeastRatio(0.5)},
		{ID: "status.p50", Name: "cluster_status p50, 2 peers", Unit: "µs", Floor: "floor.echo.p50", Ref: "20 ms"},
		{ID: "status.p99", Name: "cluster_status p99, 2 peers", Unit: "µs", Floor: "floor.echo.p99"},
		{ID: "mutate.p50", Name: "set_node_replication ack p50, 1 client", Unit: "µs", Floor: "floor.mutate", check: mutateTarget, Ref: "1.1 s"},
		{ID: "mutate.p99", Name: "set_node_replication ack p99, 1 client", Unit: "µs", Floor: "floor.mutate"},
		{ID: "mutate.p50_64", Name: "set_node_replication ack p50, 64 clients", Unit: "µs", Floor: "floor.mutate"},
		{ID: "mutate.p99_64", Name: "set_node_replication ack p99, 64 clients", Unit: "µs", Floor: "floor.mutate"},
		{ID: "mutate.rate_64", Name: "set_node_replication throughput, 64 clients", Unit: "acks/s", Floor: "floor.badger.rate_64"},
		{ID: "mutate.acks_per_sync_64", Name: "acks per synced write, 64 clients", Unit: "acks", check: atLeast(4, "acks")},
		{ID: "rejected.commits", Name: "Badger commits of rejected requests", Unit: "commits", check: atMost(0, "commits")},
		{ID: "route.converge_p50", Name: "route convergence p50 (reply → meshed)", Unit: "ms", Floor: "floor.route.up_p50", check: atMost(50, "ms")},
		{ID: "route.converge_p99", Name: "route convergence max (reply → meshed)", Unit: "ms", Floor: "floor.route.up_p50"},
		{ID: "sub.converge_p50", Name: "subscription convergence p50 (reply → a's first txn on the peer b)", Unit: "ms", Floor: "floor.source.join_p50", check: atMost(10, "ms"), Ref: "1.15 s"},
		{ID: "sub.converge_max", Name: "subscription convergence max", Unit: "ms", Floor: "floor.source.join_p50"},
		{ID: "sub.converge_both_p50", Name: "subscription convergence p50, both directions flowing", Unit: "ms", Floor: "floor.source.join_p50", check: atMost(10, "ms")},
		{ID: "sub.converge_big_p50", Name: "subscription convergence p50, streams holding the bulk", Unit: "ms", Floor: "floor.source.join_p50", check: atMost(10, "ms")},
		{ID: "repl.lat_p50", Name: "replication latency p50 (publish on A → visible on B)", Unit: "ms", Floor: "floor.source.lat_p50", check: atMost(1, "ms"), Ref: "10 ms"},
		{ID: "repl.lat_p99", Name: "replication latency p99 (publish on A → visible on B)", Unit: "ms", Floor: "floor.source.lat_p99"},
		{ID: "repl.rate", Name: "replication throughput (publish on A → all on B)", Unit: "msgs/s", Floor: "floor.js.pub_rate", check: atLeastRatio(0.8)},
		{ID: "repl.rate_bare", Name: "replication throughput, against bare sourcing (leaf link)", Unit: "msgs/s", Floor: "floor.source.repl_rate"},
		{ID: "repl.rate_mesh", Name: "replication throughput, against bare sourcing on clusterd's path", Unit: "msgs/s", Floor: "floor.mesh.repl_rate"},
		{ID: "repl.cpu", Name: "replication CPU per message (publish on A → stored on B)", Unit: "µs", Floor: "floor.js.pub_cpu"},
		{ID: "repl.rate_ceiling", Name: "replication throughput this machine's CPUs allow at that cost", Unit: "msgs/s", Floor: "floor.js.pub_rate"},
		{ID: "rss.idle", Name: "RSS of an idle node (process)", Unit: "MB", Floor: "floor.rss.servers", check: atMost(64, "MB"), Ref: "420 MB"},
		{ID: "rss.tables", Name: "RSS of a node with 2 peers × N subscribed tables (process)", Unit: "MB", Floor: "rss.idle"},
		{ID: "rss.per_table", Name: "RSS per subscribed table (above idle)", Unit: "KB"},
		{ID: "restart.serving", Name: "restart at N tables: kill -9 → /readyz", Unit: "s"},
		{ID: "restart.flowing", Name: "restart at N tables: kill -9 → all replication flowing", Unit: "s", check: atMost(5, "s")},
		{ID: "mesh.converge", Name: "5 nodes × N tables full mesh: first add_node → all flowing", Unit: "s", check: atMost(2, "s")},
		{ID: "scale.wide.converge", Name: "scale, many nodes (20 × 100 tables, processes): first add_node → all flowing", Unit: "s", check: atMost(10, "s")},
		{ID: "scale.wide.rss", Name: "scale, many nodes: RSS of the largest node", Unit: "MB"},
		{ID: "scale.wide.sources", Name: "scale, many nodes: sources per node", Unit: "sources"},
		{ID: "scale.wide.consumers", Name: "scale, many nodes: consumers per node", Unit: "consumers"},
		{ID: "scale.wide.status_p50", Name: "scale, many nodes: cluster_status p50", Unit: "ms"},
		{ID: "scale.wide.status_p99", Name: "scale, many nodes: cluster_status p99", Unit: "ms"},
		{ID: "scale.wide.network_p50", Name: "scale, many nodes: cluster_network p50", Unit: "ms"},
		{ID: "scale.wide.network_p99", Name: "scale, many nodes: cluster_network p99", Unit: "ms"},
		{ID: "scale.wide.restart", Name: "scale, many nodes: kill -9 of one node → all flowing", Unit: "s"},
		{ID: "scale.wide.slow", Name: "scale, many nodes: nats-server \"took too long\" warnings", Unit: "lines", check: atMost(0, "lines")},
		{ID: "scale.wide.scans", Name: "scale, many nodes: nats-server backward scans (new sources)", Unit: "scans"},
		{ID: "scale.deep.converge", Name: "scale, many tables (10 × 2000 tables, processes): first add_node → all flowing", Unit: "s", check: atMost(10, "s")},
		{ID: "scale.deep.rss", Name: "scale, many tables: RSS of the largest node", Unit: "MB", check: atMost(128, "MB")},
		{ID: "scale.deep.sources", Name: "scale, many tables: sources per node", Unit: "sources"},
		{ID: "scale.deep.consumers", Name: "scale, many tables: consumers per node", Unit: "consumers"},
		{ID: "scale.deep.status_p50", Name: "scale, many tables: cluster_status p50", Unit: "ms", check: atMost(250, "ms")},
		{ID: "scale.deep.status_p99", Name: "scale, many tables: cluster_status p99", Unit: "ms"},
		{ID: "scale.deep.network_p50", Name: "scale, many tables: cluster_network p50", Unit: "ms", check: atMost(250, "ms")},
		{ID: "scale.deep.network_p99", Name: "scale, many tables: cluster_network p99", Unit: "ms"},
		{ID: "scale.deep.restart", Name: "scale, many tables: kill -9 of one node → all flowing", Unit: "s"},
		{ID: "scale.deep.slow", Name: "scale, many tables: nats-server \"took too long\" warnings", Unit: "lines", check: atMost(0, "lines")},
		{ID: "scale.deep.scans", Name: "scale, many tables: nats-server backward scans (new sources)", Unit: "scans"},
	}
}
