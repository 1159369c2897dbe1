package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/clusterd/clusterd/client"
)

// statusSnapshot is what `clusterd status` shows: one node's view of the
// cluster, from cluster_get_routes, cluster_network and cluster_status.
type statusSnapshot struct {
	Node         string                      `json:"node"`
	At           time.Time                   `json:"at"`
	Routes       client.GetRoutesReply       `json:"routes"`
	Network      *client.ClusterNetworkReply `json:"network,omitempty"`
	NetworkError string                      `json:"network_error,omitempty"`
	Status       client.ClusterStatusReply   `json:"status"`
}

// statusCmd runs `clusterd status`.
func statusCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("clusterd status", flag.ContinueOnError)
	var r remoteFlags
	r.register(fs, true)
	nodeName := fs.String("node", "", "ask this node, through the mesh (ops.node.<name>), instead of the one connected to")
	watch := fs.Bool("watch", false, "refresh until Ctrl-C")
	every := fs.Duration("interval", 2*time.Second, "refresh interval with --watch")
	asJSON := fs.Bool("json", false, "print JSON (one object per refresh) instead of tables")
	if err := parseFlags(fs, args, stdout, "clusterd status [--server URL --user U --password P | --context NAME | --http URL [--ca FILE] [--cert FILE --key FILE]] [--token T | --config FILE] [--node NAME] [--watch] [--json]"); err != nil {
		return err
	}
	if *nodeName != "" && r.httpURL != "" {
		return fmt.Errorf("clusterd status: --node goes through the mesh over NATS; with --http, point --http at that node's operations API")
	}
	if *every < 100*time.Millisecond {
		return fmt.Errorf("clusterd status: --interval must be at least 100ms")
	}
	caller, err := r.dial()
	if err != nil {
		return fmt.Errorf("clusterd status: %w", err)
	}
	defer caller.close()
	if *nodeName != "" {
		caller = caller.onNode(*nodeName)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	for {
		snap, err := takeSnapshot(ctx, caller, r.timeout)
		switch {
		case err != nil && !*watch:
			return fmt.Errorf("clusterd status: %w", err)
		case *watch && !*asJSON:
			fmt.Fprint(stdout, "\033[H\033[2J") // clear the screen
		}
		if err != nil {
			fmt.Fprintf(stdout, "%s  clusterd status: %v\n", time.Now().Format("15:04:05"), err)
		} else if *asJSON {
			b, _ := json.Marshal(snap)
			fmt.Fprintln(stdout, string(b))
		} else {
			printStatus(stdout, snap)
		}
		if !*watch {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(*every):
		}
	}
}

func takeSnapshot(ctx context.Context, c opsCaller, timeout time.Duration) (statusSnapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var s statusSnapshot
	if err := c.call(ctx, "cluster_status", nil, &s.Status); err != nil {
		return s, err
	}
	s.Node, s.At = s.Status.NodeName, time.Now().UTC()
	if err := c.call(ctx, "cluster_get_routes", nil, &s.Routes); err != nil {
		return s, err
	}
	var nw client.ClusterNetworkReply
	if err := c.call(ctx, "cluster_network", client.ClusterNetworkRequest{}, &nw); err != nil {
		s.NetworkError = err.Error()
	} else {
		s.Network = &nw
	}
	return s, nil
}

func routeList(rs []client.Route) string {
	if len(rs) == 0 {
		return "-"
	}
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Host + ":" + strconv.Itoa(r.Port)
	}
	return strings.Join(out, ", ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// printStatus renders a snapshot as tables a person reads in a second.
func printStatus(w io.Writer, s statusSnapshot) {
	st := s.Status
	enabled := "clustering enabled"
	if !st.IsEnabled {
		enabled = "clustering disabled"
	}
	fmt.Fprintf(w, "clusterd status of %s at %s (%s)\n", s.Node, s.At.Format("15:04:05 UTC"), enabled)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(cells ...string) { fmt.Fprintln(tw, "  "+strings.Join(cells, "\t")) }

	fmt.Fprintln(w)
	switch {
	case s.Network != nil:
		fmt.Fprintf(w, "NODES (%d in the mesh answered cluster_network)\n", len(s.Network.Nodes))
		row("NODE", "RESPONSE", "ROUTED TO", "HUB ROUTES")
		for _, n := range s.Network.Nodes {
			row(n.Name, fmt.Sprintf("%dms", n.ResponseTime), orDash(strings.Join(n.ConnectedNodes, ", ")), routeList(n.Routes))
		}
		tw.Flush()
	default:
		fmt.Fprintf(w, "NODES: cluster_network did not answer (%s)\n", s.NetworkError)
	}

	fmt.Fprintf(w, "\nROUTES of %s\n", s.Node)
	row("hub", routeList(s.Routes.Hub))
	row("leaf", routeList(s.Routes.Leaf))
	tw.Flush()

	fmt.Fprintf(w, "\nLINK PROBLEMS of %s", s.Node)
	if len(st.LinkProblems) == 0 {
		fmt.Fprintln(w, ": none")
	} else {
		fmt.Fprintln(w)
		row("KIND", "LINK", "REMOTE", "UNREADY", "FOR", "WHAT TO DO")
		for _, p := range st.LinkProblems {
			row(p.Kind, p.Link, p.Remote, yesNo(p.Fatal), s.At.Sub(p.Since).Round(time.Second).String(), p.Message)
		}
		tw.Flush()
	}

	fmt.Fprintf(w, "\nPEERS of %s", s.Node)
	if len(st.Connections) == 0 {
		fmt.Fprintln(w, ": none (add_node, set_node_replication or clusterd replicate add them)")
		return
	}
	fmt.Fprintln(w)
	row("PEER", "STATUS", "LATENCY", "UPTIME", "VERSION", "ERROR")
	for _, c := range st.Connections {
		lat, ver := "-", "-"
		if c.LatencyMS != nil {
			lat = fmt.Sprintf("%dms", *c.LatencyMS)
		}
		if c.SystemInfo != nil {
			ver = c.SystemInfo.Version
		}
		row(c.NodeName, c.Status, lat, orDash(c.Uptime), ver, orDash(c.Error))
	}
	tw.Flush()

	fmt.Fprintf(w, "\nREPLICATION on %s (per peer and table; SUB: the peer's transactions come here, PUB: this node's go there)\n", s.Node)
	row("PEER", "TABLE", "SUB", "PUB", "CONVERGED", "LAG", "LAST ERROR")
	type line struct{ cells []string }
	var lines []line
	for _, c := range st.Connections {
		for _, sub := range c.Subscriptions {
			db := sub.Database
			if db == "" {
				db = sub.Schema
			}
			lag := "?"
			if sub.Lag != nil {
				lag = strconv.FormatUint(*sub.Lag, 10)
			}
			lines = append(lines, line{[]string{c.NodeName, db + "." + sub.Table, yesNo(sub.Subscribe), yesNo(sub.Publish), yesNo(sub.Converged), lag, orDash(sub.LastError)}})
		}
	}
	sort.SliceStable(lines, func(i, j int) bool {
		a, b := lines[i].cells, lines[j].cells
		return a[0] < b[0] || a[0] == b[0] && a[1] < b[1]
	})
	for _, l := range lines {
		row(l.cells...)
	}
	tw.Flush()
}
