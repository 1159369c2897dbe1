package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/clusterd/clusterd/client"
)

// replicateCmd runs `clusterd replicate`: replication is pairwise and not
// transitive (n1 replicating with n2 and with n3 does not carry n2's
// transactions to n3), so replicating tables on all N nodes of a mesh takes
// every pair, N(N-1)/2 set_node_replication calls, each setting both
// directions. This command makes them, through the mesh from one node.
func replicateCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("clusterd replicate", flag.ContinueOnError)
	var r remoteFlags
	r.register(fs, false)
	tables := fs.String("tables", "", "tables to replicate, database.table (database defaults to data), comma-separated")
	startTime := fs.String("start-time", "", "replicate each table's transactions from this time (RFC 3339, or a date: midnight UTC); default: from when each pair is set up")
	nodesFlag := fs.String("nodes", "", "the nodes, comma-separated (default: every node that answers cluster_network)")
	if err := parseFlags(fs, args, stdout, "clusterd replicate --tables db.t[,db.t…] [--start-time TIME] [--nodes a,b,…] [--server URL --user U --password P | --context NAME] [--token T | --config FILE]"); err != nil {
		return err
	}
	keys, err := parseTables(*tables)
	if err != nil {
		return fmt.Errorf("clusterd replicate: %w", err)
	}
	var start *time.Time
	if *startTime != "" {
		t, err := parseStartTime(*startTime)
		if err != nil {
			return fmt.Errorf("clusterd replicate: --start-time %q: %w", *startTime, err)
		}
		start = &t
	}
	caller, err := r.dial()
	if err != nil {
		return fmt.Errorf("clusterd replicate: %w", err)
	}
	defer caller.close()
	ctx := context.Background()
	call := func(node, op string, req, reply any) error {
		cctx, cancel := context.WithTimeout(ctx, r.timeout)
		defer cancel()
		return caller.onNode(node).call(cctx, op, req, reply)
	}

	var nodes []string
	if *nodesFlag != "" {
		for _, n := range strings.Split(*nodesFlag, ",") {
			if n = strings.TrimSpace(n); n != "" && !slices.Contains(nodes, n) {
				nodes = append(nodes, n)
			}
		}
	} else {
		cctx, cancel := context.WithTimeout(ctx, r.timeout)
		var nw client.ClusterNetworkRequest
		var rep client.ClusterNetworkReply
		err := caller.call(cctx, "cluster_network", nw, &rep)
		cancel()
		if err != nil {
			return fmt.Errorf("clusterd replicate: find the mesh's nodes (cluster_network): %w", err)
		}
		for _, n := range rep.Nodes {
			nodes = append(nodes, n.Name)
		}
	}
	slices.Sort(nodes)
	if len(nodes) < 2 {
		return fmt.Errorf("clusterd replicate: %d node(s) found (%s): replication needs at least two; are the routes up (clusterd status)?", len(nodes), strings.Join(nodes, ", "))
	}
	from := "from when each pair is set up"
	if start != nil {
		from = "from " + start.UTC().Format(time.RFC3339Nano)
	}
	pairs := len(nodes) * (len(nodes) - 1) / 2
	fmt.Fprintf(stdout, "Replicating %s on %s: %d pairs, both ways, %s.\n", tableList(keys), strings.Join(nodes, ", "), pairs, from)

	// Every node holds the tables, so no subscription is skipped.
	broken := map[string]string{}
	for _, n := range nodes {
		for _, k := range keys {
			if err := call(n, "create_table", client.CreateTableRequest{Database: k.db, Table: k.table}, nil); err != nil {
				broken[n] = describeCallErr(err)
				fmt.Fprintf(stdout, "  %-24s FAILED: create table %s.%s: %s\n", n, k.db, k.table, broken[n])
				break
			}
		}
	}
	subs := make([]client.Subscription, len(keys))
	for i, k := range keys {
		subs[i] = client.Subscription{Database: k.db, Table: k.table, Subscribe: true, Publish: true, StartTime: start}
	}
	var failed []string
	for i, a := range nodes {
		for _, b := range nodes[i+1:] {
			pair := a + " <-> " + b
			var err error
			switch {
			case broken[a] != "":
				err = fmt.Errorf("%s could not create the tables", a)
			case broken[b] != "":
				err = fmt.Errorf("%s could not create the tables", b)
			default:
				var rep client.UpdateNodeReply
				err = call(a, "set_node_replication", client.NodeRequest{NodeName: b, Subscriptions: subs}, &rep)
				if err == nil && len(rep.Skipped) > 0 {
					err = fmt.Errorf("%d subscription(s) skipped: %s", len(rep.Skipped), rep.Message)
				}
			}
			if err != nil {
				failed = append(failed, pair)
				fmt.Fprintf(stdout, "  %-24s FAILED: %s\n", pair, describeCallErr(err))
				continue
			}
			fmt.Fprintf(stdout, "  %-24s ok\n", pair)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("clusterd replicate: %d of %d pairs failed (%s); the others are set. Fix what is named above and run the same command again: it only sets what is missing",
			len(failed), pairs, strings.Join(failed, ", "))
	}
	fmt.Fprintf(stdout, "All %d pairs set. Watch them converge with: clusterd status --watch\n", pairs)
	return nil
}

type tableKey struct{ db, table string }

func parseTables(s string) ([]tableKey, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("--tables is required, e.g. --tables dev.dog,dev.cat")
	}
	var out []tableKey
	for _, t := range strings.Split(s, ",") {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		db, table, ok := strings.Cut(t, ".")
		if !ok {
			db, table = "data", t
		}
		if db == "" || table == "" || strings.Contains(table, ".") {
			return nil, fmt.Errorf("--tables: %q is not database.table", t)
		}
		k := tableKey{db, table}
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out, nil
}

func tableList(keys []tableKey) string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.db + "." + k.table
	}
	return strings.Join(out, ", ")
}

// parseStartTime reads RFC 3339 or a date (midnight UTC), as start_time is.
func parseStartTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	return time.Time{}, errors.New("want RFC 3339 (2026-01-02T15:04:05Z) or a date (2026-01-02)")
}

// describeCallErr adds what to do to the errors a user meets here.
func describeCallErr(err error) string {
	var ce *client.Error
	if errors.As(err, &ce) && ce.Status == 401 {
		return ce.Message + " (a node reached through the mesh must trust the token's issuer: give the nodes one auth.issuerKeyFile, or add the issuer to auth.trustedIssuers)"
	}
	return err.Error()
}
